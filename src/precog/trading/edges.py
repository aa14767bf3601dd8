"""Edges net of fees: the per-contract advantage of buying one side of a binary market (spec 5.1).

For a side bought at price P (the YES ask, or the NO ask = 1 - YES bid) with belief p (after shrinkage
toward 0.5):

    fee       = FeeSchedule.fee(N, P) / N       Kalshi taker fee per contract for an order of N (N from
                                                trading.edges.fee_reference_contracts; 1 = the worst case)
    slippage  = P x expected_slippage_pct
    cost  c   = P + fee + slippage
    edge      = p - c                           (edges.expected_value, per contract, in dollars)
    ev_pct    = (p - c) / c                     (return on cost)

All four are rounded half-up to 4 places (the storage precision) before they are combined, so the stored
`true_win_probability - (market_price + fee_per_contract + slippage)` equals the stored edge exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from precog.domain.fees import FeeSchedule
from precog.domain.money import ONE, ZERO
from precog.trading.forecasts import Forecast, grade
from precog.trading.settings import TradingSettings

HALF = Decimal("0.5")
Q4 = Decimal("0.0001")

IGNORE = "ignore"
ALERT = "alert"
AUTO_EXECUTE = "auto_execute"


def q4(value: Decimal) -> Decimal:
    return value.quantize(Q4, rounding=ROUND_HALF_UP)


def shrink(p: Decimal, factor: Decimal) -> Decimal:
    """Uncertainty shrinkage toward 0.5: p' = 0.5 + (p - 0.5)(1 - factor), rounded to 4 places.

    Ties round half-even so that shrink(1 - p) == 1 - shrink(p) exactly (half-up would break the YES/NO
    symmetry for every p ending in 5)."""
    return (HALF + (p - HALF) * (ONE - factor)).quantize(Q4, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class SideCost:
    price: Decimal
    fee: Decimal  # per contract
    slippage: Decimal  # per contract
    cost: Decimal  # price + fee + slippage


class PriceCosts(dict[Decimal, SideCost]):
    """price -> SideCost for one fee multiplier; a missing price is computed on first use (`table[price]`)."""

    __slots__ = ("schedule", "slippage_pct", "reference_contracts", "taker")

    def __init__(self, schedule: FeeSchedule, slippage_pct: Decimal, reference_contracts: int, taker: bool) -> None:
        super().__init__()
        self.schedule = schedule
        self.slippage_pct = slippage_pct
        self.reference_contracts = reference_contracts
        self.taker = taker

    def __missing__(self, price: Decimal) -> SideCost:
        found = side_cost(price, self.schedule, self.slippage_pct, self.reference_contracts, taker=self.taker)
        if len(self) < 200000:
            self[price] = found
        return found


class CostTable:
    """Per-contract costs by (fee multiplier, price), computed once: prices live on a small tick grid, so
    the fee function (ceil to the cent) runs once per distinct price instead of once per market."""

    __slots__ = ("_tables", "_fees", "_slip", "_n", "_taker", "_taker_rate", "_maker_rate")

    def __init__(self, settings: TradingSettings) -> None:
        self._tables: dict[Decimal, PriceCosts] = {}
        self._slip = settings.expected_slippage_pct
        self._n = settings.fee_reference_contracts
        self._taker = settings.assume_taker
        self._taker_rate = settings.taker_rate
        self._maker_rate = settings.maker_rate
        self._fees: dict[Decimal, FeeSchedule] = {}

    def schedule(self, multiplier: Decimal) -> FeeSchedule:
        fees = self._fees.get(multiplier)
        if fees is None:
            fees = FeeSchedule(taker_rate=self._taker_rate, maker_rate=self._maker_rate, multiplier=multiplier)
            self._fees[multiplier] = fees
        return fees

    def table(self, multiplier: Decimal) -> PriceCosts:
        """The price -> cost table of one fee multiplier (index it with a price)."""
        found = self._tables.get(multiplier)
        if found is None:
            found = self._tables[multiplier] = PriceCosts(self.schedule(multiplier), self._slip, self._n, self._taker)
        return found

    def get(self, price: Decimal, multiplier: Decimal) -> SideCost:
        return self.table(multiplier)[price]


def side_cost(price: Decimal, fees: FeeSchedule, slippage_pct: Decimal, reference_contracts: int = 1, *,
              taker: bool = True) -> SideCost:
    """Cost per contract of buying at `price`: price + fee (ceil, conservative) + expected slippage."""
    n = max(1, reference_contracts)
    fee = fees.fee(n, price, taker=taker)
    if n > 1:
        fee = (fee / n).quantize(Q4, rounding=ROUND_CEILING)
    slip = q4(price * slippage_pct)
    return SideCost(price, fee, slip, price + fee + slip)


def confidence_level(forecast: Forecast) -> str:
    """high / medium / low for a forecast: the model's own grade, else `forecasts.grade` of its numbers."""
    return forecast.level or grade(forecast.confidence, forecast.sample_size, forecast.ci_width)


