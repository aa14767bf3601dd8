"""A method's own risk_config limits bind its entries: daily loss, consecutive losses, rapid loss, exposure.

Each limit trips exactly at its threshold, only for the method that hit it (another method keeps trading),
and a method can tighten but never loosen a global limit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from trading_dbkit import KC, World, create_testing_method
from trading_testkit import NOW, intent, market, method, settings

from precog.config.loader import load_config
from precog.trading.method_config import MethodRuntime
from precog.trading.method_risk import MethodHistory, load_method_history
from precog.trading.risk import Approval, Rejection, RejectionLog, RiskManager
from precog.trading.scan import run_scan
from precog.trading.views import PositionView

D = Decimal
OTHER = 8  # a second method with the same config and a clean record
HOUR = 3600.0  # NOW - 1 h is still the same New York day (NOW is 04:20 local)

cents = st.integers(min_value=5, max_value=50_000).map(lambda c: D(c) / 100)


def _risk(history: dict[int, list[tuple[float, Decimal]]] | None = None, cfg: Any = None,
          positions: tuple[PositionView, ...] = ()) -> tuple[RiskManager, RejectionLog]:
    log = RejectionLog()
    risk = RiskManager(cfg or settings(), recorder=log, clock=lambda: NOW)
    risk.set_method_history(MethodHistory(history or {}))
    if positions:
        risk.sync(positions)
    return risk, log


def _pair(**risk_config: Any) -> tuple[MethodRuntime, MethodRuntime]:
    return method(7, **risk_config), method(OTHER, **risk_config)


def _rejected(out: object, check: str) -> Rejection:
    assert isinstance(out, Rejection), f"expected a {check} rejection, got an approval"
    assert out.check == check, out.reason
    return out


@hsettings(max_examples=40, deadline=None)
@given(limit=cents, n=st.integers(min_value=1, max_value=4))
def test_daily_loss_trips_at_the_limit_for_that_method_only(limit: Decimal, n: int) -> None:
    m7, m8 = _pair(daily_loss_limit_dollars=str(limit))
    cent = D("0.01")  # n closes summing to exactly the limit
    losses = [(NOW - HOUR + i, -cent) for i in range(n - 1)] + [(NOW - HOUR + n, -(limit - cent * (n - 1)))]
    # a loss yesterday (22:20 New York) does not count toward today's
    yesterday = [(NOW - 6 * HOUR, D("-100000"))]
    below = [(NOW - HOUR, -(limit - D("0.01")))]
    risk, _ = _risk({7: yesterday + below})
    assert isinstance(risk.approve(intent(meth=m7)), Approval)
    risk, log = _risk({7: yesterday + losses})
    out = _rejected(risk.approve(intent(meth=m7)), "method_daily_loss")
    assert "method m@v1.0" in out.reason and "daily_loss_limit_dollars" in out.reason
    assert out.method_id == 7 and log.items == [out]  # recorded like every rejection
    assert isinstance(risk.approve(intent(market(ticker="OTHER-T", event="EV9"), meth=m8)), Approval)


@hsettings(max_examples=30, deadline=None)
@given(n=st.integers(min_value=1, max_value=8), loss=cents)
def test_consecutive_losses_trip_at_the_count_and_a_win_resets(n: int, loss: Decimal) -> None:
    m7, m8 = _pair(circuit_breakers={"consecutive_losses": n})
    streak = [(NOW - 20 * HOUR + i, -loss) for i in range(n)]
    risk, _ = _risk({7: streak[1:]})  # one short of the count
    assert isinstance(risk.approve(intent(meth=m7)), Approval)
    risk, _ = _risk({7: streak})
    out = _rejected(risk.approve(intent(meth=m7)), "method_consecutive_losses")
    assert f"consecutive_losses {n}" in out.reason
    assert isinstance(risk.approve(intent(market(ticker="OTHER-T", event="EV9"), meth=m8)), Approval)
    risk, _ = _risk({7: streak + [(NOW - HOUR, D("0.01"))]})  # a winning close ends the streak
    assert isinstance(risk.approve(intent(meth=m7)), Approval)


@hsettings(max_examples=40, deadline=None)
@given(dollars=cents, minutes=st.integers(min_value=1, max_value=240))
def test_rapid_loss_trips_within_its_window_only(dollars: Decimal, minutes: int) -> None:
    m7, m8 = _pair(circuit_breakers={"rapid_loss_dollars": str(dollars), "rapid_loss_minutes": minutes})
    window = minutes * 60
    risk, _ = _risk({7: [(NOW - window, -dollars)]})  # at the window's edge: counts
    out = _rejected(risk.approve(intent(meth=m7)), "method_rapid_loss")
    assert f"rapid_loss_dollars {dollars}" in out.reason and f"{minutes} min" in out.reason
    assert isinstance(risk.approve(intent(market(ticker="OTHER-T", event="EV9"), meth=m8)), Approval)
    risk, _ = _risk({7: [(NOW - window - 1, -dollars)]})  # just outside the window
    assert isinstance(risk.approve(intent(meth=m7)), Approval)
    risk, _ = _risk({7: [(NOW - 60, -(dollars - D("0.01")))]})  # one cent short
    assert isinstance(risk.approve(intent(meth=m7)), Approval)


def _position(method_id: int, cost: Decimal) -> PositionView:
    return PositionView(ticker=f"HELD-{method_id}", event_ticker=f"EVH{method_id}", sport="nba", side="yes",
                        quantity=1, cost=cost, method_id=method_id)


@hsettings(max_examples=40, deadline=None)
@given(cap=st.integers(min_value=20, max_value=2000))
def test_method_exposure_trips_exactly_at_its_cap_for_that_method_only(cap: int) -> None:
    m7, m8 = _pair(max_total_exposure_dollars=str(cap))
    probe, _ = _risk()
    stake = probe.approve(intent(meth=m7))
    assert isinstance(stake, Approval)
    held = D(cap) - stake.cost
    risk, _ = _risk(positions=(_position(7, held),))
    assert isinstance(risk.approve(intent(meth=m7)), Approval)  # exactly at the cap
    assert risk.by_method[7] == D(cap)
    risk, log = _risk(positions=(_position(7, held + D("0.0001")),))
    out = _rejected(risk.approve(intent(meth=m7)), "method_exposure")
    assert "method m@v1.0" in out.reason and f"max_total_exposure_dollars {cap}" in out.reason
    assert log.items == [out]
    # method 8 holds nothing: the same order is fine for it, and 7's holdings do not count against it
    assert isinstance(risk.approve(intent(meth=m8)), Approval)


def test_approvals_back_to_back_count_against_the_method_until_released() -> None:
    m7, _ = _pair(max_total_exposure_dollars="10")
    risk, _ = _risk()
    first = risk.approve(intent(meth=m7, count=10))
    assert isinstance(first, Approval) and first.cost <= D("10") < 2 * first.cost
    _rejected(risk.approve(intent(market(ticker="OTHER-T", event="EV9"), meth=m7, count=10)), "method_exposure")
    risk.release(first)
    assert risk.by_method[7] == 0
    assert isinstance(risk.approve(intent(market(ticker="OTHER-T", event="EV9"), meth=m7, count=10)), Approval)


def test_a_method_never_loosens_the_global_total_or_position_cap() -> None:
    loose = method(7, max_total_exposure_dollars="1000000", max_position_size_dollars="1000000")
    cfg = settings(max_total_exposure=D("300"), max_position_dollars=D("4"))
    risk, _ = _risk(cfg=cfg)
    assert risk.method_cap(loose) == D("300")
    out = _rejected(risk.approve(intent(meth=loose, count=10, cfg=cfg)), "market_exposure")
    assert "> 4" in out.reason  # the global $4 position cap, not the method's $1,000,000
    risk, _ = _risk(cfg=cfg, positions=(_position(9, D("299")),))
    _rejected(risk.approve(intent(meth=loose, count=2, cfg=cfg)), "total_exposure")


def test_the_stricter_method_caps_win_over_looser_global_ones() -> None:
    tight = method(7, max_position_size_dollars="3", max_total_exposure_dollars="50")
    cfg = settings(max_total_exposure=D("10000"), max_position_dollars=D("500"))
    risk, _ = _risk(cfg=cfg)
    assert risk.method_cap(tight) == D("50")
    out = _rejected(risk.approve(intent(meth=tight, count=10, cfg=cfg)), "market_exposure")
    assert "> 3" in out.reason
    risk, _ = _risk(cfg=cfg, positions=(_position(7, D("49")),))
    _rejected(risk.approve(intent(meth=tight, count=2, cfg=cfg)), "method_exposure")
    room = dict(risk.headroom(market(), intent(meth=tight).strategy, tight))
    assert room["method_exposure"] == D("1")  # sizing sees the method's remaining room


def test_method_without_history_or_limits_is_unaffected() -> None:
    risk, _ = _risk({OTHER: [(NOW - HOUR, D("-1000000"))]})
    assert isinstance(risk.approve(intent(meth=method(7, daily_loss_limit_dollars="1"))), Approval)
    assert isinstance(risk.approve(intent(market(ticker="OTHER-T", event="EV9"), meth=method(OTHER))), Approval)


# ------------------------------------------------------------------ from the database (scan path)
def _close(world: World, method_id: int, pnl: str, minutes_ago: int) -> None:
    pid = world.conn.execute("SELECT nextval('position_id_seq')").fetchone()[0]  # type: ignore[index]
    world.conn.execute(
        "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
        " initial_quantity, fees, status, realized_pnl, method_id, exit_time, created_at)"
        " VALUES (%s, %s, 'kalshi', 'yes', 'paper', 0.50, 10, 10, 0, 'closed', %s, %s,"
        " now() - make_interval(mins => %s), now() - make_interval(mins => %s))",
        (pid, f"OLD-{pid}", D(pnl), method_id, minutes_ago, minutes_ago + 1))


def test_history_loads_closed_positions_per_method_in_one_query(world: World) -> None:
    method_row = create_testing_method(world.conn)
    mid = method_row.method_id
    for minutes in (300, 200, 100):
        _close(world, mid, "-2.5", minutes)
    history = load_method_history(world.conn, "paper", world.now.timestamp())
    closes = history.for_method(mid)
    assert [pnl for _, pnl in closes] == [D("-2.5")] * 3
    assert [ts for ts, _ in closes] == sorted(ts for ts, _ in closes)
    assert load_method_history(world.conn, "live", world.now.timestamp()).closes == {}



def test_a_backtest_run_sees_only_its_own_closed_positions(world: World) -> None:
    """Earlier backtest runs in the same database are other histories: a run's method loss limits read its own."""
    mid = create_testing_method(world.conn).method_id
    for run_id, pnl in ((1, "-9"), (1, "-8"), (2, "3")):
        pid = world.conn.execute("SELECT nextval('position_id_seq')").fetchone()[0]  # type: ignore[index]
        world.conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, method_id, exit_time, position_metadata)"
            " VALUES (%s, %s, 'kalshi', 'yes', 'backtest', 0.50, 10, 10, 0, 'closed', %s, %s, now(),"
            " jsonb_build_object('run_id', %s::bigint))", (pid, f"BT-{pid}", D(pnl), mid, run_id))
    now = world.now.timestamp()
    assert [p for _, p in load_method_history(world.conn, "backtest", now, run_id=2).for_method(mid)] == [D("3")]
    assert sorted(p for _, p in load_method_history(world.conn, "backtest", now, run_id=1).for_method(mid)) == [
        D("-9"), D("-8")]
    assert len(load_method_history(world.conn, "backtest", now).for_method(mid)) == 3

