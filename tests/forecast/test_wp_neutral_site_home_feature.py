"""The WP model's `home` feature is 0 at a neutral site (Super Bowls, London/Munich/Mexico City, relocated games).

The plays file has no site column: its neutral-site games are the public schedule's, listed by game id in
`precog.forecast.plays.NEUTRAL_SITE_PLAY_GAMES` (the list the backtest flags its games neutral with). Training
gives their plays home 0 (every other play +1 at home, -1 away), the in-file Elo replay that makes the training
strength gives them no home advantage, and a caller that knows a game is neutral gets home 0 at prediction.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from precog.forecast.builtin import load_builtin_wp
from precog.forecast.elo import TUNED_NFL_CONFIG, EloRatings
from precog.forecast.gamesfile import Game
from precog.forecast.interface import WpForecaster
from precog.forecast.plays import NEUTRAL_SITE_PLAY_GAMES, Plays, game_order, read_plays
from precog.forecast.winprob import (
    FEATURES,
    WpConfig,
    feature_matrix,
    in_file_strength,
    model_inputs,
    strength_logit,
)

HOME = FEATURES.index("home")
SUPER_BOWL_LVII = "2022_22_KC_PHI"
MUNICH = "2022_10_SEA_TB"


@pytest.fixture(scope="module")
def plays(shared_data: Path) -> Plays:
    return read_plays(shared_data / "nfl" / "nflfastr_wp_plays_2020_2022.csv.gz", require_outcomes=True)


def test_training_matrix_has_home_zero_for_neutral_site_plays_only(plays: Plays) -> None:
    home = feature_matrix(model_inputs(plays, WpConfig()))[:, HOME]
    neutral = np.isin(plays.game_id, sorted(NEUTRAL_SITE_PLAY_GAMES))
    assert set(np.unique(plays.game_id[neutral]).tolist()) == NEUTRAL_SITE_PLAY_GAMES  # all 14 are in the file
    assert (home[neutral] == 0.0).all()
    expected = np.where(plays.posteam_is_home, 1.0, -1.0)
    assert np.array_equal(home[~neutral], expected[~neutral])
    sb = plays.game_id == SUPER_BOWL_LVII
    assert sb.sum() > 100 and (home[sb] == 0.0).all()
    lv = plays.game_id == "2020_21_KC_TB"  # Super Bowl LV, at Tampa Bay's own stadium: not neutral
    assert set(home[lv].tolist()) == {1.0, -1.0}


def test_in_file_strength_replays_a_neutral_site_game_without_home_advantage(plays: Plays) -> None:
    # the Munich game (SEA at TB, neutral), then the next game of either team: its strength reflects Munich's update
    order = game_order(plays)
    after = next(g for g in order[order.index(MUNICH) + 1:] if {"SEA", "TB"} & set(g.split("_")[2:]))
    pair = plays.subset(np.isin(plays.game_id, [MUNICH, after]))
    assert pair.season is not None and pair.game_date is not None
    assert pair.home_final is not None and pair.away_final is not None
    strength = in_file_strength(pair, TUNED_NFL_CONFIG)

    ratings = EloRatings(TUNED_NFL_CONFIG, allow_new_teams=True)
    i = int(np.argmax(pair.game_id == MUNICH))
    munich = Game(0, date.fromisoformat(str(pair.game_date[i])), int(pair.season[i]), str(pair.home_team[i]),
                  str(pair.away_team[i]), neutral=True, score1=int(pair.home_final[i]), score2=int(pair.away_final[i]))
    ratings.play(munich, munich.team1, munich.team2)
    j = int(np.argmax(pair.game_id == after))
    season = int(pair.season[j])
    home_logit = strength_logit(ratings.rating(str(pair.home_team[j]), season),
                                ratings.rating(str(pair.away_team[j]), season), TUNED_NFL_CONFIG.scale)
    expected = home_logit if pair.posteam_is_home[j] else -home_logit
    assert strength[j] == pytest.approx(expected, abs=1e-12)
    assert home_logit != 0.0


def test_wp_forecaster_gives_home_zero_when_told_the_game_is_neutral() -> None:
    # no strength (no Elo), possession unknown: the forecaster averages both teams receiving at their own 25,
    # so at a neutral site (home 0) the state is symmetric and P(home) is exactly one half
    wp = WpForecaster(load_builtin_wp())
    assert wp.predict_pregame("KC", "PHI", neutral=True).probability == Decimal("0.5000")
    assert wp.predict_pregame("KC", "PHI").probability > Decimal("0.5000")  # a home site still counts


def test_in_file_strength_applies_the_playoff_multiplier_to_playoff_games(plays: Plays) -> None:
    # the AFC championship (week 21 of 2022: a playoff round) then Super Bowl LVII: both are playoff games, so the
    # first's update and the second's strength use the multiplier, as the backtest's and the live ratings do
    afc = "2022_21_CIN_KC"
    pair = plays.subset(np.isin(plays.game_id, [afc, SUPER_BOWL_LVII]))
    assert pair.season is not None and pair.game_date is not None and "week" in pair.extra
    assert pair.home_final is not None and pair.away_final is not None
    strength = in_file_strength(pair, TUNED_NFL_CONFIG)

    ratings = EloRatings(TUNED_NFL_CONFIG, allow_new_teams=True)
    i = int(np.argmax(pair.game_id == afc))
    first = Game(0, date.fromisoformat(str(pair.game_date[i])), 2022, str(pair.home_team[i]), str(pair.away_team[i]),
                 playoff=True, score1=int(pair.home_final[i]), score2=int(pair.away_final[i]))
    ratings.play(first, first.team1, first.team2)
    j = int(np.argmax(pair.game_id == SUPER_BOWL_LVII))
    home_logit = strength_logit(ratings.rating(str(pair.home_team[j]), 2022),
                                ratings.rating(str(pair.away_team[j]), 2022), TUNED_NFL_CONFIG.scale)
    expected = TUNED_NFL_CONFIG.playoff_multiplier * (home_logit if pair.posteam_is_home[j] else -home_logit)
    assert TUNED_NFL_CONFIG.playoff_multiplier > 1 and home_logit != 0.0
    assert strength[j] == pytest.approx(expected, abs=1e-12)
    # without the week column the file cannot tell a playoff game: no multiplier
    del pair.extra["week"]
    assert abs(in_file_strength(pair, TUNED_NFL_CONFIG)[j]) < abs(strength[j])
