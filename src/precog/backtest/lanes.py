"""A/B lanes of `precog backtest` replayed at once, each in its own process (`--jobs`).

Lanes are independent by construction (each its own exchange, account and bankroll over the identical event
stream), so a comparison of N methods can take the time of its slowest lane rather than the sum of them. Each
lane's process is started with `spawn` (never `fork`: the parent holds a database connection, threads and
locks), opens its own connection and re-opens the dataset with the parent's arguments, replays its lane's windows
one after another (`runner.run_lane`, exactly as in-process) and hands back its `WindowOutcome`s, whose world is
the plain-data `WorldView` the report reads. The parent stores the windows in lane order and writes the report
as if the lanes had run one after another.

What crosses to the parent, on one queue: the lane's progress (summed into one `Progress` for the caller's
callback), its log records (handled by the parent's loggers, so its levels and handlers apply), and its outcomes
or its exception (re-raised in the parent as the same type and message; the child's traceback as a note).

A failing lane ends the run as it would one after another: the lanes before it finish (their windows are
stored), the lanes after it are stopped and their windows dropped, and its exception is raised once the earlier
lanes are done. No lane process outlives the run: an exception or a cancellation (Ctrl-C) in the parent
terminates all of them; the children ignore SIGINT (the parent decides) and exit on their own when the parent
process goes away, however it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from logging.handlers import QueueHandler
from multiprocessing.process import BaseProcess
from typing import Any

from precog.backtest.errors import BacktestError
from precog.backtest.methods import ChosenMethod
from precog.backtest.runner import (
    BacktestOptions,
    Progress,
    WindowOutcome,
    open_lane_dataset,
    replay_connection,
    run_lane,
)
from precog.backtest.walkforward import Window
from precog.config.loader import Config

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25  # how often the parent looks at its lane processes while none of them says anything
STOP_SECONDS = 5.0  # a terminated lane process gets this long to exit before it is killed


class LanesNotPortable(Exception):  # noqa: N818 - a reason to run in-process, not an error of the run
    """The run's options cannot be handed to another process (a model or method that does not pickle, a class a
    fresh interpreter cannot import): its lanes run one after another in this process instead."""


@dataclass
class LaneTask:
    """Everything a lane's process needs to replay its windows (pickled; the dataset is re-opened from `opts`)."""

    db_url: str
    config: Config
    opts: BacktestOptions
    sigma: float
    tz_name: str
    wins: list[Window]
    lane: int
    lanes: int
    lane_methods: list[ChosenMethod]
    bankroll: Decimal
    half: Decimal
    backtest_id: int
    progress: bool = True  # whether the parent wants progress reports
    log_levels: dict[str, int] | None = None  # the parent's logger levels ("" the root), set by `run_lanes`
    log_disabled: int = logging.NOTSET  # the parent's `logging.disable` level

    def describe(self) -> str:
        return f"lane {self.lane} ({', '.join(c.ref for c in self.lane_methods)})"


# ------------------------------------------------------------------------------------------------ parent


