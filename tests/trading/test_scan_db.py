"""One scan from the database: units, markets and games in, edges (SCD2) and rejections stored."""

from __future__ import annotations

from decimal import Decimal

import pytest
from trading_dbkit import BUF, KC, World, create_testing_method

from precog.alerts.manager import AlertManager
from precog.config.loader import load_config
from precog.trading.scan import ScanError, board_for, run_scan
from precog.trading.settings import TradingSettings

D = Decimal


def _scan(world: World, **kw):  # type: ignore[no-untyped-def]
    return run_scan(world.conn, load_config(use_env=False), world.connect(), **kw)


def _current_edges(world: World) -> dict[tuple[str, str], tuple]:  # type: ignore[type-arg]
    rows = world.conn.execute(
        "SELECT market_id, side, expected_value, calculation_run_id::text, method_id, strategy_id, model_id,"
        " true_win_probability, market_price, fee_per_contract, slippage, recommended_action"
        " FROM edges WHERE row_current_ind").fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_scan_stores_both_sides_of_every_market_with_one_run_id(world: World) -> None:
    method = create_testing_method(world.conn)
    report = _scan(world)
    result = report.result
    assert len(report.snapshot.markets) == 2 and len(report.snapshot.games) == 1  # one game, two markets
    edges = _current_edges(world)
    assert set(edges) == {(KC, "yes"), (KC, "no"), (BUF, "yes"), (BUF, "no")}
    run_ids = {e[1] for e in edges.values()}
    assert run_ids == {result.run_id}
    kc_yes = edges[(KC, "yes")]
    # P(KC) 0.75 -> 0.725 after shrinkage; YES ask 0.52 + fee 0.02 + slippage 0.0026
    assert kc_yes[0] == D("0.1824") and kc_yes[5] == D("0.7250") and kc_yes[6] == D("0.5200")
    assert kc_yes[7] == D("0.0200") and kc_yes[8] == D("0.0026") and kc_yes[9] == "auto_execute"
    assert kc_yes[2] == method.method_id and kc_yes[4] == world.model_id
    buf_no = edges[(BUF, "no")]  # NO on BUF = 1 - 0.46 = 0.54 with P = 0.725
    assert buf_no[0] == D("0.725") - (D("0.54") + D("0.02") + D("0.0027"))
    assert len(result.approved) == 2  # both signals fit the game's limits
    assert report.stored is not None and report.stored.versions_written == 4


def test_rescanning_unchanged_markets_writes_no_new_versions(world: World) -> None:
    create_testing_method(world.conn)
    first = _scan(world)
    second = _scan(world)
    assert second.stored is not None and second.stored.versions_written == 0
    assert {e[1] for e in _current_edges(world).values()} == {first.result.run_id}
    # a price change makes new versions of that market's edges only, under the new run id
    world.set_market(KC, bid="0.55", ask="0.57")
    third = _scan(world)
    assert third.stored is not None and third.stored.versions_written == 2
    edges = _current_edges(world)
    assert edges[(KC, "yes")][1] == third.result.run_id and edges[(BUF, "yes")][1] == first.result.run_id
    history = world.conn.execute("SELECT expected_value, row_current_ind, row_end_ts IS NOT NULL FROM edges"
                                 " WHERE market_id = %s AND side = 'yes' ORDER BY id", (KC,)).fetchall()
    assert history == [(D("0.1824"), False, True), (D("0.725") - D("0.5700") - D("0.02") - D("0.0029"), True, False)]


def test_a_market_that_closes_has_its_edges_ended(world: World) -> None:
    create_testing_method(world.conn)
    _scan(world)
    world.set_market(BUF, bid="0.46", ask="0.47", status="closed")
    report = _scan(world)
    assert report.stored is not None and report.stored.ended == 2
    assert {k[0] for k in _current_edges(world)} == {KC}


