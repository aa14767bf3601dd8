"""The notifier: delivers queued notifications from the outbox, with retries, rate limits and reminders.

* `deliver_pending()` — one synchronous pass over every channel with due rows (used by the CLI and tests).
* `run(stop)` / `start()` — a worker per channel (so a slow SMTP server never delays Slack) woken by
  PostgreSQL NOTIFY when alerts are queued, and by a poll timer for retries and re-notifications.
* `run_async(stop)` — the same as an asyncio task (the engine's supervisor awaits it).

Exactly-once as far as a network allows: each row is claimed with FOR UPDATE SKIP LOCKED and its `sent`
mark is committed in the transaction holding the claim, right after the send returns. The only window
for a repeat is a crash after the remote side accepted the message and before that commit (a few
milliseconds); the row is then still pending and is sent again. HTTP channels carry the outbox id
(X-Precog-Delivery, Message-ID for email) so receivers can drop such a repeat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from precog.alerts import outbox, ratelimit, spool, store
from precog.alerts.channels.base import Channel, ChannelSet, DeliveryError, Notification
from precog.alerts.channels.registry import build_channels, describe_problems
from precog.alerts.clock import Clock, SystemClock
from precog.alerts.inhibition import inhibiting_alert, rules_for
from precog.alerts.model import CHANNELS, PAGING_SEVERITIES, AlertRecord, check_severity
from precog.alerts.redact import Redactor, install_log_redaction
from precog.alerts.settings import AlertSettings
from precog.alerts.silences import Silence, active_silences, matching_silence
from precog.db.connection import DatabaseUnavailable, connect, database_url

log = logging.getLogger(__name__)

BATCH_LOCAL = 200
_DB_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnavailable)


@dataclass
class _SpoolReplay:
    """When the running notifier next tries to replay the spool (backing off while that fails)."""

    next_at: float = 0.0
    failures: int = 0

    def maybe(self, notifier: Notifier) -> None:
        if time.monotonic() < self.next_at or not spool.waiting(notifier.spool_path):
            return
        try:
            notifier.replay_spool()
            self.failures = 0
        except Exception as exc:  # noqa: BLE001 - the spool keeps every alert; tried again later
            self.failures += 1
            log.warning("could not replay the alert spool %s yet: %s", notifier.spool_path,
                        notifier.redactor.redact(str(exc)))
        # Also while another process is replaying it: look again a little later.
        self.next_at = time.monotonic() + min(5.0 * 2 ** self.failures, 300.0)


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    alert_id: int
    channel: str
    kind: str
    status: str      # sent | retry | failed | rate_limited | silenced | inhibited | cancelled | skipped
    detail: str
    attempts: int


@dataclass
class DeliveryReport:
    outcomes: list[Outcome] = field(default_factory=list)
    renotified: int = 0

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            per = out.setdefault(o.channel, {})
            per[o.status] = per.get(o.status, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"renotified": self.renotified, "counts": self.counts(),
                "outcomes": [asdict(o) for o in self.outcomes]}


class Notifier:
    def __init__(self, db_url: str | None = None, *, settings: AlertSettings | None = None,
                 channels: ChannelSet | None = None, clock: Clock | None = None,
                 environ: Mapping[str, str] | None = None, console: Console | None = None,
                 home: Path | None = None, spool_path: Path | None = None) -> None:
        self.url = db_url or database_url()
        self.settings = settings or AlertSettings.load(self.url)
        self.clock: Clock = clock or SystemClock()
        self.spool_path = spool_path or spool.default_spool_path()
        env = dict(os.environ if environ is None else environ)
        self._env = env
        self.redactor = Redactor.from_env(env)
        install_log_redaction(self.redactor)
        self.channel_set = channels or build_channels(self.settings, env, redactor=self.redactor, console=console,
                                                      home=home)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sync_lock = threading.Lock()
        self._sync_conns: dict[str, psycopg.Connection[Any]] = {}
        for line in self.problems:
            log.warning("notification channel misconfigured: %s", line)
        for ch, routes in self.settings.routed_but_disabled().items():
            if ch in CHANNELS and ch not in ("database",):
                log.info("channel %s is routed (%s) but disabled; those notifications are skipped", ch, ", ".join(routes))

    @property
    def channels(self) -> dict[str, Channel]:
        return self.channel_set.channels

    @property
    def problems(self) -> list[str]:
        """One readable line per enabled-but-misconfigured channel, naming the missing variable."""
        return describe_problems(self.channel_set.problems)

    def _connect(self) -> psycopg.Connection[Any]:
        return connect(self.url, autocommit=True)

    # ------------------------------------------------------------------ one synchronous pass
    def deliver_pending(self, channels: Iterable[str] | None = None) -> DeliveryReport:
        """Queue due reminders, then deliver every due outbox row once (channels in parallel). Returns outcomes."""
        with self._sync_lock:
            try:
                report = DeliveryReport(renotified=self.schedule_renotifications(self._sync_conn("_control")))
                pending = outbox.pending_counts(self._sync_conn("_control"))
                names = [n for n in (channels or self.channels) if n in self.channels and pending.get(n)]
                if len(names) == 1:
                    report.outcomes.extend(self._drain(self._sync_conn(names[0]), names[0]))
                elif names:
                    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="precog-notify") as pool:
                        for outcomes in pool.map(lambda n: self._drain(self._sync_conn(n), n), names):
                            report.outcomes.extend(outcomes)
                return report
            except _DB_ERRORS:
                self._close_sync_conns()
                raise

    drain = deliver_pending

    def _sync_conn(self, key: str) -> psycopg.Connection[Any]:
        """Connections kept between deliver_pending() calls (one per channel, used by one thread at a time)."""
        conn = self._sync_conns.get(key)
        if conn is None or conn.closed:
            conn = self._sync_conns[key] = self._connect()
        return conn

    def _close_sync_conns(self) -> None:
        for conn in self._sync_conns.values():
            conn.close()
        self._sync_conns.clear()

    def close(self) -> None:
        """Close kept connections and channel clients."""
        with self._sync_lock:
            self._close_sync_conns()
        self.channel_set.close()

    def _drain(self, conn: psycopg.Connection[Any], name: str, *, only_ids: list[int] | None = None,
               stop: threading.Event | None = None,
               on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        channel = self.channels[name]
        limit = BATCH_LOCAL if channel.batchable else 1
        retried: list[int] = []
        outcomes: list[Outcome] = []
        while stop is None or not stop.is_set():
            now = self.clock.now()
            with conn.transaction():
                rows = outbox.claim(conn, name, now, limit=limit, only_ids=only_ids, skip_ids=retried)
                if not rows:
                    break
                silences = active_silences(conn, now)
                batch = [self._deliver_one(conn, name, channel, row, silences) for row in rows]
            for o in batch:
                if o.status == "retry":
                    retried.append(o.outbox_id)
                if on_outcome is not None:
                    on_outcome(o)
            outcomes.extend(batch)
        return outcomes

    def _deliver_one(self, conn: psycopg.Connection[Any], name: str, channel: Channel, row: dict[str, Any],
                     silences: list[Silence]) -> Outcome:
        alert = outbox.alert_of(row)
        kind: str = row["kind"]
        oid: int = row["outbox_id"]
        attempts: int = row["attempts"]
        now = self.clock.now()

        def close(status: str, detail: str, *, error_status: str | None = None) -> Outcome:
            outbox.finish(conn, oid, status=status, attempts=attempts, now=now, error=detail)
            outbox.record_on_alert(conn, alert.alert_id, name, sent=False, attempted=False, now=now,
                                   error={"channel": name, "at": now, "status": error_status or status,
                                          "error": detail, "delivery_id": oid})
            return Outcome(oid, alert.alert_id, name, kind, status, detail, attempts)

        if kind != "test":
            if not self.settings.enabled.get(name, False):
                return close("failed", f"channel {name} is disabled (system.notifications.{name}.enabled)")
            if kind == "renotify" and (alert.resolved_at is not None or (
                    alert.acknowledged_at is not None and not self.settings.renotify_acknowledged)):
                outbox.finish(conn, oid, status="cancelled", attempts=attempts, now=now,
                              error=f"alert {alert.state} before the reminder went out")
                return Outcome(oid, alert.alert_id, name, kind, "cancelled", f"alert {alert.state}", attempts)
            silence = matching_silence(silences, alert.alert_type, alert.component, alert.severity)
            if silence is not None:
                conn.execute("UPDATE alerts SET silence_id = COALESCE(silence_id, %s) WHERE alert_id = %s",
                             (silence.silence_id, alert.alert_id))
                return close("silenced", f"silenced by silence #{silence.silence_id} ({silence.describe()}) "
                                         f"until {silence.ends_at.isoformat(timespec='seconds')}")
            if rules_for(self.settings.inhibit_rules, alert.alert_type):
                inhibitor = inhibiting_alert(
                    conn, self.settings.inhibit_rules, alert_type=alert.alert_type, now=now,
                    exclude_id=alert.alert_id,
                    fields={"component": alert.component, "environment": alert.environment, "category": alert.category})
                if inhibitor is not None:
                    conn.execute("UPDATE alerts SET inhibited_by = COALESCE(inhibited_by, %s) WHERE alert_id = %s",
                                 (inhibitor, alert.alert_id))
                    return close("inhibited", f"inhibited by firing alert #{inhibitor}")
        rate = self.settings.rate_limits.get(name)
        reason = ratelimit.limit_reason(conn, name, rate, now)
        if reason is not None:
            ratelimit.record_send(conn, name, now, oid, limited=True)
            log.warning("alert %s not sent through %s: %s", alert.alert_id, name, reason)
            return close("rate_limited", reason)

        attempt = attempts + 1
        delivered_before = tuple(row["delivered_to"] or ())
        try:
            result = channel.send(Notification(oid, kind, alert, attempt, delivered_before))
        except DeliveryError as exc:
            return self._failed(conn, name, alert, kind, oid, attempt, self.redactor.redact(str(exc)),
                                permanent=exc.permanent, delivered_to=exc.delivered_to)
        except Exception as exc:  # noqa: BLE001 - a broken channel must not stop the others
            text = self.redactor.redact(f"{type(exc).__name__}: {exc}")
            return self._failed(conn, name, alert, kind, oid, attempt, text, permanent=False, delivered_to=())
        done = self.clock.now()
        # Sent to some recipients while others refused for good: kept as the delivery's error, not retried.
        error = self.redactor.redact(result.error) if result.error else None
        outbox.finish(conn, oid, status="sent", attempts=attempt, now=done, error=error,
                      delivered_to=result.delivered_to or None)
        if rate is not None:
            ratelimit.record_send(conn, name, done, oid)
        outbox.record_on_alert(conn, alert.alert_id, name, sent=True, attempted=True, now=done,
                               error=None if error is None else {
                                   "channel": name, "at": done, "status": "sent", "attempt": attempt,
                                   "error": error, "delivery_id": oid})
        if error is not None:
            log.warning("alert %s via %s sent, but: %s", alert.alert_id, name, error)
        return Outcome(oid, alert.alert_id, name, kind, "sent", self.redactor.redact(result.detail), attempt)

    def _failed(self, conn: psycopg.Connection[Any], name: str, alert: AlertRecord, kind: str, oid: int,
                attempt: int, error: str, *, permanent: bool, delivered_to: tuple[str, ...]) -> Outcome:
        done = self.clock.now()
        final = permanent or kind == "test" or attempt >= self.settings.retry.max_attempts
        if final:
            outbox.finish(conn, oid, status="failed", attempts=attempt, now=done, error=error,
                          delivered_to=delivered_to or None)
            status, detail = "failed", error
        else:
            delay = self.settings.retry.delay_after(attempt)
            outbox.finish(conn, oid, status="pending", attempts=attempt, now=done, error=error,
                          next_attempt_at=done + timedelta(seconds=delay), delivered_to=delivered_to or None)
            status, detail = "retry", f"{error} (attempt {attempt}/{self.settings.retry.max_attempts}, next in {delay:g} s)"
        outbox.record_on_alert(conn, alert.alert_id, name, sent=False, attempted=True, now=done,
                               error={"channel": name, "at": done, "attempt": attempt, "error": error,
                                      "final": final, "delivery_id": oid})
        log.warning("alert %s via %s failed (attempt %d%s): %s", alert.alert_id, name, attempt,
                    ", giving up" if final else "", error)
        return Outcome(oid, alert.alert_id, name, kind, status, detail, attempt)

    # ------------------------------------------------------------------ re-notification
    def schedule_renotifications(self, conn: psycopg.Connection[Any] | None = None) -> int:
        """Queue reminders for unresolved critical/high alerts not notified for renotify_minutes."""
        if conn is None:
            with self._connect() as own:
                return self.schedule_renotifications(own)
        now = self.clock.now()
        cutoff = now - timedelta(minutes=self.settings.renotify_minutes)
        queued = 0
        with conn.transaction():
            rows = conn.execute(
                "SELECT alert_id, alert_type, severity, component, category, environment FROM alerts a"
                " WHERE resolved_at IS NULL AND NOT suppressed AND severity = ANY(%s)"
                " AND (%s OR acknowledged_at IS NULL) AND COALESCE(last_notified_at, triggered_at) <= %s"
                " AND NOT EXISTS (SELECT 1 FROM alert_outbox o WHERE o.alert_id = a.alert_id AND o.status = 'pending')"
                " ORDER BY triggered_at LIMIT 500 FOR UPDATE SKIP LOCKED",
                (list(PAGING_SEVERITIES), self.settings.renotify_acknowledged, cutoff)).fetchall()
            if not rows:
                return 0
            silences = active_silences(conn, now)
            for alert_id, alert_type, severity, component, category, environment in rows:
                routes = [ch for ch in self.settings.routes(alert_type, severity) if ch != "database"]
                quiet = matching_silence(silences, alert_type, component, severity) is not None or (
                    rules_for(self.settings.inhibit_rules, alert_type) and inhibiting_alert(
                        conn, self.settings.inhibit_rules, alert_type=alert_type, now=now, exclude_id=alert_id,
                        fields={"component": component, "environment": environment, "category": category}))
                if quiet or not routes:
                    conn.execute("UPDATE alerts SET last_notified_at = %s WHERE alert_id = %s", (now, alert_id))
                    continue
                outbox.enqueue(conn, alert_id, routes, kind="renotify", now=now)
                conn.execute("UPDATE alerts SET last_notified_at = %s, renotify_count = renotify_count + 1"
                             " WHERE alert_id = %s", (now, alert_id))
                queued += 1
            ratelimit.prune(conn, now)
        return queued

    # ------------------------------------------------------------------ test notifications
    def send_test(self, channels: list[str], *, severity: str = "critical") -> tuple[int, list[Outcome]]:
        """Store a test alert and deliver it right now through `channels` (rate limits apply, no retries)."""
        check_severity(severity)
        now = self.clock.now()
        queue = [ch for ch in channels if ch in self.channels]
        with self._connect() as conn:
            with conn.transaction():
                alert_id = store.insert_alert(
                    conn, alert_type="notification_test", severity=severity, category="system",
                    component="alerts_cli", details={"channels": channels}, source_table=None, source_id=None,
                    message=f"Test notification from `precog alerts test` ({self.settings.environment}); no action needed.",
                    triggered_at=now, environment=self.settings.environment, fingerprint=None, dedup_key=None,
                    tags={"test": True}, notification_channels={"database": True} if "database" in channels else {},
                    last_notified_at=now, silence_id=None, inhibited_by=None)
                ids = outbox.enqueue(conn, alert_id, queue, kind="test", now=now)
            outcomes: list[Outcome] = []
            for ch, oid in zip(queue, ids, strict=True):
                outcomes.extend(self._drain(conn, ch, only_ids=[oid]))
            if "database" in channels:
                outcomes.append(Outcome(0, alert_id, "database", "test", "sent", f"stored as alert #{alert_id}", 1))
            with conn.transaction():
                conn.execute(
                    "UPDATE alerts SET acknowledged_at = %s, acknowledged_by = 'precog alerts test', resolved_at = %s,"
                    " resolved_by = 'precog alerts test', resolution_action = 'ignored',"
                    " resolved_notes = 'test notification' WHERE alert_id = %s", (now, now, alert_id))
        return alert_id, outcomes

    # ------------------------------------------------------------------ long-running worker
    def run(self, stop: threading.Event | None = None, *,
            on_outcome: Callable[[Outcome], None] | None = None) -> None:
        """Deliver until `stop` is set: one worker thread per channel plus a LISTEN/poll loop here."""
        stop = stop or self._stop
        poll = self.settings.worker_poll_seconds
        wake = {name: threading.Event() for name in self.channels}
        workers = [threading.Thread(target=self._channel_loop, args=(name, stop, wake[name], on_outcome),
                                    name=f"precog-notify-{name}", daemon=True) for name in self.channels]
        for w in workers:
            w.start()
        listener: psycopg.Connection[Any] | None = None
        last_scan = 0.0
        failures = 0
        replay = _SpoolReplay()
        try:
            while not stop.is_set():
                try:
                    if listener is None:
                        listener = self._connect()
                        listener.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                    if time.monotonic() - last_scan >= poll:
                        last_scan = time.monotonic()
                        if self.schedule_renotifications():
                            for e in wake.values():
                                e.set()
                        # The database answers: alerts spooled during an outage (by any process) go in now.
                        replay.maybe(self)
                    woke = False
                    # Short slices so a stop request is honoured quickly.
                    for _ in listener.notifies(timeout=min(poll, 0.25), stop_after=1):
                        woke = True
                    if woke:
                        for e in wake.values():
                            e.set()
                    failures = 0
                except _DB_ERRORS as exc:
                    failures += 1
                    log.error("notifier lost the database: %s", self.redactor.redact(str(exc)))
                    if listener is not None:
                        listener.close()
                        listener = None
                    stop.wait(min(2 ** failures, 30))
        finally:
            for e in wake.values():
                e.set()
            for w in workers:
                w.join(timeout=60)
            if listener is not None:
                listener.close()
            self.channel_set.close()

    def replay_spool(self) -> int:
        """Raise the alerts spooled while the database was unreachable (through an AlertManager, so dedup
        applies; the spool file is claimed atomically, so no alert is replayed twice). Returns how many."""
        if not spool.waiting(self.spool_path):
            return 0
        from precog.alerts.manager import AlertManager

        with AlertManager(self.url, settings=self.settings, clock=self.clock, environ=self._env,
                          spool_path=self.spool_path, replay_spool=False, pool_max=1) as manager:
            return manager.replay_spool()

    def _channel_loop(self, name: str, stop: threading.Event, wake: threading.Event,
                      on_outcome: Callable[[Outcome], None] | None) -> None:
        poll = self.settings.worker_poll_seconds
        conn: psycopg.Connection[Any] | None = None
        failures = 0
        while not stop.is_set():
            wait = poll
            try:
                if conn is None:
                    conn = self._connect()
                self._drain(conn, name, stop=stop, on_outcome=on_outcome)
                due: datetime | None = outbox.next_due(conn, name)
                if due is not None:
                    wait = min(max((due - self.clock.now()).total_seconds(), 0.05), poll)
                failures = 0
            except _DB_ERRORS as exc:
                failures += 1
                log.error("notifier worker %s lost the database: %s", name, self.redactor.redact(str(exc)))
                if conn is not None:
                    conn.close()
                    conn = None
                wait = min(2 ** failures, 30)
            except Exception:  # noqa: BLE001 - log and keep the worker alive
                log.exception("notifier worker %s failed", name)
                wait = poll
            wake.wait(wait)
            wake.clear()
        if conn is not None:
            conn.close()

    def start(self, on_outcome: Callable[[Outcome], None] | None = None) -> threading.Thread:
        """Run the notifier in a background thread (stop with `stop()`)."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), kwargs={"on_outcome": on_outcome},
                                        name="precog-notifier", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    async def run_async(self, stop: asyncio.Event | None = None) -> None:
        """The notifier as an asyncio task: runs the worker threads until `stop` is set or the task is cancelled."""
        thread_stop = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self.run, thread_stop))
        try:
            if stop is None:
                await asyncio.Event().wait()
            else:
                await stop.wait()
        finally:
            thread_stop.set()
            await asyncio.shield(worker)
