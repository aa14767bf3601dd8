"""Circuit breakers (spec 5.4): counters fed by the trading loop, trips that change the trading state.

The trading loop reports what happens (`record_trade_result`, `record_fill`, `record_api_failure`, ...);
each report updates the breakers' counters and trips a breaker exactly when its threshold is reached. A
trip is written to `circuit_breaker_events` (resolved in place later), raises a `critical` alert and moves
the trading state (ACTIVE -> REDUCING or HALTED, see `trading_state`). A breaker resets automatically after
its configured time, when its condition clears (api outage, stale data, balance, order rejections), or by
hand (`precog breakers reset NAME --by WHO`).

| breaker | trips when | action |
|---|---|---|
| daily_loss_limit | today's realized + unrealized loss >= limit ($500) | close all, halt |
| weekly_loss_limit | this week's realized + unrealized loss >= limit ($1,500) | halt |
| consecutive_losses | 5 losing trades in a row | close all, halt |
| rapid_loss | realized loss within 15 min >= $200 | close all, halt |
| api_failures | 5 consecutive failures, or 5 within 5 min | pause entries |
| api_outage | no successful venue call for 300 s (while calls fail) | pause entries |
| data_quality | 3 bad data points within 5 min | pause entries |
| data_stale | data older than 60 s | pause entries |
| db_failures | more than 3 database errors within 60 s | halt everything |
| edge_anomaly | 3 edges >= 0.30 within 10 min | pause entries |
| unusual_activity | 20 trades in 5 min, more than 10 in an hour or 50 in a day | pause entries (rest of hour/day) |
| position_limit | more than 20 open positions | pause entries |
| order_rejections | more than 3 consecutive rejected orders | alert |
| min_balance | balance < $1,000 | pause entries |
| decimal_precision / reconciliation / manual | reported | halt |
| trailing_stop_failure | reported | pause entries |
| immutability_violation | reported | alert |
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb

from precog.alerts.api import AlertRaiser
from precog.domain.money import ZERO, fmt_money
from precog.trading.settings import BreakerSettings
from precog.trading.trading_state import TradingMode, TradingState, TradingStateSnapshot, worst

CLOSE_ALL = "close_all"
HALT = "halt"
PAUSE_ALL = "pause_all"
PAUSE_ENTRIES = "pause_entries"
ALERT = "alert"

log = logging.getLogger(__name__)
OWNER = "breaker_board"
SIMULATION_RUN = "simulation_run"  # trigger_value key: the engine run of the simulated world that tripped it
_SLACK = 0.001  # reset times round-trip through the database at microsecond precision  # trigger_value.source of the events this board writes


@dataclass(frozen=True, slots=True)
class BreakerSpec:
    name: str
    action: str
    trips_when: str
    recovers: bool = False  # resolves itself when the condition clears


SPECS: dict[str, BreakerSpec] = {s.name: s for s in (
    BreakerSpec("daily_loss_limit", CLOSE_ALL, "today's realized + unrealized loss >= daily limit"),
    BreakerSpec("weekly_loss_limit", HALT, "this week's realized + unrealized loss >= weekly limit"),
    BreakerSpec("consecutive_losses", CLOSE_ALL, "N losing trades in a row"),
    BreakerSpec("rapid_loss", CLOSE_ALL, "realized loss inside the rapid-loss window >= limit"),
    BreakerSpec("api_failures", PAUSE_ENTRIES, "N consecutive API failures, or N inside the window"),
    BreakerSpec("api_outage", PAUSE_ENTRIES, "no successful API call for the outage time", recovers=True),
    BreakerSpec("data_quality", PAUSE_ENTRIES, "N bad data points inside the window"),
    BreakerSpec("data_stale", PAUSE_ENTRIES, "data older than the staleness limit", recovers=True),
    BreakerSpec("db_failures", PAUSE_ALL, "more than N database errors inside the window"),
    BreakerSpec("edge_anomaly", PAUSE_ENTRIES, "N edges >= the anomaly edge inside the window"),
    BreakerSpec("unusual_activity", PAUSE_ENTRIES, "trade bursts / more trades per hour or day than allowed"),
    BreakerSpec("position_limit", PAUSE_ENTRIES, "more open positions than allowed"),
    BreakerSpec("order_rejections", ALERT, "more than N consecutive order rejections", recovers=True),
    BreakerSpec("min_balance", PAUSE_ENTRIES, "balance below the minimum to trade", recovers=True),
    BreakerSpec("decimal_precision", HALT, "a money value lost precision"),
    BreakerSpec("immutability_violation", ALERT, "an immutable version was modified"),
    BreakerSpec("trailing_stop_failure", PAUSE_ENTRIES, "a trailing stop could not be updated"),
    BreakerSpec("reconciliation", HALT, "positions/orders disagree with the venue"),
    BreakerSpec("manual", HALT, "an operator halted trading"),
)}

_ACTION_TEXT = {
    CLOSE_ALL: "close all positions and halt",
    HALT: "halt trading",
    PAUSE_ALL: "pause all trading (entries and exits)",
    PAUSE_ENTRIES: "pause new entries (exits continue)",
    ALERT: "alert only",
}


def mode_of(action: str) -> tuple[TradingMode, bool]:
    if action == CLOSE_ALL:
        return TradingMode.HALTED, True
    if action in (HALT, PAUSE_ALL):
        return TradingMode.HALTED, False
    if action == PAUSE_ENTRIES:
        return TradingMode.REDUCING, False
    return TradingMode.ACTIVE, False


class BreakerError(ValueError):
    """Unknown breaker name or an impossible reset; the message says what is valid."""


@dataclass(slots=True)
class OpenBreaker:
    name: str
    event_id: int | None
    triggered_ts: float
    reset_ts: float | None
    action: str
    reason: str
    trigger_value: dict[str, Any] = field(default_factory=dict)
    owned: bool = True  # written by a breaker board (others, e.g. ingestion, resolve their own)
    unsaved: bool = False  # tripped while its event could not be written (the database failing): written later

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "event_id": self.event_id, "action": self.action, "reason": self.reason,
            "triggered_at": datetime.fromtimestamp(self.triggered_ts, UTC),
            "auto_reset_at": datetime.fromtimestamp(self.reset_ts, UTC) if self.reset_ts is not None else None,
            "reset": "automatic" if self.reset_ts is not None else "manual",
        }


class BreakerStore(Protocol):
    def open_event(self, name: str, triggered_at: datetime, trigger_value: dict[str, Any], action: str,
                   auto_reset_at: datetime | None, notes: str) -> int | None: ...

    def resolve_event(self, event_id: int, resolved_at: datetime, resolution: str, by: str, notes: str) -> bool: ...

    def resolve_type(self, name: str, resolved_at: datetime, resolution: str, by: str, notes: str) -> int: ...

    def load_open(self) -> list[OpenBreaker]: ...

    def save_counters(self, name: str, counters: dict[str, Any]) -> None: ...

    def load_counters(self) -> dict[str, dict[str, Any]]: ...


class PgBreakerStore:
    """circuit_breaker_events (append on trip, resolve in place) and breaker_counters (persisted counters)."""

    simulation_run: int | None = None  # the engine run of a simulated world (SimulationBreakerStore)

    def __init__(self, connect: Callable[[], Any], environment: str | None = None) -> None:
        self._connect = connect
        self.environment = environment

    def open_event(self, name: str, triggered_at: datetime, trigger_value: dict[str, Any], action: str,
                   auto_reset_at: datetime | None, notes: str) -> int | None:
        with self._connect() as conn:
            row = conn.execute(
                "INSERT INTO circuit_breaker_events (breaker_type, triggered_at, trigger_value, action, auto_reset_at,"
                " environment, notes) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING event_id",
                (name, triggered_at, Jsonb(trigger_value), action, auto_reset_at, self.environment, notes),
            ).fetchone()
        return int(row[0]) if row else None

    def _own_run(self) -> str | None:
        """The rows this store may resolve: all of them (None); a simulated world's store: only its run's."""
        return None

    def resolve_event(self, event_id: int, resolved_at: datetime, resolution: str, by: str, notes: str) -> bool:
        run = self._own_run()
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE circuit_breaker_events SET resolved_at = GREATEST(%s, triggered_at), resolution_action = %s,"
                " resolved_by = %s, notes = COALESCE(notes || '; ', '') || %s"
                " WHERE event_id = %s AND resolved_at IS NULL AND (%s::text IS NULL OR trigger_value->>%s = %s)",
                (resolved_at, resolution, by, notes, event_id, run, SIMULATION_RUN, run),
            )
            return cur.rowcount > 0

    def resolve_type(self, name: str, resolved_at: datetime, resolution: str, by: str, notes: str) -> int:
        run = self._own_run()
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE circuit_breaker_events SET resolved_at = GREATEST(%s, triggered_at), resolution_action = %s,"
                " resolved_by = %s, notes = COALESCE(notes || '; ', '') || %s"
                " WHERE breaker_type = %s AND resolved_at IS NULL AND (%s::text IS NULL OR trigger_value->>%s = %s)",
                (resolved_at, resolution, by, notes, name, run, SIMULATION_RUN, run),
            )
            return cur.rowcount

    def load_open(self) -> list[OpenBreaker]:
        """The open breakers of the trading account. A simulated world's own trips (tagged SIMULATION_RUN) are
        about money that does not exist: they never halt anyone but that simulation (`simulation_run`)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT event_id, breaker_type, triggered_at, auto_reset_at, action, trigger_value, notes"
                " FROM circuit_breaker_events WHERE resolved_at IS NULL"
                " AND (trigger_value->>%s IS NULL OR trigger_value->>%s = %s) ORDER BY triggered_at",
                (SIMULATION_RUN, SIMULATION_RUN, None if self.simulation_run is None else str(self.simulation_run)),
            ).fetchall()
        out = []
        for event_id, name, triggered, reset_at, action, trigger, notes in rows:
            trigger = dict(trigger or {})
            spec = SPECS.get(name)
            act = action if action in _ACTION_TEXT else (spec.action if spec else HALT)
            out.append(OpenBreaker(name, int(event_id), triggered.timestamp(),
                                   reset_at.timestamp() if reset_at is not None else None, act,
                                   str(trigger.get("reason") or notes or ""), trigger,
                                   owned=trigger.get("source") == OWNER))
        return out

    def save_counters(self, name: str, counters: dict[str, Any]) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO breaker_counters (breaker_type, counters, updated_at) VALUES (%s, %s, now())"
                " ON CONFLICT (breaker_type) DO UPDATE SET counters = EXCLUDED.counters, updated_at = now()",
                (name, Jsonb(counters)),
            )

    def load_counters(self) -> dict[str, dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT breaker_type, counters FROM breaker_counters").fetchall()
        return {r[0]: dict(r[1] or {}) for r in rows}


class SimulationBreakerStore(PgBreakerStore):
    """The breaker store of a simulated world (`precog demo`, `precog run --venue local`): its board follows the
    database's breakers - an operator's `precog halt`, the dashboard, a trip by a real engine - while its own
    trips, counters and clock stay the simulation's.

    * Its trips are written to circuit_breaker_events tagged with the run (SIMULATION_RUN, notes `run N`), so
      the run's report and the dashboard see them, but no other board loads them.
    * Breakers it did not trip are never reset by it: a board's automatic reset in simulated time (which runs
      ahead of the wall clock) would lift a real engine's breaker early. Their owner or an operator resets them;
      one whose automatic reset has passed on the wall clock no longer holds it.
    * Counters live in memory: a simulated world starts afresh and never adds to the account's.
    * One connection, kept: a fast simulation re-reads the breakers at nearly every step."""

    def __init__(self, connect: Callable[[], Any], environment: str | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__(self._session, environment)
        self._open_connection = connect
        self._conn: Any = None
        self._wall_clock = wall_clock
        self._counters: dict[str, dict[str, Any]] = {}

    def attach(self, run_id: int) -> None:
        """The engine run this world trades in (known once the engine exists, before it trips anything)."""
        self.simulation_run = run_id

    @contextmanager
    def _session(self) -> Iterator[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._open_connection()
        yield self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> int:
        if self.simulation_run is None:
            raise RuntimeError("attach the simulation's engine run before its board trips or resets a breaker")
        return self.simulation_run

    def open_event(self, name: str, triggered_at: datetime, trigger_value: dict[str, Any], action: str,
                   auto_reset_at: datetime | None, notes: str) -> int | None:
        run = self._run()
        return super().open_event(name, triggered_at, {**trigger_value, SIMULATION_RUN: run}, action, auto_reset_at,
                                  f"run {run}")

    def _own_run(self) -> str | None:
        return str(self._run())  # an operator resets the account's breakers

    def load_open(self) -> list[OpenBreaker]:
        now = self._wall_clock()
        out = []
        for ob in super().load_open():
            if self.simulation_run is not None and ob.trigger_value.get(SIMULATION_RUN) == self.simulation_run:
                out.append(ob)  # this world's own trip: reset by this board, in simulated time
                continue
            if ob.owned and ob.reset_ts is not None and ob.reset_ts <= now:
                continue  # another board's breaker whose reset time has passed: over, whoever resolves the row
            ob.owned = False
            out.append(ob)
        return out

    def save_counters(self, name: str, counters: dict[str, Any]) -> None:
        self._counters[name] = counters

    def load_counters(self) -> dict[str, dict[str, Any]]:
        return dict(self._counters)


def _ts(dt_ts: float) -> datetime:
    return datetime.fromtimestamp(dt_ts, UTC)


class BreakerBoard:
    """All circuit breakers of one trading process; thread-safe; `clock` injectable for tests."""

    def __init__(self, settings: BreakerSettings | None = None, *, store: BreakerStore | None = None,
                 state: TradingState | None = None, alerts: AlertRaiser | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or BreakerSettings()
        self.store = store
        self.state = state if state is not None else TradingState()
        self.alerts = alerts
        self.clock = clock
        self._tz = ZoneInfo(self.settings.timezone)
        self._lock = threading.RLock()
        self._open: dict[str, OpenBreaker] = {}
        self._next_reset = float("inf")
        self._mode = TradingMode.ACTIVE
        self._block_text: str | None = None
        # counters
        self._pnl: deque[tuple[float, Decimal]] = deque()  # realized results, kept 8 days
        self._pnl_version = 0  # bumped whenever _pnl changes
        self._pnl_in_order = True  # every result recorded at or after the one before it
        self._local_day: tuple[float, float, float, float] | None = None  # (day start, next day, day, week)
        # loss window -> (_pnl_version, start, inclusive, realized sum, earliest counted close) of its last sum
        self._window_sums: dict[str, tuple[int, float, bool, Decimal, float]] = {}
        self._unrealized = ZERO
        self._consecutive_losses = 0
        self._api_consecutive = 0
        self._api_failures: deque[float] = deque()
        self._api_streak_start: float | None = None  # first failure since the last success
        self._baseline: dict[str, tuple[float, Decimal]] = {}  # loss breaker -> (reset time, unrealized then)
        self._data_bad: deque[float] = deque()
        self._db_errors: deque[float] = deque()
        self._anomalies: deque[float] = deque()
        self._trades: deque[float] = deque()  # kept 1 day
        self._rejections = 0
        if store is not None:
            self.restore()

    # ------------------------------------------------------------ state
    def restore(self) -> None:
        """Load open breakers and persisted counters (after a restart)."""
        if self.store is None:
            return
        with self._lock:
            counters = self.store.load_counters()
            loss = counters.get("losses", {})
            self._consecutive_losses = int(loss.get("consecutive", 0))
            self._pnl = deque((float(ts), Decimal(str(v))) for ts, v in loss.get("events", []))
            self._pnl_version += 1
            self._pnl_in_order = all(a[0] <= b[0] for a, b in zip(self._pnl, list(self._pnl)[1:], strict=False))
            self._trades = deque(float(ts) for ts in counters.get("trades", {}).get("ts", []))
            windows = counters.get("windows", {})
            self._anomalies = deque(float(t) for t in windows.get("anomalies", []))
            self._data_bad = deque(float(t) for t in windows.get("data_bad", []))
            self._api_failures = deque(float(t) for t in windows.get("api_failures", []))
            self._api_consecutive = int(windows.get("api_consecutive", 0))
            streak = windows.get("api_streak_start")
            self._api_streak_start = float(streak) if streak is not None else None
            self._rejections = int(windows.get("rejections", 0))
            self._open = {ob.name: ob for ob in self.store.load_open()}
            self._recompute("restored open breakers", "system", None)
        self.refresh()

    def refresh(self, now: float | None = None) -> None:
        """Pick up trips/resets made by other processes (CLI, ingestion) and apply automatic resets."""
        now = self.clock() if now is None else now
        if self.store is not None:
            self._save_unsaved()
            stored = self.store.load_open()
            self.state.reload()
            with self._lock:
                merged: dict[str, OpenBreaker] = {}
                for ob in stored:
                    mine = self._open.get(ob.name)
                    merged[ob.name] = mine if mine is not None and mine.event_id == ob.event_id else ob
                before = {n: o.event_id for n, o in self._open.items()}
                self._open = merged
                if before != {n: o.event_id for n, o in merged.items()}:
                    self._recompute("breakers changed in the database", "system", None)
        self._auto_reset(now)

    @property
    def mode(self) -> TradingMode:
        return self._mode

    def current(self) -> TradingStateSnapshot:
        return self.state.current()

    def open_breakers(self) -> list[OpenBreaker]:
        with self._lock:
            return sorted(self._open.values(), key=lambda b: b.triggered_ts)

    def is_open(self, name: str) -> bool:
        return name in self._open

    def entry_block(self, now: float) -> str | None:
        """None when new entries may be placed; otherwise why not (the risk manager's first check)."""
        if now >= self._next_reset - _SLACK:
            self._auto_reset(now)
        return self._block_text

    def allows_exits(self, *, forced: bool = False) -> bool:
        return self.state.current().allows_exits(forced=forced)

    def _recompute(self, reason: str, by: str, event_id: int | None) -> None:
        mode, liquidate = TradingMode.ACTIVE, False
        blocking = []
        for ob in self._open.values():
            m, liq = mode_of(ob.action)
            if m is not TradingMode.ACTIVE:
                blocking.append(ob.name)
            mode = worst(mode, m)
            liquidate = liquidate or liq
        self._mode = mode
        names = tuple(sorted(blocking))
        self._block_text = None if mode is TradingMode.ACTIVE else f"trading {mode.value} by {', '.join(names)}"
        resets = [ob.reset_ts for ob in self._open.values() if ob.reset_ts is not None and ob.owned]
        self._next_reset = min(resets) if resets else float("inf")
        self.state.set(mode, liquidate=liquidate, reason=reason, by=by, blocking=names,
                       at=_ts(self.clock()), event_id=event_id)

    # ------------------------------------------------------------ trip / reset
    def trip(self, name: str, reason: str, *, trigger_value: dict[str, Any] | None = None, by: str = "system",
             now: float | None = None, reset_ts: float | None = None) -> OpenBreaker | None:
        """Trip `name` (recorded, alerted, state changed). Returns None when it was already open."""
        spec = SPECS.get(name)
        if spec is None:
            raise BreakerError(f"unknown breaker {name!r} (known: {', '.join(SPECS)})")
        now = self.clock() if now is None else now
        with self._lock:
            if name in self._open:
                return None
            if reset_ts is None and name in self.settings.reset_seconds:
                reset_ts = now + self.settings.reset_seconds[name]
            trigger = {"source": OWNER, "reason": reason, "tripped_by": by, **(trigger_value or {})}
            event_id = None
            unsaved = False
            if self.store is not None:
                try:
                    event_id = self.store.open_event(name, _ts(now), trigger, spec.action,
                                                     _ts(reset_ts) if reset_ts is not None else None, reason)
                except Exception as exc:  # noqa: BLE001 - the trip must hold even when the database is what fails
                    log.warning("breaker %s tripped but its event could not be written yet: %s", name, exc)
                    unsaved = True
            ob = OpenBreaker(name, event_id, now, reset_ts, spec.action, reason, trigger, unsaved=unsaved)
            self._open[name] = ob
            self._recompute(f"{name} tripped: {reason}", by, event_id)
        self._alert_trip(ob)
        return ob

    def _save_unsaved(self) -> None:
        """Write the events of breakers tripped while the database failed (and the trading state they set), so
        other processes see them and `precog breakers reset` can resolve them. Raises while it still fails."""
        with self._lock:
            pending = [ob for ob in self._open.values() if ob.unsaved]
            assert self.store is not None
            for ob in pending:
                ob.event_id = self.store.open_event(
                    ob.name, _ts(ob.triggered_ts), ob.trigger_value, ob.action,
                    _ts(ob.reset_ts) if ob.reset_ts is not None else None, ob.reason)
                ob.unsaved = False
            if pending:
                log.warning("breaker events written after the database recovered: %s",
                            ", ".join(ob.name for ob in pending))
            last = pending[-1].event_id if pending else None
        self.state.save_pending(last)

    def reset(self, name: str, *, by: str, notes: str = "manual reset", now: float | None = None,
              resolution: str = "manual_reset") -> bool:
        """Resolve an open breaker (every open event of its type). Returns False when it was not open."""
        return bool(self.reset_many([name], by=by, notes=notes, now=now, resolution=resolution))

    def reset_many(self, names: list[str], *, by: str, notes: str = "manual reset", now: float | None = None,
                   resolution: str = "manual_reset") -> list[str]:
        """Resolve several open breakers with one trading-state change; returns those that were open."""
        for name in names:
            if name not in SPECS:
                raise BreakerError(f"unknown breaker {name!r} (known: {', '.join(SPECS)})")
        now = self.clock() if now is None else now
        done: list[str] = []
        with self._lock:
            last_event = None
            for name in names:
                ob = self._open.pop(name, None)
                if ob is None:
                    continue
                if self.store is not None:
                    if resolution == "manual_reset":
                        self.store.resolve_type(name, _ts(now), resolution, by, notes)
                    elif ob.event_id is not None:
                        self.store.resolve_event(ob.event_id, _ts(now), resolution, by, notes)
                self._on_reset(name, now)
                done.append(name)
                last_event = ob.event_id
            if done:
                self._recompute(f"{', '.join(done)} reset by {by}: {notes}", by, last_event)
        return done

    def _on_reset(self, name: str, now: float) -> None:
        """Counting starts afresh after a reset, so the next single event does not re-trip at once."""
        if name in ("daily_loss_limit", "weekly_loss_limit", "rapid_loss"):
            self._baseline[name] = (now, self._unrealized)
        elif name == "consecutive_losses":
            self._consecutive_losses = 0
            self._save_losses()
        elif name == "db_failures":
            self._db_errors.clear()
        elif name in ("api_failures", "api_outage", "data_quality", "edge_anomaly", "order_rejections"):
            if name == "api_failures":
                self._api_consecutive = 0
                self._api_failures.clear()
            elif name == "api_outage":
                self._api_streak_start = None
            elif name == "data_quality":
                self._data_bad.clear()
            elif name == "edge_anomaly":
                self._anomalies.clear()
            else:
                self._rejections = 0
            self._save_windows()

    def _auto_reset(self, now: float) -> None:
        with self._lock:
            due = [ob for ob in self._open.values()
                   if ob.reset_ts is not None and ob.reset_ts <= now + _SLACK and ob.owned]
        for ob in due:
            held = (ob.reset_ts if ob.reset_ts is not None else now) - ob.triggered_ts
            self.reset(ob.name, by="system", notes=f"automatic reset after {held:.0f} s", now=now,
                       resolution="auto_reset")
        with self._lock:
            pending = [ob.reset_ts for ob in self._open.values() if ob.reset_ts is not None and ob.owned]
            self._next_reset = min(pending) if pending else float("inf")

    def _recover(self, name: str, notes: str, now: float) -> None:
        if name in self._open and self._open[name].owned:
            self.reset(name, by="system", notes=notes, now=now, resolution="recovered")

    def _alert_trip(self, ob: OpenBreaker) -> None:
        if self.alerts is None:
            return
        reset = (f"automatic reset at {_ts(ob.reset_ts).isoformat(timespec='seconds')}" if ob.reset_ts is not None
                 else f"manual reset: precog breakers reset {ob.name} --by NAME")
        self.alerts.raise_alert(
            "circuit_breaker", "critical", "trading",
            f"circuit breaker {ob.name} TRIPPED: {ob.reason}; action: {_ACTION_TEXT[ob.action]}; {reset}",
            {k: v for k, v in ob.trigger_value.items() if k != "source"},
            source_table="circuit_breaker_events" if ob.event_id is not None else None, source_id=ob.event_id,
            dedup_key=f"circuit_breaker:{ob.name}:{ob.event_id if ob.event_id is not None else ob.triggered_ts}",
            category="risk",
        )

    # ------------------------------------------------------------ windows
    def _day_start(self, now: float) -> float:
        return self._day_and_week(now)[0]

    def _week_start(self, now: float) -> float:
        return self._day_and_week(now)[1]

    def _day_and_week(self, now: float) -> tuple[float, float]:
        """The starts of the board's local day and week holding `now` (kept for the rest of that day: the loss
        checks ask on every cycle)."""
        cached = self._local_day
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2], cached[3]
        midnight = datetime.fromtimestamp(now, self._tz).replace(hour=0, minute=0, second=0, microsecond=0)
        day = midnight.timestamp()
        week = (midnight - timedelta(days=midnight.weekday())).timestamp()
        self._local_day = (day, (midnight + timedelta(days=1)).timestamp(), day, week)
        return day, week

    def result_left_window(self, since: float, until: float, window: float) -> bool:
        """Whether a realized result left a trailing `window` of seconds between `since` and `until` (a result
        at `at` with since < at + window <= until): the rapid-loss figure then changed with time alone."""
        if self._pnl_in_order:  # newest first, stopping at the results that had left it by `since`
            for at, _ in reversed(self._pnl):
                end = at + window
                if end <= since:
                    return False
                if end <= until:
                    return True
            return False
        return any(since < at + window <= until for at, _ in self._pnl)

    def next_result_leaving(self, since: float, window: float) -> float:
        """The first time after `since` at which a realized result leaves a trailing `window` of seconds (the
        smallest `at + window` > since); infinity when none will. `result_left_window(since, t, window)` is
        True exactly for t at or after it."""
        if self._pnl_in_order:  # the oldest result still inside the window by `since` leaves first
            first = float("inf")
            for at, _ in reversed(self._pnl):
                end = at + window
                if end <= since:
                    break
                first = end
            return first
        return min((at + window for at, _ in self._pnl if at + window > since), default=float("inf"))

    def _next_hour(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self._tz).replace(minute=0, second=0, microsecond=0)
        return (local + timedelta(hours=1)).timestamp()

    def _next_day(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self._tz).replace(hour=0, minute=0, second=0, microsecond=0)
        return (local + timedelta(days=1)).timestamp()

    @staticmethod
    def _prune(window: deque[float], since: float) -> None:
        """Drop events before `since` (kept: since <= ts)."""
        while window and window[0] < since:
            window.popleft()

    @staticmethod
    def _keep_within(window: deque[float], now: float, seconds: float) -> None:
        """Keep only events strictly inside the last `seconds` (now - seconds < ts)."""
        cutoff = now - seconds
        while window and window[0] <= cutoff:
            window.popleft()

    def _save(self, name: str, counters: Callable[[], dict[str, Any]]) -> None:
        """Persist a counter set so a restarted (or another short-lived) process continues counting. A failure
        to save never stops the report that caused it (the database may be what is failing). `counters` builds
        the set (days of history): only when there is a store to save it to."""
        if self.store is None:
            return
        try:
            self.store.save_counters(name, counters())
        except Exception as exc:  # noqa: BLE001 - counting must go on in memory
            log.warning("could not persist breaker counters %s: %s", name, exc)

    def _save_losses(self) -> None:
        self._save("losses", lambda: {"consecutive": self._consecutive_losses,
                                      "events": [[ts, str(v)] for ts, v in self._pnl]})

    def _save_windows(self) -> None:
        self._save("windows", lambda: {
            "anomalies": list(self._anomalies), "data_bad": list(self._data_bad),
            "api_failures": list(self._api_failures), "api_consecutive": self._api_consecutive,
            "api_streak_start": self._api_streak_start, "rejections": self._rejections})

    # ------------------------------------------------------------ what the trading loop reports
    def losses(self, now: float | None = None) -> dict[str, Decimal]:
        """Current loss figures (positive = money lost), each counted from its window start or its last reset."""
        now = self.clock() if now is None else now
        starts = {"daily_loss_limit": self._day_start(now), "weekly_loss_limit": self._week_start(now),
                  "rapid_loss": now - self.settings.rapid_loss_seconds}
        out: dict[str, Decimal] = {}
        for name, start in starts.items():
            inclusive = name != "rapid_loss"  # days/weeks include their first instant; "within 15 min" does not
            unrealized = self._unrealized if name != "rapid_loss" else ZERO
            base = self._baseline.get(name)
            if base is not None and base[0] >= start:
                start, inclusive = base[0], False
                if name != "rapid_loss":
                    unrealized -= base[1]
            realized = self._realized_since(name, start, inclusive)
            out[name] = -(realized + unrealized)
        out["consecutive_losses"] = Decimal(self._consecutive_losses)
        return out

    def _realized_since(self, window: str, start: float, inclusive: bool) -> Decimal:
        """Realized P&L closed after `start` (or at it, when `inclusive`). The last sum of a window stands while
        no result was added and its start has not passed the earliest close it counted (starts move forward
        with the clock, so nothing it left out can come back in)."""
        last = self._window_sums.get(window)
        if last is not None:
            version, start0, inclusive0, total, first = last
            if version == self._pnl_version and inclusive0 == inclusive and start0 <= start \
                    and (start < first or (inclusive and start == first)):
                return total
        total, first = ZERO, math.inf
        for ts, v in self._pnl:
            if ts > start or (inclusive and ts == start):
                total += v
                first = min(first, ts)
        self._window_sums[window] = (self._pnl_version, start, inclusive, total, first)
        return total

    def record_trade_result(self, pnl: Decimal, *, at: float | None = None) -> list[OpenBreaker]:
        """A position closed or settled with realized `pnl` (negative = loss)."""
        now = self.clock() if at is None else at
        with self._lock:
            if self._pnl and now < self._pnl[-1][0]:
                self._pnl_in_order = False
            self._pnl.append((now, pnl))
            self._pnl_version += 1
            while self._pnl and self._pnl[0][0] < now - 8 * 86400:
                self._pnl.popleft()
            if pnl < ZERO:
                self._consecutive_losses += 1
            elif pnl > ZERO:
                self._consecutive_losses = 0
            self._save_losses()
        trips = self._check_losses(now)
        n = self._consecutive_losses
        if n >= self.settings.consecutive_losses:
            ob = self.trip("consecutive_losses", f"{n} losing trades in a row (limit {self.settings.consecutive_losses})",
                           trigger_value={"consecutive_losses": n}, now=now)
            if ob:
                trips.append(ob)
        return trips

    def record_pnl(self, unrealized: Decimal, *, at: float | None = None) -> list[OpenBreaker]:
        """The current mark-to-market P&L of open positions (counts toward the daily and weekly loss)."""
        now = self.clock() if at is None else at
        self._unrealized = unrealized
        return self._check_losses(now)

    def _check_losses(self, now: float) -> list[OpenBreaker]:
        s = self.settings
        loss = self.losses(now)
        trips = []
        for name, value, limit, label in (("daily_loss_limit", loss["daily_loss_limit"], s.daily_loss_limit,
                                           "daily loss"),
                                          ("weekly_loss_limit", loss["weekly_loss_limit"], s.weekly_loss_limit,
                                           "weekly loss"),
                                          ("rapid_loss", loss["rapid_loss"], s.rapid_loss_dollars,
                                           f"loss within {s.rapid_loss_seconds // 60} min")):
            if value >= limit:
                ob = self.trip(name, f"{label} {fmt_money(value)} >= limit {fmt_money(limit)}",
                               trigger_value={"loss": value, "limit": limit}, now=now)
                if ob:
                    trips.append(ob)
        return trips

    def record_fill(self, *, at: float | None = None) -> OpenBreaker | None:
        """One of our trades executed (unusual-activity counters)."""
        now = self.clock() if at is None else at
        s = self.settings
        with self._lock:
            self._trades.append(now)
            self._prune(self._trades, now - 86400)
            self._save("trades", lambda: {"ts": list(self._trades)})
            burst = sum(1 for ts in self._trades if ts > now - s.unusual_burst_seconds)
            hour = sum(1 for ts in self._trades if ts > now - 3600)
            day_start = self._day_start(now)
            day = sum(1 for ts in self._trades if ts >= day_start)
        if burst >= s.unusual_burst_trades:
            return self.trip("unusual_activity", f"{burst} trades within {s.unusual_burst_seconds // 60} min",
                             trigger_value={"trades": burst}, now=now, reset_ts=self._next_hour(now))
        if day > s.max_trades_per_day:
            return self.trip("unusual_activity", f"{day} trades today (max {s.max_trades_per_day})",
                             trigger_value={"trades": day}, now=now, reset_ts=self._next_day(now))
        if hour > s.max_trades_per_hour:
            return self.trip("unusual_activity", f"{hour} trades within an hour (max {s.max_trades_per_hour})",
                             trigger_value={"trades": hour}, now=now, reset_ts=now + 3600)
        return None

    def record_api_failure(self, detail: str = "", *, at: float | None = None) -> OpenBreaker | None:
        now = self.clock() if at is None else at
        s = self.settings
        with self._lock:
            self._api_consecutive += 1
            self._api_failures.append(now)
            self._keep_within(self._api_failures, now, s.api_failures_window_seconds)
            if self._api_streak_start is None:
                self._api_streak_start = now
            consecutive, windowed, streak_start = self._api_consecutive, len(self._api_failures), self._api_streak_start
            self._save_windows()
        tripped = None
        if consecutive >= s.api_failures_consecutive or windowed >= s.api_failures_in_window:
            tripped = self.trip("api_failures", f"{consecutive} consecutive API failures, {windowed} within "
                                f"{s.api_failures_window_seconds // 60} min (last: {detail})",
                                trigger_value={"consecutive": consecutive, "in_window": windowed}, now=now)
        if now - streak_start >= s.api_outage_seconds:
            outage = self.trip("api_outage", f"API calls failing for {now - streak_start:.0f} s (last: {detail})",
                               trigger_value={"seconds": now - streak_start}, now=now)
            tripped = tripped or outage
        return tripped

    def record_api_success(self, *, at: float | None = None) -> None:
        now = self.clock() if at is None else at
        with self._lock:
            changed = self._api_consecutive != 0 or self._api_streak_start is not None
            self._api_consecutive = 0
            self._api_streak_start = None
            if changed:
                self._save_windows()
        self._recover("api_outage", "API calls succeed again", now)

    def record_db_error(self, detail: str = "", *, at: float | None = None) -> OpenBreaker | None:
        now = self.clock() if at is None else at
        s = self.settings
        with self._lock:
            self._db_errors.append(now)
            self._keep_within(self._db_errors, now, s.db_errors_window_seconds)
            n = len(self._db_errors)
        if n > s.db_errors_per_window:
            return self.trip("db_failures", f"{n} database errors within {s.db_errors_window_seconds} s (last: {detail})",
                             trigger_value={"errors": n}, now=now)
        return None

    def record_data_quality_failure(self, detail: str = "", *, at: float | None = None) -> OpenBreaker | None:
        """One bad data point (`detail` names the market and the defect): the engine's data path counts every
        payload it refuses (precog.engine.data_watch); ingestion has its own data breaker (precog.ingest.breaker)."""
        now = self.clock() if at is None else at
        s = self.settings
        with self._lock:
            self._data_bad.append(now)
            self._keep_within(self._data_bad, now, s.data_quality_window_seconds)
            n = len(self._data_bad)
            self._save_windows()
        if n >= s.data_quality_bad_points:
            return self.trip("data_quality", f"{n} bad data points within {s.data_quality_window_seconds // 60} min "
                             f"(last: {detail})", trigger_value={"bad_points": n}, now=now)
        return None

    def record_data_age(self, age_seconds: float, *, what: str = "data", at: float | None = None
                        ) -> OpenBreaker | None:
        """The age of the oldest data in use (`what` says which): trips past data_stale_seconds, recovers at or
        under it. One call per cycle with the worst age (a fresher second report would end the trip)."""
        now = self.clock() if at is None else at
        if age_seconds > self.settings.data_stale_seconds:
            return self.trip("data_stale", f"{what} is {age_seconds:.0f} s old (max {self.settings.data_stale_seconds} s)",
                             trigger_value={"age_seconds": age_seconds, "what": what}, now=now)
        self._recover("data_stale", f"{what} fresh again", now)
        return None

    def record_edge(self, edge: Decimal, *, ticker: str = "", at: float | None = None) -> OpenBreaker | None:
        """Feed every computed edge >= the anomaly threshold (others are ignored cheaply)."""
        s = self.settings
        if edge < s.edge_anomaly_min_edge:
            return None
        now = self.clock() if at is None else at
        with self._lock:
            self._anomalies.append(now)
            self._keep_within(self._anomalies, now, s.edge_anomaly_window_seconds)
            n = len(self._anomalies)
            self._save_windows()
        if n >= s.edge_anomaly_count:
            return self.trip("edge_anomaly", f"{n} edges >= {s.edge_anomaly_min_edge} within "
                             f"{s.edge_anomaly_window_seconds // 60} min (last {edge} on {ticker})",
                             trigger_value={"count": n, "last_edge": edge, "ticker": ticker}, now=now)
        return None

    def record_open_positions(self, count: int, *, at: float | None = None) -> OpenBreaker | None:
        now = self.clock() if at is None else at
        if count > self.settings.max_open_positions:
            return self.trip("position_limit", f"{count} open positions (max {self.settings.max_open_positions})",
                             trigger_value={"open_positions": count}, now=now)
        return None

    def record_order_rejected(self, detail: str = "", *, at: float | None = None) -> OpenBreaker | None:
        now = self.clock() if at is None else at
        with self._lock:
            self._rejections += 1
            n = self._rejections
            self._save_windows()
        if n > self.settings.order_rejections_consecutive:
            return self.trip("order_rejections", f"{n} consecutive order rejections (last: {detail})",
                             trigger_value={"consecutive": n}, now=now)
        return None

    def record_order_accepted(self, *, at: float | None = None) -> None:
        now = self.clock() if at is None else at
        with self._lock:
            if self._rejections:
                self._rejections = 0
                self._save_windows()
        self._recover("order_rejections", "an order was accepted", now)

    def record_balance(self, balance: Decimal, *, at: float | None = None) -> OpenBreaker | None:
        now = self.clock() if at is None else at
        if balance < self.settings.min_balance:
            return self.trip("min_balance", f"balance {fmt_money(balance)} below minimum "
                             f"{fmt_money(self.settings.min_balance)}", trigger_value={"balance": balance}, now=now)
        self._recover("min_balance", f"balance {fmt_money(balance)} back above the minimum", now)
        return None

    def record_invariant_violation(self, kind: str, detail: str, *, at: float | None = None) -> OpenBreaker | None:
        """decimal_precision, immutability_violation, trailing_stop_failure or reconciliation."""
        if kind not in ("decimal_precision", "immutability_violation", "trailing_stop_failure", "reconciliation"):
            raise BreakerError(f"unknown invariant breaker {kind!r}")
        return self.trip(kind, detail, now=self.clock() if at is None else at)
