"""Live forecasts of a neutral-site game (a London/Munich game, a Super Bowl): the game read from `game_states`
the way the engine's snapshot reads it is forecast with the model's `neutral=True` answer, not with the listed
home team's home-field advantage - pre-game (Elo, ensemble) and in-game (WP, ensemble, Elo)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from trading_testkit import market

from feeds.espn_testkit import competition, load_samples, sample_dict
from precog.db.connection import connect
from precog.feeds.espn_parse import parse_scoreboard
from precog.forecast.builtin import load_builtin_wp
from precog.forecast.configs import EnsembleConfig
from precog.forecast.elo import TUNED_NFL_CONFIG
from precog.forecast.interface import EloForecaster, EnsembleForecaster, WpForecaster, ratings_from_mapping
from precog.ingest.game_store import GameStateStore
from precog.trading.forecasts import WinProbabilityAdapter
from precog.trading.snapshot import load_games
from precog.trading.views import GameView

PREGAME = "401772821"  # NYG @ NE, not started in the NFL sample: played abroad here
LIVE = "401772931"  # DEN @ WSH, 4th quarter: played abroad here
HOME_LIVE = "401772789"  # BUF @ PIT: an ordinary home game
EVENTS = {"KXNFLGAME-25DEC01NYGNE": ("nfl", PREGAME), "KXNFLGAME-25NOV30DENWSH": ("nfl", LIVE),
          "KXNFLGAME-25NOV30BUFPIT": ("nfl", HOME_LIVE)}
TEAMS = {PREGAME: ("NE", "NYG"), LIVE: ("WSH", "DEN"), HOME_LIVE: ("PIT", "BUF")}


@pytest.fixture
def games(db_url: str, shared_data: Path) -> Iterator[dict[str, GameView]]:
    """The NFL sample with two games moved to a neutral site, ingested into game_states, read back as views."""
    data = sample_dict(load_samples(shared_data), "nfl")
    for game_id in (PREGAME, LIVE):
        competition(data, game_id)["neutralSite"] = True
    board = parse_scoreboard(json.dumps(data), "nfl")
    assert board.errors == []
    with connect(db_url, autocommit=True) as conn:
        GameStateStore(conn).write(board.games, datetime.now(UTC))
        yield {view.state.game_id: view for view in load_games(conn, EVENTS).values()}


def _elo() -> EloForecaster:
    ratings = {"NE": 1560, "NYG": 1420, "WSH": 1450, "DEN": 1590, "PIT": 1540, "BUF": 1600}
    return EloForecaster(TUNED_NFL_CONFIG, ratings_from_mapping(ratings), sample_size=1335)


def _p_yes_home(model: Any, game: GameView) -> Decimal:
    """P(YES) the engine's adapter gives the market paying on the listed home team of `game`."""
    adapter = WinProbabilityAdapter(model, model_id=5, name="m", version="v1.0", status="active", sport="nfl")
    event = next(e for e, (_, g) in EVENTS.items() if g == game.state.game_id)
    home, away = TEAMS[game.state.game_id]
    found = adapter.forecast(market(f"{event}-{home}", event=event, yes_team="home", home_team=home,
                                    away_team=away), game)
    assert found is not None, adapter.last_error
    return found.p_yes


def _raw(forecast: Any) -> Decimal:
    raw = forecast.details.get("raw_probability")
    return raw if isinstance(raw, Decimal) else forecast.probability


def test_the_stored_game_views_know_the_site(games: dict[str, GameView]) -> None:
    assert games[PREGAME].neutral_site is True and games[LIVE].neutral_site is True
    assert games[HOME_LIVE].neutral_site is False


def test_pregame_elo_forecast_of_a_neutral_game_has_no_home_advantage(games: dict[str, GameView]) -> None:
    elo = _elo()
    neutral = elo.predict_pregame("NE", "NYG", neutral=True).probability
    assert neutral != elo.predict_pregame("NE", "NYG").probability
    assert _p_yes_home(elo, games[PREGAME]) == neutral


def test_pregame_ensemble_forecast_of_a_neutral_game_has_no_home_advantage(games: dict[str, GameView]) -> None:
    elo = _elo()
    ensemble = EnsembleForecaster(EnsembleConfig(), elo, WpForecaster(load_builtin_wp(), elo), [])
    neutral = _raw(ensemble.predict_pregame("NE", "NYG", neutral=True))
    assert neutral != _raw(ensemble.predict_pregame("NE", "NYG"))
    assert _p_yes_home(ensemble, games[PREGAME]) == neutral


def test_in_game_wp_forecast_of_a_neutral_game_has_no_home_feature(games: dict[str, GameView]) -> None:
    wp = WpForecaster(load_builtin_wp(), _elo())
    state = games[LIVE].state
    neutral = wp.predict_state(state, neutral=True).probability
    assert neutral != wp.predict_state(state).probability
    assert _p_yes_home(wp, games[LIVE]) == neutral


def test_in_game_ensemble_passes_the_site_to_its_wp_and_elo_parts(games: dict[str, GameView]) -> None:
    elo = _elo()
    wp = WpForecaster(load_builtin_wp(), elo)
    ensemble = EnsembleForecaster(EnsembleConfig(elo_in_game="fixed"), elo, wp, [])
    state = games[LIVE].state
    neutral = ensemble.predict_state(state, neutral=True)
    home = ensemble.predict_state(state)
    assert neutral.components["winprob"] == wp.predict_state(state, neutral=True).probability
    assert neutral.components["elo"] == elo.predict_pregame("WSH", "DEN", neutral=True).probability
    assert home.components["winprob"] == wp.predict_state(state).probability
    assert home.components["elo"] == elo.predict_pregame("WSH", "DEN").probability
    assert _raw(neutral) != _raw(home)
    assert _p_yes_home(ensemble, games[LIVE]) == _raw(neutral)


def test_in_game_elo_forecast_of_a_neutral_game_has_no_home_advantage(games: dict[str, GameView]) -> None:
    elo = _elo()
    state = games[LIVE].state
    neutral = elo.predict_state(state, neutral=True).probability
    assert neutral == elo.predict_pregame("WSH", "DEN", neutral=True).probability
    assert neutral != elo.predict_state(state).probability
    assert _p_yes_home(elo, games[LIVE]) == neutral


def test_an_ordinary_home_game_keeps_its_home_advantage(games: dict[str, GameView]) -> None:
    wp = WpForecaster(load_builtin_wp(), _elo())
    assert _p_yes_home(wp, games[HOME_LIVE]) == wp.predict_state(games[HOME_LIVE].state).probability
