"""Entry decisions of the trading loop: edge net of fees -> size -> pre-trade risk approval.

This is the loop's own, deliberately small decision step (spec §5.1-§5.3): edge = p - price - fee per
contract on the side we would buy, min edge = max(global, strategy); f* = (p - c)/(1 - c) must be > 0; the
stake by trading.yaml position_sizing.method (kelly: bankroll x f* x the method's kelly_fraction; fixed:
fixed_amount_dollars; fixed_fraction: bankroll x fixed_fraction) x the caller's size factor (the spec 5.3
high-volatility reduction, from the loop's rolling volatility estimate) capped by max_position_pct /
max_position_dollars, whatever the method; contracts = floor(stake / c), and what they commit (count x price +
the order's fee) at least min_position_dollars, also after the cut to the room left under the caps. A
market-style entry's limit is at most max_slippage_pct above the ask (rounded down to the cent) - the method's
execution_config max_slippage_percent when it is tighter (a method only tightens the global limit).
The risk approval checks trading state, market status, spread, one position per market (never both sides),
open-position and per-game limits, exposure and cash. No order is sent without an approved `EntryPlan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from precog.domain.fees import FeeSchedule
from precog.domain.market import Market
from precog.domain.money import CENT, ONE, ZERO, q4, to_decimal
from precog.trading.settings import SizingMethod
from precog.trading.sizing import method_stake

SHRINK = Decimal("0.10")  # probability_models.yaml edge_detection.shrinkage_factor


@dataclass(frozen=True, eq=False)
class MethodSpec:
    """One method = strategy + model + risk/execution config (the ids are database rows)."""

    method_id: int
    strategy_id: int
    model_id: int
    name: str
    model_key: str  # which probability source this method reads
    phase: str  # pre_game | live : when the method may enter
    min_edge: Decimal = Decimal("0.05")
    kelly_fraction: Decimal = Decimal("0.25")
    position_mgmt: dict[str, Any] | None = None  # the method's position_mgmt_config (exit rules, trailing stop)
    # the method's execution_config max_slippage_percent (MethodRuntime.max_slippage_pct); None: the global one
    max_slippage_pct: Decimal | None = None


@dataclass(frozen=True)
class RiskLimits:
    max_position_pct: Decimal = Decimal("0.05")
    min_position_dollars: Decimal = Decimal("10")
    max_position_dollars: Decimal = Decimal("500")
    max_open_positions: int = 10
    max_positions_per_game: int = 3
    max_exposure_per_game: Decimal = Decimal("1500")
    max_total_exposure: Decimal = Decimal("10000")
    min_balance_to_trade: Decimal = Decimal("1000")
    max_spread: Decimal = Decimal("0.05")
    min_edge_global: Decimal = Decimal("0.05")
    market_order_edge: Decimal = Decimal("0.15")
    max_slippage_pct: Decimal = Decimal("0.02")
    max_edge: Decimal = Decimal("0.30")  # edges above this are treated as suspicious (edge-anomaly breaker)
    sizing: SizingMethod = SizingMethod()  # trading.yaml position_sizing.method (+ fixed_amount_dollars / fixed_fraction)

    @classmethod
    def from_config(cls, trading: dict[str, Any], pm: dict[str, Any]) -> RiskLimits:
        k = trading.get("position_sizing", {}).get("kelly", {})
        acct = trading.get("account", {})
        port = pm.get("portfolio", {})
        edges = trading.get("edges", {})

        def d(v: Any, key: str, default: str) -> Decimal:
            return to_decimal(v if v is not None else default, field=key)

        return cls(
            max_position_pct=d(k.get("max_position_pct"), "trading.position_sizing.kelly.max_position_pct", "0.05"),
            min_position_dollars=d(k.get("min_position_dollars"), "kelly.min_position_dollars", "10"),
            max_position_dollars=d(k.get("max_position_dollars"), "kelly.max_position_dollars", "500"),
            max_open_positions=int(port.get("max_open_positions", 10)),
            max_positions_per_game=int(port.get("max_positions_per_game", 3)),
            max_exposure_per_game=d(port.get("max_exposure_per_game"), "portfolio.max_exposure_per_game", "1500"),
            max_total_exposure=d(acct.get("max_total_exposure_dollars"), "account.max_total_exposure_dollars",
                                 "10000"),
            min_balance_to_trade=d(acct.get("min_balance_to_trade_dollars"), "account.min_balance_to_trade_dollars",
                                   "1000"),
            max_spread=d(trading.get("market_filters", {}).get("max_spread_pct"), "market_filters.max_spread_pct",
                         "0.05"),
            min_edge_global=d(edges.get("min_edge_global"), "edges.min_edge_global", "0.05"),
            market_order_edge=d(edges.get("market_order_edge"), "edges.market_order_edge", "0.15"),
            max_slippage_pct=d(trading.get("execution", {}).get("max_slippage_pct"), "execution.max_slippage_pct",
                               "0.02"),
            max_edge=d(trading.get("circuit_breakers", {}).get("edge_anomaly", {}).get("min_edge"),
                       "circuit_breakers.edge_anomaly.min_edge", "0.30"),
            sizing=SizingMethod.from_trading(trading.get("position_sizing", {})))


@dataclass(frozen=True)
class Edge:
    side: str
    p_true: Decimal  # of the side
    price: Decimal  # ask of the side
    fee_per_contract: Decimal
    edge: Decimal  # p - price - fee

    @property
    def ev_pct(self) -> Decimal:
        """Return on cost (spec 5.1): (p - c) / c with c = price + fee per contract."""
        cost = self.price + self.fee_per_contract
        return q4(self.edge / cost) if cost > 0 else ZERO


@dataclass(frozen=True)
class EntryPlan:
    side: str
    quantity: int
    limit_price: Decimal
    order_type: str  # limit | market
    time_in_force: str
    edge: Edge
    adjustments: tuple[str, ...] = ()  # size reductions applied (e.g. "high_volatility")


@dataclass(frozen=True)
class PortfolioView:
    """What risk approval needs to know about us right now."""

    balance: Decimal
    bankroll: Decimal
    open_positions: int
    exposure: Decimal
    markets_held: frozenset[str]
    positions_by_game: dict[str, int]
    exposure_by_game: dict[str, Decimal]
    trading_state: str = "ACTIVE"


_HALF = Decimal("0.5")
_KEEP = ONE - SHRINK  # the share of a forecast's distance from 0.5 that shrinkage keeps


def shrink(p: Decimal) -> Decimal:
    return _HALF + (p - _HALF) * _KEEP


_ONE_CONTRACT_FEES: dict[tuple[FeeSchedule, Decimal], Decimal] = {}


def _fee_one(fees: FeeSchedule, price: Decimal) -> Decimal:
    """The taker fee of one contract at `price` (a pure function of both; every decision asks it twice)."""
    key = (fees, price)
    fee = _ONE_CONTRACT_FEES.get(key)
    if fee is None:
        if len(_ONE_CONTRACT_FEES) > 100_000:
            _ONE_CONTRACT_FEES.clear()
        fee = _ONE_CONTRACT_FEES[key] = fees.fee(1, price)
    return fee


def best_edge(p_yes: Decimal, m: Market, fees: FeeSchedule) -> Edge | None:
    """The better side to buy at the current asks, edge net of the taker fee (YES on a tie); None without a
    quote."""
    p = shrink(p_yes)
    best: tuple[str, Decimal, Decimal, Decimal, Decimal] | None = None
    for side, prob, ask in (("yes", p, m.yes_ask), ("no", ONE - p, m.no_ask)):
        if ask <= 0 or ask >= ONE:
            continue
        fee = _fee_one(fees, ask)
        edge = q4(prob - ask - fee)
        if best is None or edge > best[4]:
            best = (side, prob, ask, fee, edge)
    if best is None:
        return None
    side, prob, ask, fee, edge = best
    return Edge(side, q4(prob), ask, fee, edge)


_KELLY = SizingMethod()


def kelly_contracts(edge: Edge, bankroll: Decimal, fraction: Decimal, limits: RiskLimits,
                    size_factor: Decimal = ONE) -> int:
    """Whole contracts for bankroll x f* x fraction x size_factor, under the position caps."""
    return entry_contracts(edge, bankroll, fraction, limits, size_factor, sizing=_KELLY)


def entry_contracts(edge: Edge, bankroll: Decimal, fraction: Decimal, limits: RiskLimits,
                    size_factor: Decimal = ONE, *, sizing: SizingMethod | None = None) -> int:
    """Whole contracts for the sizing method's stake (`limits.sizing` unless given; `fraction` is the Kelly
    multiplier, used by kelly only) x size_factor, under the position caps and minimum; 0 without an edge."""
    c = edge.price + edge.fee_per_contract
    if c >= ONE or edge.p_true <= c:
        return 0
    f_star = (edge.p_true - c) / (ONE - c)
    base, _share = method_stake(sizing if sizing is not None else limits.sizing, bankroll, f_star, fraction, ONE)
    stake = base * max(size_factor, ZERO)
    stake = min(stake, bankroll * limits.max_position_pct, limits.max_position_dollars)
    if stake < limits.min_position_dollars:
        return 0
    count = int((stake / c).to_integral_value(rounding=ROUND_FLOOR))
    # whole contracts can commit less than the stake: the minimum holds for what is bought
    return count if count * c >= limits.min_position_dollars else 0


def screen_entry(p_yes: Decimal, m: Market, method: MethodSpec, pv: PortfolioView, limits: RiskLimits,
                 fees: FeeSchedule) -> tuple[Edge | None, str]:
    """The first checks of `plan_entry`, which need no sizing input: the edge worth pursuing, or None and the
    reason `plan_entry` would refuse with (a scan skips the sizing inputs of an entry refused here)."""
    if pv.trading_state != "ACTIVE":
        return None, f"trading state {pv.trading_state}"
    if not m.is_tradable:
        return None, "market not open"
    if m.yes_bid <= 0 or m.yes_ask >= ONE:
        return None, "no two-sided quote"
    if m.yes_ask - m.yes_bid > limits.max_spread:
        return None, f"spread {m.yes_ask - m.yes_bid} > {limits.max_spread}"
    edge = best_edge(p_yes, m, fees)
    if edge is None:
        return None, "no quote"
    min_edge = max(limits.min_edge_global, method.min_edge)
    if edge.edge < min_edge:
        return None, f"edge {edge.edge} < {min_edge}"
    if edge.edge >= limits.max_edge:  # spec 5.4: an edge of 0.30 or more is suspicious
        return None, f"edge {edge.edge} at or above the anomaly bound {limits.max_edge}"
    return edge, "screened"


def entry_slippage(method: MethodSpec, limits: RiskLimits) -> Decimal:
    """The most a market-style entry of `method` may pay above the ask, as a share of it: the global
    trading.execution.max_slippage_pct, or the method's own max_slippage_percent when that is tighter."""
    own = method.max_slippage_pct
    return limits.max_slippage_pct if own is None else min(own, limits.max_slippage_pct)


