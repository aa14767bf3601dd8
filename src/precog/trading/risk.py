"""Pre-trade risk checks (spec 5.2): the one gate every entry order passes.

`RiskManager.approve(intent)` runs every check, in order, and returns either an `Approval` - the only
object the order path accepts (`Approval.consume()` hands back the intent, once, before it expires) - or
a `Rejection` naming the check and the reason, which is also recorded. An `Approval` cannot be built
outside this module, so an order cannot reach the venue without passing here.

Checks: trading state (breakers), strategy/model/method status, price sanity, market open (and its status
allowed), binary market, time to close (at least the stricter of market_filters.min_seconds_to_close and
global_filters.min_hours_to_close, at most global_filters.max_days_to_close), market age (global_filters
min_market_age_hours since open_time), trading hours, data freshness (quote, game state), edge >= effective
minimum (recomputed here from the intent's price, fee and slippage), confidence, volume (the stricter of the
global, league and method minimums), 24-hour volume, open interest and the size offered at the ask bought at
(global_filters; unknown = refused), spread, balance, open-position count, never both sides of one market,
distinct markets held overall and per sport (markets.yaml prioritization), and exposure per market, per game
(positions and dollars, all its markets and
both sides together), per sport, per correlated group and in total; and the method's own limits (its
risk_config): daily loss, consecutive losses and rapid loss from its closed positions (`set_method_history`,
loaded once per scan / cycle), and its own open exposure against the stricter of its and the global total
cap. A method can only tighten a global limit, never loosen it. An approval reserves its exposure
until it is released (order done) or expires unused, so approvals issued back to back see each other.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from precog.domain.fees import FeeSchedule
from precog.domain.money import ONE, ZERO
from precog.trading.edges import CostTable, effective_min_edge, q4
from precog.trading.exposure import ExposureBook
from precog.trading.forecasts import ModelRef
from precog.trading.method_config import MethodRuntime
from precog.trading.method_risk import Block, MethodHistory
from precog.trading.settings import TradingSettings
from precog.trading.strategies import EntryStrategy
from precog.trading.views import LIVE_GAME_STATUSES, GameView, MarketView, PositionView, correlation_group

PAPER = "paper"
LIVE = "live"
_TRADABLE = {PAPER: frozenset({"testing", "active"}), LIVE: frozenset({"active"})}
_MODEL_TRADABLE = {PAPER: frozenset({"testing", "validating", "active"}), LIVE: frozenset({"active"})}

CHECKS = (
    "trading_state", "status", "method_daily_loss", "method_consecutive_losses", "method_rapid_loss", "size", "price_sanity", "market_open", "market_type", "time_to_close", "market_age", "trading_hours",
    "data_freshness", "edge", "confidence", "volume", "volume_24h", "open_interest", "bid_ask_size", "spread",
    "balance", "position_count", "both_sides", "simultaneous_markets", "markets_per_sport", "correlated_markets",
    "market_exposure", "game_positions", "game_exposure", "sport_exposure", "correlated_exposure",
    "total_exposure", "method_exposure",
)

class _UnitCache:
    """A value per (strategy, method, *more), keyed by the objects' identity for speed. Each entry keeps its
    objects, so a unit reloaded later can never land on a freed object's id and inherit another unit's limits;
    the cache is dropped when reloads have filled it."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}

    def get(self, strategy: Any, method: Any, *more: Any) -> Any:
        hit = self._entries.get((id(strategy), id(method), *more))
        return hit[2] if hit is not None and hit[0] is strategy and hit[1] is method else None

    def put(self, strategy: Any, method: Any, more: tuple[Any, ...], value: Any) -> None:
        if len(self._entries) >= self.LIMIT:
            self._entries.clear()
        self._entries[(id(strategy), id(method), *more)] = (strategy, method, value)


class ApprovalError(RuntimeError):
    """An approval that cannot be used (already used, expired, or for another intent)."""