def _backtest_close(world: World, method_id: int, run_id: int, pnl: str, minutes_ago: int) -> None:
    pid = world.conn.execute("SELECT nextval('position_id_seq')").fetchone()[0]  # type: ignore[index]
    world.conn.execute(
        "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
        " initial_quantity, fees, status, realized_pnl, method_id, exit_time, position_metadata)"
        " VALUES (%s, %s, 'kalshi', 'yes', 'backtest', 0.50, 10, 10, 0, 'closed', %s, %s,"
        " %s - make_interval(mins => %s), jsonb_build_object('run_id', %s::bigint))",
        (pid, f"BT-{pid}", D(pnl), method_id, world.now, minutes_ago, run_id))


def test_a_backtest_reads_its_history_again_only_after_a_close(world: World) -> None:
    """A backtest run is the only writer of its history: the engine bridge reuses the rows it read until the
    run's portfolio closes a position, and trims them on the simulated clock to exactly what a fresh read
    would return (the newest 100 per method, or all of the last two days when those are more)."""
    from precog.engine.entries import EngineRisk
    from precog.trading.settings import TradingSettings

    mid = create_testing_method(world.conn).method_id
    for i in range(200):  # one close every 20 minutes: 145 of them in the last two days
        _backtest_close(world, mid, 5, str(-(i % 7)), 20 * i)
    bridge = EngineRisk(world.conn, TradingSettings.from_config(load_config(use_env=False)), mode="backtest",
                        record=False)
    now = world.now.timestamp()
    bridge.sync([], D("10000"), now=now - 86400, run_id=5, closes=0)
    assert len(bridge.risk.method_history.for_method(mid)) == 200  # a day earlier all 200 were recent
    for at in (now - 3600, now):
        bridge.sync([], D("10000"), now=at, run_id=5, closes=0)
        fresh = load_method_history(world.conn, "backtest", at, run_id=5).for_method(mid)
        assert bridge.risk.method_history.for_method(mid) == fresh
    assert len(fresh) == 145
    _backtest_close(world, mid, 5, "-4", 0)  # written, but the run has not reported a close yet
    bridge.sync([], D("10000"), now=now, run_id=5, closes=0)
    assert len(bridge.risk.method_history.for_method(mid)) == 145
    bridge.sync([], D("10000"), now=now, run_id=5, closes=1)
    assert bridge.risk.method_history.for_method(mid) == load_method_history(
        world.conn, "backtest", now, run_id=5).for_method(mid)
    assert len(bridge.risk.method_history.for_method(mid)) == 146


