"""Live Elo forecasts regress ratings at a season change exactly as the training replay does.

The live path is: `precog forecast elo train` (replay + `store_replay`) writes `teams.current_elo_rating` and
each team's last season; `load_model` builds the forecaster from them; the trading side asks
`predict_state(game_state)` / `predict_pregame(home, away)` without naming a season. A team whose next game
is in a new season must be regressed toward the mean first (538: 1/3 toward 1505; elo_nfl v1.0: 0.45).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.feeds.game_state import GameState
from precog.forecast.builtin import load_builtin_wp
from precog.forecast.configs import EnsembleConfig
from precog.forecast.elo import EloConfig, EloRatings, replay, season_of, win_expectancy
from precog.forecast.elo_store import store_replay
from precog.forecast.errors import ForecastError
from precog.forecast.gamesfile import Game, read_games
from precog.forecast.interface import EloForecaster, EnsembleForecaster, TeamRatings, WpForecaster, load_model
from precog.forecast.registry import ensure_builtin_models, get_model
from precog.forecast.state import SimpleState

FIRST_SEASON = 2002  # all 32 current franchises exist, so every rated team is in `teams`
ONLINE_FROM, ONLINE_TO = date(2012, 12, 20), date(2013, 10, 1)  # end of 2012, its playoffs, start of 2013


def _kickoff(g: Game, status: str = "scheduled", **live: Any) -> GameState:
    return GameState(
        sport="nfl", game_id=f"{g.date}:{g.team1}-{g.team2}", start_time=datetime.combine(g.date, time(17), UTC),
        name=f"{g.team2} at {g.team1}", short_name=f"{g.team2} @ {g.team1}", home_team=g.team1, away_team=g.team2,
        home_team_id="1", away_team_id="2", home_team_name=g.team1, away_team_name=g.team2, status=status,  # type: ignore[arg-type]
        status_detail="", period=live.pop("period", 0), clock_seconds=live.pop("clock_seconds", None),
        display_clock="", home_score=0, away_score=0, **live)


def test_every_538_game_date_falls_in_its_season() -> None:
    # football seasons are named by the year they start and run into February (538's `season` column)
    assert season_of(date(2013, 9, 5)) == 2013
    assert season_of(date(2013, 2, 3)) == 2012  # a Super Bowl belongs to the season before
    assert season_of(date(2013, 3, 1)) == 2013  # the off-season already looks at the next season
    with pytest.raises(ForecastError, match="no season calendar for sport 'nba'"):
        season_of(date(2013, 1, 5), "nba")


def test_season_calendar_matches_the_538_file(shared_data: Path) -> None:
    games = read_games(shared_data / "nfl" / "fivethirtyeight_nfl_games_1920_2014.csv")
    wrong = [(g.date, g.season) for g in games if season_of(g.date) != g.season]
    assert wrong == []


def test_online_training_and_live_forecasts_across_a_season_boundary_match_the_replay(
        conn: psycopg.Connection[Any], shared_data: Path) -> None:
    ensure_builtin_models(conn)
    record = get_model(conn, "elo_nfl@v1.0")
    config = EloConfig.model_validate(record.config)
    assert config.season_regression > 0
    games = [g for g in read_games(shared_data / "nfl" / "fivethirtyeight_nfl_games_1920_2014.csv")
             if g.season >= FIRST_SEASON and g.date < ONLINE_TO]
    truth = {f.game.row: f for f in replay(games, EloRatings(config))}  # the training replay: ground truth
    days = sorted({g.date for g in games if g.date >= ONLINE_FROM})
    checked_state = checked_first_of_season = 0
    for day in days:
        # the live update: train on every result known before the day, exactly as `precog forecast elo train`
        known = [g for g in games if g.date < day]
        store_replay(conn, replay(known, EloRatings(config)), model_id=record.model_id, model_ref=record.ref,
                     k_factor=config.k_factor)
        forecaster = load_model(conn, record.ref)
        assert isinstance(forecaster, EloForecaster)
        played_this_season = {t for g in known if g.season == season_of(day) for t in (g.team1, g.team2)}
        for g in (g for g in games if g.date == day):
            expected = truth[g.row].p_team1
            named = forecaster.probability(g.team1, g.team2, neutral=g.neutral, playoff=g.playoff, season=g.season)
            assert named == pytest.approx(expected, abs=2e-5), (g, "season named")
            if g.neutral or g.playoff:
                continue  # a game state carries neither flag: only regular-season home games compare
            live = forecaster.predict_state(_kickoff(g)).probability
            assert abs(live - Decimal(repr(expected))) <= Decimal("0.0001"), (g, live, expected)
            checked_state += 1
            if g.team1 not in played_this_season and g.team2 not in played_this_season:
                checked_first_of_season += 1
        conn.commit()
    assert checked_state > 60 and checked_first_of_season >= 15  # the 2013 openers: both teams regressed


def _ratings(last_season: int) -> TeamRatings:
    return TeamRatings({"KC": 1700.0, "BUF": 1450.0}, {"KC": last_season, "BUF": last_season})


def test_a_pregame_forecast_without_a_season_is_for_the_season_in_progress() -> None:
    config = EloConfig(season_regression=0.5, regression_mean=1505)
    now = season_of(datetime.now(UTC).date())
    same_season = EloForecaster(config, _ratings(now)).probability("KC", "BUF")
    assert same_season == pytest.approx(win_expectancy(1700, 1450, config))
    new_season = EloForecaster(config, _ratings(now - 1)).probability("KC", "BUF")
    assert new_season == pytest.approx(win_expectancy(1602.5, 1477.5, config))


def test_in_game_strength_of_the_wp_model_uses_the_games_season() -> None:
    config = EloConfig(season_regression=0.5, regression_mean=1505)
    wp = load_builtin_wp()
    stale = WpForecaster(wp, EloForecaster(config, _ratings(2012)))
    regressed = WpForecaster(wp, EloForecaster(config, TeamRatings({"KC": 1602.5, "BUF": 1477.5},
                                                                   {"KC": 2013, "BUF": 2013})))
    g = Game(0, date(2013, 9, 8), 2013, "KC", "BUF")
    state = _kickoff(g, "live", period=2, clock_seconds=300, possession="home", down=1, distance=10,
                     yards_to_goal=60, home_timeouts=3, away_timeouts=3)
    assert stale.predict_state(state).probability == regressed.predict_state(state).probability
    earlier = _kickoff(Game(0, date(2013, 1, 6), 2012, "KC", "BUF"), "live", period=2, clock_seconds=300,
                       possession="home", down=1, distance=10, yards_to_goal=60, home_timeouts=3, away_timeouts=3)
    assert stale.predict_state(earlier).probability > regressed.predict_state(earlier).probability
    # a state without a start time (CLI, backtests) keeps working
    assert stale.predict_state(SimpleState("KC", "BUF", period=2, clock_seconds=300)).probability > Decimal("0.5")


def test_the_ensemble_regresses_its_elo_component_for_a_game_of_a_new_season() -> None:
    config = EloConfig(season_regression=0.5, regression_mean=1505)
    ensemble = EnsembleConfig(elo_in_game="fixed")
    wp = load_builtin_wp()

    def build(ratings: TeamRatings) -> EnsembleForecaster:
        elo = EloForecaster(config, ratings)
        return EnsembleForecaster(ensemble, elo, WpForecaster(wp, elo), [])

    stale = build(_ratings(2012))
    regressed = build(TeamRatings({"KC": 1602.5, "BUF": 1477.5}, {"KC": 2013, "BUF": 2013}))
    g = Game(0, date(2013, 9, 8), 2013, "KC", "BUF")
    pregame = _kickoff(g)
    assert stale.predict_state(pregame).components == regressed.predict_state(pregame).components
    in_game = _kickoff(g, "live", period=3, clock_seconds=600, possession="away", down=2, distance=7,
                       yards_to_goal=40, home_timeouts=2, away_timeouts=3)
    assert stale.predict_state(in_game).components == regressed.predict_state(in_game).components
