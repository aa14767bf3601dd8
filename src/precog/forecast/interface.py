"""What the trading side calls: `WinProbabilityModel.predict_pregame / predict_state` -> `Forecast`.

Every probability is P(home team wins) as a Decimal quantized to 4 places, with a confidence level
(high / medium / low, spec 5.1) and score. Implementations:

- `FixedProbabilityModel`: always the same number (tests, placeholders);
- `EloForecaster`: pre-game Elo (in-game it still answers the pre-game number);
- `WpForecaster`: the in-game WP model (pre-game: the kickoff state);
- `EnsembleForecaster`: Elo + WP + historical matrices with weights, agreement-based confidence, shrinkage;
- `load_model(conn, "ensemble_nfl")` builds any of them from the registry (ratings from `teams`,
  artifact verified against its recorded SHA-256, matrices from `probability_matrices`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import psycopg

from precog.domain.money import ONE, ZERO, q4
from precog.forecast.configs import EnsembleConfig, FixedConfig, MatrixModelConfig
from precog.forecast.elo import EloConfig, EloRatings, season_of, win_expectancy
from precog.forecast.ensemble import Component, Confidence, combine, confidence_of
from precog.forecast.errors import ForecastError, RegistryError
from precog.forecast.matrices import MatrixEntry, lookup, state_cell
from precog.forecast.state import PREGAME_STATUSES, FootballState, SimpleState, Situation, situation, validate
from precog.forecast.teams import canonical_team
from precog.forecast.winprob import WpModel, strength_logit

MIN_P = 1e-4  # probabilities leave as [0.0001, 0.9999] unless the game is over


def to_probability(p: float, *, final: bool = False) -> Decimal:
    """A model's float probability as the Decimal the rest of Precog uses (4 places, half-up)."""
    if not math.isfinite(p) or not 0.0 <= p <= 1.0:
        raise ForecastError(f"model produced {p!r}, not a probability")
    if not final:
        p = min(max(p, MIN_P), 1.0 - MIN_P)
    value = q4(Decimal(repr(p)))
    return max(ZERO, min(ONE, value))


@dataclass(frozen=True)
class Forecast:
    probability: Decimal  # P(home team wins)
    confidence: Confidence
    confidence_score: Decimal
    model_ref: str
    model_id: int | None = None
    components: dict[str, Decimal] = field(default_factory=dict)
    sample_size: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def for_side(self, side: str) -> Decimal:
        """P(`side` wins) for side 'home' or 'away'."""
        if side == "home":
            return self.probability
        if side == "away":
            return ONE - self.probability
        raise ValueError(f"side must be 'home' or 'away', not {side!r}")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@runtime_checkable
class WinProbabilityModel(Protocol):
    model_ref: str
    model_id: int | None

    def predict_pregame(self, home: str, away: str, *, neutral: bool = False, playoff: bool = False,
                        season: int | None = None) -> Forecast: ...

    def predict_state(self, state: FootballState, *, neutral: bool = False) -> Forecast: ...


def _final(state: FootballState, ref: str, model_id: int | None) -> Forecast:
    diff = state.home_score - state.away_score
    p = Decimal("1") if diff > 0 else Decimal("0") if diff < 0 else Decimal("0.5")
    return Forecast(p, "high", Decimal("1.0000"), ref, model_id, details={"final": True})


def _score(x: float) -> Decimal:
    return q4(Decimal(repr(max(0.0, min(1.0, x)))))


class FixedProbabilityModel:
    """Always answers `probability` (P(home wins)); for tests and as an explicit placeholder."""

    def __init__(self, probability: Decimal | str, *, confidence: Confidence = "low",
                 model_ref: str = "fixed@v1.0", model_id: int | None = None) -> None:
        value = Decimal(probability) if isinstance(probability, str) else probability
        if not isinstance(value, Decimal) or not ZERO <= value <= ONE:
            raise ForecastError(f"fixed probability {probability!r} is not a Decimal in [0, 1]")
        self.probability = q4(value)
        self.confidence = confidence
        self.model_ref = model_ref
        self.model_id = model_id

    def _forecast(self) -> Forecast:
        level_score = {"high": Decimal("1.0000"), "medium": Decimal("0.6000"), "low": Decimal("0.2000")}
        return Forecast(self.probability, self.confidence, level_score[self.confidence], self.model_ref,
                        self.model_id, {"fixed": self.probability})

    def predict_pregame(self, home: str, away: str, *, neutral: bool = False, playoff: bool = False,
                        season: int | None = None) -> Forecast:
        return self._forecast()

    def predict_state(self, state: FootballState, *, neutral: bool = False) -> Forecast:
        validate(state)
        return self._forecast()


