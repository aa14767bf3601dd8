"""SCD2 writer: material-change rule, one current row per key, history and point-in-time reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from precog.ingest import scd2

T0 = datetime(2025, 10, 5, 17, 0, tzinfo=UTC)


def market(ticker: str, yes_bid: str, volume: int = 100, status: str = "open", **extra):
    row = {
        "market_id": ticker, "platform_id": "kalshi", "event_id": None, "external_id": ticker, "ticker": ticker,
        "title": f"Market {ticker}", "market_type": "binary", "yes_bid": Decimal(yes_bid),
        "yes_ask": Decimal(yes_bid) + Decimal("0.02"), "volume": volume, "status": status,
        "tick_size": Decimal("0.01"), "notional_value": Decimal("1"), "metadata": {"source": "test"},
    }
    row.update(extra)
    return row


def test_first_write_creates_current_rows(conn):
    result = scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40"), market("B", "0.55")], T0)
    conn.commit()
    assert result.versions_written == 2
    row = scd2.current(conn, scd2.MARKETS, ["A"])
    assert row["yes_bid"] == Decimal("0.4000") and row["row_current_ind"] and row["row_end_ts"] is None
    assert row["metadata"] == {"source": "test"}


def test_material_change_rule(conn):
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40", volume=100)], T0)
    # below every threshold: 0.005 move (1.25%), volume +9 -> no new version
    r = scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.405", volume=109)], T0 + timedelta(seconds=1))
    assert r.versions_written == 0
    # one cent move -> new version
    r = scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.41", volume=109)], T0 + timedelta(seconds=2))
    assert r.versions_written == 1
    # volume +10 -> new version
    r = scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.41", volume=119)], T0 + timedelta(seconds=3))
    assert r.versions_written == 1
    # status change alone -> new version
    r = scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.41", volume=119, status="closed")], T0 + timedelta(seconds=4))
    assert r.versions_written == 1
    # 2% relative move on a small price (0.05 -> 0.051 is 2%) counts even though < 1 cent
    scd2.write_batch(conn, scd2.MARKETS, [market("S", "0.05")], T0)
    assert scd2.write_batch(conn, scd2.MARKETS, [market("S", "0.051")], T0 + timedelta(seconds=1)).versions_written == 1
    conn.commit()
    hist = scd2.history(conn, scd2.MARKETS, ["A"])
    assert [h["yes_bid"] for h in hist] == [Decimal("0.4000"), Decimal("0.4100"), Decimal("0.4100"), Decimal("0.4100")]
    assert sum(h["row_current_ind"] for h in hist) == 1
    # versions chain without gaps: each end equals the next start
    for older, newer in zip(hist, hist[1:], strict=False):
        assert older["row_end_ts"] == newer["created_at"]


def test_point_in_time_reads(conn):
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40")], T0)
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.50")], T0 + timedelta(minutes=10))
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.60")], T0 + timedelta(minutes=20))
    conn.commit()
    assert scd2.as_of(conn, scd2.MARKETS, ["A"], T0 - timedelta(seconds=1)) is None
    assert scd2.as_of(conn, scd2.MARKETS, ["A"], T0)["yes_bid"] == Decimal("0.4000")
    assert scd2.as_of(conn, scd2.MARKETS, ["A"], T0 + timedelta(minutes=15))["yes_bid"] == Decimal("0.5000")
    assert scd2.as_of(conn, scd2.MARKETS, ["A"], T0 + timedelta(days=1))["yes_bid"] == Decimal("0.6000")


def test_latest_row_per_key_wins_within_a_batch(conn):
    rows = [market("A", "0.40"), market("A", "0.45"), market("A", "0.47")]
    r = scd2.write_batch(conn, scd2.MARKETS, rows, T0)
    conn.commit()
    assert r.versions_written == 1 and r.keys_in_batch == 1
    assert scd2.current(conn, scd2.MARKETS, ["A"])["yes_bid"] == Decimal("0.4700")


def test_database_enforces_one_current_row_per_key(conn):
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40")], T0)
    conn.commit()
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO markets (market_id, platform_id, external_id, ticker, title, status) "
            "VALUES ('A', 'kalshi', 'A', 'A', 'dup', 'open')")
    conn.rollback()


def test_failed_batch_leaves_nothing_behind(conn):
    scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40")], T0)
    conn.commit()
    bad = market("B", "0.40", yes_ask=Decimal("1.5"))  # violates the price CHECK
    with pytest.raises(psycopg.errors.CheckViolation):
        scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.70"), bad], T0 + timedelta(seconds=5))
    conn.rollback()
    assert scd2.current(conn, scd2.MARKETS, ["A"])["yes_bid"] == Decimal("0.4000")
    assert scd2.current(conn, scd2.MARKETS, ["B"]) is None


def test_two_batches_inside_one_caller_transaction(conn):
    with conn.transaction():
        scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40"), market("B", "0.30")], T0)
        r = scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.50")], T0 + timedelta(seconds=1))
    assert r.versions_written == 1
    assert len(scd2.history(conn, scd2.MARKETS, ["A"])) == 2
    assert len(scd2.history(conn, scd2.MARKETS, ["B"])) == 1


def test_writer_leaves_a_caller_transaction_planner_settings_as_they_were(conn):
    # The writer steers its own look-ups to the current-row index for the length of its work only.
    with conn.transaction():
        conn.execute("SET LOCAL enable_hashjoin = on")
        scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.40")], T0)
        scd2.write_batch(conn, scd2.MARKETS, [market("A", "0.50")], T0 + timedelta(seconds=1))
        assert conn.execute("SHOW enable_hashjoin").fetchone()[0] == "on"
        assert conn.execute("SHOW enable_mergejoin").fetchone()[0] == "on"
    assert [r["yes_bid"] for r in scd2.history(conn, scd2.MARKETS, ["A"])] == [Decimal("0.4000"), Decimal("0.5000")]


def test_unchanged_snapshots_write_nothing_and_new_keys_join_a_busy_batch(conn):
    rows = [market(f"M{i}", "0.40") for i in range(50)]
    assert scd2.write_batch(conn, scd2.MARKETS, rows, T0).versions_written == 50
    conn.commit()
    again = [market(f"M{i}", "0.40" if i % 5 else "0.45") for i in range(50)] + [market("NEW", "0.10")]
    result = scd2.write_batch(conn, scd2.MARKETS, again, T0 + timedelta(seconds=1))
    conn.commit()
    assert result.versions_written == 11  # M0, M5 ... M45 moved 5 cents; NEW is new
    assert scd2.current(conn, scd2.MARKETS, ["M5"])["yes_bid"] == Decimal("0.4500")
    assert scd2.current(conn, scd2.MARKETS, ["M5"])["metadata"] == {"source": "test"}
    assert scd2.as_of(conn, scd2.MARKETS, ["M5"], T0)["yes_bid"] == Decimal("0.4000")
    assert len(scd2.history(conn, scd2.MARKETS, ["M1"])) == 1
    assert scd2.current(conn, scd2.MARKETS, ["NEW"])["created_at"] == T0 + timedelta(seconds=1)
