"""Local order books from snapshot + deltas: every message generation, sequence checks, inconsistency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precog.venues.kalshi.book import BookInconsistent, BookRegistry, LocalBook, SequenceGap
from precog.venues.kalshi.errors import KalshiSchemaError


def snap(sid: int, seq: int, ticker: str = "T", **sides: Any) -> dict[str, Any]:
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": {"market_ticker": ticker, **sides}}


def delta(sid: int, seq: int, side: str, price: str, qty: str, ticker: str = "T") -> dict[str, Any]:
    return {"type": "orderbook_delta", "sid": sid, "seq": seq,
            "msg": {"market_ticker": ticker, "side": side, "price_dollars": price, "delta_fp": qty}}


def test_snapshot_then_deltas_current_generation() -> None:
    reg = BookRegistry()
    reg.on_message(snap(1, 1, yes_dollars_fp=[["0.4000", "10.00"], ["0.4200", "5.00"]], no_dollars_fp=[["0.5600", "3.00"]]))
    reg.on_message(delta(1, 2, "yes", "0.4300", "7.00"))
    reg.on_message(delta(1, 3, "yes", "0.4200", "-5.00"))
    reg.on_message(delta(1, 4, "no", "0.5600", "1.50"))
    book = reg.books["T"].snapshot()
    assert [(lv.price, lv.quantity) for lv in book.yes_bids] == [(Decimal("0.43"), 7), (Decimal("0.4"), 10)]
    assert book.no_bids[0].quantity == Decimal("4.5")
    assert book.yes_ask == Decimal("0.44") and book.spread == Decimal("0.01")


def test_legacy_snapshot_and_delta_forms() -> None:
    reg = BookRegistry()
    reg.on_message(snap(1, 1, yes=[[40, 10]], no=[[55, 2]]))  # cents + integer counts
    reg.on_message({"type": "orderbook_delta", "sid": 1, "seq": 2,
                    "msg": {"market_ticker": "T", "side": "yes", "price": 41, "delta": 4}})
    reg.on_message({"type": "orderbook_delta", "sid": 1, "seq": 3,
                    "msg": {"market_ticker": "T", "side": "no", "price": 55, "price_dollars": "0.5500", "delta": -2,
                            "delta_fp": "-2.00"}})
    book = reg.books["T"].snapshot()
    assert [(lv.price, lv.quantity) for lv in book.yes_bids] == [(Decimal("0.41"), 4), (Decimal("0.4"), 10)]
    assert book.no_bids == ()
    reg2 = BookRegistry()
    reg2.on_message(snap(1, 1, yes_dollars=[["0.4050", 10]], no_dollars=[]))  # sub-penny dollars, int counts
    assert reg2.books["T"].best_yes_bid() == Decimal("0.405")


def test_sequence_gap_marks_books_stale_and_names_them() -> None:
    reg = BookRegistry()
    reg.on_message(snap(7, 1, "A", yes_dollars_fp=[["0.40", "1.00"]], no_dollars_fp=[]))
    reg.on_message(snap(7, 2, "B", yes_dollars_fp=[], no_dollars_fp=[]))
    reg.on_message(delta(7, 3, "yes", "0.41", "1.00", "A"))
    with pytest.raises(SequenceGap) as info:
        reg.on_message(delta(7, 5, "yes", "0.42", "1.00", "A"))
    assert (info.value.expected, info.value.got, info.value.tickers) == (4, 5, ("A", "B"))
    assert reg.books["A"].stale and reg.books["B"].stale
    # a delta for a stale book (before its new snapshot) is refused, never applied
    with pytest.raises((SequenceGap, BookInconsistent)):
        reg.on_message(delta(7, 6, "yes", "0.42", "1.00", "A"))
    reg.on_message(snap(8, 1, "A", yes_dollars_fp=[["0.50", "2.00"]], no_dollars_fp=[]))
    assert not reg.books["A"].stale and reg.books["A"].best_yes_bid() == Decimal("0.5")


def test_duplicate_message_is_ignored() -> None:
    reg = BookRegistry()
    reg.on_message(snap(1, 1, yes_dollars_fp=[["0.40", "1.00"]], no_dollars_fp=[]))
    reg.on_message(delta(1, 2, "yes", "0.40", "1.00"))
    reg.on_message(delta(1, 2, "yes", "0.40", "1.00"))  # replayed
    assert reg.books["T"].snapshot().yes_bids[0].quantity == 2


def test_negative_level_is_inconsistent() -> None:
    reg = BookRegistry()
    reg.on_message(snap(1, 1, yes_dollars_fp=[["0.40", "1.00"]], no_dollars_fp=[]))
    with pytest.raises(BookInconsistent):
        reg.on_message(delta(1, 2, "yes", "0.40", "-2.00"))


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"side": "maybe", "price_dollars": "0.40", "delta_fp": "1.00"}, "side"),
        ({"side": "yes", "price_dollars": "abc", "delta_fp": "1.00"}, "price_dollars"),
        ({"side": "yes", "price_dollars": "1.40", "delta_fp": "1.00"}, "price_dollars"),
        ({"side": "yes", "price_dollars": "0.40", "delta_fp": "1.001"}, "count_fp"),
        ({"side": "yes", "delta_fp": "1.00"}, "price_dollars"),
    ],
)
def test_malformed_delta_names_the_field(msg: dict[str, Any], field: str) -> None:
    book = LocalBook("T")
    book.load_snapshot({"yes_dollars_fp": [], "no_dollars_fp": []})
    with pytest.raises(KalshiSchemaError) as info:
        book.apply_delta(msg)
    assert info.value.field == field


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["yes", "no"]), st.integers(1, 99), st.integers(1, 500)), max_size=60))
def test_book_equals_sum_of_deltas(ops: list[tuple[str, int, int]]) -> None:
    """Applying adds then removing them all returns the snapshot; every level equals its running sum."""
    reg = BookRegistry()
    reg.on_message(snap(1, 1, yes_dollars_fp=[], no_dollars_fp=[]))
    expected: dict[tuple[str, int], int] = {}
    seq = 1
    for side, cents, qty in ops:
        seq += 1
        reg.on_message(delta(1, seq, side, f"0.{cents:02d}", f"{qty}.00"))
        expected[(side, cents)] = expected.get((side, cents), 0) + qty
    book = reg.books["T"].snapshot()
    got = {("yes", int(lv.price * 100)): lv.quantity for lv in book.yes_bids}
    got |= {("no", int(lv.price * 100)): lv.quantity for lv in book.no_bids}
    assert got == {k: Decimal(v) for k, v in expected.items()}
    for (side, cents), qty in expected.items():
        seq += 1
        reg.on_message(delta(1, seq, side, f"0.{cents:02d}", f"-{qty}.00"))
    assert reg.books["T"].yes == {} and reg.books["T"].no == {}
