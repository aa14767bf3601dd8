"""Honest evaluation of a model version on a games file (pre-game) or a plays file (in-game).

Pre-game (Elo, ensemble, fixed): the games are replayed online, every game forecast from results before
it; `from_season` restricts scoring to seasons >= it (ratings still learn from earlier seasons).

In-game (WP, ensemble): by default the stored artifact is scored on the plays of games it was not
trained on (plays of its training games are excluded and counted). With `from_season`, walk-forward: for
every season S >= from_season the model version's recipe is re-fitted on seasons < S only and scored on
S. With `folds=K`, cross-validation grouped by game: the recipe is re-fitted K times, each time without
one K-th of the games, and scored on those games (every play is scored by a model that never saw its
game; the pooled sample is large enough for the per-decile calibration target). The file's published forecast (`elo_prob1`, `wp`) is scored on exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from precog.forecast.configs import EnsembleConfig, FixedConfig
from precog.forecast.elo import EloConfig, EloRatings, replay
from precog.forecast.ensemble import Component, combine, shrink
from precog.forecast.errors import ForecastError
from precog.forecast.gamesfile import Game
from precog.forecast.matrices import (
    BOUNDARIES,
    build_game_state_cells,
    cell_entry,
    lead_bucket,
    lookup,
)
from precog.forecast.metrics import (
    CALIBRATION_MIN_N,
    CalibrationBin,
    Scores,
    calibration,
    max_calibration_error,
    reliability_diagram,
    score,
)
from precog.forecast.plays import Plays
from precog.forecast.winprob import WpConfig, WpModel, game_folds, in_file_strength, model_inputs, train

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SeasonRow:
    season: int
    scores: Scores
    published: Scores | None


@dataclass
class EvaluationReport:
    model_ref: str
    kind: str  # "games" or "plays"
    data_file: str
    from_season: int | None
    p: FloatArray
    y: FloatArray
    seasons: NDArray[np.int64]
    published_p: FloatArray | None
    notes: list[str] = field(default_factory=list)

    @property
    def scores(self) -> Scores:
        return score(self.p, self.y)

    @property
    def calibration(self) -> list[CalibrationBin]:
        return calibration(self.p, self.y)

    @property
    def published_scores(self) -> Scores | None:
        return None if self.published_p is None else score(self.published_p, self.y)

    @property
    def published_calibration(self) -> list[CalibrationBin] | None:
        return None if self.published_p is None else calibration(self.published_p, self.y)

    def by_season(self) -> list[SeasonRow]:
        rows = []
        for s in sorted({int(x) for x in self.seasons}):
            m = self.seasons == s
            pub = None if self.published_p is None else score(self.published_p[m], self.y[m])
            rows.append(SeasonRow(s, score(self.p[m], self.y[m]), pub))
        return rows

    def calibration_ok(self) -> bool:
        return all(b.within_target is not False for b in self.calibration)

    def reliability_png(self, path: Path) -> Path:
        series: dict[str, tuple[FloatArray, FloatArray]] = {self.model_ref: (self.p, self.y)}
        if self.published_p is not None:
            series["published (" + ("elo_prob1" if self.kind == "games" else "wp") + ")"] = (self.published_p, self.y)
        return reliability_diagram(path, series, f"Reliability: {self.model_ref} on {Path(self.data_file).name}")

    def to_json(self) -> dict[str, Any]:
        def cal(table: Sequence[CalibrationBin] | None) -> list[dict[str, Any]] | None:
            if table is None:
                return None
            return [{"bin": f"{b.lower:.1f}-{b.upper:.1f}", "n": b.n, "mean_forecast": _r(b.mean_forecast),
                     "observed": _r(b.observed), "gap": _r(b.gap), "within_target": b.within_target} for b in table]

        pub = self.published_scores
        return {
            "model": self.model_ref, "kind": self.kind, "data_file": self.data_file, "from_season": self.from_season,
            "scores": _rs(self.scores.as_dict()), "published_scores": _rs(pub.as_dict()) if pub else None,
            "calibration": cal(self.calibration), "published_calibration": cal(self.published_calibration),
            "max_calibration_error_n500": _r(max_calibration_error(self.calibration, CALIBRATION_MIN_N)),
            "calibration_target_met": self.calibration_ok(),
            "by_season": [{"season": r.season, **_rs(r.scores.as_dict()),
                           "published_brier": _r(r.published.brier) if r.published else None} for r in self.by_season()],
            "notes": self.notes,
        }


def _r(x: float) -> float | None:
    return None if x != x else round(float(x), 6)


def _rs(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_r(v) if isinstance(v, float) else v) for k, v in d.items()}


# ------------------------------------------------------------------------------------------------ games
def evaluate_games(games: Sequence[Game], *, model_ref: str, model_type: str, config: Mapping[str, Any],
                   data_file: str, initial: Mapping[str, float] | None, from_season: int | None = None,
                   allow_new_teams: bool = False, elo_config: EloConfig | None = None) -> EvaluationReport:
    """Pre-game evaluation of an elo / ensemble / fixed model version on a games file."""
    played = [g for g in games if g.result1 is not None and (from_season is None or g.season >= from_season)]
    if not played:
        raise ForecastError(f"{data_file}: no played games" + (f" in seasons >= {from_season}" if from_season else ""))
    if model_type == "fixed":
        fixed = float(FixedConfig.model_validate(config).probability)
        p = np.full(len(played), fixed)
    else:
        if model_type == "elo":
            elo_cfg, shrinkage = EloConfig.model_validate(config), 0.0
        elif model_type == "ensemble":
            if elo_config is None:
                raise ForecastError("an ensemble's pre-game evaluation needs its Elo component's config")
            elo_cfg, shrinkage = elo_config, EnsembleConfig.model_validate(config).shrinkage
        else:
            raise ForecastError(f"{model_ref} is a {model_type} model: evaluate it on a plays file (--plays)")
        forecasts = replay(games, EloRatings(elo_cfg, initial, allow_new_teams=allow_new_teams), path=data_file)
        by_row = {f.game.row: f.p_team1 for f in forecasts}
        p = np.array([shrink(by_row[g.row], shrinkage) for g in played])
    y = np.array([g.result1 for g in played], dtype=np.float64)
    seasons = np.array([g.season for g in played], dtype=np.int64)
    published = None
    notes = []
    if all(g.published_prob1 is not None for g in played):
        published = np.array([g.published_prob1 for g in played], dtype=np.float64)
    elif any(g.published_prob1 is not None for g in played):
        notes.append("the published forecast column is missing on some games: no comparison")
    return EvaluationReport(model_ref, "games", data_file, from_season, p, y, seasons, published, notes)


# ------------------------------------------------------------------------------------------------ plays
def _ensemble_play_probs(plays: Plays, test: NDArray[np.bool_], train_mask: NDArray[np.bool_], p_wp: FloatArray,
                         cfg: EnsembleConfig, elo_cfg: EloConfig) -> FloatArray:
    """Ensemble on plays from the posteam side: WP, Elo (in-file replay) and matrices built from training games."""
    w = cfg.weights
    idx = np.nonzero(test)[0]
    # Elo pre-game P(posteam wins) from the file's own results before each game (incl. home advantage)
    strength = in_file_strength(plays, elo_cfg)  # rating diff logit, posteam side, no HFA
    hfa_logit = elo_cfg.home_field_advantage / elo_cfg.scale * np.log(10.0)
    elo_logit = strength + np.where(plays.posteam_is_home, hfa_logit, -hfa_logit)
    p_elo = 1.0 / (1.0 + np.exp(-elo_logit))
    entries = [cell_entry(c, "eval") for c in build_game_state_cells(plays.subset(train_mask))] if train_mask.any() else []
    # the first play of quarters 2-4 sits on a boundary
    first_of_quarter: set[int] = set()
    best: dict[tuple[str, int], int] = {}
    for i in idx:
        key = (str(plays.game_id[i]), int(plays.qtr[i]))
        if key not in best or plays.game_seconds[i] > plays.game_seconds[best[key]]:
            best[key] = int(i)
    first_of_quarter = {i for (g, q), i in best.items() if q in BOUNDARIES.values()}
    descriptor_of = {q: d for d, q in BOUNDARIES.items()}
    out = np.empty(idx.size)
    for k, i in enumerate(idx):
        comps = {}
        if w.get("winprob", 0) > 0:
            comps["winprob"] = Component(float(p_wp[k]), w["winprob"], 1000)
        elo_w = 0.0 if cfg.elo_in_game == "pregame_only" else w.get("elo", 0.0)
        if cfg.elo_in_game == "time_decay":
            elo_w *= 0.0 if plays.qtr[i] >= 5 else plays.game_seconds[i] / 3600.0
        if elo_w > 0:
            comps["elo"] = Component(float(p_elo[i]), elo_w, 1000)
        if i in first_of_quarter and w.get("historical", 0) > 0:
            lead = int(plays.score_diff[i])
            if lead == 0:
                bucket, factors = "tied", {}
            else:
                bucket = lead_bucket(lead)
                home_leads = (lead > 0) == bool(plays.posteam_is_home[i])
                factors = {"leader": "home" if home_leads else "away"}
            cell = lookup(entries, descriptor_of[int(plays.qtr[i])], bucket, factors)
            if cell is not None and cell.sample_size >= cfg.min_matrix_sample:
                pc = float(cell.win_probability)
                if bucket == "tied":
                    p_pos = pc if plays.posteam_is_home[i] else 1.0 - pc
                else:
                    p_pos = pc if lead > 0 else 1.0 - pc
                comps["historical"] = Component(p_pos, w["historical"], cell.sample_size)
        out[k] = combine(comps, cfg.shrinkage).probability if comps else 0.5
    return out


def evaluate_plays(plays: Plays, *, model_ref: str, model_type: str, config: Mapping[str, Any], data_file: str,
                   model: WpModel | None, from_season: int | None = None, folds: int | None = None,
                   ensemble_wp_config: WpConfig | None = None, elo_config: EloConfig | None = None) -> EvaluationReport:
    """In-game evaluation of a WP (regression) or ensemble model version on a plays file."""
    y = plays.outcome()
    if model_type == "regression":
        wp_cfg = WpConfig.model_validate(config)
        ens_cfg = None
    elif model_type == "ensemble":
        ens_cfg = EnsembleConfig.model_validate(config)
        if ensemble_wp_config is None or elo_config is None:
            raise ForecastError("an ensemble's in-game evaluation needs its WP and Elo components")
        wp_cfg = ensemble_wp_config
    else:
        raise ForecastError(f"{model_ref} is a {model_type} model: evaluate it on a games file (--games)")
    notes: list[str] = []
    splits: list[tuple[NDArray[np.bool_], NDArray[np.bool_], WpModel]] = []
    if from_season is not None and folds is not None:
        raise ForecastError("choose one of walk-forward by season (--from-season) and cross-validation (--folds)")
    if folds is not None:
        if not 2 <= folds <= 20:
            raise ForecastError(f"--folds must be between 2 and 20, not {folds}")
        fold_of = game_folds(plays.game_id, folds)
        refit_cfg = wp_cfg.model_copy(update={"holdout_fraction": 0.0})
        for k in range(folds):
            test = fold_of == k
            if not test.any():
                continue
            fitted = train(plays.subset(~test), refit_cfg).model
            splits.append((test, ~test, fitted))
        notes.append(f"{folds}-fold cross-validation grouped by game id: each play scored by a model fitted "
                     "without its game")
    elif from_season is None:
        if model is None:
            raise ForecastError(f"{model_ref} has no trained artifact to evaluate")
        seen = np.array([str(g) in model.train_games for g in plays.game_id], dtype=bool)
        if seen.all():
            raise ForecastError(f"{data_file}: every play belongs to a game {model_ref} was trained on; "
                                "evaluate on other games or walk forward with --from-season")
        if seen.any():
            notes.append(f"excluded {int(seen.sum())} plays of {len(set(plays.game_id[seen].tolist()))} games "
                         f"{model_ref} was trained on; scored {int((~seen).sum())} plays of held-out games")
        splits.append((~seen, seen, model))
    else:
        if plays.season is None:
            raise ForecastError(f"{data_file}: walk-forward by season needs a 'season' column")
        seasons = sorted({int(s) for s in plays.season if s >= from_season})
        if not seasons:
            raise ForecastError(f"{data_file}: no plays in seasons >= {from_season}")
        walk_cfg = wp_cfg.model_copy(update={"holdout_fraction": 0.0})
        for s in seasons:
            train_mask = plays.season < s
            if train_mask.sum() < 1000:
                raise ForecastError(f"{data_file}: only {int(train_mask.sum())} plays before season {s} to train on; "
                                    f"use a later --from-season")
            fitted = train(plays.subset(train_mask), walk_cfg).model
            splits.append((plays.season == s, train_mask, fitted))
            notes.append(f"season {s}: re-fitted on {int(train_mask.sum())} plays of seasons < {s}")
    inputs = model_inputs(plays, wp_cfg)
    p_all = np.full(len(plays), np.nan)
    for test, train_mask, fitted in splits:
        p_wp = fitted.predict(inputs.take(test))
        if ens_cfg is not None:
            assert elo_config is not None
            p_wp = _ensemble_play_probs(plays, test, train_mask, p_wp, ens_cfg, elo_config)
        p_all[test] = p_wp
    scored = np.isfinite(p_all)
    published = None
    if plays.published is not None:
        if np.isfinite(plays.published[scored]).all():
            published = plays.published[scored]
        else:
            notes.append("the published wp column is empty on some scored plays: no comparison")
    seasons_arr = plays.season[scored] if plays.season is not None else np.zeros(int(scored.sum()), dtype=np.int64)
    return EvaluationReport(model_ref, "plays", data_file, from_season, p_all[scored], y[scored], seasons_arr,
                            published, notes)
