"""An exit job follows its order through a database reconnect (the executor reloads its open orders as new records).

1. The connection dies while an exit attempt is being sent: the venue took the order, the database never heard
   its answer, and `submit` raised before the job held the record. After the reconnect the reconciliation finds
   the order at the venue (by client_order_id), but the job used to send its next attempt beside it: two sells
   working for one stage (the stage sold twice over if both fill). The job now takes the attempt it was sending
   from the executor and waits for it like any attempt.
2. The connection dies while an attempt rests; it fills in part meanwhile. The reconciliation brings the
   executor's reloaded record to the venue's state; the job used to refresh its own, older object and store the
   same transition a second time (the order's stored history no longer a path through the state machine). The
   job now works on the executor's current record.

The connection is cut for real (pg_terminate_backend from another session); the engine reconnects on its own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.venues.exchange.engine import ExchangeEvent


async def _position_at_first_stage(rig: Any) -> tuple[Any, int]:
    await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    rig.probs.p[rig.ticker] = Decimal("0.95")
    return pos, pos.quantity * 50 // 100


def _our_sells(rig: Any) -> list[Any]:
    return [o for o in rig.exchange.account("us").orders.values() if o.action == "sell"]


async def test_attempt_sent_while_the_database_died_is_not_sent_twice(make_rig: Any, db_url: str) -> None:  # noqa: F811
    rig = make_rig()
    pos, stage_qty = await _position_at_first_stage(rig)
    admin = psycopg.connect(db_url, autocommit=True)
    engine_pid = rig.engine.conn.info.backend_pid
    cut: list[str] = []

    def cut_the_database(event: ExchangeEvent) -> None:  # the moment the venue takes our first sell
        o = event.data.get("order")
        if event.kind == "order" and event.data.get("user_id") == "us" and o.action == "sell" and not cut:
            cut.append(o.client_order_id)
            admin.execute("SELECT pg_terminate_backend(%s)", (engine_pid,))

    rig.exchange.add_listener(cut_the_database)
    rig.quote("0.58", "0.59")  # +16 %: first_target; its first attempt rests at the mid, 0.59
    with pytest.raises(psycopg.OperationalError):
        await rig.run_until(lambda: False, max_steps=10)
    assert len(cut) == 1 and len(_our_sells(rig)) == 1
    for _ in range(3):  # reconnect and go on, 15 s: within the attempt's 30 s timeout
        await rig.step()
    assert rig.engine.conn.info.backend_pid != engine_pid
    sells = _our_sells(rig)
    assert len(sells) == 1, (
        f"{len(sells)} sell orders for one stage: " + ", ".join(f"{o.initial_count} @ {o.tick} {o.status}" for o in sells))
    await rig.run_until(lambda: "first_target" in rig.engine.portfolio.get(pos.position_id).executed_stages)
    for _ in range(6):
        await rig.step()
    assert sum(o.fill_count for o in _our_sells(rig)) == stage_qty
    assert rig.venue_position() == pos.quantity - stage_qty
    sold = admin.execute("SELECT sum(quantity_exited) FROM position_exits WHERE position_id = %s "
                         "AND partial_stage = 'first_target'", (pos.position_id,)).fetchone()[0]
    assert sold == stage_qty
    admin.close()


async def test_job_works_on_the_reloaded_order_record(make_rig: Any, db_url: str) -> None:  # noqa: F811
    rig = make_rig()
    pos, stage_qty = await _position_at_first_stage(rig)
    rig.quote("0.58", "0.61")  # the attempt rests at the mid, 0.60: the best offer
    await rig.run_until(lambda: _our_sells(rig))
    job = rig.engine.exits.jobs[pos.position_id]
    cid = job.order.client_order_id
    admin = psycopg.connect(db_url, autocommit=True)
    admin.execute("SELECT pg_terminate_backend(%s)", (rig.engine.conn.info.backend_pid,))
    # while the engine is cut off, a buyer takes 40 of the resting sell
    rig.exchange.create_account("buyer", Decimal("1000"))
    rig.exchange.place_order("buyer", rig.ticker, "yes", "buy", 40, Decimal("0.60"))
    assert _our_sells(rig)[0].fill_count == 40
    with pytest.raises(psycopg.OperationalError):  # the cycle that finds the connection gone
        await rig.step()
    await rig.step()  # reconnects, reconciles, steps the exit job
    events = admin.execute(
        "SELECT e.from_status, e.to_status, e.filled_quantity FROM order_events e JOIN orders o ON o.id = e.order_id "
        "WHERE o.client_order_id = %s ORDER BY e.event_id", (cid,)).fetchall()
    assert events == [(None, "created", 0), ("created", "submitted", 0), ("submitted", "resting", 0),
                      ("resting", "partially_filled", 40)], events
    assert rig.engine.exits.jobs[pos.position_id].order is rig.engine.executor.open[cid]
    await rig.run_until(lambda: "first_target" in rig.engine.portfolio.get(pos.position_id).executed_stages)
    assert rig.venue_position() == pos.quantity - stage_qty
    admin.close()
