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
    from trading.trading_dbkit import BUF, EVENT, KC, create_testing_method, seed_world

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn)
    ex = Exchange()
    ex.create_series("KXNFLGAME", "NFL game")
    ex.create_event(EVENT, "KXNFLGAME", "BUF at KC")
    for ticker, bid, no_bid in ((KC, "0.50", "0.48"), (BUF, "0.46", "0.53")):
        ex.create_market(ticker, EVENT, title=ticker)
    ex.create_account("us", Decimal("10000"))
    ex.create_account("mm", Decimal("1000000"))
    for ticker, bid, no_bid in ((KC, "0.50", "0.48"), (BUF, "0.46", "0.53")):
        ex.place_order("mm", ticker, "yes", "buy", 5000, Decimal(bid))
        ex.place_order("mm", ticker, "no", "buy", 5000, Decimal(no_bid))
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
