"""An order the venue reports as `pending` (Kalshi's order status `pending`, parsed to OrderStatus.PENDING ->
our state `submitted`) can be canceled: submitted -> cancel_pending is a legal transition. The entry timeout
in `Engine._manage_entry_orders` cancels it and the engine cycle (settlement, exits, entries) goes on, however
long the venue says pending.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

from engine.conftest import make_rig  # noqa: F401 - fixture
from engine.test_orders_and_fills import _approval
from precog.domain.order import Order, OrderRequest, OrderStatus
from precog.engine.local_venue import LocalVenue
from precog.trading.executor import OrderIntent
from precog.trading.orders import OrderState


class PendingVenue(LocalVenue):
    """The local exchange, but orders are reported `pending` while `self.pending` is set (as Kalshi may report
    an order it accepted but has not yet put on the book)."""

    pending = False

    def _p(self, o: Order) -> Order:
        return dataclasses.replace(o, status=OrderStatus.PENDING) if self.pending and o.status is \
            OrderStatus.RESTING else o

    async def place_order(self, req: OrderRequest) -> Order:
        return self._p(await super().place_order(req))

    async def get_order(self, order_id: str) -> Order:
        return self._p(await super().get_order(order_id))

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        o = await super().find_order(ticker, client_order_id)
        return None if o is None else self._p(o)


async def test_entry_reported_pending_can_be_canceled(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.venue = PendingVenue(rig.exchange, "us")
    engine = rig.make_engine()
    await engine.start()
    rig.venue.pending = True
    intent = OrderIntent(market_id=rig.ticker, side="yes", action="buy", quantity=10, limit_price=Decimal("0.45"),
                         purpose="entry", decision_key="audit|pending", approval=await _approval(rig, engine, 10),
                         expires_at=rig.now() + timedelta(seconds=30))
    rec = await engine.executor.submit(intent)
    assert rec.status is OrderState.SUBMITTED  # the venue said pending
    rig.clock.advance(35)  # the entry's limit-order timeout has passed: the cycle cancels it
    error = None
    try:
        await engine.step()
    except Exception as exc:  # noqa: BLE001 - recorded for the assertion
        error = exc
    assert error is None and rec.status in (OrderState.CANCEL_PENDING, OrderState.CANCELED), (
        f"engine cycle raised {type(error).__name__}: {error}; order state {rec.status}")
