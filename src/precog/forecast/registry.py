"""Model registry over `probability_models`: immutable versions, config hash, lifecycle, evaluations.

A version's config (and name, type, artifact hash) never changes after creation: the database trigger
refuses it and this module never tries. Change = a new version `vX.Y` (minor: tuning, major: new logic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.forecast.builtin import builtin_models
from precog.forecast.configs import MODEL_TYPES, config_hash, normalize_config
from precog.forecast.errors import ImmutabilityError, RegistryError
from precog.forecast.lifecycle import check_transition

# used with fullmatch: ASCII digits only (\d takes any script's digits) and no trailing newline (`$` allows one)
VERSION_RE = re.compile(r"v([0-9]+)\.([0-9]+)")
NAME_RE = re.compile(r"[a-z][a-z0-9_]{1,99}")

_COLUMNS = (
    "model_id, model_name, model_version, model_type, category, subcategory, sport, config, config_hash, "
    "artifact_path, artifact_sha256, description, status, training_start_date, training_end_date, "
    "training_sample_size, validation_accuracy, validation_calibration, validation_brier, validation_sample_size, "
    "activated_at, deactivated_at, created_by, notes, created_at, updated_at"
)


@dataclass(frozen=True)
class ModelRecord:
    model_id: int
    model_name: str
    model_version: str
    model_type: str
    category: str
    subcategory: str | None
    sport: str | None
    config: dict[str, Any]
    config_hash: str | None
    artifact_path: str | None
    artifact_sha256: str | None
    description: str | None
    status: str
    training_start_date: Any
    training_end_date: Any
    training_sample_size: int | None
    validation_accuracy: Decimal | None
    validation_calibration: Decimal | None
    validation_brier: Decimal | None
    validation_sample_size: int | None
    activated_at: datetime | None
    deactivated_at: datetime | None
    created_by: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.model_name}@{self.model_version}"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"ref": self.ref}


def parse_version(version: str) -> tuple[int, int]:
    m = VERSION_RE.fullmatch(version)
    if not m:
        raise RegistryError(f"version {version!r} is not a semantic version vMAJOR.MINOR (e.g. v1.0)")
    return int(m.group(1)), int(m.group(2))


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'elo_nfl@v1.1' -> ('elo_nfl', 'v1.1'); 'elo_nfl' -> ('elo_nfl', None) (= the newest active)."""
    name, _, version = ref.strip().partition("@")
    if not NAME_RE.fullmatch(name):
        raise RegistryError(f"model name {name!r} must be lowercase letters, digits and _ (e.g. elo_nfl)")
    if version:
        parse_version(version)
        return name, version
    return name, None


def _record(row: dict[str, Any]) -> ModelRecord:
    return ModelRecord(**row)


