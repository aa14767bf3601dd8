"""Spec 5.10: a limit entry rests at most trading.execution.limit_order_timeout_seconds (30 s). `precog run` with a
full cycle every 60 s used to cancel it only at the next full cycle (up to 60 s of resting, the entry's price
long stale); the loop now wakes at the timeout and cancels it then."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from precog.engine.runner import run_loop


async def test_a_resting_limit_entry_is_canceled_at_its_30_s_timeout_not_at_the_next_60_s_cycle(
        make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", None)
    # YES ask 0.50 for only 10 contracts, then 0.52: the entry (a limit at 0.50) fills 10 and the rest rests
    asks = [rig.exchange.place_order("mm", rig.ticker, "no", "buy", 10, Decimal("0.50")),
            rig.exchange.place_order("mm", rig.ticker, "no", "buy", 2000, Decimal("0.48"))]
    rig.mm_orders[rig.ticker].extend(o.order_id for o in asks)
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()

    def sim_seconds() -> float:
        return rig.clock.now_ms() / 1000

    start = sim_seconds()
    seen: list[tuple[float, str]] = []  # (seconds since start, the entry's status at the venue) after each wake-up

    async def sim_sleep(stop: asyncio.Event, seconds: float) -> None:
        rows = rig.rows("SELECT venue_order_id FROM orders WHERE purpose = 'entry' ORDER BY id")
        if rows:
            seen.append((sim_seconds() - start, rig.exchange.get_order("us", rows[0][0]).status))
        rig.clock.advance(seconds)
        rig.exchange.tick()

    await run_loop(engine, interval_s=60, venue_label="test", duration_s=50, monotonic=sim_seconds,
                   sleep=sim_sleep)
    (entry,) = rig.rows("SELECT venue_order_id, limit_price, quantity, filled_quantity, order_type, expires_at,"
                        " created_at FROM orders WHERE purpose = 'entry'")
    assert entry[1] == Decimal("0.50") and entry[4] == "limit" and entry[3] == 10 and entry[2] > 10
    assert rig.exchange.get_order("us", entry[0]).status == "canceled"
    resting = [t for t, status in seen if status == "resting"]
    canceled = [t for t, status in seen if status == "canceled"]
    assert resting and max(resting) < 30  # it rests its 30 s ...
    assert canceled and min(canceled) == 30  # ... and is canceled at the timeout, not at the 60 s cycle
    reasons = rig.rows("SELECT e.reason FROM order_events e JOIN orders o ON o.id = e.order_id"
                       " WHERE o.purpose = 'entry' AND e.to_status = 'cancel_pending'")
    assert reasons == [("entry limit order timed out",)]
    assert len(rig.open_positions()) == 1 and rig.open_positions()[0].quantity == 10
