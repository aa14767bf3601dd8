"""SQL for alert rows: insert, read back, list, and the lifecycle transitions (all parameterized)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.alerts.model import (
    RESOLUTION_ACTIONS,
    AlertError,
    AlertNotFound,
    AlertRecord,
    IllegalTransition,
    check_severity,
)

RECORD_FIELDS: tuple[str, ...] = tuple(AlertRecord.__dataclass_fields__)
SELECT_COLUMNS = ", ".join(f"a.{c}" for c in RECORD_FIELDS)


def record_from_row(row: dict[str, Any], prefix: str = "") -> AlertRecord:
    return AlertRecord(**{f: row[prefix + f] for f in RECORD_FIELDS})


def _one(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any]) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def get_alert(conn: psycopg.Connection[Any], alert_id: int, *, lock: bool = False) -> AlertRecord:
    sql = f"SELECT {SELECT_COLUMNS} FROM alerts a WHERE a.alert_id = %s" + (" FOR UPDATE" if lock else "")  # noqa: S608
    row = _one(conn, sql, (alert_id,))
    if row is None:
        raise AlertNotFound(f"alert {alert_id} does not exist")
    return record_from_row(row)


def insert_alert(conn: psycopg.Connection[Any], *, alert_type: str, severity: str, category: str | None,
                 component: str, message: str, details: dict[str, Any] | None, source_table: str | None,
                 source_id: int | None, triggered_at: datetime, environment: str, fingerprint: str | None,
                 dedup_key: str | None, tags: dict[str, Any] | None, notification_channels: dict[str, Any],
                 last_notified_at: datetime | None, silence_id: int | None, inhibited_by: int | None) -> int:
    row = conn.execute(
        "INSERT INTO alerts (alert_type, severity, category, component, message, details, source_table, source_id,"
        " triggered_at, environment, fingerprint, dedup_key, tags, suppressed, duplicate_count, last_seen_at,"
        " notification_channels, last_notified_at, silence_id, inhibited_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, FALSE, 0, %s, %s, %s, %s, %s)"
        " RETURNING alert_id",
        (alert_type, severity, category, component, message, Jsonb(details) if details is not None else None,
         source_table, source_id, triggered_at, environment, fingerprint, dedup_key,
         Jsonb(tags) if tags is not None else None, triggered_at, Jsonb(notification_channels),
         last_notified_at, silence_id, inhibited_by),
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_alert_queued(conn: psycopg.Connection[Any], *, queue: list[str], kind: str, notify_channel: str,
                        alert_id: int | None = None, **alert: Any) -> int:
    """Insert the alert AND its outbox rows (one per channel in `queue`) in one statement, and NOTIFY
    listening notifiers when something was queued (delivered on commit). One round trip instead of many.
    `alert_id`: an id already taken from the alerts sequence (a buffered repeat raised as a new occurrence)."""
    row = conn.execute(
        "WITH new AS ("
        " INSERT INTO alerts (alert_id, alert_type, severity, category, component, message, details, source_table,"
        " source_id, triggered_at, environment, fingerprint, dedup_key, tags, suppressed, duplicate_count,"
        " last_seen_at, notification_channels, last_notified_at, silence_id, inhibited_by)"
        " VALUES (COALESCE(%s::bigint, nextval(pg_get_serial_sequence('alerts', 'alert_id'))),"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, FALSE, 0, %s, %s, %s, %s, %s)"
        " RETURNING alert_id"
        "), queued AS ("
        " INSERT INTO alert_outbox (alert_id, channel, kind, status, next_attempt_at, created_at)"
        " SELECT new.alert_id, ch, %s, 'pending', %s, %s FROM new, unnest(%s::text[]) WITH ORDINALITY AS q(ch, i)"
        " ORDER BY q.i RETURNING outbox_id"
        ") SELECT new.alert_id, (SELECT count(*) FROM queued),"
        " CASE WHEN cardinality(%s::text[]) > 0 THEN pg_notify(%s, new.alert_id::text) END FROM new",
        (alert_id, alert["alert_type"], alert["severity"], alert["category"], alert["component"], alert["message"],
         Jsonb(alert["details"]) if alert["details"] is not None else None, alert["source_table"],
         alert["source_id"], alert["triggered_at"], alert["environment"], alert["fingerprint"], alert["dedup_key"],
         Jsonb(alert["tags"]) if alert["tags"] is not None else None, alert["triggered_at"],
         Jsonb(alert["notification_channels"]), alert["last_notified_at"], alert["silence_id"],
         alert["inhibited_by"], kind, alert["triggered_at"], alert["triggered_at"], queue, queue, notify_channel),
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_alerts(conn: psycopg.Connection[Any], *, unresolved: bool = False, severity: str | None = None,
                component: str | None = None, alert_type: str | None = None, include_suppressed: bool = False,
                limit: int = 50) -> list[AlertRecord]:
    where = ["TRUE"]
    params: list[Any] = []
    if unresolved:
        where.append("a.resolved_at IS NULL")
    if not include_suppressed:
        where.append("NOT a.suppressed")
    if severity is not None:
        where.append("a.severity = %s")
        params.append(check_severity(severity))
    if component is not None:
        where.append("a.component = %s")
        params.append(component)
    if alert_type is not None:
        where.append("a.alert_type = %s")
        params.append(alert_type)
    params.append(limit)
    sql = (f"SELECT {SELECT_COLUMNS} FROM alerts a WHERE {' AND '.join(where)} "  # noqa: S608 - fixed fragments
           "ORDER BY a.triggered_at DESC, a.alert_id DESC LIMIT %s")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return [record_from_row(r) for r in cur.fetchall()]


def deliveries(conn: psycopg.Connection[Any], alert_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT outbox_id, channel, kind, status, attempts, next_attempt_at, last_error, created_at, sent_at,"
            " finished_at FROM alert_outbox WHERE alert_id = %s ORDER BY outbox_id", (alert_id,))
        return list(cur.fetchall())


def _when(ts: datetime | None) -> str:
    return ts.isoformat(timespec="seconds") if ts else "?"


def _check_person(field: str, value: str) -> str:
    if not value or not value.strip():
        raise AlertError(f"{field} must name who is doing this")
    if len(value) > 100:
        raise AlertError(f"{field} is longer than 100 characters")
    return value.strip()


def _refuse_suppressed(alert: AlertRecord, verb: str) -> None:
    if alert.suppressed:
        target = f"alert {alert.duplicate_of}" if alert.duplicate_of else "the original alert"
        raise IllegalTransition(
            f"alert {alert.alert_id} is a suppressed repeat (fingerprint {alert.fingerprint}); {verb} {target} instead")


def acknowledge(conn: psycopg.Connection[Any], alert_id: int, by: str, notes: str | None,
                now: datetime) -> AlertRecord:
    by = _check_person("acknowledged by", by)
    with conn.transaction():
        alert = get_alert(conn, alert_id, lock=True)
        _refuse_suppressed(alert, "acknowledge")
        if alert.resolved_at is not None:
            raise IllegalTransition(
                f"alert {alert_id} is already resolved (by {alert.resolved_by} at {_when(alert.resolved_at)}); "
                "a resolved alert cannot be acknowledged")
        if alert.acknowledged_at is not None:
            raise IllegalTransition(
                f"alert {alert_id} is already acknowledged (by {alert.acknowledged_by} at {_when(alert.acknowledged_at)})")
        at = max(now, alert.triggered_at)
        conn.execute(
            "UPDATE alerts SET acknowledged_at = %s, acknowledged_by = %s, acknowledged_notes = %s WHERE alert_id = %s",
            (at, by, notes, alert_id))
        return get_alert(conn, alert_id)


def resolve(conn: psycopg.Connection[Any], alert_id: int, by: str, action: str, notes: str | None,
            now: datetime) -> AlertRecord:
    by = _check_person("resolved by", by)
    if action not in RESOLUTION_ACTIONS:
        raise AlertError(f"resolution action {action!r} is not one of {', '.join(RESOLUTION_ACTIONS)}")
    with conn.transaction():
        alert = get_alert(conn, alert_id, lock=True)
        _refuse_suppressed(alert, "resolve")
        if alert.resolved_at is not None:
            raise IllegalTransition(
                f"alert {alert_id} is already resolved (by {alert.resolved_by} at {_when(alert.resolved_at)}, "
                f"action {alert.resolution_action})")
        if alert.acknowledged_at is None:
            raise IllegalTransition(
                f"alert {alert_id} is not acknowledged yet; acknowledge it first "
                f"(precog alerts ack {alert_id} --by NAME)")
        at = max(now, alert.acknowledged_at)
        conn.execute(
            "UPDATE alerts SET resolved_at = %s, resolved_by = %s, resolved_notes = %s, resolution_action = %s"
            " WHERE alert_id = %s", (at, by, notes, action, alert_id))
        # Reminders for a resolved alert are pointless: cancel the ones still waiting.
        conn.execute(
            "UPDATE alert_outbox SET status = 'cancelled', finished_at = %s, last_error = 'alert resolved'"
            " WHERE alert_id = %s AND status = 'pending' AND kind = 'renotify'", (at, alert_id))
        return get_alert(conn, alert_id)
