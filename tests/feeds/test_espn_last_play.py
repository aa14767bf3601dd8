"""ESPN's `situation.lastPlay` -> last_play_id / last_play_text / last_play_type (the live_trading trigger)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feeds.espn_testkit import competition, sample_dict
from precog.feeds.espn_parse import parse_scoreboard, trigger_of
from precog.feeds.game_state import GameState

LAST_PLAY_KEYS = ("last_play_id", "last_play_text", "last_play_type")


def _last_play(state: GameState) -> dict[str, Any]:
    return {k: v for k, v in state.metadata.items() if k in LAST_PLAY_KEYS}


def _games(payload: bytes | dict[str, Any], sport: str) -> dict[str, GameState]:
    # a modified sample goes back through JSON text, as ESPN sends it (floats read as Decimal)
    board = parse_scoreboard(payload if isinstance(payload, bytes) else json.dumps(payload), sport)
    assert not board.errors
    return {g.game_id: g for g in board.games}


def test_real_samples_carry_the_last_play(espn_samples: dict[str, bytes]) -> None:
    nfl = _games(espn_samples["nfl"], "nfl")
    # the live game of the week-13 sample: an official timeout is the last play, which is no trigger
    assert _last_play(nfl["401772931"]) == {"last_play_id": "4017729313551", "last_play_text": "Official Timeout"}
    nba = _games(espn_samples["nba"], "nba")
    assert _last_play(nba["401810212"]) == {"last_play_id": "401810212522",
                                            "last_play_text": "No Shot (Default Shot)"}
    # games without a lastPlay (finished, scheduled, every game of the ncaaf sample) carry none of the keys
    others = [g for g in (*nfl.values(), *_games(espn_samples["ncaaf"], "ncaaf").values())
              if g.game_id != "401772931"]
    assert others and all(not _last_play(g) for g in others)


@pytest.mark.parametrize(("type_text", "trigger"), [
    ("Passing Touchdown", "touchdown"),
    ("Rushing Touchdown", "touchdown"),
    ("Punt Return Touchdown", "touchdown"),
    ("Interception Return Touchdown", "touchdown"),  # a touchdown on a turnover counts as the touchdown
    ("Fumble Return Touchdown", "touchdown"),
    ("Field Goal Good", "field_goal"),
    ("Field Goal Missed", None),
    ("Blocked Field Goal", None),
    ("Interception", "turnover"),
    ("Pass Interception Return", "turnover"),
    ("Fumble Recovery (Opponent)", "turnover"),
    ("Fumble Recovery (Own)", None),
    ("Sack Opp Fumble Recovery", "turnover"),
    ("Muffed Punt Recovery (Opponent)", "turnover"),
    ("Safety", "safety"),
    ("Two-minute warning", "two_minute_warning"),
    ("Two-Minute Warning", "two_minute_warning"),
    ("Official Timeout", None),
    ("Extra Point Good", None),
    ("Rush", None),  # a fourth-down run: its text does not tell the down, so no fourth_down_* trigger
    ("Pass Reception", None),
    ("Punt", None),
    ("Kickoff", None),
    ("Penalty", None),
])
def test_play_type_text_maps_to_a_trigger(type_text: str, trigger: str | None) -> None:
    assert trigger_of("nfl", type_text) == trigger
    assert trigger_of("ncaaf", type_text) == trigger


def test_only_football_plays_are_triggers() -> None:
    assert trigger_of("nba", "Passing Touchdown") is None


def test_a_touchdown_last_play_sets_the_trigger(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    last = competition(data, "401772931")["situation"]["lastPlay"]
    last["id"], last["type"] = "4017729313600", {"id": "67", "text": "Passing Touchdown", "abbreviation": "TD"}
    assert _last_play(_games(data, "nfl")["401772931"]) == {
        "last_play_id": "4017729313600", "last_play_text": "Passing Touchdown", "last_play_type": "touchdown"}


@pytest.mark.parametrize("bad", ["a play", 17, [], None, {}, {"id": None}, {"id": ""}, {"id": True},
                                 {"id": {"x": 1}}, {"type": {"text": "Passing Touchdown"}}])
def test_a_malformed_last_play_adds_nothing(espn_samples: dict[str, bytes], bad: Any) -> None:
    data = sample_dict(espn_samples, "nfl")
    competition(data, "401772931")["situation"]["lastPlay"] = bad
    game = _games(data, "nfl")["401772931"]  # the game still parses
    assert _last_play(game) == {}
    assert game.status == "live"


@pytest.mark.parametrize("bad_type", ["Touchdown", None, {"text": 5}, {"text": "  "}, {}])
def test_a_play_without_a_usable_type_keeps_only_its_id(espn_samples: dict[str, bytes], bad_type: Any) -> None:
    data = sample_dict(espn_samples, "nfl")
    competition(data, "401772931")["situation"]["lastPlay"]["type"] = bad_type
    assert _last_play(_games(data, "nfl")["401772931"]) == {"last_play_id": "4017729313551"}
