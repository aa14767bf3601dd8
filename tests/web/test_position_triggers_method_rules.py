"""The dashboard's distance-to-exit figures use the exit rules the engine manages a position with: its method's
own position management where the method has one (a method only narrows or widens its own stops), the global
rules otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from precog.trading.exits import ExitRules
from precog.web import queries
from web.dashkit import Seeded


def test_open_positions_show_their_methods_own_stop_and_target(conn: psycopg.Connection[Any],
                                                                 seeded: Seeded) -> None:
    rules = ExitRules.from_config({})
    before = queries.open_positions(conn, mode=None, rules=rules, now=datetime.now(UTC))
    assert before, "precondition: the seeded day has open positions"
    ours = [r for r in before if r["method_id"] is not None]
    assert ours, "precondition: some belong to a method"
    for r in ours:  # the method has no position management of its own yet: the global rules
        stop = next(t for t in r["triggers"] if t["trigger"] == "stop_loss")
        assert stop["threshold"] == rules.stop_loss[r["confidence"] or "medium"]
    # partial exits off: the engine then takes profit at the method's own target (with them on, by the stages)
    own = {"stop_loss": {"high_confidence": "-0.07", "medium_confidence": "-0.08", "low_confidence": "-0.09"},
           "profit_targets": {"high_confidence": "0.31", "medium_confidence": "0.32", "low_confidence": "0.33"},
           "partial_exits": {"enabled": False}}
    # a method version with its own position management (a version's config is immutable: a new row)
    method_id = conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config,"
        " execution_config, sport_config, config_hash, status) SELECT method_name, 'v9.0', strategy_id, model_id, %s,"
        " risk_config, execution_config, sport_config, 'own-rules', status FROM methods WHERE method_id = %s"
        " RETURNING method_id", (Jsonb(own), ours[0]["method_id"])).fetchone()[0]
    # attach the positions to it in place (SCD2 versions are frozen by a trigger: fixture set-up only)
    conn.execute("SET session_replication_role = replica")
    conn.execute("UPDATE positions SET method_id = %s WHERE position_id = ANY(%s)",
                 (method_id, [r["position_id"] for r in ours]))
    conn.execute("SET session_replication_role = origin")
    after = {r["position_id"]: r for r in queries.open_positions(conn, mode=None, rules=rules, now=datetime.now(UTC))}
    for r in ours:
        row = after[r["position_id"]]
        conf = row["confidence"] or "medium"
        triggers = {t["trigger"]: t for t in row["triggers"]}
        assert triggers["stop_loss"]["threshold"] == Decimal(own["stop_loss"][f"{conf}_confidence"])
        assert triggers["profit_target"]["threshold"] == Decimal(own["profit_targets"][f"{conf}_confidence"])
        pct = (row["current_price"] - row["entry_price"]) / row["entry_price"]
        assert triggers["stop_loss"]["distance"] == pct - Decimal(own["stop_loss"][f"{conf}_confidence"])


def test_with_partial_exits_on_the_next_stage_is_shown_not_the_profit_target(conn: psycopg.Connection[Any],
                                                                             seeded: Seeded) -> None:
    """The engine never takes profit by `profit_target` while partial exits are on (the default): it sells by
    stages. The dashboard showed the profit target's distance anyway; it shows the next stage not yet executed."""
    from precog.config.loader import load_config

    rules = ExitRules.from_config(load_config(use_env=False, use_overrides=False).section("position_management"))
    assert rules.partial_enabled and len(rules.stages) >= 2, "precondition: the shipped rules sell by stages"
    rows = queries.open_positions(conn, mode=None, rules=rules, now=datetime.now(UTC))
    assert rows
    first = rules.stages[0]
    for r in rows:
        names = [t["trigger"] for t in r["triggers"]]
        assert "profit_target" not in names
        stage = next(t for t in r["triggers"] if t["trigger"] == "partial_exit_target")
        assert stage["stage"] == first.name and stage["threshold"] == first.profit_threshold
    # a position whose first stage has sold shows the second
    pid = rows[0]["position_id"]
    conn.execute("SET session_replication_role = replica")
    conn.execute("UPDATE positions SET position_metadata = position_metadata || %s WHERE position_id = %s",
                 (Jsonb({"executed_stages": [first.name]}), pid))
    conn.execute("SET session_replication_role = origin")
    row = next(r for r in queries.open_positions(conn, mode=None, rules=rules, now=datetime.now(UTC))
               if r["position_id"] == pid)
    stage = next(t for t in row["triggers"] if t["trigger"] == "partial_exit_target")
    assert stage["stage"] == rules.stages[1].name