class OrderIntent(NamedTuple):
    """A sized entry the decision engine wants to place: buy `quantity` of `side` at limit `price`.

    Immutable (a tuple): what was approved is what gets sent."""

    intent_id: str
    market: MarketView
    side: str
    quantity: int  # whole contracts
    price: Decimal
    p_side: Decimal
    fee_per_contract: Decimal
    slippage: Decimal
    edge: Decimal
    ev_pct: Decimal
    confidence: Decimal
    confidence_level: str
    strategy: EntryStrategy
    model: ModelRef
    method: MethodRuntime | None
    order_type: str = "limit"
    stake: Decimal = ZERO
    created_ts: float = 0.0
    game: GameView | None = None
    calculation_run_id: str = ""
    size_limit: str = ""
    size_adjustments: tuple[str, ...] = ()  # spec 5.3 size reductions applied (e.g. "high_volatility")
    # the order's limit when it may fill above `price` (a market-style entry of the trading loop: price +
    # slippage); None: it fills at `price` at most (the decision layer sends at the ask)
    limit_price: Decimal | None = None

    @property
    def ticker(self) -> str:
        return self.market.ticker


@dataclass(frozen=True, slots=True)
class Rejection:
    check: str
    reason: str
    intent: OrderIntent | None = None
    market: MarketView | None = None
    side: str | None = None
    strategy_id: int | None = None
    model_id: int | None = None
    method_id: int | None = None
    edge: Decimal | None = None
    quantity: int | None = None
    stake: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    calculation_run_id: str = ""

    approved = False


_TOKEN = object()
_ids = itertools.count(1)


class Approval:
    """Proof that `intent` passed every pre-trade check. Only `RiskManager.approve` creates one."""

    __slots__ = ("approval_id", "intent", "approved_ts", "expires_ts", "cost", "_used", "_released")
    approved = True

    def __init__(self, token: object, approval_id: int, intent: OrderIntent, approved_ts: float, expires_ts: float,
                 cost: Decimal) -> None:
        if token is not _TOKEN:
            raise ApprovalError("an Approval is issued only by RiskManager.approve")
        self.approval_id = approval_id
        self.intent = intent
        self.approved_ts = approved_ts
        self.expires_ts = expires_ts
        self.cost = cost
        self._used = False
        self._released = False

    @property
    def used(self) -> bool:
        return self._used

    def consume(self, now: float | None = None) -> OrderIntent:
        """Called by the order path right before sending: returns the intent; refuses reuse or expiry."""
        now = time.time() if now is None else now
        if self._used:
            raise ApprovalError(f"approval {self.approval_id} for {self.intent.ticker} was already used")
        if self._released:
            raise ApprovalError(f"approval {self.approval_id} for {self.intent.ticker} was released")
        if now > self.expires_ts:
            raise ApprovalError(f"approval {self.approval_id} for {self.intent.ticker} expired "
                                f"{now - self.expires_ts:.1f} s ago; ask the risk manager again")
        self._used = True
        return self.intent


def require_approval(approval: object, intent: OrderIntent | None = None, now: float | None = None) -> OrderIntent:
    """The order path's gate: an unused, unexpired Approval (for `intent`, when given) or ApprovalError."""
    if not isinstance(approval, Approval):
        raise ApprovalError(f"an entry order needs an Approval from RiskManager.approve, got {type(approval).__name__}")
    if intent is not None and approval.intent is not intent:
        raise ApprovalError(f"approval {approval.approval_id} was issued for another intent")
    return approval.consume(now)


class RejectionRecorder(Protocol):
    def record(self, rejection: Rejection) -> None: ...


class RejectionLog:
    """Keeps rejections in memory (the scan reports them; a database recorder flushes them)."""

    def __init__(self) -> None:
        self.items: list[Rejection] = []

    def record(self, rejection: Rejection) -> None:
        self.items.append(rejection)

    def drain(self) -> list[Rejection]:
        out, self.items = self.items, []
        return out


class EntryGate(Protocol):
    """What the risk manager asks the breakers: None when entries are allowed, else why not."""

    def entry_block(self, now: float) -> str | None: ...


@dataclass(slots=True)
class _Reservation:
    approval: Approval
    ticker: str
    side: str
    cost: Decimal
    count: int
    method_id: int | None = None


def _method_id(intent: OrderIntent) -> int | None:
    return intent.method.method_id if intent.method is not None else None


