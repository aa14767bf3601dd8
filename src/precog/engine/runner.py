"""The long-running process behind `precog run`: one asyncio loop stepping the engine in real time, with a
status snapshot after every step and a clean stop (open entry orders canceled, the run closed) on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from precog.engine.core import Engine

log = logging.getLogger(__name__)


@dataclass
class Status:
    run_id: int
    mode: str
    venue: str
    trading_state: str
    steps: int
    open_positions: int
    open_orders: int
    orders_sent: int
    fills: int
    pnl: Decimal
    breakers: list[str]
    note: str = ""


def status_of(engine: Engine, venue_label: str, note: str = "") -> Status:
    return Status(engine.run_id, engine.mode, venue_label, engine.trading_state, engine.stats.steps,
                  len(engine.portfolio.open_positions()),
                  sum(1 for o in engine.executor.open.values() if o.is_open), engine.executor.orders_sent,
                  engine.executor.fills_booked, engine.run_pnl(), list(engine.stats.breakers), note)


async def run_loop(engine: Engine, *, interval_s: float, venue_label: str,
                   on_status: Callable[[Status], None] | None = None, before_step: Callable[[float], Any] | None = None,
                   until: Callable[[], bool] | None = None, duration_s: float | None = None,
                   stop: asyncio.Event | None = None) -> Status:
    """Step until `stop` is set (SIGINT/SIGTERM set it), `until()` is true or `duration_s` has passed."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / platform without signals
            pass
    started = time.monotonic()
    last = started
    try:
        await engine.start()
        while not stop.is_set():
            now = time.monotonic()
            if before_step is not None:
                before_step(now - last)
            last = now
            try:
                await engine.step()
            except Exception as exc:  # noqa: BLE001 - one bad cycle must not kill the loop (spec 5.12)
                log.exception("engine step failed: %s", exc)
                if engine.alerts is not None:
                    engine.alerts.raise_alert("engine_step_failed", "high", "trading_engine", f"engine step failed: {exc}",
                                              dedup_key=f"step:{type(exc).__name__}", category="system")
            if on_status is not None:
                on_status(status_of(engine, venue_label))
            if until is not None and until():
                break
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        final = status_of(engine, venue_label, "stopping")
        await engine.stop({"steps": engine.stats.steps, "pnl": str(final.pnl), "breakers": final.breakers})
    return status_of(engine, venue_label, "stopped")
