"""Alerts of the trading loops.

`loop_alerts` is what every trading loop raises alerts through (`precog run --venue local|kalshi`, `precog demo`):
the AlertManager (dedup, silences, secret redaction, the durable outbox and the configured channels), with a
Notifier delivering in the same process unless the caller delivers elsewhere (`--no-notify`: `precog alerts
deliver`). With no channel configured the routes are the always-on ones (console, file, database).

`TableAlertSink` only stores rows (no routing, delivery or redaction): a stand-in for tests that inspect what
a component raised (`.raised`); no command uses it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from precog.ingest.scd2 import jsonb

if TYPE_CHECKING:
    from precog.alerts.manager import AlertManager

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


@contextmanager
def loop_alerts(db_url: str, *, notify: bool = True) -> Iterator[AlertManager]:
    """The AlertManager a trading loop raises through, and (`notify`) a Notifier delivering while it runs.

    On exit the manager writes its buffered repeats and closes; the notifier stops, then makes one last pass so
    what the loop raised in its final moments is delivered now rather than by the next notifier. A manager
    that cannot be built is an error: alerts are never stored without redaction and routing instead."""
    from precog.alerts.manager import AlertManager
    from precog.alerts.notifier import Notifier

    manager = AlertManager(db_url)
    notifier: Notifier | None = None
    try:
        if notify:
            notifier = Notifier(db_url)
            notifier.start()
        yield manager
    finally:
        manager.close()
        if notifier is not None:
            _last_delivery(notifier)


def _last_delivery(notifier: Any) -> None:
    notifier.stop(timeout=10)
    try:
        notifier.deliver_pending()
    except Exception as exc:  # noqa: BLE001 - undelivered rows stay in the outbox for the next notifier
        log.warning("alerts raised at the end of the run are left to the next notifier: %s", exc)
    finally:
        notifier.close()
