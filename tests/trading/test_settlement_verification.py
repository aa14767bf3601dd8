"""Each settlement is checked against the venue's own, and a disagreement is flagged (spec position_management
`settlement`: "verify settlements, log disputes").

The audit found `settle_market` used the venue's settlement only to pick a rounding: a venue count, revenue or
result different from what we booked went unsaid, and a voided market was settled at whatever value it showed.
Now every settlement row says whether the venue agreed (`api_response.verified`, `differences`), a
disagreement raises one `settlement_mismatch` alert per market (high, trading) while what we book stays ours,
a voided market is held with one `settlement_disputed` alert, and a settlement booked before the venue listed
its own is compared once the venue lists it (`settlement_verifications`).

Real parts: the Portfolio books fills into the embedded PostgreSQL, alerts go through the AlertManager.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.bookkit import fill, order
from precog.alerts.manager import AlertManager
from precog.domain.order import Action, Side
from precog.domain.portfolio import Settlement
from precog.trading.portfolio import Portfolio
from precog.trading.settlement import (
    raise_owed_mismatches,
    settle_market,
    unverified,
    verify_stored,
)

T = datetime(2026, 1, 4, 21, tzinfo=UTC)
M = "KXNFLGAME-26JAN04-NEBUF-BUF"


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture
def alerts(db_url: str) -> Iterator[AlertManager]:
    manager = AlertManager(db_url)
    yield manager
    manager.close()


def _book(conn: psycopg.Connection[Any], yes: int = 10, no: int = 0) -> Portfolio:
    """A paper book holding `yes` YES contracts bought at 0.40 and `no` NO contracts bought at 0.55 in M."""
    book = Portfolio(conn, "kalshi", "paper")
    if yes:
        book.book_fill(fill(M, "f-yes", Action.BUY, yes, "0.40"), order(M, 1, "buy", None, yes, mode="paper"), T)
    if no:
        no_fill = replace(fill(M, "f-no", Action.BUY, no, "0.45"), side=Side.NO)  # NO at 1 - 0.45 = 0.55
        book.book_fill(no_fill, replace(order(M, 2, "buy", None, no, mode="paper"), side="no"), T)
    return book


def _venue(result: str = "yes", yes: str = "10", no: str = "0", revenue: str = "10.00",
           value: str | None = None) -> Settlement:
    return Settlement(ticker=M, event_ticker="KXNFLGAME-26JAN04-NEBUF", market_result=result,
                      yes_count=Decimal(yes), no_count=Decimal(no), yes_total_cost=Decimal("4.00"),
                      no_total_cost=Decimal("0"), revenue=Decimal(revenue), fee_cost=Decimal("0.10"),
                      settled_time=T, value=Decimal(value) if value is not None else None)


def _rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT side, quantity, payout, api_response FROM settlements WHERE market_id = %s "
                        "ORDER BY settlement_id", (M,)).fetchall()


def _alerts(conn: psycopg.Connection[Any], kind: str) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT severity, category, component, message, details, source_table, suppressed "
                        "FROM alerts WHERE alert_type = %s ORDER BY alert_id", (kind,)).fetchall()


def test_a_settlement_the_venue_agrees_with_is_marked_verified_and_raises_nothing(
        conn: psycopg.Connection[Any], alerts: AlertManager) -> None:
    book = _book(conn, yes=3, no=2)
    # a scalar result: YES pays 0.37, NO 0.63; the venue's revenue is both sides' payout (1.11 + 1.26)
    venue = _venue("scalar", yes="3", no="2", revenue="2.37", value="0.37")
    done = settle_market(book, M, Decimal("0.37"), T, venue_settlement=venue, market_result="scalar", alerts=alerts)
    assert sorted(s.payout for s in done) == [Decimal("1.11"), Decimal("1.26")]
    rows = _rows(conn)
    assert len(rows) == 2
    for _, _, _, api in rows:
        assert api["verified"] is True and api["differences"] == []
        assert api["revenue"] == "2.37" and api["market_result"] == "scalar"  # the venue's payload is kept
    assert raise_owed_mismatches(book, alerts, T) == 0
    assert _alerts(conn, "settlement_mismatch") == []


def test_a_venue_count_and_revenue_that_differ_are_recorded_and_alerted_once(
        conn: psycopg.Connection[Any], alerts: AlertManager) -> None:
    book = _book(conn, yes=10)
    venue = _venue("yes", yes="12", revenue="12.00")  # the venue paid for 12 contracts; we hold 10
    (done,) = settle_market(book, M, Decimal("1"), T, venue_settlement=venue, market_result="yes", alerts=alerts)
    assert done.payout == Decimal("10.00")  # what we book is ours: the venue's cash is reconciled separately
    ((side, qty, payout, api),) = _rows(conn)
    assert (side, qty, payout) == ("yes", 10, Decimal("10.0000"))
    assert api["verified"] is False
    assert api["differences"] == [
        {"figure": "contracts", "side": "yes", "ours": "10", "venue": "12"},
        {"figure": "payout", "side": "market", "ours": "10.00", "venue": "12.00"}]
    ((severity, category, component, message, details, source_table, suppressed),) = _alerts(
        conn, "settlement_mismatch")
    assert (severity, category, component, source_table, suppressed) == (
        "high", "trading", "settlement", "settlements", False)
    assert details["market"] == M and details["differences"] == api["differences"]
    assert M in message and "ours 10 vs venue 12" in message
    # later reconciliations owe nothing more for this market
    assert raise_owed_mismatches(book, alerts, T) == 0
    assert len(_alerts(conn, "settlement_mismatch")) == 1


def test_a_different_result_is_a_difference(conn: psycopg.Connection[Any], alerts: AlertManager) -> None:
    book = _book(conn, yes=10)
    venue = _venue("no", yes="10", revenue="0")  # the venue settled NO; our market data said YES
    settle_market(book, M, Decimal("1"), T, venue_settlement=venue, market_result="yes", alerts=alerts)
    ((_, _, _, api),) = _rows(conn)
    assert {(d["figure"], d["ours"], d["venue"]) for d in api["differences"]} == {
        ("payout", "10.00", "0"), ("outcome", "yes", "no"), ("value", "1", "0")}
    assert len(_alerts(conn, "settlement_mismatch")) == 1


def test_a_mismatch_booked_without_an_alert_sink_is_raised_by_the_next_reconciliation_once(
        conn: psycopg.Connection[Any], alerts: AlertManager) -> None:
    book = _book(conn, yes=10)
    settle_market(book, M, Decimal("1"), T, venue_settlement=_venue("yes", yes="11", revenue="11.00"),
                  market_result="yes")  # the engine's cycle settles without an alert sink
    assert _alerts(conn, "settlement_mismatch") == []
    assert raise_owed_mismatches(book, alerts, T) == 1
    assert raise_owed_mismatches(book, alerts, T) == 0
    (alert,) = _alerts(conn, "settlement_mismatch")
    assert alert[4]["differences"][0] == {"figure": "contracts", "side": "yes", "ours": "10", "venue": "11"}


def test_a_voided_market_is_held_and_alerted_once_not_settled(conn: psycopg.Connection[Any],
                                                              alerts: AlertManager) -> None:
    book = _book(conn, yes=10)
    void = _venue("void", yes="10", revenue="4.00")  # positions returned at cost
    for _ in range(3):
        assert settle_market(book, M, Decimal("1"), T, venue_settlement=void, alerts=alerts) == []
    assert _rows(conn) == []
    (pos,) = book.open_in_market(M)
    assert pos.quantity == 10 and pos.status == "open"
    ((severity, category, _, message, details, source_table, _),) = _alerts(conn, "settlement_disputed")
    assert (severity, category, source_table) == ("high", "trading", "positions")
    assert details["market"] == M and details["position_ids"] == [pos.position_id] and "void" in message


def test_a_settlement_booked_before_the_venue_listed_it_is_verified_once_it_is_listed(
        conn: psycopg.Connection[Any], alerts: AlertManager) -> None:
    book = _book(conn, yes=10)
    settle_market(book, M, Decimal("1"), T, market_result="yes")  # the venue lists no settlement yet
    ((_, _, _, api),) = _rows(conn)
    assert api is None
    pending = unverified(book, T)
    assert list(pending) == [M]
    assert verify_stored(book, pending, [], alerts, T) == 0  # still not listed: stays pending
    assert list(unverified(book, T)) == [M]
    assert verify_stored(book, unverified(book, T), [_venue("yes")], alerts, T) == 1
    assert unverified(book, T) == {}
    ((verified, differences, venue),) = conn.execute(
        "SELECT verified, differences, venue_settlement FROM settlement_verifications WHERE market_id = %s",
        (M,)).fetchall()
    assert verified is True and differences == [] and venue["revenue"] == "10.00"
    assert raise_owed_mismatches(book, alerts, T) == 0 and _alerts(conn, "settlement_mismatch") == []


def test_a_late_verification_that_differs_is_recorded_and_alerted_once(conn: psycopg.Connection[Any],
                                                                       alerts: AlertManager) -> None:
    book = _book(conn, yes=10)
    settle_market(book, M, Decimal("1"), T, market_result="yes")
    assert verify_stored(book, unverified(book, T), [_venue("yes", yes="9", revenue="9.00")], alerts, T) == 1
    ((verified, differences),) = conn.execute(
        "SELECT verified, differences FROM settlement_verifications").fetchall()
    assert verified is False and {d["figure"] for d in differences} == {"contracts", "payout"}
    assert raise_owed_mismatches(book, alerts, T) == 0
    assert len(_alerts(conn, "settlement_mismatch")) == 1
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        conn.execute("UPDATE settlement_verifications SET verified = TRUE")