def plan_entry(p_yes: Decimal, m: Market, method: MethodSpec, pv: PortfolioView, limits: RiskLimits,
               fees: FeeSchedule, event_id: str, *, size_factor: Decimal = ONE,
               size_adjustments: tuple[str, ...] = ()) -> tuple[EntryPlan | None, str]:
    """An approved entry, or None and the reason it was refused. `size_factor` multiplies the stake (of the
    configured sizing method) before the caps (`size_adjustments` names the reductions it stands for; they are kept on the plan)."""
    edge, reason = screen_entry(p_yes, m, method, pv, limits, fees)
    if edge is None:
        return None, reason
    if m.ticker in pv.markets_held:
        return None, "already positioned in this market"
    if pv.open_positions >= limits.max_open_positions:
        return None, "max open positions"
    if pv.positions_by_game.get(event_id, 0) >= limits.max_positions_per_game:
        return None, "max positions per game"
    if pv.balance < limits.min_balance_to_trade:
        return None, "balance below the minimum to trade"
    qty = entry_contracts(edge, pv.bankroll, method.kelly_fraction, limits, size_factor)
    unit = edge.price + edge.fee_per_contract
    room = min(limits.max_total_exposure - pv.exposure,
               limits.max_exposure_per_game - pv.exposure_by_game.get(event_id, ZERO), pv.balance)
    if room <= 0:
        return None, "exposure limit reached"
    fits = int((room / unit).to_integral_value(rounding=ROUND_FLOOR))
    if fits < qty:  # cut to the room left: still at least the minimum position (spec 5.3: caps after Kelly)
        qty = fits
    # the minimum holds for what the order commits: its contracts at the ask and the fee of the whole order
    if qty <= 0 or qty * edge.price + fees.fee(qty, edge.price) < limits.min_position_dollars:
        return None, "size below the minimum"
    if edge.edge > limits.market_order_edge:  # spec 5.2 / 5.10: market when the edge is above 0.15
        # market-style: immediate-or-cancel at the far side, with at most the allowed slippage (rounded down to
        # the cent: below a 0.50 ask 2 % is less than a cent, so the limit is the ask itself)
        limit = min(max((edge.price * (ONE + entry_slippage(method, limits))).quantize(CENT, rounding=ROUND_FLOOR),
                        edge.price), Decimal("0.99"))
        return EntryPlan(edge.side, qty, limit, "market", "immediate_or_cancel", edge, size_adjustments), "approved"
    return EntryPlan(edge.side, qty, edge.price, "limit", "good_till_canceled", edge, size_adjustments), "approved"


