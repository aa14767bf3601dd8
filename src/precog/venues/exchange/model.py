"""State objects of the local exchange: series, events, markets, books, orders, accounts, fills.

Prices inside the engine are integer ticks of one cent (1..99) on the order's *book side*: every order is
a bid for YES or a bid for NO (a NO bid at p is a YES ask at 1 - p), so one array per side is the whole
book. Ticks are exact integers, never floats; every money amount (balances, costs, fees) is a Decimal.
Contract counts are whole numbers (Kalshi's fractional trading is off on these markets).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from precog.domain.fees import FeeSchedule
from precog.domain.money import ZERO

TICKS = 100  # ticks per dollar: prices are whole cents
YES, NO = 0, 1
SIDE_NAMES = ("yes", "no")
SIDE_INDEX = {"yes": YES, "no": NO}
PRICES: tuple[Decimal, ...] = tuple(Decimal(t) / TICKS for t in range(TICKS + 1))

# Market lifecycle, in Kalshi's response vocabulary (OpenAPI v3.13 `Market.status`).
INITIALIZED, INACTIVE, ACTIVE, CLOSED, DETERMINED, DISPUTED, AMENDED, FINALIZED = (
    "initialized", "inactive", "active", "closed", "determined", "disputed", "amended", "finalized")
MARKET_STATUSES = (INITIALIZED, INACTIVE, ACTIVE, CLOSED, DETERMINED, DISPUTED, AMENDED, FINALIZED)
# The `status` query filter uses an older vocabulary; both are accepted wherever a filter is given.
STATUS_FILTERS: dict[str, frozenset[str]] = {
    "unopened": frozenset({INITIALIZED}),
    "open": frozenset({ACTIVE}),
    "paused": frozenset({INACTIVE}),
    "closed": frozenset({CLOSED}),
    "settled": frozenset({DETERMINED, DISPUTED, AMENDED, FINALIZED}),
    **{s: frozenset({s}) for s in MARKET_STATUSES},
}

RESTING, CANCELED, EXECUTED = "resting", "canceled", "executed"


@dataclass(slots=True)
class Series:
    ticker: str
    title: str
    category: str
    frequency: str
    tags: list[str]
    fee_type: str
    fees: FeeSchedule
    settlement_sources: list[dict[str, str]]
    contract_url: str
    contract_terms_url: str
    created_ms: int
    updated_ms: int


@dataclass(slots=True)
class Event:
    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str
    category: str
    mutually_exclusive: bool
    strike_date_ms: int | None
    updated_ms: int
    markets: list[str] = field(default_factory=list)


class BookSide:
    """Bids for one side of one market: a FIFO queue and an aggregate size per one-cent price level."""

    __slots__ = ("levels", "qty", "best")

    def __init__(self) -> None:
        self.levels: list[deque[Order]] = [deque() for _ in range(TICKS + 1)]
        self.qty: list[int] = [0] * (TICKS + 1)
        self.best = 0  # highest tick with resting size; 0 = empty

    def add(self, order: Order) -> None:
        t = order.tick
        self.levels[t].append(order)
        self.qty[t] += order.remaining
        if t > self.best:
            self.best = t

    def reduce(self, tick: int, amount: int) -> None:
        """Take `amount` contracts off the level's aggregate (the order objects are updated by the caller)."""
        q = self.qty[tick] - amount
        self.qty[tick] = q
        if q == 0:
            self.levels[tick].clear()  # only dead (cancelled/filled) entries remain
            if tick == self.best:
                b = tick - 1
                qty = self.qty
                while b > 0 and qty[b] == 0:
                    b -= 1
                self.best = b

    def depth(self) -> list[tuple[int, int]]:
        """(tick, size) from the lowest to the highest price (Kalshi's REST order: best bid last)."""
        qty = self.qty
        return [(t, qty[t]) for t in range(1, TICKS) if qty[t]]


