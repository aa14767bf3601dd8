"""Spec 5.10: a limit entry rests at most trading.execution.limit_order_timeout_seconds (30 s). `precog run` with a
full cycle every 60 s used to cancel it only at the next full cycle (up to 60 s of resting, the entry's price
long stale); the loop now wakes at the timeout and cancels it then. A method's own execution_config
order_timeout_seconds replaces the global timeout for its entries."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from typing import Any

from precog.engine.runner import run_loop


async def _entry_life(rig: Any) -> tuple[tuple[Any, ...], list[tuple[float, str]]]:
    """A limit entry that fills 10 contracts and rests the rest, under `precog run`'s loop (a full cycle every 60 s)
    for 50 simulated seconds: its order row, and its status at the venue after each wake-up."""
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
    return entry, seen


async def test_a_resting_limit_entry_is_canceled_at_its_30_s_timeout_not_at_the_next_60_s_cycle(
        make_rig: Any) -> None:
    rig = make_rig()
    entry, seen = await _entry_life(rig)
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


async def test_a_method_s_own_order_timeout_replaces_the_global_one_for_its_entries(make_rig: Any) -> None:
    rig = make_rig()
    live = next(m for m in rig.methods if m.phase == "live")
    row = rig.conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config,"
        " execution_config, sport_config, config_hash, status) SELECT 'quick_cancel', 'v1.0', strategy_id, model_id,"
        " position_mgmt_config, risk_config, execution_config || '{\"order_timeout_seconds\": 12}', sport_config,"
        " 'test-quick-cancel', 'active' FROM methods WHERE method_id = %s RETURNING method_id",
        (live.method_id,)).fetchone()
    rig.methods = [dataclasses.replace(live, method_id=row[0], name="quick_cancel")]
    entry, seen = await _entry_life(rig)
    assert rig.exchange.get_order("us", entry[0]).status == "canceled"
    canceled = [t for t, status in seen if status == "canceled"]
    assert canceled and min(canceled) == 12  # canceled at its own timeout, not at the global 30 s
