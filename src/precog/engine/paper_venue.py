"""Paper trading: real market data from a venue, simulated fills against its current book.

Reads (markets, order books) go to the data venue; our orders never leave the process. A buy walks the asks
of the venue's order book from the best up to its limit, a sell the bids down to its limit: each level fills at
its own price, up to the size it shows (one fill per level, like a venue); the order pays what one fill of
everything it filled would (Kalshi's fee accumulator, precog.domain.fees). Size that
paper fills took from a level is not taken again until that level changes. What is left rests
(good-till-canceled) and fills when a later book crosses it, or is canceled (immediate-or-cancel). A data venue
without depth gives the top of the book only (its best bid/ask and their sizes; no size shown, no fill).
Cash, positions, fills and settlements are kept like a venue's, so the engine reconciles with the paper
account exactly as it would with a real one.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from precog.domain.fees import FeeSchedule, order_fill_fee
from precog.domain.market import Market, MarketStatus, OrderBook, PriceLevel
from precog.domain.money import ONE, ZERO, floor_cent
from precog.domain.order import Action, Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from precog.domain.portfolio import Balance, Position, Settlement
from precog.engine.venue import DepthUnavailable, Venue, VenueRejected

log = logging.getLogger(__name__)


def _crosses(req: OrderRequest, m: Market) -> bool:
    """The top of the book reaches the order's limit (a buy: the ask at or below it; a sell: the bid at or
    above it)."""
    yes = req.side is Side.YES
    if req.action is Action.BUY:
        price = m.yes_ask if yes else m.no_ask
        return ZERO < price < ONE and price <= req.price
    price = m.yes_bid if yes else m.no_bid
    return ZERO < price < ONE and price >= req.price


def _top_of_book(m: Market) -> OrderBook:
    """The best bid of each side with the size the market shows there; a price without a size is no level."""
    yes = (PriceLevel(m.yes_bid, m.yes_bid_size),) if ZERO < m.yes_bid < ONE and m.yes_bid_size else ()
    no = (PriceLevel(ONE - m.yes_ask, m.yes_ask_size),) if ZERO < m.yes_ask < ONE and m.yes_ask_size else ()
    return OrderBook(m.ticker, yes, no)


def _mark(m: Market) -> Decimal:
    """A YES mark for the portfolio value, as the local exchange values it: the mid of a two-sided quote, else
    the last trade, else 0.50."""
    if ZERO < m.yes_bid < ONE and ZERO < m.yes_ask < ONE:
        return (m.yes_bid + m.yes_ask) / 2
    if ZERO < m.last_price < ONE:
        return m.last_price
    return Decimal("0.5")


@dataclass
class _PaperOrder:
    order_id: str
    req: OrderRequest
    remaining: int
    filled: int = 0
    fees: Decimal = ZERO
    fee_basis: Decimal = ZERO  # the sum of its fills' trade fees (precog.domain.fees.order_fill_fee)
    status: OrderStatus = OrderStatus.RESTING
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class PaperVenue:
    def __init__(self, data: Venue, initial_cash: Decimal, *, fees: FeeSchedule | None = None,
                 clock: object | None = None, platform_id: str | None = None, account_ref: str | None = None) -> None:
        self.data = data
        self.platform_id = platform_id or data.platform_id
        self._session = uuid.uuid4().hex[:12]  # order and fill ids never repeat across paper sessions
        # a named account lives on over restarts (`resume`); without a name each process has its own
        self.account_ref = account_ref or f"paper:{data.account_ref}:{self._session}"
        self.fees = fees or FeeSchedule()
        self.cash = initial_cash
        self.held: dict[str, dict[str, int]] = {}
        self.cost: dict[str, Decimal] = {}
        self.orders: dict[str, _PaperOrder] = {}
        self._fills: list[Fill] = []
        self._settlements: list[Settlement] = []
        self._seq = itertools.count(1)
        self._clock = clock
        # per ticker, what paper fills took from each level of the book: (side of the bids, price) ->
        # (size the level showed, contracts taken); the same displayed size is never filled twice
        self._taken: dict[str, dict[tuple[str, Decimal], tuple[Decimal, int]]] = {}
        self._marks: dict[str, Market] = {}  # the latest quote seen per ticker, for the portfolio value
        self._noted: set[str] = set()
        self._no_depth = False  # the data venue refused its order book for good (DepthUnavailable)

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
        self._marks[req.ticker] = market
        await self._fill([o], market)
        if o.remaining and req.time_in_force in (TimeInForce.IMMEDIATE_OR_CANCEL, TimeInForce.FILL_OR_KILL):
            o.status = OrderStatus.CANCELED
        elif not o.remaining:
            o.status = OrderStatus.EXECUTED
        return self._view(o)

    async def _fill(self, orders: list[_PaperOrder], m: Market) -> None:
        """Fill `orders` (oldest first) against the current book when the quote shows they can trade: the
        book is read once, and only when some order crosses the top of the book."""
        live = [o for o in orders if o.remaining > 0 and _crosses(o.req, m)]
        if not live:
            return
        book = await self._book(m)
        for o in live:
            self._match(o, book)

    async def _book(self, m: Market) -> OrderBook:
        """The data venue's full order book; the top of the book from `m` when the venue shows no depth."""
        fetch = getattr(self.data, "orderbook", None)
        if fetch is None or self._no_depth:
            self._note_once("no-depth", "%s shows no order book depth: paper fills take only the top of the book "
                                        "(best bid/ask and their sizes)", type(self.data).__name__)
            return _top_of_book(m)
        try:
            book: OrderBook = await fetch(m.ticker)
            return book
        except DepthUnavailable as exc:  # for good: do not ask again
            self._no_depth = True
            self._note_once("no-depth", "%s shows no order book depth (%s): paper fills take only the top of the "
                                        "book (best bid/ask and their sizes)", type(self.data).__name__, exc)
            return _top_of_book(m)
        except Exception as exc:  # noqa: BLE001 - a failed read must not lose the order; the top is real too
            self._note_once(f"error:{type(exc).__name__}", "the order book of %s could not be read (%s): paper "
                            "fills take only the top of the book until it can", m.ticker, exc)
            return _top_of_book(m)

    def _note_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._noted:
            self._noted.add(key)
            log.warning(msg, *args)

    def _taken_from(self, ticker: str, book: OrderBook) -> dict[tuple[str, Decimal], tuple[Decimal, int]]:
        """What paper fills already took from each level of this book: (size shown, contracts taken) per
        (side of the bids, price). A level whose size changed is a new level (the book moved); a level missing
        inside the price range the book shows was cleared; levels outside that range (a shallower book) keep
        what was taken from them."""
        sides = {"yes": book.yes_bids, "no": book.no_bids}
        shown = {(side, lv.price): lv.quantity for side, levels in sides.items() for lv in levels}
        worst = {side: levels[-1].price for side, levels in sides.items() if levels}
        kept = {}
        for (side, price), (size, taken) in self._taken.get(ticker, {}).items():
            if shown.get((side, price)) == size or ((side, price) not in shown and price < worst.get(side, ONE)):
                kept[(side, price)] = (size, taken)
        self._taken[ticker] = kept
        return kept

    def _match(self, o: _PaperOrder, book: OrderBook) -> None:
        """Walk the book from the best level to the limit: each level fills at its own price, up to the size it
        shows less what earlier paper fills took from it, with its own fee (one fill per level, like a venue)."""
        r = o.req
        buy = r.action is Action.BUY
        # buying YES or selling NO takes the NO bids (the YES asks); buying NO or selling YES takes the YES bids
        side = "no" if buy == (r.side is Side.YES) else "yes"
        taken = self._taken_from(r.ticker, book)
        for level in book.no_bids if side == "no" else book.yes_bids:  # best first
            if o.remaining <= 0:
                break
            price = ONE - level.price if buy else level.price  # in the order's side
            if (buy and price > r.price) or (not buy and price < r.price):
                break  # every later level is worse
            if not ZERO < price < ONE:
                continue
            _, already = taken.get((side, level.price), (level.quantity, 0))
            q = min(o.remaining, int(level.quantity) - already)
            if buy:
                q = self._affordable(q, price)
            if q <= 0:
                if buy and already < int(level.quantity):
                    break  # out of cash, not out of liquidity
                continue
            taken[(side, level.price)] = (level.quantity, already + q)
            self._book_fill(o, price, q)

    def _affordable(self, q: int, price: Decimal) -> int:
        """At most `q` contracts whose cost and fee the paper cash covers (a venue would refuse the rest)."""
        q = min(q, int(self.cash / price))
        while q > 0 and price * q + self.fees.fee(q, price) > self.cash:
            q -= 1
        return max(q, 0)

    def _book_fill(self, o: _PaperOrder, price: Decimal, q: int) -> None:
        r = o.req
        yes = r.side is Side.YES
        o.fee_basis, fee = order_fill_fee(o.fee_basis, o.fees, self.fees.trade_fee(q, price))
        pos = self.held.setdefault(r.ticker, {"yes": 0, "no": 0})
        if r.action is Action.BUY:
            self.cash -= price * q + fee
            pos[r.side.value] += q
        else:
            self.cash += price * q - fee
            pos[r.side.value] -= q
        o.remaining -= q
        o.filled += q
        o.fees += fee
        fid = f"paperfill-{self._session}-{next(self._seq):08d}"
        self._fills.append(Fill(fill_id=fid, trade_id=fid, order_id=o.order_id, ticker=r.ticker, side=r.side,
                                action=r.action, count=Decimal(q), yes_price=price if yes else ONE - price,
                                no_price=ONE - price if yes else price, is_taker=True, fee=fee,
                                client_order_id=r.client_order_id, created_time=self._now()))
        if not o.remaining:
            o.status = OrderStatus.EXECUTED

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        for o in self.orders.values():
            if o.req.client_order_id == client_order_id and o.req.ticker == ticker:
                return self._view(o)
        return None

    def resume(self, cash: Decimal, positions: Sequence[Any], orders: Sequence[Any]) -> None:
        """Carry the paper account over a restart of the process from our books (the engine calls this before it
        reconciles): the cash, the contracts of the open positions, and the working orders of the last process,
        which ended with it (a paper order lives in the process): they read as canceled, with what they filled."""
        self.cash = cash
        for p in positions:
            held = self.held.setdefault(p.market_id, {"yes": 0, "no": 0})
            held[p.side] += int(p.quantity)
        for rec in orders:
            if rec.venue_order_id is None or rec.venue_order_id in self.orders:
                continue
            req = OrderRequest(ticker=rec.market_id, side=Side(rec.side), action=Action(rec.action),
                               count=Decimal(rec.quantity), price=rec.limit_price, client_order_id=rec.client_order_id)
            self.orders[rec.venue_order_id] = _PaperOrder(rec.venue_order_id, req, rec.quantity - rec.filled_quantity,
                                                          filled=rec.filled_quantity, fees=rec.fees,
                                                          status=OrderStatus.CANCELED)

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
        """Paper cash, and the contracts held at the latest quote's mark as the portfolio value."""
        value = ZERO
        for ticker, h in self.held.items():
            m = self._marks.get(ticker)
            if m is not None and (h["yes"] or h["no"]):
                mark = _mark(m)
                value += floor_cent(mark * h["yes"] + (ONE - mark) * h["no"])
        return Balance(balance=self.cash, portfolio_value=value, updated_ts=self._now())

    async def settlements(self) -> Sequence[Settlement]:
        return list(self._settlements)

    async def market(self, ticker: str) -> Market:
        m = await self.data.market(ticker)
        self._marks[ticker] = m
        # resting paper orders fill when the book comes to them
        await self._fill([o for o in self.orders.values() if o.status is OrderStatus.RESTING
                          and o.req.ticker == ticker], m)
        if m.status is MarketStatus.SETTLED and m.settlement_value is not None:
            self._settle(ticker, m)
        return m

    async def orderbook(self, ticker: str, depth: int | None = None) -> OrderBook:
        """The data venue's book (paper orders are not in it)."""
        fetch = getattr(self.data, "orderbook", None)
        if fetch is None:
            return _top_of_book(await self.data.market(ticker))
        book: OrderBook = await fetch(ticker, depth)
        return book

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
