"""`precog dashboard --mode paper` shows paper money on every page: the Methods page's per-method, per-strategy
and per-model positions and realized P&L must agree with the (mode-filtered) P&L by method on Trades & P&L,
not include a backtest run's positions of the same method."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from web.dashkit import Seeded, _position, running_dashboard


def _add_backtest_positions(conn: psycopg.Connection[Any], seeded: Seeded) -> None:
    """A backtest of the same method in the same database: one closed +$100 position and one still open."""
    at = datetime.now(UTC) - timedelta(days=3)
    base = {"strategy_id": seeded.strategy_id, "model_id": seeded.model_id, "method_id": seeded.method_id,
            "market_id": seeded.market_ids[2], "side": "yes", "entry_price": Decimal("0.5000"), "quantity": 100,
            "initial_quantity": 100, "status": "open", "entry_time": at, "mode": "backtest"}
    _position(conn, [{"created_at": at},
                     {"created_at": at + timedelta(hours=1), "status": "closed", "quantity": 0,
                      "realized_pnl": Decimal("100.0000"), "exit_reason": "profit_target",
                      "exit_price": Decimal("0.6000"), "exit_time": at + timedelta(hours=1)}], base)
    _position(conn, [{"created_at": at, "current_price": Decimal("0.5000"), "unrealized_pnl": Decimal("0")}], base)
    conn.commit()


def test_methods_page_counts_only_the_dashboards_mode(db_url: str, conn: psycopg.Connection[Any],
                                                      seeded: Seeded) -> None:
    _add_backtest_positions(conn, seeded)
    with running_dashboard(db_url, mode="paper") as paper:
        data = httpx.get(paper.url + "/api/methods").json()
        by_method = httpx.get(paper.url + "/api/pnl").json()["by"]["method"]
    (method,) = data["methods"]
    (paper_row,) = by_method
    assert Decimal(paper_row["realized_pnl"]) == Decimal("-5.75")  # the P&L page is filtered ...
    # ... and the Methods page says the same (before: -5.75 + 100 from the backtest, 3 closed, 3 open)
    assert Decimal(method["realized_pnl"]) == Decimal("-5.75")
    assert (method["closed_positions"], method["open_positions"], method["winning_positions"]) == (2, 2, 1)
    (strategy,) = data["strategies"]
    assert Decimal(strategy["realized_pnl"]) == Decimal("-5.75") and strategy["closed_positions"] == 2
    model = next(m for m in data["models"] if m["model_id"] == seeded.model_id)
    assert Decimal(model["realized_pnl"]) == Decimal("-5.75") and model["closed_positions"] == 2


def test_methods_page_without_a_mode_counts_every_mode(db_url: str, conn: psycopg.Connection[Any],
                                                       seeded: Seeded) -> None:
    _add_backtest_positions(conn, seeded)
    with running_dashboard(db_url) as every:
        data = httpx.get(every.url + "/api/methods").json()
    (method,) = data["methods"]
    assert Decimal(method["realized_pnl"]) == Decimal("94.25")
    assert (method["closed_positions"], method["open_positions"]) == (3, 3)