def test_rejections_are_recorded_with_their_reason(world: World) -> None:
    create_testing_method(world.conn)
    settings = TradingSettings.from_config(load_config(use_env=False))
    board_for(world.connect(), settings).trip("manual", "test halt", by="tester")
    report = _scan(world)
    assert not report.result.approved and report.state.mode.value == "HALTED"
    rows = world.conn.execute("SELECT market_id, check_name, reason, calculation_run_id::text, method_id"
                              " FROM risk_rejections ORDER BY market_id").fetchall()
    assert [r[1] for r in rows] == ["trading_state", "trading_state"]
    assert "HALTED" in rows[0][2] and rows[0][3] == report.result.run_id and rows[0][4] is not None


def test_without_methods_strategies_pair_with_active_models(world: World) -> None:
    report = _scan(world)
    labels = set(report.result.units)
    assert "pre_game_entry@v1.0+fixed_test@v1.0" in labels
    assert any("note" in n or "paired" in n for n in report.notes)
    row = world.conn.execute("SELECT count(*) FROM edges WHERE row_current_ind AND method_id IS NULL"
                             " AND model_id = %s", (world.model_id,)).fetchone()
    assert row is not None and row[0] > 0


def test_a_draft_method_does_not_trade_and_live_mode_needs_active(world: World) -> None:
    create_testing_method(world.conn, status="draft")
    report = _scan(world)  # no testing/active method: falls back to strategy x model pairs
    assert all("+" in label for label in report.result.units)
    create_testing_method(world.conn, "nfl_pregame2", overrides=("risk.kelly_fraction=0.15",))
    paper = _scan(world)
    assert paper.result.units == ("nfl_pregame2@v1.0",)
    with pytest.raises(ScanError, match="live trading needs an active method"):
        _scan(world, mode="live")  # the testing method trades paper only


def test_a_breaker_tripped_by_the_scan_raises_a_critical_alert(world: World) -> None:
    """Three edges >= 0.30 within 10 minutes trip the edge-anomaly breaker (stored and alerted)."""
    create_testing_method(world.conn)
    world.set_market(KC, bid="0.20", ask="0.21")
    with AlertManager(world.url) as alerts:
        # KC YES edge 0.725 - 0.2323 = 0.49: one anomaly per scan; each scan is a new process's board, the
        # count survives in breaker_counters
        first = _scan(world, alerts=alerts)
        _scan(world, alerts=alerts)
        assert first.state.mode.value == "ACTIVE"
        report = _scan(world, alerts=alerts)
    assert report.state.mode.value == "REDUCING" and "edge_anomaly" in report.state.blocking
    event = world.conn.execute("SELECT event_id, resolved_at FROM circuit_breaker_events"
                               " WHERE breaker_type = 'edge_anomaly'").fetchone()
    assert event is not None and event[1] is None
    alert = world.conn.execute("SELECT severity, alert_type, source_table, source_id FROM alerts"
                               " WHERE alert_type = 'circuit_breaker'").fetchone()
    assert alert == ("critical", "circuit_breaker", "circuit_breaker_events", event[0])


def test_open_positions_and_working_orders_count_against_the_game(world: World) -> None:
    """$1,400 already at risk in the game (a KC YES position) leaves $100 of the $1,500 game limit."""
    method = create_testing_method(world.conn)
    pid = world.conn.execute("SELECT nextval('position_id_seq')").fetchone()[0]  # type: ignore[index]
    world.conn.execute(
        "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
        " initial_quantity, fees, status, method_id) VALUES (%s, %s, 'kalshi', 'yes', 'paper', 0.50, 2780, 2780,"
        " 10.00, 'open', %s)", (pid, KC, method.method_id))
    report = _scan(world)
    assert [p.cost for p in report.snapshot.positions] == [D("1400.00")]
    by_market = {a.intent.ticker: a for a in report.result.approved}
    assert set(by_market) == {BUF}
    assert by_market[BUF].intent.side == "no" and D("10") <= by_market[BUF].cost <= D("100")
    kc = next(r for r in report.result.rejections if r.market is not None and r.market.ticker == KC)
    assert kc.check == "size"  # no room left in KC: the position already exceeds the $500 position cap
