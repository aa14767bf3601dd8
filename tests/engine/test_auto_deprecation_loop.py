"""Automatic method deprecation (spec 8.1 / REQ-METH: win rate < 50% over 30 days or ROI < -10%) applied by the
running trading loop, not only by `precog methods auto-deprecate` (issue #7).

The loop checks the methods it trades at start, every `trade_strategies.methods.auto_deprecation.
check_interval_minutes` of its clock and right after one of its positions closes. A deprecated method is recorded
(method_status_changes, changed_by 'auto-deprecation'), gets no new entry from then on (on both entry paths: the
built-in planner of `precog run --venue local`/the rigs and the decision layer of `precog run --venue kalshi`),
keeps its open positions managed to exit, and raises one `method_deprecated` alert through the loop's alert path.
Both rules judge only from `min_trades` closed trades (one losing paper trade is no evidence, and deprecation is
final). A backtest never deprecates.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts.alertkit import HttpRecorder, http_server  # noqa: F401 - the fixture
from engine.conftest import CASH, TICKER, TICKER2, FixedProbabilities, make_rig, rig_config  # noqa: F401
from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.engine.alert_sink import TableAlertSink, loop_alerts
from precog.engine.core import Engine
from precog.engine.decision_planner import DecisionPlanner
from precog.engine.local_venue import LocalVenue
from precog.engine.paper_venue import PaperVenue
from precog.trading.methods import auto_deprecate, get_method, rules_from_config

D = Decimal
KEY = "trade_strategies.methods.auto_deprecation.check_interval_minutes"


def _config(**changes: Any) -> Any:
    return rig_config(**{KEY: 1, **changes})  # the rigs step 5 s at a time: check every simulated minute


def _copy_method(conn: psycopg.Connection[Any], template: Any, name: str) -> Any:
    """Another active method trading like `template` (the demo's live method): its own row and config hash."""
    row = conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config,"
        " execution_config, sport_config, config_hash, status) SELECT %s, 'v1.0', strategy_id, model_id,"
        " position_mgmt_config, risk_config, execution_config, sport_config, %s, 'active' FROM methods"
        " WHERE method_id = %s RETURNING method_id", (name, f"test-{name}", template.method_id)).fetchone()
    assert row is not None
    return dataclasses.replace(template, method_id=int(row[0]), name=name)


def _closed(conn: psycopg.Connection[Any], method_id: int, pnls: list[str], at: datetime,
            mode: str = "paper") -> None:
    """Closed positions of the method (as an earlier run or another process booked them), each costing $5.00."""
    for pnl in pnls:
        conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, method_id, exit_time)"
            " VALUES (nextval('position_id_seq'), 'KXM-EARLIER', 'local', 'yes', %s, 0.50, 10, 10, 0, 'closed', %s,"
            " %s, %s)", (mode, D(pnl), method_id, at))


def _status_changes(conn: psycopg.Connection[Any], method_id: int) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT from_status, to_status, changed_by, reason FROM method_status_changes"
                        " WHERE method_id = %s AND to_status = 'deprecated' ORDER BY id", (method_id,)).fetchall()


def _entries(conn: psycopg.Connection[Any], method_id: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT market_id FROM orders WHERE purpose = 'entry' AND method_id = %s"
                                       " ORDER BY created_at", (method_id,)).fetchall()]


# 3 wins and 6 losses: 9 closed trades, fewer than min_trades (10); one more loss makes 30% wins over 10 trades
# (ROI -8%: only the win-rate rule breaks)
NINE = ["1.00"] * 3 + ["-1.00"] * 6


