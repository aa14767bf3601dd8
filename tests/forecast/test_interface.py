"""The trading side's interface: Decimal probabilities, confidence, live states, impossible states."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from precog.forecast.builtin import load_builtin_wp
from precog.forecast.configs import EnsembleConfig
from precog.forecast.elo import TUNED_NFL_CONFIG
from precog.forecast.errors import ForecastError
from precog.forecast.interface import (
    EloForecaster,
    EnsembleForecaster,
    FixedProbabilityModel,
    WinProbabilityModel,
    WpForecaster,
    ratings_from_mapping,
    to_probability,
)
from precog.forecast.matrices import MatrixEntry
from precog.forecast.state import InvalidStateError, SimpleState


@pytest.fixture
def elo() -> EloForecaster:
    return EloForecaster(TUNED_NFL_CONFIG, ratings_from_mapping({"KC": 1660, "BUF": 1620, "CAR": 1370}),
                         sample_size=1335)


@pytest.fixture
def wp(elo: EloForecaster) -> WpForecaster:
    return WpForecaster(load_builtin_wp(), elo, sample_size=22379)


def _is_q4(value: Decimal) -> bool:
    return isinstance(value, Decimal) and value == value.quantize(Decimal("0.0001"))


def test_fixed_model_answers_its_decimal_and_satisfies_the_protocol() -> None:
    m = FixedProbabilityModel("0.6000", confidence="medium")
    assert isinstance(m, WinProbabilityModel)
    f = m.predict_pregame("KC", "BUF")
    assert f.probability == Decimal("0.6000") and f.confidence == "medium"
    assert f.for_side("away") == Decimal("0.4000")
    with pytest.raises(ForecastError):
        FixedProbabilityModel(Decimal("1.5"))


def test_elo_pregame_is_a_quantized_decimal_with_home_advantage(elo: EloForecaster) -> None:
    f = elo.predict_pregame("KC", "BUF")
    assert _is_q4(f.probability) and Decimal("0.5") < f.probability < Decimal("0.75")
    neutral = elo.predict_pregame("KC", "BUF", neutral=True)
    assert neutral.probability < f.probability
    assert elo.predict_pregame("CAR", "KC").probability < Decimal("0.25")
    with pytest.raises(ForecastError, match="unknown team 'XYZ'"):
        elo.predict_pregame("KC", "XYZ")


def test_wp_reads_live_states_from_the_home_side(wp: WpForecaster) -> None:
    late_lead = SimpleState("KC", "BUF", 24, 17, period=4, clock_seconds=90, possession="home", down=1, distance=10,
                            yards_to_goal=60, home_timeouts=2, away_timeouts=0)
    trailing = SimpleState("KC", "BUF", 17, 24, period=4, clock_seconds=90, possession="away", down=1, distance=10,
                           yards_to_goal=60, home_timeouts=2, away_timeouts=0)
    p_lead = wp.predict_state(late_lead).probability
    p_trail = wp.predict_state(trailing).probability
    assert p_lead > Decimal("0.93") and p_trail < Decimal("0.08")
    assert _is_q4(p_lead)
    # between plays and at halftime (no possession known) it still answers
    half = wp.predict_state(SimpleState("KC", "BUF", 14, 3, period=2, clock_seconds=0, status="halftime"))
    assert Decimal("0.6") < half.probability < Decimal("0.97")


def test_final_states_are_certain(wp: WpForecaster) -> None:
    f = wp.predict_state(SimpleState("KC", "BUF", 10, 13, period=4, clock_seconds=0, status="final"))
    assert f.probability == Decimal("0") and f.confidence == "high"


@pytest.mark.parametrize(("state", "field"), [
    (SimpleState("KC", "BUF", 7, 0, period=2, clock_seconds=-5), "clock_seconds"),
    (SimpleState("KC", "BUF", 7, 0, period=2, clock_seconds=300, possession="home", down=5), "down"),
    (SimpleState("KC", "BUF", -1, 0), "home_score"),
    (SimpleState("KC", "BUF", 7, 0, home_timeouts=4), "home_timeouts"),
    (SimpleState("KC", "BUF", 7, 0, possession="left"), "possession"),
    (SimpleState("KC", "BUF", 7, 0, period=2, clock_seconds=1200), "clock_seconds"),
])
def test_impossible_states_are_refused_naming_the_field(wp: WpForecaster, state: SimpleState, field: str) -> None:
    with pytest.raises(InvalidStateError, match=f"field {field}"):
        wp.predict_state(state)
    with pytest.raises(InvalidStateError):
        FixedProbabilityModel("0.5").predict_state(state)


def test_the_feeds_game_state_object_is_accepted(wp: WpForecaster) -> None:
    from precog.feeds.game_state import GameState

    state = GameState(sport="nfl", game_id="401", start_time=datetime(2024, 9, 8, tzinfo=UTC), name="BUF at KC",
                      short_name="BUF @ KC", home_team="KC", away_team="BUF", home_team_id="12", away_team_id="2",
                      home_team_name="Chiefs", away_team_name="Bills", status="live", status_detail="Q3",
                      period=3, clock_seconds=420, display_clock="7:00", home_score=20, away_score=10,
                      possession="away", down=3, distance=7, yard_line=35, yards_to_goal=35,
                      home_timeouts=3, away_timeouts=2)
    f = wp.predict_state(state)
    assert Decimal("0.6") < f.probability < Decimal("0.95")


def test_ensemble_combines_shrinks_and_uses_matrix_cells_at_boundaries(elo: EloForecaster, wp: WpForecaster) -> None:
    cell = MatrixEntry("nfl_game_state", "v1.0", "halftime", "10-13_points", {"leader": "home"}, Decimal("0.8500"),
                       Decimal("0.80"), Decimal("0.89"), 600)
    ens = EnsembleForecaster(EnsembleConfig(elo_in_game="time_decay"), elo, wp, [cell])
    pre = ens.predict_pregame("KC", "BUF")
    raw_elo = elo.probability("KC", "BUF")
    assert pre.probability == to_probability(0.5 + (raw_elo - 0.5) * 0.9)
    at_half = ens.predict_state(SimpleState("KC", "BUF", 20, 9, period=2, clock_seconds=0, status="halftime"))
    assert set(at_half.components) == {"winprob", "elo", "historical"}
    assert at_half.details["matrix_cell"]["value_bucket"] == "10-13_points"
    assert abs(at_half.details["weights"]["elo"] - 0.40 * 0.5 / (0.45 + 0.20 + 0.15)) < 1e-3
    mid_q3 = ens.predict_state(SimpleState("KC", "BUF", 20, 9, period=3, clock_seconds=400, possession="home"))
    assert "historical" not in mid_q3.components
    assert mid_q3.confidence in ("high", "medium", "low") and _is_q4(mid_q3.confidence_score)


def test_to_probability_rounds_half_up_and_keeps_live_forecasts_off_0_and_1() -> None:
    assert to_probability(0.123456) == Decimal("0.1235")
    assert to_probability(0.0) == Decimal("0.0001")
    assert to_probability(1.0, final=True) == Decimal("1.0000")
    with pytest.raises(ForecastError):
        to_probability(float("nan"))


def test_default_ensemble_leaves_elo_to_the_wp_model_in_game(elo: EloForecaster, wp: WpForecaster) -> None:
    ens = EnsembleForecaster(EnsembleConfig(), elo, wp, [])
    assert set(ens.predict_state(SimpleState("KC", "BUF", 7, 3, period=1, clock_seconds=200, possession="home")).components) == {"winprob"}
    assert set(ens.predict_pregame("KC", "BUF").components) == {"elo"}
