"""An exit order that reached the venue but whose answer could not be read (the venue accepted it; the 201
body does not parse -> KalshiVenue raises KalshiSchemaError) stays with its exit job: only a refusal proves
nothing was created, so the order's outcome is unknown and it is found by its client_order_id. No second exit
order is sent for the same contracts, and no order rests at the venue untracked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import make_rig  # noqa: F401 - fixture
from precog.domain.order import Order, OrderRequest
from precog.engine.local_venue import LocalVenue
from precog.venues.kalshi.errors import KalshiSchemaError


class GarbledAnswerVenue(LocalVenue):
    """The local exchange; while `garble_sells` is set, a sell order is placed and then its answer is
    unreadable (as KalshiVenue raises when the create response fails to parse)."""

    garble_sells = 0

    async def place_order(self, req: OrderRequest) -> Order:
        o = await super().place_order(req)
        if self.garble_sells and req.action.value == "sell":
            self.garble_sells -= 1
            raise KalshiSchemaError("order.status", "is missing", kind="order")
        return o


async def test_exit_with_unreadable_answer_is_tracked_not_sent_again(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    rig.venue = GarbledAnswerVenue(rig.exchange, "us")
    engine = await rig.engine_with_position()  # noqa: F841 - the engine trades on through rig.step()
    held = rig.venue_position()
    assert held > 0
    rig.venue.garble_sells = 1
    rig.probs.p[rig.ticker] = Decimal("0.50")  # early_exit: a LOW limit sell at the ask, resting
    errors: list[str] = []
    for _ in range(12):
        try:
            await rig.step()
        except Exception as exc:  # noqa: BLE001 - the run loop logs it and goes on (engine_step_failed)
            errors.append(f"{type(exc).__name__}: {exc}")
    assert errors == [], (
        "an unreadable answer leaves the order's outcome unknown; it is looked up, not a failure")
    acct = rig.exchange.account("us")
    sells = [o for o in acct.orders.values() if o.action == "sell"]
    assert len(sells) == 1 and sells[0].status == "resting", [(o.status, o.remaining) for o in sells]
    tracked = {r.venue_order_id for r in rig.engine.executor.open.values()}
    assert sells[0].order_id in tracked, "the exit order is followed by its job, not orphaned"
    # a buyer comes along: the one exit order trades and the position closes, in our books as at the venue
    rig.exchange.create_account("buyer", Decimal("100000"))
    rig.exchange.place_order("buyer", rig.ticker, "yes", "buy", 2000, Decimal("0.60"))
    for _ in range(3):
        await rig.step()
    assert [o.action for o in acct.orders.values()].count("sell") == 1, "no second exit order was sent"
    assert rig.venue_position() == 0 and not rig.open_positions(), (
        rig.venue_position(), rig.open_positions())
