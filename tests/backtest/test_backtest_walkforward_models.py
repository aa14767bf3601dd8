"""Walk-forward re-trains every trainable model on its own training window, through the GuardedArchive.

The in-game WP model of each window is fitted (`precog.forecast.winprob.train`, the shipped recipe) on the
play-by-play of the games finished inside that window's training span only; a window without plays leaves
it untrained (no forecasts, a note in the report and a CLI warning), never the shipped artefact, which has
seen 2020-2022. A trainer that asks for plays past the clock is stopped.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backtest.bt_testkit import method_row
from precog.backtest.errors import LookAheadError
from precog.backtest.feed import GuardedArchive, dt_to_ms
from precog.backtest.history import load_nfl, training_plays
from precog.backtest.models import WinProbabilityModel
from precog.backtest.runner import BacktestOptions, run_backtest
from precog.backtest.walkforward import parse
from precog.db.connection import connect

WP_METHOD = "nfl_live_wp@v1.1"


@pytest.fixture
def nfl(shared_data: Path) -> Path:
    return shared_data / "nfl"


def _ms(d: date) -> int:
    return dt_to_ms(datetime(d.year, d.month, d.day, tzinfo=UTC))


class RecordingWp(WinProbabilityModel):
    """The real WP model; remembers which games each training saw (the test's window into it)."""

    def __init__(self) -> None:
        super().__init__()
        self.trainings: list[tuple[int, list[str]]] = []

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        n = super().train(archive, start_ms, end_ms)
        self.trainings.append((end_ms, list(self.train_game_ids)))
        return n


class PeekingTrainer(WinProbabilityModel):
    """A trainer that fits on the plays of the season it is about to trade (a year past the clock)."""

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        archive.plays_between(start_ms, end_ms + 365 * 86_400_000)
        return 0


def test_archive_hands_out_plays_only_of_games_finished_before_the_clock(nfl: Path) -> None:
    hist = load_nfl(nfl, end=date(2020, 12, 31))
    clock = [_ms(date(2020, 10, 1))]
    archive = GuardedArchive(hist.archive, lambda: clock[0], lambda: training_plays(hist.folder))
    games, plays = archive.plays_between(_ms(date(2020, 9, 1)), clock[0])
    assert games and plays is not None
    assert all(g.final_ms <= clock[0] and g.day < date(2020, 10, 1) for g in games)
    assert set(plays.game_date.tolist()) == {str(g.day) for g in games}  # no play of another game
    assert len(plays) > 1000
    with pytest.raises(LookAheadError, match="plays of games finished up to"):
        archive.plays_between(_ms(date(2020, 9, 1)), clock[0] + 86_400_000)
    # before any play-by-play exists: nothing to train on, and nothing invented
    assert archive.plays_between(_ms(date(2013, 9, 1)), _ms(date(2014, 1, 1))) == ([], None)


async def test_walk_forward_retrains_wp_on_each_windows_plays_only(db_url: str, nfl: Path, tmp_path: Path) -> None:
    wp = RecordingWp()
    # each test window holds one Thursday game: 2020-10-08 and 2020-10-22
    opts = BacktestOptions(data=nfl, start=date(2020, 9, 10), end=date(2020, 10, 24), out=tmp_path / "out",
                           walk_forward=parse("train=28d,test=3d,step=14d"), methods=[WP_METHOD],
                           extra_models={"wp": wp})
    result = await run_backtest(db_url, opts)
    s = result.summary
    wins = s["windows"]
    assert [w["test"] for w in wins] == [["2020-10-08", "2020-10-10"], ["2020-10-22", "2020-10-24"]]
    assert len(wp.trainings) == 2 and s["notes"] == []
    hist = load_nfl(nfl, end=date(2020, 12, 31))
    day_of = {g.game_id: g.day for g in hist.archive}
    for w, (end_ms, ids) in zip(wins, wp.trainings, strict=True):
        test_start = date.fromisoformat(w["test"][0])
        train_from = date.fromisoformat(w["train"][0])
        assert end_ms <= _ms(test_start)
        # every training game was played (and finished) inside the training window, before the test start
        assert ids and all(train_from <= day_of[g] < test_start for g in ids)
        # ... and every such game with plays was used
        expected = {g.game_id for g in hist.games if g.plays and train_from <= g.day and
                    g.archived().final_ms < end_ms}
        assert set(ids) == expected
        info = w["models"]["wp"]
        assert info["status"] == "trained" and info["version"].startswith("wp_nfl@bt-")
        assert info["games"] == len(ids) and info["last_game"] < w["test"][0]
        assert info["games_sha256"] == hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
    # the window slides: a different set of games, so a different model version
    assert wins[0]["models"]["wp"]["version"] != wins[1]["models"]["wp"]["version"]
    assert s["calibration"]["wp"]["n"] > 20  # the re-trained models forecast the live states
    # the by-model table names the version each window traded with, next to the method's registered model
    traded = {r["model_version"]: r["positions"] for r in s["by_model"]}
    assert s["totals"]["positions"] > 0 and sum(traded.values()) == s["totals"]["positions"]
    for name in traded:
        assert any(name.endswith(f"({w['models']['wp']['version']})") for w in wins), name
    # the versions are stored with the run, per window
    with psycopg.connect(db_url) as conn:
        stored = [r[0] for r in conn.execute("SELECT summary->'models'->'wp'->>'version' FROM backtest_windows "
                                             "WHERE backtest_id = %s ORDER BY window_index",
                                             (result.backtest_id,)).fetchall()]
    assert stored == [w["models"]["wp"]["version"] for w in wins]
    assert "wp_nfl@bt-" in result.html_path.read_text()


def test_window_without_plays_leaves_wp_untrained_and_says_so(precog_cli: Any, nfl: Path, tmp_path: Path) -> None:
    # training window 2020-08-01 .. 2020-08-28 holds no game with plays; the test window holds the 2020 opener
    r = precog_cli("backtest", "--data", str(nfl), "--from", "2020-08-01", "--to", "2020-09-11", "--walk-forward",
                   "train=28d,test=14d,step=14d", "--method", WP_METHOD, "--out", str(tmp_path / "out"), "--json",
                   timeout=300)
    assert r.returncode == 0, r.stderr
    assert "warning: window 0 (test 2020-08-29 .. 2020-09-11, nfl_live_wp@v1.1): wp cannot be trained" in r.stderr
    s = json.loads(r.stdout)  # --json: stdout is the document alone
    (w,) = s["windows"]
    assert w["world"]["states"] > 100  # the game was replayed ...
    assert w["models"]["wp"]["status"] == "untrained" and w["models"]["wp"]["version"] is None
    assert "wp" not in s["calibration"]  # ... but the untrained model forecast nothing
    assert s["totals"]["positions"] == 0
    assert any("no play-by-play" in n for n in s["notes"])


async def test_a_trainer_that_reads_future_plays_is_stopped(db_url: str, nfl: Path, tmp_path: Path) -> None:
    with connect(db_url, autocommit=True) as conn:
        live = method_row(conn, "nfl_live_peek", "wp", phase="live")
    opts = BacktestOptions(data=nfl, start=date(2021, 9, 9), end=date(2021, 9, 10), out=tmp_path / "out",
                           extra_models={"wp": PeekingTrainer()}, extra_methods=[live])
    with pytest.raises(LookAheadError, match="plays of games finished up to"):
        await run_backtest(db_url, opts)
    with psycopg.connect(db_url) as conn:
        status, error = conn.execute("SELECT status, error FROM backtest_runs").fetchone()
    assert status == "failed" and error.startswith("look-ahead detected")
