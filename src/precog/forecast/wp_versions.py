"""Training a new in-game WP model version: fit, store the artifact, register it (status validating) and record its
held-out evaluation, all or nothing. `precog forecast wp train` and the automatic refit (`wp_refit`) both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from precog.forecast.errors import ForecastError, RegistryError


@dataclass(frozen=True)
class TrainedVersion:
    ref: str
    status: str
    artifact: Path
    artifact_sha256: str
    config_hash: str
    train_plays: int
    train_games: int
    test_plays: int
    test_games: int
    test_brier: float | None
    published_test_brier: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.ref, "status": self.status, "artifact": str(self.artifact),
                "artifact_sha256": self.artifact_sha256, "config_hash": self.config_hash,
                "train_plays": self.train_plays, "train_games": self.train_games, "test_plays": self.test_plays,
                "test_games": self.test_games,
                "test_brier": None if self.test_brier is None else round(self.test_brier, 6),
                "published_test_brier": None if self.published_test_brier is None
                else round(self.published_test_brier, 6)}


def artifact_dir(name: str) -> Path:
    from precog.paths import precog_home

    return precog_home() / "models" / name


def train_version(conn: psycopg.Connection[Any], plays: Path, *, name: str = "wp_nfl", version: str | None = None,
                  base_config: dict[str, Any] | None = None, created_by: str = "precog",
                  description: str | None = None, training_end_date: Any = None) -> TrainedVersion:
    """Train `name` on `plays` (nflfastR plays format, with final scores) under `base_config` (the training
    config's keys; the file's name and SHA-256 are added), register it as `validating` and record the held-out
    evaluation. Raises ForecastError for bad data or config, RegistryError when the same config and data were
    trained already or the artifact path is taken; nothing is stored then."""
    from precog.forecast.configs import config_hash, normalize_config
    from precog.forecast.metrics import CALIBRATION_MIN_N, calibration, max_calibration_error, score
    from precog.forecast.plays import read_plays
    from precog.forecast.registry import create_model, list_models, next_version, parse_ref, record_evaluation
    from precog.forecast.winprob import WpConfig, holdout_mask, model_inputs, sha256_file, train

    base = dict(base_config or {})
    digest = sha256_file(plays) if plays.is_file() else None
    base.update({"training_data_sha256": digest, "training_file": plays.name})
    config_dict = normalize_config("regression", base)
    config = WpConfig.model_validate(config_dict)
    if config.holdout_fraction <= 0:
        raise ForecastError("the holdout must be > 0: a version needs held-out games to be validated")
    data = read_plays(plays, require_outcomes=True)
    version = version or next_version(conn, name)
    parse_ref(f"{name}@{version}")
    twin = [r for r in list_models(conn, name=name) if r.config_hash == config_hash(config_dict)]
    if twin:
        raise RegistryError(f"{twin[0].ref} was already trained with this config and data (config hash "
                            f"{twin[0].config_hash}); change the config to train a new version")
    result = train(data, config)
    path = artifact_dir(name) / f"{version}.npz"
    if path.exists():
        raise RegistryError(f"{path} already exists; refusing to overwrite another version's artifact")
    sha = result.model.save(path)
    try:
        with conn.transaction():
            record = create_model(conn, name, version, "regression", config_dict, sport="nfl",
                                  description=description or f"trained on {plays.name}", status="validating",
                                  artifact_path=str(path), artifact_sha256=sha, created_by=created_by,
                                  training_sample_size=result.train_plays, training_end_date=training_end_date)
            test = holdout_mask(data.game_id, config.holdout_fraction)
            y = data.outcome()[test]
            p = result.model.predict(model_inputs(data, config).take(test))
            s, table = score(p, y), calibration(p, y)
            pub = data.published[test] if data.published is not None else None
            record_evaluation(
                conn, record, data_file=str(plays), data_sha256=digest or "", from_season=None, sample_size=s.n,
                brier=s.brier, log_loss=s.log_loss, accuracy=s.accuracy,
                max_calibration_error=max_calibration_error(table, CALIBRATION_MIN_N),
                published_brier=None if pub is None else score(pub, y).brier,
                metrics={"kind": "held-out games at training", "test_games": result.test_games,
                         "scores": s.as_dict()}, created_by=created_by)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return TrainedVersion(record.ref, record.status, path, sha, record.config_hash or "", result.train_plays,
                          result.train_games, result.test_plays, result.test_games, result.test_brier,
                          result.published_test_brier)
