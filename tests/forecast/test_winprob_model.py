"""In-game WP model: training, batch == per-state, artifact integrity, shipped default, targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from precog.forecast.builtin import artifacts_dir, builtin_wp_entry, load_builtin_wp
from precog.forecast.errors import ArtifactError, ForecastError
from precog.forecast.logistic import fit_logistic, sigmoid
from precog.forecast.plays import read_plays
from precog.forecast.winprob import (
    WpConfig,
    WpInputs,
    WpModel,
    game_folds,
    holdout_mask,
    model_inputs,
    sha256_file,
    train,
)


def test_logistic_regression_recovers_known_coefficients_with_fractional_labels() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(20000), rng.normal(size=20000)])
    true = np.array([0.3, -1.2])
    y = (rng.random(20000) < sigmoid(X @ true)).astype(float)
    y[:200] = 0.5  # ties
    b = fit_logistic(X, y, l2=0.0)
    assert b == pytest.approx(true, abs=0.08)


def test_a_warm_start_reaches_the_same_minimum() -> None:
    # Platt calibration refits each fold starting from the all-rows fit: the same coefficients as from zeros (the
    # regularised loss has one minimum), found in fewer Newton steps
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(5000), rng.normal(size=(5000, 6))])
    y = (rng.random(5000) < sigmoid(X @ rng.normal(size=7))).astype(float)
    cold = fit_logistic(X[:4000], y[:4000], l2=1e-3)
    warm = fit_logistic(X[:4000], y[:4000], l2=1e-3, start=fit_logistic(X, y, l2=1e-3))
    assert np.max(np.abs(warm - cold)) < 1e-9
    assert np.max(np.abs(fit_logistic(X[:4000], y[:4000], l2=1e-3, max_iter=3,
                                      start=fit_logistic(X, y, l2=1e-3)) - cold)) < 1e-6  # 3 steps suffice warm
    with pytest.raises(ValueError, match="start has"):
        fit_logistic(X, y, l2=1e-3, start=np.zeros(3))


def test_holdout_and_folds_group_every_play_of_a_game_together() -> None:
    ids = np.array([f"g{i // 7}" for i in range(700)])
    mask = holdout_mask(ids, 0.2)
    for g in np.unique(ids):
        assert len(set(mask[ids == g])) == 1
    assert 0.05 < mask.mean() < 0.4
    folds = game_folds(ids, 5)
    assert set(folds) <= set(range(5))
    for g in np.unique(ids):
        assert len(set(folds[ids == g])) == 1


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from forecast.forecast_testkit import PLAYS_HEADER, synthetic_plays, write_csv

    path = write_csv(tmp_path_factory.mktemp("wp") / "plays.csv", PLAYS_HEADER, synthetic_plays(n_games=80))
    plays = read_plays(path, require_outcomes=True)
    return plays, train(plays, WpConfig(holdout_fraction=0.25))


def test_training_holds_out_whole_games_and_scores_them(small_model) -> None:  # type: ignore[no-untyped-def]
    plays, result = small_model
    assert result.test_games > 0 and result.train_games > 0
    assert result.test_brier is not None and 0 < result.test_brier < 0.25
    held_out = {str(g) for g in plays.game_id[holdout_mask(plays.game_id, 0.25)]}
    assert held_out.isdisjoint(result.model.train_games)


def test_batch_scoring_equals_the_per_state_python_path(small_model) -> None:  # type: ignore[no-untyped-def]
    plays, result = small_model
    model = result.model
    x = model_inputs(plays, model.config)
    batch = model.predict(x)
    one = [model.predict_one(float(x.score_diff[i]), float(x.game_seconds[i]), bool(x.overtime[i]),
                             float(x.yardline_100[i]), int(x.down[i]), float(x.ydstogo[i]), float(x.pos_timeouts[i]),
                             float(x.def_timeouts[i]), float(x.home[i]), float(x.strength[i]),
                             float(x.receives_2h[i])) for i in range(len(x))]
    assert np.max(np.abs(batch - np.array(one))) < 1e-12


def test_artifact_round_trip_and_tampering_is_refused(small_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plays, result = small_model
    path = tmp_path / "m.npz"
    sha = result.model.save(path)
    assert sha == sha256_file(path)
    loaded = WpModel.load(path, sha)
    x = model_inputs(plays, loaded.config)
    assert np.array_equal(loaded.predict(x), result.model.predict(x))
    assert loaded.train_games == result.model.train_games
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="SHA-256"):
        WpModel.load(path, sha)
    with pytest.raises(ArtifactError, match="not found"):
        WpModel.load(tmp_path / "missing.npz")


def test_training_needs_enough_plays(make_csv) -> None:  # type: ignore[no-untyped-def]
    from forecast.forecast_testkit import PLAYS_HEADER, synthetic_plays

    plays = read_plays(make_csv("p.csv", PLAYS_HEADER, synthetic_plays(n_games=4)), require_outcomes=True)
    with pytest.raises(ForecastError, match="training plays"):
        train(plays, WpConfig())


def _state(**kw: float) -> WpInputs:
    base = {"score_diff": 0.0, "game_seconds": 1800.0, "overtime": False, "yardline_100": 75.0, "down": 1,
            "ydstogo": 10.0, "pos_timeouts": 3.0, "def_timeouts": 3.0, "home": 1.0, "strength": 0.0,
            "receives_2h": 0.0}
    base.update(kw)
    return WpInputs(*(np.array([base[f]], dtype=bool if f == "overtime" else np.int64 if f == "down" else np.float64)
                      for f in WpInputs.__dataclass_fields__))


def test_shipped_model_behaves_like_football() -> None:
    m = load_builtin_wp()
    p = lambda **kw: float(m.predict(_state(**kw))[0])  # noqa: E731
    assert p(score_diff=7, game_seconds=120) > p(score_diff=7, game_seconds=1800) > p(score_diff=0, game_seconds=1800)
    assert p(score_diff=-7, game_seconds=120) < 0.2
    assert p(score_diff=3, game_seconds=30, yardline_100=90) > 0.8
    assert p(yardline_100=5) > p(yardline_100=95)
    assert p(strength=1.0) > p(strength=0.0) > p(strength=-1.0)
    assert p(score_diff=21, game_seconds=600) > 0.97


def test_shipped_artifact_is_small_and_matches_its_manifest_hash() -> None:
    entry = builtin_wp_entry()
    path = artifacts_dir() / entry["file"]
    assert path.stat().st_size < 5_000_000
    assert sha256_file(path) == entry["sha256"]
    manifest = json.loads((artifacts_dir() / "manifest.json").read_text())
    assert manifest["wp_nfl"]["config"] == load_builtin_wp().config.model_dump(mode="json")


def test_shipped_model_is_within_0005_of_nflfastr_on_held_out_games(shared_plays) -> None:  # type: ignore[no-untyped-def]
    m = load_builtin_wp()
    held_out = np.array([str(g) not in m.train_games for g in shared_plays.game_id])
    assert 100 < len(set(shared_plays.game_id[held_out].tolist())) < 300
    y = shared_plays.outcome()[held_out]
    ours = float(np.mean((m.predict(model_inputs(shared_plays, m.config).take(held_out)) - y) ** 2))
    theirs = float(np.mean((shared_plays.published[held_out] - y) ** 2))
    assert ours <= theirs + 0.005


def test_scoring_matches_the_training_design_matrix_including_overtime(small_model) -> None:  # type: ignore[no-untyped-def]
    from precog.forecast.winprob import design_matrix, feature_matrix, features_one

    plays, result = small_model
    m = result.model
    x = model_inputs(plays, m.config)
    x.overtime = np.arange(len(x)) % 7 == 0  # exercise the overtime offsets too
    x.game_seconds = np.where(x.overtime, np.minimum(x.game_seconds, 600), x.game_seconds)
    beta = np.concatenate([m.coef.ravel(), m.ot_coef])
    expected = sigmoid(design_matrix(x, m.config.time_knots, m.config.spline_degree) @ beta)
    assert np.max(np.abs(m.predict(x) - expected)) < 1e-9
    feats = feature_matrix(x)
    i = 11
    one = features_one(float(x.score_diff[i]), float(x.game_seconds[i]), bool(x.overtime[i]), float(x.yardline_100[i]),
                       int(x.down[i]), float(x.ydstogo[i]), float(x.pos_timeouts[i]), float(x.def_timeouts[i]),
                       float(x.home[i]), float(x.strength[i]), float(x.receives_2h[i]))
    assert np.allclose(feats[i], one)
