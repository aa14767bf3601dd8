"""ESPN `season.type` (1 pre, 2 regular, 3 post) and the final's `competitions[0].notes[].headline` are kept as
GameState.metadata["season_type"] ("preseason" / "regular" / "playoffs" / "championship"): the decision layer
sizes a playoff game's markets x0.5 and a championship's x0.3 from it. The postseason boards are built from the
real samples by changing the season type and notes (the samples are all regular season)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from feeds.espn_testkit import competition, sample_dict
from precog.feeds.espn_parse import parse_scoreboard
from precog.ingest.game_store import from_row, to_row

GAMES = {"nfl": "401772931", "ncaaf": "401752786", "nba": "401810212"}  # DEN @ WSH, UGA vs GT, ORL @ NY


def _event(data: dict[str, Any], game_id: str) -> dict[str, Any]:
    return next(e for e in data["events"] if e["id"] == game_id)


def _postseason(espn_samples: dict[str, bytes], sport: str, season_type: Any, headlines: list[str] | None
                ) -> dict[str, Any]:
    data = sample_dict(espn_samples, sport)
    _event(data, GAMES[sport])["season"]["type"] = season_type
    if headlines is not None:
        competition(data, GAMES[sport])["notes"] = [{"type": "event", "headline": h} for h in headlines]
    return data


def _parsed(data: dict[str, Any], sport: str) -> Any:
    board = parse_scoreboard(json.dumps(data), sport)
    return board, next((g for g in board.games if g.game_id == GAMES[sport]), None)


def test_every_game_of_the_regular_season_samples_is_regular(espn_samples: dict[str, bytes]) -> None:
    for sport in ("nfl", "ncaaf", "nba"):
        board = parse_scoreboard(espn_samples[sport], sport)
        assert board.errors == [] and board.games
        assert {g.metadata.get("season_type") for g in board.games} == {"regular"}
        assert not any("espn_season_type" in g.metadata for g in board.games)


@pytest.mark.parametrize(("sport", "headlines", "expected"), [
    ("nfl", ["Super Bowl LX"], "championship"),
    ("nfl", ["AFC Championship"], "playoffs"),  # a conference final is a playoff game
    ("nfl", [], "playoffs"),
    ("nfl", None, "playoffs"),  # the sample's notes list as it is (empty)
    ("ncaaf", ["College Football Playoff National Championship Presented By AT&T"], "championship"),
    ("ncaaf", ["Rose Bowl Game Presented by Prudential - CFP Quarterfinal"], "playoffs"),
    ("ncaaf", ["SEC Championship"], "playoffs"),
    ("nba", ["NBA Finals - Game 4"], "championship"),
    ("nba", ["East Finals - Game 1"], "playoffs"),
])
def test_a_postseason_game_is_playoffs_unless_its_headline_names_the_final(
        espn_samples: dict[str, bytes], sport: str, headlines: list[str] | None, expected: str) -> None:
    board, game = _parsed(_postseason(espn_samples, sport, 3, headlines), sport)
    assert board.errors == [] and game is not None
    assert game.metadata["season_type"] == expected
    others = {g.metadata.get("season_type") for g in board.games if g.game_id != GAMES[sport]}
    assert others == {"regular"}


def test_the_final_s_headline_outside_the_postseason_changes_nothing(espn_samples: dict[str, bytes]) -> None:
    _, game = _parsed(_postseason(espn_samples, "nfl", 2, ["Super Bowl LX"]), "nfl")
    assert game is not None and game.metadata["season_type"] == "regular"
    _, pre = _parsed(_postseason(espn_samples, "nfl", 1, ["Hall of Fame Game"]), "nfl")
    assert pre is not None and pre.metadata["season_type"] == "preseason"


def test_a_missing_season_block_or_type_keeps_the_game_with_no_season_type(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    del _event(data, GAMES["nfl"])["season"]
    board, game = _parsed(data, "nfl")
    assert board.errors == [] and game is not None and "season_type" not in game.metadata
    data = sample_dict(espn_samples, "nfl")
    del _event(data, GAMES["nfl"])["season"]["type"]
    board, game = _parsed(data, "nfl")
    assert board.errors == [] and game is not None and "season_type" not in game.metadata


def test_an_unknown_type_number_is_kept_as_espn_s_number_with_no_season_type(espn_samples: dict[str, bytes]) -> None:
    board, game = _parsed(_postseason(espn_samples, "nba", 5, ["Play-In Tournament"]), "nba")
    assert board.errors == [] and game is not None
    assert "season_type" not in game.metadata and game.metadata["espn_season_type"] == 5


@pytest.mark.parametrize(("change", "path", "problem"), [
    (lambda ev, comp: ev["season"].update(type="post"), "events[0].season.type", "'post' is not an integer"),
    (lambda ev, comp: ev["season"].update(type=True), "events[0].season.type", "True is not an integer"),
    (lambda ev, comp: ev.update(season="2025"), "events[0].season", "expected an object, got str"),
    (lambda ev, comp: (ev["season"].update(type=3), comp.update(notes={"headline": "Super Bowl LX"})),
     "events[0].competitions[0].notes", "expected a list, got dict"),
    (lambda ev, comp: (ev["season"].update(type=3), comp.update(notes=[{"headline": ["Super Bowl"]}])),
     "events[0].competitions[0].notes[0].headline", "expected text, got list"),
])
def test_a_malformed_season_type_or_postseason_note_rejects_that_game_only(
        espn_samples: dict[str, bytes], change: Any, path: str, problem: str) -> None:
    data = sample_dict(espn_samples, "nfl")
    event = _event(data, GAMES["nfl"])
    data["events"].remove(event)
    data["events"].insert(0, event)  # the path names the index
    change(event, event["competitions"][0])
    board, game = _parsed(data, "nfl")
    assert game is None and len(board.games) == len(data["events"]) - 1
    assert len(board.errors) == 1 and board.errors[0].game_id == GAMES["nfl"]
    assert f"{path}: {problem}" in str(board.errors[0])


def test_regular_season_notes_are_not_read(espn_samples: dict[str, bytes]) -> None:
    # only a postseason game's notes decide anything: a drifted notes field elsewhere costs no game
    data = sample_dict(espn_samples, "nfl")
    competition(data, GAMES["nfl"])["notes"] = "Week 13"
    board, game = _parsed(data, "nfl")
    assert board.errors == [] and game is not None and game.metadata["season_type"] == "regular"


def test_the_season_type_survives_the_game_states_row(espn_samples: dict[str, bytes]) -> None:
    _, game = _parsed(_postseason(espn_samples, "nfl", 3, ["Super Bowl LX"]), "nfl")
    row = to_row(game, None, datetime.now(UTC))
    assert row["sport_metadata"]["season_type"] == "championship"
    stored = json.loads(json.dumps(row["sport_metadata"], default=str))  # as JSONB gives it back
    back = from_row({**row, "external_game_id": game.game_id, "sport_metadata": stored})
    assert back.metadata["season_type"] == "championship"
