"""`precog edges|methods|breakers|halt|resume` through the real entry point, as a user runs them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from trading_dbkit import BUF, KC, World, create_testing_method

from clikit import fails_with, json_ok

D = Decimal

def test_edges_scan_list_and_rejections(world: World, precog_cli: Any) -> None:
    create_testing_method(world.conn)
    scan = json_ok(precog_cli("edges", "scan", "--json"))
    assert scan["markets_in_scope"] == 2 and scan["edges"] == 4 and scan["signals"] == 2
    assert scan["stored"]["versions_written"] == 4 and scan["trading_state"]["mode"] == "ACTIVE"
    assert {(i["market"], i["side"]) for i in scan["intents"]} == {(KC, "yes"), (BUF, "no")}
    best = scan["edge_list"][0]
    assert best["market"] == KC and best["edge"] == "0.1824" and best["fee_per_contract"] == "0.02"
    listed = json_ok(precog_cli("edges", "list", "--min-edge", "0.17", "--json"))
    assert [(r["market_id"], r["side"], r["expected_value"]) for r in listed] == [(KC, "yes", "0.1824")]
    assert listed[0]["calculation_run_id"] == scan["calculation_run_id"]
    assert listed[0]["method"] == "nfl_pregame@v1.0" and listed[0]["model"] == "fixed_test@v1.0"
    fails_with(precog_cli("edges", "list", "--min-edge", "lots"), "--min-edge")
    table = precog_cli("edges", "list")
    assert table.returncode == 0 and KC in table.stdout and "0.1824" in table.stdout


def test_methods_commands(world: World, precog_cli: Any, tmp_path: Path) -> None:
    created = json_ok(precog_cli("methods", "create", "--template", "moderate", "--name", "cli_m", "--version", "v1.0",
                             "--strategy", "pre_game_entry@v1.0", "--model", "fixed_test@v1.0",
                             "--set", "risk.kelly_fraction=0.15", "--set", "sport.nfl.min_volume=200", "--json"))
    assert created["status"] == "draft" and created["risk_config"]["kelly_fraction"] == "0.15"
    fails_with(precog_cli("methods", "create", "--template", "moderate", "--name", "cli_m2", "--strategy",
                      "pre_game_entry@v1.0", "--model", "fixed_test@v1.0", "--set", "risk.kelly_fraction=0.15",
                      "--set", "sport.nfl.min_volume=200"), "identical to method cli_m@v1.0")
    fails_with(precog_cli("methods", "activate", "cli_m@v1.0"), "activation is only allowed from testing")
    assert json_ok(precog_cli("methods", "test", "cli_m@v1.0", "--by", "alice", "--json"))["status"] == "testing"
    out = tmp_path / "cli_m.json"
    assert precog_cli("methods", "export", "cli_m@v1.0", "--out", str(out)).returncode == 0
    exported = json.loads(out.read_text())
    assert exported["strategy"] == {"name": "pre_game_entry", "version": "v1.0"}
    exported["method_version"] = "v1.1"
    exported["risk_config"]["kelly_fraction"] = "0.12"
    out.write_text(json.dumps(exported))
    imported = json_ok(precog_cli("methods", "import", str(out), "--json"))
    assert imported["created"] is True and imported["status"] == "draft"
    shown = json_ok(precog_cli("methods", "show", "cli_m@v1.0", "--json"))
    assert [h["to_status"] for h in shown["status_history"]] == ["draft", "testing"]
    compared = json_ok(precog_cli("methods", "compare", "cli_m@v1.0", "cli_m@v1.1", "--json"))
    assert compared["differences"] == [{"key": "risk.kelly_fraction", "a": "0.15", "b": "0.12"}]


def test_breakers_halt_and_resume(world: World, precog_cli: Any) -> None:
    listed = json_ok(precog_cli("breakers", "list", "--json"))
    assert listed["trading_state"]["mode"] == "ACTIVE" and listed["open"] == []
    assert {b["name"] for b in listed["breakers"]} >= {"daily_loss_limit", "consecutive_losses", "edge_anomaly"}
    halted = json_ok(precog_cli("halt", "--reason", "venue incident", "--by", "alice", "--json"))
    assert halted["trading_state"]["mode"] == "HALTED" and halted["trading_state"]["changed_by"] == "alice"
    tripped = json_ok(precog_cli("breakers", "trip", "edge_anomaly", "--reason", "drill", "--by", "bob", "--json"))
    assert {b["name"] for b in tripped["open"]} == {"manual", "edge_anomaly"}
    fails_with(precog_cli("resume", "--by", "alice"), "open breakers edge_anomaly")
    resumed = json_ok(precog_cli("resume", "--by", "alice", "--all", "--json"))
    assert resumed["trading_state"]["mode"] == "ACTIVE" and set(resumed["reset"]) == {"manual", "edge_anomaly"}
    fails_with(precog_cli("breakers", "reset", "edge_anomaly", "--by", "bob"), "is not open")
    history = json_ok(precog_cli("breakers", "history", "--json"))
    # the refused resume changed nothing; resume --all is one change
    assert [(h["mode"], h["changed_by"]) for h in history] == [("ACTIVE", "alice"), ("HALTED", "bob"),
                                                              ("HALTED", "alice")]
    alerts = world.conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'circuit_breaker'"
                                " AND severity = 'critical'").fetchone()
    assert alerts == (2,)  # one per trip
