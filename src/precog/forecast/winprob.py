"""In-game win probability (NFL): P(team with the ball wins | game state, pre-game strength).

Model: logistic regression whose coefficients vary smoothly with the time left (a quadratic B-spline
basis over game seconds remaining), on engineered features of the state:

    logit P = sum_f beta_f(t) * x_f   (+ overtime offsets on the first features)

    x = intercept, score difference (clipped at 30, 16, 8 and 3 points: one score vs two scores ...),
        field position, red zone, down (2/3/4, conversion try), log yards to go, timeout difference,
        home (+1/-1, 0 neutral), pre-game strength (Elo rating difference as a logit, HFA excluded),
        receives the second-half kickoff (+1/-1, 0 unknown or second half)

Scoring is a lookup: beta(t) is tabulated once per whole second (3601 x 16), so a batch of states is one
gather and one row-wise dot product in numpy. `predict_one` is the same model in plain Python.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from precog.forecast.elo import TUNED_NFL_CONFIG, EloConfig, EloRatings, regular_season_weeks
from precog.forecast.errors import ArtifactError, ForecastError
from precog.forecast.gamesfile import Game
from precog.forecast.logistic import fit_logistic, sigmoid
from precog.forecast.plays import Plays, game_order, second_half_receiver
from precog.forecast.splines import bspline_basis

FEATURES: tuple[str, ...] = (
    "intercept", "score_diff", "score_diff_3", "score_diff_8", "score_diff_16", "field_position", "red_zone",
    "down_2", "down_3", "down_4", "conversion_try", "log_ydstogo", "timeout_diff", "home", "strength",
    "receives_2h_kickoff",
)
N_FEATURES = len(FEATURES)
N_OVERTIME = 6  # overtime offsets on intercept, score diffs and field position
MAX_SECONDS = 3600
STRENGTH_CLIP = 4.0
CHUNK = 1 << 16
ARTIFACT_FORMAT = "precog-wp-vc-logit/1"

FloatArray = NDArray[np.float64]


class WpConfig(BaseModel):
    """Training recipe of one WP model version (frozen in `probability_models.config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sport: Literal["nfl"] = "nfl"
    method: Literal["time_varying_logistic"] = "time_varying_logistic"
    time_knots: tuple[float, ...] = (0, 30, 60, 120, 240, 480, 900, 1800, 2700, 3600)
    spline_degree: int = Field(default=2, ge=0, le=3)
    l2: float = Field(default=1e-5, ge=0, le=10)
    holdout_fraction: float = Field(default=0.2, ge=0, lt=1)
    # Platt recalibration a + b * logit, fitted on out-of-fold logits of the training games (grouped by
    # game), folded into the coefficients so scoring costs nothing extra (spec 7.3 calibration)
    calibration: Literal["platt", "none"] = "platt"
    calibration_folds: int = Field(default=3, ge=2, le=10)
    use_strength: bool = True
    use_second_half_receiver: bool = True
    strength_elo: EloConfig = TUNED_NFL_CONFIG
    training_data_sha256: str | None = None
    training_file: str | None = None

    @field_validator("time_knots")
    @classmethod
    def _knots(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) < 2 or v[0] != 0 or v[-1] != MAX_SECONDS or any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("time_knots must increase strictly from 0 to 3600")
        return v


@dataclass
class WpInputs:
    """A batch of states from the side of the team with the ball (arrays of equal length)."""

    score_diff: FloatArray
    game_seconds: FloatArray  # regulation: seconds left in the game; overtime: seconds left in the period
    overtime: NDArray[np.bool_]
    yardline_100: FloatArray
    down: NDArray[np.int64]  # 1-4, 0 = conversion try
    ydstogo: FloatArray
    pos_timeouts: FloatArray
    def_timeouts: FloatArray
    home: FloatArray  # +1 the team with the ball is at home, -1 away, 0 neutral site
    strength: FloatArray  # Elo rating difference (posteam - defteam) as logit, 0 = equal / unknown
    receives_2h: FloatArray  # +1 / -1 / 0

    def __len__(self) -> int:
        return int(self.score_diff.size)

    @classmethod
    def from_plays(cls, plays: Plays, *, strength: FloatArray | None = None,
                   receives_2h: FloatArray | None = None) -> WpInputs:
        n = len(plays)
        home = np.where(plays.neutral_site, 0.0, np.where(plays.posteam_is_home, 1.0, -1.0))
        return cls(plays.score_diff, plays.game_seconds, plays.overtime, plays.yardline_100, plays.down,
                   plays.ydstogo, plays.pos_timeouts, plays.def_timeouts, home,
                   np.zeros(n) if strength is None else strength,
                   np.zeros(n) if receives_2h is None else receives_2h)

    def take(self, idx: slice | NDArray[Any]) -> WpInputs:
        return WpInputs(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def feature_matrix(x: WpInputs) -> FloatArray:
    """The engineered features (n, 16) of a batch of states."""
    d = x.score_diff
    yl = x.yardline_100
    first_half = (x.game_seconds >= 1800) & ~x.overtime
    cols = (
        np.ones_like(d), np.clip(d, -30, 30), np.clip(d, -3, 3), np.clip(d, -8, 8), np.clip(d, -16, 16),
        (50.0 - yl) / 50.0, np.maximum(20.0 - yl, 0.0) / 20.0,
        (x.down == 2).astype(np.float64), (x.down == 3).astype(np.float64), (x.down == 4).astype(np.float64),
        (x.down == 0).astype(np.float64), np.log1p(np.minimum(x.ydstogo, 30.0)),
        x.pos_timeouts - x.def_timeouts, x.home, np.clip(x.strength, -STRENGTH_CLIP, STRENGTH_CLIP),
        np.where(first_half, x.receives_2h, 0.0),
    )
    return np.stack(cols, axis=1)


def features_one(score_diff: float, game_seconds: float, overtime: bool, yardline_100: float, down: int,
                 ydstogo: float, pos_timeouts: float, def_timeouts: float, home: float, strength: float,
                 receives_2h: float) -> list[float]:
    """`feature_matrix` for one state, in plain Python (the per-state path)."""
    d = score_diff
    first_half = game_seconds >= 1800 and not overtime
    return [
        1.0, min(max(d, -30.0), 30.0), min(max(d, -3.0), 3.0), min(max(d, -8.0), 8.0), min(max(d, -16.0), 16.0),
        (50.0 - yardline_100) / 50.0, max(20.0 - yardline_100, 0.0) / 20.0,
        1.0 if down == 2 else 0.0, 1.0 if down == 3 else 0.0, 1.0 if down == 4 else 0.0, 1.0 if down == 0 else 0.0,
        math.log1p(min(ydstogo, 30.0)), pos_timeouts - def_timeouts, home,
        min(max(strength, -STRENGTH_CLIP), STRENGTH_CLIP), receives_2h if first_half else 0.0,
    ]


def design_matrix(x: WpInputs, knots: Sequence[float], degree: int) -> FloatArray:
    """Training design: every feature times every time-basis function, plus the overtime offsets."""
    feats = feature_matrix(x)
    basis = bspline_basis(x.game_seconds, knots, degree)
    n = len(x)
    kron = (feats[:, :, None] * basis[:, None, :]).reshape(n, -1)
    ot = feats[:, :N_OVERTIME] * x.overtime[:, None]
    return np.hstack([kron, ot])


def strength_logit(rating_pos: float, rating_def: float, scale: float) -> float:
    """Rating difference as a logit (log-odds) without home advantage."""
    return (rating_pos - rating_def) / scale * math.log(10.0)


def in_file_strength(plays: Plays, elo: EloConfig) -> FloatArray:
    """Pre-game strength of the team with the ball from an Elo replay of the file's own games.

    Games are taken in date order; each game's strength uses only results of earlier games (all teams
    start at the config's initial rating; a neutral-site game's update gives no home advantage and a playoff
    game's rating difference is multiplied by the config's playoff multiplier, as the live and backtest ratings
    do; a game is a playoff game when its week is past the regular season's, which needs the season and week
    columns). Files without final scores give 0 (unknown) everywhere.
    """
    if not plays.has_outcomes:
        return np.zeros(len(plays))
    assert plays.home_final is not None and plays.away_final is not None
    first_row: dict[str, int] = {}
    for i, g in enumerate(plays.game_id):
        first_row.setdefault(str(g), i)
    neutral = plays.neutral_site
    week = plays.extra.get("week")
    flagged = plays.extra.get("playoff")  # ingested states: the playoff flag, their week unknown
    ratings = EloRatings(elo, allow_new_teams=True)
    home_logit: dict[str, float] = {}
    for k, gid in enumerate(game_order(plays)):
        i = first_row[gid]
        season = int(plays.season[i]) if plays.season is not None else 0
        playoff = (week is not None and plays.season is not None and week[i] > regular_season_weeks(season)) \
            or (flagged is not None and flagged[i] == 1.0)
        game = Game(row=k, date=_date_of(plays, i), season=season, team1=str(plays.home_team[i]),
                    team2=str(plays.away_team[i]), neutral=bool(neutral[i]), playoff=bool(playoff),
                    score1=int(plays.home_final[i]), score2=int(plays.away_final[i]))
        r1, r2 = ratings.rating(game.team1, season), ratings.rating(game.team2, season)
        home_logit[gid] = strength_logit(r1, r2, elo.scale) * (elo.playoff_multiplier if playoff else 1.0)
        ratings.play(game, game.team1, game.team2)
    per_game = np.array([home_logit[str(g)] for g in plays.game_id])
    return np.where(plays.posteam_is_home, per_game, -per_game)


def _date_of(plays: Plays, i: int):  # type: ignore[no-untyped-def]
    from datetime import date

    if plays.game_date is not None:
        try:
            return date.fromisoformat(str(plays.game_date[i]))
        except ValueError:
            pass
    return date(2000, 1, 1)


def _game_hash(game_ids: NDArray[np.str_]) -> NDArray[np.int64]:
    """A stable number in [0, 10000) per play from its game id (sha256), the same for all plays of a game."""
    per_game = {str(g): int(hashlib.sha256(str(g).encode()).hexdigest(), 16) % 10000 for g in np.unique(game_ids)}
    return np.array([per_game[str(g)] for g in game_ids], dtype=np.int64)


def holdout_mask(game_ids: NDArray[np.str_], fraction: float) -> NDArray[np.bool_]:
    """Deterministic split by game id: a game is held out when its hash falls in the first `fraction`."""
    if fraction <= 0:
        return np.zeros(game_ids.size, dtype=bool)
    return _game_hash(game_ids) < int(round(fraction * 10000))


def game_folds(game_ids: NDArray[np.str_], folds: int) -> NDArray[np.int64]:
    """Fold number (0..folds-1) of every play, grouped by game id."""
    return _game_hash(game_ids) * folds // 10000


def model_inputs(plays: Plays, config: WpConfig) -> WpInputs:
    strength = in_file_strength(plays, config.strength_elo) if config.use_strength else None
    receives = second_half_receiver(plays) if config.use_second_half_receiver else None
    return WpInputs.from_plays(plays, strength=strength, receives_2h=receives)


class WpModel:
    """A trained WP model: coefficients, the per-second lookup table, and its provenance."""

    def __init__(self, coef: FloatArray, ot_coef: FloatArray, config: WpConfig,
                 metadata: dict[str, Any] | None = None, train_games: Sequence[str] = ()) -> None:
        n_basis = len(config.time_knots) + config.spline_degree - 1
        if coef.shape != (N_FEATURES, n_basis) or ot_coef.shape != (N_OVERTIME,):
            raise ArtifactError(f"coefficient shapes {coef.shape}/{ot_coef.shape} do not match the config")
        self.coef = coef
        self.ot_coef = ot_coef
        self.config = config
        self.metadata = dict(metadata or {})
        self.train_games = frozenset(train_games)
        basis = bspline_basis(np.arange(MAX_SECONDS + 1, dtype=np.float64), config.time_knots, config.spline_degree)
        self.table: FloatArray = np.ascontiguousarray(basis @ coef.T)  # (3601, 16): beta_f(t) per second
        self._beta_by_feature: FloatArray = np.ascontiguousarray(self.table.T)  # (16, 3601) for 1-D gathers
        self._rows: list[list[float]] = self.table.tolist()
        self._ot: list[float] = ot_coef.tolist()

    # ------------------------------------------------------------------ scoring
    def predict(self, x: WpInputs) -> FloatArray:
        """P(team with the ball wins) for a batch of states (column by column, in cache-sized chunks)."""
        n = len(x)
        out = np.empty(n)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            out[start:stop] = sigmoid(self._logit(x.take(slice(start, stop))))
        return out

    def _logit(self, x: WpInputs) -> FloatArray:
        """sum_f beta_f(t) * x_f with beta gathered per feature column; same features as `feature_matrix`."""
        beta = self._beta_by_feature
        sec = np.clip(np.rint(x.game_seconds), 0, MAX_SECONDS).astype(np.intp)
        d, yl = x.score_diff, x.yardline_100
        cols = (
            None, np.clip(d, -30, 30), np.clip(d, -3, 3), np.clip(d, -8, 8), np.clip(d, -16, 16),
            (50.0 - yl) / 50.0, np.maximum(20.0 - yl, 0.0) / 20.0,
        )
        z = beta[0][sec]
        for f in range(1, 7):
            z += beta[f][sec] * cols[f]
        for f, down in ((7, 2), (8, 3), (9, 4), (10, 0)):
            z += np.where(x.down == down, beta[f][sec], 0.0)
        z += beta[11][sec] * np.log1p(np.minimum(x.ydstogo, 30.0))
        z += beta[12][sec] * (x.pos_timeouts - x.def_timeouts)
        z += beta[13][sec] * x.home
        z += beta[14][sec] * np.clip(x.strength, -STRENGTH_CLIP, STRENGTH_CLIP)
        z += beta[15][sec] * np.where((x.game_seconds >= 1800) & ~x.overtime, x.receives_2h, 0.0)
        if x.overtime.any():
            o = self.ot_coef
            ot = o[0] + o[1] * cols[1] + o[2] * cols[2] + o[3] * cols[3] + o[4] * cols[4] + o[5] * cols[5]
            z += np.where(x.overtime, ot, 0.0)
        return z

    def predict_one(self, score_diff: float, game_seconds: float, overtime: bool, yardline_100: float, down: int,
                    ydstogo: float, pos_timeouts: float, def_timeouts: float, home: float, strength: float = 0.0,
                    receives_2h: float = 0.0) -> float:
        """The same model for one state, in plain Python."""
        f = features_one(score_diff, game_seconds, overtime, yardline_100, down, ydstogo, pos_timeouts,
                         def_timeouts, home, strength, receives_2h)
        sec = min(max(int(round(game_seconds)), 0), MAX_SECONDS)
        row = self._rows[sec]
        z = 0.0
        for a, b in zip(f, row, strict=True):
            z += a * b
        if overtime:
            for a, b in zip(f[:N_OVERTIME], self._ot, strict=True):
                z += a * b
        return 0.5 * (1.0 + math.tanh(0.5 * z))

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> str:
        """Write the artifact (.npz, no pickles) and return its SHA-256."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": ARTIFACT_FORMAT, "config": self.config.model_dump(mode="json"), "metadata": self.metadata}
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez_compressed(fh, coef=self.coef, ot_coef=self.ot_coef,
                                meta_json=np.array(json.dumps(meta, sort_keys=True)),
                                train_games=np.array(sorted(self.train_games), dtype=np.str_))
        tmp.replace(path)
        return sha256_file(path)

    @classmethod
    def load(cls, path: Path, expected_sha256: str | None = None) -> WpModel:
        if not path.is_file():
            raise ArtifactError(f"model artifact {path} not found")
        digest = sha256_file(path)
        if expected_sha256 is not None and digest != expected_sha256:
            raise ArtifactError(f"model artifact {path} has SHA-256 {digest}, the registry recorded "
                                f"{expected_sha256}: the file was changed or replaced; refusing to use it")
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta_json"]))
                coef, ot_coef = npz["coef"], npz["ot_coef"]
                train_games = [str(g) for g in npz["train_games"]]
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"model artifact {path} is not a readable WP model: {exc}") from exc
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"model artifact {path} has format {meta.get('format')!r}, expected {ARTIFACT_FORMAT}")
        config = WpConfig.model_validate(meta["config"])
        return cls(np.asarray(coef, dtype=np.float64), np.asarray(ot_coef, dtype=np.float64), config,
                   meta.get("metadata", {}), train_games)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class TrainingResult:
    model: WpModel
    train_plays: int
    train_games: int
    test_plays: int
    test_games: int
    test_brier: float | None
    published_test_brier: float | None  # the file's own `wp` on the same held-out plays


def _platt(design: FloatArray, y: FloatArray, folds: NDArray[np.int64], l2: float,
           beta: FloatArray | None = None) -> tuple[float, float]:
    """(a, b) of P = sigmoid(a + b * z) fitted on out-of-fold logits z (each fold's games left out). `beta`, the
    fit on all the rows, is where each fold's fit starts (it converges to the fold's own minimum sooner)."""
    z = np.empty(y.size)
    for k in np.unique(folds):
        held = folds == k
        if held.all():
            return 0.0, 1.0
        z[held] = design[held] @ fit_logistic(design[~held], y[~held], l2=l2, start=beta)
    a, b = fit_logistic(np.column_stack([np.ones_like(z), z]), y, l2=0.0)
    return float(a), float(b)


def train(plays: Plays, config: WpConfig) -> TrainingResult:
    """Fit on the games not held out; score the held-out games (none of their plays were seen)."""
    y = plays.outcome()
    test = holdout_mask(plays.game_id, config.holdout_fraction)
    train_mask = ~test
    if train_mask.sum() < 1000:
        raise ForecastError(f"{plays.path}: only {int(train_mask.sum())} training plays after holding out "
                            f"{config.holdout_fraction:.0%} of games; need at least 1000")
    inputs = model_inputs(plays, config)
    design = design_matrix(inputs.take(train_mask), config.time_knots, config.spline_degree)
    y_train = y[train_mask]
    beta = fit_logistic(design, y_train, l2=config.l2)
    n_basis = len(config.time_knots) + config.spline_degree - 1
    coef = beta[: N_FEATURES * n_basis].reshape(N_FEATURES, n_basis)
    ot_coef = beta[N_FEATURES * n_basis:]
    platt = (0.0, 1.0)
    if config.calibration == "platt":
        platt = _platt(design, y_train, game_folds(plays.game_id[train_mask], config.calibration_folds), config.l2,
                       beta)
        # a + b * sum(beta x) == sum((b * beta) x) + a, and the intercept's time basis sums to 1
        coef = coef * platt[1]
        coef[0] += platt[0]
        ot_coef = ot_coef * platt[1]
    train_ids = sorted({str(g) for g in plays.game_id[train_mask]})
    test_ids = {str(g) for g in plays.game_id[test]}
    model = WpModel(coef, ot_coef, config, train_games=train_ids)
    test_brier = published = None
    if test.any():
        p = model.predict(inputs.take(test))
        test_brier = float(np.mean((p - y[test]) ** 2))
        if plays.published is not None and np.isfinite(plays.published[test]).all():
            published = float(np.mean((plays.published[test] - y[test]) ** 2))
    model.metadata.update({
        "train_plays": int(train_mask.sum()), "train_games": len(train_ids),
        "test_plays": int(test.sum()), "test_games": len(test_ids),
        "test_brier": test_brier, "published_test_brier": published, "platt": list(platt),
    })
    return TrainingResult(model, int(train_mask.sum()), len(train_ids), int(test.sum()), len(test_ids),
                          test_brier, published)
