"""`precog halt`, `precog breakers trip` and the dashboard write breakers to the database from another process: a
running `precog run` engine (whose breaker board is the database's) takes them within seconds — it stops entering,
a close-all breaker closes every position — and takes a resume back the same way, without a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from engine.conftest import FixedProbabilities, planner_engine, rig_config
from precog.engine.core import BOARD_REFRESH_SECONDS
from precog.trading.scan import board_for
from precog.trading.settings import TradingSettings


async def test_a_halt_and_a_resume_by_another_process_reach_the_running_engine(db_url: str) -> None:
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn)
    ex, _ = world_exchange()
    cfg = rig_config()
    now = [datetime.now(UTC)]
    engine = planner_engine(db_url, ex, lambda: now[0], probabilities=FixedProbabilities())
    conn = engine.conn
    await engine.start()
    await engine.step()
    assert engine.trading_state == "ACTIVE"

    def operator_board() -> object:  # what `precog halt` / `precog resume` build: a board of its own
        return board_for(lambda: psycopg.connect(db_url, autocommit=True), TradingSettings.from_config(cfg))

    operator = operator_board()
    assert operator.trip("manual", "venue incident", by="alice", trigger_value={"manual": True}) is not None
    sent_before = len(ex.account("us").orders)
    for _ in range(2):  # within the refresh interval of the engine's clock
        now[0] = datetime.fromtimestamp(now[0].timestamp() + BOARD_REFRESH_SECONDS, tz=UTC)
        await engine.step()
    assert engine.trading_state == "HALTED"
    engine._last_scan = None  # a scan is due: the halt must stop its entries
    await engine.step()
    assert len(ex.account("us").orders) == sent_before
    assert engine.portfolio.open_positions(), "a manual halt stops entries; it does not close positions"

    # a close-all breaker tripped elsewhere (`precog breakers trip daily_loss_limit`) closes every position
    assert operator.trip("daily_loss_limit", "loss reported by another process") is not None
    for _ in range(4):
        now[0] = datetime.fromtimestamp(now[0].timestamp() + BOARD_REFRESH_SECONDS, tz=UTC)
        await engine.step()
    assert not engine.portfolio.open_positions()
    assert all(p.net == 0 for p in ex.account("us").positions.values())

    resumed = operator_board()
    resumed.reset_many(["manual", "daily_loss_limit"], by="alice", notes="incident over")
    for _ in range(2):
        now[0] = datetime.fromtimestamp(now[0].timestamp() + BOARD_REFRESH_SECONDS, tz=UTC)
        await engine.step()
    assert engine.trading_state == "ACTIVE"
    # the stored reason says why trading resumed (it read "breaker board: " with nothing after it)
    reason = conn.execute("SELECT state_reason FROM engine_runs WHERE run_id = %s", (engine.run_id,)).fetchone()
    assert reason == ("breaker board: every breaker is closed",)
    conn.close()
    world.conn.close()
