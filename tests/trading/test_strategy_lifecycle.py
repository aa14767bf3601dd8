"""Strategy versions move along the spec 8.1 lifecycle; illegal moves are refused and every move is recorded."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from precog.trading.strategies import (
    StrategyActivationRules,
    StrategyDefinition,
    StrategyError,
    strategy_status_history,
    sync_strategies,
    transition,
)

NO_TESTING_PERIOD = StrategyActivationRules(min_testing_days=0, min_testing_trades=0)


def _add(conn: psycopg.Connection[Any], version: str, status: str, name: str = "halftime_entry") -> int:
    row = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, config, status)"
                       " VALUES (%s, %s, %s, %s) RETURNING strategy_id",
                       (name, version, Jsonb({"min_edge": "0.05", "v": version}), status)).fetchone()
    conn.commit()
    return int(row[0])


def test_full_lifecycle_is_recorded_with_who_and_why(conn: psycopg.Connection[Any]) -> None:
    sid = _add(conn, "v1.0", "draft")
    assert transition(conn, "halftime_entry@v1.0", "testing", by="alice", reason="paper first")["status"] == "testing"
    # the testing period itself (60 days, 50 trades) is test_strategy_activation_gate.py's subject
    row = transition(conn, "halftime_entry@v1.0", "active", by="bob", activation=NO_TESTING_PERIOD)
    assert row["status"] == "active" and row["activated_at"] is not None
    row = transition(conn, "halftime_entry@v1.0", "deprecated", by="carol", reason="replaced")
    assert row["status"] == "deprecated" and row["deactivated_at"] is not None
    history = [(h["from_status"], h["to_status"], h["changed_by"], h["reason"])
               for h in strategy_status_history(conn, sid)]
    assert history == [("draft", "testing", "alice", "paper first"), ("testing", "active", "bob", None),
                       ("active", "deprecated", "carol", "replaced")]


def test_testing_may_go_straight_to_deprecated(conn: psycopg.Connection[Any]) -> None:
    _add(conn, "v1.0", "testing")
    assert transition(conn, "halftime_entry@v1.0", "deprecated", by="alice")["status"] == "deprecated"


@pytest.mark.parametrize(("start", "target", "message"), [
    ("deprecated", "active", "deprecated is final"),
    ("active", "draft", "not draft"),
    ("testing", "draft", "not draft"),
    ("draft", "active", "not active"),
    ("active", "active", "already active"),
    ("active", "retired", "not one of"),
])
def test_illegal_moves_are_refused_and_change_nothing(conn: psycopg.Connection[Any], start: str, target: str,
                                                      message: str) -> None:
    sid = _add(conn, "v1.0", start)
    with pytest.raises(StrategyError, match=message):
        transition(conn, "halftime_entry@v1.0", target, by="alice")
    conn.rollback()
    assert conn.execute("SELECT status FROM strategies WHERE strategy_id = %s", (sid,)).fetchone() == (start,)
    assert strategy_status_history(conn, sid) == []


def test_inactive_can_be_reactivated_and_activation_supersedes_the_other_version(
        conn: psycopg.Connection[Any]) -> None:
    old = _add(conn, "v1.0", "active")
    new = _add(conn, "v1.1", "testing")
    transition(conn, "halftime_entry@v1.1", "active", by="alice", reason="better", activation=NO_TESTING_PERIOD)
    assert conn.execute("SELECT strategy_id, status FROM strategies ORDER BY strategy_id").fetchall() == [
        (old, "inactive"), (new, "active")]
    assert [h["reason"] for h in strategy_status_history(conn, old)] == ["superseded by halftime_entry@v1.1"]
    transition(conn, "halftime_entry@v1.0", "active", by="alice", reason="rollback")
    assert conn.execute("SELECT strategy_id, status FROM strategies ORDER BY strategy_id").fetchall() == [
        (old, "active"), (new, "inactive")]


def test_unknown_strategy_and_missing_who_are_clear_errors(conn: psycopg.Connection[Any]) -> None:
    _add(conn, "v1.0", "active")
    with pytest.raises(StrategyError, match="halftime_entry@v9.9 not found"):
        transition(conn, "halftime_entry@v9.9", "inactive", by="alice")
    with pytest.raises(StrategyError, match="by: say who"):
        transition(conn, "halftime_entry@v1.0", "inactive", by="  ")


def test_yaml_sync_does_not_undo_an_operator_decision(conn: psycopg.Connection[Any]) -> None:
    config = {"min_edge": "0.05", "v": "v1.0"}
    d = StrategyDefinition("halftime_entry", "v1.0", True, config)
    sync_strategies(conn, [d])
    assert conn.execute("SELECT status FROM strategies").fetchone() == ("active",)
    transition(conn, "halftime_entry@v1.0", "inactive", by="alice", reason="pause")
    sync_strategies(conn, [d])  # `enabled: true` in the YAML must not silently re-activate it
    assert conn.execute("SELECT status FROM strategies").fetchone() == ("inactive",)


# ---------------------------------------------------------------- the CLI, through the real entry point
def test_cli_lists_shows_and_moves_strategies(precog_cli: Any) -> None:
    listed = precog_cli("strategies", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows, "the YAML strategies are synced and listed"
    target = next(r for r in rows if r["status"] == "active")
    ref = f"{target['strategy_name']}@{target['strategy_version']}"
    moved = precog_cli("strategies", "deactivate", ref, "--by", "alice", "--reason", "too noisy")
    assert moved.returncode == 0, moved.stderr
    assert f"{ref} is now inactive" in moved.stdout
    shown = json.loads(precog_cli("strategies", "show", ref, "--json").stdout)
    assert shown["status"] == "inactive"  # the sync at `show` keeps the operator's decision
    assert [(h["from_status"], h["to_status"], h["changed_by"], h["reason"]) for h in shown["status_history"]] == [
        ("active", "inactive", "alice", "too noisy")]
    assert precog_cli("strategies", "activate", ref, "--by", "bob").returncode == 0
    refused = precog_cli("strategies", "test", ref, "--by", "bob")
    assert refused.returncode == 1
    assert f"strategy {ref} is active: it can move to deprecated, inactive, not testing" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    assert precog_cli("strategies", "deprecate", ref, "--by", "bob").returncode == 0
    again = precog_cli("strategies", "activate", ref, "--by", "bob")
    assert again.returncode == 1 and "deprecated is final" in again.stderr + again.stdout
    missing_by = precog_cli("strategies", "activate", ref)
    assert missing_by.returncode != 0 and "by" in missing_by.stderr + missing_by.stdout
    assert "Example:" in precog_cli("strategies", "deprecate", "--help").stdout
