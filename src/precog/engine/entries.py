"""Entry decisions of the trading loop: edge net of fees -> fractional Kelly size -> pre-trade risk approval.

This is the loop's own, deliberately small decision step (spec §5.1-§5.3): edge = p - price - fee per
contract on the side we would buy, min edge = max(global, strategy); f* = (p - c)/(1 - c), stake =
bankroll x f* x kelly_fraction capped by max_position_pct / max_position_dollars; contracts = floor(stake / c).
The risk approval checks trading state, market status, spread, one position per market (never both sides),
open-position and per-game limits, exposure and cash. No order is sent without an approved `EntryPlan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from precog.domain.fees import FeeSchedule
from precog.domain.market import Market
from precog.domain.money import CENT, ONE, ZERO, q4, to_decimal

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
                               "0.02"))


@dataclass(frozen=True)
class Edge:
    side: str
    p_true: Decimal  # of the side
    price: Decimal  # ask of the side
    fee_per_contract: Decimal
    edge: Decimal  # p - price - fee

    @property
    def ev_pct(self) -> Decimal:
        return q4(self.edge / self.price) if self.price > 0 else ZERO


@dataclass(frozen=True)
class EntryPlan:
    side: str
    quantity: int
    limit_price: Decimal
    order_type: str  # limit | market
    time_in_force: str
    edge: Edge


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


def shrink(p: Decimal) -> Decimal:
    return Decimal("0.5") + (p - Decimal("0.5")) * (ONE - SHRINK)


def best_edge(p_yes: Decimal, m: Market, fees: FeeSchedule) -> Edge | None:
    """The better side to buy at the current asks, edge net of the taker fee; None without a quote."""
    p = shrink(p_yes)
    out: list[Edge] = []
    for side, prob, ask in (("yes", p, m.yes_ask), ("no", ONE - p, m.no_ask)):
        if ask <= 0 or ask >= ONE:
            continue
        fee = fees.fee(1, ask)
        out.append(Edge(side, q4(prob), ask, fee, q4(prob - ask - fee)))
    return max(out, key=lambda e: e.edge) if out else None


def kelly_contracts(edge: Edge, bankroll: Decimal, fraction: Decimal, limits: RiskLimits) -> int:
    c = edge.price + edge.fee_per_contract
    if c >= ONE or edge.p_true <= c:
        return 0
    f_star = (edge.p_true - c) / (ONE - c)
    stake = bankroll * f_star * fraction
    stake = min(stake, bankroll * limits.max_position_pct, limits.max_position_dollars)
    if stake < limits.min_position_dollars:
        return 0
    return int((stake / c).to_integral_value(rounding=ROUND_FLOOR))


def plan_entry(p_yes: Decimal, m: Market, method: MethodSpec, pv: PortfolioView, limits: RiskLimits,
               fees: FeeSchedule, event_id: str) -> tuple[EntryPlan | None, str]:
    """An approved entry, or None and the reason it was refused."""
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
    if edge.edge > limits.max_edge:
        return None, f"edge {edge.edge} above the anomaly bound {limits.max_edge}"
    if m.ticker in pv.markets_held:
        return None, "already positioned in this market"
    if pv.open_positions >= limits.max_open_positions:
        return None, "max open positions"
    if pv.positions_by_game.get(event_id, 0) >= limits.max_positions_per_game:
        return None, "max positions per game"
    if pv.balance < limits.min_balance_to_trade:
        return None, "balance below the minimum to trade"
    qty = kelly_contracts(edge, pv.bankroll, method.kelly_fraction, limits)
    unit = edge.price + edge.fee_per_contract
    room = min(limits.max_total_exposure - pv.exposure,
               limits.max_exposure_per_game - pv.exposure_by_game.get(event_id, ZERO), pv.balance)
    if room <= 0:
        return None, "exposure limit reached"
    qty = min(qty, int((room / unit).to_integral_value(rounding=ROUND_FLOOR)))
    if qty <= 0:
        return None, "size below the minimum"
    if edge.edge >= limits.market_order_edge:
        # market-style: immediate-or-cancel at the far side, with the allowed slippage
        limit = min((edge.price * (ONE + limits.max_slippage_pct)).quantize(CENT, rounding=ROUND_CEILING),
                    Decimal("0.99"))
        return EntryPlan(edge.side, qty, limit, "market", "immediate_or_cancel", edge), "approved"
    return EntryPlan(edge.side, qty, edge.price, "limit", "good_till_canceled", edge), "approved"