async def run_lanes(tasks: list[LaneTask], jobs: int, progress: Callable[[Progress], None] | None,
                    finished: dict[int, list[WindowOutcome]] | None = None) -> list[list[WindowOutcome]]:
    """Replay each task's lane in its own process, at most `jobs` at once; their outcomes in lane order.
    Raises LanesNotPortable before any process starts when the tasks cannot cross to one, and a lane's own
    exception (same type and message) when a lane fails. `finished` receives each lane's windows as they end
    (so a caller can still store what was replayed when a lane fails, as it would one after another)."""
    levels, disabled = _parent_logging()
    for t in tasks:
        t.progress, t.log_levels, t.log_disabled = progress is not None, levels, disabled
    payloads = [_portable_task(t) for t in tasks]
    ctx = multiprocessing.get_context("spawn")
    messages: Any = ctx.Queue()
    go = ctx.Event()  # set once the first lanes could load their task: none touches the database before
    procs: dict[int, BaseProcess] = {}
    results: dict[int, list[WindowOutcome]] = {}
    windows = finished if finished is not None else {}
    waiting = list(range(len(tasks)))
    first = set(waiting[:jobs])
    ready: set[int] = set()
    combined = _CombinedProgress(len(tasks), len(tasks[0].wins), progress)

    def start(lane: int) -> None:
        p = ctx.Process(target=_lane_main, args=(lane, payloads[lane], messages, go), daemon=True,
                        name=f"precog-backtest-{tasks[lane].backtest_id}-lane-{lane}")
        p.start()
        procs[lane] = p

    def handle(msg: tuple[Any, ...]) -> None:
        kind, lane = msg[0], msg[1]
        if lane in abandoned and kind != "log":
            return  # stopped after an earlier lane failed: as one after another, it never ran
        if kind == "log":
            _handle_log(msg[2])
        elif kind == "progress":
            combined.update(lane, msg[2])
        elif kind == "ready":
            ready.add(lane)
            if first <= ready:
                go.set()
        elif kind == "not_portable":
            why = f"{tasks[lane].describe()} could not load its task in a new process: {msg[2]}"
            # nothing replayed yet: the caller replays the lanes in-process instead
            raise LanesNotPortable(why) if not go.is_set() else BacktestError(why)
        elif kind == "window":
            windows.setdefault(lane, []).append(pickle.loads(msg[2]))  # noqa: S301 - our own lane's bytes
        elif kind == "done":
            results[lane] = windows.get(lane, [])
            combined.finish(lane)
            procs[lane].join(STOP_SECONDS)
        elif kind == "failed":
            exc, child_traceback = msg[2], msg[3]
            exc.add_note(f"raised in backtest {tasks[lane].describe()}, process {procs[lane].pid}:\n"
                         f"{child_traceback}")
            fail(lane, exc)

    failure: list[tuple[int, BaseException]] = []  # the failed lane with the lowest number, and its exception

    def fail(lane: int, exc: BaseException) -> None:
        """As one after another: the lanes before the failed one finish (their windows are stored); the lanes
        after it would never have started, so they are stopped and their windows dropped; then the failure is
        raised (`needed` ends the loop)."""
        if failure and failure[0][0] < lane:
            return  # an earlier lane failed already: this one would not have run
        failure[:] = [(lane, exc)]
        results[lane] = windows.get(lane, [])
        waiting.clear()
        for later in [n for n in procs if n > lane]:
            p = procs[later]
            if p.is_alive():
                p.terminate()
            abandoned.add(later)
            windows.pop(later, None)

    def needed() -> list[int]:
        last = failure[0][0] if failure else len(tasks) - 1
        return [n for n in range(last + 1) if n not in abandoned]

    def check_exits() -> None:
        """A lane whose process exited without its outcomes or its exception (killed, out of memory, could not
        start) fails the run, once what it sent before exiting (all in the queue by then) has been read."""
        gone = [lane for lane, p in procs.items()
                if lane not in results and lane not in abandoned and not p.is_alive()]
        if not gone:
            return
        while (msg := _next(messages, block=False)) is not None:
            handle(msg)
        for lane in gone:
            if lane not in results:
                p = procs[lane]
                why = f"{tasks[lane].describe()}: its process (pid {p.pid}) exited with code {p.exitcode} before "
                if not go.is_set():  # it never started (e.g. a spawned interpreter re-ran an unguarded script)
                    raise LanesNotPortable(why + "it could start its replay")
                raise BacktestError("backtest " + why + "finishing")

    abandoned: set[int] = set()
    try:
        checked = time.monotonic()
        while any(n not in results for n in needed()):
            while waiting and len(procs) - len(results) < jobs:
                start(waiting.pop(0))
            msg = await asyncio.to_thread(_next, messages)
            if msg is not None:
                handle(msg)
            if msg is None or time.monotonic() - checked >= POLL_SECONDS:
                checked = time.monotonic()
                check_exits()
    finally:
        _stop(procs)
        messages.close()
        messages.cancel_join_thread()  # the parent never puts: nothing of ours to flush
    if failure:
        raise failure[0][1]
    return [results[lane] for lane in range(len(tasks))]


def _portable_task(task: LaneTask) -> bytes:
    """The task pickled, checked to load back as it is (a lambda, a local class, a lock or an open file in the
    options fails here, before any process starts)."""
    try:
        payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)  # noqa: S301 - our own bytes, just made
    except Exception as exc:  # noqa: BLE001 - whatever does not pickle, the lanes run in-process
        raise LanesNotPortable(f"{task.describe()}: its options do not pickle ({type(exc).__name__}: {exc})") \
            from exc
    return payload


def _next(messages: Any, block: bool = True) -> Any:
    """The next message; None after POLL_SECONDS without one (at once without blocking)."""
    try:
        return messages.get(block, POLL_SECONDS)
    except queue.Empty:
        return None


def _stop(procs: dict[int, BaseProcess]) -> None:
    """Every lane process ended and reaped: terminated (SIGTERM) if still running, killed if it lingers."""
    for p in procs.values():
        if p.is_alive():
            p.terminate()
    for p in procs.values():
        p.join(STOP_SECONDS)
        if p.is_alive():
            p.kill()
            p.join()
        p.close()


def _parent_logging() -> tuple[dict[str, int], int]:
    """The levels set on this process's loggers (the CLI quiets some), for the lane processes to log alike."""
    levels = {"": logging.getLogger().level}
    for name, lg in logging.Logger.manager.loggerDict.items():
        if isinstance(lg, logging.Logger) and lg.level != logging.NOTSET:
            levels[name] = lg.level
    return levels, logging.root.manager.disable


