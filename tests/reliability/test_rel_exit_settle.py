"""A market settles while our exit order rests: the position is settled at the settlement value, the resting
exit is closed in our books (the venue cancelled it), and cash/contracts equal the exchange's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from precog.reliability import tally

CASH = Decimal("10000")


async def test_rel_market_settles_while_an_exit_order_rests(make_rig: Any) -> None:
    rig = make_rig()
    engine = await rig.engine_with_position()
    pos = rig.open_positions()[0]
    qty, cost = pos.quantity, pos.cost_basis  # (the state object is updated in place later)
    rig.quote(None, "0.50")  # nobody bids: a sell cannot fill, the exit order rests
    rig.probs.p[rig.ticker] = Decimal("0.20")  # the edge is gone -> exit

    def exit_resting() -> bool:
        return any(o.purpose == "exit" and o.is_open for o in engine.executor.open.values())

    await rig.run_until(exit_resting, max_steps=20)
    venue_resting = [o for o in rig.exchange.account("us").orders.values() if o.status == "resting"]
    assert venue_resting, "the exit order should be resting at the venue"
    rig.exchange.determine_market(rig.ticker, Decimal("1"))  # settles now (no timer)
    await rig.run_until(lambda: not rig.open_positions(), max_steps=6)

    final = engine.portfolio.get(pos.position_id)
    assert final is not None and final.status == "settled" and final.exit_reason == "settlement"
    assert final.realized_pnl == qty * Decimal("1") - cost
    # no order of ours is left open, here or there
    assert not [o for o in rig.exchange.account("us").orders.values() if o.status == "resting"]
    open_rows = rig.rows("SELECT client_order_id, status FROM orders WHERE status NOT IN "
                         "('filled', 'canceled', 'rejected')")
    assert open_rows == []
    assert CASH + engine.our_cash_delta() == rig.exchange.account("us").balance
    assert rig.venue_position() == 0
    tally.record("venue: market settled while an exit order rests", 1,
                 "settlement closed the position at the settlement value; the resting exit was cancelled and "
                 "closed in our books; cash equals the exchange's")