class RiskManager:
    def __init__(self, settings: TradingSettings, *, mode: str = PAPER, gate: EntryGate | None = None,
                 recorder: RejectionRecorder | None = None, costs: CostTable | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if mode not in _TRADABLE:
            raise ValueError(f"mode must be paper or live, got {mode!r}")
        self.settings = settings
        self.mode = mode
        self.gate = gate
        self.recorder = recorder if recorder is not None else RejectionLog()
        self.costs = costs if costs is not None else CostTable(settings)
        self.clock = clock
        self.book = ExposureBook()
        self.balance = settings.initial_capital
        self.reserved_cash = ZERO
        self._reservations: dict[int, _Reservation] = {}
        self._next_expiry = float("inf")
        self._min_edge_cache = _UnitCache()
        self._caps_cache = _UnitCache()
        self._pct_for: Decimal | None = None
        self._pct_value = ZERO
        self._tz = ZoneInfo(settings.trading_hours_timezone) if settings.trading_hours_enabled else None
        # per-method state: open exposure (positions, resting entries, reservations) and closed-position history
        self.by_method: dict[int, Decimal] = {}
        self.method_history = MethodHistory()
        self._loss_tz = ZoneInfo(settings.breakers.timezone)
        self._day: tuple[float, float] = (float("inf"), float("-inf"))  # [start, end) of the cached local day
        self._loss_blocks: dict[int, tuple[float, Block | None]] = {}

    def set_method_history(self, history: MethodHistory) -> None:
        """The methods' closed positions (load once per scan / cycle with method_risk.load_method_history)."""
        self.method_history = history
        self._loss_blocks = {}

    def _add_method(self, method_id: int | None, cost: Decimal) -> None:
        if method_id is not None:
            self.by_method[method_id] = self.by_method.get(method_id, ZERO) + cost

    # ------------------------------------------------------------ state
    def sync(self, positions: Iterable[PositionView], balance: Decimal | None = None) -> None:
        """Rebuild exposure from the authoritative open positions; outstanding approvals stay reserved."""
        self.book = ExposureBook()
        self.by_method = {}
        for pos in positions:
            self.book.add(pos.ticker, pos.side, pos.event_ticker, pos.sport,
                          pos.correlation_group or correlation_group(pos.sport, pos.event_ticker, None), pos.cost)
            self._add_method(pos.method_id, pos.cost)
        if balance is not None:
            self.balance = balance
        for res in self._reservations.values():
            m = res.approval.intent.market
            self.book.add(res.ticker, res.side, m.event_ticker, m.sport, m.group, res.cost)
            self._add_method(res.method_id, res.cost)

    def release(self, approval: Approval) -> None:
        """The order for this approval is finished (filled, canceled or never sent): free what is still reserved."""
        res = self._reservations.pop(approval.approval_id, None)
        approval._released = True
        if res is not None:
            self.book.remove(res.ticker, res.side, res.cost)
            self.reserved_cash -= res.cost
            self._add_method(res.method_id, -res.cost)

    def on_fill(self, approval: Approval, count: int, price: Decimal, fee: Decimal) -> None:
        """Move `count` filled contracts from the reservation into a holding at the fill price."""
        res = self._reservations.get(approval.approval_id)
        intent = approval.intent
        m = intent.market
        if res is not None and res.count > 0:
            share = min(count, res.count)
            freed = res.cost * share / res.count
            res.count -= share
            res.cost -= freed
            self.book.remove(res.ticker, res.side, freed)
            self.reserved_cash -= freed
            self._add_method(res.method_id, -freed)
            if res.count <= 0:
                self._reservations.pop(approval.approval_id, None)
        cost = price * count + fee
        self.book.add(m.ticker, intent.side, m.event_ticker, m.sport, m.group, cost)
        self._add_method(_method_id(intent), cost)
        self.balance -= cost

    def _expire(self, now: float) -> None:
        nxt = float("inf")
        for res in list(self._reservations.values()):
            if not res.approval.used and res.approval.expires_ts < now:
                self.release(res.approval)
            elif not res.approval.used:
                nxt = min(nxt, res.approval.expires_ts)
        self._next_expiry = nxt

    # ------------------------------------------------------------ limits
    def min_edge_for(self, strategy: EntryStrategy, method: MethodRuntime | None, market: MarketView) -> Decimal:
        found: Decimal | None = self._min_edge_cache.get(strategy, method, market.sport, market.special_event)
        if found is None:
            found = effective_min_edge(self.settings, market.sport, strategy.min_edge_for(market.sport),
                                       method.min_edge if method is not None else None, market.special_event)
            self._min_edge_cache.put(strategy, method, (market.sport, market.special_event), found)
        return found

    def caps(self, strategy: EntryStrategy, method: MethodRuntime | None, sport: str) -> tuple[Decimal, ...]:
        """(position cap, sport cap, correlated cap, total cap) for a unit in a sport; the position cap is also
        bounded by max_position_pct of the current balance."""
        found: tuple[Decimal, Decimal, Decimal, Decimal] | None = self._caps_cache.get(strategy, method, sport)
        if found is None:
            s = self.settings
            position = strategy.max_position_dollars if strategy.max_position_dollars is not None \
                else s.max_position_dollars
            total, correlated = s.max_total_exposure, s.max_correlated_exposure
            if s.absolute_max_position_dollars is not None:  # binds a strategy's own cap too
                position = min(position, s.absolute_max_position_dollars)
            if method is not None:
                if method.max_position_dollars is not None:
                    position = min(position, method.max_position_dollars)
                # the method's max_total_exposure binds the method's own exposure (method_cap), not the book's
                if method.max_correlated_exposure is not None:
                    correlated = min(correlated, method.max_correlated_exposure)
            found = (position, s.sport_share(sport) * total, correlated, total)
            self._caps_cache.put(strategy, method, (sport,), found)
        position, sport_cap, correlated, total = found
        return min(position, self._pct_cap), sport_cap, correlated, total

    def method_cap(self, method: MethodRuntime | None) -> Decimal | None:
        """The cap on one method's own open exposure: the stricter of its max_total_exposure and the global."""
        if method is None or method.max_total_exposure is None:
            return None
        return min(method.max_total_exposure, self.settings.max_total_exposure)

    def method_loss_block(self, method: MethodRuntime, now: float) -> Block | None:
        """The method's tripped loss limit (check, reason, details), else None; computed once per `now`."""
        mid = method.method_id
        if mid is None or mid not in self.method_history.closes:
            return None
        cached = self._loss_blocks.get(mid)
        if cached is not None and cached[0] == now:
            return cached[1]
        start, end = self._day
        if not (start <= now < end):
            local = datetime.fromtimestamp(now, self._loss_tz).replace(hour=0, minute=0, second=0, microsecond=0)
            start, end = local.timestamp(), (local + timedelta(days=1)).timestamp()
            self._day = (start, end)
        block = self.method_history.loss_block(method, now, start)
        self._loss_blocks[mid] = (now, block)
        return block

    def position_cap(self, strategy: EntryStrategy, method: MethodRuntime | None, sport: str = "") -> Decimal:
        return self.caps(strategy, method, sport)[0]

    @property
    def _pct_cap(self) -> Decimal:
        if self._pct_for is not self.balance:
            self._pct_for = self.balance
            self._pct_value = self.settings.max_position_pct * self.balance
        return self._pct_value

    def headroom(self, market: MarketView, strategy: EntryStrategy, method: MethodRuntime | None
                 ) -> list[tuple[str, Decimal]]:
        """Dollar room left under each cap for a new entry in `market` (what sizing must fit into)."""
        book = self.book
        position, sport_cap, correlated, total = self.caps(strategy, method, market.sport)
        room = [
            ("market_exposure", position - book.by_market.get(market.ticker, ZERO)),
            ("game_exposure", self.settings.max_exposure_per_game - book.by_game.get(market.event_ticker, ZERO)),
            ("sport_exposure", sport_cap - book.by_sport.get(market.sport, ZERO)),
            ("correlated_exposure", correlated - book.by_group.get(market.group, ZERO)),
            ("total_exposure", total - book.total),
            ("balance", self.balance - self.reserved_cash),
        ]
        method_cap = self.method_cap(method)
        if method_cap is not None and method is not None and method.method_id is not None:
            room.append(("method_exposure", method_cap - self.by_method.get(method.method_id, ZERO)))
        return room

    # ------------------------------------------------------------ the gate
    def approve(self, intent: OrderIntent, now: float | None = None) -> Approval | Rejection:
        now = self.clock() if now is None else now
        if self._next_expiry <= now:
            self._expire(now)
        checked = self._check(intent, now)
        if isinstance(checked, tuple):
            check, reason, details = checked
            rejection = Rejection(
                check=check, reason=reason, intent=intent, market=intent.market, side=intent.side,
                strategy_id=intent.strategy.ref.strategy_id, model_id=intent.model.model_id,
                method_id=intent.method.method_id if intent.method is not None else None, edge=intent.edge,
                quantity=intent.quantity, stake=intent.stake, details=details, at=now,
                calculation_run_id=intent.calculation_run_id)
            self.recorder.record(rejection)
            return rejection
        cost = checked
        approval = Approval(_TOKEN, next(_ids), intent, now, now + self.settings.approval_ttl_seconds, cost)
        m = intent.market
        mid = _method_id(intent)
        self._reservations[approval.approval_id] = _Reservation(approval, m.ticker, intent.side, cost, intent.quantity,
                                                                mid)
        self.book.add(m.ticker, intent.side, m.event_ticker, m.sport, m.group, cost)
        self._add_method(mid, cost)
        self.reserved_cash += cost
        if approval.expires_ts < self._next_expiry:
            self._next_expiry = approval.expires_ts
        return approval

    def reject(self, check: str, reason: str, *, market: MarketView, side: str | None, strategy_id: int | None,
               model_id: int | None, method_id: int | None, edge: Decimal | None = None, now: float | None = None,
               details: dict[str, Any] | None = None, calculation_run_id: str = "") -> Rejection:
        """Record a decision that stopped before approval (e.g. sizing gave zero contracts)."""
        rejection = Rejection(check=check, reason=reason, market=market, side=side, strategy_id=strategy_id,
                              model_id=model_id, method_id=method_id, edge=edge, details=details or {},
                              at=self.clock() if now is None else now, calculation_run_id=calculation_run_id)
        self.recorder.record(rejection)
        return rejection

    def _order_fee(self, fees: FeeSchedule, intent: OrderIntent, price: Decimal) -> Decimal:
        """The fee the order can pay: at `price`, or at its limit when it may fill up to one above it and that
        fee is dearer (below 0.50 the fee per contract grows with the price; price + fee per contract always does,
        so fills at the limit are the most the order can commit)."""
        # a market order takes liquidity whatever edge_detection.assume_taker says about resting limits
        taker = self.settings.assume_taker or intent.order_type == "market"
        fee = fees.fee(intent.quantity, price, taker=taker)
        if intent.limit_price is not None and intent.limit_price > price:
            fee = max(fee, fees.fee(intent.quantity, intent.limit_price, taker=taker))
        return fee

    def _check(self, intent: OrderIntent, now: float) -> tuple[str, str, dict[str, Any]] | Decimal:  # noqa: C901
        """The first failed check as (check, reason, details), or the order's cost when all pass."""
        s = self.settings
        m = intent.market
        side = intent.side
        strategy, method, model = intent.strategy, intent.method, intent.model
        # -- trading state / circuit breakers
        if self.gate is not None:
            blocked = self.gate.entry_block(now)
            if blocked is not None:
                return "trading_state", f"entries blocked: {blocked}", {}
        # -- versions allowed to trade
        allowed = _TRADABLE[self.mode]
        if strategy.ref.status not in allowed:
            return "status", f"strategy {strategy.ref.label} is {strategy.ref.status} ({self.mode} trading needs " \
                             f"{'/'.join(sorted(allowed))})", {}
        if model.status not in _MODEL_TRADABLE[self.mode]:
            return "status", f"model {model.label} is {model.status}", {}
        if method is not None:
            if method.status not in allowed:
                return "status", f"method {method.label} is {method.status} ({self.mode} trading needs " \
                                 f"{'/'.join(sorted(allowed))})", {}
            if not method.sport_enabled(m.sport):
                return "status", f"method {method.label} does not trade {m.sport}", {}
            # -- the method's own loss limits (its risk_config circuit breakers)
            loss_block = self.method_loss_block(method, now)
            if loss_block is not None:
                return loss_block
        # -- size and price sanity
        if intent.quantity < 1:
            return "size", f"quantity {intent.quantity} is not a whole number of contracts >= 1", {}
        price = intent.price
        if price != m.price_of(side):
            return "price_sanity", f"limit {price} is not the current {side} ask {m.price_of(side)}", {}
        if not (s.min_price <= price <= s.max_price):
            return "price_sanity", f"price {price} outside [{s.min_price}, {s.max_price}]", {"price": price}
        if not (ZERO <= m.yes_bid <= m.yes_ask <= ONE):
            return "price_sanity", f"book crossed or out of range (bid {m.yes_bid}, ask {m.yes_ask})", {}
        # -- market state and timing
        if m.status != "open":
            return "market_open", f"market is {m.status}", {}
        if m.status not in s.statuses_allowed:
            return "market_open", f"market status {m.status} is not in markets.global_filters.statuses_allowed " \
                                  f"{list(s.statuses_allowed)}", {}
        if s.binary_only and m.market_type != "binary":
            return "market_type", f"market type {m.market_type!r} is not binary (markets.global_filters.binary_only)", {}
        closing = self._time_to_close_block(m, now)
        if closing is not None:
            return "time_to_close", closing, {}
        young = self._market_age_block(m, now)
        if young is not None:
            return "market_age", young, {}
        if self._tz is not None:
            blocked_hours = self._outside_hours(now)
            if blocked_hours is not None:
                return "trading_hours", blocked_hours, {}
        # -- freshness
        if m.quote_ts is None:
            return "data_freshness", "quote time unknown", {}
        age = now - m.quote_ts
        if age > s.max_price_age_seconds:
            return "data_freshness", f"price is {age:.0f} s old (max {s.max_price_age_seconds} s)", {"age": age}
        game = intent.game
        if game is not None and game.state.status in LIVE_GAME_STATUSES:
            gage = now - game.observed_ts
            if gage > s.max_game_state_age_seconds:
                return "data_freshness", f"game state is {gage:.0f} s old (max {s.max_game_state_age_seconds} s)", \
                    {"age": gage}
        # -- edge (recomputed from the intent's own costs) and confidence
        fees = self.costs.schedule(m.fee_multiplier)
        fee_pc = self.costs.get(price, m.fee_multiplier).fee
        if intent.fee_per_contract < fee_pc:
            return "edge", f"fee per contract {intent.fee_per_contract} is below the schedule's {fee_pc}", {}
        edge = q4(intent.p_side - (price + intent.fee_per_contract + intent.slippage))
        min_edge = self.min_edge_for(strategy, method, m)
        if edge < min_edge:
            return "edge", f"edge {edge} below minimum {min_edge}", {"edge": edge, "min_edge": min_edge}
        if intent.confidence < s.confidence_min:
            return "confidence", f"confidence {intent.confidence} below minimum {s.confidence_min}", {}
        # -- liquidity (each minimum the stricter of the global, the league's and the method's)
        min_volume = s.min_volume_for(m.sport)
        max_spread = s.leagues[m.sport].max_spread if m.sport in s.leagues else None
        if method is not None:
            rule = method.sports.get(m.sport)
            if rule is not None and rule.min_volume is not None:
                min_volume = max(min_volume, rule.min_volume)
            if rule is not None and rule.max_spread is not None:
                max_spread = rule.max_spread if max_spread is None else min(max_spread, rule.max_spread)
        if strategy.max_spread is not None:
            max_spread = strategy.max_spread if max_spread is None else min(max_spread, strategy.max_spread)
        special = _special_liquidity(s, m.special_event)
        if special is not None:
            min_volume = _times(min_volume, special[0])
        if m.volume < min_volume:
            return "volume", f"volume {m.volume} below minimum {min_volume}{_why(special)}", {"min_volume": min_volume}
        thin = self._open_interest_block(m, special)
        if thin is not None:
            return thin
        thin = self._ask_size_block(m, side, price, special)
        if thin is not None:
            return thin
        spread = m.spread
        if spread > price * s.max_spread_pct:
            return "spread", f"spread {spread} is {q4(spread / price)} of the price (max {s.max_spread_pct})", {}
        if max_spread is not None and spread > max_spread:
            return "spread", f"spread {spread} above maximum {max_spread}", {}
        # -- money and counts
        stake = (price + intent.slippage) * intent.quantity + self._order_fee(fees, intent, price)
        book = self.book
        if self.balance < s.min_balance_to_trade:
            return "balance", f"balance {self.balance} below the minimum to trade {s.min_balance_to_trade}", {}
        available = self.balance - self.reserved_cash
        if stake > available:
            return "balance", f"order costs {stake}, available cash {available}", {"stake": stake}
        new_position = not book.holds(m.ticker, side)
        if new_position and book.open_positions + 1 > s.max_open_positions:
            return "position_count", f"{book.open_positions} open positions (max {s.max_open_positions})", {}
        other = "no" if side == "yes" else "yes"
        if book.holds(m.ticker, other):
            return "both_sides", f"already holding {other.upper()} in {m.ticker}; never both sides of one market", {}
        if new_position:  # a market not held yet (both sides are never held, so a new position is a new market)
            crowded = self._market_count_block(m)
            if crowded is not None:
                return crowded
        cap, sport_cap, group_cap, total_cap = self.caps(strategy, method, m.sport)
        have = book.by_market.get(m.ticker, ZERO)
        if have + stake > cap:
            return "market_exposure", f"market exposure {have} + {stake} > {cap}", {"cap": cap}
        if new_position and book.positions_in_game(m.event_ticker) + 1 > s.max_positions_per_game:
            return "game_positions", f"{book.positions_in_game(m.event_ticker)} positions in game {m.event_ticker} " \
                                     f"(max {s.max_positions_per_game})", {}
        have = book.by_game.get(m.event_ticker, ZERO)
        if have + stake > s.max_exposure_per_game:
            return "game_exposure", f"game {m.event_ticker} exposure {have} + {stake} > {s.max_exposure_per_game}", \
                {"cap": s.max_exposure_per_game}
        have = book.by_sport.get(m.sport, ZERO)
        if have + stake > sport_cap:
            return "sport_exposure", f"{m.sport} exposure {have} + {stake} > {sport_cap}", {"cap": sport_cap}
        have = book.by_group.get(m.group, ZERO)
        if have + stake > group_cap:
            return "correlated_exposure", f"correlated group {m.group} exposure {have} + {stake} > {group_cap}", \
                {"cap": group_cap}
        if book.total + stake > total_cap:
            return "total_exposure", f"total exposure {book.total} + {stake} > {total_cap}", {"cap": total_cap}
        method_cap = self.method_cap(method)
        if method_cap is not None and method is not None and method.method_id is not None:
            have = self.by_method.get(method.method_id, ZERO)
            if have + stake > method_cap:
                return "method_exposure", f"method {method.label} exposure {have} + {stake} > " \
                                          f"max_total_exposure_dollars {method_cap}", {"cap": method_cap}
        return stake

    def _time_to_close_block(self, m: MarketView, now: float) -> str | None:
        """Why the market's close time is too near or too far (None when it is fine): at least the stricter of
        trading.yaml market_filters.min_seconds_to_close and markets.yaml global_filters.min_hours_to_close, at
        most global_filters.max_days_to_close. An unknown close time passes only while neither global filter is on."""
        s = self.settings
        if m.close_ts is None:
            if s.global_min_seconds_to_close > 0 or s.max_seconds_to_close is not None:
                return "close time unknown (markets.global_filters min_hours_to_close / max_days_to_close need it)"
            return None
        left = m.close_ts - now
        if left < s.min_seconds_to_close or left < s.global_min_seconds_to_close:
            if s.global_min_seconds_to_close > s.min_seconds_to_close:
                minimum = f"{s.global_min_seconds_to_close} s, markets.global_filters.min_hours_to_close"
            else:
                minimum = f"{s.min_seconds_to_close} s, trading.market_filters.min_seconds_to_close"
            return f"market closes in {max(0.0, left):.0f} s (minimum {minimum})"
        if s.max_seconds_to_close is not None and left > s.max_seconds_to_close:
            return f"market closes in {left / 86400:.1f} days (maximum {s.max_seconds_to_close / 86400:g} days, " \
                   "markets.global_filters.max_days_to_close)"
        return None

    def _market_age_block(self, m: MarketView, now: float) -> str | None:
        """markets.yaml global_filters.min_market_age_hours: a market open for less than this is refused (a
        fresh listing's first quotes are thin and move), and so is one whose open time Kalshi did not report
        while the filter is on (Kalshi always sends open_time: its absence is missing data, not an old market)."""
        minimum = self.settings.min_market_age_seconds
        if minimum <= 0:
            return None
        hours = f"{minimum / 3600:g} h, markets.global_filters.min_market_age_hours"
        if m.open_ts is None:
            return f"open time unknown (minimum age {hours})"
        age = now - m.open_ts
        if age < minimum:
            return f"market opened {max(0.0, age) / 3600:.2f} h ago (minimum {hours})"
        return None

    def _ask_size_block(self, m: MarketView, side: str, price: Decimal,
                        special: tuple[Decimal, str] | None = None) -> tuple[str, str, dict[str, Any]] | None:
        """markets.yaml global_filters.min_bid_ask_size: the contracts offered at the price this entry buys at
        (the YES ask, or for NO the YES bid's size) must be at least this (times a special event's liquidity
        multiplier); an unreported size is refused."""
        minimum = self.settings.min_bid_ask_size
        if minimum <= 0:
            return None
        if special is not None:
            minimum = _times(minimum, special[0])
        size = m.ask_size_of(side)
        if size is None:
            return "bid_ask_size", f"size at the {side.upper()} ask unknown (markets.global_filters.min_bid_ask_size " \
                                   f"{minimum}{_why(special)} needs it)", {}
        if size < minimum:
            return "bid_ask_size", f"{size} contracts offered at the {side.upper()} ask {price} (minimum {minimum}, " \
                                   f"markets.global_filters.min_bid_ask_size{_why(special)})", \
                {"size": size, "min": minimum}
        return None

    def _market_count_block(self, m: MarketView) -> tuple[str, str, dict[str, Any]] | None:
        """markets.yaml prioritization max_simultaneous_markets / max_per_sport / max_correlated: distinct markets
        with a position, a working entry or an outstanding approval (the exposure book), counted before one more
        market is added: overall, in the market's sport, and in its correlated group (the sport and the slate day,
        the group `max_correlated_exposure` caps in dollars)."""
        s = self.settings
        held = self.book.open_positions  # one holding per market: never both sides of one (checked before)
        if held + 1 > s.max_simultaneous_markets:
            return "simultaneous_markets", f"{held} markets held (max {s.max_simultaneous_markets}, " \
                                           "markets.prioritization.max_simultaneous_markets)", \
                {"cap": s.max_simultaneous_markets}
        in_sport = self.book.holdings_by_sport.get(m.sport, 0)
        if in_sport + 1 > s.max_markets_per_sport:
            return "markets_per_sport", f"{in_sport} {m.sport} markets held (max {s.max_markets_per_sport}, " \
                                        "markets.prioritization.max_per_sport)", {"cap": s.max_markets_per_sport}
        in_group = self.book.holdings_by_group.get(m.group, 0)
        if in_group + 1 > s.max_correlated_markets:
            return "correlated_markets", f"{in_group} markets held in correlated group {m.group} (max " \
                                         f"{s.max_correlated_markets}, markets.prioritization.max_correlated)", \
                {"cap": s.max_correlated_markets, "group": m.group}
        return None

    def _open_interest_block(self, m: MarketView, special: tuple[Decimal, str] | None = None
                             ) -> tuple[str, str, dict[str, Any]] | None:
        """markets.yaml global_filters min_volume_24h / min_open_interest (times a special event's liquidity
        multiplier): refused below them, and refused when the venue did not report the number while the filter is
        on (never assumed to pass)."""
        s = self.settings
        for check, value, minimum, what in (("volume_24h", m.volume_24h, s.min_volume_24h, "24-hour volume"),
                                            ("open_interest", m.open_interest, s.min_open_interest, "open interest")):
            if minimum <= 0:
                continue
            if special is not None:
                minimum = _times(minimum, special[0])
            if value is None:
                return check, f"{what} unknown (markets.global_filters.min_{check} {minimum}{_why(special)} needs " \
                              "it)", {}
            if value < minimum:
                return check, f"{what} {value} below minimum {minimum} (markets.global_filters.min_{check}" \
                              f"{_why(special)})", {"min": minimum}
        return None

    def _outside_hours(self, now: float) -> str | None:
        s = self.settings
        local = datetime.fromtimestamp(now, self._tz)
        start, end = s.weekend_hours if local.weekday() >= 5 else s.weekday_hours
        hhmm = local.strftime("%H:%M")
        if not (start <= hhmm < end):
            return f"outside trading hours {start}-{end} {s.trading_hours_timezone} (now {hhmm})"
        return None


def _special_liquidity(settings: TradingSettings, special_event: str | None) -> tuple[Decimal, str] | None:
    """(multiplier, special event) when a playoff or championship market must show more liquidity than a regular
    one (trading.position_sizing.special_events.*_liquidity_multiplier); None otherwise."""
    if special_event is None:
        return None
    factor = settings.liquidity_multiplier(special_event)
    return (factor, special_event) if factor != 1 else None


def _times(minimum: int, factor: Decimal) -> int:
    """A whole-contract minimum times a multiplier, rounded up (a market must show at least that)."""
    return int((Decimal(minimum) * factor).to_integral_value(rounding=ROUND_CEILING))


def _why(special: tuple[Decimal, str] | None) -> str:
    return "" if special is None else f"; {special[1]} market: x{special[0]} liquidity"
