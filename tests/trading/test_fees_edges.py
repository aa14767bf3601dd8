"""Edges net of Kalshi's fee: the fee formula, costs, YES/NO symmetry, thresholds."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from hypothesis import given
from hypothesis import strategies as st
from trading_testkit import DEFAULTS, settings

from precog.domain.fees import FeeSchedule
from precog.trading.edges import (
    CostTable,
    confidence_level,
    effective_min_edge,
    recommended_action,
    shrink,
    side_cost,
    side_edges,
)
from precog.trading.forecasts import Forecast

D = Decimal
ticks = st.integers(min_value=1, max_value=99).map(lambda c: D(c) / 100)
prices = st.integers(min_value=1, max_value=9999).map(lambda c: D(c) / 10000)
counts = st.integers(min_value=1, max_value=5000)
multipliers = st.sampled_from([D("0.5"), D("1"), D("1.5"), D("2")])


def test_fee_matches_hand_computed_cases() -> None:
    fees = FeeSchedule()
    assert fees.fee(1, D("0.50")) == D("0.02")  # 0.07 x 0.25 = 0.0175 -> 0.02
    assert fees.fee(100, D("0.50")) == D("1.75")  # exactly 1.75, no rounding
    assert fees.fee(10, D("0.10")) == D("0.07")  # 0.063 -> 0.07
    assert fees.fee(3, D("0.99")) == D("0.01")  # 0.002079 -> 0.01
    assert fees.fee(200, D("0.35")) == D("3.19")  # 0.07 x 200 x 0.2275 = 3.185 -> 3.19
    assert FeeSchedule(multiplier=D("0.5")).fee(100, D("0.50")) == D("0.88")  # 0.875 -> 0.88
    assert fees.fee(100, D("0.50"), taker=False) == D("0")  # makers pay nothing on default series


@given(counts, prices, multipliers)
def test_fee_is_the_ceiling_of_the_formula(count: int, price: Decimal, mult: Decimal) -> None:
    raw = D("0.07") * mult * count * price * (1 - price)
    fee = FeeSchedule(multiplier=mult).fee(count, price)
    assert fee == raw.quantize(D("0.01"), rounding=ROUND_CEILING)
    assert fee >= raw and fee - raw < D("0.01")


@given(counts, prices, multipliers)
def test_fee_is_monotone_and_symmetric(count: int, price: Decimal, mult: Decimal) -> None:
    fees = FeeSchedule(multiplier=mult)
    assert fees.fee(count + 1, price) >= fees.fee(count, price)
    assert fees.fee(count, price) == fees.fee(count, 1 - price)  # P(1-P) is symmetric
    if price < D("0.5"):
        assert fees.fee(count, price + D("0.0001")) >= fees.fee(count, price)  # rises toward 0.50
    assert FeeSchedule(multiplier=mult + 1).fee(count, price) >= fees.fee(count, price)


def test_side_cost_adds_price_fee_and_slippage() -> None:
    sc = side_cost(D("0.60"), FeeSchedule(), D("0.005"))
    assert sc.fee == D("0.02")  # 0.07 x 0.24 = 0.0168 -> 0.02 for a single contract
    assert sc.slippage == D("0.0030")
    assert sc.cost == D("0.6230")
    # the reference order size spreads the ceiling: 100 contracts -> 1.68 / 100
    assert side_cost(D("0.60"), FeeSchedule(), D("0.005"), 100).fee == D("0.0168")


def test_shrinkage_and_edge_worked_example() -> None:
    # p = 0.72 shrinks to 0.698; YES ask 0.60 costs 0.60 + 0.02 + 0.003 = 0.623
    assert shrink(D("0.72"), D("0.10")) == D("0.6980")
    yes, no = side_edges(D("0.58"), D("0.60"), D("0.6980"), CostTable(DEFAULTS), D("1"), DEFAULTS)
    assert yes is not None and no is not None
    assert yes.edge == D("0.0750") and yes.ev_pct == D("0.1204")  # 0.075 / 0.623
    assert no.price == D("0.42") and no.p_side == D("0.3020")
    assert no.edge == D("0.3020") - (D("0.42") + D("0.02") + D("0.0021"))


@given(ticks, st.integers(min_value=0, max_value=5).map(lambda c: D(c) / 100), prices, multipliers)
def test_yes_and_no_edges_are_mirror_images(bid: Decimal, spread: Decimal, p: Decimal, mult: Decimal) -> None:
    """A market seen from the other side (YES <-> NO, p <-> 1 - p) has the same two edges swapped."""
    ask = min(bid + spread, D("0.99"))
    costs = CostTable(DEFAULTS)
    factor = DEFAULTS.shrinkage_factor
    yes, no = side_edges(bid, ask, shrink(p, factor), costs, mult, DEFAULTS)
    m_yes, m_no = side_edges(1 - ask, 1 - bid, shrink(1 - p, factor), costs, mult, DEFAULTS)
    assert yes is not None and no is not None and m_yes is not None and m_no is not None
    assert (yes.edge, yes.price, yes.fee, yes.cost) == (m_no.edge, m_no.price, m_no.fee, m_no.cost)
    assert (no.edge, no.price, no.fee, no.cost) == (m_yes.edge, m_yes.price, m_yes.fee, m_yes.cost)
    assert yes.p_side + no.p_side == 1


@given(prices, prices)
def test_edge_equals_stored_parts(p: Decimal, price: Decimal) -> None:
    """The stored probability minus the stored price, fee and slippage is the stored edge, exactly."""
    yes, _ = side_edges(D("0.0001"), price, shrink(p, D("0.1")), CostTable(DEFAULTS), D("1"), DEFAULTS)
    if price < 1:
        assert yes is not None
        assert yes.edge == yes.p_side - (yes.price + yes.fee + yes.slippage)
        assert yes.edge == yes.edge.quantize(D("0.0001"))


def test_side_without_an_offer_has_no_edge() -> None:
    yes, no = side_edges(D("0"), D("1"), D("0.5"), CostTable(DEFAULTS), D("1"), DEFAULTS)
    assert yes is None and no is None


def test_recommended_action_thresholds() -> None:
    assert recommended_action(D("0.0799"), DEFAULTS) == "ignore"
    assert recommended_action(D("0.0800"), DEFAULTS) == "alert"
    assert recommended_action(D("0.1499"), DEFAULTS) == "alert"
    assert recommended_action(D("0.1500"), DEFAULTS) == "auto_execute"
    assert recommended_action(D("-0.2"), DEFAULTS) == "ignore"


def test_effective_min_edge_is_the_max_unless_the_method_overrides() -> None:
    cfg = settings()
    assert effective_min_edge(cfg, "nfl", D("0.08")) == D("0.08")  # strategy above global 0.05 / league 0.05
    assert effective_min_edge(cfg, "ncaaf", D("0.02")) == D("0.06")  # league ncaaf 0.06
    assert effective_min_edge(cfg, "mlb", None) == D("0.06")
    assert effective_min_edge(cfg, "nfl", D("0.08"), method_min=D("0.04")) == D("0.04")  # the method wins
    assert effective_min_edge(cfg, "nfl", D("0.08"), special_event="championship") == D("0.12")


def test_confidence_levels() -> None:
    assert confidence_level(Forecast(D("0.6"), D("0.9"), 600, D("0.05"))) == "high"
    assert confidence_level(Forecast(D("0.6"), D("0.9"), 300, D("0.12"))) == "medium"
    assert confidence_level(Forecast(D("0.6"), D("0.9"), 100, D("0.20"))) == "low"
    assert confidence_level(Forecast(D("0.6"), D("0.85"))) == "high"
    assert confidence_level(Forecast(D("0.6"), D("0.65"))) == "medium"
    assert confidence_level(Forecast(D("0.6"), D("0.40"))) == "low"
