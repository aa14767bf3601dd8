"""`precog backtest`: replay a dataset through the live engine (`precog.engine.core.Engine`) on a simulated
clock, window by window, and store the run.

Per window: a fresh local exchange on a SimClock, a market maker quoting the data's fair values, our
account funded with the bankroll, the engine in mode 'backtest' with the chosen methods, and the models
(re)trained on the training window through the GuardedArchive. The clock jumps from one event time to the
next; at each, the feed releases the events that are due, the world applies them (quotes, states,
results), the exchange applies what is due by the clock, and the engine runs one step (fills, settlement,
breakers, exits, entries) exactly as it does live.

A/B lanes (one per method unless they trade together) are independent: `run_lane` replays one, in this process
(`--jobs 1`) or in a process of its own (precog.backtest.lanes), and the run is stored the same either way.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from precog.backtest import store
from precog.backtest.dataset import Dataset, open_dataset
from precog.backtest.errors import BacktestError, LookAheadError
from precog.backtest.feed import EventFeed, GuardedArchive, dt_to_ms
from precog.backtest.methods import ChosenMethod, ensure_default_methods, resolve
from precog.backtest.models import BacktestModel, builtin_models, describe
from precog.backtest.report import WorldView
from precog.backtest.stepping import BacktestEngine, BacktestVenue
from precog.backtest.walkforward import Span, WalkForward, Window, windows
from precog.backtest.world import BacktestWorld, MakerConfig
from precog.config.loader import Config, load_config
from precog.db.connection import connect
from precog.domain.money import CENT, ZERO
from precog.engine.core import Engine
from precog.engine.demo import simulated_market_settings
from precog.engine.local_venue import LocalVenue
from precog.trading.breakers import SPECS, BreakerBoard
from precog.trading.settings import BreakerSettings, TradingSettings
from precog.venues.exchange import model as xm
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

log = logging.getLogger(__name__)

USER = "precog-backtest"
# the progress callback (a Rich bar on the CLI) every this many events: often enough to move, never per event
PROGRESS_EVERY_EVENTS = 500


@dataclass
class BacktestOptions:
    data: Path
    start: date | None = None
    end: date | None = None
    methods: list[str] = field(default_factory=list)
    out: Path | None = None
    walk_forward: WalkForward | None = None
    bankroll: Decimal | None = None  # default trade_strategies.yaml backtesting.bankroll
    sigma: float | None = None  # backtesting.closing_line_sigma_points
    half_spread: Decimal | None = None  # backtesting.market_half_spread
    train_years: int = 3  # without walk-forward: models train on this many years before --from
    in_game: bool = True
    together: bool = False  # several methods in one portfolio instead of one isolated lane each
    # the fast DB-backed path (precog.backtest.stepping: cached venue reads, idle steps skipped); False runs the
    # plain live Engine and LocalVenue stepped at every event time: the reference the fast path must equal
    fast_path: bool = True
    # programmatic extras (tests, notebooks): more models by key, methods that read them
    extra_models: dict[str, BacktestModel] = field(default_factory=dict)
    extra_methods: list[ChosenMethod] = field(default_factory=list)
    # A/B lanes replayed at once, each in its own process (precog.backtest.lanes); None: as many as there are
    # lanes, at most the CPUs this process may use; 1: one after another in this process
    jobs: int | None = None


@dataclass
class Progress:
    window: int
    windows: int
    events_done: int
    events_total: int
    fills: int
    sim_time: datetime
    # lanes replayed in parallel processes report together (precog.backtest.lanes): how many lanes, and the share
    # of the whole run done (their events and fills summed, the slowest lane's simulated time)
    lanes: int = 1
    share: float | None = None

    @property
    def fraction(self) -> float:
        """The share of the whole run done, 0..1."""
        if self.share is not None:
            return self.share
        return (self.window + self.events_done / max(self.events_total, 1)) / max(self.windows, 1)


@dataclass
class WindowOutcome:
    window: Window
    run_id: int
    world: WorldView  # what the report reads of the window's world (plain data: it crosses processes)
    equity: list[tuple[int, Decimal]]
    trained_on: dict[str, int]
    steps: int
    engine_stats: dict[str, Any]
    lane: int = 0  # which A/B lane (one per method unless they trade together)
    lane_methods: list[str] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # model key -> version it traded with

    def notes(self) -> list[str]:
        """One line per model that could not be (fully) trained on this window."""
        return [f"window {self.window.index} (test {self.window.test_from} .. {self.window.test_to}, "
                f"{', '.join(self.lane_methods)}): {key} {info['note']}"
                for key, info in self.models.items() if info.get("status") == "untrained" and info.get("note")]


@dataclass
class BacktestResult:
    backtest_id: int
    summary: dict[str, Any]
    html_path: Path | None
    json_path: Path | None


def _settings(cfg: Config) -> dict[str, Any]:
    return dict(cfg.section("trade_strategies").get("backtesting", {}) or {})


# Breakers that live trading leaves for an operator to reset: in a backtest nobody is there, so the operator
# policy is "reset the next day" (a week for the weekly limit, never for a reconciliation mismatch, which
# means our books disagree with the venue: a bug that must stop the run). Configured resets are kept.
_OPERATOR_RESET_SECONDS = {"weekly_loss_limit": 7 * 86_400}
_NEVER_RESET = {"reconciliation", "decimal_precision", "immutability_violation", "manual"}


def backtest_breaker_settings(cfg: Config) -> BreakerSettings:
    base = TradingSettings.from_config(cfg).breakers
    resets = {name: _OPERATOR_RESET_SECONDS.get(name, 86_400) for name in SPECS if name not in _NEVER_RESET}
    resets.update(base.reset_seconds)
    return replace(base, reset_seconds=resets)


def _account_cash(exchange: Exchange) -> Decimal:
    """Cash + money held for our resting orders (returned when they are cancelled): what the account owns in money,
    without the open contracts."""
    acct = exchange.account(USER)
    return acct.balance + sum((o.hold for o in acct.orders.values() if o.status == xm.RESTING), ZERO)


def _account_equity(exchange: Exchange, world: BacktestWorld) -> Decimal:
    """Cash + money held for our resting orders + open contracts at the market's fair value."""
    acct = exchange.account(USER)
    value = ZERO
    for t, p in acct.positions.items():
        if p.held[0] or p.held[1]:
            g = world.games.get(t)
            fair = g.fair if g is not None else Decimal("0.5")
            value += p.held[0] * fair + p.held[1] * (1 - fair)
    return _account_cash(exchange) + value


