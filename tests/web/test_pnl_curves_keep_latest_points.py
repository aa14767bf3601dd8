"""The Trades & P&L charts draw at most a few thousand points: once the history is longer they must show the
latest stretch (ending at today's equity and today's cumulative realized P&L), not freeze on the oldest one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from precog.web import queries
from web.dashkit import Seeded, running_dashboard

HISTORY = 6000  # more than the curves' 5000-point limit


def _long_history(conn: psycopg.Connection[Any]) -> datetime:
    """Weeks of older account versions ($500 cash each) and small settlements (+$0.01 each) of another account,
    all before the seeded day."""
    start = datetime.now(UTC) - timedelta(days=60)
    conn.execute("INSERT INTO platforms (platform_id, platform_type, display_name, base_url)"
                 " VALUES ('oldvenue', 'trading', 'Old venue', 'http://old.invalid')"
                 " ON CONFLICT (platform_id) DO NOTHING")
    conn.execute("INSERT INTO account_balance (platform_id, mode, balance, portfolio_value, created_at,"
                 " row_current_ind, row_end_ts)"
                 " SELECT 'oldvenue', 'paper', 500, 0, %s + g * interval '1 minute', g = %s,"
                 "  CASE WHEN g = %s THEN NULL ELSE %s + (g + 1) * interval '1 minute' END"
                 " FROM generate_series(1, %s) g", (start, HISTORY, HISTORY, start, HISTORY))
    conn.execute("INSERT INTO settlements (market_id, platform_id, outcome, settlement_value, side, quantity, payout,"
                 " realized_pnl, mode, settlement_timestamp)"
                 " SELECT 'OLD-' || g, 'oldvenue', 'yes', 1, 'yes', 1, 1, 0.01, 'paper', %s + g * interval '1 minute'"
                 " FROM generate_series(1, %s) g", (start, HISTORY))
    conn.commit()
    return start


def test_equity_and_realized_curves_end_at_the_latest_figures(db_url: str, conn: psycopg.Connection[Any],
                                                              seeded: Seeded) -> None:
    _long_history(conn)
    with running_dashboard(db_url) as dash:
        data = httpx.get(dash.url + "/api/pnl").json()
    equity, realized = data["equity_curve"], data["realized_curve"]
    assert 0 < len(equity) <= 5000 and 0 < len(realized) <= 5000
    # today's equity: the seeded paper account (963.25 + 48.50) and the old venue's $500
    assert Decimal(equity[-1]["equity"]) == Decimal("1511.75")
    # every settlement and exit: -12.25 + 6.50 seeded, + 6000 x 0.01
    assert Decimal(realized[-1]["cumulative"]) == Decimal("54.25")
    # the points are still cumulative in order: the first shown already carries everything before it
    assert Decimal(realized[0]["cumulative"]) > Decimal("9")
    assert [p["at"] for p in realized] == sorted(p["at"] for p in realized)


def test_curves_with_a_small_limit_keep_the_newest_points(conn: psycopg.Connection[Any], seeded: Seeded) -> None:
    curve = queries.realized_curve(conn, mode="paper", limit=1)
    assert [Decimal(p["cumulative"]) for p in curve] == [Decimal("-5.75")]
    equity = queries.equity_curve(conn, mode="paper", limit=2)
    assert [p["equity"] for p in equity] == [Decimal("988.75"), Decimal("1011.75")]


def test_results_at_the_same_instant_are_one_point_counting_them_all(conn: psycopg.Connection[Any],
                                                                     seeded: Seeded) -> None:
    at = datetime.now(UTC) + timedelta(minutes=1)
    for pnl in ("1.0000", "2.0000", "4.0000"):
        conn.execute("INSERT INTO settlements (market_id, platform_id, outcome, settlement_value, side, quantity,"
                     " payout, realized_pnl, mode, settlement_timestamp) VALUES (%s, 'local', 'yes', 1, 'yes', 1, 1,"
                     " %s, 'paper', %s)", (seeded.market_ids[0], Decimal(pnl), at))
    conn.commit()
    for limit in (1, 2, 3, 5000):
        curve = queries.realized_curve(conn, mode=None, limit=limit)
        assert curve[-1]["at"] == at and curve[-1]["cumulative"] == Decimal("1.25")  # -5.75 + 7
