"""`precog forecast wp export`: the in-game states ESPN ingestion stored, as WP training plays.

Before: the WP model could only be trained on the shipped nflfastR file (2020-2022); the seasons Precog ingests
never reached it. Now every usable live state of a finished NFL game becomes a plays row (the game's final score
its outcome), optionally after a base file's rows, and `precog forecast wp train` trains on the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from forecast.ingested_kit import live_state, store_versions
from precog.db.connection import connect
from precog.feeds.game_state import GameState
from precog.forecast.plays import read_plays

KICKOFF = datetime(2025, 12, 7, 18, 0, tzinfo=UTC)  # 1 PM Eastern, the 2025 season


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(db_url, autocommit=True) as conn:
        yield conn


def _live(game_id: str, **kw: Any) -> GameState:
    return live_state(game_id, KICKOFF, **kw)


def _play_out(db: psycopg.Connection[Any], *states: GameState) -> None:
    store_versions(db, *states)


def _game(db: psycopg.Connection[Any], game_id: str = "401") -> None:
    _play_out(
        db,
        _live(game_id),                                                                    # KC ball at its 25
        _live(game_id, clock_seconds=600, down=3, distance=4, yards_to_goal=54),           # 3rd and 4, Q1 10:00
        _live(game_id, clock_seconds=600, down=3, distance=4, yards_to_goal=54, status_detail="timeout"),  # same
        _live(game_id, clock_seconds=590, down=None, distance=None, yards_to_goal=None),  # between plays
        _live(game_id, period=2, clock_seconds=120, possession="away", down=2, distance=7, yards_to_goal=30,
              home_score=7, home_timeouts=2),                                              # DEN ball, KC 7-0
        _live(game_id, status="halftime", period=2, clock_seconds=0, possession=None, down=None, distance=None,
              yards_to_goal=None, home_score=7, away_score=3),
        _live(game_id, period=5, clock_seconds=480, down=1, distance=10, yards_to_goal=40, home_score=17,
              away_score=17, home_timeouts=1, away_timeouts=2),                            # overtime
        _live(game_id, status="final", period=5, clock_seconds=0, possession=None, down=None, distance=None,
              yards_to_goal=None, home_score=20, away_score=17),
    )


def test_live_states_of_finished_games_become_plays_the_wp_reader_accepts(db: psycopg.Connection[Any], precog_cli,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:
    _game(db)
    _play_out(db, _live("402", home_team="NYG", away_team="DAL", neutral_site=True),  # still playing: left out
              _live("402", home_team="NYG", away_team="DAL", neutral_site=True, clock_seconds=800))
    neutral = "403"
    playoff = {"season_type": "playoffs"}
    _play_out(db, _live(neutral, home_team="JAX", away_team="TEN", neutral_site=True, possession="away",
                        metadata=playoff),
              _live(neutral, home_team="JAX", away_team="TEN", neutral_site=True, status="final", possession=None,
                    down=None, distance=None, yards_to_goal=None, home_score=10, away_score=13, period=4,
                    clock_seconds=0, metadata=playoff))
    out = tmp_path / "ingested.csv"
    proc = precog_cli("forecast", "wp", "export", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["games"], summary["rows"], summary["base_rows"], summary["seasons"]) == (2, 5, 0, [2025])
    assert summary["states_left_out"] == {"no_down": 1, "not_live": 3, "repeated": 1}

    plays = read_plays(out, require_outcomes=True)
    kc = plays.subset(plays.game_id == "espn_401")
    assert list(kc.posteam) == ["KC", "KC", "DEN", "KC"]
    assert list(kc.qtr) == [1, 1, 2, 5]
    assert list(kc.game_seconds) == [3600.0, 3300.0, 1920.0, 480.0]  # (4 - quarter) x 900 + clock; overtime: clock
    assert list(kc.score_diff) == [0, 0, -7, 0]
    assert list(kc.yardline_100) == [75.0, 54.0, 30.0, 40.0] and list(kc.down) == [1, 3, 2, 1]
    assert list(kc.pos_timeouts) == [3, 3, 3, 1] and list(kc.def_timeouts) == [3, 3, 2, 2]
    assert list(kc.outcome()) == [1.0, 1.0, 0.0, 1.0]  # KC won 20-17: 1 for KC's ball, 0 for Denver's
    assert list(kc.game_date) == ["2025-12-07"] * 4
    jax = plays.subset(plays.game_id == f"espn_{neutral}")
    assert list(jax.neutral_site) == [True] and not kc.neutral_site.any()
    assert list(jax.extra["playoff"]) == [1.0] and list(kc.extra["playoff"]) == [0.0] * 4  # ESPN's season type
    assert list(jax.outcome()) == [1.0]  # TEN (away) had the ball and won

    text = precog_cli("forecast", "wp", "export", "--out", str(tmp_path / "again.csv.gz"), "--from", "2025-12-08")
    assert text.returncode == 1 and "no ingested NFL game between 2025-12-08 and now" in text.stderr
    assert not (tmp_path / "again.csv.gz").exists()
    bad = precog_cli("forecast", "wp", "export", "--out", str(out), "--from", "2025-12-09", "--to", "2025-12-01")
    assert bad.returncode == 1 and "--from 2025-12-09 is after --to 2025-12-01" in bad.stderr
    assert "Traceback" not in bad.stderr + text.stderr


def test_a_wp_version_trains_on_the_shipped_plays_and_the_ingested_states(db: psycopg.Connection[Any], precog_cli,  # type: ignore[no-untyped-def]
                                                                          shared_plays_subset_file: Path,
                                                                          tmp_path: Path) -> None:
    for game_id in ("501", "502", "503"):
        _game(db, game_id)
    out = tmp_path / "combined.csv.gz"
    proc = precog_cli("forecast", "wp", "export", "--base", str(shared_plays_subset_file), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    base = read_plays(shared_plays_subset_file, require_outcomes=True)
    assert f"wrote 12 in-game states of 3 finished NFL games (seasons 2025) after {len(base)} plays" in proc.stdout
    combined = read_plays(out, require_outcomes=True)
    assert len(combined) == len(base) + 12
    head = combined.subset(np.arange(len(combined)) < len(base))
    assert (head.game_id == base.game_id).all() and (head.score_diff == base.score_diff).all()
    assert (head.outcome() == base.outcome()).all() and (head.neutral_site == base.neutral_site).all()
    assert (head.extra["week"] == base.extra["week"]).all()  # the base's weeks (its playoff games) are kept
    tail = combined.subset(np.arange(len(combined)) >= len(base))
    assert np.isnan(tail.extra["week"]).all() and (tail.extra["playoff"] == 0).all()

    trained = precog_cli("forecast", "wp", "train", "--plays", str(out), "--json")
    assert trained.returncode == 0, trained.stderr
    version = json.loads(trained.stdout)
    assert version["status"] == "validating" and version["test_games"] > 10
    with psycopg.connect(db.info.dsn) as conn:
        config = conn.execute("SELECT config FROM probability_models WHERE model_name = 'wp_nfl' AND "
                              "model_version = %s", (version["model"].split("@")[1],)).fetchone()[0]
    assert config["training_file"] == "combined.csv.gz"

    missing = precog_cli("forecast", "wp", "export", "--base", str(tmp_path / "nope.csv"), "--out",
                         str(tmp_path / "x.csv"))
    assert missing.returncode == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize(("column", "value"), [("playoff", "2"), ("neutral_site", "yes"), ("week", "0")])
def test_the_plays_reader_refuses_a_bad_optional_column(tmp_path: Path, column: str, value: str) -> None:
    from precog.forecast.errors import InputFileError
    from precog.forecast.state_plays import COLUMNS

    row = {"game_id": "espn_1", "posteam": "KC", "defteam": "DEN", "home_team": "KC", "away_team": "DEN",
           "score_differential": "0", "qtr": "1", "game_seconds_remaining": "3600", "yardline_100": "75", "down": "1",
           "ydstogo": "10", "posteam_timeouts_remaining": "3", "defteam_timeouts_remaining": "3", "season": "2025",
           "week": "", "game_date": "2025-12-07", "home_score": "20", "away_score": "17", "neutral_site": "0",
           "playoff": "0"}
    path = tmp_path / "plays.csv"
    path.write_text(",".join(COLUMNS) + "\n" + ",".join({**row, column: value}[c] for c in COLUMNS) + "\n")
    with pytest.raises(InputFileError, match=column):
        read_plays(path, require_outcomes=True)
    path.write_text(",".join(COLUMNS) + "\n" + ",".join(row[c] for c in COLUMNS) + "\n")
    assert len(read_plays(path, require_outcomes=True)) == 1  # the same row with good values (empty week) reads
