"""The database-backed backtest path made cheaper without changing a single decision.

`precog backtest` runs the live `Engine` (decision, risk, execution and position code) once per event time.
Most of those steps, in a replay, provably change nothing: no order is working, no position is due for a
check, no breaker can move, and every market a method could trade was decided less than a decision
interval ago (the engine re-decides a market at most once per interval). `BacktestEngine.idle` recognises
exactly those steps so the runner can skip them; everything else runs the unchanged live code.

`BacktestPortfolio` keeps a position's mark (current price, unrealized P&L, last check) in memory between
state changes instead of writing a position version on every monitor check that moved the price a cent;
every state change (a fill, a trailing-stop move, an exit, settlement) writes the whole row, mark included,
in one statement, and the marks still in memory are written when the window ends. Nothing reads the
intermediate marks during a replay (the breaker board and entry sizing read the in-memory positions), so
closed and settled rows equal the reference path's to the cent.

`BacktestVenue` is the in-process exchange as a venue (`LocalVenue`) with two conversions cached: a market
snapshot is rebuilt only when the exchange's market changed (its status, top of book, last trade, volume,
open interest or result), and each exchange fill is converted once.

A step is idle at `now` (all must hold; anything unknown means "step"):
- the released events are quotes and in-game states only (a listing, close or result always steps);
- a breaker board is wired; no open breaker's automatic reset falls due and none of them recovers by a
  condition clearing; the board's mode is the engine's trading state; a close-all breaker only with no
  open position (it checks every position on every step);
- no order of ours is working, no exit job is open, no approval or planned entry is reserved;
- no open position is due for its monitor check;
- the last step was on the same breaker-board day and no realized P&L left the rapid-loss window since
  (the only ways a loss breaker can trip with nothing happening);
- periodic reconciliation is not due;
- trading is not ACTIVE (no entry scan runs), or no (method, market) pair could be decided: every ACTIVE
  market in a method's phase was decided less than a decision interval ago.
A skipped step still does what such a step does: the engine's own market refresh, and (while ACTIVE) each
snapshot fed to the volatility tracker the entry sizing reads, and the scan's first act (forgetting a
blocked entry opportunity older than two decision intervals, which a later exit check would read). Reference: `BacktestOptions(fast_path=False)`;
tests require both paths to book the same trades to the cent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import sql

from precog.backtest.feed import QUOTE, STATE, Event
from precog.domain.jsonutil import dumps
from precog.domain.market import Market
from precog.domain.order import Fill
from precog.engine.core import Engine
from precog.engine.local_venue import LocalVenue, convert_fill, convert_market
from precog.ingest import scd2
from precog.trading.breakers import CLOSE_ALL, SPECS
from precog.trading.executor import TERMINAL
from precog.trading.portfolio import Portfolio, PositionState
from precog.venues.exchange import model as xm

_IDLE_KINDS = frozenset((QUOTE, STATE))
log = logging.getLogger(__name__)


class BacktestVenue(LocalVenue):
    """LocalVenue with market snapshots and fills converted once per change (same values, fewer objects)."""

    def __init__(self, exchange: Any, user_id: str, account_ref: str | None = None) -> None:
        super().__init__(exchange, user_id, account_ref)
        self._markets: dict[str, tuple[tuple[Any, ...], Market]] = {}
        self._fills: list[Fill] = []

    async def market(self, ticker: str) -> Market:
        with self.exchange.lock:
            m = self.exchange.market(ticker)
            yes, no = m.book[xm.YES], m.book[xm.NO]
            # every field of the snapshot that can change while a market exists (the rest is set at listing)
            key = (m.status, yes.best, yes.qty[yes.best], no.best, no.qty[no.best], m.last_tick, m.volume,
                   m.open_interest, m.result, m.settlement_value, m.settled_ms, m.close_ms, m.expiration_ms)
            hit = self._markets.get(ticker)
            if hit is not None and hit[0] == key:
                return hit[1]
            snap = convert_market(m)
            self._markets[ticker] = (key, snap)
            return snap

    async def fills(self, since_ms: int | None = None) -> Sequence[Fill]:
        with self.exchange.lock:
            records = self.exchange.account(self.user_id).fills
            done = self._fills
            for r in records[len(done):]:  # the account's history only grows
                done.append(convert_fill(xm.fill_view(r, self.user_id)))
            if since_ms is None:
                return list(done)
            i = len(records)
            while i > 0 and records[i - 1][xm.R_MS] >= since_ms:
                i -= 1
            return done[i:]


# A position's mark: what a monitor check moves on every look at the price. Everything else in its row is state.
_MARK_FIELDS = frozenset(("current_price", "unrealized_pnl", "unrealized_pnl_pct", "last_check_time", "last_update"))


_COLUMNS = scd2.POSITIONS.columns
# One statement per position version: close the current one (if any) and insert the new one. The same rows
# as scd2.write_one (which stages every write through a temporary table: five round trips for one row); the
# INSERT reads `closed` so the UPDATE runs first.
_WRITE_VERSION = sql.SQL(
    "WITH closed AS (UPDATE positions SET row_current_ind = FALSE, row_end_ts = %s "
    "WHERE position_id = %s AND row_current_ind RETURNING 1) "
    "INSERT INTO positions ({cols}, created_at) SELECT {values} FROM (SELECT count(*) FROM closed) c"
).format(cols=sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS),
         values=sql.SQL(", ").join(sql.Placeholder() for _ in range(len(_COLUMNS) + 1)))


def _state_of(pos: PositionState) -> dict[str, Any]:
    """The position's row without its mark (nested dicts copied: the row keeps referring to live objects)."""
    row = pos.row()
    state = {k: v for k, v in row.items() if k not in _MARK_FIELDS}
    meta = state["position_metadata"]
    state["position_metadata"] = {k: list(v) if isinstance(v, list) else v for k, v in meta.items()}
    if state["trailing_stop_state"] is not None:
        state["trailing_stop_state"] = dict(state["trailing_stop_state"])
    return state


