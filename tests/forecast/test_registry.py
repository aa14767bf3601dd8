"""Model registry on the real database: immutable versions, config hash, lifecycle, evaluations, loading."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import psycopg
import pytest

from precog.forecast import registry
from precog.forecast.configs import config_hash, normalize_config
from precog.forecast.errors import ImmutabilityError, LifecycleError, RegistryError
from precog.forecast.interface import EnsembleForecaster, load_model
from precog.forecast.state import SimpleState


def test_builtin_models_are_registered_once_and_active(conn: psycopg.Connection) -> None:
    first = registry.ensure_builtin_models(conn)
    assert sorted(first) == ["elo_nfl@v1.0", "ensemble_nfl@v1.0", "wp_nfl@v1.0"]
    assert registry.ensure_builtin_models(conn) == []
    wp = registry.get_model(conn, "wp_nfl")
    assert wp.status == "active" and wp.artifact_sha256 and wp.artifact_path == "package:wp_nfl.npz"
    assert wp.validation_sample_size and wp.validation_sample_size > 1000
    assert wp.config_hash == config_hash(wp.config)


def test_config_hash_is_md5_of_canonical_json() -> None:
    cfg = {"b": 1, "a": [1, 2]}
    assert config_hash(cfg) == hashlib.md5(b'{"a":[1,2],"b":1}').hexdigest()
    assert config_hash({"a": [1, 2], "b": 1}) == config_hash(cfg)


def test_create_validates_config_and_refuses_duplicates(conn: psycopg.Connection) -> None:
    rec = registry.create_model(conn, "elo_test", "v1.0", "elo", {"k_factor": 25}, created_by="t")
    assert rec.status == "draft" and rec.config["k_factor"] == 25.0 and rec.config["home_field_advantage"] == 65.0
    with pytest.raises(RegistryError, match="already exists with this config"):
        registry.create_model(conn, "elo_test", "v1.0", "elo", {"k_factor": 25})
    with pytest.raises(ImmutabilityError, match="create v1.1 instead"):
        registry.create_model(conn, "elo_test", "v1.0", "elo", {"k_factor": 30})
    with pytest.raises(RegistryError, match="identical to elo_test@v1.0"):
        registry.create_model(conn, "elo_test", "v1.1", "elo", {"k_factor": 25.0})
    with pytest.raises(RegistryError, match="k_factor"):
        registry.create_model(conn, "elo_test", "v1.1", "elo", {"k_factor": -3})
    with pytest.raises(RegistryError, match="unknown_key"):
        registry.create_model(conn, "elo_test", "v1.1", "elo", {"unknown_key": 1})
    with pytest.raises(RegistryError, match="semantic version"):
        registry.create_model(conn, "elo_test", "1.1", "elo", {"k_factor": 26})
    assert registry.next_version(conn, "elo_test") == "v1.1"
    assert registry.next_version(conn, "elo_test", major=True) == "v2.0"


def test_database_refuses_to_change_a_frozen_config(conn: psycopg.Connection) -> None:
    rec = registry.create_model(conn, "elo_test", "v1.0", "elo", {"k_factor": 25})
    conn.commit()
    with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
        conn.execute("UPDATE probability_models SET config = %s WHERE model_id = %s",
                     (json.dumps({"k_factor": 99}), rec.model_id))
    conn.rollback()
    assert registry.get_model(conn, "elo_test@v1.0").config["k_factor"] == 25.0


def _evaluate(conn: psycopg.Connection, rec: registry.ModelRecord, n: int) -> None:
    registry.record_evaluation(conn, rec, data_file="x.csv", data_sha256="0" * 64, from_season=None, sample_size=n,
                               brier=0.2, log_loss=0.6, accuracy=0.65, max_calibration_error=0.02,
                               published_brier=0.21, metrics={"n": n})


def test_lifecycle_allows_the_spec_path_and_refuses_illegal_transitions(conn: psycopg.Connection) -> None:
    rec = registry.create_model(conn, "elo_test", "v1.0", "elo", {"k_factor": 25})
    with pytest.raises(LifecycleError, match="draft -> active is not allowed"):
        registry.transition(conn, rec.ref, "active")
    registry.transition(conn, rec.ref, "testing", reason="paper")
    with pytest.raises(LifecycleError, match="testing -> draft is not allowed"):
        registry.transition(conn, rec.ref, "draft")
    with pytest.raises(LifecycleError, match="needs at least 100"):
        registry.transition(conn, rec.ref, "active")
    _evaluate(conn, registry.get_model(conn, rec.ref), 150)
    active = registry.transition(conn, rec.ref, "active", reason="validated")
    assert active.status == "active" and active.activated_at is not None
    assert active.validation_brier == Decimal("0.200000") and active.validation_sample_size == 150
    with pytest.raises(LifecycleError, match="active -> draft is not allowed"):
        registry.transition(conn, rec.ref, "draft")
    gone = registry.transition(conn, rec.ref, "deprecated", reason="replaced")
    assert gone.deactivated_at is not None
    with pytest.raises(LifecycleError, match="deprecated is final"):
        registry.transition(conn, rec.ref, "active")
    history = [(h["from_status"], h["to_status"]) for h in registry.status_history(conn, rec.model_id)]
    assert history == [(None, "draft"), ("draft", "testing"), ("testing", "active"), ("active", "deprecated")]
    assert len(registry.evaluations(conn, rec.model_id)) == 1


def test_bare_name_resolves_to_newest_active_version(conn: psycopg.Connection) -> None:
    registry.ensure_builtin_models(conn)
    new = registry.create_model(conn, "elo_nfl", "v1.1", "elo", {"k_factor": 18})
    assert registry.get_model(conn, "elo_nfl").model_version == "v1.0"
    registry.transition(conn, new.ref, "validating")
    _evaluate(conn, registry.get_model(conn, new.ref), 500)
    registry.transition(conn, new.ref, "active")
    assert registry.get_model(conn, "elo_nfl").model_version == "v1.1"
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        registry.get_model(conn, "nope")


def test_load_model_builds_the_shipped_ensemble_from_the_database(conn: psycopg.Connection) -> None:
    model = load_model(conn, "ensemble_nfl")
    assert isinstance(model, EnsembleForecaster) and model.model_id is not None
    pre = model.predict_pregame("KC", "CAR")  # seeded ratings: KC 1660, CAR 1370
    assert pre.probability > Decimal("0.8") and pre.model_ref == "ensemble_nfl@v1.0"
    live = model.predict_state(SimpleState("KC", "CAR", 3, 10, period=4, clock_seconds=120, possession="away",
                                           down=1, distance=10, yards_to_goal=70))
    assert live.details["raw_probability"] < Decimal("0.2")  # KC trails by 7 with 2:00 left
    shrunk = Decimal("0.5") + (live.details["raw_probability"] - Decimal("0.5")) * Decimal("0.9")
    assert abs(live.probability - shrunk) <= Decimal("0.0001")
    assert isinstance(live.probability, Decimal)


def test_load_model_refuses_a_tampered_artifact(conn: psycopg.Connection, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from precog.forecast.builtin import artifacts_dir
    from precog.forecast.errors import ArtifactError

    registry.ensure_builtin_models(conn)
    copy = tmp_path / "wp.npz"
    copy.write_bytes((artifacts_dir() / "wp_nfl.npz").read_bytes() + b"tamper")
    cfg = normalize_config("regression", registry.get_model(conn, "wp_nfl@v1.0").config | {"l2": 0.5})
    rec = registry.create_model(conn, "wp_nfl", "v1.1", "regression", cfg, artifact_path=str(copy),
                                artifact_sha256="0" * 64)
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_model(conn, rec.ref)


@pytest.mark.parametrize("version", ["v1.0\n", "v\u0661.0", "v1.0 ", "1.0", "v1"])
def test_a_model_version_is_ascii_vmajor_minor_and_nothing_else(version: str) -> None:
    # `$` let a trailing newline through and `\d` any script's digits (the database then refused with a raw error)
    from precog.forecast.registry import parse_version

    with pytest.raises(RegistryError, match="is not a semantic version"):
        parse_version(version)
    assert parse_version("v12.3") == (12, 3)


def test_a_model_name_with_a_trailing_newline_is_refused(conn: psycopg.Connection) -> None:
    from precog.forecast.registry import create_model

    with pytest.raises(RegistryError, match="must be lowercase letters"):
        create_model(conn, "elo_x\n", "v1.0", "elo", {"k_factor": 20})
