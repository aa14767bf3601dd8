"""A backtest's in-game WP forecast of a neutral-site game (Super Bowl LVII, Glendale) uses home 0.

The game's LIST event carries the schedule's neutral flag; the WP model (re-trained on the window's plays, no
look-ahead) is asked with the model's `home` feature 0 for it, never +1 for the designated home team.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from precog.backtest.feed import LIST, STATE, GuardedArchive, dt_to_ms
from precog.backtest.history import game_events, load_nfl, training_plays
from precog.backtest.models import GameInfo, WinProbabilityModel
from precog.forecast.interface import to_probability
from precog.forecast.state import SimpleState, situation


def _ms(d: date) -> int:
    return dt_to_ms(datetime(d.year, d.month, d.day, tzinfo=UTC))


@pytest.fixture(scope="module")
def super_bowl_wp(shared_data: Path) -> tuple[WinProbabilityModel, GameInfo]:
    hist = load_nfl(shared_data / "nfl", start=date(2022, 9, 1), end=date(2023, 2, 28))
    sb = next(g for g in hist.games if g.season == 2022 and g.week == "Superbowl")
    assert (sb.home, sb.away, sb.neutral) == ("PHI", "KC", True)
    clock = _ms(sb.day)
    archive = GuardedArchive(hist.archive, lambda: clock, lambda: training_plays(hist.folder))
    wp = WinProbabilityModel()
    assert wp.train(archive, _ms(date(2022, 11, 1)), clock) > 50
    events = list(game_events([sb], "T-"))
    listing = next(e for e in events if e.kind == LIST)
    # a third-quarter play with the designated home team (PHI) on offence
    play = next(e for e in events if e.kind == STATE and e.data["period"] == 3 and e.data["possession"] == "home"
                and e.data["down"] is not None)
    schedule = {k: v for k, v in listing.data.items() if k != "fair"}
    state = {k: v for k, v in play.data.items() if k != "fair"}
    return wp, GameInfo(listing.ticker, schedule, listing.data["fair"], state=state)


def _home_probability_with_home_feature(wp: WinProbabilityModel, game: GameInfo, home: float) -> float:
    """P(PHI wins) from the fitted model called directly, with the given `home` feature."""
    s, st = game.schedule, game.state
    assert st is not None and wp.forecaster is not None
    sit = situation(SimpleState(s["home"], s["away"], st["home_score"], st["away_score"], st["period"],
                                st["clock_seconds"], "live", st["possession"], st["down"], st["distance"],
                                st["yards_to_goal"], st["home_timeouts"], st["away_timeouts"]))
    strength = wp.strength.strength(s["home"], s["away"], int(s["season"]))
    return float(wp.forecaster.model.predict_one(
        float(sit.home_lead), float(sit.game_seconds), sit.overtime, float(sit.yards_to_goal), sit.down,
        float(sit.distance), float(sit.home_timeouts), float(sit.away_timeouts), home, strength, 0.0))


def test_super_bowl_in_game_forecast_uses_home_zero(super_bowl_wp: tuple[WinProbabilityModel, GameInfo]) -> None:
    wp, game = super_bowl_wp
    est = wp.estimate(game, 0)
    assert est is not None
    at_neutral = to_probability(_home_probability_with_home_feature(wp, game, 0.0))
    at_home = to_probability(_home_probability_with_home_feature(wp, game, 1.0))
    assert at_neutral != at_home  # the feature matters for this model and state
    assert est.p_yes == at_neutral


def test_the_same_game_at_a_home_site_uses_home_one(super_bowl_wp: tuple[WinProbabilityModel, GameInfo]) -> None:
    wp, game = super_bowl_wp
    home_site = GameInfo(game.ticker, {**game.schedule, "neutral": False}, game.fair, state=game.state)
    est = wp.estimate(home_site, 0)
    assert est is not None
    assert est.p_yes == to_probability(_home_probability_with_home_feature(wp, home_site, 1.0))
