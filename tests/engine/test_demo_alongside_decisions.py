"""`precog demo` and the decision layer on one database: the demo's strategies and models are its own rows
(demo_*), so the versions synced from trade_strategies.yaml and the shipped models keep their names, and every
demo entry order went through the shared RiskManager (an approval per entry order, rejections recorded)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest


@pytest.mark.timeout(300)
def test_demo_then_edges_scan_and_methods_list_on_the_same_database(precog_cli: Any, db_url: str) -> None:
    first = precog_cli("edges", "scan", "--json")  # syncs the YAML strategies before the demo runs
    assert first.returncode == 0, first.stderr + first.stdout
    demo = precog_cli("demo", "--games", "1", "--speed", "0", "--seed", "5", "--transport", "inprocess",
                      timeout=280)
    assert demo.returncode == 0, demo.stderr + demo.stdout
    assert demo.stdout.strip().splitlines()[-1].endswith("ledger match: yes")

    scan = precog_cli("edges", "scan", "--json")
    assert scan.returncode == 0, scan.stderr + scan.stdout
    assert "bump" not in scan.stderr and json.loads(scan.stdout)["calculation_run_id"]
    listed = precog_cli("methods", "list", "--json")
    assert listed.returncode == 0, listed.stderr + listed.stdout
    methods = {m["ref"]: m for m in json.loads(listed.stdout)}
    assert methods["nfl_elo_pregame@v1.1"]["strategy"] == "demo_pre_game_entry@v1.0"
    assert methods["nfl_live_wp@v1.1"]["strategy"] == "demo_live_trading@v1.0"

    with psycopg.connect(db_url) as conn:
        strategies = dict(conn.execute(
            "SELECT strategy_name, config->>'min_edge' FROM strategies WHERE strategy_version = 'v1.0'").fetchall())
        assert strategies["pre_game_entry"] == "0.08"  # the YAML's version, untouched by the demo
        assert strategies["demo_pre_game_entry"] == "0.05"
        models = {r[0] for r in conn.execute("SELECT model_name FROM probability_models").fetchall()}
        assert {"elo_nfl", "demo_elo_nfl", "demo_ingame_wp_nfl"} <= models
        # every entry order the demo sent carried a RiskManager approval; refusals are recorded with a reason
        entries = conn.execute("SELECT metadata->>'approval_id' FROM orders o JOIN engine_runs r "
                               "ON r.run_id = o.run_id WHERE r.kind = 'demo' AND o.purpose = 'entry'").fetchall()
        assert entries and all(row[0] for row in entries)
        assert len({row[0] for row in entries}) == len(entries)  # single use: one approval per order
        reasons = conn.execute("SELECT check_name, reason FROM risk_rejections WHERE method_id IN "
                               "(SELECT method_id FROM methods WHERE method_name LIKE 'nfl_%')").fetchall()
        assert all(check and reason for check, reason in reasons)