class BacktestPortfolio(Portfolio):
    """The Portfolio with a position's mark kept in memory between state changes.

    A monitor check writes a position version whenever the price moved a cent; in a replay nothing reads
    those intermediate marks (the breaker board takes the marks from memory, reconciliation compares
    quantities, the report reads the final rows). So a save that changes only the mark of an open position
    is kept in memory (the position is 'dirty'); any other change (a fill, a trailing-stop move, an exit,
    settlement) writes the full row, mark included, exactly as the live Portfolio does, and
    `flush_marks` writes the dirty marks at the end of the window. Closed and settled rows are therefore
    the reference path's rows; an open position's last row carries its latest mark."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._persisted: dict[int, dict[str, Any]] = {}  # position_id -> state last written
        self._dirty: dict[int, PositionState] = {}
        self.marks_deferred = 0
        super().__init__(*args, **kwargs)

    def load_open(self) -> None:
        super().load_open()
        for pid in list(self._persisted):
            if pid not in self.positions:
                self._persisted.pop(pid)
                self._dirty.pop(pid, None)
        for pid, pos in self.positions.items():
            dirty = self._dirty.get(pid)
            if dirty is not None and _state_of(pos) == self._persisted.get(pid):
                self.positions[pid] = dirty  # reloaded (a reconnect): the row lacks only the mark memory holds
            else:
                self._dirty.pop(pid, None)
                self._persisted[pid] = _state_of(pos)

    def save(self, pos: PositionState, when: datetime | None = None) -> None:
        pid = pos.position_id
        if pos.is_open:
            state = _state_of(pos)
            if self._persisted.get(pid) == state:
                self.marks_deferred += 1
                self._dirty[pid] = pos
                self.positions[pid] = pos
                return
            self._write(pos)
            self._persisted[pid] = state
        elif pid in self._persisted:  # open until now: closing it is a change of the row we wrote
            self._write(pos)
            self._persisted.pop(pid)
            self.positions.pop(pid, None)
        else:
            super().save(pos, when)
        self._dirty.pop(pid, None)

    def _write(self, pos: PositionState) -> None:
        """A new version of a position whose state changed (the caller checked): the live Portfolio.save's row."""
        row = pos.row()
        now = datetime.now(UTC)
        values = [row[c] for c in _COLUMNS]
        for j, c in enumerate(_COLUMNS):
            if c in scd2.POSITIONS.json_columns and values[j] is not None:
                values[j] = dumps(values[j])
        self.conn.execute(_WRITE_VERSION, (now, pos.position_id, *values, now))
        if pos.is_open:
            self.positions[pos.position_id] = pos

    def flush_marks(self) -> int:
        """Write the marks kept in memory (one version per dirty open position); returns how many."""
        dirty, self._dirty = self._dirty, {}
        for pos in dirty.values():
            super().save(pos)
        return len(dirty)


