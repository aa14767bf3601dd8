"""Runtime configuration overrides stored in `config_overrides` (highest precedence, optional expiry)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from precog.config.errors import ConfigError
from precog.config.loader import Config, coerce, data_type_of, load_config
from precog.domain.jsonutil import dumps

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d', '1w' -> timedelta."""
    match = _DURATION.match(text or "")
    if not match:
        raise ConfigError(f"invalid duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 2h)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


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
    # Validate the whole configuration with the new value in place (ranges, enums).
    trial = load_config(db_url=None, use_overrides=False)
    parts = key.split(".")
    node = trial.data
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    from precog.config.loader import validate_file

    validate_file(parts[0], trial.data[parts[0]], lambda k: f"override of {k}")
    data_type = data_type_of(value)
    stored = Jsonb({"value": value}, dumps=dumps)
    with conn.transaction():
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


def unset_override(conn: psycopg.Connection[Any], key: str) -> int:
    with conn.transaction():
        cur = conn.execute(
            "UPDATE config_overrides SET active = FALSE, deactivated_at = now() WHERE config_key = %s AND active", (key,))
    return cur.rowcount


def list_overrides(conn: psycopg.Connection[Any], *, include_inactive: bool = False) -> list[Override]:
    rows = conn.execute(
        "SELECT override_id, config_key, override_value, data_type, reason, applied_by, applied_at, expires_at "
        "FROM config_overrides WHERE %s OR (active AND (expires_at IS NULL OR expires_at > now())) "
        "ORDER BY applied_at", (include_inactive,)
    ).fetchall()
    from precog.config.loader import decode_override

    return [Override(r[0], r[1], decode_override(r[2].get("value"), r[3]), r[3], r[4], r[5], r[6], r[7]) for r in rows]
