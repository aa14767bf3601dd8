"""ESPN `competitions[0].neutralSite` is read into GameState.neutral_site (a London game or a bowl is at
neither team's stadium: the listed home team gets no home-field advantage)."""

from __future__ import annotations

import json

from feeds.espn_testkit import competition, sample_dict
from precog.feeds.espn_parse import parse_scoreboard

NEUTRAL_GAME = "401752786"  # UGA vs GT at Mercedes-Benz Stadium, the one `neutralSite: true` in the college sample


def test_college_sample_neutral_game_is_neutral_and_the_others_are_not(espn_samples: dict[str, bytes]) -> None:
    board = parse_scoreboard(espn_samples["ncaaf"], "ncaaf")
    assert board.errors == [] and len(board.games) == 19
    neutral = {g.game_id for g in board.games if g.neutral_site}
    assert neutral == {NEUTRAL_GAME}
    assert all(g.neutral_site is False for g in board.games if g.game_id != NEUTRAL_GAME)


def test_nfl_and_nba_samples_have_no_neutral_game(espn_samples: dict[str, bytes]) -> None:
    for sport in ("nfl", "nba"):
        board = parse_scoreboard(espn_samples[sport], sport)
        assert board.errors == [] and board.games
        assert not any(g.neutral_site for g in board.games)


def test_a_string_neutral_site_is_a_schema_error_and_the_other_games_are_kept(
        espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "ncaaf")
    competition(data, NEUTRAL_GAME)["neutralSite"] = "true"
    board = parse_scoreboard(json.dumps(data), "ncaaf")
    assert len(board.games) == 18 and NEUTRAL_GAME not in {g.game_id for g in board.games}
    assert len(board.errors) == 1 and board.errors[0].game_id == NEUTRAL_GAME
    message = str(board.errors[0])
    assert "competitions[0].neutralSite" in message and "'true'" in message


def test_a_missing_neutral_site_keeps_the_game_and_is_reported(espn_samples: dict[str, bytes]) -> None:
    # every game of every sample carries the flag: its absence is drift, reported; the game's score and clock are
    # still read (refusing them would blind the engine), as a home game
    data = sample_dict(espn_samples, "ncaaf")
    del competition(data, NEUTRAL_GAME)["neutralSite"]
    board = parse_scoreboard(json.dumps(data), "ncaaf")
    assert board.errors == [] and board.missing_neutral_site == [NEUTRAL_GAME]
    game = next(g for g in board.games if g.game_id == NEUTRAL_GAME)
    assert game.neutral_site is False
    assert parse_scoreboard(json.dumps(sample_dict(espn_samples, "ncaaf")), "ncaaf").missing_neutral_site == []