# ---------------------------------------------------------------------------------------------- risk approval
# The planner above chooses candidates (its own timing, edge and Kelly size); every candidate is then put to the
# shared pre-trade gate, `precog.trading.risk.RiskManager` (spec 5.2), and only its `Approval` lets an entry order
# out: the executor consumes it right before sending. The RiskManager records each rejection with its reason.

# an Estimate carries a level; the risk gate compares a number with trading.edges.confidence_min (forecasts.grade:
# >= 0.80 high, >= 0.60 medium)
CONFIDENCE_OF_LEVEL = {"high": Decimal("0.90"), "medium": Decimal("0.75"), "low": Decimal("0.50")}


class PlannedStrategy:
    """Builds the EntryStrategy the risk gate reads (min edge, position/spread caps) for a strategy row whose
    timing the engine's planner already applied (its method phase): no phase block of its own."""

    @staticmethod
    def build(ref: Any, config: dict[str, Any]) -> Any:
        from precog.trading.strategies import EntryStrategy

        class _Planned(EntryStrategy):
            def phase_block(self, market: Any, game: Any, now: float) -> str | None:
                return None

        return _Planned(ref, config)


@dataclass
class _Unit:
    strategy: Any  # EntryStrategy
    model: Any  # ModelRef
    method: Any  # MethodRuntime


