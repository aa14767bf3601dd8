"""The long-running process behind `precog run`: one asyncio loop stepping the engine in real time, with a
status snapshot after every step and a clean stop (open entry orders canceled, the run closed) on a signal.

A full engine step runs every `interval_s`; when that is longer than the monitor's fast cadence (5 s near a
threshold, spec 5.5) the loop also wakes in between and checks only the positions that are due, and it wakes when
a working entry order's timeout (trading.execution.limit_order_timeout_seconds, spec 5.10) comes, to cancel it
then rather than at the next full cycle."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from precog.engine.account_lock import AccountClaim, AccountInUse, close_refused_run
from precog.engine.core import Engine
from precog.trading.orders import TERMINAL

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
    market_data: str = ""  # where prices come from (a live WebSocket view, or REST only)


def market_data_line(engine: Engine) -> str:
    """`stream up (ingestion): 12/14 markets live, 3,120 reads, 4 over REST, 0 rejected`, or '' without a stream."""
    from precog.engine.market_stream import stream_of

    stream = stream_of(engine.venue)
    if stream is None:
        return ""
    st = stream.status()
    return (f"stream {'up' if st['connected'] else 'DOWN'} ({st['source']}): {st['live']}/{st['followed']} markets "
            f"live, {st['stream_reads']:,} reads, {st['fallbacks']:,} over REST, {st['rejected']:,} rejected")


def status_of(engine: Engine, venue_label: str, note: str = "") -> Status:
    return Status(engine.run_id, engine.mode, venue_label, engine.trading_state, engine.stats.steps,
                  len(engine.portfolio.open_positions()),
                  sum(1 for o in engine.executor.open.values() if o.is_open), engine.executor.orders_sent,
                  engine.executor.fills_booked, engine.run_pnl(), list(engine.stats.breakers), note,
                  market_data_line(engine))


def seconds_to_entry_timeout(engine: Engine) -> float | None:
    """Engine-clock seconds until the next working entry order's timeout; None when none is ahead (one already
    past is canceled at the next wake-up, which this does not hurry: a venue that refuses the cancel is not
    asked again in a busy loop)."""
    now = engine.clock()
    ahead = [(o.expires_at - now).total_seconds() for o in engine.executor.open.values()
             if o.purpose == "entry" and o.status not in TERMINAL and o.expires_at is not None and o.expires_at > now]
    return min(ahead) if ahead else None


def is_outage(exc: BaseException) -> bool:
    """A failed cycle that is an operational outage, not a bug: the venue unreachable, answering 5xx or 429 past
    the client's retries, or the database connection failing."""
    import psycopg

    from precog.venues.kalshi.errors import KalshiRateLimited, KalshiServerError, KalshiTransportError

    return isinstance(exc, KalshiTransportError | KalshiServerError | KalshiRateLimited | psycopg.OperationalError)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def run_loop(engine: Engine, *, interval_s: float, venue_label: str,
                   on_status: Callable[[Status], None] | None = None, before_step: Callable[[float], Any] | None = None,
                   until: Callable[[], bool] | None = None, duration_s: float | None = None,
                   stop: asyncio.Event | None = None, monotonic: Callable[[], float] = time.monotonic,
                   sleep: Callable[[asyncio.Event, float], Awaitable[None]] = _wait) -> Status:
    """Step until `stop` is set (SIGINT/SIGTERM set it), `until()` is true or `duration_s` has passed.

    `monotonic` and `sleep(stop, seconds)` are the loop's clock and its wait (injectable for tests)."""
    stop = stop if stop is not None else asyncio.Event()
    # wake at least at the monitor's fast cadence: a position near a threshold is checked every 5 s
    fast = engine.monitor_config.urgent_seconds
    tick = min(interval_s, fast) if fast > 0 else interval_s
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / platform without signals
            pass
    # one loop per venue account (precog.engine.account_lock): refused before anything reaches the venue
    claim = AccountClaim(engine)
    try:
        await claim.take()
    except AccountInUse as exc:
        close_refused_run(engine, str(exc))
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        raise
    started = monotonic()
    last = started
    next_step = started
    try:
        await engine.start()
        while not stop.is_set():
            await claim.follow()  # a database reconnect lost the claim with the old session
            now = monotonic()
            if before_step is not None:
                before_step(now - last)
            last = now
            full = now >= next_step
            try:
                if full:
                    await engine.step()
                else:
                    await engine.expire_entry_orders()
                    await engine.check_positions()
            except Exception as exc:  # noqa: BLE001 - one bad cycle must not kill the loop (spec 5.12)
                if is_outage(exc):  # expected while the venue or the database is down: one line (the alert below)
                    log.error("engine step failed: %s", exc)
                    log.debug("engine step failed", exc_info=exc)  # the traceback with --debug / LOG_LEVEL=DEBUG
                else:
                    log.exception("engine step failed: %s", exc)
                try:
                    engine.record_failure(exc)  # database errors feed the db_failures breaker
                except Exception:  # noqa: BLE001 - the breaker board itself may be what fails
                    log.exception("could not count the failed step")
                if engine.alerts is not None:
                    try:
                        engine.alerts.raise_alert("engine_step_failed", "high", "trading_engine",
                                                  f"engine step failed: {exc}", dedup_key=f"step:{type(exc).__name__}",
                                                  category="system")
                    except Exception:  # noqa: BLE001 - an alert sink on the failing database must not end the loop
                        log.exception("could not raise engine_step_failed")
            if full:
                next_step = monotonic() + interval_s  # `interval_s` between the end of a cycle and the next
                if on_status is not None:
                    on_status(status_of(engine, venue_label))
                if until is not None and until():
                    break
            if duration_s is not None and monotonic() - started >= duration_s:
                break
            wait = min(tick, next_step - monotonic())
            timeout_in = seconds_to_entry_timeout(engine)
            if timeout_in is not None:
                wait = min(wait, timeout_in)
            await sleep(stop, max(0.0, wait))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
        final = status_of(engine, venue_label, "stopping")
        try:
            await engine.stop({"steps": engine.stats.steps, "pnl": str(final.pnl), "breakers": final.breakers})
        finally:
            claim.release()
    return status_of(engine, venue_label, "stopped")
