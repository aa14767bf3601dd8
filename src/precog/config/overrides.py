"""Runtime configuration overrides stored in `config_overrides` (highest precedence, optional expiry)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from precog.config.errors import ConfigError
from precog.config.loader import Config, coerce, data_type_of, decode_override, load_config
from precog.domain.jsonutil import dumps

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_REMOVED = object()


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d', '1w' -> timedelta."""
    match = _DURATION.match(text or "")
    if not match:
        raise ConfigError(f"invalid duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 2h)")
    span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if not span:
        # an override born expired would only deactivate the key's current override
        raise ConfigError(f"invalid duration {text!r}: must be longer than zero")
    return span


@dataclass(frozen=True)
class Override:
    override_id: int
    config_key: str
    value: Any
    data_type: str
    reason: str | None
    applied_by: str | None
    applied_at: datetime
    expires_at: datetime | None


def set_override(conn: psycopg.Connection[Any], key: str, raw_value: str, *, reason: str, applied_by: str,
                 expires_in: timedelta | None = None, db_url: str | None = None) -> Override:
    """Validate and store an override, replacing any active one for the key. Wrong type or range: refused."""
    if not reason.strip():
        raise ConfigError("an override needs a --reason")
    base: Config = load_config(db_url=db_url, use_overrides=False)
    current = base.get(key)
    if isinstance(current, dict):
        raise ConfigError(f"{key} is a section, not a single value; override one of its keys")
    value = coerce(key, raw_value, current)
    data_type = data_type_of(value)
    stored = Jsonb({"value": value}, dumps=dumps)
    with conn.transaction():  # the check reads the other overrides in the transaction that writes
        _check_with_other_overrides(conn, key, value)
        conn.execute("UPDATE config_overrides SET active = FALSE, deactivated_at = now() WHERE config_key = %s AND active",
                     (key,))
        row = conn.execute(
            "INSERT INTO config_overrides (config_key, override_value, data_type, reason, applied_by, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, CASE WHEN %s::interval IS NULL THEN NULL ELSE now() + %s::interval END) "
            "RETURNING override_id, applied_at, expires_at",
            (key, stored, data_type, reason, applied_by, expires_in, expires_in),
        ).fetchone()
    assert row is not None
    return Override(row[0], key, value, data_type, reason, applied_by, row[1], row[2])


def _check_with_other_overrides(conn: psycopg.Connection[Any], key: str, value: Any = _REMOVED) -> None:
    """Validate the key's file (ranges, enums, keys that depend on each other) as it will be once the key's
    override is `value` (or removed), with the other active overrides in place: the effective configuration
    every command loads must stay valid. Raises ConfigError naming the key."""
    from precog.config.loader import validate_file

    trial = load_config(db_url=None, use_overrides=False)
    rows = conn.execute(
        "SELECT config_key, override_value, data_type FROM config_overrides "
        "WHERE active AND (expires_at IS NULL OR expires_at > now()) AND config_key <> %s ORDER BY applied_at",
        (key,)).fetchall()
    for other, stored, data_type in rows:
        raw = stored.get("value") if isinstance(stored, dict) else stored
        _set_path(trial.data, other, decode_override(raw, data_type))
    if value is not _REMOVED:
        _set_path(trial.data, key, value)
    action = "override of" if value is not _REMOVED else "removing the override of"
    validate_file(key.split(".")[0], trial.data[key.split(".")[0]], lambda k: f"{action} {key}")


def _set_path(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def unset_override(conn: psycopg.Connection[Any], key: str) -> int:
    """Deactivate the key's override; refused (nothing changed) when the configuration without it is invalid."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM config_overrides WHERE config_key = %s AND active "
                        "AND (expires_at IS NULL OR expires_at > now())", (key,)).fetchone():
            _check_with_other_overrides(conn, key)
        cur = conn.execute(
            "UPDATE config_overrides SET active = FALSE, deactivated_at = now() WHERE config_key = %s AND active", (key,))
    return cur.rowcount


def list_overrides(conn: psycopg.Connection[Any], *, include_inactive: bool = False) -> list[Override]:
    rows = conn.execute(
        "SELECT override_id, config_key, override_value, data_type, reason, applied_by, applied_at, expires_at "
        "FROM config_overrides WHERE %s OR (active AND (expires_at IS NULL OR expires_at > now())) "
        "ORDER BY applied_at", (include_inactive,)
    ).fetchall()
    return [Override(r[0], r[1], decode_override(r[2].get("value"), r[3]), r[3], r[4], r[5], r[6], r[7]) for r in rows]
