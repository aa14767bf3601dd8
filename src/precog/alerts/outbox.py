"""The durable notification outbox: one alert_outbox row per alert x channel delivery.

Rows are written in the same transaction as the alert. Workers claim due rows with
`SELECT ... FOR UPDATE SKIP LOCKED`, send while holding the claim, and record the outcome (status, attempts,
next_attempt_at, errors, the alert's notification_* columns, rate-limit events) before committing that same
transaction. A crash before the commit releases the claim and leaves the row pending, so it is delivered by
the next worker; a committed `sent` row is never claimed again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.alerts.model import AlertRecord, db_json, db_text
from precog.alerts.store import RECORD_FIELDS

NOTIFY_CHANNEL = "precog_alerts"
MAX_ERRORS_KEPT = 50
# Error texts come from remote servers (an error page, an SMTP reply): stored short and without NUL, which
# PostgreSQL refuses -- a refused UPDATE would roll back the claim and wedge the row at the head of the queue.
MAX_ERROR_CHARS = 1000


def enqueue(conn: psycopg.Connection[Any], alert_id: int, channels: Iterable[str], *, kind: str,
            now: datetime) -> list[int]:
    """Queue one delivery per channel (inside the caller's transaction) and wake listening notifiers."""
    ids: list[int] = []
    for channel in channels:
        row = conn.execute(
            "INSERT INTO alert_outbox (alert_id, channel, kind, status, next_attempt_at, created_at)"
            " VALUES (%s, %s, %s, 'pending', %s, %s) RETURNING outbox_id",
            (alert_id, channel, kind, now, now)).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    if ids:
        # Delivered to LISTENers only when the transaction commits.
        conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(alert_id)))
    return ids


def claim(conn: psycopg.Connection[Any], channel: str, now: datetime, *, limit: int,
          only_ids: Sequence[int] | None = None, skip_ids: Sequence[int] = ()) -> list[dict[str, Any]]:
    """Lock up to `limit` due pending rows of a channel (rows another worker holds are skipped)."""
    where = ["o.channel = %s", "o.status = 'pending'", "o.next_attempt_at <= %s"]
    params: list[Any] = [channel, now]
    if only_ids is not None:
        where.append("o.outbox_id = ANY(%s)")
        params.append(list(only_ids))
    if skip_ids:
        where.append("NOT (o.outbox_id = ANY(%s))")
        params.append(list(skip_ids))
    params.append(limit)
    alert_cols = ", ".join(f"a.{c} AS alert__{c}" for c in RECORD_FIELDS)
    sql = (f"SELECT o.outbox_id, o.kind, o.attempts, o.delivered_to, {alert_cols} "  # noqa: S608 - fixed fragments
           f"FROM alert_outbox o JOIN alerts a ON a.alert_id = o.alert_id WHERE {' AND '.join(where)} "
           "ORDER BY o.next_attempt_at, o.outbox_id LIMIT %s FOR UPDATE OF o SKIP LOCKED")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def alert_of(row: dict[str, Any]) -> AlertRecord:
    return AlertRecord(**{f: row[f"alert__{f}"] for f in RECORD_FIELDS})


def finish(conn: psycopg.Connection[Any], outbox_id: int, *, status: str, attempts: int, now: datetime,
           error: str | None = None, next_attempt_at: datetime | None = None,
           delivered_to: Sequence[str] | None = None) -> None:
    """Record an outcome: status sent/failed/rate_limited/silenced/inhibited/cancelled, or pending (retry)."""
    if error is not None:
        error = db_text(error, MAX_ERROR_CHARS)
    conn.execute(
        "UPDATE alert_outbox SET status = %s, attempts = %s, last_error = %s,"
        " next_attempt_at = COALESCE(%s, next_attempt_at),"
        " delivered_to = COALESCE(%s, delivered_to),"
        " sent_at = CASE WHEN %s = 'sent' THEN %s ELSE sent_at END,"
        " finished_at = CASE WHEN %s = 'pending' THEN NULL ELSE %s END"
        " WHERE outbox_id = %s",
        (status, attempts, error, next_attempt_at, Jsonb(list(delivered_to)) if delivered_to else None,
         status, now, status, now, outbox_id))


def record_on_alert(conn: psycopg.Connection[Any], alert_id: int, channel: str, *, sent: bool, attempted: bool,
                    now: datetime, error: dict[str, Any] | None = None) -> None:
    """Keep the alert's notification_* columns in step with its deliveries."""
    if error:
        error = {k: db_text(v, MAX_ERROR_CHARS) if isinstance(v, str) else db_json(v) for k, v in error.items()}
    conn.execute(
        "UPDATE alerts SET"
        " notification_attempts = notification_attempts + %s,"
        " notification_channels = COALESCE(notification_channels, '{}'::jsonb) || jsonb_build_object(%s::text, %s::boolean"
        "   OR COALESCE((notification_channels ->> %s::text)::boolean, FALSE)),"
        " notification_sent = notification_sent OR %s,"
        " notification_sent_at = CASE WHEN %s THEN COALESCE(notification_sent_at, %s) ELSE notification_sent_at END,"
        " notification_errors = CASE WHEN %s::jsonb IS NULL THEN notification_errors ELSE ("
        "   SELECT CASE WHEN jsonb_array_length(e) > %s THEN e - 0 ELSE e END"
        "   FROM (SELECT COALESCE(notification_errors, '[]'::jsonb) || jsonb_build_array(%s::jsonb) AS e) x) END"
        " WHERE alert_id = %s",
        (1 if attempted else 0, channel, sent, channel, sent, sent, now,
         Jsonb(error) if error else None, MAX_ERRORS_KEPT, Jsonb(error) if error else None, alert_id))


def pending_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("SELECT channel, count(*) FROM alert_outbox WHERE status = 'pending' GROUP BY channel").fetchall()
    return {r[0]: int(r[1]) for r in rows}


def next_due(conn: psycopg.Connection[Any], channel: str) -> datetime | None:
    row = conn.execute("SELECT min(next_attempt_at) FROM alert_outbox WHERE channel = %s AND status = 'pending'",
                       (channel,)).fetchone()
    return row[0] if row else None


