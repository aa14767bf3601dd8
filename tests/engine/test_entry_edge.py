"""The edge an entry decision acts on: p (shrunk toward 0.5) - ask - the one-contract taker fee, on the better
side, to 4 places; YES when both sides are equal; None without an ask inside (0, 1)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.engine.entries import best_edge

D = Decimal


def _market(yes_bid: Decimal, yes_ask: Decimal) -> Market:
    return Market(ticker="KXT-1", event_ticker="KXT", status=MarketStatus.OPEN, venue_status="active",
                  yes_bid=yes_bid, yes_ask=yes_ask, no_bid=1 - yes_ask, no_ask=1 - yes_bid, last_price=yes_bid)


def _spec_edge(p_yes: Decimal, ask: Decimal, rate: Decimal, multiplier: Decimal) -> tuple[Decimal, Decimal]:
    """Spec 5.1 written out: (fee, edge) of buying one contract at `ask` with P(side) = p_yes (already the side's)."""
    p = D("0.5") + (p_yes - D("0.5")) * D("0.9")
    raw = rate * multiplier * ask * (1 - ask)
    fee = raw.quantize(D("0.01"), rounding=ROUND_CEILING) if raw > 0 else D(0)
    return fee, (p - ask - fee).quantize(D("0.0001"), rounding=ROUND_HALF_UP)


prices = st.integers(min_value=0, max_value=10_000).map(lambda n: D(n) / D(10_000))


@given(p_yes=st.integers(min_value=0, max_value=10_000).map(lambda n: D(n) / D(10_000)), bid=prices, ask=prices,
       multiplier=st.sampled_from([D(1), D("0.5"), D(2)]))
def test_best_edge_is_the_spec_formula_on_the_better_side(p_yes: Decimal, bid: Decimal, ask: Decimal,
                                                          multiplier: Decimal) -> None:
    fees = FeeSchedule(multiplier=multiplier)
    m = _market(bid, ask)
    got = best_edge(p_yes, m, fees)
    sides = []
    for side, p_side, side_ask in (("yes", p_yes, m.yes_ask), ("no", 1 - p_yes, m.no_ask)):
        if 0 < side_ask < 1:
            fee, edge = _spec_edge(p_side, side_ask, D("0.07"), multiplier)
            sides.append((side, side_ask, fee, edge))
    if not sides:
        assert got is None
        return
    side, side_ask, fee, edge = max(sides, key=lambda s: s[3])  # max keeps the first (YES) on a tie
    assert got is not None
    assert (got.side, got.price, got.fee_per_contract, got.edge) == (side, side_ask, fee, edge)
    assert str(got.edge) == str(edge) and str(got.fee_per_contract) == str(fee)  # the same digits, as stored


def test_fees_of_two_schedules_at_one_price_are_kept_apart() -> None:
    m = _market(D("0.49"), D("0.50"))
    plain = best_edge(D("0.60"), m, FeeSchedule())
    doubled = best_edge(D("0.60"), m, FeeSchedule(multiplier=D(2)))
    again = best_edge(D("0.60"), m, FeeSchedule())
    assert plain is not None and doubled is not None and again is not None
    assert plain.fee_per_contract == D("0.02") and doubled.fee_per_contract == D("0.04")
    assert again == plain
    # equal numbers written differently give the same fee and edge
    alike = best_edge(D("0.60"), _market(D("0.4900"), D("0.5000")), FeeSchedule())
    assert alike is not None and alike.edge == plain.edge and alike.fee_per_contract == plain.fee_per_contract


def test_a_tie_buys_yes() -> None:
    tie = best_edge(D("0.5"), _market(D("0.49"), D("0.51")), FeeSchedule())  # both sides: 0.5 - 0.51 - 0.02
    assert tie is not None and tie.side == "yes" and tie.edge == D("-0.0300")