class Order:
    __slots__ = (
        "order_id", "user_id", "client_order_id", "ticker", "side", "action", "type", "bside", "tick",
        "initial_count", "remaining", "fill_count", "status", "created_ms", "updated_ms", "expiration_ms",
        "taker_fees", "maker_fees", "fee_basis", "taker_fill_cost", "maker_fill_cost", "hold", "unit_hold",
        "close_reserved", "time_in_force", "post_only", "stp", "order_group_id", "cancel_on_pause",
        "reduce_only", "subaccount",
    )

    def __init__(self, order_id: str, user_id: str, client_order_id: str, ticker: str, side: str, action: str,
                 otype: str, bside: int, tick: int, count: int, now_ms: int,
                 time_in_force: str = "good_till_canceled", post_only: bool = False, stp: str = "taker_at_cross",
                 expiration_ms: int | None = None, order_group_id: str | None = None,
                 cancel_on_pause: bool = False, reduce_only: bool = False, subaccount: int = 0,
                 unit_hold: Decimal = ZERO, hold: Decimal = ZERO, close_reserved: int = 0) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.client_order_id = client_order_id
        self.ticker = ticker
        self.side = side  # as requested: yes / no
        self.action = action  # as requested: buy / sell
        self.type = otype
        self.bside = bside  # the book side this order bids on (YES or NO)
        self.tick = tick  # bid price on that side, in cents
        self.initial_count = count
        self.remaining = count
        self.fill_count = 0
        self.status = RESTING
        self.created_ms = now_ms
        self.updated_ms = now_ms
        self.expiration_ms = expiration_ms
        self.taker_fees = ZERO
        self.maker_fees = ZERO
        self.fee_basis = ZERO  # sum of this order's trade fees so far (precog.domain.fees.order_fill_fee)
        self.taker_fill_cost = ZERO
        self.maker_fill_cost = ZERO
        self.hold = hold  # cash set aside for the position-opening part of the remaining contracts
        self.unit_hold = unit_hold  # hold per opening contract: limit price + per-contract taker fee bound
        self.close_reserved = close_reserved  # remaining contracts closing an existing opposite position
        self.time_in_force = time_in_force
        self.post_only = post_only
        self.stp = stp
        self.order_group_id = order_group_id
        self.cancel_on_pause = cancel_on_pause
        self.reduce_only = reduce_only
        self.subaccount = subaccount

    @property
    def yes_tick(self) -> int:
        return self.tick if self.bside == YES else TICKS - self.tick

    def copy(self) -> Order:
        twin = Order.__new__(Order)
        for name in Order.__slots__:
            setattr(twin, name, getattr(self, name))
        return twin


class Position:
    """One account's holding in one market. YES and NO are kept apart while some of them are promised to
    resting closing orders; everything else nets immediately (a YES+NO pair is redeemed for $1)."""

    __slots__ = ("ticker", "event_ticker", "held", "reserved", "cost", "realized_pnl", "fees_paid",
                 "total_traded", "resting_orders", "updated_ms", "settled")

    def __init__(self, ticker: str, event_ticker: str, now_ms: int) -> None:
        self.ticker = ticker
        self.event_ticker = event_ticker
        self.held = [0, 0]  # contracts held, YES and NO
        self.reserved = [0, 0]  # of those, promised to resting orders that close them
        self.cost = [ZERO, ZERO]  # cost basis of the held contracts
        self.realized_pnl = ZERO
        self.fees_paid = ZERO
        self.total_traded = ZERO
        self.resting_orders = 0
        self.updated_ms = now_ms
        self.settled = False

    @property
    def net(self) -> int:
        """Kalshi's signed position: positive = YES contracts, negative = NO contracts."""
        return self.held[YES] - self.held[NO]


# A trade is stored once, as a plain tuple of atoms (ints, strs, Decimals), in the market's, the exchange's
# and both accounts' history. CPython's collector stops tracking such tuples, which keeps garbage
# collection flat as history grows (one object per trade and per fill cost ~40% of matching time).
# `Trade` and `Fill` below are views built on read.
(R_SEQ, R_ID, R_TICKER, R_COUNT, R_YES_TICK, R_TAKER_SIDE, R_MS,
 R_T_ORDER, R_T_USER, R_T_CID, R_T_SIDE, R_T_ACTION, R_T_FEE, R_T_POS,
 R_M_ORDER, R_M_USER, R_M_CID, R_M_SIDE, R_M_ACTION, R_M_FEE, R_M_POS) = range(21)
TradeRecord = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Trade:
    seq: int
    trade_id: str
    ticker: str
    count: int
    yes_tick: int
    taker_side: str  # the book side the taker bought: yes / no
    created_ms: int


@dataclass(frozen=True, slots=True)
class Fill:
    seq: int
    fill_id: str
    order_id: str
    client_order_id: str
    user_id: str
    ticker: str
    side: str
    action: str
    count: int
    yes_tick: int
    is_taker: bool
    fee: Decimal
    created_ms: int
    post_position: int


