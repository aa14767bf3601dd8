"""The numbers operators read agree across views: the dashboard's pages, `precog pnl` and the engine's own rules.

Each test builds rows the way the engine writes them (SCD2 position versions, trades, exits, settlements) and
compares two readings of the same figure, to the cent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from psycopg.types.json import Jsonb

from precog.trading import attribution
from precog.trading.exits import ExitRules
from precog.web import queries
from web.dashkit import Seeded, _position, running_dashboard

NY = ZoneInfo("America/New_York")


def _trade(conn: psycopg.Connection[Any], pid: int, seeded: Seeded, market: str, action: str, price: str, qty: int,
           fee: str, at: datetime, mode: str = "paper") -> int:
    row = conn.execute(
        "INSERT INTO trades (market_id, platform_id, position_id, strategy_id, model_id, method_id, side, action, price,"
        " quantity, fees, mode, execution_time, trade_metadata, fill_id) VALUES (%s, 'local', %s, %s, %s, %s, 'yes',"
        " %s, %s, %s, %s, %s, %s, %s, %s) RETURNING trade_id",
        (market, pid, seeded.strategy_id, seeded.model_id, seeded.method_id, action, Decimal(price), qty, Decimal(fee),
         mode, at, Jsonb({"purpose": "entry" if action == "buy" else "exit"}), str(uuid.uuid4()))).fetchone()
    assert row is not None
    return int(row[0])


def _partly_sold_position(conn: psycopg.Connection[Any], seeded: Seeded, *, mode: str = "paper") -> int:
    """An open position that sold 40 of its 100 contracts at a stage target: $3.00 realized, 60 still held."""
    now = datetime.now(UTC)
    entered, sold = now - timedelta(minutes=30), now - timedelta(minutes=5)
    market = seeded.market_ids[2]
    pid = _position(conn, [
        {"created_at": entered, "current_price": Decimal("0.5000"), "unrealized_pnl": Decimal("0")},
        {"created_at": sold, "quantity": 60, "realized_pnl": Decimal("3.0000"), "current_price": Decimal("0.5800"),
         "unrealized_pnl": Decimal("4.8000"), "exit_reason": "partial_exit_target", "exit_priority": "MEDIUM",
         "exit_price": Decimal("0.5800")},
    ], {"strategy_id": seeded.strategy_id, "model_id": seeded.model_id, "method_id": seeded.method_id,
        "market_id": market, "side": "yes", "entry_price": Decimal("0.5000"), "quantity": 100,
        "initial_quantity": 100, "fees": Decimal("1.0000"), "status": "open", "entry_time": entered, "mode": mode})
    _trade(conn, pid, seeded, market, "buy", "0.5000", 100, "0.6000", entered, mode)
    tid = _trade(conn, pid, seeded, market, "sell", "0.5800", 40, "0.2000", sold, mode)
    conn.execute("INSERT INTO position_exits (position_id, exit_condition, exit_priority, quantity_exited, exit_price,"
                 " realized_pnl, exit_trade_id, partial_stage, created_at) VALUES (%s, 'partial_exit_target', 'MEDIUM',"
                 " 40, 0.5800, 3.0000, %s, 'first', %s)", (pid, tid, sold))
    conn.commit()
    return pid


def test_methods_page_realized_pnl_is_the_pnl_by_method_figure(conn: psycopg.Connection[Any], seeded: Seeded) -> None:
    """A partial exit's realized P&L is realized money: the Methods page shows the same realized P&L for a method
    as `precog pnl --by method` and the Trades & P&L page (and the Strategies/Models tables) do."""
    _partly_sold_position(conn, seeded)
    by_method = {r["key"]: r for r in attribution.pnl_by(conn, "method")}
    method = next(m for m in queries.methods(conn) if m["method_id"] == seeded.method_id)
    label = f"{method['method_name']} {method['method_version']}"
    assert by_method[label]["realized_pnl"] == Decimal("-2.7500")  # 6.50 - 12.25 + 3.00 (the partial exit)
    assert method["realized_pnl"] == by_method[label]["realized_pnl"]
    strategy = next(s for s in queries.strategies(conn) if s["strategy_id"] == seeded.strategy_id)
    model = next(m for m in queries.models(conn) if m["model_id"] == seeded.model_id)
    assert strategy["realized_pnl"] == model["realized_pnl"] == method["realized_pnl"]
    # and the overview's total realized P&L is the sum of the methods' realized P&L
    summary = queries.pnl_summary(conn, mode=None, day_start=queries.day_start(datetime.now(UTC), NY))
    assert summary["realized"] == sum((m["realized_pnl"] for m in queries.methods(conn)), Decimal(0))


def test_time_to_exit_counts_to_the_expected_settlement_as_the_engine_does(conn: psycopg.Connection[Any],
                                                                             seeded: Seeded) -> None:
    """A Kalshi game market closes weeks after the game (close_time) but settles minutes after it ends
    (expected_expiration_time, kept in the market's metadata): the engine's time_based_urgent exit counts to the
    earlier of the two, so the Positions page's distance to that exit must too."""
    now = datetime.now(UTC)
    settles = now + timedelta(minutes=8)
    ticker = "KXNFLGAME-25DEC01SEAARI-SEA"
    conn.execute("INSERT INTO markets (market_id, platform_id, external_id, ticker, title, yes_bid, yes_ask, status,"
                 " close_time, metadata, created_at) VALUES (%s, 'local', %s, %s, 'Seahawks beat the Cardinals', 0.61,"
                 " 0.63, 'open', %s, %s, %s)",
                 (ticker, ticker, ticker, now + timedelta(days=14),
                  Jsonb({"expected_expiration_time": settles.isoformat()}), now - timedelta(minutes=1)))
    pid = _position(conn, [{"created_at": now - timedelta(minutes=20), "current_price": Decimal("0.6100"),
                            "unrealized_pnl": Decimal("1.0000")}],
                    {"strategy_id": seeded.strategy_id, "model_id": seeded.model_id, "method_id": seeded.method_id,
                     "market_id": ticker, "side": "yes", "entry_price": Decimal("0.6000"), "quantity": 100,
                     "initial_quantity": 100, "status": "open", "entry_time": now - timedelta(hours=3)})
    conn.commit()
    rules = ExitRules.from_config({})
    row = next(r for r in queries.open_positions(conn, mode=None, rules=rules, now=now) if r["position_id"] == pid)
    urgent = next(t for t in row["triggers"] if t["trigger"] == "time_based_urgent")
    assert urgent["distance"] == Decimal(int((settles - now).total_seconds()))
    assert urgent["near"] is True  # 8 min left, the engine sells at 5 min: flagged
    # bought inside the window on purpose (settlement arbitrage): the engine holds it to settlement, no time exit
    held = _position(conn, [{"created_at": now - timedelta(minutes=1), "current_price": Decimal("0.6100")}],
                     {"strategy_id": seeded.strategy_id, "model_id": seeded.model_id, "method_id": seeded.method_id,
                      "market_id": ticker, "side": "yes", "entry_price": Decimal("0.6000"), "quantity": 10,
                      "initial_quantity": 10, "status": "open", "entry_time": settles - timedelta(minutes=2)})
    conn.commit()
    row = next(r for r in queries.open_positions(conn, mode=None, rules=rules, now=now) if r["position_id"] == held)
    assert "time_based_urgent" not in {t["trigger"] for t in row["triggers"]}
    # without an expected settlement the close is the deadline (unchanged)
    near = next(r for r in queries.open_positions(conn, mode=None, rules=rules, now=now)
                if r["position_id"] == seeded.near_position_id)
    close = next(t for t in near["triggers"] if t["trigger"] == "time_based_urgent")
    assert Decimal(10700) <= close["distance"] <= Decimal(10800)  # the seeded markets close in 3 hours


def _exit_at(conn: psycopg.Connection[Any], seeded: Seeded, at: datetime, realized: str, mode: str = "paper") -> int:
    """A position opened an hour before `at` and sold in full at `at` (its exit trade carries the time)."""
    market = seeded.market_ids[2]
    pid = _position(conn, [
        {"created_at": at - timedelta(hours=1), "current_price": Decimal("0.5000"), "unrealized_pnl": Decimal("0")},
        {"created_at": at, "status": "closed", "quantity": 0, "realized_pnl": Decimal(realized),
         "exit_reason": "profit_target", "exit_priority": "MEDIUM", "exit_price": Decimal("0.6000"),
         "unrealized_pnl": Decimal("0"), "exit_time": at},
    ], {"strategy_id": seeded.strategy_id, "model_id": seeded.model_id, "method_id": seeded.method_id,
        "market_id": market, "side": "yes", "entry_price": Decimal("0.5000"), "quantity": 10, "initial_quantity": 10,
        "status": "open", "entry_time": at - timedelta(hours=1), "mode": mode})
    tid = _trade(conn, pid, seeded, market, "sell", "0.6000", 10, "0", at, mode)
    conn.execute("INSERT INTO position_exits (position_id, exit_condition, exit_priority, quantity_exited, exit_price,"
                 " realized_pnl, exit_trade_id, created_at) VALUES (%s, 'profit_target', 'MEDIUM', 10, 0.6000, %s, %s,"
                 " %s)", (pid, Decimal(realized), tid, at))
    return pid


def test_today_starts_at_local_midnight_on_dst_days(conn: psycopg.Connection[Any], seeded: Seeded) -> None:
    """On the days the clocks change, "today" still starts at local midnight (EDT on the fall-back day, EST on the
    spring-forward day), and `precog pnl --by day` puts an exit on the same local day as the dashboard."""
    for now_local, offset in ((datetime(2026, 11, 1, 15, 0, tzinfo=NY), -4), (datetime(2026, 3, 8, 15, 0, tzinfo=NY), -5)):
        now = now_local.astimezone(UTC)
        start = queries.day_start(now, NY)
        assert start.utcoffset() == timedelta(hours=offset)
        assert start.astimezone(UTC) == datetime(now_local.year, now_local.month, now_local.day, -offset, 0,
                                                 tzinfo=UTC)
        midnight = start.astimezone(UTC)
        before = queries.pnl_summary(conn, mode="paper", day_start=start)
        _exit_at(conn, seeded, midnight - timedelta(minutes=30), "-7.0000")  # 23:30 the day before
        _exit_at(conn, seeded, midnight + timedelta(minutes=30), "2.5000")  # 00:30 today
        _exit_at(conn, seeded, midnight + timedelta(minutes=30), "1.0000", mode="backtest")  # never paper's
        after = queries.pnl_summary(conn, mode="paper", day_start=start)
        assert after["today_realized"] - before["today_realized"] == Decimal("2.5000")
        days = {r["key"]: r for r in attribution.pnl_by(conn, "day", mode="paper", tz="America/New_York")}
        assert days[now_local.date().isoformat()]["realized_pnl"] == Decimal("2.5000")
        assert days[(now_local.date() - timedelta(days=1)).isoformat()]["realized_pnl"] == Decimal("-7.0000")
    conn.rollback()


def test_every_page_answers_on_an_empty_database_and_without_marks(db_url: str,
                                                                   conn: psycopg.Connection[Any]) -> None:
    """A fresh install (no rows at all) and an open position the engine has not marked yet (no current price,
    no unrealized P&L) are normal states: every read endpoint answers 200 with zeros, never a 500."""
    paths = ("/api/overview", "/api/positions", "/api/trades", "/api/pnl", "/api/methods", "/api/edges",
             "/api/alerts", "/api/controls", "/api/approvals")
    with running_dashboard(db_url) as dash:
        for path in paths:
            r = httpx.get(dash.url + path, timeout=10)
            assert r.status_code == 200, (path, r.text)
        pnl = httpx.get(dash.url + "/api/pnl", timeout=10).json()["summary"]
        assert (pnl["total"], pnl["today"], pnl["open_positions"]) == ("0", "0", 0)
    strategy_id = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, config, status) VALUES"
                               " ('s', 'v1.0', '{}', 'active') RETURNING strategy_id").fetchone()[0]  # type: ignore[index]
    model_id = conn.execute("INSERT INTO probability_models (model_name, model_version, model_type, sport, config,"
                            " status) VALUES ('m', 'v1.0', 'elo', 'nfl', '{}', 'active') RETURNING model_id"
                            ).fetchone()[0]  # type: ignore[index]
    now = datetime.now(UTC)
    _position(conn, [{"created_at": now - timedelta(minutes=1)}],
              {"strategy_id": strategy_id, "model_id": model_id, "method_id": None, "market_id": "NOMARK-1",
               "side": "yes", "entry_price": Decimal("0.4000"), "quantity": 10, "initial_quantity": 10,
               "status": "open", "entry_time": now - timedelta(minutes=1)})
    conn.commit()
    with running_dashboard(db_url) as dash:
        for path in paths:
            r = httpx.get(dash.url + path, timeout=10)
            assert r.status_code == 200, (path, r.text)
        overview = httpx.get(dash.url + "/api/overview", timeout=10).json()
        assert overview["pnl"]["open_positions"] == 1 and overview["pnl"]["unrealized"] == "0"
        assert overview["risk"]["positions"] == 1  # at risk at its entry price until marked
        (row,) = httpx.get(dash.url + "/api/positions", timeout=10).json()["open"]
        assert all(t["distance"] is None for t in row["triggers"] if t["trigger"] in ("stop_loss", "profit_target"))
