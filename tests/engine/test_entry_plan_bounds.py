"""The trading loop's entry planner (`precog.engine.entries`, used by `precog demo`,
`precog run --venue local` and backtests) keeps the bounds of spec 5.1-5.4."""

from __future__ import annotations

from decimal import Decimal as D

from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.engine.entries import MethodSpec, PortfolioView, RiskLimits, plan_entry, screen_entry


def _market(yes_bid: str, yes_ask: str) -> Market:
    b, a = D(yes_bid), D(yes_ask)
    return Market(ticker="KXNFLGAME-T-BUF", event_ticker="KXNFLGAME-T", status=MarketStatus.OPEN,
                  venue_status="active", yes_bid=b, yes_ask=a, no_bid=1 - a, no_ask=1 - b, last_price=b)


METHOD = MethodSpec(method_id=1, strategy_id=1, model_id=1, name="m", model_key="k", phase="live")


def _pv(exposure: str = "0") -> PortfolioView:
    return PortfolioView(balance=D("10000"), bankroll=D("10000"), open_positions=0, exposure=D(exposure),
                         markets_held=frozenset(), positions_by_game={}, exposure_by_game={})


def test_an_entry_below_min_position_dollars_is_not_planned() -> None:
    """Spec 5.3 "Caps, applied after Kelly: ... min $10"; trading.yaml kelly.min_position_dollars 10.00;
    docs/trading.md sizing: "count = the most whole contracts ... <= stake;  < $10 -> 0".

    `kelly_contracts` checks the minimum on the Kelly stake, and `plan_entry` checks it again when it shrinks
    the count to the exposure / cash room (`EngineRisk.approve` and the RiskManager have no minimum-size
    check), so $1 of room left plans no entry rather than a $0.52 one."""
    limits = RiskLimits()
    assert limits.min_position_dollars == D("10")
    # $1 of total exposure room left; edge 0.16 on YES at 0.50 (Kelly stake ~ $458 before the room)
    plan, reason = plan_entry(D("0.70"), _market("0.48", "0.50"), METHOD, _pv(exposure="9999"), limits,
                              FeeSchedule(), "KXNFLGAME-T")
    if plan is None:
        return  # refused: size below the minimum
    committed = plan.quantity * plan.limit_price + FeeSchedule().fee(plan.quantity, plan.limit_price)
    assert committed >= limits.min_position_dollars, (
        f"planned {plan.quantity} contract(s) at {plan.limit_price} = {committed} < min_position_dollars "
        f"{limits.min_position_dollars} ({reason})")


def test_an_edge_of_exactly_the_anomaly_bound_is_treated_as_suspicious() -> None:
    """Spec 5.1: "Edge-anomaly breaker treats >= 0.30 edges as suspicious"; spec 5.4 "3 edges >= 0.30";
    trading.yaml circuit_breakers.edge_anomaly.min_edge 0.30; `BreakerBoard.record_edge` counts edge >= 0.30.
    `screen_entry` refuses an edge at or above the bound, so an edge of exactly 0.3000 is not traded."""
    limits = RiskLimits()
    # p_yes 0.80 -> shrunk 0.77; YES ask 0.45 + 1-contract fee 0.02 -> edge exactly 0.3000
    edge, reason = screen_entry(D("0.80"), _market("0.41", "0.45"), METHOD, _pv(), limits, FeeSchedule())
    assert edge is None or edge.edge != limits.max_edge, (
        f"edge {edge.edge if edge else None} at the anomaly bound {limits.max_edge} is refused as suspicious "
        f"({reason})")