def trade_view(r: TradeRecord) -> Trade:
    return Trade(r[R_SEQ], r[R_ID], r[R_TICKER], r[R_COUNT], r[R_YES_TICK], r[R_TAKER_SIDE], r[R_MS])


def fill_view(r: TradeRecord, user_id: str) -> Fill:
    """`user_id`'s side of a trade (self-trades are prevented, so it is one side or the other)."""
    if r[R_T_USER] == user_id:
        return Fill(r[R_SEQ], r[R_ID], r[R_T_ORDER], r[R_T_CID], user_id, r[R_TICKER], r[R_T_SIDE], r[R_T_ACTION],
                    r[R_COUNT], r[R_YES_TICK], True, r[R_T_FEE], r[R_MS], r[R_T_POS])
    return Fill(r[R_SEQ], r[R_ID], r[R_M_ORDER], r[R_M_CID], user_id, r[R_TICKER], r[R_M_SIDE], r[R_M_ACTION],
                r[R_COUNT], r[R_YES_TICK], False, r[R_M_FEE], r[R_MS], r[R_M_POS])


@dataclass(slots=True)
class Settlement:
    seq: int
    ticker: str
    event_ticker: str
    market_result: str
    yes_count: int
    no_count: int
    yes_total_cost: Decimal
    no_total_cost: Decimal
    revenue: Decimal
    value: Decimal
    fee_cost: Decimal
    settled_ms: int


@dataclass(slots=True)
class Account:
    user_id: str
    balance: Decimal = ZERO  # available cash (excludes holds of resting orders)
    deposits: Decimal = ZERO
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    by_client_id: dict[str, Order] = field(default_factory=dict)
    fills: list[TradeRecord] = field(default_factory=list)  # this account's trades
    settlements: list[Settlement] = field(default_factory=list)
    updated_ms: int = 0


class Candle:
    """One minute of quotes and trades (ticks; 0 = no quote)."""

    __slots__ = ("minute", "bid", "ask", "price", "price_sum", "volume", "oi")

    def __init__(self, minute: int, bid: int, ask: int, oi: int) -> None:
        self.minute = minute
        self.bid = [bid, bid, bid, bid]  # open, high, low, close
        self.ask = [ask, ask, ask, ask]
        self.price: list[int] | None = None  # open, high, low, close of trades in the minute
        self.price_sum = 0  # sum of tick x count, for the mean
        self.volume = 0
        self.oi = oi


@dataclass(slots=True)
class Market:
    ticker: str
    event_ticker: str
    series_ticker: str
    title: str
    subtitle: str
    yes_sub_title: str
    no_sub_title: str
    market_type: str
    status: str
    created_ms: int
    updated_ms: int
    open_ms: int
    close_ms: int
    expiration_ms: int  # the latest expiration (Kalshi latest_expiration_time and the deprecated expiration_time)
    expected_expiration_ms: int  # when the market is expected to settle (Kalshi expected_expiration_time)
    settlement_timer_s: int
    can_close_early: bool
    rules_primary: str
    rules_secondary: str
    fees: FeeSchedule
    fee_pc: tuple[Decimal, ...]  # per-contract taker fee bound at each tick (ceil of one contract's fee)
    unit_hold: tuple[Decimal, ...] = ()  # cash held per opening contract of a resting bid: price + fee_pc
    fee_cache: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)  # count x 128 + maker tick
    book: tuple[BookSide, BookSide] = field(default_factory=lambda: (BookSide(), BookSide()))
    result: str = ""
    settlement_value: Decimal | None = None
    determined_ms: int | None = None
    settled_ms: int | None = None
    last_tick: int = 0
    volume: int = 0
    open_interest: int = 0
    trades: list[TradeRecord] = field(default_factory=list)
    candles: dict[int, Candle] = field(default_factory=dict)
    current_candle: Candle | None = None
    positions: dict[str, Position] = field(default_factory=dict)
    resting: dict[str, Order] = field(default_factory=dict)

    def best_bid(self, side: int) -> int:
        return self.book[side].best

    def yes_bid(self) -> int:
        return self.book[YES].best

    def yes_ask(self) -> int:
        """Implied YES ask in ticks (100 - best NO bid); 0 when there is no NO bid."""
        b = self.book[NO].best
        return TICKS - b if b else 0
