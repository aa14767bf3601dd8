"""SCD2 history cannot be rewritten: a closed version never changes, the current one changes only by being
closed; a referential action of a purged parent row still clears its links."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from precog.ingest import scd2

T0 = datetime(2025, 10, 5, 17, 0, tzinfo=UTC)


def market(ticker: str, yes_bid: str) -> dict[str, object]:
    return {"market_id": ticker, "platform_id": "kalshi", "event_id": None, "external_id": ticker, "ticker": ticker,
            "title": f"Market {ticker}", "market_type": "binary", "yes_bid": Decimal(yes_bid),
            "yes_ask": Decimal(yes_bid) + Decimal("0.02"), "volume": 100, "status": "open",
            "tick_size": Decimal("0.01"), "notional_value": Decimal("1"), "metadata": {"source": "test"}}


def two_versions(conn: psycopg.Connection) -> tuple[int, int]:
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40")], T0)
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.50")], T0 + timedelta(minutes=1))
    conn.commit()
    rows = conn.execute("SELECT id FROM markets WHERE market_id = 'A' ORDER BY created_at").fetchall()
    return rows[0][0], rows[1][0]


def test_the_writer_still_versions_and_history_reads_back(conn):
    two_versions(conn)
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.60")], T0 + timedelta(minutes=2))
    conn.commit()
    hist = scd2.history(conn, scd2.MARKETS, ["A"])
    assert [h["yes_bid"] for h in hist] == [Decimal("0.4000"), Decimal("0.5000"), Decimal("0.6000")]


@pytest.mark.parametrize("assignment", ["yes_bid = 0.99", "row_current_ind = TRUE, row_end_ts = NULL",
                                        "row_end_ts = row_end_ts + interval '1 second'"])
def test_a_closed_version_cannot_be_changed(conn, assignment):
    closed, _current = two_versions(conn)
    with pytest.raises(psycopg.errors.RestrictViolation, match=f"markets version id {closed} is closed"):
        conn.execute(f"UPDATE markets SET {assignment} WHERE id = %s", (closed,))  # noqa: S608 - test constants
    conn.rollback()
    assert conn.execute("SELECT yes_bid, row_current_ind FROM markets WHERE id = %s", (closed,)).fetchone() == (
        Decimal("0.4000"), False)


def test_the_current_version_changes_only_by_a_new_version(conn):
    _closed, current = two_versions(conn)
    with pytest.raises(psycopg.errors.RestrictViolation, match="cannot be changed in place"):
        conn.execute("UPDATE markets SET volume = 5 WHERE id = %s", (current,))
    conn.rollback()
    conn.execute("UPDATE markets SET row_current_ind = FALSE, row_end_ts = now() WHERE id = %s", (current,))
    conn.commit()
    assert conn.execute("SELECT yes_bid, row_current_ind FROM markets WHERE id = %s", (current,)).fetchone() == (
        Decimal("0.5000"), False)


@pytest.mark.parametrize("table", ["game_states", "edges", "positions", "account_balance"])
def test_every_scd2_table_is_guarded_like_markets(conn, table):
    def definition(t: str) -> tuple[str, str] | None:
        return conn.execute("SELECT tgenabled, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %s::regclass "
                            "AND tgname = %s", (t, f"{t}_versions_frozen")).fetchone()

    assert definition(table) == ("O", definition("markets")[1].replace("markets", table))


def test_purging_a_referenced_market_version_clears_the_link_in_edge_history(conn):
    closed_market, _ = two_versions(conn)
    run = uuid.uuid4()
    for created, current in ((T0, False), (T0 + timedelta(minutes=1), True)):
        conn.execute(
            "INSERT INTO edges (edge_key, market_id, market_version_id, side, expected_value, true_win_probability, "
            "market_implied_probability, market_price, calculation_run_id, created_at, row_current_ind, row_end_ts) "
            "VALUES ('A|yes', 'A', %s, 'yes', 0.05, 0.55, 0.50, 0.50, %s, %s, %s, %s)",
            (closed_market, run, created, current, None if current else T0 + timedelta(minutes=1)))
    conn.commit()
    conn.execute("DELETE FROM markets WHERE id = %s", (closed_market,))  # retention of old market versions
    conn.commit()
    assert conn.execute("SELECT count(*) FROM edges WHERE market_version_id IS NULL").fetchone()[0] == 2
    # the closed edge version is otherwise as it was
    assert conn.execute("SELECT expected_value FROM edges WHERE NOT row_current_ind").fetchone()[0] == Decimal("0.0500")
