"""Games and plays files: bad input gets a message naming the file, row and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecast.forecast_testkit import GAMES_HEADER, PLAYS_HEADER, synthetic_plays
from precog.forecast.errors import InputFileError, UnknownTeamError
from precog.forecast.gamesfile import read_games
from precog.forecast.plays import read_plays, second_half_receiver


def test_games_file_is_read_with_flags_scores_and_published_forecast(make_csv) -> None:  # type: ignore[no-untyped-def]
    path = make_csv("g.csv", GAMES_HEADER, [["2014-09-07", 2014, 1, 0, "KC", "BUF", "", "", "0.61", 20, 17, 1],
                                            ["2014-09-14", 2014, 0, 1, "KC", "BUF", "", "", "", "", "", ""]])
    games = read_games(path)
    assert games[0].neutral and not games[0].playoff and games[0].result1 == 1.0 and games[0].published_prob1 == 0.61
    assert games[1].playoff and not games[1].played and games[1].result1 is None


@pytest.mark.parametrize(("row", "column", "fragment"), [
    (["2014-13-07", 2014, 0, 0, "KC", "BUF", "", "", "", 20, 17, 1], "date", "is not a date"),
    (["2014-09-07", 2014, 0, 0, "KC", "KC", "", "", "", 20, 17, 1], "team2", "cannot play itself"),
    (["2014-09-07", 2014, 0, 0, "KC", "BUF", "", "", "", -3, 17, 0], "score1", "cannot be negative"),
    (["2014-09-07", 2014, 0, 0, "KC", "BUF", "", "", "", 20, 17, 0], "result1", "contradicts the score"),
    (["2014-09-07", 2014, 2, 0, "KC", "BUF", "", "", "", 20, 17, 1], "neutral", "is not 0 or 1"),
    (["2014-09-07", 2014, 0, 0, "KC", "BUF", "", "", "1.7", 20, 17, 1], "elo_prob1", "not a probability"),
])
def test_bad_games_rows_name_row_and_column(make_csv, row, column, fragment) -> None:  # type: ignore[no-untyped-def]
    good = ["2014-09-01", 2014, 0, 0, "NE", "NYJ", "", "", "", 24, 10, 1]
    path = make_csv("g.csv", GAMES_HEADER, [good, row])
    with pytest.raises(InputFileError) as err:
        read_games(path)
    msg = str(err.value)
    assert "row 1 (line 3)" in msg and f"column {column!r}" in msg and fragment in msg and "g.csv" in msg


def test_games_file_missing_columns_lists_them(make_csv) -> None:  # type: ignore[no-untyped-def]
    path = make_csv("g.csv", ["date", "team1", "team2"], [["2014-09-01", "NE", "NYJ"]])
    with pytest.raises(InputFileError, match="missing column\\(s\\) season"):
        read_games(path)
    path = make_csv("h.csv", ["date", "season", "team1", "team2"], [["2014-09-01", 2014, "NE", "NYJ"]])
    with pytest.raises(InputFileError, match="score1, score2"):
        read_games(path, require_results=True)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file not found"):
        read_games(tmp_path / "nope.csv")


def test_synthetic_plays_file_reads_into_arrays(plays_file: Path) -> None:
    plays = read_plays(plays_file, require_outcomes=True)
    assert len(plays) == len(synthetic_plays())
    y = plays.outcome()
    assert set(np.unique(y)) <= {0.0, 0.5, 1.0}
    assert plays.published is not None and plays.season is not None


def _plays_with(change: dict[str, object]) -> list[list[object]]:
    rows = synthetic_plays(n_games=2)
    bad = list(rows[5])
    for col, value in change.items():
        bad[PLAYS_HEADER.index(col)] = value
    rows[5] = bad
    return rows


@pytest.mark.parametrize(("change", "column", "fragment"), [
    ({"down": 5}, "down", "down 5.0 is impossible"),
    ({"game_seconds_remaining": -12}, "game_seconds_remaining", "negative time remaining"),
    ({"qtr": 4, "game_seconds_remaining": 3000}, "game_seconds_remaining", "impossible in this row's quarter"),
    ({"posteam_timeouts_remaining": 4}, "posteam_timeouts_remaining", "timeouts is impossible"),
    ({"yardline_100": 120}, "yardline_100", "is not a yard line"),
    ({"posteam": "XYZ"}, "posteam", "unknown team 'XYZ'"),
    ({"score_differential": "abc"}, "score_differential", "'abc' is not a number"),
    ({"qtr": 0}, "qtr", "is not a quarter"),
])
def test_impossible_play_states_name_row_and_column(make_csv, change, column, fragment) -> None:  # type: ignore[no-untyped-def]
    path = make_csv("p.csv", PLAYS_HEADER, _plays_with(change))
    with pytest.raises(InputFileError) as err:
        read_plays(path)
    msg = str(err.value)
    assert "row 5 (line 7)" in msg and f"column {column!r}" in msg and fragment in msg


def test_unknown_team_in_plays_is_an_unknown_team_error(make_csv) -> None:  # type: ignore[no-untyped-def]
    path = make_csv("p.csv", PLAYS_HEADER, _plays_with({"home_team": "ZZZ"}))
    with pytest.raises(UnknownTeamError):
        read_plays(path)


def test_missing_state_columns_are_listed(make_csv) -> None:  # type: ignore[no-untyped-def]
    header = [h for h in PLAYS_HEADER if h not in ("down", "ydstogo")]
    path = make_csv("p.csv", header, [])
    with pytest.raises(InputFileError, match="missing column\\(s\\) down, ydstogo"):
        read_plays(path)


def test_conversion_try_without_down_is_valid_and_encoded_as_down_0(make_csv) -> None:  # type: ignore[no-untyped-def]
    path = make_csv("p.csv", PLAYS_HEADER, _plays_with({"down": "", "ydstogo": 0, "yardline_100": 2}))
    plays = read_plays(path)
    assert plays.down[5] == 0


def test_second_half_receiver_is_the_team_that_did_not_receive_the_opening_kickoff(plays_file: Path) -> None:
    plays = read_plays(plays_file)
    recv = second_half_receiver(plays)
    first = np.argmax(plays.game_id == plays.game_id[0])
    assert recv[first] == -1.0  # the opening possession team kicks off the second half
    assert np.all(recv[plays.qtr >= 3] == 0)