@dataclass
class TeamRatings:
    """Current Elo ratings (team code -> rating) and each team's last rated season."""

    ratings: dict[str, float]
    last_season: dict[str, int] = field(default_factory=dict)

    def as_elo(self, config: EloConfig) -> EloRatings:
        elo = EloRatings(config, self.ratings)
        for team, rating in self.ratings.items():
            elo.set_rating(team, rating, self.last_season.get(team))
        return elo


def game_season(state: object, config: EloConfig) -> int | None:
    """The season of the game a state belongs to, from its start time (None when the state has none)."""
    start = getattr(state, "start_time", None)
    if not isinstance(start, datetime):
        return None
    return season_of(start.date(), config.sport)


class EloForecaster:
    """Pre-game Elo from the stored ratings. A team whose last rated game is in an earlier season than the game
    forecast is regressed toward the mean first, as the training replay does at a team's first game of a season;
    the season is the game's (its start time) or, when the caller gives neither, the season in progress today."""

    def __init__(self, config: EloConfig, ratings: TeamRatings, *, model_ref: str = "elo_nfl@v1.0",
                 model_id: int | None = None, sample_size: int = 0, shrinkage: float = 0.0) -> None:
        self.config = config
        self.ratings = ratings
        self._elo = ratings.as_elo(config)
        self.model_ref = model_ref
        self.model_id = model_id
        self.sample_size = sample_size
        self.shrinkage = shrinkage

    def team(self, code: str) -> str:
        canon = canonical_team(code, self.config.sport)
        if canon not in self.ratings.ratings:
            raise ForecastError(f"unknown team {code!r}: no Elo rating for it (known: "
                                f"{', '.join(sorted(self.ratings.ratings)) or 'none'})")
        return canon

    def season(self, season: int | None) -> int | None:
        """`season`, else the season in progress today; None when the config never regresses (no season needed)."""
        if season is not None or self.config.season_regression == 0:
            return season
        return season_of(datetime.now(UTC).date(), self.config.sport)

    def probability(self, home: str, away: str, *, neutral: bool = False, playoff: bool = False,
                    season: int | None = None) -> float:
        h, a = self.team(home), self.team(away)
        s = self.season(season)
        return win_expectancy(self._elo.rating(h, s), self._elo.rating(a, s), self.config,
                              neutral=neutral, playoff=playoff)

    def strength(self, posteam: str, defteam: str, season: int | None = None) -> float:
        s = self.season(season)
        return strength_logit(self._elo.rating(self.team(posteam), s),
                              self._elo.rating(self.team(defteam), s), self.config.scale)

    def predict_pregame(self, home: str, away: str, *, neutral: bool = False, playoff: bool = False,
                        season: int | None = None) -> Forecast:
        p = self.probability(home, away, neutral=neutral, playoff=playoff, season=season)
        level, score = confidence_of(0.0, self.sample_size)
        p = 0.5 + (p - 0.5) * (1 - self.shrinkage)
        return Forecast(to_probability(p), level, _score(score), self.model_ref, self.model_id,
                        {"elo": to_probability(p)}, self.sample_size)

    def predict_state(self, state: FootballState, *, neutral: bool = False) -> Forecast:
        validate(state)
        if state.status == "final":
            return _final(state, self.model_ref, self.model_id)
        return self.predict_pregame(state.home_team, state.away_team, neutral=neutral,
                                    season=game_season(state, self.config))


