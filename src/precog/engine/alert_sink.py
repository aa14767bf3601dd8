"""Alerts for the trading loop when the full AlertManager is not wired: stored in the `alerts` table.

Implements `precog.alerts.api.AlertRaiser`: one row per distinct dedup key (repeats bump duplicate_count),
so the demo report and `precog alerts` see what the loop raised. Delivery to channels is the AlertManager's
job; `make_alert_raiser` prefers it whenever it is available.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import psycopg

from precog.ingest.scd2 import jsonb

log = logging.getLogger(__name__)


class TableAlertSink:
    def __init__(self, conn: psycopg.Connection[Any], environment: str | None = None) -> None:
        self.conn = conn
        self.environment = environment
        self.raised: list[tuple[str, str, str]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str,
                    details: dict[str, Any] | None = None, *, source_table: str | None = None,
                    source_id: int | None = None, dedup_key: str | None = None,
                    category: str | None = None) -> int | None:
        fingerprint = hashlib.sha256(f"{alert_type}|{component}|{dedup_key or message}".encode()).hexdigest()
        if category not in (None, "risk", "system", "trading", "data"):
            category = "trading"
        log.warning("alert %s [%s] %s: %s", alert_type, severity, component, message)
        with self.conn.transaction():
            # the engine's session commits asynchronously; an alert is waited for until it is on disk
            self.conn.execute("SET LOCAL synchronous_commit = on")
            row = self.conn.execute(
                "UPDATE alerts SET duplicate_count = duplicate_count + 1, last_seen_at = now() "
                "WHERE fingerprint = %s AND resolved_at IS NULL RETURNING alert_id", (fingerprint,)).fetchone()
            if row is not None:
                return int(row[0])
            row = self.conn.execute(
                "INSERT INTO alerts (alert_type, severity, category, component, message, details, source_table, "
                "source_id, fingerprint, environment, last_seen_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now()) RETURNING alert_id",
                (alert_type, severity, category, component[:60], message, jsonb(details or {}), source_table,
                 source_id, fingerprint, self.environment)).fetchone()
        self.raised.append((alert_type, severity, message))
        return int(row[0]) if row else None


def make_alert_raiser(conn: psycopg.Connection[Any], db_url: str, environment: str | None = None) -> Any:
    """The AlertManager when the alerts package provides one, else the table sink."""
    try:
        from precog.alerts.manager import AlertManager
    except ImportError:
        return TableAlertSink(conn, environment)
    try:
        return AlertManager(db_url)
    except Exception as exc:  # noqa: BLE001 - fall back to storing alerts ourselves
        log.warning("AlertManager unavailable (%s); alerts are stored without delivery", exc)
        return TableAlertSink(conn, environment)