def _handle_log(record: logging.LogRecord) -> None:
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


class _CombinedProgress:
    """The lanes' latest progress as one: the share of all (lane, window) pairs done, their events and fills
    summed, the simulated time of the lane furthest behind."""

    def __init__(self, lanes: int, windows: int, callback: Callable[[Progress], None] | None) -> None:
        self.lanes, self.windows, self.callback = lanes, windows, callback
        self.latest: dict[int, Progress] = {}
        self.finished: set[int] = set()

    def update(self, lane: int, p: Progress) -> None:
        self.latest[lane] = p
        self._emit()

    def finish(self, lane: int) -> None:
        self.finished.add(lane)
        self._emit()

    def _emit(self) -> None:
        if self.callback is None or not self.latest:
            return
        done = 0.0
        for lane in range(self.lanes):
            p = self.latest.get(lane)
            if lane in self.finished:
                done += self.windows
            elif p is not None:  # its window index counts from the lane's first (lane * windows)
                done += p.window - lane * self.windows + p.events_done / max(p.events_total, 1)
        ps = list(self.latest.values())
        running = [p for lane, p in self.latest.items() if lane not in self.finished] or ps
        total = self.lanes * self.windows
        self.callback(Progress(window=min(int(done), total - 1), windows=total,
                               events_done=sum(p.events_done for p in ps), events_total=sum(p.events_total for p in ps),
                               fills=sum(p.fills for p in ps), sim_time=min(p.sim_time for p in running),
                               lanes=self.lanes, share=min(done / total, 1.0)))


# ------------------------------------------------------------------------------------------------- child


def _lane_main(lane: int, payload: bytes, messages: Any, go: Any) -> None:
    """A lane's process: load the task, open the dataset, wait for the go, replay the lane, send the outcomes
    (or the exception) to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    _exit_with_parent()
    try:
        task: LaneTask = pickle.loads(payload)  # noqa: S301 - the parent's own bytes
    except BaseException as exc:  # noqa: BLE001 - e.g. a class only the parent's __main__ defines
        messages.put(("not_portable", lane, f"{type(exc).__name__}: {exc}"))
        return
    try:
        _log_to_parent(messages, lane, task)
        started = time.perf_counter()
        dataset = open_lane_dataset(task.opts, task.sigma, task.tz_name)
        log.debug("backtest %s %s: dataset opened in %.2f s", task.backtest_id, task.describe(),
                  time.perf_counter() - started)
        messages.put(("ready", lane))
        go.wait()
        started = time.perf_counter()
        asyncio.run(_replay(task, dataset, messages))
        log.debug("backtest %s %s: replayed in %.2f s", task.backtest_id, task.describe(),
                  time.perf_counter() - started)
        messages.put(("done", lane))
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent, which re-raises it
        messages.put(("failed", lane, _portable_exception(exc), traceback.format_exc()))


async def _replay(task: LaneTask, dataset: Any, messages: Any) -> None:
    def progress(p: Progress) -> None:
        messages.put(("progress", task.lane, p))

    def window(out: WindowOutcome) -> None:
        # pickled here, not in the queue's feeder thread, where a failure would be lost
        messages.put(("window", task.lane, pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)))

    conn = replay_connection(task.db_url)
    try:
        await run_lane(conn, task.config, task.opts, dataset, task.wins, task.lane, task.lanes, task.lane_methods,
                       task.bankroll, task.half, task.backtest_id, progress if task.progress else None,
                       on_window=window)
    finally:
        conn.close()


def _portable_exception(exc: BaseException) -> BaseException:
    """The exception itself when it crosses to the parent as the same type and message; else a RuntimeError
    naming its type and message."""
    try:
        back = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes, just made
        if type(back) is type(exc) and str(back) == str(exc):
            return exc
    except Exception:  # noqa: BLE001, S110 - an exception that does not pickle is described instead
        pass
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _exit_with_parent() -> None:
    """End this process as soon as its parent is gone (even killed with SIGKILL): no orphan replays a lane."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class _ToParent(QueueHandler):
    def __init__(self, messages: Any, lane: int) -> None:
        super().__init__(messages)
        self.lane = lane

    def enqueue(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a record that cannot cross is dropped, never fails the replay
            self.queue.put_nowait(("log", self.lane, record))


def _log_to_parent(messages: Any, lane: int, task: LaneTask) -> None:
    """This process's log records go to the parent's loggers, filtered by the parent's levels."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_ToParent(messages, lane))
    for name, level in (task.log_levels or {}).items():
        logging.getLogger(name or None).setLevel(level)
    if task.log_disabled:
        logging.disable(task.log_disabled)
