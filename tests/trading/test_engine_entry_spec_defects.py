"""The trading loop's entry planner and its bridge to the risk gate (`precog.engine.entries`: `precog demo`,
`precog run --venue local`, backtests) against spec 5.1-5.3. Each test is a defect the audit found:

* the bridge cut an entry to the room left under the caps without the $10 minimum (a $2.69 entry);
* a planned size could commit less than the minimum (the minimum was checked on the stake before whole contracts);
* the market-style entry's limit was rounded UP to the cent: at a 0.10 ask it allowed 10 % slippage, not 2 %;
* the planner's EV% divided the edge by the price, not by the cost (spec 5.1: (p - c) / c).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from trading_testkit import NOW

from precog.config.loader import load_config
from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.engine.demo import ensure_demo_methods
from precog.engine.entries import (
    Edge,
    EngineRisk,
    EntryPlan,
    MethodSpec,
    PortfolioView,
    RiskLimits,
    entry_contracts,
    plan_entry,
)
from precog.trading.risk import Approval, Rejection
from precog.trading.settings import SizingMethod, TradingSettings
from precog.trading.views import PositionView

D = Decimal
EVENT = "KXNFLGAME-T"
METHOD = MethodSpec(method_id=1, strategy_id=1, model_id=1, name="m", model_key="k", phase="live")


def _market(bid: str, ask: str, **kw: Any) -> Market:
    b, a = D(bid), D(ask)
    base: dict[str, Any] = dict(
        ticker=f"{EVENT}-BUF", event_ticker=EVENT, status=MarketStatus.OPEN, venue_status="active", yes_bid=b,
        yes_ask=a, no_bid=1 - a, no_ask=1 - b, last_price=b, volume=D("1000"), volume_24h=D("1000"),
        open_interest=D("1000"), yes_bid_size=D("1000"), yes_ask_size=D("1000"),
        open_time=datetime.fromtimestamp(NOW, UTC) - timedelta(days=1),
        close_time=datetime.fromtimestamp(NOW, UTC) + timedelta(hours=2))
    base.update(kw)
    return Market(**base)


def _pv() -> PortfolioView:
    return PortfolioView(balance=D("10000"), bankroll=D("10000"), open_positions=0, exposure=D("0"),
                         markets_held=frozenset(), positions_by_game={}, exposure_by_game={})


def _fixed(amount: str) -> RiskLimits:
    return RiskLimits(sizing=SizingMethod("fixed", fixed_amount=D(amount)))


# ------------------------------------------------------------------ the bridge's cut to the room left

def _bridge(conn: psycopg.Connection[Any], held_in_game: Decimal) -> tuple[EngineRisk, MethodSpec]:
    specs = ensure_demo_methods(conn)
    bridge = EngineRisk(conn, TradingSettings.from_config(load_config(use_env=False)), mode="paper", record=False)
    bridge.load_units(specs)
    held = PositionView(f"{EVENT}-SPREAD", EVENT, "nfl", "yes", 100, held_in_game)
    bridge.sync([held], D("10000"), now=NOW)
    return bridge, specs[0]


def _approve(bridge: EngineRisk, spec: MethodSpec, quantity: int) -> Approval | Rejection:
    edge = Edge("yes", D("0.70"), D("0.52"), D("0.02"), D("0.16"))
    plan = EntryPlan("yes", quantity, D("0.52"), "limit", "good_till_canceled", edge)
    out: Approval | Rejection = bridge.approve(plan, _market("0.50", "0.52"), spec, event_id=EVENT, sport="nfl",
                                              confidence="high", now=NOW)
    return out


def test_the_bridge_never_cuts_an_entry_below_the_minimum_position(db_url: str) -> None:
    """$3 of room left in the game ($1,497 of $1,500 held): 5 contracts would fit ($2.69). Spec 5.3 "min $10"
    applies after every cap, so the entry is refused (the gate names the exhausted limit), never sent for $2.69."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        bridge, spec = _bridge(conn, D("1497"))
        out = _approve(bridge, spec, 100)
        assert isinstance(out, Rejection), f"approved {out.intent.quantity} contracts for ${out.cost}"
        assert out.check == "game_exposure"


