"""The in-process local exchange as a Venue (demo, tests, benchmarks). Same semantics as the HTTP path."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from precog.domain.market import Market, MarketStatus, OrderBook, PriceLevel
from precog.domain.money import ONE, ZERO, floor_cent
from precog.domain.order import Action, Fill, Order, OrderRequest, OrderStatus, OrderType, Side
from precog.domain.portfolio import Balance, Position, Settlement
from precog.engine.venue import VenueOutcomeUnknown, VenueRejected
from precog.venues.exchange import model as xm
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import Conflict, ExchangeError
from precog.venues.exchange.serialize import mark_price

_CENTS = Decimal(100)
_STATUS = {
    xm.ACTIVE: MarketStatus.OPEN, xm.INITIALIZED: MarketStatus.CLOSED, xm.INACTIVE: MarketStatus.HALTED,
    xm.CLOSED: MarketStatus.CLOSED, xm.DETERMINED: MarketStatus.CLOSED, xm.DISPUTED: MarketStatus.CLOSED,
    xm.AMENDED: MarketStatus.CLOSED, xm.FINALIZED: MarketStatus.SETTLED,
}


@lru_cache(maxsize=8192)  # a market's open/close/expiration times repeat in every snapshot of it
def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


_PRICES = tuple(Decimal(tick) / _CENTS for tick in range(xm.TICKS + 1))  # every whole-cent price, made once


def _px(tick: int) -> Decimal:
    return _PRICES[tick] if 0 <= tick <= xm.TICKS else Decimal(tick) / _CENTS


def convert_order(o: xm.Order) -> Order:
    status = {xm.RESTING: OrderStatus.RESTING, xm.EXECUTED: OrderStatus.EXECUTED,
              xm.CANCELED: OrderStatus.CANCELED}[o.status]
    yes_tick = o.yes_tick
    return Order(
        order_id=o.order_id, client_order_id=o.client_order_id, ticker=o.ticker, side=Side(o.side),
        action=Action(o.action), type=OrderType(o.type), status=status, yes_price=_px(yes_tick),
        no_price=_px(xm.TICKS - yes_tick), initial_count=Decimal(o.initial_count),
        fill_count=Decimal(o.fill_count), remaining_count=Decimal(o.remaining), taker_fees=o.taker_fees,
        maker_fees=o.maker_fees, taker_fill_cost=o.taker_fill_cost, maker_fill_cost=o.maker_fill_cost,
        created_time=_ts(o.created_ms), last_update_time=_ts(o.updated_ms), expiration_time=_ts(o.expiration_ms))


def convert_fill(f: xm.Fill) -> Fill:
    return Fill(fill_id=f.fill_id, trade_id=f.fill_id, order_id=f.order_id, ticker=f.ticker, side=Side(f.side),
                action=Action(f.action), count=Decimal(f.count), yes_price=_px(f.yes_tick),
                no_price=_px(xm.TICKS - f.yes_tick), is_taker=f.is_taker, fee=f.fee,
                client_order_id=f.client_order_id, created_time=_ts(f.created_ms))


def convert_market(m: xm.Market, top: tuple[int, int, int, int] | None = None) -> Market:
    """The exchange's market as the venue reports it; `top` (YES best tick, size, NO best tick, size) stands
    in for the book's top when the caller knows the book it is about to hold (a backtest's deferred quote)."""
    if top is None:
        yb, nb = m.book[xm.YES].best, m.book[xm.NO].best
        yq, nq = m.book[xm.YES].qty[yb], m.book[xm.NO].qty[nb]
    else:
        yb, yq, nb, nq = top
    yes_bid = _px(yb)
    yes_ask = _px(xm.TICKS - nb) if nb else ONE
    return Market(
        ticker=m.ticker, event_ticker=m.event_ticker, status=_STATUS[m.status], venue_status=m.status,
        yes_bid=yes_bid, yes_ask=yes_ask, no_bid=ONE - yes_ask, no_ask=ONE - yes_bid,
        last_price=_px(m.last_tick), title=m.title, subtitle=m.subtitle,
        yes_bid_size=Decimal(yq) if yb else None,
        yes_ask_size=Decimal(nq) if nb else None,
        volume=Decimal(m.volume), open_interest=Decimal(m.open_interest), result=m.result,
        settlement_value=m.settlement_value, open_time=_ts(m.open_ms), close_time=_ts(m.close_ms),
        expiration_time=_ts(m.expiration_ms), expected_expiration_time=_ts(m.expected_expiration_ms),
        latest_expiration_time=_ts(m.expiration_ms), settlement_ts=_ts(m.settled_ms), can_close_early=m.can_close_early,
        tick_size=Decimal("0.01"), rules_primary=m.rules_primary)


class LocalVenue:
    """Our account on an in-process Exchange. Exchange refusals become VenueRejected."""

    platform_id = "local"

    def __init__(self, exchange: Exchange, user_id: str, account_ref: str | None = None) -> None:
        self.exchange = exchange
        self.user_id = user_id
        self.account_ref = account_ref or f"local:{uuid.uuid4().hex[:12]}:{user_id}"
        # Test hook for the unknown-outcome path: when set, the next order is placed and then its answer is
        # "lost" (raises VenueOutcomeUnknown), exactly like a timeout after the venue processed it.
        self.lose_next_answer = False

    async def place_order(self, req: OrderRequest) -> Order:
        tif = req.time_in_force.value if req.time_in_force is not None else None
        count = int(req.count)
        try:
            o = self.exchange.place_order(self.user_id, req.ticker, req.side.value, req.action.value, count,
                                          req.price, type=req.type.value, time_in_force=tif,
                                          client_order_id=req.client_order_id, post_only=req.post_only,
                                          reduce_only=req.reduce_only)
        except Conflict:
            # an earlier attempt with this client_order_id landed: that order is the answer
            found = await self.find_order(req.ticker, req.client_order_id)
            if found is None:
                raise
            return found
        except ExchangeError as exc:
            raise VenueRejected(str(exc)) from exc
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise VenueOutcomeUnknown(f"answer for {req.client_order_id} lost")
        return convert_order(o)

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        with self.exchange.lock:
            o = self.exchange.account(self.user_id).by_client_id.get(client_order_id)
            return convert_order(o) if o is not None and o.ticker == ticker else None

    async def get_order(self, order_id: str) -> Order:
        with self.exchange.lock:
            return convert_order(self.exchange.get_order(self.user_id, order_id))

    async def cancel_order(self, order_id: str) -> Order | None:
        with self.exchange.lock:
            o = self.exchange.get_order(self.user_id, order_id)
            if o.status != xm.RESTING:
                return None
            o, _ = self.exchange.cancel_order(self.user_id, order_id)
            return convert_order(o)

    async def open_orders(self) -> Sequence[Order]:
        with self.exchange.lock:
            acct = self.exchange.account(self.user_id)
            return [convert_order(o) for o in acct.orders.values() if o.status == xm.RESTING]

    async def fills(self, since_ms: int | None = None) -> Sequence[Fill]:
        with self.exchange.lock:
            records = self.exchange.account(self.user_id).fills
            if since_ms is None:
                chosen = list(records)
            else:  # the history is in time order: walk back from the newest
                i = len(records)
                while i > 0 and records[i - 1][xm.R_MS] >= since_ms:
                    i -= 1
                chosen = records[i:]
            return [convert_fill(xm.fill_view(r, self.user_id)) for r in chosen]

    async def positions(self) -> Sequence[Position]:
        with self.exchange.lock:
            acct = self.exchange.account(self.user_id)
            return [Position(ticker=p.ticker, position=Decimal(p.net), realized_pnl=p.realized_pnl,
                             fees_paid=p.fees_paid, total_traded=p.total_traded,
                             resting_orders_count=p.resting_orders, last_updated=_ts(p.updated_ms))
                    for p in acct.positions.values()]

    async def balance(self) -> Balance:
        """Cash, and the positions at the mark price as the portfolio value (as GET /portfolio/balance)."""
        with self.exchange.lock:
            acct = self.exchange.account(self.user_id)
            value = ZERO
            for ticker, pos in acct.positions.items():
                if pos.held[xm.YES] or pos.held[xm.NO]:
                    mark = mark_price(self.exchange.markets[ticker])
                    value += floor_cent(mark * pos.held[xm.YES] + (ONE - mark) * pos.held[xm.NO])
            return Balance(balance=acct.balance, portfolio_value=value, updated_ts=_ts(acct.updated_ms))

    async def settlements(self) -> Sequence[Settlement]:
        with self.exchange.lock:
            acct = self.exchange.account(self.user_id)
            return [Settlement(ticker=s.ticker, event_ticker=s.event_ticker, market_result=s.market_result,
                               yes_count=Decimal(s.yes_count), no_count=Decimal(s.no_count),
                               yes_total_cost=s.yes_total_cost, no_total_cost=s.no_total_cost, revenue=s.revenue,
                               fee_cost=s.fee_cost, settled_time=_ts(s.settled_ms), value=s.value)
                    for s in acct.settlements]

    async def market(self, ticker: str) -> Market:
        with self.exchange.lock:
            return convert_market(self.exchange.market(ticker))

    async def orderbook(self, ticker: str, depth: int | None = None) -> OrderBook:
        try:
            yes, no = self.exchange.orderbook(ticker, depth or 0)
        except ExchangeError as exc:
            raise VenueRejected(str(exc)) from exc

        def levels(side: list[tuple[int, int]]) -> tuple[PriceLevel, ...]:  # lowest first -> best first
            return tuple(PriceLevel(_px(tick), Decimal(qty)) for tick, qty in reversed(side))

        return OrderBook(ticker, levels(yes), levels(no), _ts(self.exchange.now_ms()))
