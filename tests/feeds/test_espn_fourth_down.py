"""The fourth-down pieces of ESPN's lastPlay: drive.result and the team with the ball at the snap (parsed), the
table of play types that are no fourth-down attempt, and the outcome rule (fourth_down_outcome)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feeds.espn_testkit import competition, sample_dict
from precog.feeds.espn_parse import (
    FOURTH_DOWN_CONVERSION,
    FOURTH_DOWN_FAIL,
    Situation,
    fourth_down_outcome,
    is_fourth_down_attempt,
    parse_scoreboard,
)
from precog.feeds.game_state import GameState

LIVE = "401772931"  # the live game of the week-13 sample: WSH (28) at home, DEN (7) away with the ball
KEYS = ("last_play_drive_result", "last_play_possession")


def _game(data: dict[str, Any], sport: str = "nfl", game_id: str = LIVE) -> GameState:
    board = parse_scoreboard(json.dumps(data), sport)
    assert not board.errors
    return next(g for g in board.games if g.game_id == game_id)


def _fourth_keys(state: GameState) -> dict[str, Any]:
    return {k: v for k, v in state.metadata.items() if k in KEYS}


def test_real_sample_drive_result_and_snap_team(espn_samples: dict[str, bytes]) -> None:
    state = _game(sample_dict(espn_samples, "nfl"))
    # the official timeout before DEN's first snap: ESPN attaches WSH's finished drive (a punt) to it
    assert _fourth_keys(state) == {"last_play_drive_result": "PUNT", "last_play_possession": "away"}
    assert state.possession == "away"


def test_ncaaf_sample_has_no_last_play_and_nba_gets_no_football_keys(espn_samples: dict[str, bytes]) -> None:
    board = parse_scoreboard(espn_samples["ncaaf"], "ncaaf")
    assert board.games and all(not _fourth_keys(g) and "last_play_id" not in g.metadata for g in board.games)
    nba = parse_scoreboard(espn_samples["nba"], "nba")
    assert all(not _fourth_keys(g) for g in nba.games)


def test_a_downs_drive_of_the_home_team_is_parsed(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    last = competition(data, LIVE)["situation"]["lastPlay"]
    last["drive"]["result"] = " DOWNS "
    last["start"]["team"]["id"] = 28  # a number is read like its text
    assert _fourth_keys(_game(data)) == {"last_play_drive_result": "DOWNS", "last_play_possession": "home"}


@pytest.mark.parametrize("change", [
    lambda lp: lp.__setitem__("drive", "PUNT"),
    lambda lp: lp["drive"].__setitem__("result", 5),
    lambda lp: lp["drive"].__setitem__("result", "  "),
    lambda lp: lp.pop("drive"),
    lambda lp: lp.__setitem__("start", []),
    lambda lp: lp["start"].__setitem__("team", "7"),
    lambda lp: lp["start"]["team"].__setitem__("id", "999"),  # neither team: left out, the game still parses
    lambda lp: lp["start"]["team"].__setitem__("id", True),
    lambda lp: lp.pop("start"),
], ids=["drive_text", "result_number", "result_blank", "no_drive", "start_list", "team_text", "team_unknown",
        "team_bool", "no_start"])
def test_a_malformed_drive_or_start_adds_nothing_and_rejects_nothing(espn_samples: dict[str, bytes],
                                                                      change: Any) -> None:
    data = sample_dict(espn_samples, "nfl")
    last = competition(data, LIVE)["situation"]["lastPlay"]
    before = _fourth_keys(_game(data))
    change(last)
    state = _game(data)
    after = _fourth_keys(state)
    assert len(after) == len(before) - 1 and set(after.items()) < set(before.items())
    assert state.metadata["last_play_id"] == "4017729313551" and state.status == "live"


@pytest.mark.parametrize(("text", "attempt"), [
    ("Rush", True), ("Pass Reception", True), ("Pass Incompletion", True), ("Sack", True),
    ("Passing Touchdown", True), ("Interception Return Touchdown", True), ("Fumble Recovery (Own)", True),
    ("Punt", False), ("Blocked Punt", False), ("Punt Return Touchdown", False), ("Field Goal Good", False),
    ("Field Goal Missed", False), ("Blocked Field Goal", False), ("Timeout", False), ("Official Timeout", False),
    ("Penalty", False), ("Two-minute warning", False), ("End Period", False), ("End of Half", False),
    ("  field   GOAL missed ", False),  # matched the normalised way, like the trigger table
])
def test_fourth_down_attempt_table(text: str, attempt: bool) -> None:
    assert is_fourth_down_attempt("nfl", text) is attempt
    assert is_fourth_down_attempt("ncaaf", text) is attempt
    assert is_fourth_down_attempt("nba", text) is False


def _s(down: int | None, possession: str | None, home: int = 14, away: int = 10) -> Situation:
    return Situation(down, possession, home, away)  # type: ignore[arg-type]


def _play(text: str, **extra: str) -> dict[str, str]:
    meta = {"last_play_id": "1", "last_play_text": text, **extra}
    if "Touchdown" in text:
        meta["last_play_type"] = "touchdown"
    return meta


@pytest.mark.parametrize(("before", "after", "play", "outcome"), [
    (_s(4, "home"), _s(1, "home"), _play("Rush"), FOURTH_DOWN_CONVERSION),
    (_s(4, "away"), _s(1, "away"), _play("Pass Reception"), FOURTH_DOWN_CONVERSION),
    (_s(4, "home"), _s(1, "away"), _play("Pass Incompletion"), FOURTH_DOWN_FAIL),
    (_s(4, "home"), _s(1, "away"), _play("Interception", last_play_type="turnover"), FOURTH_DOWN_FAIL),
    (_s(4, "home"), _s(None, None), _play("Rush", last_play_drive_result="DOWNS"), FOURTH_DOWN_FAIL),
    (_s(4, "home"), _s(1, "home"), _play("Rush", last_play_drive_result="DOWNS"), None),  # ESPN contradicts
    (_s(4, "home"), _s(None, None), _play("Rush"), None),  # possession after unknown
    (_s(4, "home"), _s(2, "home"), _play("Rush"), None),  # same team, not a first down: not known
    (_s(4, "home"), _s(1, "away"), _play("Punt"), None),
    (_s(4, "home"), _s(1, "away"), _play("Field Goal Missed"), None),
    (_s(3, "home"), _s(1, "home"), _play("Rush"), None),
    (_s(None, "home"), _s(1, "home"), _play("Rush"), None),
    (_s(4, None), _s(1, "home"), _play("Rush"), None),
    (None, _s(1, "home"), _play("Rush"), None),
    (_s(4, "home"), _s(1, "away"), {"last_play_id": "1"}, None),  # no type text
    # the play was run by the other team: an earlier play (a punt) had the fourth down, two plays between polls
    (_s(4, "home"), _s(1, "away"), _play("Rush", last_play_possession="away"), None),
    (_s(4, "home"), _s(1, "away"), _play("Sack", last_play_possession="home"), FOURTH_DOWN_FAIL),
    (_s(4, "home", 14), _s(None, "home", 20), _play("Passing Touchdown"), FOURTH_DOWN_CONVERSION),
    (_s(4, "home", 14), _s(None, "away", 21), _play("Rushing Touchdown"), FOURTH_DOWN_CONVERSION),
    (_s(4, "home", 14, 10), _s(None, "home", 14, 16), _play("Interception Return Touchdown"), FOURTH_DOWN_FAIL),
    (_s(4, "home", 14), _s(1, "away", 14), _play("Passing Touchdown"), None),  # the score does not show it yet
    (_s(4, "home", 14, 10), _s(1, "away", 17, 10), _play("Rush"), None),  # a score on a non-touchdown: unknown
])
def test_fourth_down_outcome(before: Situation | None, after: Situation, play: dict[str, str],
                             outcome: str | None) -> None:
    assert fourth_down_outcome("nfl", before, after, play) == outcome
    assert fourth_down_outcome("nba", before, after, play) is None