@pytest.mark.timeout(120)
async def test_the_running_loop_deprecates_a_failing_method_alerts_and_gives_it_no_new_entry(
        make_rig: Any, db_url: str, http_server: HttpRecorder,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the loop's real alert path (`precog run`): the AlertManager, routed (medium -> webhook) and delivered
    monkeypatch.setenv("PRECOG_CFG__SYSTEM__NOTIFICATIONS__WEBHOOK__ENABLED", "true")
    monkeypatch.setenv("PRECOG_CFG__SYSTEM__ALERT_ROUTING__MEDIUM", json.dumps(["webhook", "database"]))
    monkeypatch.setenv("CUSTOM_WEBHOOK_URL", f"{http_server.url}/hook")
    monkeypatch.setenv("PRECOG_WEBHOOK_SECRET", "auto-deprecation-secret")
    rig = make_rig(_config(), second_market=True)
    keeper = next(m for m in rig.methods if m.phase == "live")
    loser = _copy_method(rig.conn, keeper, "aloser")
    rig.methods = [loser, keeper]  # the loser decides first: without the rule it takes every market
    _closed(rig.conn, loser.method_id, NINE, rig.now() - timedelta(days=2))
    with loop_alerts(db_url, notify=True) as alerts:
        rig.alerts = alerts  # type: ignore[assignment]
        engine = rig.make_engine(kind="run", auto_deprecation=True)
        assert [m.method_id for m in engine.methods] == [loser.method_id, keeper.method_id]
        rig.quote("0.49", "0.50", ticker=TICKER)
        rig.probs.p[TICKER] = D("0.62")
        await engine.start()
        await rig.run_until(lambda: rig.open_positions())
        (held,) = rig.open_positions()
        assert held.method_id == loser.method_id  # 9 closed trades: not judged yet, it trades
        assert get_method(rig.conn, "aloser@v1.0").status == "active"

        # its 10th close (booked elsewhere): the next periodic check of the loop deprecates it - no CLI call
        _closed(rig.conn, loser.method_id, ["-1.00"], rig.now())
        await rig.run_until(lambda: loser.method_id in engine.deprecated_methods, max_steps=20)
        assert get_method(rig.conn, "aloser@v1.0").status == "deprecated"
        ((frm, to, by, reason),) = _status_changes(rig.conn, loser.method_id)
        assert (frm, to, by) == ("active", "deprecated", "auto-deprecation")
        assert reason == "win rate 0.3000 over the last 30 days (10 trades) < 0.50"

        # a new opportunity: the other method trades it, the deprecated one sends nothing
        rig.quote("0.49", "0.50", ticker=TICKER2)
        rig.probs.p[TICKER2] = D("0.62")
        await rig.run_until(lambda: any(p.market_id == TICKER2 for p in rig.open_positions()))
        (new,) = [p for p in rig.open_positions() if p.market_id == TICKER2]
        assert new.method_id == keeper.method_id
        assert _entries(rig.conn, loser.method_id) == [TICKER]
        assert _entries(rig.conn, keeper.method_id) == [TICKER2]

        # its open position is still managed: the stop loss closes it
        rig.quote("0.40", "0.42", ticker=TICKER)
        await rig.run_until(lambda: all(p.market_id != TICKER for p in rig.open_positions()))
        closed = engine.portfolio.get(held.position_id)
        assert closed is not None and closed.status == "closed" and closed.exit_reason == "stop_loss"
        for _ in range(15):  # later checks (this close, the interval) raise nothing more
            await rig.step()
        assert _entries(rig.conn, loser.method_id) == [TICKER]
    # the alert: stored once, routed and delivered through the notifier
    rows = rig.rows("SELECT alert_id, severity, category, component, source_table, source_id, message, details,"
                    " suppressed FROM alerts WHERE alert_type = 'method_deprecated'")
    assert len(rows) == 1, rows
    alert_id, severity, category, component, source_table, source_id, message, details, suppressed = rows[0]
    assert (severity, category, component, source_table, source_id, suppressed) == (
        "medium", "trading", "trading_engine", "methods", loser.method_id, False)
    assert "aloser@v1.0" in message and "win rate 0.3000" in message
    assert details["rule"] == "win_rate" and details["trades"] == 10 and details["win_rate"] == "0.3000"
    assert rig.rows("SELECT channel, status FROM alert_outbox WHERE alert_id = %s", alert_id) == [("webhook", "sent")]
    delivered = [r.json() for r in http_server.requests if r.json().get("alert_type") == "method_deprecated"]
    assert len(delivered) == 1 and "aloser@v1.0" in delivered[0]["message"]


async def test_a_close_by_the_loop_triggers_the_check_without_waiting_for_the_interval(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config())  # the default interval: 60 minutes
    keeper = next(m for m in rig.methods if m.phase == "live")
    loser = _copy_method(rig.conn, keeper, "aloser")
    _closed(rig.conn, loser.method_id, NINE, rig.now() - timedelta(days=2))
    rig.methods = [loser]
    engine = rig.make_engine(kind="run", auto_deprecation=True)
    assert engine.deprecation_interval == timedelta(minutes=60)
    rig.quote("0.49", "0.50")
    rig.probs.p[TICKER] = D("0.62")
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    rig.quote("0.40", "0.42")  # its 10th trade: a stop-loss loss
    await rig.run_until(lambda: not rig.open_positions())
    await rig.step()  # the next cycle, seconds later
    assert get_method(rig.conn, "aloser@v1.0").status == "deprecated"
    assert [r[:3] for r in _status_changes(rig.conn, loser.method_id)] == [("active", "deprecated", "auto-deprecation")]
    assert [a[0] for a in rig.alerts.raised if a[0] == "method_deprecated"] == ["method_deprecated"]
    # the market offers the same edge again: no new entry for the deprecated method
    rig.quote("0.49", "0.50")
    for _ in range(10):
        await rig.step()
    assert not rig.open_positions() and len(_entries(rig.conn, loser.method_id)) == 1


async def test_a_resting_entry_of_the_deprecated_method_is_canceled_at_once(make_rig: Any) -> None:  # noqa: F811
    """A limit entry still resting when its method is deprecated would open more of it: canceled by the check,
    not left to its timeout."""
    rig = make_rig(_config(**{"trading.execution.limit_order_timeout_seconds": 3600}))
    keeper = next(m for m in rig.methods if m.phase == "live")
    loser = _copy_method(rig.conn, keeper, "aloser")
    _closed(rig.conn, loser.method_id, NINE, rig.now() - timedelta(days=2))
    rig.methods = [loser]
    engine = rig.make_engine(kind="run", auto_deprecation=True)
    rig.quote("0.49", "0.50", size=20)  # the ask shows 20 contracts: the entry fills 20 and rests for the rest
    rig.probs.p[TICKER] = D("0.62")
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    ((order_id, status, filled, quantity),) = rig.rows(
        "SELECT id, status, filled_quantity, quantity FROM orders WHERE purpose = 'entry' AND method_id = %s",
        loser.method_id)
    assert status == "partially_filled" and filled == 20 < quantity
    _closed(rig.conn, loser.method_id, ["-1.00"], rig.now())
    await rig.run_until(lambda: engine.deprecated_methods, max_steps=14)
    assert rig.rows("SELECT status FROM orders WHERE id = %s", order_id) == [("canceled",)]
    assert ("method deprecated",) in rig.rows("SELECT reason FROM order_events WHERE order_id = %s", order_id)
    assert all(o.status != "resting" for o in rig.exchange.account("us").orders.values())
    assert [p.quantity for p in rig.open_positions()] == [20]  # what it holds stays, managed as before


async def test_fewer_than_min_trades_losing_trades_do_not_deprecate(make_rig: Any, precog_cli: Any) -> None:  # noqa: F811
    """The ROI rule judged one losing trade below -10% alone (a testing method deprecated for good by one paper
    loss); it now needs min_trades closed trades like the win-rate rule - in the loop and in the CLI."""
    rig = make_rig(_config())
    keeper = next(m for m in rig.methods if m.phase == "live")
    loser = _copy_method(rig.conn, keeper, "aloser")
    rig.conn.execute("UPDATE methods SET status = 'testing' WHERE method_id = %s", (loser.method_id,))
    _closed(rig.conn, loser.method_id, ["-5.00"], rig.now() - timedelta(days=1))  # one trade, ROI -100%
    rig.methods = [loser]
    engine = rig.make_engine(kind="run", auto_deprecation=True)
    await engine.start()
    for _ in range(30):  # two and a half simulated minutes: the start check and two periodic ones
        await rig.step()
    assert get_method(rig.conn, "aloser@v1.0").status == "testing" and not engine.deprecated_methods
    r = precog_cli("methods", "auto-deprecate", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    # 9 of them: still not judged; the 10th makes it a record, and the loop's next check deprecates it
    _closed(rig.conn, loser.method_id, ["-5.00"] * 8, rig.now() - timedelta(days=1))
    for _ in range(13):
        await rig.step()
    assert get_method(rig.conn, "aloser@v1.0").status == "testing"
    _closed(rig.conn, loser.method_id, ["-5.00"], rig.now() - timedelta(days=1))
    await rig.run_until(lambda: engine.deprecated_methods, max_steps=13)
    ((_, _, by, reason),) = _status_changes(rig.conn, loser.method_id)
    assert by == "auto-deprecation" and reason == "win rate 0.0000 over the last 30 days (10 trades) < 0.50"


def test_the_roi_rule_needs_min_trades_closed_trades(make_rig: Any) -> None:  # noqa: F811
    """The CLI's rules (`auto_deprecate`): ROI below -10% over 9 trades outside the win-rate window is kept,
    over 10 it is deprecated."""
    rig = make_rig(rig_config())
    keeper = next(m for m in rig.methods if m.phase == "live")
    loser = _copy_method(rig.conn, keeper, "aloser")
    old = datetime.now(UTC) - timedelta(days=40)  # outside the 30-day window: only the ROI rule judges
    _closed(rig.conn, loser.method_id, ["1.00"] * 6 + ["-5.00"] * 3, old)  # ROI (6 - 15) / 45 = -20%
    _, rules = rules_from_config(rig.config)
    assert auto_deprecate(rig.conn, rules, dry_run=True, method_ids=[loser.method_id]) == []
    _closed(rig.conn, loser.method_id, ["1.00"], old)  # 10 trades, ROI -16%
    assert auto_deprecate(rig.conn, rules, method_ids=[loser.method_id]) == [
        ("aloser@v1.0", "ROI -0.1600 over 10 trades < -0.10")]
    assert [r[2] for r in _status_changes(rig.conn, loser.method_id)] == ["auto-deprecation"]


def _decision_layer_engine(conn: psycopg.Connection[Any], ex: Any, cfg: Any, planner: DecisionPlanner) -> Engine:
    """`precog run --venue kalshi`'s engine shape on the local exchange: the decision layer decides, the loop
    applies the deprecation rules."""
    return Engine(conn, LocalVenue(ex, "us"), config=cfg, mode="paper", kind="run", methods=[],
                  probabilities=FixedProbabilities(), markets=[], clock=lambda: datetime.now(UTC),
                  initial_cash=Decimal("10000"), planner=planner, alerts=TableAlertSink(conn, "test"),
                  auto_deprecation=True)


async def test_the_decision_layer_path_stops_a_deprecated_methods_entries(db_url: str) -> None:
    """`precog run --venue kalshi`: the decision layer's units are loaded before the engine starts and kept; a
    method the loop deprecates (here at its start check) stops winning markets - the other method takes them -
    while its model still prices the positions it holds."""
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    loser = create_testing_method(world.conn, "aloser")  # first by name: it wins the ties
    keeper = create_testing_method(world.conn, "keeper", overrides=("risk.kelly_fraction=0.15",))
    _closed(world.conn, loser.method_id, NINE + ["-1.00"], world.now - timedelta(days=2))
    ex, _ = world_exchange()
    conn = psycopg.connect(db_url, autocommit=True)
    cfg = rig_config()
    planner = DecisionPlanner(conn, cfg, lambda: psycopg.connect(db_url, autocommit=True), mode="paper")
    assert planner.method_ids == {loser.method_id, keeper.method_id}
    engine = _decision_layer_engine(conn, ex, cfg, planner)
    await engine.start()
    assert engine.deprecated_methods == {loser.method_id}
    assert get_method(conn, "aloser@v1.0").status == "deprecated"
    await engine.step()
    positions = engine.portfolio.open_positions()
    assert positions and {p.method_id for p in positions} == {keeper.method_id}
    assert _entries(conn, loser.method_id) == []
    # the deprecated method's unit still forecasts (a position of it would keep its edge exits)
    assert any(f.method_id == loser.method_id for fs in planner.forecasts.values() for f in fs)
    assert [a[0] for a in engine.alerts.raised if a[0] == "method_deprecated"] == [  # type: ignore[union-attr]
        "method_deprecated"]
    conn.close()
    world.conn.close()


async def test_a_backtest_never_deprecates(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(_config())
    keeper = next(m for m in rig.methods if m.phase == "live")
    loser = _copy_method(rig.conn, keeper, "aloser")
    _closed(rig.conn, loser.method_id, NINE + ["-1.00"], rig.now() - timedelta(days=2))  # breaks the win-rate rule
    rig.methods = [loser]
    with pytest.raises(ValueError, match="backtest never deprecates"):
        rig.make_engine(mode="backtest", kind="backtest", auto_deprecation=True)
    # a backtest on a venue whose loops deprecate by default (not the local exchange): still off
    rig.venue = PaperVenue(LocalVenue(rig.exchange, "us"), CASH, clock=rig.now, platform_id="kalshi")  # type: ignore[assignment]
    engine = rig.make_engine(mode="backtest", kind="backtest")
    assert engine.auto_deprecation is False
    rig.quote("0.49", "0.50")
    rig.probs.p[TICKER] = D("0.62")
    await engine.start()
    for _ in range(30):
        await rig.step()
    assert get_method(rig.conn, "aloser@v1.0").status == "active" and _status_changes(rig.conn, loser.method_id) == []
    assert rig.open_positions() and rig.open_positions()[0].method_id == loser.method_id  # it replays as it was


def test_which_loops_deprecate_by_default(make_rig: Any) -> None:  # noqa: F811
    """`precog run` on a real venue (paper or live) deprecates by default; a simulated world on the local exchange
    (`precog demo`, `run --venue local`) does not: its methods are the demo's fixed rows."""
    rig = make_rig(rig_config())
    assert rig.make_engine(kind="demo").auto_deprecation is False
    assert rig.make_engine(kind="run").auto_deprecation is False
    rig.venue = PaperVenue(LocalVenue(rig.exchange, "us"), CASH, clock=rig.now, platform_id="kalshi")  # type: ignore[assignment]
    for mode in ("paper", "live"):
        engine = rig.make_engine(mode=mode, kind="run")
        assert engine.auto_deprecation is True and engine.deprecation_interval == timedelta(minutes=60)
    assert rig.make_engine(kind="run", auto_deprecation=False).auto_deprecation is False


@pytest.mark.parametrize("value, problem", [
    ("0", "greater than or equal to 1"), ("1441", "less than or equal to 1440"), ("-5", "greater than or equal to 1"),
    ("1.5", "valid integer"), ("'60'", "valid integer"), ("true", "valid integer"), ("null", "valid integer")])
def test_a_bad_check_interval_is_refused_naming_file_key_and_range(tmp_path: Path, value: str, problem: str) -> None:
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    path = cfg_dir / "trade_strategies.yaml"
    path.write_text(f"methods:\n  auto_deprecation:\n    check_interval_minutes: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir, use_env=False)
    text = str(err.value)
    assert str(path) in text and "methods.auto_deprecation.check_interval_minutes" in text
    assert problem in text and "(allowed: >= 1 and <= 1440)" in text


def test_the_check_interval_from_the_environment_is_range_checked_too(tmp_path: Path) -> None:
    env = {"PRECOG_CFG__TRADE_STRATEGIES__METHODS__AUTO_DEPRECATION__CHECK_INTERVAL_MINUTES": "0"}
    with pytest.raises(ConfigError) as err:
        load_config(None, environ=env, use_overrides=False)
    assert "environment variable PRECOG_CFG__TRADE_STRATEGIES__METHODS__AUTO_DEPRECATION__CHECK_INTERVAL_MINUTES" \
        in str(err.value) and "(allowed: >= 1 and <= 1440)" in str(err.value)
    ok = load_config(None, environ={**env, "PRECOG_CFG__TRADE_STRATEGIES__METHODS__AUTO_DEPRECATION__"
                                          "CHECK_INTERVAL_MINUTES": "15"}, use_overrides=False)
    assert rules_from_config(ok)[1].check_interval_minutes == 15
    assert rules_from_config(load_config(None, environ={}, use_overrides=False))[1].check_interval_minutes == 60


async def test_a_deprecated_methods_capital_goes_to_the_active_methods_left(db_url: str) -> None:
    """Two active methods split the bankroll 70/30 (the older one 70%). When the loop deprecates the older one, the
    method left trades with the whole bankroll from then on, as a restart would give it - not with its 30% while
    the deprecated method's 70% sits idle."""
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    loser = create_testing_method(world.conn, "aloser", status="active")
    keeper = create_testing_method(world.conn, "keeper", overrides=("risk.kelly_fraction=0.22",), status="active")
    world.conn.execute("UPDATE methods SET activated_at = now() - interval '1 day' WHERE method_id = %s",
                       (loser.method_id,))  # the older one: 70% of the split
    _closed(world.conn, loser.method_id, NINE + ["-1.00"], world.now - timedelta(days=2))
    ex, _ = world_exchange()
    conn = psycopg.connect(db_url, autocommit=True)
    cfg = rig_config()
    planner = DecisionPlanner(conn, cfg, lambda: psycopg.connect(db_url, autocommit=True), mode="paper")
    loaded = {u.method.method_id: u.method.capital_share for u in planner.units.units if u.method is not None}
    assert loaded == {loser.method_id: D("0.70"), keeper.method_id: D("0.30")}
    engine = _decision_layer_engine(conn, ex, cfg, planner)
    await engine.start()
    assert engine.deprecated_methods == {loser.method_id}
    assert planner.engine.capital_shares == {keeper.method_id: D("1")}
    await engine.step()
    sizes = conn.execute("SELECT market_id, quantity, limit_price FROM orders WHERE purpose = 'entry' AND "
                         "method_id = %s", (keeper.method_id,)).fetchall()
    assert sizes and _entries(conn, loser.method_id) == []
    # 30% of $10,000 caps a position at 5% of $3,000 = $150; the whole bankroll allows the $500 cap
    for _market, quantity, price in sizes:
        assert D("150") < quantity * price <= D("500"), sizes
    conn.close()
    world.conn.close()