def test_a_scan_refuses_a_method_after_its_consecutive_losses(world: World) -> None:
    """The moderate template stops a method after 5 losing closes in a row; the scan records why."""
    method_row = create_testing_method(world.conn)
    for minutes in (600, 500, 400, 300):
        _close(world, method_row.method_id, "-1", minutes)
    report = run_scan(world.conn, load_config(use_env=False), world.connect())
    assert report.result.approved  # four losses: still trading
    for approval in report.result.approved:
        assert approval.intent.method is not None
    _close(world, method_row.method_id, "-1", 200)
    report = run_scan(world.conn, load_config(use_env=False), world.connect())
    assert not report.result.approved
    refused = [r for r in report.result.rejections if r.check == "method_consecutive_losses"]
    assert refused and all(r.method_id == method_row.method_id for r in refused)
    assert {r.market.ticker for r in refused if r.market is not None} >= {KC}
    stored = world.conn.execute("SELECT count(*) FROM risk_rejections WHERE check_name = %s AND reason LIKE %s",
                                ("method_consecutive_losses", "%consecutive_losses 5%")).fetchone()
    assert stored is not None and stored[0] >= 1


def test_the_engine_cycle_loads_the_history_and_blocks_that_method(world: World) -> None:
    """The trading loop's bridge (EngineRisk.sync, once per cycle) hands the closes to the risk manager."""
    from precog.engine.entries import EngineRisk, MethodSpec
    from precog.trading.settings import TradingSettings

    method_row = create_testing_method(world.conn)
    mid = method_row.method_id
    for minutes in (50, 40, 30, 20, 10):
        _close(world, mid, "-1", minutes)
    bridge = EngineRisk(world.conn, TradingSettings.from_config(load_config(use_env=False)), mode="paper",
                        record=False)
    spec = world.conn.execute("SELECT strategy_id, model_id FROM methods WHERE method_id = %s", (mid,)).fetchone()
    assert spec is not None
    bridge.load_units([MethodSpec(mid, spec[0], spec[1], "nfl_pregame", "fixed", "pre_game")])
    bridge.sync([], D("10000"), now=world.now.timestamp())
    assert len(bridge.risk.method_history.for_method(mid)) == 5
    block = bridge.risk.method_loss_block(bridge.units[mid].method, world.now.timestamp())
    assert block is not None and block[0] == "method_consecutive_losses"
