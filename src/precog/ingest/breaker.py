"""The data-quality circuit breaker: repeated bad data points pause trading until the data is good again.

system.yaml: `data_quality` trips after 3 bad points and stays open 600 s. A trip is written to
`circuit_breaker_events` (breaker_type 'data_quality', resolved_at NULL while open) and raises a critical
alert, so the trading side sees it either in memory (`DataBreaker.is_open()`) or from the database
(`read_data_breaker(conn)`), even from another process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from precog.alerts.api import AlertRaiser

BREAKER_TYPE = "data_quality"


class BreakerStore(Protocol):
    def open_event(self, trigger_value: dict[str, Any], triggered_at: datetime) -> int | None: ...

    def resolve_event(self, event_id: int, resolved_at: datetime, action: str, notes: str) -> None: ...

    def load_open(self) -> tuple[int, datetime, dict[str, Any]] | None: ...


class PgBreakerStore:
    """circuit_breaker_events rows for the data breaker (append on trip, resolve in place)."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect  # returns a psycopg connection usable as a context manager

    def open_event(self, trigger_value: dict[str, Any], triggered_at: datetime) -> int | None:
        with self._connect() as conn:
            cooldown = float(trigger_value.get("cooldown_seconds", 600))
            row = conn.execute(
                "INSERT INTO circuit_breaker_events"
                " (breaker_type, triggered_at, trigger_value, action, auto_reset_at, notes)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING event_id",
                (BREAKER_TYPE, triggered_at, Jsonb(trigger_value), "pause_trading",
                 triggered_at + timedelta(seconds=cooldown), "tripped by ingestion data-quality checks"),
            ).fetchone()
            return int(row[0]) if row else None

    def resolve_event(self, event_id: int, resolved_at: datetime, action: str, notes: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE circuit_breaker_events SET resolved_at = %s, resolution_action = %s,"
                " notes = COALESCE(notes || '; ', '') || %s WHERE event_id = %s AND resolved_at IS NULL",
                (resolved_at, action, notes, event_id),
            )

    def load_open(self) -> tuple[int, datetime, dict[str, Any]] | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT event_id, triggered_at, trigger_value FROM circuit_breaker_events"
                " WHERE breaker_type = %s AND resolved_at IS NULL ORDER BY triggered_at DESC LIMIT 1",
                (BREAKER_TYPE,),
            ).fetchone()
        if row is None:
            return None
        triggered = row[1] if row[1].tzinfo else row[1].replace(tzinfo=UTC)
        return int(row[0]), triggered, dict(row[2] or {})


@dataclass(frozen=True, slots=True)
class DataBreakerStatus:
    open: bool
    event_id: int | None
    triggered_at: datetime | None
    reopens_at: datetime | None  # when trading may resume if no further bad data arrives
    reason: dict[str, Any]


def read_data_breaker(conn: Any) -> DataBreakerStatus:
    """For the trading side: is the data breaker open right now (from circuit_breaker_events)?"""
    row = conn.cursor(row_factory=tuple_row).execute(
        "SELECT event_id, triggered_at, trigger_value, auto_reset_at FROM circuit_breaker_events"
        " WHERE breaker_type = %s AND resolved_at IS NULL ORDER BY triggered_at DESC LIMIT 1",
        (BREAKER_TYPE,),
    ).fetchone()
    if row is None:
        return DataBreakerStatus(False, None, None, None, {})
    # open until the ingestion process resolves it (it extends the pause while bad data keeps coming)
    return DataBreakerStatus(True, int(row[0]), row[1], row[3], dict(row[2] or {}))


class DataBreaker:
    """CLOSED -> (threshold bad points within window) -> OPEN -> (cooldown without bad points) -> CLOSED.

    Bad points arriving while open extend the cooldown. Thread-safe; `clock` is injectable for tests.
    """

    def __init__(
        self,
        *,
        threshold: int = 3,
        window_seconds: float = 300.0,
        cooldown_seconds: float = 600.0,
        alerts: AlertRaiser | None = None,
        store: BreakerStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.cooldown_seconds = cooldown_seconds
        self.alerts = alerts
        self.store = store
        self.clock = clock
        self._failures: deque[tuple[float, str]] = deque()
        self._opened_at: float | None = None
        self._last_bad: float | None = None
        self._event_id: int | None = None
        self._lock = threading.Lock()

    def restore(self) -> None:
        """Pick up a breaker left open by a previous run (its cooldown continues from the trip time)."""
        if self.store is None:
            return
        found = self.store.load_open()
        if found is None:
            return
        event_id, triggered_at, _ = found
        with self._lock:
            self._event_id = event_id
            self._opened_at = triggered_at.timestamp()
            self._last_bad = triggered_at.timestamp()

    def record_failure(self, check: str, key: str, message: str) -> bool:
        """Count one bad data point. Returns True when this point trips the breaker."""
        now = self.clock()
        with self._lock:
            self._last_bad = now
            if self._opened_at is not None:
                return False
            self._failures.append((now, f"{check}:{key}: {message}"))
            while self._failures and self._failures[0][0] < now - self.window_seconds:
                self._failures.popleft()
            if len(self._failures) < self.threshold:
                return False
            self._opened_at = now
            recent = [text for _, text in self._failures]
            self._failures.clear()
        trigger = {
            "bad_points": len(recent),
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "cooldown_seconds": self.cooldown_seconds,
            "recent": recent[-10:],
        }
        triggered_at = datetime.fromtimestamp(now, UTC)
        event_id = self.store.open_event(trigger, triggered_at) if self.store is not None else None
        with self._lock:
            self._event_id = event_id
        if self.alerts is not None:
            self.alerts.raise_alert(
                "circuit_breaker",
                "critical",
                "ingest",
                f"data-quality breaker OPEN: {len(recent)} bad data points within {self.window_seconds:.0f} s;"
                f" trading on this data should pause for {self.cooldown_seconds:.0f} s",
                trigger,
                source_table="circuit_breaker_events" if event_id is not None else None,
                source_id=event_id,
                dedup_key="circuit_breaker:data_quality",
                category="data",
            )
        return True

    def is_open(self) -> bool:
        """True while tripped; closes itself (and resolves the row) after a quiet cooldown."""
        now = self.clock()
        with self._lock:
            if self._opened_at is None:
                return False
            quiet_since = max(self._opened_at, self._last_bad or self._opened_at)
            if now - quiet_since < self.cooldown_seconds:
                return True
            event_id = self._event_id
            self._opened_at = None
            self._event_id = None
            self._failures.clear()
        if event_id is not None and self.store is not None:
            self.store.resolve_event(
                event_id, datetime.fromtimestamp(now, UTC), "auto_reset",
                f"no bad data for {self.cooldown_seconds:.0f} s",
            )
        return False

    @property
    def state(self) -> str:
        return "open" if self.is_open() else "closed"

    @property
    def event_id(self) -> int | None:
        return self._event_id

    def reset(self, notes: str = "manual reset") -> None:
        with self._lock:
            event_id = self._event_id
            self._opened_at = None
            self._event_id = None
            self._failures.clear()
        if event_id is not None and self.store is not None:
            self.store.resolve_event(event_id, datetime.now(UTC), "manual_reset", notes)
