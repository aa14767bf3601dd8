"""Spec 8.2's alert sources "drawdown > 0.15" and "health degradation", which nothing raised before.

- drawdown: account equity (cash + portfolio value, as the engine records it in account_balance) at least
  `trading.alerts.max_drawdown_pct` below its peak (the highest equity recorded over
  `trading.alerts.drawdown_window_days`, then every reading) raises one `drawdown` alert (high) per episode;
  back under half the limit ends the episode.
- health: an engine cycle slower than `system.health_checks.max_api_latency_ms` raises one `health_degraded`
  alert (medium) per run of slow cycles.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)
from precog.alerts.manager import AlertManager
from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading.drawdown import DrawdownRule, DrawdownWatch

NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


def _alerts(conn: psycopg.Connection[Any], kind: str) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT severity, category, component, message, details, suppressed FROM alerts "
                        "WHERE alert_type = %s ORDER BY alert_id", (kind,)).fetchall()


def _balance_row(conn: psycopg.Connection[Any], equity: str, days_ago: int) -> None:
    at = NOW - timedelta(days=days_ago)
    conn.execute("INSERT INTO account_balance (platform_id, mode, balance, portfolio_value, created_at, "
                 "row_current_ind, row_end_ts) VALUES ('kalshi', 'paper', %s, %s, %s, false, %s)",
                 (Decimal(equity) - Decimal("100"), Decimal("100"), at, at + timedelta(minutes=5)))


def test_the_peak_comes_from_the_windows_recorded_equity_and_each_episode_alerts_once(db_url: str) -> None:
    rule = DrawdownRule(Decimal("0.15"), timedelta(days=30))
    with psycopg.connect(db_url, autocommit=True) as conn:
        _balance_row(conn, "20000.00", days_ago=40)  # outside the window: not the peak
        _balance_row(conn, "12000.00", days_ago=10)
        _balance_row(conn, "11000.00", days_ago=2)
        manager = AlertManager(db_url)
        try:
            watch = DrawdownWatch(rule, manager, "kalshi", "paper")
            watch.seed(conn, NOW)
            assert watch.peak == Decimal("12000.00")
            assert watch.observe(Decimal("10201.00"), NOW) is False  # 14.99%: under the limit
            assert watch.observe(Decimal("10200.00"), NOW) is True  # exactly 15%: at the limit alerts
            assert watch.observe(Decimal("9000.00"), NOW) is False  # deeper, same episode: no second alert
            assert watch.observe(Decimal("11101.00"), NOW) is False  # 7.49%: under half the limit, episode over
            assert watch.observe(Decimal("10000.00"), NOW) is True  # a new episode alerts again
            assert watch.observe(Decimal("13000.00"), NOW) is False and watch.peak == Decimal("13000.00")
            manager.flush()
        finally:
            manager.close()
        rows = _alerts(conn, "drawdown")
    assert [r[:3] for r in rows] == [("high", "risk", "portfolio")] * 2
    first = rows[0]
    assert "$10,200.00 is 15.00% below its peak $12,000.00" in first[3]
    assert "trading.alerts.max_drawdown_pct" in first[3]
    assert first[4]["peak"] == "12000.00" and first[4]["equity"] == "10200.00" and first[4]["drawdown"] == "0.1500"
    assert first[5] is False and rows[1][5] is True  # the repeat within the dedup window is stored, not re-sent


def test_another_account_or_mode_does_not_set_the_peak(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _balance_row(conn, "50000.00", days_ago=1)  # kalshi / paper
        watch = DrawdownWatch(DrawdownRule(Decimal("0.15"), timedelta(days=30)), None, "kalshi", "live")
        watch.seed(conn, NOW)
    assert watch.peak is None and watch.drawdown(Decimal("1")) == Decimal("0")


async def test_the_engine_raises_one_drawdown_alert_when_a_loss_takes_equity_past_the_limit(
        make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"trading.alerts.max_drawdown_pct": Decimal("0.001")}))
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=5)  # the balance (and the drawdown) read every 5 s
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    assert _alerts(rig.conn, "drawdown") == []
    rig.quote("0.30", "0.31")  # marks and the stop loss take equity down by far more than 0.1%
    await rig.run_until(lambda: _alerts(rig.conn, "drawdown"), max_steps=20)
    for _ in range(6):
        await rig.step()
    (alert,) = _alerts(rig.conn, "drawdown")
    details = alert[4]
    assert Decimal(details["peak"]) - Decimal(details["equity"]) >= Decimal("0.001") * Decimal(details["peak"])
    assert details["platform_id"] == "local" and details["mode"] == "paper"
    # equity as recorded: the last account_balance version
    (equity,) = rig.rows("SELECT balance + portfolio_value FROM account_balance WHERE row_current_ind AND "
                         "platform_id = 'local' AND mode = 'paper'")[0]
    assert Decimal(details["peak"]) > equity


async def test_the_engine_checks_its_open_positions_value_at_risk_against_equity(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"trading.alerts.max_var_pct": Decimal("0.001")}))
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=5)
    await engine.start()
    assert _alerts(rig.conn, "value_at_risk") == []  # nothing held: nothing at risk
    await rig.run_until(lambda: _alerts(rig.conn, "value_at_risk"), max_steps=20)
    (pos,) = rig.open_positions()
    (alert,) = _alerts(rig.conn, "value_at_risk")
    assert alert[:3] == ("high", "risk", "portfolio") and alert[4]["positions"] == 1
    # one position in one market: a loss of its whole mark value (to the dollar, rounded towards the loss), more
    # likely than the 5% tail
    mark = pos.current_price if pos.current_price is not None else pos.entry_price
    assert Decimal(alert[4]["value_at_risk"]) == math.ceil(pos.quantity * mark)


async def test_the_shipped_15_percent_limit_stays_quiet_for_a_small_loss(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=5)
    assert engine.drawdown_watch is not None and engine.drawdown_watch.rule.max_drawdown == Decimal("0.15")
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    rig.quote("0.30", "0.31")
    await rig.run_until(lambda: not rig.open_positions())
    await rig.step()
    assert _alerts(rig.conn, "drawdown") == []


async def _slow_step(rig: Any, stall_s: float = 0.1) -> None:
    """A step while the venue is stalled: another thread holds the exchange for `stall_s`."""
    held, release = threading.Event(), threading.Event()

    def stall() -> None:
        with rig.exchange.lock:
            held.set()
            release.wait(stall_s)

    rig.clock.advance(5)
    rig.exchange.tick()
    t = threading.Thread(target=stall)
    t.start()
    held.wait(5)
    try:
        await rig.engine.step()
    finally:
        t.join(5)


async def test_a_slow_cycle_raises_one_health_degraded_alert_per_episode(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"system.health_checks.max_api_latency_ms": 25}))
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    await engine.start()
    await rig.step()
    assert _alerts(rig.conn, "health_degraded") == []  # a quick cycle (well under 25 ms here) is healthy
    for _ in range(3):  # a venue that takes 100 ms to answer: the cycle is over the limit, one alert
        await _slow_step(rig)
    assert [a[0] for a in rig.alerts.raised].count("health_degraded") == 1
    (alert,) = _alerts(rig.conn, "health_degraded")
    assert alert[:3] == ("medium", "system", "trading_engine")
    assert "system.health_checks.max_api_latency_ms" in alert[3] and alert[4]["cycle_latency_ms"] > 1

    def raised_again() -> int:  # the sink counts a repeat of an unresolved alert on its row
        return int(rig.rows("SELECT duplicate_count FROM alerts WHERE alert_type = 'health_degraded'")[0][0])

    assert raised_again() == 0
    await rig.step()  # a cycle within the limit ends the episode
    assert raised_again() == 0
    await _slow_step(rig)  # the next slow cycle is a new episode: raised again
    await _slow_step(rig)
    assert raised_again() == 1


def test_the_drawdown_keys_are_validated_with_their_file_and_range(tmp_path: Any) -> None:
    (tmp_path / "trading.yaml").write_text("alerts:\n  max_drawdown_pct: 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    assert "trading.yaml" in str(err.value) and "max_drawdown_pct" in str(err.value)