def recommended_action(edge: Decimal, settings: TradingSettings) -> str:
    """auto_execute at >= auto_execute_at (0.15), alert at >= alert_at (0.08), otherwise ignore.

    This is the notification/urgency label stored with the edge; whether an edge becomes a trade is decided
    by the strategy against the effective minimum edge (see `effective_min_edge`)."""
    if edge >= settings.auto_execute_at:
        return AUTO_EXECUTE
    if edge >= settings.alert_at:
        return ALERT
    return IGNORE


def effective_min_edge(settings: TradingSettings, sport: str, strategy_min: Decimal | None,
                       method_min: Decimal | None = None, special_event: str | None = None) -> Decimal:
    """max(global, league, strategy) - unless the method sets its own minimum, which then wins.

    Championship events require championship_min_edge_multiplier (1.5) x that."""
    if method_min is not None:
        base = method_min
    else:
        base = max(settings.min_edge_global, settings.league_min_edge(sport),
                   strategy_min if strategy_min is not None else ZERO)
    if special_event == "championship":
        base = q4(base * settings.championship_min_edge_multiplier)
    return base


@dataclass(slots=True)
class EdgeRecord:
    """One side of one market under one (strategy, model, method): what `edges` stores."""

    ticker: str
    event_ticker: str
    side: str
    p_side: Decimal  # true_win_probability of the side (after shrinkage)
    price: Decimal  # market_price: the ask we would pay
    implied: Decimal  # market_implied_probability: the side's mid
    fee: Decimal
    slippage: Decimal
    cost: Decimal
    edge: Decimal  # expected_value per contract
    ev_pct: Decimal
    confidence: Decimal
    confidence_level: str
    action: str
    strategy_id: int | None
    model_id: int | None
    method_id: int | None
    sample_size: int | None = None
    ci_width: Decimal | None = None
    min_edge: Decimal | None = None
    signal: bool = False
    reason: str | None = None  # why it is not a trade signal
    market_version_id: int | None = None

    @property
    def edge_key(self) -> str:
        return edge_key_of(self.ticker, self.side, self.strategy_id, self.model_id, self.method_id)


def edge_key_of(ticker: str, side: str, strategy_id: int | None, model_id: int | None, method_id: int | None) -> str:
    """The `edges` SCD2 business key: market | side | strategy | model | method."""
    return (f"{ticker}|{side}|{strategy_id if strategy_id is not None else '-'}|"
            f"{model_id if model_id is not None else '-'}|{method_id if method_id is not None else '-'}")


class SideEdge:
    """One side of one market under one model: computed once, shared by every unit using that model."""

    __slots__ = ("side", "p_side", "costs", "edge", "action")

    def __init__(self, side: str, p_side: Decimal, sc: SideCost, alert_at: Decimal, auto_execute_at: Decimal) -> None:
        self.side = side
        self.p_side = p_side
        self.costs = sc
        # p_side and every cost part carry 4 places, so the difference is exact
        edge = self.edge = p_side - sc.cost
        self.action = AUTO_EXECUTE if edge >= auto_execute_at else ALERT if edge >= alert_at else IGNORE

    @property
    def price(self) -> Decimal:
        return self.costs.price

    @property
    def fee(self) -> Decimal:
        return self.costs.fee

    @property
    def slippage(self) -> Decimal:
        return self.costs.slippage

    @property
    def cost(self) -> Decimal:
        return self.costs.cost

    @property
    def ev_pct(self) -> Decimal:
        """(p - c) / c, rounded to 4 places."""
        return (self.edge / self.costs.cost).quantize(Q4, rounding=ROUND_HALF_UP)


class ShrinkTable(dict[Decimal, Decimal]):
    """p -> shrunk p, memoised (`table[p]`; model outputs carry 4 places, so there are few distinct values)."""

    __slots__ = ("factor",)

    def __init__(self, factor: Decimal) -> None:
        super().__init__()
        self.factor = factor

    def __missing__(self, p: Decimal) -> Decimal:
        found = shrink(p, self.factor)
        if len(self) < 100000:
            self[p] = found
        return found

    def __call__(self, p: Decimal) -> Decimal:
        return self[p]


def side_edges(yes_bid: Decimal, yes_ask: Decimal, p_yes_shrunk: Decimal, costs: CostTable | PriceCosts,
               multiplier: Decimal, settings: TradingSettings) -> tuple[SideEdge | None, SideEdge | None]:
    """Both sides of a market for a belief already shrunk: YES at the YES ask, NO at 1 - YES bid.

    A side with no offer (price <= 0 or >= 1) is None."""
    table = costs.table(multiplier) if isinstance(costs, CostTable) else costs
    alert_at, auto_at = settings.alert_at, settings.auto_execute_at
    yes = no = None
    if ZERO < yes_ask < ONE:
        yes = SideEdge("yes", p_yes_shrunk, table[yes_ask], alert_at, auto_at)
    no_price = ONE - yes_bid
    if ZERO < no_price < ONE:
        no = SideEdge("no", ONE - p_yes_shrunk, table[no_price], alert_at, auto_at)
    return yes, no