def test_the_bridge_still_cuts_an_entry_to_the_room_when_the_minimum_fits(db_url: str) -> None:
    """$30 of room: 55 contracts at 0.52 + one-contract fee 0.02 fit (committing $29.57 with the order's fee)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        bridge, spec = _bridge(conn, D("1470"))
        out = _approve(bridge, spec, 100)
        assert isinstance(out, Approval), out.reason
        assert out.intent.quantity == 55 and out.cost == D("0.52") * 55 + FeeSchedule().fee(55, D("0.52"))
        assert out.cost >= D("10")


# ------------------------------------------------------------------ the planned size and the minimum

def test_a_planned_entry_never_commits_less_than_the_minimum_position() -> None:
    """fixed $10.00 at the 0.52 ask (+ 0.02 one-contract fee): 18 whole contracts commit $9.72 -> no entry."""
    m = _market("0.50", "0.52")
    edge = Edge("yes", D("0.68"), D("0.52"), D("0.02"), D("0.14"))
    assert entry_contracts(edge, D("10000"), D("0.25"), _fixed("10.00")) == 0
    plan, reason = plan_entry(D("0.70"), m, METHOD, _pv(), _fixed("10.00"), FeeSchedule(), EVENT)
    assert plan is None and reason == "size below the minimum"


@pytest.mark.parametrize(("amount", "expected"), [("10.00", None), ("10.50", 21)])
def test_the_minimum_is_the_order_s_cost_with_its_own_fee(amount: str, expected: int | None) -> None:
    """At the 0.48 ask, $10.00 buys 20 contracts at 0.48 + 0.02: 20 x 0.48 + fee(20) $0.35 = $9.95 < $10;
    $10.50 buys 21 committing 21 x 0.48 + $0.37 = $10.45."""
    plan, _ = plan_entry(D("0.66"), _market("0.46", "0.48"), METHOD, _pv(), _fixed(amount), FeeSchedule(), EVENT)
    if expected is None:
        assert plan is None
        return
    assert plan is not None and plan.quantity == expected and plan.order_type == "limit"
    assert plan.quantity * plan.limit_price + FeeSchedule().fee(plan.quantity, plan.limit_price) == D("10.45")


# ------------------------------------------------------------------ market-style slippage

@pytest.mark.parametrize(("p_yes", "bid", "ask", "limit"), [
    ("0.30", "0.09", "0.10", "0.10"),  # 2 % of 0.10 is 0.002: no whole cent of slippage fits
    ("0.7222", "0.48", "0.50", "0.51"),  # exactly 2 %
    ("0.85", "0.58", "0.60", "0.61"),  # 0.612 -> 0.61
])
def test_a_market_style_entry_never_allows_more_than_the_configured_slippage(p_yes: str, bid: str, ask: str,
                                                                             limit: str) -> None:
    """trading.yaml execution.max_slippage_pct 0.02: the immediate-or-cancel limit is at most 2 % above the ask."""
    limits = RiskLimits()
    plan, reason = plan_entry(D(p_yes), _market(bid, ask), METHOD, _pv(), limits, FeeSchedule(), EVENT)
    assert plan is not None, reason
    assert plan.order_type == "market" and plan.edge.edge >= limits.market_order_edge
    assert plan.limit_price == D(limit)
    assert plan.limit_price <= plan.edge.price * (1 + limits.max_slippage_pct)


# ------------------------------------------------------------------ EV%

def test_the_planner_s_ev_pct_is_the_edge_over_the_cost() -> None:
    """Spec 5.1: EV% = (p - c) / c with c the cost of a contract (price + fee): 0.16 / 0.54."""
    edge = Edge("yes", D("0.70"), D("0.52"), D("0.02"), D("0.16"))
    assert edge.ev_pct == D("0.2963")
    assert Edge("no", D("0.30"), D("0.50"), D("0.02"), D("-0.22")).ev_pct == D("-0.4231")