class WpForecaster:
    """The WP model on live states; pre-game strength from Elo ratings when available.

    `neutral=True` (the caller knows the game is at neither team's stadium) gives the model's `home` feature 0;
    otherwise the home team is at home (+1)."""

    def __init__(self, model: WpModel, elo: EloForecaster | None = None, *, model_ref: str = "wp_nfl@v1.0",
                 model_id: int | None = None, sample_size: int = 0) -> None:
        self.model = model
        self.elo = elo
        self.model_ref = model_ref
        self.model_id = model_id
        self.sample_size = sample_size

    def home_probability(self, state: FootballState, sit: Situation, *, neutral: bool = False) -> float:
        strength_home = 0.0
        if self.elo is not None and self.model.config.use_strength:
            season = game_season(state, self.elo.config)
            strength_home = self.elo.strength(state.home_team, state.away_team, season)
        home_sign = 0.0 if neutral else 1.0

        def p_for(side: str) -> float:
            pos_home = side == "home"
            lead = sit.home_lead if pos_home else -sit.home_lead
            pos_to, def_to = (sit.home_timeouts, sit.away_timeouts) if pos_home else (sit.away_timeouts, sit.home_timeouts)
            p = self.model.predict_one(float(lead), float(sit.game_seconds), sit.overtime, float(sit.yards_to_goal),
                                       sit.down, float(sit.distance), float(pos_to), float(def_to),
                                       home_sign if pos_home else -home_sign,
                                       strength_home if pos_home else -strength_home, 0.0)
            return p if pos_home else 1.0 - p

        if sit.possession in ("home", "away"):
            return p_for(sit.possession)
        # possession unknown (between plays, halftime): average both sides receiving at their own 25
        return 0.5 * (p_for("home") + p_for("away"))

    def predict_pregame(self, home: str, away: str, *, neutral: bool = False, playoff: bool = False,
                        season: int | None = None) -> Forecast:
        return self.predict_state(SimpleState(home, away, period=1, clock_seconds=900, status="live"), neutral=neutral)

    def predict_state(self, state: FootballState, *, neutral: bool = False) -> Forecast:
        validate(state)
        if state.status == "final":
            return _final(state, self.model_ref, self.model_id)
        sit = situation(state)
        p = self.home_probability(state, sit, neutral=neutral)
        level, score = confidence_of(0.0, self.sample_size)
        return Forecast(to_probability(p), level, _score(score), self.model_ref, self.model_id,
                        {"winprob": to_probability(p)}, self.sample_size)


class EnsembleForecaster:
    """`neutral=True` (the game is at neither team's stadium) reaches every part: no home-field advantage in the
    Elo part, the WP model's `home` feature 0."""

    def __init__(self, config: EnsembleConfig, elo: EloForecaster, wp: WpForecaster | None,
                 matrix: list[MatrixEntry], *, model_ref: str = "ensemble_nfl@v1.0", model_id: int | None = None) -> None:
        self.config = config
        self.elo = elo
        self.wp = wp
        self.matrix = matrix
        self.model_ref = model_ref
        self.model_id = model_id

    def _result(self, components: dict[str, Component], extra: dict[str, Any]) -> Forecast:
        combined = combine(components, self.config.shrinkage)
        return Forecast(
            to_probability(combined.probability), combined.confidence, _score(combined.confidence_score),
            self.model_ref, self.model_id, {k: to_probability(c.probability) for k, c in components.items()},
            combined.sample_size,
            extra | {"raw_probability": to_probability(combined.raw_probability), "spread": round(combined.spread, 4),
                     "weights": {k: round(v, 4) for k, v in combined.weights.items()},
                     "shrinkage": self.config.shrinkage},
        )

    def predict_pregame(self, home: str, away: str, *, neutral: bool = False, playoff: bool = False,
                        season: int | None = None) -> Forecast:
        w = self.config.weights
        p = self.elo.probability(home, away, neutral=neutral, playoff=playoff, season=season)
        return self._result({"elo": Component(p, w.get("elo", 0.0) or 1.0, self.elo.sample_size)}, {"phase": "pregame"})

    def predict_state(self, state: FootballState, *, neutral: bool = False) -> Forecast:
        validate(state)
        if state.status == "final":
            return _final(state, self.model_ref, self.model_id)
        season = game_season(state, self.elo.config)
        if state.status in PREGAME_STATUSES or state.period == 0:
            return self.predict_pregame(state.home_team, state.away_team, neutral=neutral, season=season)
        w = self.config.weights
        sit = situation(state)
        components: dict[str, Component] = {}
        if self.wp is not None and w.get("winprob", 0) > 0:
            components["winprob"] = Component(self.wp.home_probability(state, sit, neutral=neutral), w["winprob"],
                                              self.wp.sample_size)
        elo_w = 0.0 if self.config.elo_in_game == "pregame_only" else w.get("elo", 0.0)
        if self.config.elo_in_game == "time_decay":
            elo_w *= (sit.game_seconds / 3600.0) if not sit.overtime else 0.0
        if elo_w > 0:
            components["elo"] = Component(self.elo.probability(state.home_team, state.away_team, neutral=neutral,
                                                               season=season), elo_w, self.elo.sample_size)
        cell_info: dict[str, Any] = {}
        key = state_cell(state.period, state.clock_seconds, state.status, state.home_score, state.away_score)
        if key is not None and w.get("historical", 0) > 0:
            cell = lookup(self.matrix, *key)
            if cell is not None and cell.sample_size >= self.config.min_matrix_sample:
                p_cell = float(cell.win_probability)
                # cells are from the leader's side (tied: the home team's)
                p_home = p_cell if key[1] == "tied" or state.home_score > state.away_score else 1.0 - p_cell
                components["historical"] = Component(p_home, w["historical"], cell.sample_size)
                cell_info = {"matrix_cell": {"state_descriptor": key[0], "value_bucket": key[1],
                                             "situational_factors": cell.situational_factors,
                                             "sample_size": cell.sample_size}}
        if not components:
            raise ForecastError(f"{self.model_ref}: no component applies to this state (weights {w})")
        return self._result(components, {"phase": "in_game", "game_seconds": sit.game_seconds} | cell_info)


