"""`precog backtest` and `precog report` as a user runs them (real entry point, real database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _json_document(r: Any) -> dict[str, Any]:
    """--json: stdout is one JSON document; the headline line (`backtest N: ...`, `report N: ...`) is on stderr."""
    last = r.stderr.rstrip().rpartition("\n")[2]
    assert last.startswith(("backtest ", "report ")), last
    return json.loads(r.stdout)


def test_backtest_then_report_rerenders_the_stored_run(precog_cli: Any, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = precog_cli("backtest", "--data", str(shared_data / "nfl"), "--from", "2013-09-01", "--to", "2013-10-15",
                   "--method", "nfl_elo_pregame@v1.1", "--method", "nfl_closing_line@v1.0", "--out", str(out), "--json",
                   timeout=300)
    assert r.returncode == 0, r.stderr
    assert "path: the database-backed live engine" in r.stderr  # --json keeps stdout for the JSON
    s = _json_document(r)
    assert {m["method"] for m in s["by_method"]} == {"nfl_elo_pregame@v1.1", "nfl_closing_line@v1.0"}
    assert s["engine"]["events"] > 0 and s["engine"]["path"] == "db-backed live engine (fast)"
    assert all(w["models"]["elo"]["status"] == "trained" for w in s["windows"] if "elo" in w["models"])
    assert Path(s["report_html"]).is_file()
    run_id = s["backtest_id"]

    again = tmp_path / "again"
    r2 = precog_cli("report", "--run", str(run_id), "--out", str(again), env={"COLUMNS": "80"})
    assert r2.returncode == 0, r2.stderr
    assert f"report {run_id}:" in r2.stdout
    # the A/B table has a column per method, each named in full on an 80-column terminal
    header = next(line for line in r2.stdout.splitlines() if "nfl_elo_pregame@v1.1" in line)
    assert "nfl_closing_line@v1.0" in header
    pnl = next(line for line in r2.stdout.splitlines() if line.startswith("│ P&L "))
    by = {m["method"]: m for m in s["by_method"]}
    assert str(by["nfl_elo_pregame@v1.1"]["pnl"]) in pnl and str(by["nfl_closing_line@v1.0"]["pnl"]) in pnl
    html = (again / f"backtest-{run_id}.html").read_text()
    assert "data:image/png;base64," in html and "Equity" not in html.split("<body>")[0]
    assert json.loads((again / f"backtest-{run_id}.json").read_text())["totals"] == s["totals"]

    r3 = precog_cli("report", "--list", "--json")
    assert r3.returncode == 0 and json.loads(r3.stdout)[0]["backtest_id"] == run_id


def test_backtest_of_a_recording_says_which_path_replays_it(precog_cli: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from precog.ingest.recorder import Recorder

    t0 = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
    with Recorder(tmp_path / "rec") as rec:
        for k, (bid, ask) in enumerate((("0.4000", "0.4200"), ("0.4100", "0.4300"), ("0.4100", "0.4300"))):
            rec.record("kalshi:ws", {"type": "ticker", "sid": 1, "seq": k, "msg": {
                "market_ticker": "KXNFLGAME-25NOV30DENWSH-WSH", "yes_bid_dollars": bid, "yes_ask_dollars": ask}},
                t0 + timedelta(seconds=10 * k))
    r = precog_cli("backtest", "--data", str(tmp_path / "rec"), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "path: the database-backed live engine (precog.engine.core.Engine" in r.stdout
    assert "replayed 3 events in" in r.stdout and "events/s" in r.stdout
    # both entry-value measures are named, each with what it covers (none traded here)
    assert "CLV per contract (pre-game entries)" in r.stdout and "none" in r.stdout
    assert "price drift 15 min after in-game entries" in r.stdout


def test_backtest_errors_are_one_readable_line(precog_cli: Any, shared_data: Path, tmp_path: Path) -> None:
    cases = [
        (("backtest", "--data", str(tmp_path / "missing")), "no such file or directory"),
        (("backtest", "--data", str(tmp_path)), "no NFL history here"),
        (("backtest", "--data", str(shared_data / "nfl"), "--walk-forward", "train=3y"), "missing test"),
        (("backtest", "--data", str(shared_data / "nfl"), "--from", "2013-13-01"), "--from '2013-13-01'"),
        (("backtest", "--data", str(shared_data / "nfl"), "--from", "2013-09-01", "--to", "2013-09-10",
          "--method", "no_such_method@v1.0"), "no method no_such_method@v1.0"),
        (("report", "--run", "999"), "no backtest run 999"),
    ]
    for args, message in cases:
        r = precog_cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
