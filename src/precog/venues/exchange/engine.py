"""The exchange as a pure state machine: books, matching, accounts, settlement. No I/O; the clock is injected.

Matching: one central limit order book per market with price-time priority. Every order is a bid on one
book side (buy YES / sell NO bid YES; buy NO / sell YES bid NO). A YES bid at y crosses a NO bid at n when
y + n >= $1; the trade happens at the resting order's price (the taker gets any price improvement).

Cash (all Decimal): a resting order sets aside `open contracts x (limit + per-contract taker fee bound)`;
contracts that close a position the account already holds need no cash, because the YES+NO pair they
form is redeemed for $1 at once. So an account's available balance can never go negative, and
    sum(balances) + sum(holds) + fees collected + $1 x open interest + settlement rounding
equals the money deposited, at every step (`audit()` checks it).

Thread safety: every public method takes `self.lock` (an RLock), so the HTTP server, scenario drivers and
tests may call in from different threads.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from precog.domain.fees import TAKER_RATE, FeeSchedule, order_fill_fee
from precog.domain.money import CENT, ONE, TICK4, ZERO, floor_cent
from precog.venues.exchange.clock import Clock, WallClock
from precog.venues.exchange.errors import (
    Conflict,
    InsufficientBalance,
    InvalidOrder,
    InvalidRequest,
    MarketNotOpen,
    NotFound,
)
from precog.venues.exchange.model import (
    ACTIVE,
    CANCELED,
    CLOSED,
    DETERMINED,
    EXECUTED,
    FINALIZED,
    INACTIVE,
    INITIALIZED,
    MARKET_STATUSES,
    NO,
    PRICES,
    R_COUNT,
    R_MS,
    R_YES_TICK,
    RESTING,
    SIDE_INDEX,
    SIDE_NAMES,
    TICKS,
    YES,
    Account,
    Candle,
    Event,
    Market,
    Order,
    Position,
    Series,
    Settlement,
    TradeRecord,
    fill_view,
    trade_view,
)

TIME_IN_FORCE = ("good_till_canceled", "immediate_or_cancel", "fill_or_kill")
STP_TYPES = ("taker_at_cross", "maker")
_DAY_MS = 86_400_000
_NEVER = 1 << 62  # a time no clock reaches
_N_DOLLARS = 1024
_DOLLARS = tuple(Decimal(n) for n in range(_N_DOLLARS))


class ExchangeEvent(NamedTuple):
    """Something WebSocket subscribers may want to hear about. `seq` orders all events of one exchange."""

    seq: int
    kind: str  # orderbook_delta | trade | fill | ticker | lifecycle | order
    # lifecycle `event_type`: created, activated, deactivated, close_date_updated (an early close or
    # determination), closed (ours only: Kalshi's stream announces no scheduled close), determined, settled
    ticker: str
    data: dict[str, Any]


Listener = Callable[[ExchangeEvent], None]


def _uuid_prefix(rng: random.Random) -> str:
    h = f"{rng.getrandbits(80):020x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-"


class Exchange:
    """A Kalshi-compatible exchange held in memory."""

    def __init__(self, clock: Clock | None = None, *, taker_rate: Decimal = TAKER_RATE,
                 default_maker_rate: Decimal = ZERO, seed: int | None = None) -> None:
        self.clock: Clock = clock or WallClock()
        self.lock = threading.RLock()
        self.taker_rate = taker_rate
        self.default_maker_rate = default_maker_rate
        self.series: dict[str, Series] = {}
        self.events: dict[str, Event] = {}
        self.markets: dict[str, Market] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.trades: list[TradeRecord] = []
        self.fees_collected = ZERO
        self.settlement_rounding = ZERO  # sub-cent remainders of fractional settlements kept by the exchange
        self.trading_active = True
        self.event_seq = 0
        self._listeners: list[Listener] = []
        rng = random.Random(seed)
        self._ids = {kind: (_uuid_prefix(rng), itertools.count(1)) for kind in ("order", "trade", "user")}
        self._seq = itertools.count(1)
        self._expiries: list[tuple[int, str]] = []
        # tick(): the earliest clock time at which a market's lifecycle can move on its own, valid while no
        # lifecycle event happened and no market was added since it was computed: (due ms, lifecycle events, markets)
        self.lifecycle_events = 0
        self._lifecycle_due: tuple[int, int, int] | None = None

    # ------------------------------------------------------------------ ids, events, listeners

    def _new_id(self, kind: str) -> str:
        prefix, counter = self._ids[kind]
        return f"{prefix}{next(counter):012x}"

    def add_listener(self, listener: Listener) -> None:
        with self.lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self.lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, kind: str, ticker: str, data: dict[str, Any]) -> None:
        self.event_seq += 1
        if kind == "lifecycle":  # every status change is announced: tick() must look at the markets again
            self.lifecycle_events += 1
        event = ExchangeEvent(self.event_seq, kind, ticker, data)
        for listener in self._listeners:
            listener(event)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    # ------------------------------------------------------------------ catalogue

    def create_series(self, ticker: str, title: str, *, category: str = "Sports", frequency: str = "custom",
                      tags: Iterable[str] = (), maker_fee_rate: Decimal | None = None,
                      fee_multiplier: Decimal = ONE, settlement_sources: Iterable[dict[str, str]] = (),
                      contract_url: str = "", contract_terms_url: str = "") -> Series:
        _check_ticker(ticker, "series ticker")
        maker = self.default_maker_rate if maker_fee_rate is None else _decimal_arg(maker_fee_rate, "maker_fee_rate")
        mult = _decimal_arg(fee_multiplier, "fee_multiplier")
        if maker < 0 or maker > self.taker_rate:
            raise InvalidRequest(f"maker_fee_rate must be within [0, {self.taker_rate}], got {maker}")
        if mult < 0 or mult > 10:
            raise InvalidRequest(f"fee_multiplier must be within [0, 10], got {mult}")
        with self.lock:
            if ticker in self.series:
                raise Conflict(f"series {ticker} already exists", code="already_exists")
            now = self.clock.now_ms()
            s = Series(ticker=ticker, title=title, category=category, frequency=frequency, tags=list(tags),
                       fee_type="quadratic_with_maker_fees" if maker > 0 else "quadratic",
                       fees=FeeSchedule(taker_rate=self.taker_rate, maker_rate=maker, multiplier=mult),
                       settlement_sources=[dict(x) for x in settlement_sources], contract_url=contract_url,
                       contract_terms_url=contract_terms_url, created_ms=now, updated_ms=now)
            self.series[ticker] = s
            return s

    def create_event(self, event_ticker: str, series_ticker: str, title: str, sub_title: str = "", *,
                     mutually_exclusive: bool = True, strike_date_ms: int | None = None) -> Event:
        _check_ticker(event_ticker, "event ticker")
        with self.lock:
            series = self.series.get(series_ticker)
            if series is None:
                raise NotFound(f"series {series_ticker} does not exist", code="series_not_found")
            if event_ticker in self.events:
                raise Conflict(f"event {event_ticker} already exists", code="already_exists")
            e = Event(event_ticker=event_ticker, series_ticker=series_ticker, title=title, sub_title=sub_title,
                      category=series.category, mutually_exclusive=mutually_exclusive,
                      strike_date_ms=strike_date_ms, updated_ms=self.clock.now_ms())
            self.events[event_ticker] = e
            return e

    def create_market(self, ticker: str, event_ticker: str, *, title: str = "", subtitle: str = "",
                      yes_sub_title: str = "", no_sub_title: str = "", open_ms: int | None = None,
                      close_ms: int | None = None, expiration_ms: int | None = None, status: str | None = None,
                      rules_primary: str = "", rules_secondary: str = "", settlement_timer_s: int = 0,
                      can_close_early: bool = True, market_type: str = "binary",
                      expected_expiration_ms: int | None = None) -> Market:
        """A new market. `expected_expiration_ms` is when it is expected to settle (a game market: shortly after
        the game); by default its close, as nothing else is known about it."""
        _check_ticker(ticker, "market ticker")
        if market_type not in ("binary", "scalar"):
            raise InvalidRequest(f"market_type must be binary or scalar, got {market_type!r}")
        with self.lock:
            event = self.events.get(event_ticker)
            if event is None:
                raise NotFound(f"event {event_ticker} does not exist", code="event_not_found")
            if ticker in self.markets:
                raise Conflict(f"market {ticker} already exists", code="already_exists")
            now = self.clock.now_ms()
            open_at = now if open_ms is None else open_ms
            close_at = open_at + 7 * _DAY_MS if close_ms is None else close_ms
            if close_at <= open_at:
                raise InvalidRequest("close_time must be after open_time")
            expire_at = close_at + 3 * 3_600_000 if expiration_ms is None else expiration_ms
            if expected_expiration_ms is None:
                expected_at = min(close_at, expire_at)
            elif expected_expiration_ms > expire_at:
                raise InvalidRequest("expected_expiration_time must not be after the latest expiration time")
            else:
                expected_at = expected_expiration_ms
            if status is None:
                status = ACTIVE if open_at <= now < close_at else (INITIALIZED if now < open_at else CLOSED)
            if status not in (INITIALIZED, ACTIVE, INACTIVE, CLOSED):
                raise InvalidRequest(f"a new market's status must be initialized, active, inactive or closed, "
                                     f"got {status!r}")
            fees = self.series[event.series_ticker].fees
            m = Market(ticker=ticker, event_ticker=event_ticker, series_ticker=event.series_ticker,
                       title=title or ticker, subtitle=subtitle, yes_sub_title=yes_sub_title or title or ticker,
                       no_sub_title=no_sub_title or title or ticker, market_type=market_type, status=status,
                       created_ms=now, updated_ms=now, open_ms=open_at, close_ms=close_at,
                       expiration_ms=expire_at, expected_expiration_ms=expected_at,
                       settlement_timer_s=settlement_timer_s,
                       can_close_early=can_close_early, rules_primary=rules_primary,
                       rules_secondary=rules_secondary, fees=fees,
                       fee_pc=tuple(fees.fee(1, PRICES[t]) for t in range(TICKS + 1)))
            m.unit_hold = tuple(PRICES[t] + m.fee_pc[t] for t in range(TICKS + 1))
            self.markets[ticker] = m
            event.markets.append(ticker)
            self._emit("lifecycle", ticker, {"event_type": "created", "market": m})
            if status == ACTIVE:
                self._emit("lifecycle", ticker, {"event_type": "activated", "market": m})
            return m

    def market(self, ticker: str) -> Market:
        m = self.markets.get(ticker)
        if m is None:
            raise NotFound(f"market {ticker} not found", code="market_not_found")
        return m

    # ------------------------------------------------------------------ accounts

    def create_account(self, user_id: str | None = None, balance: Decimal = ZERO) -> Account:
        with self.lock:
            uid = user_id or self._new_id("user")
            if uid in self.accounts:
                raise Conflict(f"account {uid} already exists", code="already_exists")
            acct = Account(user_id=uid, updated_ms=self.clock.now_ms())
            self.accounts[uid] = acct
            if balance:
                self.deposit(uid, balance)
            return acct

    def deposit(self, user_id: str, amount: Decimal) -> Account:
        amount = _decimal_arg(amount, "amount")
        if amount <= 0 or amount != amount.quantize(CENT):
            raise InvalidRequest(f"deposit amount must be a positive whole number of cents, got {amount}")
        with self.lock:
            acct = self.account(user_id)
            acct.balance += amount
            acct.deposits += amount
            acct.updated_ms = self.clock.now_ms()
            return acct

    def account(self, user_id: str) -> Account:
        acct = self.accounts.get(user_id)
        if acct is None:
            raise NotFound(f"account {user_id} not found", code="account_not_found")
        return acct

    def _position(self, acct: Account, m: Market, now: int) -> Position:
        pos = acct.positions.get(m.ticker)
        if pos is None:
            pos = Position(m.ticker, m.event_ticker, now)
            acct.positions[m.ticker] = pos
            m.positions[acct.user_id] = pos
        return pos

    # ------------------------------------------------------------------ orders

    def place_order(self, user_id: str, ticker: str, side: str, action: str, count: int,
                    price: Decimal | None = None, *, type: str = "limit", time_in_force: str | None = None,
                    client_order_id: str | None = None, expiration_ms: int | None = None,
                    post_only: bool = False, reduce_only: bool = False, buy_max_cost: Decimal | None = None,
                    self_trade_prevention_type: str | None = None, order_group_id: str | None = None,
                    cancel_order_on_pause: bool = False, subaccount: int = 0) -> Order:
        """Validate, hold collateral, match, and rest what is left (GTC). Returns the order as it stands.

        `price` is the price of `side` in dollars (a YES price for side=yes, a NO price for side=no).
        Raises an ExchangeError (nothing changed) when the order is refused.
        """
        s_idx = SIDE_INDEX.get(side)
        if s_idx is None:
            raise InvalidOrder(f"side must be 'yes' or 'no', got {side!r}")
        if action == "buy":
            bside = s_idx
        elif action == "sell":
            bside = 1 - s_idx
        else:
            raise InvalidOrder(f"action must be 'buy' or 'sell', got {action!r}")
        if type not in ("limit", "market"):
            raise InvalidOrder(f"type must be 'limit' or 'market', got {type!r}")
        if count.__class__ is not int or count < 1:  # bool is not int here
            raise InvalidOrder(f"count must be a whole number of contracts >= 1, got {count!r}")
        tif = time_in_force or "good_till_canceled"
        if tif not in TIME_IN_FORCE:
            raise InvalidOrder(f"time_in_force must be one of {', '.join(TIME_IN_FORCE)}, got {tif!r}")
        stp = self_trade_prevention_type or "taker_at_cross"
        if stp not in STP_TYPES:
            raise InvalidOrder(f"self_trade_prevention_type must be one of {', '.join(STP_TYPES)}, got {stp!r}")
        if price is None:
            if type != "market":
                raise InvalidOrder("a limit order needs exactly one of yes_price, no_price, yes_price_dollars, "
                                   "no_price_dollars")
            side_tick = TICKS - 1 if action == "buy" else 1
        else:
            known = _TICK_OF.get(price) if isinstance(price, Decimal) else None
            side_tick = known if known is not None else _price_tick(price)
        tick = side_tick if action == "buy" else TICKS - side_tick  # bid price on the book side
        budget: Decimal | None = None
        if buy_max_cost is not None:
            if action != "buy":
                raise InvalidOrder("buy_max_cost applies to buy orders only")
            budget = _decimal_arg(buy_max_cost, "buy_max_cost")
            if budget <= 0:
                raise InvalidOrder(f"buy_max_cost must be positive, got {budget}")
            tif = "fill_or_kill"
        if type == "market" and tif == "good_till_canceled":
            tif = "immediate_or_cancel"  # market orders never rest
        if post_only and tif != "good_till_canceled":
            raise InvalidOrder("post_only orders must rest (time_in_force good_till_canceled)")
        if client_order_id is not None:
            _check_client_order_id(client_order_id)

        with self.lock:
            m = self.markets.get(ticker)
            if m is None:
                raise NotFound(f"market {ticker} not found", code="market_not_found")
            acct = self.accounts.get(user_id)
            if acct is None:
                raise NotFound(f"account {user_id} not found", code="account_not_found")
            if m.status != ACTIVE or not self.trading_active:
                raise MarketNotOpen(f"market {ticker} is {m.status}; orders are accepted only while it is active"
                                    if self.trading_active else "trading is paused on the exchange")
            now = self.clock.now_ms()
            if expiration_ms is not None and expiration_ms <= now:
                raise InvalidOrder("expiration_ts is in the past")
            if client_order_id and client_order_id in acct.by_client_id:
                raise Conflict(f"an order with client_order_id {client_order_id} already exists",
                               details=acct.by_client_id[client_order_id].order_id)
            pos = acct.positions.get(ticker)
            opp = 1 - bside
            free_close = 0 if pos is None else pos.held[opp] - pos.reserved[opp]
            if reduce_only:
                if free_close <= 0:
                    raise InvalidOrder("reduce_only order has no position to reduce")
                if count > free_close:
                    count = free_close
            book_opp = m.book[opp]
            if post_only and book_opp.best and tick + book_opp.best >= TICKS:
                raise InvalidOrder("post_only order would cross the book", code="post_only_cross")

            close_q = count if free_close >= count else max(free_close, 0)
            open_q = count - close_q
            unit = m.unit_hold[tick]
            market_order = type == "market" and price is None
            # market and fill-or-kill orders never rest: their cash is checked as they trade / up front
            hold = ZERO if market_order or tif == "fill_or_kill" else unit * open_q
            if tif == "fill_or_kill":
                self._check_fill_or_kill(m, acct, bside, tick, count, close_q, budget, stp)
            elif hold > acct.balance:
                raise InsufficientBalance(
                    f"insufficient balance: the order needs ${hold} (contracts at the limit price plus fees), "
                    f"available ${acct.balance}")

            prefix, counter = self._ids["order"]
            o = Order(f"{prefix}{next(counter):012x}", user_id, client_order_id or "", ticker, side, action, type,
                      bside, tick, count, now, tif, post_only, stp, expiration_ms, order_group_id,
                      cancel_order_on_pause, reduce_only, subaccount, unit, hold, close_q)
            if hold:
                acct.balance -= hold
            if close_q:
                pos.reserved[opp] += close_q  # type: ignore[union-attr]  # close_q > 0 implies a position
            self.orders[o.order_id] = o
            acct.orders[o.order_id] = o
            if client_order_id:
                acct.by_client_id[client_order_id] = o

            traded = 0
            if book_opp.best and tick + book_opp.best >= TICKS:
                traded = self._match(m, o, acct, now, market_order)
            if o.remaining:
                if tif == "good_till_canceled" and o.status == RESTING:
                    m.book[bside].add(o)
                    m.resting[o.order_id] = o
                    if pos is None:
                        pos = self._position(acct, m, now)
                    pos.resting_orders += 1
                    if expiration_ms is not None:
                        heapq.heappush(self._expiries, (expiration_ms, o.order_id))
                    if self._listeners:
                        self._emit_delta(m, o, o.remaining, now)
                else:
                    self._release(acct, m, o, o.remaining, now)
                    o.status = CANCELED
            else:
                o.status = EXECUTED
            if o.hold and o.status != RESTING:
                self._finish(acct, o)
            acct.updated_ms = now
            self._after_op(m, now, traded)
            if self._listeners:
                self._emit("order", ticker, {"user_id": user_id, "order": o.copy()})
            return o

    def _check_fill_or_kill(self, m: Market, acct: Account, bside: int, tick: int, count: int, close_q: int,
                            budget: Decimal | None, stp: str) -> None:
        """Refuse (nothing changed) unless the whole count fills now within price, budget and balance."""
        opp_side = m.book[1 - bside]
        need = count
        cost = ZERO
        cash = ZERO
        to_close = close_q
        t = opp_side.best
        while need and t and tick + t >= TICKS:
            exec_tick = TICKS - t
            for mk in opp_side.levels[t]:
                if not mk.remaining:
                    continue
                if mk.user_id == acct.user_id:
                    if stp == "taker_at_cross":
                        raise InvalidOrder("fill_or_kill order would trade with your own resting order",
                                           code="self_trade")
                    continue
                x = need if need < mk.remaining else mk.remaining
                need -= x
                cost += PRICES[exec_tick] * x
                c = to_close if to_close < x else x
                to_close -= c
                cash += (PRICES[exec_tick] + m.fee_pc[exec_tick]) * (x - c)
                if not need:
                    break
            t -= 1
            while t and not opp_side.qty[t]:
                t -= 1
        if need:
            raise InvalidOrder(f"fill_or_kill order cannot be filled completely ({count - need} of {count} "
                               "contracts available at the limit)", code="fill_or_kill_insufficient_resting_volume")
        if budget is not None and cost > budget:
            raise InvalidOrder(f"filling {count} contracts would cost ${cost}, above buy_max_cost ${budget}",
                               code="buy_max_cost_exceeded")
        if cash > acct.balance:
            raise InsufficientBalance(f"insufficient balance: the order needs ${cash}, available ${acct.balance}")

    def _match(self, m: Market, o: Order, acct: Account, now: int, market_order: bool) -> int:
        """Cross `o` against the opposite side's bids. Returns contracts traded."""
        bside = o.bside
        opp_side = m.book[1 - bside]
        levels = opp_side.levels
        tick = o.tick
        fees = m.fees
        fee_pc = m.fee_pc
        fee_cache = m.fee_cache
        trade_prefix, trade_counter = self._ids["trade"]
        taker_pos = self._position(acct, m, now)
        traded = 0
        emit = bool(self._listeners)
        while o.remaining:
            t = opp_side.best
            if not t or tick + t < TICKS:
                break
            level = levels[t]
            exec_tick = TICKS - t  # the taker pays 1 - (resting bid)
            price = PRICES[exec_tick]
            while o.remaining and level:
                mk = level[0]
                if not mk.remaining:
                    level.popleft()
                    continue
                if mk.user_id == o.user_id:
                    if o.stp == "taker_at_cross":
                        o.status = CANCELED  # the rest of the taker is cancelled by the caller
                        return traded
                    self._cancel_resting(m, mk, now)  # STP "maker": the resting order goes
                    continue
                x = o.remaining if o.remaining < mk.remaining else mk.remaining
                if market_order:
                    # no hold up front: take only what the balance pays for (closing contracts pay themselves)
                    free = o.close_reserved
                    if x > free:
                        afford = int(acct.balance // (price + fee_pc[exec_tick]))
                        if x > free + afford:
                            x = free + afford
                    if x <= 0:
                        o.status = CANCELED
                        return traded
                trade_seq = next(self._seq)
                trade_id = f"{trade_prefix}{next(trade_counter):012x}"
                key = x * 128 + t  # an int key: no allocation the garbage collector has to track
                fee_pair = fee_cache.get(key)
                if fee_pair is None:  # FeeSchedule is the one fee function; this only remembers its answers
                    fee_pair = (fees.trade_fee(x, price, taker=True), fees.trade_fee(x, PRICES[t], taker=False))
                    if len(fee_cache) < 50_000:
                        fee_cache[key] = fee_pair
                # each order pays what one fill of everything it filled so far would (Kalshi's fee accumulator)
                o.fee_basis, taker_fee = order_fill_fee(o.fee_basis, o.taker_fees + o.maker_fees, fee_pair[0])
                mk.fee_basis, maker_fee = order_fill_fee(mk.fee_basis, mk.taker_fees + mk.maker_fees, fee_pair[1])
                # taker
                self._apply_fill(acct, taker_pos, o, x, exec_tick, taker_fee, now)
                o.taker_fees += taker_fee
                o.taker_fill_cost += price * x
                # maker
                mk_acct = self.accounts[mk.user_id]
                mk_pos = mk_acct.positions[m.ticker]
                self._apply_fill(mk_acct, mk_pos, mk, x, t, maker_fee, now)
                mk.maker_fees += maker_fee
                mk.maker_fill_cost += PRICES[t] * x
                if not mk.remaining:
                    level.popleft()
                opp_side.reduce(t, x)
                self.fees_collected += taker_fee + maker_fee
                m.open_interest += x
                traded += x
                m.volume += x
                yes_tick = exec_tick if bside == YES else t
                m.last_tick = yes_tick
                rec = (trade_seq, trade_id, m.ticker, x, yes_tick, SIDE_NAMES[bside], now,
                       o.order_id, o.user_id, o.client_order_id, o.side, o.action, taker_fee, taker_pos.net,
                       mk.order_id, mk.user_id, mk.client_order_id, mk.side, mk.action, maker_fee, mk_pos.net)
                m.trades.append(rec)
                self.trades.append(rec)
                acct.fills.append(rec)
                mk_acct.fills.append(rec)
                mk_acct.updated_ms = now
                mk.updated_ms = now
                if not mk.remaining:
                    mk.status = EXECUTED
                    del m.resting[mk.order_id]
                    mk_pos.resting_orders -= 1
                    self._finish(mk_acct, mk)
                if emit:
                    self._emit("orderbook_delta", m.ticker, {
                        "side": SIDE_NAMES[1 - bside], "tick": t, "delta": -x, "user_id": mk.user_id,
                        "client_order_id": mk.client_order_id, "ts": now})
                    self._emit("trade", m.ticker, {"trade": trade_view(rec)})
                    self._emit("fill", m.ticker, {"user_id": o.user_id, "fill": fill_view(rec, o.user_id)})
                    self._emit("fill", m.ticker, {"user_id": mk.user_id, "fill": fill_view(rec, mk.user_id)})
                    self._emit("order", m.ticker, {"user_id": mk.user_id, "order": mk.copy()})
        return traded

    def _apply_fill(self, acct: Account, pos: Position, o: Order, q: int, t: int, fee: Decimal, now: int) -> None:
        """Book a fill of q contracts at tick t (of the order's book side) with fee `fee`."""
        s = o.bside
        opp = 1 - s
        price = PRICES[t]
        cost = price * q
        c = o.close_reserved
        if c > q:
            c = q
        open_q = q - c
        if c:
            # closing part: paid from the balance, immediately repaid by the $1 pair redemption
            fee_c = fee if not open_q else min(fee, self._fee_for(o, c, t))
            o.close_reserved -= c
            pos.reserved[opp] -= c
        else:
            fee_c = ZERO
        charge_open = price * open_q + (fee - fee_c)
        if o.hold:
            take = charge_open if charge_open < o.hold else o.hold
            o.hold -= take
            acct.balance -= price * c + fee_c + (charge_open - take)
        else:
            acct.balance -= cost + fee
        o.remaining -= q
        o.fill_count += q
        o.updated_ms = now
        held = pos.held
        held[s] += q
        pos.cost[s] += cost
        pos.fees_paid += fee
        pos.total_traded += cost
        pos.updated_ms = now
        # pair off against the opposite contracts not promised to other closing orders
        free_opp = held[opp] - pos.reserved[opp]
        if free_opp > 0:
            pairs = q if q < free_opp else free_opp
            self._redeem_pairs(acct, pos, pairs)
        acct.updated_ms = now

    def _fee_for(self, o: Order, count: int, t: int) -> Decimal:
        return self.markets[o.ticker].fees.fee(count, PRICES[t], taker=True)

    def _redeem_pairs(self, acct: Account, pos: Position, pairs: int) -> None:
        """A YES and a NO contract in one account are worth exactly $1: pay it out now."""
        held = pos.held
        cost = pos.cost
        h_yes, h_no = held
        # cost basis leaves in proportion (exactly, when the whole side goes); cash is exact regardless
        part_yes = cost[YES] if pairs == h_yes else (cost[YES] * pairs / h_yes).quantize(TICK4, ROUND_HALF_UP)
        part_no = cost[NO] if pairs == h_no else (cost[NO] * pairs / h_no).quantize(TICK4, ROUND_HALF_UP)
        cost[YES] -= part_yes
        cost[NO] -= part_no
        held[YES] = h_yes - pairs
        held[NO] = h_no - pairs
        payout = _DOLLARS[pairs] if pairs < _N_DOLLARS else Decimal(pairs)
        acct.balance += payout
        pos.realized_pnl += payout - part_yes - part_no
        self.markets[pos.ticker].open_interest -= pairs

    def _renet(self, acct: Account, pos: Position) -> None:
        pairs = min(pos.held[YES] - pos.reserved[YES], pos.held[NO] - pos.reserved[NO])
        if pairs > 0:
            self._redeem_pairs(acct, pos, pairs)

    def _release(self, acct: Account, m: Market, o: Order, d: int, now: int) -> None:
        """Take d remaining contracts off an order: give back their cash hold / closing reservation."""
        open_rem = o.remaining - o.close_reserved
        d_open = d if d < open_rem else open_rem
        d_close = d - d_open
        o.remaining -= d
        if o.remaining == 0:
            back = o.hold
        else:
            back = o.unit_hold * d_open
            if back > o.hold:
                back = o.hold
        if back:
            o.hold -= back
            acct.balance += back
        if d_close:
            o.close_reserved -= d_close
            pos = acct.positions[m.ticker]
            pos.reserved[1 - o.bside] -= d_close
            self._renet(acct, pos)
        o.updated_ms = now

    def _finish(self, acct: Account, o: Order) -> None:
        """An order left the book for good: return any unused cash."""
        if o.hold:
            acct.balance += o.hold
            o.hold = ZERO

    def _cancel_resting(self, m: Market, o: Order, now: int) -> int:
        """Remove a resting order from its book. Returns the contracts cancelled."""
        r = o.remaining
        acct = self.accounts[o.user_id]
        m.book[o.bside].reduce(o.tick, r)
        self._release(acct, m, o, r, now)
        o.status = CANCELED
        m.resting.pop(o.order_id, None)
        acct.positions[m.ticker].resting_orders -= 1
        self._finish(acct, o)
        acct.updated_ms = now
        if self._listeners:
            self._emit("orderbook_delta", m.ticker, {
                "side": SIDE_NAMES[o.bside], "tick": o.tick, "delta": -r, "user_id": o.user_id,
                "client_order_id": o.client_order_id, "ts": now})
            self._emit("order", m.ticker, {"user_id": o.user_id, "order": o.copy()})
        return r

    def _emit_delta(self, m: Market, o: Order, delta: int, now: int) -> None:
        self._emit("orderbook_delta", m.ticker, {
            "side": SIDE_NAMES[o.bside], "tick": o.tick, "delta": delta, "user_id": o.user_id,
            "client_order_id": o.client_order_id, "ts": now})

    def _own_order(self, user_id: str, order_id: str) -> Order:
        o = self.orders.get(order_id)
        if o is None or o.user_id != user_id:
            raise NotFound(f"order {order_id} not found", code="order_not_found")
        return o

    def get_order(self, user_id: str, order_id: str) -> Order:
        with self.lock:
            return self._own_order(user_id, order_id)

    def cancel_order(self, user_id: str, order_id: str) -> tuple[Order, int]:
        """Cancel the rest of an order. Returns (order, contracts cancelled)."""
        with self.lock:
            o = self._own_order(user_id, order_id)
            if o.status != RESTING:
                raise NotFound(f"order {order_id} is {o.status}, not resting; nothing to cancel",
                               code="order_not_resting")
            m = self.markets[o.ticker]
            now = self.clock.now_ms()
            r = self._cancel_resting(m, o, now)
            self._after_op(m, now, 0)
            return o, r

    def decrease_order(self, user_id: str, order_id: str, *, reduce_by: int | None = None,
                       reduce_to: int | None = None) -> Order:
        """Shrink a resting order; it keeps its place in the queue. Reducing to 0 cancels it."""
        if (reduce_by is None) == (reduce_to is None):
            raise InvalidRequest("exactly one of reduce_by or reduce_to must be given")
        with self.lock:
            o = self._own_order(user_id, order_id)
            if o.status != RESTING:
                raise InvalidOrder(f"order {order_id} is {o.status}; only resting orders can be decreased")
            if reduce_by is not None:
                if reduce_by < 1:
                    raise InvalidRequest(f"reduce_by must be >= 1, got {reduce_by}")
                d = min(reduce_by, o.remaining)
            else:
                assert reduce_to is not None
                if reduce_to < 0:
                    raise InvalidRequest(f"reduce_to must be >= 0, got {reduce_to}")
                if reduce_to >= o.remaining:
                    raise InvalidRequest(f"reduce_to ({reduce_to}) must be below the remaining count "
                                         f"({o.remaining})")
                d = o.remaining - reduce_to
            m = self.markets[o.ticker]
            now = self.clock.now_ms()
            if d >= o.remaining:
                self._cancel_resting(m, o, now)
            else:
                self._shrink(m, o, d, now)
            self._after_op(m, now, 0)
            return o

    def _shrink(self, m: Market, o: Order, d: int, now: int) -> None:
        acct = self.accounts[o.user_id]
        m.book[o.bside].reduce(o.tick, d)
        self._release(acct, m, o, d, now)
        acct.updated_ms = now
        if self._listeners:
            self._emit_delta(m, o, -d, now)
            self._emit("order", m.ticker, {"user_id": o.user_id, "order": o.copy()})

    def amend_order(self, user_id: str, order_id: str, *, ticker: str, side: str, action: str, price: Decimal,
                    count: int | None = None, updated_client_order_id: str | None = None) -> tuple[Order, Order]:
        """Change price and/or max fillable count (fill_count + remaining). Returns (old, new).

        Lowering the count at the same price keeps the queue position; a new price or a larger count
        re-enters the book at the back of the queue (and may trade at once, like a new order).
        """
        with self.lock:
            o = self._own_order(user_id, order_id)
            if o.status != RESTING:
                raise InvalidOrder(f"order {order_id} is {o.status}; only resting orders can be amended")
            if (o.ticker, o.side, o.action) != (ticker, side, action):
                raise InvalidOrder("ticker, side and action must match the order being amended "
                                   f"({o.ticker} {o.side} {o.action})")
            if updated_client_order_id is not None:
                _check_client_order_id(updated_client_order_id)
                acct0 = self.accounts[user_id]
                other = acct0.by_client_id.get(updated_client_order_id)
                if other is not None and other is not o:
                    raise Conflict(f"an order with client_order_id {updated_client_order_id} already exists")
            side_tick = _price_tick(price)
            new_tick = side_tick if action == "buy" else TICKS - side_tick
            max_fill = o.fill_count + o.remaining
            target = max_fill if count is None else count
            if isinstance(target, bool) or not isinstance(target, int) or target <= o.fill_count:
                raise InvalidOrder(f"count must exceed the {o.fill_count} contracts already filled, got {target}")
            old = o.copy()
            m = self.markets[o.ticker]
            acct = self.accounts[user_id]
            now = self.clock.now_ms()
            new_remaining = target - o.fill_count
            if new_tick == o.tick and new_remaining <= o.remaining:
                if new_remaining < o.remaining:
                    self._shrink(m, o, o.remaining - new_remaining, now)
            else:
                self._reenter(m, acct, o, new_tick, new_remaining, now)
            if updated_client_order_id is not None:
                if o.client_order_id:
                    acct.by_client_id.pop(o.client_order_id, None)
                o.client_order_id = updated_client_order_id
                acct.by_client_id[updated_client_order_id] = o
            o.updated_ms = now
            self._after_op(m, now, 0)
            return old, o

    def _reenter(self, m: Market, acct: Account, o: Order, new_tick: int, new_remaining: int, now: int) -> None:
        """Pull the order, check the new collateral, and put it back at the end of the queue (may trade)."""
        pos = acct.positions[m.ticker]
        opp = 1 - o.bside
        # the collateral this order would need after the amendment, with its own hold/reservation freed
        free_close = pos.held[opp] - pos.reserved[opp] + o.close_reserved
        close_q = min(new_remaining, free_close)
        unit = m.unit_hold[new_tick]
        need = unit * (new_remaining - close_q)
        if need > acct.balance + o.hold:
            raise InsufficientBalance(f"insufficient balance: the amended order needs ${need}, available "
                                      f"${acct.balance + o.hold}")
        old_tick, old_rem = o.tick, o.remaining
        book_side = m.book[o.bside]
        level = book_side.levels[old_tick]
        book_side.reduce(old_tick, old_rem)
        if level:  # still queued (the level was not emptied): take it out, it re-enters at the back
            level.remove(o)
        # give everything back, then take the new collateral
        acct.balance += o.hold
        o.hold = ZERO
        pos.reserved[opp] -= o.close_reserved
        o.close_reserved = 0
        o.tick = new_tick
        o.remaining = new_remaining
        o.unit_hold = unit
        acct.balance -= need
        o.hold = need
        pos.reserved[opp] += close_q
        o.close_reserved = close_q
        m.resting.pop(o.order_id, None)
        pos.resting_orders -= 1
        if self._listeners:
            self._emit("orderbook_delta", m.ticker, {
                "side": SIDE_NAMES[o.bside], "tick": old_tick, "delta": -old_rem, "user_id": o.user_id,
                "client_order_id": o.client_order_id, "ts": now})
        traded = 0
        book_opp = m.book[opp]
        if book_opp.best and new_tick + book_opp.best >= TICKS:
            traded = self._match(m, o, acct, now, False)
        if o.remaining and o.status == RESTING:
            m.book[o.bside].add(o)
            m.resting[o.order_id] = o
            pos.resting_orders += 1
            if self._listeners:
                self._emit_delta(m, o, o.remaining, now)
        elif o.remaining:
            self._release(acct, m, o, o.remaining, now)
            o.status = CANCELED
            self._finish(acct, o)
        else:
            o.status = EXECUTED
            self._finish(acct, o)
        self._renet(acct, pos)
        if traded:
            self._after_op(m, now, traded)

    def queue_position(self, order: Order) -> int:
        """Contracts ahead of this order at its price level (0 when it is first or not resting)."""
        with self.lock:
            if order.status != RESTING:
                return 0
            ahead = 0
            for other in self.markets[order.ticker].book[order.bside].levels[order.tick]:
                if other is order:
                    break
                ahead += other.remaining
            return ahead

    # ------------------------------------------------------------------ lifecycle

    def set_market_status(self, ticker: str, status: str) -> Market:
        """Open (active), pause (inactive) or close a market. Closing cancels every resting order."""
        with self.lock:
            m = self.market(ticker)
            if status not in (ACTIVE, INACTIVE, CLOSED):
                raise InvalidRequest(f"status must be active, inactive or closed here, got {status!r} "
                                     "(use settle/determine for results)")
            if m.status in (DETERMINED, FINALIZED) or (m.status == CLOSED and status != CLOSED):
                raise InvalidRequest(f"market {ticker} is {m.status}; it cannot become {status}")
            now = self.clock.now_ms()
            if m.status == status:
                return m
            if status == CLOSED:
                self._cancel_all(m, now)
            elif status == INACTIVE:
                for o in [o for o in m.resting.values() if o.cancel_on_pause]:
                    self._cancel_resting(m, o, now)
            paused = m.status == INACTIVE
            m.status = status
            m.updated_ms = now
            if status == CLOSED and now < m.close_ms:
                m.close_ms = now
                self._emit("lifecycle", ticker, {"event_type": "close_date_updated", "market": m})
            kind = {ACTIVE: "activated", INACTIVE: "deactivated", CLOSED: "closed"}[status]
            data: dict[str, Any] = {"event_type": kind, "market": m}
            if status == INACTIVE or (status == ACTIVE and paused):
                data["is_deactivated"] = status == INACTIVE  # a pause or an unpause (not a first opening)
            self._emit("lifecycle", ticker, data)
            self._after_op(m, now, 0)
            return m

    def _cancel_all(self, m: Market, now: int) -> None:
        for o in list(m.resting.values()):
            self._cancel_resting(m, o, now)

    def determine_market(self, ticker: str, settlement_value: Decimal) -> Market:
        """Record the result (YES payout per contract, in [0, 1]). Payout happens at finalization."""
        value = _settlement_value(settlement_value)
        with self.lock:
            m = self.market(ticker)
            if m.status in (DETERMINED, FINALIZED):
                raise InvalidRequest(f"market {ticker} is already {m.status}")
            now = self.clock.now_ms()
            self._cancel_all(m, now)
            m.status = DETERMINED
            m.result = "yes" if value == ONE else "no" if value == ZERO else "scalar"
            m.settlement_value = value
            m.determined_ms = now
            m.updated_ms = now
            if now < m.close_ms:  # determined early: the market's close moves to now
                m.close_ms = now
                self._emit("lifecycle", ticker, {"event_type": "close_date_updated", "market": m})
            self._emit("lifecycle", ticker, {"event_type": "determined", "market": m})
            self._after_op(m, now, 0)
            if m.settlement_timer_s <= 0:
                self._finalize(m, now)
            return m

    def settle_market(self, ticker: str, settlement_value: Decimal) -> Market:
        """Determine and pay out now (ignores the settlement timer)."""
        with self.lock:
            m = self.market(ticker)
            if m.status != DETERMINED:
                self.determine_market(ticker, settlement_value)
            if m.status == DETERMINED:
                self._finalize(m, self.clock.now_ms())
            return m

    def _finalize(self, m: Market, now: int) -> None:
        value = m.settlement_value
        assert value is not None
        no_value = ONE - value
        paid_total = ZERO
        for user_id, pos in m.positions.items():
            if pos.settled:
                continue
            acct = self.accounts[user_id]
            yes_n, no_n = pos.held
            revenue = floor_cent(value * yes_n) + floor_cent(no_value * no_n)
            acct.balance += revenue
            paid_total += revenue
            cost = pos.cost[YES] + pos.cost[NO]
            pos.realized_pnl += revenue - cost
            if yes_n or no_n or pos.total_traded:
                acct.settlements.append(Settlement(
                    next(self._seq), m.ticker, m.event_ticker, m.result, yes_n, no_n, pos.cost[YES],
                    pos.cost[NO], revenue, value, pos.fees_paid, now))
            pos.held = [0, 0]
            pos.cost = [ZERO, ZERO]
            pos.settled = True
            pos.updated_ms = now
            acct.updated_ms = now
        self.settlement_rounding += Decimal(m.open_interest) - paid_total
        m.open_interest = 0
        m.status = FINALIZED
        m.settled_ms = now
        m.updated_ms = now
        self._emit("lifecycle", m.ticker, {"event_type": "settled", "market": m})

    def tick(self) -> None:
        """Apply everything that is due by the clock: opens, closes, order expiries, settlements."""
        with self.lock:
            now = self.clock.now_ms()
            while self._expiries and self._expiries[0][0] <= now:
                _, oid = heapq.heappop(self._expiries)
                o = self.orders.get(oid)
                if o is not None and o.status == RESTING:
                    m = self.markets[o.ticker]
                    self._cancel_resting(m, o, now)
                    self._after_op(m, now, 0)
            due = self._lifecycle_due
            if due is not None and now < due[0] and due[1] == self.lifecycle_events and due[2] == len(self.markets):
                return  # no market opens, closes or finalizes before `due`
            next_due = _NEVER
            for m in self.markets.values():
                if m.status == INITIALIZED and m.open_ms <= now:
                    m.status = ACTIVE
                    m.updated_ms = now
                    self._emit("lifecycle", m.ticker, {"event_type": "activated", "market": m})
                if m.status in (ACTIVE, INACTIVE) and m.close_ms <= now:
                    self._cancel_all(m, now)
                    m.status = CLOSED
                    m.updated_ms = now
                    self._emit("lifecycle", m.ticker, {"event_type": "closed", "market": m})
                    self._after_op(m, now, 0)
                if (m.status == DETERMINED and m.determined_ms is not None
                        and m.determined_ms + m.settlement_timer_s * 1000 <= now):
                    self._finalize(m, now)
                if m.status == INITIALIZED:
                    next_due = min(next_due, m.open_ms)
                elif m.status in (ACTIVE, INACTIVE):
                    next_due = min(next_due, m.close_ms)
                elif m.status == DETERMINED and m.determined_ms is not None:
                    next_due = min(next_due, m.determined_ms + m.settlement_timer_s * 1000)
            self._lifecycle_due = (next_due, self.lifecycle_events, len(self.markets))

    # ------------------------------------------------------------------ market data

    def _after_op(self, m: Market, now: int, traded: int) -> None:
        """Record the minute's quotes/trades for candlesticks and tell ticker subscribers."""
        bid = m.book[YES].best
        nb = m.book[NO].best
        ask = TICKS - nb if nb else 0
        minute = now // 60_000
        c = m.current_candle
        if c is None or c.minute != minute:
            c = Candle(minute, bid, ask, m.open_interest)
            m.candles[minute] = c
            m.current_candle = c
            changed = True
        else:
            changed = c.bid[3] != bid or c.ask[3] != ask
            if changed:
                _ohlc_update(c.bid, bid)
                _ohlc_update(c.ask, ask)
        c.oi = m.open_interest
        if traded:
            new_trades = []
            vol = 0
            for tr in reversed(m.trades):
                if tr[R_MS] != now or vol >= traded:
                    break
                new_trades.append(tr)
                vol += tr[R_COUNT]
            for tr in reversed(new_trades):
                yes_tick, count = tr[R_YES_TICK], tr[R_COUNT]
                if c.price is None:
                    c.price = [yes_tick] * 4
                else:
                    _ohlc_update(c.price, yes_tick)
                c.price_sum += yes_tick * count
                c.volume += count
        if (changed or traded) and self._listeners:
            self._emit("ticker", m.ticker, {"market": m, "ts": now})

    def orderbook(self, ticker: str, depth: int = 0) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """YES bids and NO bids as (tick, size), lowest price first; `depth` keeps the best N levels."""
        with self.lock:
            m = self.market(ticker)
            yes, no = m.book[YES].depth(), m.book[NO].depth()
        if depth and depth > 0:
            yes, no = yes[-depth:], no[-depth:]
        return yes, no

    # ------------------------------------------------------------------ checks

    def audit(self) -> dict[str, Decimal]:
        """Totals for the conservation law; `imbalance` is 0 unless money was created or destroyed."""
        with self.lock:
            balances = sum((a.balance for a in self.accounts.values()), ZERO)
            holds = sum((o.hold for m in self.markets.values() for o in m.resting.values()), ZERO)
            deposits = sum((a.deposits for a in self.accounts.values()), ZERO)
            collateral = Decimal(sum(m.open_interest for m in self.markets.values()))
            total = balances + holds + self.fees_collected + collateral + self.settlement_rounding
            return {"deposits": deposits, "balances": balances, "holds": holds, "fees": self.fees_collected,
                    "collateral": collateral, "settlement_rounding": self.settlement_rounding,
                    "imbalance": total - deposits}


_TICK_OF: dict[Decimal, int] = {PRICES[t]: t for t in range(1, TICKS)}


def _ohlc_update(v: list[int], x: int) -> None:
    if x > v[1]:
        v[1] = x
    if x < v[2]:
        v[2] = x
    v[3] = x


def _price_tick(price: Decimal) -> int:
    if isinstance(price, float) or isinstance(price, bool) or not isinstance(price, Decimal):
        raise InvalidOrder(f"price must be a Decimal dollar amount, got {price!r}")
    cents = price * TICKS
    if cents != cents.to_integral_value():
        raise InvalidOrder(f"price {price} is not a multiple of the tick size $0.01")
    t = int(cents)
    if not 1 <= t <= TICKS - 1:
        raise InvalidOrder(f"price {price} is outside [0.01, 0.99]")
    return t


def _settlement_value(value: Decimal) -> Decimal:
    v = _decimal_arg(value, "settlement_value")
    if not ZERO <= v <= ONE:
        raise InvalidRequest(f"settlement_value must be within [0, 1], got {v}")
    if v != v.quantize(Decimal("0.0001")):
        raise InvalidRequest(f"settlement_value has more than 4 decimal places: {v}")
    return v


def _decimal_arg(value: object, field: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        from precog.domain.money import MoneyError, to_decimal

        try:
            return to_decimal(value, field=field)
        except MoneyError as exc:
            raise InvalidRequest(str(exc)) from None
    raise InvalidRequest(f"{field}: {value!r} is not a decimal string")


def _check_ticker(ticker: str, what: str) -> None:
    if not isinstance(ticker, str) or not ticker or len(ticker) > 200 or any(c.isspace() or c in "/?#" for c in ticker):
        raise InvalidRequest(f"{what} {ticker!r} is not valid (1-200 characters, no spaces or / ? #)")


def _check_client_order_id(cid: object) -> None:
    if not isinstance(cid, str) or not cid or len(cid) > 64 or not all(c.isalnum() or c in "-_" for c in cid):
        raise InvalidOrder(f"client_order_id {cid!r} must be 1-64 characters of letters, digits, '-' or '_'")


__all__ = ["Exchange", "ExchangeEvent", "Listener", "MARKET_STATUSES"]
