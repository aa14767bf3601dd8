"""The database-backed backtest path made cheaper without changing a single decision.

`precog backtest` runs the live `Engine` (decision, risk, execution and position code) at every event time.
The reference cycle looks at every market each time; in a replay almost all of that provably repeats the
last cycle. `BacktestEngine` does the same cycle with the work proportional to what changed:

- reads: a market is read from the venue only when the exchange announced a change to it (an exchange
  listener) or its deferred quote changed; an unchanged market would give the very same snapshot. The
  markets we hold get their price cache entry (which the monitor reads with a freshness limit) stamped with
  the step's time by every step, as the reference's read of every market leaves it; only a step reads that
  cache, so it is not stamped at event times that are not stepped.
- settlements: only a replaced snapshot can newly show a settlement; they are checked in the scan's order.
- volatility: the tracker learns only from a changed mid (`precog.trading.volatility`), so it is fed the
  replaced snapshots, at the time of the cycle that read them, as the reference scan feeds every snapshot.
- entry scan: a (method, market) pair is decided at most once per decision interval. Each market carries the
  time its next pair falls due (a heap); a cycle decides, in the reference's order, only the markets due by
  then, running the reference's per-market code (`Engine._enter_market`). A market with no tradable snapshot
  or no method for its phase waits until it or its game changes (phases move only with the world's events).

A step is idle at `now` (all must hold; anything unknown means "step"):
- the released events are quotes and in-game states only (a listing, close or result always steps), and
  no snapshot read since the last settlement pass shows a settled market;
- a breaker board is wired; no open breaker's automatic reset falls due and none of them recovers by a
  condition clearing; the board's mode is the engine's trading state; a close-all breaker (it checks every
  position on every step) only with no open position, or while its liquidation can only wait: no entry order
  working, every position with a CRITICAL exit working on it and no bid on its side in the quote its last check
  read (`_liquidation_waits`); such a skipped step's checks move only their times, recorded before the next
  step (`PositionMonitor.record_quiet_checks`);
- no planned entry is reserved; every working order of ours reads at the venue exactly as the executor last
  recorded it (no fill since, none waiting to be booked), no entry's timeout and no exit attempt's deadline
  has come, every reserved approval's order is still working, and every exit job without an order is
  waiting for a bid before its deadline, or its exits are held (HALTED without a close-all breaker:
  `Engine._pause_exits`) (what `ExitManager._step_job` would do: nothing);
- no open position is due for its monitor check, and the open positions' marks and count are what the
  breaker board was told last cycle (a check or fill after the board looked moves the loss it weighs);
- the last step was on the same breaker-board day and no realized P&L left the rapid-loss window since
  (the only ways a loss breaker can trip with nothing happening);
- periodic reconciliation is not due;
- trading is not ACTIVE (no entry scan runs), or every decision due only repeats a refusal of the first entry
  checks on the same quote, forecast and trading state (recorded as the scan records it, `_repeat_refusal`).
The checks up to the decisions can change between steps only with time, a fill, or a new snapshot of a market
with one of our orders or exit jobs; once they hold, the verdict is kept until the earliest of the times at
which one of them can turn (a timeout or deadline, a venue expiry, a monitor check, a breaker reset, the
board's next day, a result leaving the rapid-loss window, reconciliation) and dropped by any step, fill or
such snapshot.
A skipped step still does what such a step does: the reads (`refresh`, before the check), and while ACTIVE
the volatility observations and the scan's first act (forgetting a blocked entry opportunity older than two
decision intervals, which a later exit check would read). When everything but a due decision holds, the
step is the entry scan alone: it is the cycle's last act, and all before it was just proven to change nothing.

`BacktestVenue` is the in-process exchange as a venue (`LocalVenue`) with snapshots and fills converted once
per change, over a market maker whose quotes wait (`QuoteMaker` lazy) while only its own orders rest in the
market: a snapshot shows the book the waiting quote would make, and an order or a book read places it first.

`BacktestPortfolio` keeps a position's mark (current price, unrealized P&L, last check) in memory between
state changes instead of writing a position version on every monitor check that moved the price a cent;
every state change (a fill, a trailing-stop move, an exit, settlement) writes the whole row, mark included,
in one statement, and the marks still in memory are written when the window ends. Nothing reads the
intermediate marks during a replay (the breaker board and entry sizing read the in-memory positions), so
closed and settled rows equal the reference path's to the cent.

Reference: `BacktestOptions(fast_path=False)`; tests require both paths to book the same trades, positions
and entry sizes to the cent.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import sql

from precog.backtest.feed import QUOTE, STATE, Event
from precog.backtest.world import UNKNOWN, QuoteMaker
from precog.domain.jsonutil import dumps
from precog.domain.market import Market, MarketStatus, OrderBook
from precog.domain.money import ZERO
from precog.domain.order import Fill, Order, OrderRequest
from precog.engine.core import Engine, TrackedMarket, _Scan
from precog.engine.local_venue import LocalVenue, convert_fill, convert_market, convert_order
from precog.ingest import scd2
from precog.trading.breakers import CLOSE_ALL, SPECS
from precog.trading.executor import TERMINAL
from precog.trading.monitor import side_quotes
from precog.trading.orders import OrderState, state_from_venue
from precog.trading.portfolio import Portfolio, PositionState
from precog.venues.exchange import model as xm

_IDLE_KINDS = frozenset((QUOTE, STATE))
log = logging.getLogger(__name__)


class BacktestVenue(LocalVenue):
    """LocalVenue with market snapshots and fills converted once per change (same values, fewer objects), over
    a market maker whose quotes wait until someone can trade against them (`QuoteMaker.sync`): a snapshot
    shows the waiting quote's top, and an order or a book read places it first."""

    def __init__(self, exchange: Any, user_id: str, account_ref: str | None = None,
                 maker: QuoteMaker | None = None) -> None:
        super().__init__(exchange, user_id, account_ref)
        self.maker = maker
        self._markets: dict[str, tuple[tuple[Any, ...], Market]] = {}
        self._orders: dict[str, tuple[tuple[Any, ...], Order]] = {}
        self._fills: list[Fill] = []

    async def market(self, ticker: str) -> Market:
        with self.exchange.lock:
            m = self.exchange.market(ticker)
            maker = self.maker
            top = maker.top(ticker) if maker is not None and ticker in maker.pending and m.status == xm.ACTIVE \
                else None
            if top is None:
                yes, no = m.book[xm.YES], m.book[xm.NO]
                book: tuple[int, int, int, int] = (yes.best, yes.qty[yes.best], no.best, no.qty[no.best])
            else:
                book = top
            # every field of the snapshot that can change while a market exists (the rest is set at listing)
            key = (m.status, book, m.last_tick, m.volume, m.open_interest, m.result, m.settlement_value,
                   m.settled_ms, m.close_ms, m.expiration_ms)
            hit = self._markets.get(ticker)
            if hit is not None and hit[0] == key:
                return hit[1]
            snap = convert_market(m, top)
            self._markets[ticker] = (key, snap)
            return snap

    async def get_order(self, order_id: str) -> Order:
        """The order as the venue reports it, rebuilt only when one of its changing fields moved (an exit or a
        resting entry is polled on every step)."""
        return self.order_now(order_id)

    def has_unseen_fills(self) -> bool:
        """Whether the account has fills `fills` has not returned yet."""
        with self.exchange.lock:
            return len(self.exchange.account(self.user_id).fills) != len(self._fills)

    def order_now(self, order_id: str) -> Order:
        """`get_order`, synchronously (the idle check compares orders with what the executor last saw)."""
        with self.exchange.lock:
            o = self.exchange.get_order(self.user_id, order_id)
            key = (o.status, o.yes_tick, o.initial_count, o.fill_count, o.remaining, o.taker_fees, o.maker_fees,
                   o.taker_fill_cost, o.maker_fill_cost, o.updated_ms, o.expiration_ms)
            hit = self._orders.get(order_id)
            if hit is not None and hit[0] == key:
                return hit[1]
            order = convert_order(o)
            if o.status == xm.RESTING:
                self._orders[order_id] = (key, order)
            else:  # final: no further poll
                self._orders.pop(order_id, None)
            return order

    async def place_order(self, req: OrderRequest) -> Order:
        if self.maker is not None:
            with self.exchange.lock:
                self.maker.sync(req.ticker)
        return await super().place_order(req)

    async def orderbook(self, ticker: str, depth: int | None = None) -> OrderBook:
        if self.maker is not None:
            with self.exchange.lock:
                self.maker.sync(ticker)
        return await super().orderbook(ticker, depth)

    def take_quoted(self) -> set[str]:
        """Markets whose waiting quote changed since the last call (the exchange did not announce them)."""
        if self.maker is None or not self.maker.changed:
            return set()
        changed, self.maker.changed = self.maker.changed, set()
        return changed

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
            self.closes += 1
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
    """The live Engine, with its per-cycle work over all markets made proportional to what changed (see the
    module docstring); the method, strategy and model rows are read once per run (nobody edits a replay's
    methods mid-run), and `idle` tells the runner which steps it may skip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_step_at: datetime | None = None
        self._board_saw: tuple[Any, int] | None = None
        self._settlement_seen = False  # a snapshot read since the last settlement pass shows a settled market
        self._refreshed_at: datetime | None = None
        self.skipped_steps = 0
        self.scan_only_steps = 0
        self._scan_only_at: datetime | None = None  # an instant `idle` found quiet but for due decisions
        # positions whose mark is written only with a state change (see BacktestPortfolio); every holder of
        # the engine's portfolio is pointed at it before anything was booked
        portfolio = BacktestPortfolio(self.conn, self.venue.platform_id, self.mode, self.trailing_config,
                                      self.venue.account_ref)
        self.portfolio = self.executor.portfolio = self.monitor.portfolio = portfolio
        self._order: dict[str, int] = {}  # tracked market -> its place in `markets` (the scan's order)
        self._touched: set[str] = set()  # exchange markets that changed since the last refresh
        self._settle_check: set[str] = set()  # snapshots replaced since the last settlement pass
        self._unobserved: set[str] = set()  # snapshots replaced since the volatility tracker last saw them
        self._woken: set[str] = set()  # markets whose next decision time must be worked out again
        self._due_at: dict[str, float] = {}  # market -> when its next (method, market) decision falls due
        self._due_heap: list[tuple[float, int, str]] = []  # (due, order, market); stale entries skipped
        self._due_left: set[str] = set()  # due markets `idle` took off the heap for the scan that follows
        # `_quiet_now`'s verdict: quiet before this time (None: look again), unless a step, a fill or a new
        # snapshot of one of these markets comes first
        self._quiet: float | None = None
        self._quiet_watch: set[str] = set()
        # a close-all liquidation that can only wait (`_liquidation_waits`): the verdict holds through it, and the
        # skipped steps' position checks are recorded (`_record_held_checks`) before the next step
        self._quiet_holds = False
        self.liquidation_waits_skipped = 0  # skipped steps of a close-all liquidation waiting for bids
        self._held_at: datetime | None = None  # the last skipped step that checked every position
        self._held_steps = 0  # how many skipped steps did since the last step
        self._checked_snaps: dict[int, Market | None] = {}  # position -> the quote the last close-all check read
        self.repeated_refusals = 0  # decisions recorded as the repeat of a refusal (`_repeat_refusal`)
        self._by_phase_of: Any = None  # the method list `_by_phase` was worked out from
        self._by_phase: dict[str, tuple[Any, ...]] = {}  # phase -> its methods (`_phase_methods`)
        self._stamps: dict[datetime, float] = {}  # decision time -> its timestamp (`_stamp`)
        self._now_at: datetime | None = None  # the instant `_now_ts` is the timestamp of (`_now_stamp`)
        self._now_ts = 0.0
        for tm in self.markets.values():
            self.track(tm)
        self.venue.exchange.add_listener(self._on_exchange_event)  # type: ignore[attr-defined]

    def track(self, tm: TrackedMarket) -> None:
        """Add a market to the ones the engine trades (the runner's way of listing one)."""
        if tm.ticker not in self._order:
            self._order[tm.ticker] = len(self._order)
        self.markets[tm.ticker] = tm
        self._touched.add(tm.ticker)

    def touch(self, tickers: Iterable[str]) -> None:
        """Markets whose game moved (a state, a result): their phase, and so which methods decide them, may
        have changed even when their quotes did not."""
        order, woken = self._order, self._woken
        for t in tickers:
            if t in order:
                woken.add(t)

    def _on_exchange_event(self, event: Any) -> None:
        self._touched.add(event.ticker)

    async def stop(self, summary: dict[str, Any] | None = None) -> None:
        await super().stop(summary)
        self.portfolio.flush_marks()  # type: ignore[attr-defined]

    def _sync_entry_risk(self, balance: Any, now: datetime) -> None:
        if self._units_loaded is not None:
            self._units_loaded = now  # loaded at the first decision: keep them
        super()._sync_entry_risk(balance, now)

    async def step(self) -> None:
        self._quiet = None  # a step changes what the idle check proved
        self._record_held_checks()
        now = self._last_step_at = self.clock()
        scan_only, self._scan_only_at = self._scan_only_at == now, None
        if scan_only and not (self.conn.closed or self.conn.broken):
            # everything the cycle does before its entry scan was proven to change nothing at this instant
            # (`idle`); the scan is the cycle's last act, so the step is the scan alone
            self.stats.steps += 1
            self.scan_only_steps += 1
            await self._enter(now)
            return
        await super().step()

    def _follow_board(self, now: datetime) -> None:
        super()._follow_board(now)
        self._board_saw = self._board_view()

    def _board_view(self) -> tuple[Any, int]:
        """What a cycle reports to the breaker board: the open positions' marks and how many there are."""
        positions = self.portfolio.open_positions()
        return sum((p.unrealized_pnl or ZERO for p in positions), ZERO), len(positions)

    # ------------------------------------------------------------------ the cycle, per changed market

    async def _refresh_markets(self) -> None:
        """The cycle's reads (`_read_changed`), then the held markets' price cache entries, stamped now."""
        await self._read_changed()
        self._put_held()

    async def _read_changed(self) -> None:
        """The reference reads every market every cycle; a market the exchange did not touch since the last
        read would give the same snapshot, so only the touched ones (and a held market without a snapshot) are
        read. Called before the idle check at every event time and again by a step (which then reads only
        what changed in between)."""
        touched = self._touched
        quoted = self.venue.take_quoted()  # type: ignore[attr-defined]
        if quoted:
            touched |= quoted
        now = self.clock()
        if not touched and now == self._refreshed_at:
            return  # read already at this instant (the runner's `refresh`), nothing changed since
        self._refreshed_at = now
        order = self._order
        tickers: list[str] = []
        untracked: set[str] = set()  # not tracked yet: read once they are
        for t in touched:
            if t in order:
                tickers.append(t)
            else:
                untracked.add(t)
        if len(tickers) > 1:
            tickers.sort(key=order.__getitem__)
        self._touched = untracked
        snapshots = self.snapshots
        held: set[str] | None = None
        for p in self.portfolio.positions.values():
            if p.is_open and p.market_id not in snapshots and p.market_id not in tickers:
                tickers.append(p.market_id)  # held and never read: read it (after the touched ones)
        settled = self._settled_markets
        for t in tickers:
            if t in settled:
                if held is None:
                    held = {p.market_id for p in self.portfolio.open_positions()}
                if t not in held:
                    continue
            try:
                m = await self.venue.market(t)
            except Exception as exc:
                self._venue_ok, self._venue_error = False, f"{type(exc).__name__}: {exc}"[:500]
                raise
            self._venue_ok, self._venue_error = True, None
            if snapshots.get(t) is not m:
                snapshots[t] = m
                self._replaced(t, m)
            self.prices.put(m)

    def _put_held(self) -> None:
        """The price cache entry of every market we hold, as a read at this instant leaves it (the monitor
        reads it with a freshness limit): an untouched market's read would return its current snapshot. Only a
        step reads the cache, so this is done by the step, not at every event time."""
        snapshots = self.snapshots
        for p in self.portfolio.open_positions():
            snap = snapshots.get(p.market_id)
            if snap is not None:
                self.prices.put(snap)

    def _replaced(self, ticker: str, snap: Market) -> None:
        """A market's snapshot changed: its settlement check, volatility observation and next decision time
        are due again."""
        self._settle_check.add(ticker)
        if snap.status is MarketStatus.SETTLED:
            self._settlement_seen = True
        if ticker in self._quiet_watch:
            self._quiet = None
        self._unobserved.add(ticker)
        self._woken.add(ticker)

    async def _monitor(self, now: datetime) -> None:
        before = {p.market_id: self.snapshots.get(p.market_id) for p in self.portfolio.open_positions()}
        await super()._monitor(now)
        for t, snap in before.items():  # a due check reads the current quote into the snapshots
            current = self.snapshots.get(t)
            if current is not None and current is not snap:
                self._replaced(t, current)
        # a close-all breaker checked every position on the quote it holds now
        self._checked_snaps = {p.position_id: self.snapshots.get(p.market_id)
                               for p in self.portfolio.open_positions()} if self.breaker_active else {}

    def _liquidation_waits(self, positions: Sequence[Any]) -> bool:
        """Under a close-all breaker every step checks every open position (`Engine._monitor`). The checks change
        nothing but their time when each position has a CRITICAL exit working on it already (a new exit never
        preempts it) and its side has no bid in the very quote its last check read (no mark, no trailing stop
        move, nothing material to save): `PositionMonitor.record_quiet_checks`."""
        if any(rec.purpose == "entry" and rec.status not in TERMINAL for rec in self.executor.open.values()):
            return False  # the step cancels it (`Engine._cancel_entries_for_close_all`)
        jobs, snaps, checked = self.exits.jobs, self.snapshots, self._checked_snaps
        for p in positions:
            job = jobs.get(p.position_id)
            if job is None or job.priority != "CRITICAL" or p.current_price is None:
                return False
            snap = snaps.get(p.market_id)
            if snap is None or checked.get(p.position_id) is not snap or side_quotes(p.side, snap)[0] is not None:
                return False
        return True

    def _record_held_checks(self) -> None:
        """The position checks of the close-all steps skipped since the last step, as the last of them left them
        (each earlier one only moved times the last one moved again)."""
        at, self._held_at = self._held_at, None
        if at is not None:
            for pos in self.portfolio.open_positions():
                self.monitor.record_quiet_checks(pos, at, self._held_steps)
        self._held_steps = 0

    async def _settle(self, now: datetime) -> None:
        """The reference looks at every snapshot; only a replaced one can newly show a settlement, or one of a
        settled market where we still hold something (the reference passes those again: `Engine._settle`)."""
        check, self._settle_check = self._settle_check, set()
        check |= {p.market_id for p in self.portfolio.open_positions() if p.market_id in self._settled_markets}
        self._settlement_seen = False
        if not check:
            return
        order = self._order
        far = len(order)
        live = self.snapshots
        self.snapshots = {t: live[t] for t in sorted(check, key=lambda t: order.get(t, far)) if t in live}
        try:
            await super()._settle(now)
        finally:
            self.snapshots = live

    def _observe(self, now: datetime) -> None:
        """Feed the volatility tracker every snapshot replaced since it last looked (an unchanged one adds
        nothing to it), as the reference scan does for every market each ACTIVE cycle."""
        if not self._unobserved:
            return
        ts = self._now_stamp(now)
        tracker, snapshots, markets = self.volatility, self.snapshots, self.markets
        for t in self._unobserved:
            snap = snapshots.get(t)
            if snap is not None and t in markets:
                tracker.observe(t, ts, snap.yes_bid, snap.yes_ask)
        self._unobserved = set()

    async def _enter(self, now: datetime) -> None:
        """The reference scan over the markets where a decision is due, in the scan's order."""
        self._forget_blocked(now)
        self._observe(now)
        left, self._due_left = self._due_left, set()  # found by `idle` to need the full decision
        due = self._due_markets(now) | left
        if not due:
            return
        scan = _Scan()
        order = self._order
        for t in sorted(due, key=order.__getitem__):
            if t in left or not self._repeat_refusal(t, now):
                await self._enter_market(self.markets[t], now, scan)
                self._schedule(t, now)

    def _phase_methods(self, phase: str) -> tuple[Any, ...]:
        """The engine's methods that decide a market in `phase`, in the scan's order (worked out once per phase;
        again if the engine's method list is replaced)."""
        if self._by_phase_of is not self.methods:
            self._by_phase_of, self._by_phase = self.methods, {}
        found = self._by_phase.get(phase)
        if found is None:
            found = self._by_phase[phase] = tuple(m for m in self.methods if m.phase == phase)
        return found

    def _now_stamp(self, now: datetime) -> float:
        """`now.timestamp()` of the instant being replayed (asked several times per event time)."""
        if now is not self._now_at:
            self._now_at, self._now_ts = now, now.timestamp()
        return self._now_ts

    def _stamp(self, at: datetime) -> float:
        """`at.timestamp()`, remembered: decision times are a step's instant, shared by many markets."""
        ts = self._stamps.get(at)
        if ts is None:
            if len(self._stamps) >= 100_000:
                self._stamps.clear()
            ts = self._stamps[at] = at.timestamp()
        return ts

    def _repeat_refusal(self, ticker: str, now: datetime) -> bool:
        """Whether every decision due on the market would repeat a refusal by the first entry checks, as
        `Engine._enter_market` finds it (the same quote object, method, forecast and trading state); if so, the
        decisions are recorded as it records them (the decision time, one refusal each), the market's next
        decision time is scheduled (`_schedule`) and True is returned.
        The forecasts must be known without asking a model (`BacktestWorld.known_estimate`); else nothing is
        done and False returned (the market is decided in full)."""
        known = getattr(self.probabilities, "known_estimate", None)
        snap = self.snapshots.get(ticker)
        if known is None or snap is None or not snap.is_tradable:
            return False
        methods = self._phase_methods(self.probabilities.phase(ticker, now))
        interval = self.decision_interval
        seconds = interval.total_seconds()
        last_of = self._last_decision.get
        repeats: list[tuple[tuple[int, str], str | None]] = []
        due: float | None = None  # the market's next decision time once these are recorded (`_next_due`)
        for method in methods:
            key = (method.method_id, ticker)
            last = last_of(key)
            if last is not None and now - last < interval:
                at = self._stamp(last) + seconds
                if due is None or at < due:
                    due = at
                continue
            est = known(method.model_key, ticker)
            if est is UNKNOWN:
                return False
            if est is None:  # the model has nothing to say: the decision time is recorded, nothing refused
                repeats.append((key, None))
                continue
            short = self._refusal_repeated(key, snap, method, est.p_yes)  # type: ignore[attr-defined]
            if short is None:
                return False
            repeats.append((key, short))
        if repeats:
            counts = self.stats.entries_refused
            for key, short in repeats:
                self._last_decision[key] = now
                if short is not None:
                    counts[short] = counts.get(short, 0) + 1
                    self.repeated_refusals += 1
            at = self._stamp(now) + seconds
            if due is None or at < due:
                due = at
        self._set_due(ticker, due)
        return True

    def _repeat_due_refusals(self, now: datetime) -> bool:
        """Record the due decisions that repeat a refusal (`_repeat_refusal`); True when that was all of them.
        The others are left for the entry scan of the step at `now`."""
        left = self._due_left
        for t in self._due_markets(now):
            if not self._repeat_refusal(t, now):
                left.add(t)
        return not left

    def _next_due(self, ticker: str, now: datetime) -> float | None:
        """When a method in the market's current phase may decide it next; None while nothing can be decided
        until the market or its game changes (no tradable snapshot, no method for its phase)."""
        snap = self.snapshots.get(ticker)
        if snap is None or not snap.is_tradable:
            return None
        methods = self._phase_methods(self.probabilities.phase(ticker, now))
        if not methods:
            return None
        seconds = self.decision_interval.total_seconds()
        last_of = self._last_decision.get
        due: float | None = None
        for method in methods:
            last = last_of((method.method_id, ticker))
            if last is None:
                return float("-inf")  # never decided: due now
            at = self._stamp(last) + seconds
            if due is None or at < due:
                due = at
        return due

    def _schedule(self, ticker: str, now: datetime) -> None:
        self._set_due(ticker, self._next_due(ticker, now))

    def _set_due(self, ticker: str, at: float | None) -> None:
        if at is None:
            self._due_at.pop(ticker, None)
            return
        if self._due_at.get(ticker) != at:
            self._due_at[ticker] = at
            heapq.heappush(self._due_heap, (at, self._order[ticker], ticker))

    def _reschedule_woken(self, now: datetime) -> None:
        for t in self._woken:
            if t in self._order:
                self._schedule(t, now)
        self._woken = set()

    def _due_markets(self, now: datetime) -> set[str]:
        """Markets with a (method, market) decision due at `now`: woken ones re-scheduled first."""
        self._reschedule_woken(now)
        ts = self._now_stamp(now)
        heap, due_at = self._due_heap, self._due_at
        out: set[str] = set()
        while heap and heap[0][0] <= ts:
            at, _, t = heapq.heappop(heap)
            if due_at.get(t) == at:
                out.add(t)
                del due_at[t]
        return out

    def _orders_quiet(self, now: datetime, until: list[datetime], watch: set[str]) -> bool:
        """Whether the cycle would leave every working order and exit job as it is at `now`: each order reads
        at the venue as the executor last recorded it (so its refresh writes nothing and no fill waits to be
        booked), no entry's timeout and no exit attempt's deadline has come, every reserved approval's order
        is still working, and each exit job without an order is waiting for a bid (`ExitManager._step_job`).
        When quiet, `until` receives the times at which that can change with time alone (timeouts,
        deadlines, venue expiries) and `watch` the markets whose new snapshot could change it."""
        if self.venue.has_unseen_fills():  # type: ignore[attr-defined]
            return False
        exits = self.exits
        job_orders: dict[str, Any] = {}
        for job in exits.jobs.values():
            pos = self.portfolio.positions.get(job.position_id)
            if pos is None or not pos.is_open or (job.full and exits.resting_entries(pos)):
                return False
            watch.add(job.market_id)
            if job.deadline is not None:
                until.append(job.deadline)  # an attempt's timeout, or the end of waiting for a bid
            if job.order is not None:
                if job.deadline is not None and now >= job.deadline:
                    return False
                job_orders[job.order.client_order_id] = job.order
                continue
            m = self.snapshots.get(job.market_id)
            if not exits.paused and m is not None and m.is_tradable and not exits.waiting_for_bid(job, m, now):
                return False  # the job's next attempt goes out (held while HALTED: `Engine._pause_exits`)
        open_orders = self.executor.open
        for cid, rec in open_orders.items():
            if rec.status in TERMINAL:
                continue
            if rec.purpose == "entry":
                if rec.expires_at is not None and now >= rec.expires_at:
                    return False
                if rec.expires_at is not None:
                    until.append(rec.expires_at)
            elif job_orders.get(cid) is not rec:
                return False  # an exit order no job is waiting on
            if rec.status not in (OrderState.RESTING, OrderState.PARTIALLY_FILLED) or rec.venue_order_id is None:
                return False
            vo = self.venue.order_now(rec.venue_order_id)  # type: ignore[attr-defined]
            if state_from_venue(vo) is not rec.status or int(vo.fill_count) != rec.filled_quantity:
                return False
            watch.add(rec.market_id)
            if vo.expiration_time is not None:
                until.append(vo.expiration_time)  # the venue cancels it then
        for cid, rec in job_orders.items():
            if open_orders.get(cid) is not rec or rec.status in TERMINAL:
                return False
        for cid in self._approvals:
            approved = open_orders.get(cid)
            if approved is None or approved.status in TERMINAL:
                return False  # released by the next cycle
        return True

    def _decision_due(self, now: datetime) -> bool:
        self._reschedule_woken(now)
        heap, due_at = self._due_heap, self._due_at
        ts = self._now_stamp(now)
        while heap and due_at.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale
        return bool(heap) and heap[0][0] <= ts

    async def refresh(self, now: datetime) -> None:
        """Read the markets that changed, as a step does first (a step right after reads nothing new)."""
        if self.conn.closed or self.conn.broken:
            return  # the step recovers the database first, then reads
        await self._read_changed()

    def idle_step(self, now: datetime) -> None:
        """What a step that `idle` cleared still does after `refresh`: feed the replaced snapshots to the
        volatility tracker, as the entry scan does each cycle before any decision."""
        self.skipped_steps += 1
        if self._quiet_holds:
            self._held_at = now  # its position checks, recorded before the next step reads them
            self._held_steps += 1
            self.liquidation_waits_skipped += 1
        if self.trading_state != "ACTIVE":
            return  # the entry scan (which feeds the tracker) runs only while trading is ACTIVE
        self._forget_blocked(now)  # as the scan does first: a blocked opportunity not seen again is gone
        self._observe(now)

    def idle(self, now: datetime, released: Iterable[Event]) -> bool:
        """True when a step at `now` would provably change nothing (see the module docstring). When only due
        decisions keep it from being idle, the next `step` at `now` runs just the entry scan."""
        self._scan_only_at = None
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
        for ev in released:
            if ev.kind not in _IDLE_KINDS:
                return False
        if self._settlement_seen:
            return False
        quiet = self._quiet
        if quiet is None or self._now_stamp(now) >= quiet or self.venue.has_unseen_fills():  # type: ignore[attr-defined]
            if not self._quiet_now(now, board, last):
                return False
        if self.trading_state != "ACTIVE":
            return True  # no entry scan runs
        if self._decision_due(now) and not self._repeat_due_refusals(now):
            self._scan_only_at = now
            return False
        return True

    def _quiet_now(self, now: datetime, board: Any, last: datetime) -> bool:
        """Everything a step does before its entry scan would change nothing at `now` (see the module
        docstring). When so, the verdict is kept (`_quiet`) until the first time it can change with time alone;
        a step, a fill, or a new snapshot of a market with one of our orders or exit jobs drops it sooner."""
        until: list[datetime] = []
        watch: set[str] = set()
        if self._planned or not self._orders_quiet(now, until, watch):
            return False
        positions = self.portfolio.open_positions()
        # a close-all breaker checks every position on every step: quiet only while that changes nothing but the
        # checks' times (then the monitor's own schedule does not matter: every step checks)
        holds = bool(self.breaker_active and positions)
        if holds and not self._liquidation_waits(positions):
            return False
        monitor = self.monitor
        checks = [] if holds else [monitor.next_check.get(p.position_id) for p in positions]
        if any(c is None or now >= c for c in checks):
            return False
        if self._board_view() != self._board_saw:
            return False  # a check or fill after the board looked last cycle moved the P&L it must weigh
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
        if board.result_left_window(last_ts, ts, window):
            return False
        reconcile_at = None
        if self._last_reconcile is not None:
            reconcile_at = self._last_reconcile + self.reconcile_interval
            if now >= reconcile_at:
                return False
        moments = [t.timestamp() for t in until]
        moments.extend(c.timestamp() for c in checks if c is not None)
        if reconcile_at is not None:
            moments.append(reconcile_at.timestamp())
        moments += [board._next_reset - 1.0, board._next_day(last_ts), board.next_result_leaving(last_ts, window)]
        self._quiet = min(moments)
        self._quiet_watch = watch
        self._quiet_holds = holds
        return True
