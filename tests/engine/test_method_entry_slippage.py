"""A method's execution_config `max_slippage_percent` (spec 8.1) caps the price of its market-style entries (an edge
above trading.edges.market_order_edge: immediate-or-cancel at the ask plus at most the allowed slippage); a method
can only tighten trading.execution.max_slippage_pct, never loosen it.

The audit found the key parsed (MethodRuntime.max_slippage_pct) and read by nothing: the conservative template's
0.015 silently became the global 0.02.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)
from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.engine.entries import MethodSpec, PortfolioView, RiskLimits, entry_slippage, plan_entry
from precog.ingest.scd2 import jsonb

EVENT = "KXNFLGAME-T"


def _market(bid: str, ask: str) -> Market:
    b, a = D(bid), D(ask)
    return Market(ticker=f"{EVENT}-BUF", event_ticker=EVENT, status=MarketStatus.OPEN, venue_status="active",
                  yes_bid=b, yes_ask=a, no_bid=1 - a, no_ask=1 - b, last_price=b)


def _pv() -> PortfolioView:
    return PortfolioView(balance=D("10000"), bankroll=D("10000"), open_positions=0, exposure=D("0"),
                         markets_held=frozenset(), positions_by_game={}, exposure_by_game={})


def _spec(slippage: str | None) -> MethodSpec:
    return MethodSpec(method_id=1, strategy_id=1, model_id=1, name="m", model_key="k", phase="live",
                      max_slippage_pct=None if slippage is None else D(slippage))


@pytest.mark.parametrize(("method_slippage", "limit"), [
    (None, "0.61"),  # the global 0.02: 0.612 -> 0.61
    ("0.015", "0.60"),  # the conservative template: 0.609 -> 0.60, the ask itself
    ("0.05", "0.61"),  # looser than the global: the global still caps it (0.63 otherwise)
    ("0", "0.60"),
])
def test_the_methods_slippage_caps_its_market_style_entry_when_tighter(method_slippage: str | None,
                                                                       limit: str) -> None:
    limits = RiskLimits()
    assert limits.max_slippage_pct == D("0.02")
    plan, reason = plan_entry(D("0.85"), _market("0.58", "0.60"), _spec(method_slippage), _pv(), limits,
                              FeeSchedule(), EVENT)
    assert plan is not None, reason
    assert plan.order_type == "market" and plan.time_in_force == "immediate_or_cancel"
    assert plan.limit_price == D(limit)
    assert plan.limit_price <= plan.edge.price * (1 + entry_slippage(_spec(method_slippage), limits))


def test_a_limit_entry_is_at_the_ask_whatever_the_methods_slippage() -> None:
    # an edge at or below market_order_edge rests a limit order at the ask: no slippage allowance to cap
    plan, reason = plan_entry(D("0.62"), _market("0.49", "0.50"), _spec("0.10"), _pv(), RiskLimits(), FeeSchedule(),
                              EVENT)
    assert plan is not None, reason
    assert (plan.order_type, plan.limit_price) == ("limit", D("0.50"))


async def _market_entry_price(rig: Any, execution: dict[str, Any], slippage: str | None) -> D:
    live = next(m for m in rig.methods if m.phase == "live")
    row = rig.conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config, "
        "execution_config, sport_config, config_hash, status) VALUES ('slip', 'v1.0', %s, %s, '{}', %s, %s, %s, "
        "'test-slip', 'active') RETURNING method_id",
        (live.strategy_id, live.model_id, jsonb({"kelly_fraction": "0.25"}), jsonb(execution),
         jsonb({"nfl": {"enabled": True}}))).fetchone()
    rig.methods = [MethodSpec(method_id=row[0], strategy_id=live.strategy_id, model_id=live.model_id, name="slip",
                              model_key=live.model_key, phase="live", min_edge=D("0.05"), kelly_fraction=D("0.25"),
                              max_slippage_pct=None if slippage is None else D(slippage))]
    rig.quote("0.58", "0.60")
    rig.probs.p[rig.ticker] = D("0.85")
    engine = rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.rows("SELECT 1 FROM orders WHERE purpose = 'entry'"))
    ((order_type, tif, price),) = rig.rows("SELECT order_type, time_in_force, limit_price FROM orders "
                                          "WHERE purpose = 'entry'")
    assert (order_type, tif) == ("market", "immediate_or_cancel")
    return D(price)


async def test_the_loop_sends_the_methods_tighter_limit(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    assert await _market_entry_price(rig, {"max_slippage_percent": "0.015"}, "0.015") == D("0.60")
    assert rig.open_positions()  # filled at the ask


async def test_the_loop_sends_the_global_limit_without_a_method_value(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    assert await _market_entry_price(rig, {}, None) == D("0.61")