def _query(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> list[ModelRecord]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return [_record(r) for r in cur.fetchall()]


def list_models(conn: psycopg.Connection[Any], *, name: str | None = None, status: str | None = None,
                model_type: str | None = None) -> list[ModelRecord]:
    rows = _query(
        conn,
        f"SELECT {_COLUMNS} FROM probability_models "  # noqa: S608 - column list is a constant
        "WHERE (%s::text IS NULL OR model_name = %s) AND (%s::text IS NULL OR status = %s) "
        "AND (%s::text IS NULL OR model_type = %s)",
        (name, name, status, status, model_type, model_type),
    )
    return sorted(rows, key=lambda r: (r.model_name, parse_version(r.model_version)))


def get_model(conn: psycopg.Connection[Any], ref: str) -> ModelRecord:
    """A version by `name@vX.Y`; a bare name means its newest active version."""
    name, version = parse_ref(ref)
    if version is not None:
        rows = _query(conn, f"SELECT {_COLUMNS} FROM probability_models "  # noqa: S608
                      "WHERE model_name = %s AND model_version = %s", (name, version))
        if not rows:
            known = ", ".join(r.model_version for r in list_models(conn, name=name)) or "none"
            raise RegistryError(f"no model {name}@{version} (versions of {name}: {known})")
        return rows[0]
    versions = list_models(conn, name=name)
    if not versions:
        raise RegistryError(f"no model named {name!r} (see `precog models list`)")
    active = [r for r in versions if r.status == "active"]
    if not active:
        raise RegistryError(f"{name} has no active version ({', '.join(r.model_version + ' ' + r.status for r in versions)});"
                            f" name one explicitly as {name}@vX.Y")
    return active[-1]


def next_version(conn: psycopg.Connection[Any], name: str, *, major: bool = False) -> str:
    versions = [parse_version(r.model_version) for r in list_models(conn, name=name)]
    if not versions:
        return "v1.0"
    top = max(versions)
    return f"v{top[0] + 1}.0" if major else f"v{top[0]}.{top[1] + 1}"


def create_model(conn: psycopg.Connection[Any], name: str, version: str, model_type: str, config: dict[str, Any],
                 *, sport: str | None = "nfl", description: str | None = None, status: str = "draft",
                 artifact_path: str | None = None, artifact_sha256: str | None = None,
                 created_by: str | None = None, notes: str | None = None,
                 training_sample_size: int | None = None, training_start_date: Any = None,
                 training_end_date: Any = None) -> ModelRecord:
    """Register a new immutable version. Refuses duplicates (same name+version, or the same config)."""
    parse_ref(f"{name}@{version}")
    if model_type not in MODEL_TYPES:
        raise RegistryError(f"unknown model type {model_type!r} (one of: {', '.join(MODEL_TYPES)})")
    if status not in ("draft", "training", "validating"):
        raise RegistryError(f"a new version starts as draft, training or validating, not {status!r}")
    normalized = normalize_config(model_type, config)
    digest = config_hash(normalized)
    with conn.transaction():
        existing = list_models(conn, name=name)
        for r in existing:
            if r.model_version == version:
                if r.config_hash == digest:
                    raise RegistryError(f"{name}@{version} already exists with this config")
                raise ImmutabilityError(f"{name}@{version} already exists with a different config; versions are "
                                        f"immutable, create {next_version(conn, name)} instead")
            if r.config_hash == digest:
                raise RegistryError(f"this config is identical to {r.ref} (config hash {digest}); "
                                    "a new version must change something")
            if r.model_type != model_type:
                raise RegistryError(f"{name} versions are of type {r.model_type}, not {model_type}")
        rows = _query(
            conn,
            "INSERT INTO probability_models (model_name, model_version, model_type, subcategory, sport, config, "  # noqa: S608 - constant column list
            "config_hash, artifact_path, artifact_sha256, description, status, created_by, notes, "
            "training_sample_size, training_start_date, training_end_date) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"RETURNING {_COLUMNS}",
            (name, version, model_type, sport, sport, Jsonb(normalized), digest, artifact_path, artifact_sha256,
             description, status, created_by, notes, training_sample_size, training_start_date, training_end_date),
        )
        conn.execute("INSERT INTO model_status_changes (model_id, from_status, to_status, reason, changed_by) "
                     "VALUES (%s, NULL, %s, %s, %s)", (rows[0].model_id, status, "created", created_by))
    return rows[0]


def transition(conn: psycopg.Connection[Any], ref: str, target: str, *, reason: str | None = None,
               changed_by: str | None = None) -> ModelRecord:
    """Move a version to `target` if the lifecycle allows it (row-locked, audited)."""
    name, version = parse_ref(ref)
    if version is None:
        raise RegistryError(f"name the version to change, e.g. {name}@v1.0")
    with conn.transaction():
        rows = _query(conn, f"SELECT {_COLUMNS} FROM probability_models "  # noqa: S608
                      "WHERE model_name = %s AND model_version = %s FOR UPDATE", (name, version))
        if not rows:
            raise RegistryError(f"no model {name}@{version}")
        current = rows[0]
        check_transition(current.ref, current.status, target,
                         validation_sample_size=current.validation_sample_size, model_type=current.model_type)
        updated = _query(
            conn,
            "UPDATE probability_models SET status = %s, "  # noqa: S608 - constant column list
            "activated_at = CASE WHEN %s = 'active' THEN now() ELSE activated_at END, "
            "deactivated_at = CASE WHEN %s = 'deprecated' AND activated_at IS NOT NULL THEN now() "
            "ELSE deactivated_at END "
            f"WHERE model_id = %s RETURNING {_COLUMNS}",
            (target, target, target, current.model_id),
        )
        conn.execute("INSERT INTO model_status_changes (model_id, from_status, to_status, reason, changed_by) "
                     "VALUES (%s, %s, %s, %s, %s)", (current.model_id, current.status, target, reason, changed_by))
    return updated[0]


def set_artifact_path(conn: psycopg.Connection[Any], model_id: int, path: str) -> None:
    """The artifact may move (its hash may not): the path is not part of the frozen version."""
    conn.execute("UPDATE probability_models SET artifact_path = %s WHERE model_id = %s", (path, model_id))


def status_history(conn: psycopg.Connection[Any], model_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT from_status, to_status, reason, changed_by, changed_at FROM model_status_changes "
                    "WHERE model_id = %s ORDER BY change_id", (model_id,))
        return list(cur.fetchall())


def evaluations(conn: psycopg.Connection[Any], model_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT evaluation_id, data_file, data_sha256, from_season, sample_size, brier, log_loss, "
                    "accuracy, max_calibration_error, published_brier, created_at FROM model_evaluations "
                    "WHERE model_id = %s ORDER BY evaluation_id", (model_id,))
        return list(cur.fetchall())


def record_evaluation(conn: psycopg.Connection[Any], model: ModelRecord, *, data_file: str, data_sha256: str,
                      from_season: int | None, sample_size: int, brier: float, log_loss: float, accuracy: float,
                      max_calibration_error: float, published_brier: float | None,
                      metrics: dict[str, Any], created_by: str | None = None) -> Decimal | None:
    """Store an evaluation run and copy its headline numbers into the version's validation_* columns.
    Returns the version's validation Brier before this evaluation (None: it had none)."""

    def dec(x: float | None, places: int) -> Decimal | None:
        if x is None or x != x:  # None or NaN
            return None
        return Decimal(str(round(x, places)))

    with conn.transaction():
        row = conn.execute("SELECT validation_brier FROM probability_models WHERE model_id = %s FOR UPDATE",
                           (model.model_id,)).fetchone()
        previous: Decimal | None = row[0] if row else None
        conn.execute(
            "INSERT INTO model_evaluations (model_id, data_file, data_sha256, from_season, sample_size, brier, "
            "log_loss, accuracy, max_calibration_error, published_brier, metrics, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (model.model_id, data_file, data_sha256, from_season, sample_size, dec(brier, 6), dec(log_loss, 6),
             dec(accuracy, 4), dec(max_calibration_error, 4), dec(published_brier, 6), Jsonb(metrics), created_by),
        )
        conn.execute(
            "UPDATE probability_models SET validation_brier = %s, validation_accuracy = %s, "
            "validation_calibration = %s, validation_sample_size = %s WHERE model_id = %s",
            (dec(brier, 6), dec(accuracy, 4), dec(max_calibration_error, 4), sample_size, model.model_id),
        )
    return previous


