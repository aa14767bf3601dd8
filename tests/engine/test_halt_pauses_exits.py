"""HALTED stops exits too (trading_state `allows_exits`): an operator's halt holds a stop loss that triggers while
it lasts, the exit goes out once trading resumes; a close-all breaker's liquidation is the one exception (the
close-all case is `test_halt_from_another_process`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

import psycopg

from engine.conftest import FixedProbabilities, planner_engine, rig_config
from precog.engine.core import BOARD_REFRESH_SECONDS
from precog.trading.scan import board_for
from precog.trading.settings import TradingSettings


async def test_a_stop_loss_waits_for_the_end_of_a_halt(db_url: str) -> None:
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn)
    ex, quotes = world_exchange()
    now = [datetime.now(UTC)]
    engine = planner_engine(db_url, ex, lambda: now[0], probabilities=FixedProbabilities())
    await engine.start()
    await engine.step()
    held = engine.portfolio.open_positions()
    assert held
    operator = board_for(lambda: psycopg.connect(db_url, autocommit=True), TradingSettings.from_config(rig_config()))
    assert operator.trip("manual", "venue incident", by="alice", trigger_value={"manual": True}) is not None

    def sells() -> int:
        return sum(1 for o in ex.account("us").orders.values() if o.action == "sell")

    async def steps(n: int) -> None:
        for _ in range(n):
            now[0] = datetime.fromtimestamp(now[0].timestamp() + BOARD_REFRESH_SECONDS + 31, tz=UTC)
            await engine.step()

    await steps(2)
    assert engine.trading_state == "HALTED"
    # each position's side now bids 17% below its entry: past the stop loss (-15%), within the loss breakers
    for pos in held:
        ex.cancel_order("mm", quotes[pos.market_id, pos.side])
        bid = (pos.entry_price * Decimal("0.83")).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        ex.place_order("mm", pos.market_id, pos.side, "buy", 5000, bid)
    await steps(3)
    assert sells() == 0, "an exit order went out while trading was halted"
    assert engine.portfolio.open_positions() and not engine.exits.jobs
    operator.reset_many(["manual"], by="alice", notes="incident over")
    await steps(3)
    assert engine.trading_state == "ACTIVE", [b.name for b in engine.board.open_breakers()]
    assert sells() >= 1
    assert not engine.portfolio.open_positions(), "the stop losses sold the positions once trading resumed"
    engine.conn.close()
    world.conn.close()
