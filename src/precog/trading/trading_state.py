"""The trading state: ACTIVE (entries and exits), REDUCING (exits only) or HALTED (no orders).

HALTED with `liquidate` set is the daily-loss / consecutive-loss case of spec 5.4: no new entries and no
discretionary orders, but the forced close-all exits that the breaker ordered may run. Every change is
appended to `trading_state_history` with who, when and why, so the current state and its history survive
restarts and are visible to every process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)


class TradingMode(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


_RANK = {TradingMode.ACTIVE: 0, TradingMode.REDUCING: 1, TradingMode.HALTED: 2}


def worst(a: TradingMode, b: TradingMode) -> TradingMode:
    return a if _RANK[a] >= _RANK[b] else b


@dataclass(frozen=True, slots=True)
class TradingStateSnapshot:
    mode: TradingMode
    liquidate: bool
    reason: str
    changed_by: str
    changed_at: datetime
    blocking: tuple[str, ...] = ()

    @property
    def allows_entries(self) -> bool:
        return self.mode is TradingMode.ACTIVE

    def allows_exits(self, *, forced: bool = False) -> bool:
        """Exits run when ACTIVE or REDUCING; when HALTED only the forced liquidation a breaker ordered."""
        if self.mode is not TradingMode.HALTED:
            return True
        return forced and self.liquidate

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "liquidate": self.liquidate, "reason": self.reason,
                "changed_by": self.changed_by, "changed_at": self.changed_at, "blocking": list(self.blocking)}


INITIAL = TradingStateSnapshot(TradingMode.ACTIVE, False, "initial state", "system",
                               datetime(1970, 1, 1, tzinfo=UTC))


class TradingStateStore(Protocol):
    def append(self, snapshot: TradingStateSnapshot, event_id: int | None) -> None: ...

    def latest(self) -> TradingStateSnapshot | None: ...


class PgTradingStateStore:
    """`trading_state_history` rows (append-only)."""

    def __init__(self, connect: Callable[[], Any], environment: str | None = None) -> None:
        self._connect = connect
        self.environment = environment

    def append(self, snapshot: TradingStateSnapshot, event_id: int | None) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO trading_state_history (mode, liquidate, reason, changed_by, blocking, breaker_event_id,"
                " environment, changed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (snapshot.mode.value, snapshot.liquidate, snapshot.reason, snapshot.changed_by,
                 Jsonb(list(snapshot.blocking)), event_id, self.environment, snapshot.changed_at),
            )

    def latest(self) -> TradingStateSnapshot | None:
        with self._connect() as conn:
            rows = history(conn, 1)
        return rows[0] if rows else None


def history(conn: Any, limit: int = 50) -> list[TradingStateSnapshot]:
    rows = conn.execute(
        "SELECT mode, liquidate, reason, changed_by, changed_at, blocking FROM trading_state_history"
        " ORDER BY changed_at DESC, id DESC LIMIT %s", (limit,)).fetchall()
    return [TradingStateSnapshot(TradingMode(r[0]), bool(r[1]), r[2], r[3], r[4], tuple(r[5] or ())) for r in rows]


class TradingState:
    """The process's view of the trading state (the breaker board drives it)."""

    def __init__(self, store: TradingStateStore | None = None) -> None:
        self.store = store
        latest = store.latest() if store is not None else None
        self._current = latest or INITIAL
        self._pending: tuple[TradingStateSnapshot, int | None] | None = None  # set but not recorded yet

    def current(self) -> TradingStateSnapshot:
        return self._current

    def reload(self) -> None:
        """Adopt the newest persisted state (another process may have changed it)."""
        if self.store is not None:
            self.save_pending()
            latest = self.store.latest()
            if latest is not None:
                self._current = latest

    def set(self, mode: TradingMode, *, liquidate: bool, reason: str, by: str, blocking: tuple[str, ...] = (),
            at: datetime | None = None, event_id: int | None = None) -> bool:
        """Change the state (recorded); returns False when nothing changed."""
        cur = self._current
        if cur.mode is mode and cur.liquidate == liquidate and cur.blocking == blocking:
            return False
        snap = TradingStateSnapshot(mode, liquidate, reason, by, at or datetime.now(UTC), blocking)
        self._current = snap  # the state holds in this process even when it cannot be recorded yet
        if self.store is not None:
            try:
                self.store.append(snap, event_id)
            except Exception as exc:  # noqa: BLE001 - a failing database must not undo a halt
                log.warning("trading state %s could not be recorded yet: %s", mode.value, exc)
                self._pending = (snap, event_id)
                return True
            self._pending = None
        return True

    def save_pending(self, event_id: int | None = None) -> None:
        """Record the current state if its row could not be written when it was set (before `reload` would
        replace it with an older row). Raises while the store still fails."""
        if self._pending is not None and self.store is not None:
            snap, known = self._pending
            self.store.append(snap, event_id if event_id is not None else known)
            self._pending = None