def degradation(previous: Decimal | None, brier: float, alert_pct: Decimal) -> Decimal | None:
    """How much worse (a share) a new Brier is than the previous validation Brier, when it is at least
    `alert_pct` worse (probability_models.degradation_alert_pct); None otherwise."""
    if previous is None or previous <= 0 or brier != brier:
        return None
    worse = Decimal(str(round(brier, 6))) / previous - 1
    return worse if worse >= alert_pct else None


def ensure_builtin_models(conn: psycopg.Connection[Any]) -> list[str]:
    """Insert the shipped model versions if missing (idempotent). Returns the refs inserted."""
    inserted: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('precog.forecast.builtin_models'))")
        for spec in builtin_models():
            exists = conn.execute("SELECT 1 FROM probability_models WHERE model_name = %s AND model_version = %s",
                                  (spec["model_name"], spec["model_version"])).fetchone()
            if exists:
                continue
            config = normalize_config(spec["model_type"], spec["config"])
            val = spec["validation"]
            row = conn.execute(
                "INSERT INTO probability_models (model_name, model_version, model_type, subcategory, sport, config, "
                "config_hash, artifact_path, artifact_sha256, description, status, activated_at, created_by, "
                "validation_brier, validation_accuracy, validation_calibration, validation_sample_size, "
                "training_sample_size) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'active', now(), 'precog (shipped)', "
                "%s, %s, %s, %s, %s) RETURNING model_id",
                (spec["model_name"], spec["model_version"], spec["model_type"], spec["subcategory"], spec["sport"],
                 Jsonb(config), config_hash(config), spec["artifact_path"], spec["artifact_sha256"],
                 spec["description"], _dec(val.get("brier")), _dec(val.get("accuracy")),
                 _dec(val.get("max_calibration_error")), val.get("sample_size"), val.get("training_sample_size")),
            ).fetchone()
            assert row is not None
            conn.execute("INSERT INTO model_status_changes (model_id, from_status, to_status, reason, changed_by) "
                         "VALUES (%s, NULL, 'active', 'shipped with precog', 'precog')", (row[0],))
            inserted.append(f"{spec['model_name']}@{spec['model_version']}")
    return inserted


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))
