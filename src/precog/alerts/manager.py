"""AlertManager: the one place alerts are raised, deduplicated, silenced, inhibited, routed and queued.

raise_alert never waits for delivery. What it does, and what is durable when it returns:

* First occurrence of a fingerprint in its dedup window (the alert that notifies): the alert row and its
  outbox rows (one per routed channel) are committed in ONE transaction before raise_alert returns.
* A repeat inside the window (same MD5 of type:component:key): found in an in-process cache of open
  windows; its suppressed row and the original's duplicate_count / last_seen_at are group-committed by a
  background flusher (COPY + one UPDATE per batch), normally within `group_commit_ms`; during a storm the
  flusher writes back-to-back and the backlog is whatever PostgreSQL has not absorbed yet. A hard crash
  loses only repeat rows/counters not yet committed, never a notifying alert. `flush()` / `close()` write
  them at once; with group_commit_ms = 0 every repeat is written before raise_alert returns.
* Database unreachable: the alert goes to a local spool file (fsynced) and is raised again once the
  database is back: a background thread retries the replay (and at once after this manager's next
  successful write), so a long-running process needs no restart for it.

Several processes may raise the same fingerprint: the first-occurrence path takes a transaction-level
advisory lock on the fingerprint and looks for an open original, so one window has one original.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from precog.alerts import outbox, spool, store
from precog.alerts.clock import Clock, SystemClock
from precog.alerts.inhibition import inhibiting_alert, rules_for
from precog.alerts.model import (
    CATEGORIES,
    SEVERITIES,
    SEVERITY_RANK,
    AlertError,
    AlertRecord,
    check_severity,
    check_text,
    db_json,
    db_text,
    fingerprint,
)
from precog.alerts.redact import Redactor, install_log_redaction
from precog.alerts.settings import AlertSettings
from precog.alerts.silences import (
    Silence,
    add_silence,
    expire_silence,
    list_silences,
    matching_silence,
    parse_duration,
    parse_matchers,
)
from precog.db.connection import DatabaseUnavailable, database_url
from precog.domain.jsonutil import dumps as json_dumps

log = logging.getLogger(__name__)

_ADVISORY_NAMESPACE = 0x50524543  # "PREC": first key of pg_advisory_xact_lock(int, int)
_ID_BLOCK = 1024
_FLUSH_BATCH = 5000
_SILENCE_CACHE_SECONDS = 1.0
_MAX_BUFFER = 200_000
_BACKLOG_ROWS = 500  # a flush this big means repeats arrive faster than the interval: do not wait
_DB_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnavailable, PoolTimeout)

_DUP_COLUMNS = ("alert_id", "alert_type", "severity", "category", "component", "message", "details", "source_table",
                "source_id", "triggered_at", "environment", "fingerprint", "dedup_key", "tags", "suppressed",
                "duplicate_count", "last_seen_at", "duplicate_of", "notification_channels")


@dataclass(frozen=True)
class _Original:
    alert_id: int
    rank: int
    until: datetime  # end of its dedup window


@dataclass(slots=True)
class _Repeat:
    alert_id: int
    original_id: int
    alert_type: str
    severity: str
    category: str | None
    component: str
    message: str
    details: dict[str, Any] | None
    source_table: str | None
    source_id: int | None
    at: datetime
    fingerprint: str
    dedup_key: str | None
    tags: dict[str, Any] | None
    details_json: str | None  # serialized once, by the producer
    tags_json: str | None


# A reusable encoder runs in C; anything JSON lacks (Decimal, datetime ...) goes through jsonutil (exact strings).
_encode = json.JSONEncoder(default=lambda o: json.loads(json_dumps(o)), separators=(",", ":")).encode


def _without_nul(value: Any, encoded: str | None) -> tuple[Any, str | None]:
    """A JSON value and its encoding, every string cleaned of NUL (jsonb refuses it) when the encoding has one."""
    if encoded is None or "\\u0000" not in encoded:
        return value, encoded
    value = db_json(json.loads(encoded))
    return value, _encode(value)


def _explain_bad_input(alert_type: Any, severity: Any, component: Any, message: Any, details: Any,
                       source_table: Any, category: Any) -> None:
    """Raise the AlertError naming the first bad field."""
    check_text("alert_type", alert_type, 60)
    check_severity(severity)
    check_text("component", component, 60)
    check_text("message", message, 20000)
    if category is not None and category not in CATEGORIES:
        raise AlertError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    if details is not None and not isinstance(details, dict):
        raise AlertError(f"details must be a dict (got {type(details).__name__})")
    if source_table is not None:
        check_text("source_table", source_table, 60)
    raise AlertError("invalid alert")


def _advisory_key(fp: str) -> int:
    return int(fp[:7], 16)  # 28 bits: fits the int4 second key


class AlertManager:
    """Implements precog.alerts.api.AlertRaiser, plus the lifecycle and silence operations."""

    def __init__(self, db_url: str | None = None, *, settings: AlertSettings | None = None,
                 clock: Clock | None = None, environ: Mapping[str, str] | None = None, pool_max: int = 4,
                 spool_path: Path | None = None, replay_spool: bool = True, pool_timeout: float = 10.0,
                 pool_min: int = 1) -> None:
        self.url = db_url or database_url()
        self.settings = settings or AlertSettings.load(self.url)
        self.clock: Clock = clock or SystemClock()
        self.redactor = Redactor.from_env(environ)
        install_log_redaction(self.redactor)
        self.spool_path = spool_path or spool.default_spool_path()
        self._pool = ConnectionPool(self.url, min_size=min(pool_min, pool_max), max_size=pool_max,
                                    timeout=pool_timeout, open=True, name="precog-alerts")
        self._cache: dict[str, _Original] = {}
        self._stripes = [threading.Lock() for _ in range(64)]
        self._buffer: list[_Repeat] = []
        self._buffer_lock = threading.Lock()
        # one flush at a time: a flush returns only once every repeat buffered before it is committed, even when
        # the background flusher had already taken them (read-your-writes for flush(), get(), acknowledge())
        self._flush_lock = threading.Lock()
        self._ids: deque[int] = deque()
        self._id_block = 16
        self._silences: tuple[float, list[Silence]] | None = None
        self._flush_wanted = threading.Event()
        self._flusher: threading.Thread | None = None
        self._flusher_lock = threading.Lock()
        self._closed = False
        self._raised = 0
        self._replayer: threading.Thread | None = None
        self._replay_lock = threading.Lock()
        self._replay_wake = threading.Event()
        atexit.register(self.close)
        if replay_spool and self._spool_waiting():
            # In the background: a database that is still down must not block the component starting up.
            self._ensure_replayer(wait_first=False)

    # ------------------------------------------------------------------ raising
    def raise_alert(self, alert_type: str, severity: str, component: str, message: str,
                    details: dict[str, Any] | None = None, *, source_table: str | None = None,
                    source_id: int | None = None, dedup_key: str | None = None, category: str | None = None,
                    tags: dict[str, Any] | None = None) -> int | None:
        """Store the alert (deduplicated) and queue its notifications; never waits for delivery.

        Returns the new row's alert_id (a suppressed repeat gets its own row id too), or None when the
        database is unreachable and the alert was spooled to disk instead."""
        return self._raise(alert_type, severity, component, message, details, source_table=source_table,
                           source_id=source_id, dedup_key=dedup_key, category=category, tags=tags, at=None,
                           spool_failures=True)

    log_alert = raise_alert  # the spec's name (8.2)

    def _raise(self, alert_type: str, severity: str, component: str, message: str,
               details: dict[str, Any] | None, *, source_table: str | None, source_id: int | None,
               dedup_key: str | None, category: str | None, tags: dict[str, Any] | None,
               at: datetime | None, spool_failures: bool) -> int | None:
        if self._closed:
            raise AlertError("this AlertManager is closed")
        rank = SEVERITY_RANK.get(severity)  # type: ignore[arg-type]
        # One cheap combined test on the hot path; the precise checks below only run to name the problem.
        if (rank is None or type(alert_type) is not str or type(component) is not str or type(message) is not str
                or not 0 < len(alert_type) <= 60 or not 0 < len(component) <= 60 or not 0 < len(message) <= 20000
                or alert_type.isspace() or component.isspace() or message.isspace()
                or (category is not None and category not in CATEGORIES)
                or (details is not None and not isinstance(details, dict))
                or (source_table is not None and (type(source_table) is not str or not 0 < len(source_table) <= 60))):
            _explain_bad_input(alert_type, severity, component, message, details, source_table, category)
        if self.redactor.active:
            message = self.redactor.redact(message)
            if details is not None:
                details = self.redactor.redact_obj(details)  # type: ignore[assignment]
        message = db_text(message)  # PostgreSQL text cannot hold NUL
        try:
            details_json = _encode(details) if details is not None else None
            tags_json = _encode(tags) if tags is not None else None
        except (TypeError, ValueError) as exc:
            raise AlertError(f"details/tags must be JSON-serializable: {exc}") from None
        # Nor can jsonb: a NUL anywhere (e.g. a raw response body in details) would lose the whole alert.
        details, details_json = _without_nul(details, details_json)
        tags, tags_json = _without_nul(tags, tags_json)
        now = at or self.clock.now()
        fp = fingerprint(alert_type, component, dedup_key if dedup_key is not None else message)
        window = self.settings.window_minutes(alert_type)
        assert rank is not None
        try:
            if window > 0:
                original = self._cache.get(fp)
                if original is not None and now < original.until and rank >= original.rank:
                    return self._buffer_repeat(_Repeat(
                        self._next_id(), original.alert_id, alert_type, severity, category, component, message,
                        details, source_table, source_id, now, fp, dedup_key, tags, details_json, tags_json))
            fields: dict[str, Any] = dict(
                alert_type=alert_type, severity=severity, category=category, component=component, message=message,
                details=details, source_table=source_table, source_id=source_id, at=now, fingerprint=fp,
                dedup_key=dedup_key, tags=tags, details_json=details_json, tags_json=tags_json)
            with self._stripes[hash(fp) % len(self._stripes)]:
                if window > 0:
                    original = self._cache.get(fp)
                    if original is not None and now < original.until and rank >= original.rank:
                        return self._buffer_repeat(_Repeat(alert_id=self._next_id(), original_id=original.alert_id,
                                                           **fields))
                alert_id = self._raise_first(fields, window, rank)
            self._database_reached()
            return alert_id
        except _DB_ERRORS as exc:
            if not spool_failures:
                raise
            self._spool(dict(alert_type=alert_type, severity=severity, category=category, component=component,
                             message=message, details=details, source_table=source_table, source_id=source_id,
                             at=now, fingerprint=fp, dedup_key=dedup_key, tags=tags), exc)
            return None

    def _buffer_repeat(self, repeat: _Repeat) -> int:
        with self._buffer_lock:
            self._buffer.append(repeat)
            size = len(self._buffer)
        if self.settings.group_commit_ms <= 0 or size >= _MAX_BUFFER:
            # Synchronous mode, or back-pressure: a storm PostgreSQL cannot absorb slows producers down
            # instead of growing memory without bound.
            self.flush()
        else:
            if self._flusher is None:
                self._ensure_flusher()
            if size >= _FLUSH_BATCH and not self._flush_wanted.is_set():
                self._flush_wanted.set()
        return repeat.alert_id

    def _raise_first(self, fields: dict[str, Any], window: int, rank: int, *, alert_id: int | None = None,
                     repeats: list[_Repeat] | None = None) -> int:
        """Insert the first occurrence (or find an open original elsewhere). `alert_id`: the id to give the row
        (a buffered repeat raised again as a new occurrence); `repeats`: collect a repeat there instead of
        buffering it (the flusher, which must not re-enter flush())."""
        now: datetime = fields["at"]
        fp: str = fields["fingerprint"]
        silences = self._active_silences(now)
        found: _Original | None = None
        # Pipeline mode: BEGIN + lock + lookup travel together, then the one insert statement, then COMMIT.
        with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            if window > 0:
                # Separate statements on purpose: the lookup's snapshot must be taken after the lock is held.
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_ADVISORY_NAMESPACE, _advisory_key(fp)))
                row = conn.execute(
                    "SELECT alert_id, severity, triggered_at FROM alerts WHERE fingerprint = %s AND NOT suppressed"
                    " AND resolved_at IS NULL AND triggered_at > %s AND triggered_at <= %s"
                    " AND array_position(%s::text[], severity::text) - 1 <= %s"
                    " ORDER BY triggered_at DESC LIMIT 1",
                    (fp, now - timedelta(minutes=window), now, list(SEVERITIES), rank)).fetchone()
                if row is not None:
                    # An open original (raised by another process, or before this process started): this alert
                    # is a repeat of it, written like every other repeat (after this read-only transaction).
                    found = _Original(int(row[0]), SEVERITY_RANK[row[1]], row[2] + timedelta(minutes=window))
            if found is None:
                alert_id = self._insert_original(conn, fields, silences, alert_id)
        if found is not None:
            self._cache[fp] = found
            repeat = _Repeat(alert_id=alert_id or self._next_id(), original_id=found.alert_id, **fields)
            if repeats is not None:
                repeats.append(repeat)
                return repeat.alert_id
            return self._buffer_repeat(repeat)
        assert alert_id is not None
        if window > 0:
            self._cache[fp] = _Original(alert_id, rank, now + timedelta(minutes=window))
        self._raised += 1
        if self._raised % 10000 == 0:
            self._sweep_cache(now)
        return alert_id

    def _insert_original(self, conn: psycopg.Connection[Any], fields: dict[str, Any], silences: list[Silence],
                         alert_id: int | None = None) -> int:
        """Insert a notifying alert with its outbox rows (inside the caller's transaction)."""
        now: datetime = fields["at"]
        alert_type: str = fields["alert_type"]
        silence = matching_silence([s for s in silences if s.active_at(now)], alert_type, fields["component"],
                                   fields["severity"])
        inhibitor = None
        if silence is None and rules_for(self.settings.inhibit_rules, alert_type):
            inhibitor = inhibiting_alert(
                conn, self.settings.inhibit_rules, alert_type=alert_type, now=now,
                fields={"component": fields["component"], "environment": self.settings.environment,
                        "category": fields["category"]})
        routes = self.settings.routes(alert_type, fields["severity"])
        deliver = [] if (silence or inhibitor) else [ch for ch in routes if ch != "database"]
        channels_state: dict[str, bool] = {ch: False for ch in deliver}
        if "database" in routes:
            channels_state["database"] = True
        return store.insert_alert_queued(
            conn, queue=deliver, kind="initial", notify_channel=outbox.NOTIFY_CHANNEL, alert_id=alert_id,
            alert_type=alert_type, severity=fields["severity"], category=fields["category"],
            component=fields["component"], message=fields["message"], details=fields["details"],
            source_table=fields["source_table"], source_id=fields["source_id"], triggered_at=now,
            environment=self.settings.environment, fingerprint=fields["fingerprint"], dedup_key=fields["dedup_key"],
            tags=fields["tags"], notification_channels=channels_state, last_notified_at=now if deliver else None,
            silence_id=silence.silence_id if silence else None, inhibited_by=inhibitor)

    def _active_silences(self, now: datetime) -> list[Silence]:
        """Silences not yet ended, cached for a second. A silence created by another process in that second is
        still honoured: the notifier checks silences again right before every send."""
        cached = self._silences
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        with self._pool.connection() as conn:
            found = list_silences(conn, now)
        self._silences = (time.monotonic() + _SILENCE_CACHE_SECONDS, found)
        return found

    def _sweep_cache(self, now: datetime) -> None:
        for fp in [fp for fp, o in list(self._cache.items()) if o.until <= now]:
            self._cache.pop(fp, None)

    def _next_id(self, conn: psycopg.Connection[Any] | None = None) -> int:
        """Alert ids for repeats, taken from the alerts sequence in blocks so a repeat needs no round trip.

        No lock: deque.pop is atomic, and two threads refilling at once only leave a gap in the ids (no thread
        ever waits for a pooled connection while holding a lock another connection holder needs)."""
        while True:
            try:
                return self._ids.pop()
            except IndexError:
                pass
            # Blocks grow with use (16 -> 1024) so a quiet process leaves only small gaps in the ids.
            block = self._id_block
            self._id_block = min(block * 2, _ID_BLOCK)
            sql = "SELECT nextval(pg_get_serial_sequence('alerts', 'alert_id')) FROM generate_series(1, %s)"
            if conn is not None:
                rows = conn.execute(sql, (block,)).fetchall()
            else:
                with self._pool.connection() as c:
                    rows = c.execute(sql, (block,)).fetchall()
            self._ids.extend(int(r[0]) for r in reversed(rows))

    def _spool(self, fields: dict[str, Any], exc: BaseException) -> None:
        self._spool_many([fields], exc)

    def _spool_many(self, many: list[dict[str, Any]], exc: BaseException) -> None:
        records = []
        for fields in many:
            record = {k: v for k, v in fields.items() if k not in ("fingerprint", "at", "details_json", "tags_json")}
            record["triggered_at"] = fields["at"]
            records.append(record)
        spool.append_many(self.spool_path, records)
        self._ensure_replayer(wait_first=True)
        first = many[0]
        log.critical("database unavailable (%s); %d alert(s) spooled to %s, e.g. %s/%s: %s",
                     self.redactor.redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
                     len(many), self.spool_path, first["alert_type"], first["component"], first["message"])

    def _spool_waiting(self) -> bool:
        return spool.waiting(self.spool_path)

    def _ensure_replayer(self, *, wait_first: bool) -> None:
        """Replay the spool in a background thread until it is empty (one thread per manager)."""
        with self._replay_lock:
            if self._replayer is not None or self._closed:
                return
            self._replayer = threading.Thread(target=self._replay_until_done, args=(wait_first,),
                                              name="precog-alert-spool", daemon=True)
            self._replayer.start()

    def _database_reached(self) -> None:
        """A write just succeeded: a pending spool replay need not wait for its back-off."""
        if self._replayer is not None:
            self._replay_wake.set()

    def _replay_until_done(self, wait_first: bool) -> None:
        delay = 1.0
        # Right after spooling the database has just failed: wait (or for a successful write) before trying.
        if wait_first:
            self._replay_wake.wait(delay)
        while not self._closed:
            self._replay_wake.clear()
            try:
                self.replay_spool()
            except Exception as exc:  # noqa: BLE001 - retried; the spool keeps every alert meanwhile
                log.warning("could not replay the alert spool %s yet: %s", self.spool_path,
                            self.redactor.redact(str(exc)))
            with self._replay_lock:
                # Checked under the lock _spool_many's start takes, so an alert spooled now is never stranded.
                if self._closed or not self._spool_waiting():
                    self._replayer = None
                    return
            delay = min(delay * 2, 60.0)
            self._replay_wake.wait(delay)

    def replay_spool(self) -> int:
        """Raise spooled alerts again (after a database outage). Returns how many were replayed."""
        if not self._spool_waiting():
            return 0

        def one(rec: dict[str, Any]) -> object:
            return self._raise(rec["alert_type"], rec["severity"], rec["component"], rec["message"],
                               rec.get("details"), source_table=rec.get("source_table"),
                               source_id=rec.get("source_id"), dedup_key=rec.get("dedup_key"),
                               category=rec.get("category"), tags=rec.get("tags"), at=rec.get("triggered_at"),
                               spool_failures=False)

        count = spool.replay(self.spool_path, one)
        self.flush()
        if count:
            log.warning("replayed %d spooled alert(s) from %s", count, self.spool_path)
        return count

    # ------------------------------------------------------------------ group commit of repeats
    def _ensure_flusher(self) -> None:
        if self._flusher is not None:
            return
        with self._flusher_lock:
            if self._flusher is None and not self._closed:
                self._flusher = threading.Thread(target=self._flusher_loop, name="precog-alert-flusher", daemon=True)
                self._flusher.start()

    def _flusher_loop(self) -> None:
        interval = max(self.settings.group_commit_ms, 1) / 1000.0
        failures = 0
        backlog = False
        while True:
            if not backlog:  # under a storm, write the next batch straight away
                self._flush_wanted.wait(interval if failures == 0 else min(interval * 2 ** failures, 5.0))
            self._flush_wanted.clear()
            closing = self._closed
            try:
                written = self.flush()
                backlog = written >= _BACKLOG_ROWS
                failures = 0
            except Exception as exc:  # noqa: BLE001 - keep the thread alive; items were re-queued or spooled
                failures += 1
                backlog = False
                log.error("writing suppressed alert repeats failed: %s", self.redactor.redact(str(exc)))
            if closing:
                return

    def flush(self) -> int:
        """Write buffered suppressed repeats now; on return every repeat buffered before the call is committed (or
        spooled). Returns how many rows this call wrote."""
        with self._flush_lock:
            return self._flush_buffered()

    def _flush_buffered(self) -> int:
        with self._buffer_lock:
            items, self._buffer = self._buffer, []
        if not items:
            return 0
        keep: list[_Repeat] = items
        late: list[_Repeat] = []
        try:
            with self._pool.connection() as conn, conn.transaction():
                keep, late = self._split_late(conn, items)
                resolved = self._write_repeats(conn, keep) if keep else []
            written = len(keep)
            self._database_reached()
        except _DB_ERRORS as exc:
            self._spool_repeats(items, exc)
            return 0
        except psycopg.Error:
            # One unstorable row must not sink the batch: write them one by one.
            resolved, written = [], 0
            for item in keep:
                try:
                    with self._pool.connection() as conn, conn.transaction():
                        resolved += self._write_repeats(conn, [item])
                    written += 1
                except _DB_ERRORS as exc:
                    self._spool_repeats([item], exc)
                except psycopg.Error as exc:
                    log.error("cannot store repeat of alert %s (%s/%s: %s): %s", item.original_id, item.alert_type,
                              item.component, item.message, self.redactor.redact(str(exc)))
        for original_id in resolved:
            for fp, o in list(self._cache.items()):
                if o.alert_id == original_id:
                    self._cache.pop(fp, None)
        for item in sorted(late, key=lambda r: r.at):
            written += self._raise_late(item)
        return written

    def _split_late(self, conn: psycopg.Connection[Any], items: list[_Repeat]) -> tuple[list[_Repeat], list[_Repeat]]:
        """Split buffered repeats into real repeats and those raised after their original was resolved by another
        process (e.g. `precog alerts resolve`; this process's cached window did not know). The latter are new
        occurrences that must notify, not be counted silently on a resolved alert."""
        rows = conn.execute("SELECT alert_id, resolved_at FROM alerts WHERE alert_id = ANY(%s)"
                            " AND resolved_at IS NOT NULL", (list({r.original_id for r in items}),)).fetchall()
        if not rows:
            return items, []
        resolved_at = {int(r[0]): r[1] for r in rows}
        for fp, o in list(self._cache.items()):
            if o.alert_id in resolved_at:
                self._cache.pop(fp, None)
        keep: list[_Repeat] = []
        late: list[_Repeat] = []
        for r in items:
            at = resolved_at.get(r.original_id)
            (late if at is not None and r.at >= at else keep).append(r)
        return keep, late

    def _raise_late(self, item: _Repeat) -> int:
        """Raise a repeat that came after its original's resolution as a new occurrence (keeping the id
        raise_alert returned for it), or as a repeat of a newer open original. Returns rows written.

        No stripe lock here (a raising thread may hold one while it waits for flush()); the advisory lock in
        _raise_first still gives one original per window."""
        fields = {k: getattr(item, k) for k in _Repeat.__slots__ if k not in ("alert_id", "original_id")}
        rank = SEVERITY_RANK[item.severity]
        follow: list[_Repeat] = []
        try:
            original = self._cache.get(item.fingerprint)
            if original is not None and item.at < original.until and rank >= original.rank:
                follow.append(_Repeat(alert_id=item.alert_id, original_id=original.alert_id, **fields))
            else:
                self._raise_first(fields, self.settings.window_minutes(item.alert_type), rank,
                                  alert_id=item.alert_id, repeats=follow)
            if follow:
                with self._pool.connection() as conn, conn.transaction():
                    self._write_repeats(conn, follow)
        except _DB_ERRORS as exc:
            self._spool_repeats([item], exc)
            return 0
        return 1

    def _spool_repeats(self, items: list[_Repeat], exc: BaseException) -> None:
        """Keep repeats durable while the database is away: the spool replays them (as repeats) later."""
        self._spool_many([{k: getattr(item, k) for k in _Repeat.__slots__ if k not in ("alert_id", "original_id")}
                          for item in items], exc)

    def _write_repeats(self, conn: psycopg.Connection[Any], items: list[_Repeat]) -> list[int]:
        """COPY the suppressed rows and add their counts to the originals. Returns originals found resolved."""
        env = self.settings.environment
        with conn.cursor() as cur:
            with cur.copy(f"COPY alerts ({', '.join(_DUP_COLUMNS)}) FROM STDIN") as copy:
                for r in items:
                    copy.write_row((
                        r.alert_id, r.alert_type, r.severity, r.category, r.component, r.message,
                        r.details_json, r.source_table, r.source_id, r.at, env, r.fingerprint, r.dedup_key,
                        r.tags_json, True, 0, r.at, r.original_id, None,
                    ))
            counts: dict[int, list[Any]] = {}
            for r in items:
                entry = counts.get(r.original_id)
                if entry is None:
                    counts[r.original_id] = [1, r.at]
                else:
                    entry[0] += 1
                    if r.at > entry[1]:
                        entry[1] = r.at
            ids = list(counts)
            cur.execute(
                "UPDATE alerts a SET duplicate_count = a.duplicate_count + v.n,"
                " last_seen_at = GREATEST(COALESCE(a.last_seen_at, a.triggered_at), v.ts)"
                " FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) AS v(id, n, ts)"
                " WHERE a.alert_id = v.id RETURNING a.alert_id, a.resolved_at IS NOT NULL",
                (ids, [counts[i][0] for i in ids], [counts[i][1] for i in ids]))
            return [int(row[0]) for row in cur.fetchall() if row[1]]

    # ------------------------------------------------------------------ lifecycle
    def acknowledge(self, alert_id: int, by: str, notes: str | None = None) -> AlertRecord:
        self.flush()
        with self._pool.connection() as conn:
            return store.acknowledge(conn, alert_id, by, notes, self.clock.now())

    def resolve(self, alert_id: int, by: str, action: str, notes: str | None = None) -> AlertRecord:
        self.flush()
        with self._pool.connection() as conn:
            record = store.resolve(conn, alert_id, by, action, notes, self.clock.now())
        if record.fingerprint and (o := self._cache.get(record.fingerprint)) and o.alert_id == alert_id:
            self._cache.pop(record.fingerprint, None)
        return record

    acknowledge_alert = acknowledge
    resolve_alert = resolve

    def get(self, alert_id: int) -> AlertRecord:
        self.flush()  # read-your-writes for buffered repeats
        with self._pool.connection() as conn:
            return store.get_alert(conn, alert_id)

    def unresolved(self, severity: str | None = None, component: str | None = None,
                   limit: int = 1000) -> list[AlertRecord]:
        self.flush()
        with self._pool.connection() as conn:
            return store.list_alerts(conn, unresolved=True, severity=severity, component=component, limit=limit)

    get_unresolved_alerts = unresolved

    @staticmethod
    def calculate_fingerprint(alert_type: str, component: str, key_details: str) -> str:
        return fingerprint(alert_type, component, key_details)

    # ------------------------------------------------------------------ silences
    def silence(self, matches: list[str], duration: str | timedelta, *, by: str, comment: str) -> Silence:
        span = parse_duration(duration) if isinstance(duration, str) else duration
        with self._pool.connection() as conn:
            created = add_silence(conn, parse_matchers(matches), starts_at=self.clock.now(), duration=span,
                                  created_by=by, comment=comment)
        self._silences = None  # this process sees its own silence at once
        return created

    def silences(self, include_inactive: bool = False) -> list[Silence]:
        with self._pool.connection() as conn:
            return list_silences(conn, self.clock.now(), include_inactive=include_inactive)

    def expire_silence(self, silence_id: int, by: str) -> Silence:
        with self._pool.connection() as conn:
            expired = expire_silence(conn, silence_id, by=by, now=self.clock.now())
        self._silences = None
        return expired

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        """Write buffered repeats and release connections (also runs at interpreter exit)."""
        if self._closed:
            return
        self._closed = True
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass
        flusher = self._flusher
        if flusher is not None:
            self._flush_wanted.set()
            flusher.join(timeout=30)
        self._replay_wake.set()  # a waiting spool replayer ends now
        try:
            self.flush()
        finally:
            self._pool.close()
            replayer = self._replayer
            if replayer is not None:
                replayer.join(timeout=5)  # it fails fast on the closed pool; the spool keeps its alerts

    def __enter__(self) -> AlertManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
