"""Kalshi's settlement record gives `revenue` and `value` as integer cents (OpenAPI v3.13.0 `Settlement`: "Payout
of a single yes contract in cents"). A market settled at a sub-cent value (0.4533) can only arrive as 45 (or 46):
compared exactly with our 0.4533, a correct settlement raised `settlement_mismatch`. A figure the venue gave in
whole cents is a difference only from a cent on; figures it gave as `*_dollars` strings are still compared exactly.
"""

from __future__ import annotations

from decimal import Decimal as D

from precog.trading.settlement import Booked, differences
from precog.venues.kalshi.parsing import parse_settlement

# the spec's required fields (plus `value`), as Kalshi sends them: counts and costs as strings, revenue and value
# as integer cents
SPEC_SHAPED = {"ticker": "KXSCALAR-26NOV29-T1", "event_ticker": "KXSCALAR-26NOV29", "market_result": "scalar",
               "yes_count_fp": "10.00", "yes_total_cost_dollars": "4.0000", "no_count_fp": "0.00",
               "no_total_cost_dollars": "0.0000", "revenue": 453, "settled_time": "2026-11-29T21:00:00Z",
               "fee_cost": "0.0000", "value": 45}
OURS = Booked(yes_count=D("10"), no_count=D("0"), payout=D("4.533"), outcome="scalar", value=D("0.4533"))


def test_a_sub_cent_settlement_given_in_whole_cents_matches_our_exact_books() -> None:
    venue = parse_settlement(SPEC_SHAPED)
    assert venue.value == D("0.45") and venue.revenue == D("4.53")
    assert venue.cents_only == {"revenue", "value"}
    assert differences(OURS, venue) == []
    assert differences(OURS, parse_settlement({**SPEC_SHAPED, "value": 46, "revenue": 454})) == []  # rounded up


def test_a_difference_of_a_cent_or_more_is_still_one() -> None:
    venue = parse_settlement({**SPEC_SHAPED, "value": 40, "revenue": 400})
    figures = {(d["figure"], d["ours"], d["venue"]) for d in differences(OURS, venue)}
    assert figures == {("payout", "4.533", "4"), ("value", "0.4533", "0.4")}


def test_figures_given_in_dollars_are_compared_exactly() -> None:
    exact = {**SPEC_SHAPED, "revenue_dollars": "4.5300", "value_dollars": "0.4500"}
    venue = parse_settlement(exact)
    assert venue.cents_only == frozenset()
    assert {d["figure"] for d in differences(OURS, venue)} == {"payout", "value"}
