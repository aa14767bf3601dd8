"""Paper trading: real market data from a venue, simulated fills against its current book.

Reads (markets) go to the data venue; our orders never leave the process. A buy fills at the ask up to the
ask size shown, a sell at the bid up to the bid size, at prices no worse than the limit; what is left rests
(good-till-canceled) and fills when a later quote crosses it, or is canceled (immediate-or-cancel). Fees are
the taker fees of the venue's schedule. Cash, positions, fills and settlements are kept like a venue's, so
the engine reconciles with the paper account exactly as it would with a real one.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.domain.money import ONE, ZERO, floor_cent
from precog.domain.order import Action, Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from precog.domain.portfolio import Balance, Position, Settlement
from precog.engine.venue import Venue, VenueRejected


@dataclass
class _PaperOrder:
    order_id: str
    req: OrderRequest
    remaining: int
    filled: int = 0
    fees: Decimal = ZERO
    status: OrderStatus = OrderStatus.RESTING
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class PaperVenue:
    def __init__(self, data: Venue, initial_cash: Decimal, *, fees: FeeSchedule | None = None,
                 clock: object | None = None, platform_id: str | None = None) -> None:
        self.data = data
        self.platform_id = platform_id or data.platform_id
        self._session = uuid.uuid4().hex[:12]  # order and fill ids never repeat across paper accounts
        self.account_ref = f"paper:{data.account_ref}:{self._session}"
        self.fees = fees or FeeSchedule()
        self.cash = initial_cash
        self.held: dict[str, dict[str, int]] = {}
        self.cost: dict[str, Decimal] = {}
        self.orders: dict[str, _PaperOrder] = {}
        self._fills: list[Fill] = []
        self._settlements: list[Settlement] = []
        self._seq = itertools.count(1)
        self._clock = clock
        # liquidity already taken from the quote currently shown, per ticker: (quote, taken at ask, taken at bid);
        # the same displayed size is never filled twice
        self._taken: dict[str, tuple[tuple[object, ...], int, int]] = {}

    def _now(self) -> datetime:
        if callable(self._clock):
            return self._clock()  # type: ignore[no-any-return]
        return datetime.now(UTC)

    def _view(self, o: _PaperOrder) -> Order:
        r = o.req
        return Order(order_id=o.order_id, client_order_id=r.client_order_id, ticker=r.ticker, side=r.side,
                     action=r.action, type=OrderType.LIMIT, status=o.status, yes_price=r.yes_price,
                     no_price=ONE - r.yes_price, initial_count=r.count, fill_count=Decimal(o.filled),
                     remaining_count=Decimal(o.remaining), taker_fees=o.fees, created_time=o.created)

    async def place_order(self, req: OrderRequest) -> Order:
        for o in self.orders.values():
            if o.req.client_order_id == req.client_order_id:
                return self._view(o)
        market = await self.data.market(req.ticker)
        if not market.is_tradable:
            raise VenueRejected(f"market {req.ticker} is {market.venue_status}; orders are accepted only while open")
        count = int(req.count)
        if req.action is Action.BUY and req.price * count > self.cash:
            raise VenueRejected(f"insufficient balance: ${req.price * count} needed, ${self.cash} available")
        if req.action is Action.SELL and self.held.get(req.ticker, {}).get(req.side.value, 0) < count:
            raise VenueRejected("paper trading does not sell contracts it does not hold")
        o = _PaperOrder(f"paper-{self._session}-{next(self._seq):08d}", req, count, created=self._now())
        self.orders[o.order_id] = o
        self._match(o, market)
        if o.remaining and req.time_in_force in (TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.FILL_OR_KILL):
            o.status = OrderStatus.CANCELED
        elif not o.remaining:
            o.status = OrderStatus.EXECUTED
        return self._view(o)

    def _match(self, o: _PaperOrder, m: Market) -> None:
        """Fill against the top of the current book (the size shown there, less what earlier paper fills took
        from the same quote), never worse than the limit."""
        r = o.req
        yes = r.side is Side.YES
        # buying YES or selling NO takes the YES ask; buying NO or selling YES takes the YES bid
        takes_ask = (r.action is Action.BUY) == yes
        if r.action is Action.BUY:
            price = m.yes_ask if yes else m.no_ask
            ok = ZERO < price < ONE and price <= r.price
        else:
            price = m.yes_bid if yes else m.no_bid
            ok = ZERO < price < ONE and price >= r.price
        size = m.yes_ask_size if takes_ask else m.yes_bid_size
        if not ok or o.remaining <= 0:
            return
        quote = (m.yes_bid, m.yes_ask, m.yes_bid_size, m.yes_ask_size, m.volume, m.last_price)
        seen, at_ask, at_bid = self._taken.get(r.ticker, (None, 0, 0))
        if seen != quote:
            at_ask = at_bid = 0
        shown = int(size) if size is not None else o.remaining
        q = min(o.remaining, shown - (at_ask if takes_ask else at_bid))
        if q <= 0:
            return
        self._taken[r.ticker] = (quote, at_ask + q, at_bid) if takes_ask else (quote, at_ask, at_bid + q)
        fee = self.fees.fee(q, price)
        side = r.side.value
        pos = self.held.setdefault(r.ticker, {"yes": 0, "no": 0})
        if r.action is Action.BUY:
            self.cash -= price * q + fee
            pos[side] += q
        else:
            self.cash += price * q - fee
            pos[side] -= q
        o.remaining -= q
        o.filled += q
        o.fees += fee
        now = self._now()
        fid = f"paperfill-{self._session}-{next(self._seq):08d}"
        self._fills.append(Fill(fill_id=fid, trade_id=fid, order_id=o.order_id, ticker=r.ticker, side=r.side,
                                action=r.action, count=Decimal(q), yes_price=price if yes else ONE - price,
                                no_price=ONE - price if yes else price, is_taker=True, fee=fee,
                                client_order_id=r.client_order_id, created_time=now))
        if not o.remaining:
            o.status = OrderStatus.EXECUTED

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        for o in self.orders.values():
            if o.req.client_order_id == client_order_id and o.req.ticker == ticker:
                return self._view(o)
        return None

    async def get_order(self, order_id: str) -> Order:
        return self._view(self.orders[order_id])

    async def cancel_order(self, order_id: str) -> Order | None:
        o = self.orders[order_id]
        if o.status is not OrderStatus.RESTING:
            return None
        o.status = OrderStatus.CANCELED
        return self._view(o)

    async def open_orders(self) -> Sequence[Order]:
        return [self._view(o) for o in self.orders.values() if o.status is OrderStatus.RESTING]

    async def fills(self, since_ms: int | None = None) -> Sequence[Fill]:
        if since_ms is None:
            return list(self._fills)
        return [f for f in self._fills if f.created_time is not None
                and int(f.created_time.timestamp() * 1000) >= since_ms]

    async def positions(self) -> Sequence[Position]:
        return [Position(ticker=t, position=Decimal(h["yes"] - h["no"])) for t, h in self.held.items()
                if h["yes"] or h["no"]]

    async def balance(self) -> Balance:
        return Balance(balance=self.cash)

    async def settlements(self) -> Sequence[Settlement]:
        return list(self._settlements)

    async def market(self, ticker: str) -> Market:
        m = await self.data.market(ticker)
        for o in self.orders.values():  # resting paper orders fill when the book comes to them
            if o.status is OrderStatus.RESTING and o.req.ticker == ticker:
                self._match(o, m)
        if m.status is MarketStatus.SETTLED and m.settlement_value is not None:
            self._settle(ticker, m)
        return m

    def _settle(self, ticker: str, m: Market) -> None:
        h = self.held.get(ticker)
        if not h or (h["yes"] == 0 and h["no"] == 0):
            return
        value = m.settlement_value
        assert value is not None
        revenue = floor_cent(value * h["yes"]) + floor_cent((ONE - value) * h["no"])
        self.cash += revenue
        self._settlements.append(Settlement(ticker=ticker, event_ticker=m.event_ticker, market_result=m.result,
                                            yes_count=Decimal(h["yes"]), no_count=Decimal(h["no"]),
                                            yes_total_cost=ZERO, no_total_cost=ZERO, revenue=revenue,
                                            fee_cost=ZERO, settled_time=self._now(), value=value))
        h["yes"] = h["no"] = 0
        for o in self.orders.values():
            if o.status is OrderStatus.RESTING and o.req.ticker == ticker:
                o.status = OrderStatus.CANCELED
