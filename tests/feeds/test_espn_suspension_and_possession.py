"""ESPN's STATUS_SUSPENDED is a paused game (it resumes), and a possession id naming neither team is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feeds.espn_testkit import competition, sample_dict
from precog.feeds.espn_parse import parse_scoreboard
from precog.feeds.game_state import GameState

LIVE = "401772931"  # DEN (id 7, away, in possession) @ WSH (id 28), 4th quarter 8:42, 17-20


def suspend(data: dict[str, Any], game_id: str = LIVE) -> None:
    competition(data, game_id)["status"]["type"] = {
        "id": "5", "name": "STATUS_SUSPENDED", "state": "in", "completed": False, "description": "Suspended",
        "detail": "Suspended", "shortDetail": "Suspended"}


def _game(games: list[GameState], game_id: str = LIVE) -> GameState:
    return next(g for g in games if g.game_id == game_id)


def test_a_suspended_game_is_suspended_with_its_state_kept_not_postponed(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    suspend(data)
    board = parse_scoreboard(json.dumps(data), "nfl")
    game = _game(board.games)
    assert board.errors == [] and board.unknown_statuses == []
    assert game.status == "suspended" and game.status_detail == "Suspended"
    assert not game.is_live and not game.is_final
    # the game resumes from here: score, period, clock and possession are the state to resume from
    assert (game.home_score, game.away_score, game.period, game.clock_seconds, game.possession) == (
        17, 20, 4, 522, "away")


@pytest.mark.parametrize("possession", ["999", "WSH", True])
def test_a_possession_id_of_neither_team_is_a_schema_error(espn_samples: dict[str, bytes], possession: Any) -> None:
    data = sample_dict(espn_samples, "nfl")
    competition(data, LIVE)["situation"]["possession"] = possession
    board = parse_scoreboard(json.dumps(data), "nfl")
    [error] = board.errors
    assert error.game_id == LIVE
    assert error.path == "events[0].competitions[0].situation.possession"
    assert f"{possession!r} is neither the home team id '28' nor the away team id '7'" in str(error)
    assert LIVE not in {g.game_id for g in board.games} and len(board.games) == 15  # the others are kept


def test_possession_of_either_team_or_none_is_read(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    situation = competition(data, LIVE)["situation"]
    for value, side in (("28", "home"), (7, "away"), ("", None), (None, None)):
        situation["possession"] = value
        board = parse_scoreboard(json.dumps(data), "nfl")
        assert board.errors == [] and _game(board.games).possession == side