class BacktestEngine(Engine):
    """The live Engine; the method, strategy and model rows are read once per run (nobody edits a replay's
    methods mid-run), and `idle` tells the runner which steps it may skip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_step_at: datetime | None = None
        self.skipped_steps = 0
        # positions whose mark is written only with a state change (see BacktestPortfolio); every holder of
        # the engine's portfolio is pointed at it before anything was booked
        portfolio = BacktestPortfolio(self.conn, self.venue.platform_id, self.mode, self.trailing_config,
                                      self.venue.account_ref)
        self.portfolio = self.executor.portfolio = self.monitor.portfolio = portfolio

    async def stop(self, summary: dict[str, Any] | None = None) -> None:
        await super().stop(summary)
        self.portfolio.flush_marks()  # type: ignore[attr-defined]

    def _sync_entry_risk(self, balance: Any, now: datetime) -> None:
        if self._units_loaded is not None:
            self._units_loaded = now  # loaded at the first decision: keep them
        super()._sync_entry_risk(balance, now)

    async def step(self) -> None:
        self._last_step_at = self.clock()
        await super().step()

    async def idle_step(self, now: datetime) -> None:
        """What a step that `idle` cleared still does: read the markets (the engine's own refresh) and feed
        every snapshot to the volatility tracker, as the entry scan does each cycle before any decision."""
        self.skipped_steps += 1
        await self._refresh_markets()
        tracker = getattr(self, "volatility", None)
        if self.trading_state != "ACTIVE":
            return  # the entry scan (which feeds the tracker) runs only while trading is ACTIVE
        if self._blocked_at is not None and now - self._blocked_at > 2 * self.decision_interval:
            self._blocked_edge = None  # as the scan does first: a blocked opportunity not seen again is gone
        if tracker is None:
            return
        ts = now.timestamp()
        for tm in self.markets.values():
            snap = self.snapshots.get(tm.ticker)
            if snap is not None:
                tracker.observe(tm.ticker, ts, snap.yes_bid, snap.yes_ask)

    def idle(self, now: datetime, released: Iterable[Event]) -> bool:
        """True when a step at `now` would provably change nothing (see the module docstring)."""
        try:
            return self._idle(now, released)
        except AttributeError:  # the engine or board changed shape under us: step (always correct)
            log.warning("idle-step check unavailable; stepping at every event time", exc_info=True)
            return False

    def _idle(self, now: datetime, released: Iterable[Event]) -> bool:
        board = self.board
        last = self._last_step_at
        if last is None or board is None or self.planner is not None:
            return False
        if any(ev.kind not in _IDLE_KINDS for ev in released):
            return False
        if self._approvals or self._planned or self.exits.jobs:
            return False
        if any(rec.status not in TERMINAL for rec in self.executor.open.values()):
            return False
        positions = self.portfolio.open_positions()
        if self.breaker_active and positions:
            return False  # a close-all breaker checks every position on every step
        if any(self.monitor.due(p, now) for p in positions):
            return False
        ts, last_ts = now.timestamp(), last.timestamp()
        # open breakers: an automatic reset falls due, or one that recovers when its condition clears
        if ts >= board._next_reset - 1.0:
            return False
        open_breakers = board.open_breakers()
        if any(b.name not in SPECS or SPECS[b.name].recovers for b in open_breakers):
            return False
        if str(board.mode) != self.trading_state:
            return False  # tripped since the last step: the next step takes the new state
        if any(b.action == CLOSE_ALL for b in open_breakers) != self.breaker_active:
            return False
        # loss breakers move with time only at a new board day/week or when a realized P&L leaves the
        # rapid-loss window
        if board._day_start(ts) != board._day_start(last_ts):
            return False
        window = board.settings.rapid_loss_seconds
        if any(last_ts < at + window <= ts for at, _ in board._pnl):
            return False
        if self._last_reconcile is not None and now - self._last_reconcile >= self.reconcile_interval:
            return False
        if self.trading_state != "ACTIVE":
            return True  # no entry scan runs
        markets = self.venue.exchange.markets  # type: ignore[attr-defined]
        for tm in self.markets.values():
            m = markets.get(tm.ticker)
            if m is None or m.status != xm.ACTIVE:
                continue  # not tradable: the engine would not decide it
            phase = self.probabilities.phase(tm.ticker, now)
            for method in self.methods:
                if method.phase != phase:
                    continue
                decided = self._last_decision.get((method.method_id, tm.ticker))
                if decided is None or now - decided >= self.decision_interval:
                    return False
        return True
