"""A strategy version goes active only after its testing period (spec 8.1: >= 60 days and >= 50 trades).

The gate holds for every way of activating (the registry, `precog strategies activate`, the dashboard, which all
go through `strategies.transition`); a refusal names what is missing and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from precog.trading.strategies import (
    StrategyDefinition,
    StrategyError,
    strategy_status_history,
    sync_strategies,
    transition,
)


def _strategy(conn: psycopg.Connection[Any], version: str = "v1.0", *, testing_days_ago: float | None = None,
              name: str = "halftime_entry") -> int:
    """A draft version moved to testing `testing_days_ago` days ago (as `precog strategies test` records it)."""
    sid = int(conn.execute("INSERT INTO strategies (strategy_name, strategy_version, config, status)"
                           " VALUES (%s, %s, %s, 'draft') RETURNING strategy_id",
                           (name, version, Jsonb({"min_edge": "0.05", "v": version}))).fetchone()[0])
    if testing_days_ago is not None:
        conn.execute("UPDATE strategies SET status = 'testing' WHERE strategy_id = %s", (sid,))
        conn.execute("INSERT INTO strategy_status_changes (strategy_id, from_status, to_status, changed_by, changed_at)"
                     " VALUES (%s, 'draft', 'testing', 'alice', %s)",
                     (sid, datetime.now(UTC) - timedelta(days=testing_days_ago)))
    conn.commit()
    return sid


def _trades(conn: psycopg.Connection[Any], strategy_id: int, n: int, *, mode: str = "paper",
            status: str = "closed") -> None:
    for i in range(n):
        pid = conn.execute("SELECT nextval('position_id_seq')").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, strategy_id, exit_time)"
            " VALUES (%s, %s, 'kalshi', 'yes', %s, 0.50, 10, 10, 0, %s, %s, %s, %s)",
            (pid, f"M{i}", mode, status, Decimal("1.00") if status != "open" else Decimal("0"), strategy_id,
             datetime.now(UTC) if status != "open" else None))
    conn.commit()


def _status(conn: psycopg.Connection[Any], strategy_id: int) -> str:
    conn.rollback()
    return str(conn.execute("SELECT status FROM strategies WHERE strategy_id = %s", (strategy_id,)).fetchone()[0])


def test_activation_needs_60_days_of_testing_and_50_closed_paper_trades(conn: psycopg.Connection[Any]) -> None:
    sid = _strategy(conn, testing_days_ago=10)
    with pytest.raises(StrategyError, match=r"halftime_entry@v1.0 cannot be activated yet: 10 days in testing "
                                            r"\(need >= 60\); 0 closed paper trades \(need >= 50\)"):
        transition(conn, "halftime_entry@v1.0", "active", by="bob")
    assert _status(conn, sid) == "testing"
    assert [h["to_status"] for h in strategy_status_history(conn, sid)] == ["testing"]  # nothing recorded

    # only closed paper trades of this version count: not live ones, not open ones, not another version's
    other = _strategy(conn, "v1.1", testing_days_ago=90)
    _trades(conn, sid, 49)
    _trades(conn, sid, 5, mode="live")
    _trades(conn, sid, 3, status="open")
    _trades(conn, other, 10)
    with pytest.raises(StrategyError, match=r"49 closed paper trades \(need >= 50\)"):
        transition(conn, "halftime_entry@v1.0", "active", by="bob")
    _trades(conn, sid, 1, status="settled")
    with pytest.raises(StrategyError, match=r"cannot be activated yet: 10 days in testing \(need >= 60\)$"):
        transition(conn, "halftime_entry@v1.0", "active", by="bob")
    assert _status(conn, sid) == "testing"


def test_a_tested_version_is_activated_and_the_move_recorded(conn: psycopg.Connection[Any]) -> None:
    sid = _strategy(conn, testing_days_ago=61)
    _trades(conn, sid, 50)
    row = transition(conn, "halftime_entry@v1.0", "active", by="bob", reason="earned it")
    assert row["status"] == "active" and row["activated_at"] is not None
    assert [(h["from_status"], h["to_status"], h["changed_by"]) for h in strategy_status_history(conn, sid)] == [
        ("draft", "testing", "alice"), ("testing", "active", "bob")]


def test_the_testing_period_counts_from_the_latest_move_into_testing(conn: psycopg.Connection[Any]) -> None:
    sid = _strategy(conn, testing_days_ago=200)
    _trades(conn, sid, 60)
    conn.execute("INSERT INTO strategy_status_changes (strategy_id, from_status, to_status, changed_by, changed_at)"
                 " VALUES (%s, 'testing', 'active', 'bob', %s), (%s, 'active', 'inactive', 'bob', %s),"
                 " (%s, 'inactive', 'testing', 'carol', %s)",
                 (sid, datetime.now(UTC) - timedelta(days=100), sid, datetime.now(UTC) - timedelta(days=30),
                  sid, datetime.now(UTC) - timedelta(days=5)))
    conn.commit()
    with pytest.raises(StrategyError, match=r"5 days in testing \(need >= 60\)"):
        transition(conn, "halftime_entry@v1.0", "active", by="carol")


def test_a_version_that_was_never_active_cannot_skip_testing(conn: psycopg.Connection[Any]) -> None:
    # `enabled: false` in trade_strategies.yaml stores a new version as inactive: it has earned nothing yet
    sync_strategies(conn, [StrategyDefinition("halftime_entry", "v1.0", False, {"min_edge": "0.05"})])
    sid = int(conn.execute("SELECT strategy_id FROM strategies").fetchone()[0])
    conn.commit()
    with pytest.raises(StrategyError, match=r"halftime_entry@v1.0 has never been active: test it first "
                                            r"\(`precog strategies test halftime_entry@v1.0`, then >= 60 days and >= 50 closed paper trades\)"):
        transition(conn, "halftime_entry@v1.0", "active", by="bob")
    assert _status(conn, sid) == "inactive"


def test_a_version_that_was_active_may_be_reactivated(conn: psycopg.Connection[Any]) -> None:
    sync_strategies(conn, [StrategyDefinition("halftime_entry", "v1.0", True, {"min_edge": "0.05"})])
    transition(conn, "halftime_entry@v1.0", "inactive", by="alice", reason="pause")
    assert transition(conn, "halftime_entry@v1.0", "active", by="alice", reason="resume")["status"] == "active"


def test_cli_activation_refusal_names_what_is_missing(conn: psycopg.Connection[Any], precog_cli: Any) -> None:
    sid = _strategy(conn, testing_days_ago=3)
    _trades(conn, sid, 7)
    refused = precog_cli("strategies", "activate", "halftime_entry@v1.0", "--by", "bob")
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1, out
    assert "3 days in testing (need >= 60); 7 closed paper trades (need >= 50)" in out
    assert "Traceback" not in out
    assert _status(conn, sid) == "testing"


def test_cli_activation_takes_the_configured_testing_period(conn: psycopg.Connection[Any], precog_cli: Any) -> None:
    """trade_strategies.yaml `strategy_lifecycle.activation` sets the gate (here 5 days and 5 trades, through the
    environment override); the shipped 60/50 would refuse this version."""
    sid = _strategy(conn, testing_days_ago=6)
    _trades(conn, sid, 5)
    env = {"PRECOG_CFG__TRADE_STRATEGIES__STRATEGY_LIFECYCLE__ACTIVATION__MIN_TESTING_DAYS": "5",
           "PRECOG_CFG__TRADE_STRATEGIES__STRATEGY_LIFECYCLE__ACTIVATION__MIN_TESTING_TRADES": "5"}
    done = precog_cli("strategies", "activate", "halftime_entry@v1.0", "--by", "bob", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _status(conn, sid) == "active"
    refused = precog_cli("strategies", "activate", "halftime_entry@v1.0", "--by", "bob",
                         env={"PRECOG_CFG__TRADE_STRATEGIES__STRATEGY_LIFECYCLE__ACTIVATION__MIN_TESTING_DAYS": "-1"})
    assert refused.returncode != 0 and "min_testing_days" in refused.stdout + refused.stderr
