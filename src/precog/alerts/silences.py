"""Silences: time-boxed mutes that match alert type / component / severity (exact or shell-style `*` patterns).

A silenced alert is still stored (with its silence_id); it is only not delivered. Silences are checked when
the alert is raised and again when a queued notification is about to be sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.alerts.model import SEVERITIES, AlertError, AlertNotFound, IllegalTransition

MATCH_KEYS = {"type": "match_alert_type", "alert_type": "match_alert_type", "component": "match_component",
              "severity": "match_severity"}
_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '2h', '1d', '1h30m' -> timedelta. Raises AlertError naming the text."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        raise AlertError(f"duration {text!r} is not like 30m, 2h, 1d or 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_RE.findall(compact))
    if seconds <= 0:
        raise AlertError(f"duration {text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def parse_matchers(items: list[str]) -> dict[str, str]:
    """['type=api_failure', 'component=kalshi*'] -> column -> pattern."""
    if not items:
        raise AlertError("a silence needs at least one --match (type=..., component=... or severity=...)")
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise AlertError(f"--match {item!r} is not KEY=VALUE (keys: type, component, severity)")
        column = MATCH_KEYS.get(key)
        if column is None:
            raise AlertError(f"--match {item!r}: unknown key {key!r} (keys: type, component, severity)")
        if column in out:
            raise AlertError(f"--match {key} is given twice")
        if column == "match_severity" and value not in SEVERITIES:
            raise AlertError(f"--match severity={value!r} is not one of {', '.join(SEVERITIES)}")
        if len(value) > 60:
            raise AlertError(f"--match {key}: pattern longer than 60 characters")
        out[column] = value
    return out


@dataclass(frozen=True)
class Silence:
    silence_id: int
    match_alert_type: str | None
    match_component: str | None
    match_severity: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    expired_at: datetime | None
    expired_by: str | None

    def matches(self, alert_type: str, component: str, severity: str) -> bool:
        return ((self.match_alert_type is None or fnmatchcase(alert_type, self.match_alert_type))
                and (self.match_component is None or fnmatchcase(component, self.match_component))
                and (self.match_severity is None or severity == self.match_severity))

    def active_at(self, now: datetime) -> bool:
        return self.expired_at is None and self.starts_at <= now < self.ends_at

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("type", self.match_alert_type), ("component", self.match_component),
                                          ("severity", self.match_severity)) if v is not None]
        return " ".join(parts)

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["matchers"] = self.describe()
        if now is not None:
            out["active"] = self.active_at(now)
        return out


_COLUMNS = ("silence_id, match_alert_type, match_component, match_severity, starts_at, ends_at, created_by, comment,"
            " created_at, expired_at, expired_by")


def add_silence(conn: psycopg.Connection[Any], matchers: dict[str, str], *, starts_at: datetime,
                duration: timedelta, created_by: str, comment: str) -> Silence:
    if not comment or not comment.strip():
        raise AlertError("a silence needs a --comment saying why")
    if not created_by or not created_by.strip():
        raise AlertError("a silence needs --by NAME")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        insert = ("INSERT INTO alert_silences (match_alert_type, match_component, match_severity, starts_at,"
                  " ends_at, created_by, comment, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING ")
        cur.execute(
            insert + _COLUMNS,
            (matchers.get("match_alert_type"), matchers.get("match_component"), matchers.get("match_severity"),
             starts_at, starts_at + duration, created_by.strip()[:100], comment.strip(), starts_at))
        row = cur.fetchone()
    assert row is not None
    return Silence(**row)


def list_silences(conn: psycopg.Connection[Any], now: datetime, *, include_inactive: bool = False) -> list[Silence]:
    sql = f"SELECT {_COLUMNS} FROM alert_silences"  # noqa: S608
    params: tuple[Any, ...] = ()
    if not include_inactive:
        sql += " WHERE expired_at IS NULL AND ends_at > %s"
        params = (now,)
    sql += " ORDER BY ends_at DESC, silence_id DESC"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return [Silence(**r) for r in cur.fetchall()]


def active_silences(conn: psycopg.Connection[Any], now: datetime) -> list[Silence]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM alert_silences WHERE expired_at IS NULL AND starts_at <= %s"  # noqa: S608
                    " AND ends_at > %s ORDER BY silence_id", (now, now))
        return [Silence(**r) for r in cur.fetchall()]


def matching_silence(silences: list[Silence], alert_type: str, component: str, severity: str) -> Silence | None:
    for s in silences:
        if s.matches(alert_type, component, severity):
            return s
    return None


def expire_silence(conn: psycopg.Connection[Any], silence_id: int, *, by: str, now: datetime) -> Silence:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM alert_silences WHERE silence_id = %s FOR UPDATE", (silence_id,))  # noqa: S608
        row = cur.fetchone()
        if row is None:
            raise AlertNotFound(f"silence {silence_id} does not exist")
        current = Silence(**row)
        if current.expired_at is not None:
            raise IllegalTransition(f"silence {silence_id} was already expired (by {current.expired_by} at "
                                    f"{current.expired_at.isoformat(timespec='seconds')})")
        if current.ends_at <= now:
            raise IllegalTransition(f"silence {silence_id} already ended at {current.ends_at.isoformat(timespec='seconds')}")
        cur.execute(f"UPDATE alert_silences SET expired_at = %s, expired_by = %s WHERE silence_id = %s"  # noqa: S608
                    f" RETURNING {_COLUMNS}", (now, by[:100], silence_id))
        updated = cur.fetchone()
    assert updated is not None
    return Silence(**updated)
