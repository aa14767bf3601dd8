"""`precog run`'s entry path: the decision layer scans the database snapshot, the risk manager approves, and
the engine sends each approved intent (consuming its Approval) to the venue."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.conftest import FixedProbabilities, rig_config
from precog.engine.core import Engine
from precog.engine.decision_planner import DecisionPlanner
from precog.engine.local_venue import LocalVenue
from precog.trading.risk import ApprovalError
from precog.venues.exchange.engine import Exchange


async def test_approved_intents_become_orders_and_positions(db_url: str) -> None:
    from trading.trading_dbkit import BUF, EVENT, KC, create_testing_method, seed_world

    world = seed_world(db_url, probability="0.75")
    method = create_testing_method(world.conn)
    ex = Exchange()
    ex.create_series("KXNFLGAME", "NFL game")
    ex.create_event(EVENT, "KXNFLGAME", "BUF at KC")
    ex.create_market(KC, EVENT, title="Kansas City wins")
    ex.create_account("us", Decimal("10000"))
    ex.create_account("mm", Decimal("1000000"))
    ex.place_order("mm", KC, "yes", "buy", 5000, Decimal("0.50"))
    ex.place_order("mm", KC, "no", "buy", 5000, Decimal("0.48"))  # YES ask 0.52, as in the database
    ex.create_market(BUF, EVENT, title="Buffalo wins")
    ex.place_order("mm", BUF, "yes", "buy", 5000, Decimal("0.46"))
    ex.place_order("mm", BUF, "no", "buy", 5000, Decimal("0.53"))  # YES ask 0.47
    conn = psycopg.connect(db_url, autocommit=True)
    cfg = rig_config()
    planner = DecisionPlanner(conn, cfg, lambda: psycopg.connect(db_url, autocommit=True), mode="paper")
    assert planner.has_units
    engine = Engine(conn, LocalVenue(ex, "us"), config=cfg, mode="paper", kind="test", methods=[],
                    probabilities=FixedProbabilities(), markets=[], clock=lambda: datetime.now(UTC),
                    initial_cash=Decimal("10000"), planner=planner)
    await engine.start()
    await engine.step()
    positions = engine.portfolio.open_positions()
    assert positions  # the fixed model says KC wins 75%: buy KC YES and/or BUF NO
    for pos in positions:
        assert (pos.market_id, pos.side) in ((KC, "yes"), (BUF, "no"))
        assert pos.method_id == method.method_id and pos.model_id == world.model_id and pos.strategy_id is not None
        net = ex.account("us").positions[pos.market_id].net
        assert net == (pos.quantity if pos.side == "yes" else -pos.quantity)
    sent = len(ex.account("us").orders)
    assert sent == len(positions)
    # each trade points at the edge version it was decided on, written by the loop's own scan
    linked = conn.execute(
        "SELECT t.market_id, t.side, e.market_id, e.side, e.method_id, e.row_current_ind, e.expected_value"
        " FROM trades t JOIN edges e ON e.id = t.edge_id").fetchall()
    assert len(linked) == conn.execute("SELECT count(*) FROM trades").fetchone()[0] >= 1
    for market, side, e_market, e_side, e_method, current, ev in linked:
        assert (market, side, e_method) == (e_market, e_side, method.method_id) and current and ev > 0
    # the approval was consumed by the order path: it cannot be used for a second order
    (entry,) = [e for e in engine._planned.values()] or [None]
    if entry is not None:
        with pytest.raises(ApprovalError):
            planner.consume(entry)
    # the next scan does not buy the same market again
    engine._last_scan = None  # scan again now
    await engine.step()
    assert len(ex.account("us").orders) == sent
    conn.close()
    world.conn.close()


async def test_the_breaker_board_owns_the_trading_state_and_closes_positions(db_url: str) -> None:
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn)
    ex, _ = world_exchange()
    conn = psycopg.connect(db_url, autocommit=True)
    cfg = rig_config()
    planner = DecisionPlanner(conn, cfg, lambda: psycopg.connect(db_url, autocommit=True), mode="paper")
    engine = Engine(conn, LocalVenue(ex, "us"), config=cfg, mode="paper", kind="test", methods=[],
                    probabilities=FixedProbabilities(), markets=[], clock=lambda: datetime.now(UTC),
                    initial_cash=Decimal("10000"), planner=planner)
    await engine.start()
    await engine.step()
    assert engine.portfolio.open_positions()
    planner.board.trip("daily_loss_limit", "test: loss limit reached")
    for _ in range(3):
        await engine.step()
    assert engine.trading_state == "HALTED"
    assert not engine.portfolio.open_positions()
    assert {r[0] for r in conn.execute("SELECT exit_condition FROM position_exits").fetchall()} == {"circuit_breaker"}
    assert all(p.net == 0 for p in ex.account("us").positions.values())
    engine._last_scan = None
    await engine.step()  # halted: the scan approves nothing new
    assert not engine.portfolio.open_positions()
    conn.close()
    world.conn.close()


@pytest.mark.timeout(200)
@pytest.mark.parametrize("mode", ["--paper", "--live"])
def test_precog_run_on_the_kalshi_path(db_url: str, precog_cli: Any, tmp_path: Any, mode: str) -> None:
    """`precog run --venue kalshi` with the local exchange standing in for Kalshi (KALSHI_BASE_URL): the
    decision layer scans the database, the engine trades through the real client (live) or simulates
    fills on the venue's book (paper)."""
    import re

    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.exchange.runner import ExchangeServer
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    # live trading takes active methods only
    create_testing_method(world.conn, status="active" if mode == "--live" else "testing")
    key_id, key_path, public_pem = generate_key_pair(tmp_path / "keys")
    ex, _ = world_exchange()
    server = ExchangeServer(ex)
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    # the run's one decision scan comes before its stream has subscribed the markets it picks: a live entry would
    # be deferred to the next scan (trading.manual_approval.when_realtime_down, test_entry_approval_stream_down's);
    # here it goes straight out
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "trading.yaml").write_text("manual_approval:\n  when_realtime_down: false\n",
                                                   encoding="utf-8")
    server.start()
    try:
        r = precog_cli("run", "--venue", "kalshi", "--env", "demo", mode, "--no-ingest", "--no-notify", "--quiet",
                       "--interval", "0.2", "--duration", "4",
                       env={"KALSHI_BASE_URL": server.base_url, "KALSHI_API_KEY_ID": key_id,
                            "KALSHI_PRIVATE_KEY_PATH": str(key_path), "PRECOG_CONFIG_DIR": str(tmp_path / "cfg")},
                       timeout=150)
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    m = re.search(r"run \d+: \d+ cycles, (\d+) fills, (\d+) open positions", r.stdout)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, r.stdout
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT market_id, side, quantity, mode, method_id FROM positions "
                            "WHERE row_current_ind AND status = 'open'").fetchall()
    assert rows and all(r[3] == mode.lstrip("-") and r[4] is not None for r in rows)
    venue_orders = len(ex.account("us").orders)
    if mode == "--live":  # real orders through the client; our contracts equal the venue's
        assert venue_orders > 0
        for market_id, side, qty, _, _ in rows:
            assert ex.account("us").positions[market_id].net == (qty if side == "yes" else -qty)
    else:  # paper: nothing was sent
        assert venue_orders == 0
    world.conn.close()


def test_the_venue_account_is_named_without_the_api_key_id() -> None:
    from precog.engine.kalshi_venue import account_ref_for

    ref = account_ref_for("kalshi", "https://api.elections.kalshi.com/trade-api/v2", "a1b2c3-secret-key-id")
    assert "a1b2c3-secret-key-id" not in ref and ref.startswith("kalshi:https://api.elections.kalshi.com")
    assert ref == account_ref_for("kalshi", "https://api.elections.kalshi.com/trade-api/v2", "a1b2c3-secret-key-id")
    assert ref != account_ref_for("kalshi", "https://api.elections.kalshi.com/trade-api/v2", "another-key")
