"""Kelly sizing: the formula, caps never exceeded, zero without edge, smaller with higher fees."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st
from trading_testkit import DEFAULTS, settings

from precog.domain.fees import FeeSchedule
from precog.trading.edges import side_cost
from precog.trading.sizing import (
    contracts_for,
    kelly_fraction,
    kelly_multiplier,
    size_adjustment,
    size_position,
)

D = Decimal
probs = st.integers(min_value=1, max_value=9999).map(lambda c: D(c) / 10000)
ticks = st.integers(min_value=1, max_value=99).map(lambda c: D(c) / 100)
dollars = st.integers(min_value=0, max_value=2_000_000).map(lambda c: D(c) / 100)
mults = st.sampled_from([D("0.5"), D("1"), D("2"), D("3")])


def _size(p: Decimal, price: Decimal, mult: Decimal, bankroll: Decimal, fraction: Decimal,
          caps: list[tuple[str, Decimal]], min_position: Decimal = D("10")):  # type: ignore[no-untyped-def]
    fees = FeeSchedule(multiplier=mult)
    sc = side_cost(price, fees, D("0.005"))
    return size_position(p=p, price=price, fee_per_contract=sc.fee, slippage=sc.slippage, fees=fees,
                         bankroll=bankroll, fraction=fraction, caps=caps, min_position=min_position), sc, fees


def test_kelly_formula_hand_cases() -> None:
    assert kelly_fraction(D("0.60"), D("0.50")) == D("0.2")  # (0.60 - 0.50) / 0.50
    assert kelly_fraction(D("0.70"), D("0.65")) == D("0.05") / D("0.35")
    assert kelly_fraction(D("0.50"), D("0.50")) == 0
    assert kelly_fraction(D("0.40"), D("0.50")) == 0  # never negative
    # buying at 0.45 costs 0.45 + 0.02 fee + 0.0023 slippage = 0.4723 per contract
    result, _, _ = _size(D("0.6"), D("0.45"), D("1"), D("10000"), D("0.25"), [])
    assert result.kelly == (D("0.6") - D("0.4723")) / (1 - D("0.4723"))
    assert result.target == D("10000") * result.kelly * D("0.25")  # $604.98
    assert result.count == 1288 and result.stake == D("0.4523") * 1288 + D("22.32") == D("604.8824")


def test_whole_contracts_fit_the_stake_exactly() -> None:
    fees = FeeSchedule()
    count, total, fee = contracts_for(D("100"), D("0.50"), D("0.0025"), fees)
    assert count == 192 and fee == fees.fee(192, D("0.50")) == D("3.36")
    assert total == D("0.5025") * 192 + fee == D("99.84")
    assert D("0.5025") * 193 + fees.fee(193, D("0.50")) > D("100")  # one more would not fit


@given(probs, ticks, mults, dollars, st.sampled_from([D("0.10"), D("0.25"), D("0.50")]),
       st.lists(dollars, min_size=0, max_size=4))
def test_size_never_negative_never_above_any_cap(p: Decimal, price: Decimal, mult: Decimal, bankroll: Decimal,
                                                  fraction: Decimal, caps: list[Decimal]) -> None:
    named = [(f"cap{i}", c) for i, c in enumerate(caps)]
    result, sc, fees = _size(p, price, mult, bankroll, fraction, named)
    assert result.count >= 0 and result.stake >= 0
    for _, cap in named:
        assert result.stake <= cap
    if result.count:
        assert result.stake == (price + sc.slippage) * result.count + fees.fee(result.count, price)
        assert result.stake <= result.target  # never above the Kelly stake either
        assert result.stake >= D("10")  # the minimum position
        assert p > sc.cost  # only with an edge


@given(ticks, mults, dollars)
def test_zero_without_edge(price: Decimal, mult: Decimal, bankroll: Decimal) -> None:
    sc = side_cost(price, FeeSchedule(multiplier=mult), D("0.005"))
    for p in (sc.cost, max(D("0"), sc.cost - D("0.01")), price):
        result, _, _ = _size(p, price, mult, bankroll, D("0.25"), [])
        assert result.count == 0 and result.stake == 0


@given(probs, ticks, dollars)
def test_size_shrinks_as_fees_grow(p: Decimal, price: Decimal, bankroll: Decimal) -> None:
    """More fees never buy more contracts. Without a minimum position: with the $10 minimum, a size whose
    whole contracts and cent-rounded fee commit a fraction of a cent under $10 is refused while a dearer fee
    can land just over it (p=0.9493 at 0.01 on $42.20: 956 contracts commit $9.9956 at half fees, 926 commit
    $10.0026 at full fees), so there the property is that a size is either nothing or at least the minimum."""
    previous = None
    for mult in (D("0"), D("0.5"), D("1"), D("2"), D("4")):
        result, _, _ = _size(p, price, mult, bankroll, D("0.25"), [("cap", D("5000"))], min_position=D("0"))
        if previous is not None:
            assert result.count <= previous.count
            assert result.kelly <= previous.kelly
        previous = result
        floored, _, _ = _size(p, price, mult, bankroll, D("0.25"), [("cap", D("5000"))])
        assert floored.count == 0 or (floored.count <= result.count and floored.stake >= D("10"))


@given(probs, ticks)
def test_more_edge_never_means_a_smaller_stake(p: Decimal, price: Decimal) -> None:
    assume(p < D("0.99"))
    low, _, _ = _size(p, price, D("1"), D("50000"), D("0.25"), [("cap", D("2500"))])
    high, _, _ = _size(p + D("0.01"), price, D("1"), D("50000"), D("0.25"), [("cap", D("2500"))])
    assert high.count >= low.count


def test_kelly_multiplier_precedence_and_special_events() -> None:
    cfg = settings()
    assert kelly_multiplier(cfg, "nfl") == D("0.25")
    assert kelly_multiplier(cfg, "nba") == D("0.22")
    assert kelly_multiplier(cfg, "nfl", method_fraction=D("0.15")) == D("0.15")
    assert kelly_multiplier(cfg, "nfl", strategy_fraction=D("0.50"), method_fraction=D("0.15")) == D("0.50")
    assert kelly_multiplier(cfg, "nfl", special_event="playoffs") == D("0.125")
    assert kelly_multiplier(cfg, "nfl", special_event="championship") == D("0.075")
    assert kelly_multiplier(cfg, "nfl", strategy_fraction=D("0.9")) == D("0.50")  # never above the allowed max


def test_size_adjustments_of_spec_5_3() -> None:
    adj = DEFAULTS.adjustments
    factor, names = size_adjustment(adj, volume=1000, spread=D("0.01"), seconds_to_settlement=3600.0,
                                    confidence=D("0.9"), ci_width=None, volatility_ratio=None)
    assert factor == 1 and names == ()
    factor, names = size_adjustment(adj, volume=49, spread=D("0.04"), seconds_to_settlement=3 * 3600 + 1.0,
                                    confidence=D("0.69"), ci_width=D("0.05"), volatility_ratio=D("2"))
    assert names == ("low_volume", "wide_spread", "far_from_settlement", "low_confidence", "ci_width",
                     "high_volatility")
    assert factor == D("0.5") * D("0.75") * D("0.8") * D("0.6") * D("0.9") * D("0.7")
    # exactly at the thresholds nothing applies except where the spec says ">=" (spread, volatility)
    factor, names = size_adjustment(adj, volume=50, spread=D("0.0399"), seconds_to_settlement=3 * 3600.0,
                                    confidence=D("0.70"), ci_width=D("0"), volatility_ratio=D("1.99"))
    assert factor == 1 and names == ()