# ---------------------------------------------------------------------------------------------- registry
def load_team_ratings(conn: psycopg.Connection[Any], sport: str = "nfl") -> TeamRatings:
    rows = conn.execute(
        "SELECT team_code, current_elo_rating, (metadata -> 'elo' ->> 'last_season')::int FROM teams WHERE sport = %s",
        (sport,),
    ).fetchall()
    ratings = {code: float(r) for code, r, _ in rows if r is not None}
    seasons = {code: s for code, _, s in rows if s is not None}
    return TeamRatings(ratings, seasons)


def _sample(record: Any) -> int:
    return int(record.validation_sample_size or record.training_sample_size or 0)


def load_model(conn: psycopg.Connection[Any], ref: str = "ensemble_nfl") -> WinProbabilityModel:
    """The forecaster for a registry model (`name` = its newest active version, or `name@vX.Y`)."""
    from precog.forecast import registry
    from precog.forecast.builtin import resolve_artifact
    from precog.forecast.matrices import load as load_matrix

    registry.ensure_builtin_models(conn)
    record = registry.get_model(conn, ref)
    if record.status == "deprecated":
        raise RegistryError(f"{record.ref} is deprecated; it cannot forecast")
    sport = record.sport or "nfl"

    def elo_for(rec: Any, shrinkage: float = 0.0) -> EloForecaster:
        return EloForecaster(EloConfig.model_validate(rec.config), load_team_ratings(conn, sport), model_ref=rec.ref,
                             model_id=rec.model_id, sample_size=_sample(rec), shrinkage=shrinkage)

    def wp_for(rec: Any, elo: EloForecaster | None) -> WpForecaster:
        if not rec.artifact_path or not rec.artifact_sha256:
            raise RegistryError(f"{rec.ref} has no artifact (train it with `precog forecast wp train`)")
        model = WpModel.load(resolve_artifact(rec.artifact_path), rec.artifact_sha256)
        return WpForecaster(model, elo, model_ref=rec.ref, model_id=rec.model_id, sample_size=_sample(rec))

    if record.model_type == "fixed":
        fixed = FixedConfig.model_validate(record.config)
        return FixedProbabilityModel(fixed.probability, confidence=fixed.confidence, model_ref=record.ref,
                                     model_id=record.model_id)
    if record.model_type == "elo":
        return elo_for(record)
    if record.model_type == "regression":
        default_elo = registry.get_model(conn, "elo_nfl")
        return wp_for(record, elo_for(default_elo))
    if record.model_type == "ensemble":
        cfg = EnsembleConfig.model_validate(record.config)
        elo = elo_for(registry.get_model(conn, cfg.elo_model))
        wp = wp_for(registry.get_model(conn, cfg.winprob_model), elo) if cfg.weights.get("winprob", 0) > 0 else None
        entries = load_matrix(conn, version=cfg.matrix_version, matrix_name=cfg.matrix_name)
        return EnsembleForecaster(cfg, elo, wp, entries, model_ref=record.ref, model_id=record.model_id)
    if record.model_type == "historical":
        mcfg = MatrixModelConfig.model_validate(record.config)
        entries = load_matrix(conn, version=mcfg.matrix_version, matrix_name=mcfg.matrix_name)
        ens = EnsembleConfig(weights={"historical": 1.0}, shrinkage=0.0, matrix_name=mcfg.matrix_name,
                             matrix_version=mcfg.matrix_version, min_matrix_sample=mcfg.min_sample)
        elo = elo_for(registry.get_model(conn, "elo_nfl"))
        return EnsembleForecaster(ens, elo, None, entries, model_ref=record.ref, model_id=record.model_id)
    raise RegistryError(f"{record.ref} is a {record.model_type} model: no forecaster for that type here")


def ratings_from_mapping(ratings: Mapping[str, float | Decimal]) -> TeamRatings:
    return TeamRatings({canonical_team(k): float(v) for k, v in ratings.items()})
