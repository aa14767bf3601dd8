"""`precog espn scoreboard` and `precog espn parse` run as a user would (the real entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from feeds.espn_testkit import run_cli
from precog.cli.errors import UserError
from precog.feeds.espn_server import LocalEspnServer


def _precog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True, env=full,
                          timeout=60, check=False)


def test_parse_saved_scoreboard_as_json(shared_data: Path) -> None:
    path = shared_data / "espn" / "nfl_scoreboard_2025_week13_sample.json"
    result = _precog("espn", "parse", str(path), "--sport", "nfl", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["sport"] == "nfl" and len(out["games"]) == 16 and out["errors"] == []
    live = next(g for g in out["games"] if g["game_id"] == "401772931")
    assert live["home_score"] == 17 and live["possession"] == "away" and live["clock_seconds"] == 522
    assert live["metadata"]["espn_win_probability"]["home"] == "0.2822"  # Decimal as a string


def test_parse_errors_are_one_readable_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _precog("espn", "parse", str(bad), "--sport", "nfl", "--json")
    assert result.returncode == 1
    assert "bad.json" in result.stderr and "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_cli("espn", "parse", str(bad), "--sport", "curling")
    assert isinstance(result.exception, UserError)
    assert "--sport" in str(result.exception) and "curling" in str(result.exception)


def test_scoreboard_live_from_configured_base_url(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = (shared_data / "espn" / "nba_scoreboard_2025_sample.json").read_bytes()
    with LocalEspnServer() as server:
        server.set_scoreboard("nba", body)
        monkeypatch.setenv("PRECOG_ESPN_BASE_URL", server.base_url)
        result = run_cli("espn", "scoreboard", "--sport", "nba", "--date", "20251207", "--json")
        table = run_cli("espn", "scoreboard", "--sport", "nba")
        assert server.requests_for("nba")[0].query == {"dates": ["20251207"]}
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["games"]) == 7
    assert table.exit_code == 0, table.output
    assert "ORL @ NY" in table.stdout and "73-87" in table.stdout


def test_scoreboard_unreachable_is_a_clear_error() -> None:
    result = run_cli("espn", "scoreboard", "--sport", "nfl", "--base-url", "http://127.0.0.1:9/apis/site/v2")
    assert isinstance(result.exception, UserError)
    assert "ESPN nfl scoreboard failed" in str(result.exception)
    result = run_cli("espn", "scoreboard", "--sport", "nfl", "--date", "11/30/2025")
    assert isinstance(result.exception, UserError) and "--date" in str(result.exception)
