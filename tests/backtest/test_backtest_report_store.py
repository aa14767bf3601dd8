"""Stored backtest runs and `precog report`: a re-render equals the first report, `--list` shows each run's
trades, and walk-forward test windows never overlap."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from precog.backtest.runner import BacktestOptions, run_backtest
from precog.backtest.walkforward import parse


@pytest.fixture
def nfl(shared_data: Path) -> Path:
    return shared_data / "nfl"


def _text(html: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "IMG", html)


async def test_report_run_rerenders_the_same_report(db_url: str, nfl: Path, tmp_path: Path, precog_cli: Any) -> None:
    """The summary comes back from JSONB with its keys reordered; the report renders every dict in sorted key
    order, so `precog report --run ID` writes the very report (tables and charts) the run wrote."""
    result = await run_backtest(db_url, BacktestOptions(
        data=nfl, start=date(2013, 9, 5), end=date(2013, 9, 9), out=tmp_path / "first",
        methods=["nfl_elo_pregame@v1.1", "nfl_closing_line@v1.0"]))
    assert result.html_path is not None
    original = _text(result.html_path.read_text())
    r = precog_cli("report", "--run", str(result.backtest_id), "--out", str(tmp_path / "again"))
    assert r.returncode == 0, r.stderr
    again = _text((tmp_path / "again" / f"backtest-{result.backtest_id}.html").read_text())

    def calibration_rows(html: str) -> list[str]:
        section = html.split("<h2>Forecast calibration")[1].split("<h2>")[0]
        return re.findall(r"<tr><td>([^<]+)</td>", section)

    assert calibration_rows(original) == sorted(calibration_rows(original)) and len(calibration_rows(original)) == 2
    assert calibration_rows(again) == calibration_rows(original)
    assert again == original
    assert (tmp_path / "again" / f"backtest-{result.backtest_id}.html").read_text() == result.html_path.read_text()


async def test_report_list_shows_the_trades_of_each_run(db_url: str, nfl: Path, tmp_path: Path,
                                                       precog_cli: Any) -> None:
    """`precog report --list`: the trades column is the run's fills (summary totals.fills)."""
    result = await run_backtest(db_url, BacktestOptions(
        data=nfl, start=date(2013, 9, 5), end=date(2013, 9, 9), out=tmp_path / "r",
        methods=["nfl_elo_pregame@v1.1"]))
    fills = result.summary["totals"]["fills"]
    assert fills > 0
    r = precog_cli("report", "--list", "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)[0]
    assert row["backtest_id"] == result.backtest_id
    assert row["trades"] == fills
    table = precog_cli("report", "--list")
    assert table.returncode == 0, table.stderr
    assert re.search(rf"{result.backtest_id}\b.*\b{fills}\b", table.stdout), table.stdout


def test_walk_forward_with_overlapping_test_windows_is_refused(precog_cli: Any, nfl: Path) -> None:
    """Test windows must not overlap (the same game traded twice, the equity curve running backwards): a step
    shorter than the test window (spec 7.3's 12m/3m/1m shape) is refused naming the option and the rule."""
    r = precog_cli("backtest", "--data", str(nfl), "--from", "2012-10-01", "--to", "2013-11-30",
                   "--walk-forward", "train=1y,test=2m,step=1m")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "--walk-forward" in r.stderr and "step=1m is shorter than test=2m" in r.stderr
    assert "must not overlap" in r.stderr and "Traceback" not in r.stderr


async def test_walk_forward_trades_each_game_in_one_window_only(db_url: str, nfl: Path, tmp_path: Path) -> None:
    """With step == test the test windows tile the period: every game is traded in one window at most and the
    run's equity curve moves forward in time."""
    result = await run_backtest(db_url, BacktestOptions(
        data=nfl, start=date(2012, 10, 1), end=date(2013, 11, 30), walk_forward=parse("train=1y,test=1m,step=1m"),
        out=tmp_path / "r", methods=["nfl_elo_pregame@v1.1"]))
    s = result.summary
    assert [w["test"] for w in s["windows"]] == [["2013-10-01", "2013-10-31"], ["2013-11-01", "2013-11-30"]]
    windows_of: dict[str, set[str]] = {}
    for t in s["trades"]:
        m = re.match(r"(KXNFLGAME-)B\d+L\d+W(\d+)-(.*)", t["market"])
        assert m is not None, t["market"]
        windows_of.setdefault(m.group(1) + m.group(3), set()).add(m.group(2))
    assert len(windows_of) > 10
    assert {g: w for g, w in windows_of.items() if len(w) > 1} == {}
    ts = [p[0] for p in s["equity_curve"]]
    assert ts == sorted(ts)