def _midnight_ms(day: date, tz: tzinfo = UTC) -> int:
    return dt_to_ms(datetime(day.year, day.month, day.day, tzinfo=tz))


@contextmanager
def _long_lived_frozen() -> Iterator[None]:
    """The objects alive when a replay starts (the window's events, the dataset, the trained models) kept out of
    the cyclic garbage collector's full passes during the replay (`gc.freeze`), and handed back to it after.
    Each full pass otherwise walks every one of them again (about a tenth of a second per pass in a replay of
    200,000 quotes). Freezing changes no object, only which ones the collector's passes visit: garbage is
    still freed by reference counting, and cycles among the frozen objects once they are handed back.
    Left alone when something else froze objects already (its freeze is not ours to undo)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a dataset is read: reading builds hundreds of thousands of
    long-lived messages and events (tuples, dicts), and each collector pass would walk all of them again
    although none can be garbage. Reading makes no reference cycles; the collector runs again afterwards
    (as before when something else had turned it off: left off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _run_window(conn: psycopg.Connection[Any], cfg: Config, opts: BacktestOptions, dataset: Dataset,
                      win: Window, chosen: list[ChosenMethod], bankroll: Decimal, maker: MakerConfig,
                      progress: Callable[[Progress], None] | None, slot: tuple[int, int], tag: str
                      ) -> WindowOutcome | None:
    with _collector_paused():
        events = dataset.events(win.test_from, win.test_to, tag)
    skipped = int(getattr(dataset, "skipped", 0))  # the window's frames that did not parse (a recording's)
    if not events:
        return None  # nothing to trade in this window (e.g. an off-season test window)
    feed = EventFeed(events)
    first = feed.next_time()
    assert first is not None
    train_to_ms = _midnight_ms(win.train_to, dataset.tz) if win.train_to is not None else None
    # The window opens when its training window closes (midnight of the first test day in the dataset's time
    # zone), never before: the results finished in the training window's last hours (games the day before) are
    # then trained on rather than lost between training and the first released event. Markets listed earlier
    # (the first day's games, 26 h before kickoff) are released as the window opens.
    clock = SimClock(max(first - 1000, train_to_ms) if train_to_ms is not None else first - 1000)
    exchange = Exchange(clock)  # unseeded: venue order ids must never repeat across runs in one database
    keys = {c.spec.model_key for c in chosen}
    models: dict[str, BacktestModel] = builtin_models(keys - set(opts.extra_models))
    models.update(opts.extra_models)
    missing = keys - set(models)
    if missing:
        raise BacktestError(f"no backtest model for {', '.join(sorted(missing))}")
    archive = GuardedArchive(dataset.archive, clock.now_ms, dataset.play_by_play)
    train_end = clock.now_ms() if train_to_ms is None else train_to_ms
    # no training window (--train-years 0): the models start untrained and learn only from released results
    train_start = _midnight_ms(win.train_from, dataset.tz) if win.train_from else train_end
    trained = {k: m.train(archive, train_start, train_end) for k, m in models.items()}
    model_info = {k: {**describe(m), "train": [str(win.train_from) if win.train_from else None,
                                               str(win.train_to) if win.train_to else None]}
                  for k, m in models.items()}
    world = BacktestWorld(exchange, clock.now_ms, models, maker)
    exchange.create_account(USER, bankroll)
    venue = BacktestVenue(exchange, USER, maker=world.maker) if opts.fast_path else LocalVenue(exchange, USER)

    @lru_cache(maxsize=1)  # a step asks the time many times at one simulated instant
    def at_ms(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    def now() -> datetime:
        return at_ms(clock.now_ms())

    board = BreakerBoard(backtest_breaker_settings(cfg), clock=lambda: clock.now_ms() / 1000)
    engine_class = BacktestEngine if opts.fast_path else Engine
    engine = engine_class(conn, venue, config=cfg, mode="backtest", kind="backtest", methods=[c.spec for c in chosen],
                          probabilities=world, markets=[], clock=now, alerts=None, environment="backtest",
                          initial_cash=bankroll, breakers=board, reconcile_cash=True,
                          risk_settings=simulated_market_settings(cfg))
    await engine.start()
    equity: list[tuple[int, Decimal]] = [(clock.now_ms(), bankroll)]
    total = len(feed)
    last_sample = 0
    reported = 0
    loop_started, loop_cpu = time.perf_counter(), time.process_time()
    with _long_lived_frozen():
        fast = engine if isinstance(engine, BacktestEngine) else None
        while (t := feed.next_time()) is not None:
            ms = max(t, clock.now_ms())
            clock.set_ms(ms)
            released = feed.release(ms)
            world.apply(released)
            exchange.tick()
            if fast is not None:
                if world.new_markets:
                    for tm in world.take_new_markets():
                        fast.track(tm)
                fast.touch(ev.ticker for ev in released)
                at = now()
                await fast.refresh(at)  # what the step reads first; the idle check needs the new snapshots
                if fast.idle(at, released):
                    fast.idle_step(at)
                else:
                    await fast.step()
            else:
                for tm in world.take_new_markets():
                    engine.markets[tm.ticker] = tm
                await engine.step()
            remaining = feed.remaining
            if ms - last_sample >= 3_600_000 or remaining == 0:
                equity.append((ms, _account_equity(exchange, world)))
                last_sample = ms
            if progress is not None:
                done = total - remaining
                if done - reported >= PROGRESS_EVERY_EVENTS or remaining == 0:
                    reported = done
                    progress(Progress(slot[0] + win.index, slot[1], done, total,
                                      engine.executor.fills_booked, now()))
        for _ in range(3):  # settle what the last results decided
            clock.advance(1)
            exchange.tick()
            await engine.step()
    loop_seconds, loop_cpu = time.perf_counter() - loop_started, time.process_time() - loop_cpu
    stats = {"steps": engine.stats.steps, "idle_steps_skipped": getattr(engine, "skipped_steps", 0),
             "scan_only_steps": getattr(engine, "scan_only_steps", 0),
             "liquidation_waits_skipped": getattr(engine, "liquidation_waits_skipped", 0),
             "position_checks": engine.monitor.checks,
             "refusals_repeated": getattr(engine, "repeated_refusals", 0),
             "position_marks_kept": getattr(engine.portfolio, "marks_deferred", 0),
             "replay_seconds": round(loop_seconds, 3), "replay_cpu_seconds": round(loop_cpu, 3),
             "unchanged_quotes_kept": world.maker.unchanged, "quotes_deferred": world.maker.deferred,
             "entries_sent": engine.stats.entries_sent,
             "entries_refused": dict(engine.stats.entries_refused), "exits_started": dict(engine.stats.exits_started),
             "breakers": list(engine.stats.breakers), "settled_positions": engine.stats.settled_positions,
             "trading_state": engine.trading_state, "trained_on": trained, "models": model_info,
             "engine_path": "fast" if opts.fast_path else "reference",
             "archive_reads": archive.reads, "archive_play_reads": archive.play_reads, "skipped_messages": skipped}
    await engine.stop({"backtest": True, **stats})
    equity.append((clock.now_ms(), _account_equity(exchange, world)))
    # our books against the exchange's ledger, to the cent (as `precog demo` checks)
    venue_cash = exchange.account(USER).balance
    our_cash = bankroll + engine.our_cash_delta()
    stats["ledger"] = {"our_cash": str(our_cash), "venue_cash": str(venue_cash), "match": our_cash == venue_cash}
    # what the next window starts with: money only. Contracts still open here (a recording cut off before its
    # market settled) stay with this window's engine run, unrealized; their mark is no cash the next window's
    # fresh exchange could hold.
    stats["end_cash"] = str(_account_cash(exchange))
    stats["world"] = world.snapshot()
    return WindowOutcome(win, engine.run_id, WorldView.of(world), equity, trained, engine.stats.steps, stats,
                         models=model_info)


_PRE_GAME_COVERAGE = "the NFL history's pre-game prices are closing lines, which cover the 1966-2014 seasons"


def _idle_phase_note(method: ChosenMethod, span: tuple[date, date], pre_game: bool, in_game: bool,
                     in_game_wanted: bool) -> str | None:
    """Why a method will trade nothing: the data has no market in its phase over the run."""
    if method.spec.phase == "pre_game" and not pre_game:
        why = _PRE_GAME_COVERAGE
    elif method.spec.phase == "live" and not in_game:
        why = "in-game states are left out (--no-in-game)" if not in_game_wanted else "the data has no in-game states"
    else:
        return None
    return (f"{method.ref} trades {method.spec.phase.replace('_', '-')} markets and there are none between "
            f"{span[0]} and {span[1]} ({why}): it traded nothing")


def open_lane_dataset(opts: BacktestOptions, sigma: float, tz_name: str) -> Dataset:
    """The run's dataset as `opts` name it (a lane's process opens its own with these very arguments)."""
    with _collector_paused():
        return open_dataset(opts.data, sigma=sigma, start=opts.start, end=opts.end, in_game=opts.in_game,
                            tz=ZoneInfo(tz_name))


def replay_connection(db_url: str) -> psycopg.Connection[Any]:
    conn = connect(db_url, autocommit=True)
    # A replay's rows need no flush to disk before each statement returns: a server crash could lose only the
    # last fraction of a second of a run that would be replayed again anyway (never a live order or fill: this
    # session only). Every statement stays atomic and the rows are durable once the server writes its log.
    conn.execute("SET synchronous_commit TO off")
    return conn


# Without --jobs, lanes run in parallel only when the run spans at least this many days: a lane process pays about
# 1.5 s of CPU to start (imports, reading the data again), which a run of a few weeks does not earn back.
PARALLEL_MIN_DAYS = 90


def lane_jobs(opts: BacktestOptions, lanes: int, span_days: int | None = None) -> int:
    """How many lanes replay at once: --jobs; by default one per lane up to the CPUs this process may use when the
    run spans PARALLEL_MIN_DAYS or more, else one after another in this process."""
    if opts.jobs is not None:
        return min(opts.jobs, lanes)
    if span_days is not None and span_days < PARALLEL_MIN_DAYS:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(lanes, cpus))


async def run_lane(conn: psycopg.Connection[Any], cfg: Config, opts: BacktestOptions, dataset: Dataset,
                   wins: list[Window], lane: int, lanes: int, lane_methods: list[ChosenMethod], bankroll: Decimal,
                   half: Decimal, backtest_id: int, progress: Callable[[Progress], None] | None,
                   on_window: Callable[[WindowOutcome], None]) -> None:
    """One A/B lane: its windows one after another, each starting with the cash the previous one ended with;
    `on_window` is handed each window as it ends (the caller stores it, or sends it to the parent process)."""
    cash = bankroll
    for win in wins:
        if cash < CENT:
            break  # ruined: nothing left to trade with
        maker = MakerConfig(half_spread=half, keep_unchanged_quotes=opts.fast_path, lazy=opts.fast_path)
        out = await _run_window(conn, cfg, opts, dataset, win, lane_methods, cash, maker, progress,
                                (lane * len(wins), lanes * len(wins)), f"B{backtest_id}L{lane}W{win.index}-")
        if out is None:
            continue
        out.lane = lane
        out.lane_methods = [c.ref for c in lane_methods]
        cash = Decimal(out.engine_stats["end_cash"]).quantize(CENT, rounding=ROUND_FLOOR)
        on_window(out)


def plan_windows(opts: BacktestOptions, dataset: Dataset) -> list[Window]:
    first, last = dataset.date_range()
    start = opts.start or first
    end = opts.end or last
    if start > end:
        raise BacktestError(f"--from {start} is after --to {end}")
    if opts.walk_forward is not None:
        return windows(opts.walk_forward, start, end)
    # that many calendar years before --from (a February 29 goes back to the 28th), not a few days more
    train_from = Span(opts.train_years, "y").sub(start) if opts.train_years else None
    return [Window(0, train_from, start if opts.train_years else None, start, end)]


async def run_backtest(db_url: str, opts: BacktestOptions, progress: Callable[[Progress], None] | None = None,
                       config: Config | None = None) -> BacktestResult:
    from precog.backtest.report import build_summary, write_reports

    cfg = config or load_config(db_url=db_url)
    bt = _settings(cfg)
    sigma = opts.sigma if opts.sigma is not None else float(bt.get("closing_line_sigma_points", 13.5))
    bankroll = opts.bankroll if opts.bankroll is not None else Decimal(str(bt.get("bankroll", "10000")))
    half = opts.half_spread if opts.half_spread is not None else Decimal(str(bt.get("market_half_spread", "0.01")))
    if bankroll <= 0:
        raise BacktestError(f"bankroll must be positive, got {bankroll}")
    if not Decimal("0.005") <= half <= Decimal("0.25"):
        raise BacktestError(f"market half spread must be between 0.005 and 0.25, got {half}")
    if opts.jobs is not None and opts.jobs < 1:
        raise BacktestError(f"--jobs must be at least 1 (lanes replayed at once), got {opts.jobs}")
    tz_name = str(cfg.get("system.defaults.timezone", "America/New_York"))
    dataset = open_lane_dataset(opts, sigma, tz_name)
    wins = plan_windows(opts, dataset)
    conn = replay_connection(db_url)
    try:
        span = (wins[0].test_from, wins[-1].test_to)
        pre_game = dataset.has_pre_game(*span)
        in_game = opts.in_game and dataset.has_in_game(*span)
        refs = list(opts.methods)
        if not refs and not opts.extra_methods:
            # the shipped methods for what the data has: a lane with no market in its phase would trade nothing
            defaults = ensure_default_methods(conn)
            refs = [ref for ref, has in ((defaults[0], pre_game), (defaults[1], in_game)) if has]
            if not refs:
                raise BacktestError(f"{dataset.source} has no pre-game prices between {span[0]} and {span[1]} "
                                    f"({_PRE_GAME_COVERAGE}) and in-game states are "
                                    f"{'left out (--no-in-game)' if not opts.in_game else 'missing'}: nothing "
                                    "to trade")
        elif refs:
            ensure_default_methods(conn)  # the shipped methods are always available by name
        chosen = resolve(conn, refs) + list(opts.extra_methods)
        data_notes = [_idle_phase_note(c, span, pre_game, in_game, opts.in_game) for c in chosen]
        params = {"data": str(opts.data), "from": str(opts.start) if opts.start else None,
                  "to": str(opts.end) if opts.end else None, "walk_forward": str(opts.walk_forward)
                  if opts.walk_forward else None, "bankroll": str(bankroll), "sigma": sigma, "half_spread": str(half),
                  "train_years": opts.train_years, "fees": "Kalshi taker schedule (exchange)",
                  "methods_together": opts.together or len(chosen) == 1}
        backtest_id = store.start(conn, params, dataset.source, dataset.kind, [c.ref for c in chosen])
        try:
            outcomes: list[WindowOutcome] = []

            def stored(out: WindowOutcome) -> None:
                w = out.window
                store.add_window(conn, backtest_id, out.lane, out.lane_methods, w.index, out.run_id, w.train_from,
                                 w.train_to, w.test_from, w.test_to, out.engine_stats)
                outcomes.append(out)

            # A/B: each method trades alone (its own exchange, account and bankroll) over the identical event
            # stream, so methods never compete for the same market or cash; --together runs them in one
            # portfolio instead (the way they would trade side by side live).
            lanes = [chosen] if opts.together or len(chosen) == 1 else [[c] for c in chosen]
            jobs = lane_jobs(opts, len(lanes), (wins[-1].test_to - wins[0].test_from).days + 1)
            by_lane = None
            if jobs > 1:
                from precog.backtest import lanes as parallel

                tasks = [parallel.LaneTask(db_url, cfg, opts, sigma, tz_name, wins, lane, len(lanes), lane_methods,
                                           bankroll, half, backtest_id) for lane, lane_methods in enumerate(lanes)]
                finished: dict[int, list[WindowOutcome]] = {}
                try:
                    by_lane = await parallel.run_lanes(tasks, jobs, progress, finished)
                except parallel.LanesNotPortable as exc:
                    log.warning("backtest %s: the lanes run one after another in this process: %s", backtest_id,
                                exc)
                except BaseException:
                    # a lane failed: the windows replayed by then are stored (in lane order), as one after another
                    for lane in sorted(finished):
                        for out in finished[lane]:
                            stored(out)
                    raise
            if by_lane is not None:
                for lane_outcomes in by_lane:  # stored as if the lanes had run one after another
                    for out in lane_outcomes:
                        stored(out)
            else:
                for lane, lane_methods in enumerate(lanes):
                    await run_lane(conn, cfg, opts, dataset, wins, lane, len(lanes), lane_methods, bankroll, half,
                                   backtest_id, progress, on_window=stored)
            if not outcomes:
                raise BacktestError(f"no games to trade between {wins[0].test_from} and {wins[-1].test_to} in "
                                    f"{dataset.source}")
            summary = build_summary(conn, backtest_id, params, dataset, chosen, outcomes, bankroll)
            summary["notes"] = [n for n in data_notes if n] + summary["notes"]
            html_path, json_path = write_reports(conn, backtest_id, summary, opts.out)
            store.finish(conn, backtest_id, summary, str(html_path) if html_path else None)
        except LookAheadError as exc:
            store.fail(conn, backtest_id, f"look-ahead detected: {exc}")
            raise
        except BaseException as exc:
            store.fail(conn, backtest_id, f"{type(exc).__name__}: {exc}")
            raise
        return BacktestResult(backtest_id, summary, html_path, json_path)
    finally:
        conn.close()


def default_out_dir() -> Path:
    from precog.paths import precog_home

    return Path(precog_home()) / "backtests"
