"""ESPN scoreboard normalisation against the real samples and variations made from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from feeds.espn_testkit import competition as _comp
from feeds.espn_testkit import sample_dict
from precog.feeds.espn_parse import EspnSchemaError, parse_scoreboard
from precog.feeds.game_state import GameState


def _game(board_games: list[GameState], game_id: str) -> GameState:
    return next(g for g in board_games if g.game_id == game_id)


def _no_floats(value: Any, path: str = "$") -> None:
    assert not isinstance(value, float), f"float at {path}: {value!r}"
    if isinstance(value, dict):
        for k, v in value.items():
            _no_floats(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _no_floats(v, f"{path}[{i}]")


def test_nfl_sample_live_game_is_fully_normalised(espn_samples: dict[str, bytes]) -> None:
    board = parse_scoreboard(espn_samples["nfl"], "nfl")
    assert len(board.games) == 16 and board.errors == []
    live = _game(board.games, "401772931")  # DEN @ WSH, 4th quarter
    assert live.status == "live" and live.is_live
    assert (live.home_team, live.away_team) == ("WSH", "DEN")
    assert (live.home_team_id, live.away_team_id) == ("28", "7")
    assert (live.home_score, live.away_score) == (17, 20)
    assert isinstance(live.home_score, int)
    assert (live.period, live.clock_seconds, live.display_clock) == (4, 522, "8:42")
    assert live.possession == "away"  # situation.possession "7" is Denver's team id
    assert (live.down, live.distance, live.yard_line) == (1, 10, 80)
    assert live.yards_to_goal == 80  # "DEN 20" with Denver on offence
    assert (live.home_timeouts, live.away_timeouts) == (3, 3)
    assert live.start_time == datetime(2025, 12, 1, 1, 20, tzinfo=UTC)
    prob = live.metadata["espn_win_probability"]
    assert prob == {"home": Decimal("0.2822"), "away": Decimal("0.7178"), "tie": Decimal("0.0000")}
    assert live.leader == "away" and live.lead == 3


def test_nfl_sample_pregame_odds_and_finals(espn_samples: dict[str, bytes]) -> None:
    board = parse_scoreboard(espn_samples["nfl"], "nfl")
    pre = _game(board.games, "401772821")  # NYG @ NE, Monday night, not started
    assert pre.status == "scheduled" and (pre.home_score, pre.away_score) == (0, 0)
    odds = pre.metadata["pregame_odds"]
    assert odds["details"] == "NE -7" and odds["provider"] == "ESPN BET"
    assert odds["home_spread"] == Decimal("-7.0") and odds["over_under"] == Decimal("46.5")
    assert (odds["home_moneyline"], odds["away_moneyline"]) == (-360, 280)
    # vig-free: (360/460) / (360/460 + 100/380)
    assert odds["home_implied_probability"] == Decimal("0.7484")
    assert odds["favorite"] == "home"
    finals = [g for g in board.games if g.status == "final"]
    assert len(finals) == 14
    buf = _game(board.games, "401772789")
    assert (buf.away_team, buf.away_score, buf.home_team, buf.home_score) == ("BUF", 26, "PIT", 7)
    assert buf.possession is None and buf.down is None


def test_ncaaf_and_nba_samples(espn_samples: dict[str, bytes]) -> None:
    cfb = parse_scoreboard(espn_samples["ncaaf"], "ncaaf")
    assert len(cfb.games) == 19 and all(g.status == "final" for g in cfb.games)
    tamu = _game(cfb.games, "401752792")
    assert (tamu.away_team, tamu.home_team, tamu.home_score, tamu.away_score) == ("TA&M", "TEX", 27, 17)

    nba = parse_scoreboard(espn_samples["nba"], "nba")
    assert len(nba.games) == 7
    live = _game(nba.games, "401810212")  # ORL @ NY
    assert live.status == "live" and (live.period, live.clock_seconds) == (4, 680)
    assert live.possession is None  # ESPN sends no possession for this game: absent, not guessed
    assert live.metadata["espn_win_probability"]["home"] == Decimal("0.9610")
    assert live.metadata["espn_win_probability"]["away"] == Decimal("0.0390")  # 0.039000000000000035 rounded
    pre = _game(nba.games, "401810213")  # BOS @ TOR: NBA odds layout (moneyline.home.close.odds)
    odds = pre.metadata["pregame_odds"]
    assert (odds["home_moneyline"], odds["away_moneyline"]) == (130, -155)
    assert odds["home_spread"] == Decimal("3.5") and odds["favorite"] == "away"
    assert pre.clock_seconds == 0


def test_parsed_values_never_contain_floats(espn_samples: dict[str, bytes]) -> None:
    for sport in ("nfl", "ncaaf", "nba"):
        for game in parse_scoreboard(espn_samples[sport], sport).games:
            _no_floats(game.metadata)
            _no_floats(game.to_json())


def test_down_minus_one_between_plays_is_not_an_error(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    situation = _comp(data, "401772931")["situation"]
    situation["down"] = -1
    situation["distance"] = 0
    board = parse_scoreboard(json.dumps(data), "nfl")
    live = _game(board.games, "401772931")
    assert board.errors == []
    assert live.down is None and live.distance is None
    assert live.possession == "away" and live.yard_line == 80


def test_missing_possession_and_situation(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    del _comp(data, "401772931")["situation"]["possession"]
    live = _game(parse_scoreboard(json.dumps(data), "nfl").games, "401772931")
    assert live.possession is None and live.yards_to_goal is None and live.down == 1

    del _comp(data, "401772931")["situation"]
    live = _game(parse_scoreboard(json.dumps(data), "nfl").games, "401772931")
    assert (live.possession, live.down, live.distance, live.home_timeouts) == (None, None, None, None)
    assert "espn_win_probability" not in live.metadata
    assert (live.home_score, live.away_score) == (17, 20)


def test_score_change_and_halftime_variations(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    comp = _comp(data, "401772931")
    home = next(c for c in comp["competitors"] if c["homeAway"] == "home")
    home["score"] = "24"
    comp["status"].update({"period": 2, "clock": 0.0, "displayClock": "0:00"})
    comp["status"]["type"].update({"name": "STATUS_HALFTIME", "state": "in"})
    game = _game(parse_scoreboard(json.dumps(data), "nfl").games, "401772931")
    assert game.status == "halftime" and game.is_live and game.home_score == 24 and game.period == 2


def test_basketball_tenths_round_up_and_keep_exact(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nba")
    comp = _comp(data, "401810212")
    comp["status"].update({"clock": 0.4, "displayClock": "0.4"})
    game = _game(parse_scoreboard(json.dumps(data), "nba").games, "401810212")
    assert game.clock_seconds == 1  # 0.4 s left is still time left
    assert game.metadata["clock_exact"] == Decimal("0.4")


def test_bad_game_is_reported_with_its_path_and_others_are_kept(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    data["events"][3]["competitions"][0]["competitors"][0]["score"] = "seventeen"
    board = parse_scoreboard(json.dumps(data), "nfl")
    assert len(board.games) == 15
    assert len(board.errors) == 1
    message = str(board.errors[0])
    assert "events[3].competitions[0].competitors[0].score" in message and "'seventeen'" in message
    assert board.errors[0].game_id == data["events"][3]["id"]


def test_missing_team_id_is_a_schema_error(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nba")
    del data["events"][0]["competitions"][0]["competitors"][1]["team"]["id"]
    board = parse_scoreboard(json.dumps(data), "nba")
    assert "competitors[1].team.id: missing" in str(board.errors[0])


def test_malformed_payloads_raise_clear_schema_errors() -> None:
    with pytest.raises(EspnSchemaError, match=r"ESPN nfl scoreboard: \$: not valid JSON"):
        parse_scoreboard(b"<html>502 Bad Gateway</html>", "nfl")
    with pytest.raises(EspnSchemaError, match="events: missing"):
        parse_scoreboard(b'{"leagues": []}', "nfl")
    with pytest.raises(EspnSchemaError, match="events: expected a list, got dict"):
        parse_scoreboard(b'{"events": {}}', "nba")
    with pytest.raises(EspnSchemaError, match=r"\$: expected a JSON object, got list"):
        parse_scoreboard(b"[]", "ncaaf")
    with pytest.raises(ValueError, match="unknown sport 'nhl'"):
        parse_scoreboard(b'{"events": []}', "nhl")


def test_unknown_status_name_is_drift_but_usable(espn_samples: dict[str, bytes]) -> None:
    data = sample_dict(espn_samples, "nfl")
    _comp(data, "401772931")["status"]["type"]["name"] = "STATUS_WEATHER_HOLD"
    board = parse_scoreboard(json.dumps(data), "nfl")
    game = _game(board.games, "401772931")
    assert game.status == "live"  # from type.state "in"
    assert board.unknown_statuses == ["STATUS_WEATHER_HOLD"]
    assert game.metadata["espn_status_name"] == "STATUS_WEATHER_HOLD"


def test_mlb_game_keeps_count_and_bases(espn_samples: dict[str, bytes]) -> None:
    # ESPN's MLB scoreboard has the same envelope; build one from the NBA sample's live game.
    data = sample_dict(espn_samples, "nba")
    event = data["events"][0]
    comp = event["competitions"][0]
    comp["status"].update({"period": 7, "clock": 0.0, "displayClock": "0:00"})
    comp["status"]["type"].update({"shortDetail": "Top 7th"})
    comp["situation"] = {"balls": 2, "strikes": 1, "outs": 2, "onFirst": True, "onSecond": False, "onThird": True}
    data["events"] = [event]
    game = parse_scoreboard(json.dumps(data), "mlb").games[0]
    assert game.sport == "mlb" and game.period == 7 and game.status_detail == "Top 7th"
    assert (game.metadata["outs"], game.metadata["balls"], game.metadata["onThird"]) == (2, 2, True)
    assert game.down is None