class _StateGate:
    """Entry gate for the risk manager from the engine's own trading state (when no breaker board is wired)."""

    def __init__(self, state: Any) -> None:
        self._state = state

    def entry_block(self, now: float) -> str | None:
        s = self._state()
        return None if s == "ACTIVE" else f"trading state {s}"


class EngineRisk:
    """The engine's bridge to the shared RiskManager: turns an `EntryPlan` into a `risk.OrderIntent`, asks for an
    `Approval`, and keeps the manager's exposure book in step with our positions and resting entries.

    Strategy, model and method rows (names, versions, statuses, risk and sport configs) are read from the
    database, so a deactivated method or strategy stops entries at once (the status check)."""

    def __init__(self, conn: Any, settings: Any, *, mode: str, gate: Any = None, record: bool = True) -> None:
        from precog.trading.edge_store import PgRejectionRecorder
        from precog.trading.risk import LIVE, PAPER, RiskManager

        self.conn = conn
        self.mode = mode
        risk_mode = LIVE if mode == "live" else PAPER
        recorder = PgRejectionRecorder(conn, mode) if record else None
        self.risk = RiskManager(settings, mode=risk_mode, gate=gate, recorder=recorder)
        self.units: dict[int, _Unit] = {}
        self._history: Any = None  # the last MethodHistory read for one run, and the close count it saw
        self._history_key: tuple[int, int] | None = None

    def load_units(self, methods: list[MethodSpec]) -> None:
        """(Re)read the rows behind `methods`; a method whose rows are missing gets no unit (never approved)."""
        from precog.trading.forecasts import ModelRef
        from precog.trading.method_config import MethodRuntime
        from precog.trading.strategies import StrategyRef

        if not methods:
            self.units = {}
            return
        rows = self.conn.execute(
            "SELECT me.method_id, me.method_name, me.method_version, me.status, me.risk_config, me.sport_config, "
            "me.execution_config, s.strategy_id, s.strategy_name, s.strategy_version, s.status, s.config, "
            "pm.model_id, pm.model_name, pm.model_version, pm.status FROM methods me "
            "JOIN strategies s ON s.strategy_id = me.strategy_id JOIN probability_models pm ON pm.model_id = me.model_id "
            "WHERE me.method_id = ANY(%s)", ([m.method_id for m in methods],)).fetchall()
        units: dict[int, _Unit] = {}
        for r in rows:
            method = MethodRuntime.from_configs(method_id=r[0], name=r[1], version=r[2], status=r[3],
                                                risk_config=r[4] or {}, sport_config=r[5] or {},
                                                execution_config=r[6] or {})
            strategy = PlannedStrategy.build(StrategyRef(r[7], r[8], r[9], r[10]), dict(r[11] or {}))
            units[int(r[0])] = _Unit(strategy, ModelRef(r[12], r[13], r[14], r[15]), method)
        self.units = units

    def sync(self, positions: list[Any], balance: Decimal, now: float | None = None,
             run_id: int | None = None, closes: int | None = None) -> None:
        """Per cycle: our open positions and balance, and the methods' closed positions (one query) for their
        own loss limits (daily loss, consecutive losses, rapid loss).

        With `run_id` (one run's own history, as a backtest reads it) and `closes` (how many positions that run
        has closed so far), the query runs again only after a close: no other writer adds to that history, and
        the rows it would drop meanwhile (older than its window) are trimmed in memory instead."""
        import time

        from precog.trading.method_risk import load_method_history

        self.risk.sync(positions, balance)
        at = time.time() if now is None else now
        if run_id is not None and closes is not None:
            if self._history is None or self._history_key != (run_id, closes):
                self._history = load_method_history(self.conn, self.mode, at, run_id)
                self._history_key = (run_id, closes)
            else:
                self._history.trim(at)
            self.risk.set_method_history(self._history)
            return
        self.risk.set_method_history(load_method_history(self.conn, self.mode, at, run_id))

    def approve(self, plan: EntryPlan, m: Market, method: MethodSpec, *, event_id: str, sport: str,
                confidence: str, now: float, close_ts: float | None = None) -> Any:
        """An Approval for `plan`, or a Rejection (recorded) naming the failed check."""
        from precog.trading.risk import OrderIntent
        from precog.trading.views import MarketView

        unit = self.units.get(method.method_id)
        view = MarketView(ticker=m.ticker, event_ticker=event_id, sport=sport, yes_bid=m.yes_bid, yes_ask=m.yes_ask,
                          status="open" if m.is_tradable else str(m.status.value), volume=int(m.volume or 0),
                          close_ts=close_ts if close_ts is not None else
                          (m.close_time.timestamp() if m.close_time is not None else None),
                          expected_expiration_ts=m.expected_expiration_time.timestamp()
                          if m.expected_expiration_time is not None else None,
                          quote_ts=now,  # the engine read this quote from the venue in this cycle
                          market_type=m.market_type,
                          volume_24h=int(m.volume_24h) if m.volume_24h is not None else None,
                          open_interest=int(m.open_interest) if m.open_interest is not None else None,
                          yes_bid_size=m.yes_bid_size, yes_ask_size=m.yes_ask_size,
                          open_ts=m.open_time.timestamp() if m.open_time is not None else None)
        if unit is None:
            from precog.trading.risk import Rejection

            rejection = Rejection(check="status", reason=f"method {method.name} (id {method.method_id}) has no "
                                  "stored method/strategy/model rows", market=view, side=plan.side,
                                  method_id=method.method_id, strategy_id=method.strategy_id,
                                  model_id=method.model_id, edge=plan.edge.edge, quantity=plan.quantity, at=now)
            self.risk.recorder.record(rejection)
            return rejection
        price = plan.edge.price
        slippage = plan.limit_price - price  # a market-style entry may pay up to its limit
        # fit the planner's Kelly size into the risk manager's dollar room (its caps count slippage and fees);
        # with no room left for the minimum position (spec 5.3: min $10 after every cap) the full size goes to
        # the gate, which names the exhausted limit
        room = min(h for _, h in self.risk.headroom(view, unit.strategy, unit.method))
        # the one-contract fee at the limit too: below 0.50 a fill above the ask pays a dearer fee per contract
        fee_one = max(plan.edge.fee_per_contract, self.risk.costs.schedule(view.fee_multiplier).fee(1, plan.limit_price))
        unit_cost = price + slippage + fee_one
        fits = int((room / unit_cost).to_integral_value(rounding=ROUND_FLOOR)) if room > 0 else 0
        quantity = plan.quantity
        if 1 <= fits < plan.quantity and fits * unit_cost >= self.risk.settings.min_position_dollars:
            quantity = fits
        intent = OrderIntent(
            intent_id=f"{method.method_id}:{m.ticker}:{plan.side}:{now:.3f}", market=view, side=plan.side,
            quantity=quantity, price=price, p_side=plan.edge.p_true, fee_per_contract=plan.edge.fee_per_contract,
            slippage=slippage, limit_price=plan.limit_price,
            edge=plan.edge.edge, ev_pct=plan.edge.ev_pct,
            confidence=CONFIDENCE_OF_LEVEL.get(confidence, Decimal("0.50")), confidence_level=confidence,
            strategy=unit.strategy, model=unit.model, method=unit.method, order_type=plan.order_type,
            stake=plan.limit_price * quantity, created_ts=now)
        return self.risk.approve(intent, now)

    def release(self, approval: Any) -> None:
        self.risk.release(approval)
