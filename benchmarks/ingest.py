"""Benchmark: market-data ingestion from the local exchange's WebSocket into PostgreSQL.

The local exchange runs in its own process with 2,000 markets; a market maker there re-quotes (amends a
resting order, moving the best bid by one cent) so every amend is a genuine `ticker` update on the
exchange's WebSocket. This process runs the real ingestion (`MarketFeed`: WebSocket client, quality checks,
merge, SCD2 writer batches every 100 ms) and measures, per phase:

  paced   the exchange re-quotes each market 10 times a second (20,000 updates/s in total)
  max     the exchange re-quotes as fast as it can stream (it waits while more than 4,000 messages are
          made but not yet sent)
  per-row the same stream (as fast as possible), written with one INSERT per update (plus the UPDATE that
          closes the previous version), row by row, committed once per flush: the baseline

updates/s persisted = stream updates whose state is committed in PostgreSQL per second (with the
material-change rule, an update that changed nothing material is committed as "no new version").
freshness = commit time (in the writing thread, right after COMMIT) - the exchange's event time (`time` in
the ticker message, ms); wire = receive time - event time; flush ms (CPU) = wall time of a batch and the
writer thread's own CPU time in it; CPU columns per process (100% = one core), DB = all PostgreSQL processes.

    .venv/bin/python benchmarks/ingest.py            # 10 s phases
    .venv/bin/python benchmarks/ingest.py --quick    # 4 s phases
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import psycopg

SERIES = "KXBENCH"
MAX_PHASE_BACKLOG = 4000  # messages made but not yet sent, above which the max-rate market maker waits
EVENT = "KXBENCH-25NOV30"


def ticker_of(i: int) -> str:
    return f"{EVENT}-M{i:04d}"


# ----------------------------------------------------------------------------------------- exchange side


def serve_exchange(markets: int) -> None:
    """Child process: the local exchange + a market maker driven by commands on stdin."""
    from precog.venues.exchange.engine import Exchange
    from precog.venues.exchange.runner import ExchangeServer

    # The market maker (a thread of this process) must not hold the GIL for 5 ms stretches while the
    # server's loop has frames to send: that would be load-generator lag, not the exchange's.
    sys.setswitchinterval(0.001)
    ex = Exchange(seed=1)
    ex.create_series(SERIES, "Benchmark series")
    ex.create_event(EVENT, SERIES, "Benchmark event")
    for i in range(markets):
        ex.create_market(ticker_of(i), EVENT, title=f"Benchmark market {i}")
    ex.create_account("mm", Decimal("100000000"))
    orders = [ex.place_order("mm", ticker_of(i), "yes", "buy", 1, Decimal("0.40")).order_id for i in range(markets)]
    prices = (Decimal("0.41"), Decimal("0.40"))
    state: dict[str, Any] = {"rate": -1.0, "stop": False, "sent": 0}

    def driver() -> None:
        k = 0
        started = time.perf_counter()
        done_at_start = 0
        rate: float = -1.0
        while not state["stop"]:
            if state["rate"] != rate:  # a new phase
                rate, started, done_at_start = state["rate"], time.perf_counter(), state["sent"]
            if rate < 0:
                time.sleep(0.01)
                continue
            burst = 200
            if rate == 0 and hub.backlog() > MAX_PHASE_BACKLOG:
                # "as fast as possible" = as fast as the exchange can stream: never more than a few
                # hundred ms of messages waiting to be sent (an unbounded lead is only a queue's length)
                time.sleep(0.001)
                continue
            if rate > 0:
                due = int((time.perf_counter() - started) * rate) - (state["sent"] - done_at_start)
                if due <= 0:
                    time.sleep(0.002)
                    continue
                burst = min(burst, due)
            for _ in range(burst):
                i = k % markets
                ex.amend_order("mm", orders[i], ticker=ticker_of(i), side="yes", action="buy",
                               price=prices[(k // markets) % 2])
                k += 1
            state["sent"] += burst

    # the feed connects without a key: signing changes only the handshake, not what is measured
    with ExchangeServer(ex, tick_interval=1.0, allow_unsigned_ws=True) as server:
        hub = server.core.hub
        thread = threading.Thread(target=driver, daemon=True)
        thread.start()
        print(f"ready {server.base_url} {server.ws_url}", flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "rate":
                state["rate"] = float(cmd[1])
                print(f"ok {state['sent']}", flush=True)
            elif cmd[0] == "sent":
                print(f"sent {state['sent']}", flush=True)
            elif cmd[0] == "stop":
                break
        state["stop"] = True
        thread.join(5)


class ExchangeProcess:
    def __init__(self, markets: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-exchange", "--markets", str(markets)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"the exchange did not start: {line}")
        self.base_url, self.ws_url = line[1], line[2]

    def command(self, text: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().split()[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ----------------------------------------------------------------------------------------- ingestion side


def _per_row_feed_class() -> Any:
    from precog.ingest.market_feed import MarketFeed
    from precog.ingest.market_store import derive_prices
    from precog.ingest.scd2 import MARKETS, jsonb

    cols = MARKETS.columns
    insert = (f"INSERT INTO markets ({', '.join(cols)}, created_at, row_current_ind) "  # noqa: S608 - constants
              f"VALUES ({', '.join(['%s'] * len(cols))}, %s, TRUE)")
    close = ("UPDATE markets SET row_current_ind = FALSE, row_end_ts = GREATEST(created_at, %s) "
             "WHERE market_id = %s AND row_current_ind")

    class PerRowFeed(MarketFeed):  # type: ignore[misc, valid-type]
        """Baseline: one INSERT per update (plus the UPDATE closing the previous version), row by row;
        committed once per flush like the batched writer, so only the write strategy differs."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.backlog: list[tuple[str, dict[str, Any], float, float]] = []

        def _queue(self, ticker: str, fields: dict[str, Any], when: float, event_ts: float) -> None:
            self.backlog.append((ticker, dict(fields), when, event_ts))
            self.stats.updates += 1

        async def flush(self) -> int:
            if not self.backlog:
                return 0
            work, self.backlog = self.backlog[:200], self.backlog[200:]
            async with self._db_lock:
                return await self._db(self._write, work)

        def _write(self, work: list[tuple[str, dict[str, Any], float, float]]) -> int:
            conn = self.store.conn
            started = time.perf_counter()
            with conn.transaction():  # same commit cadence as the batched writer: one commit per flush
                for ticker, fields, when, _ in work:
                    row = derive_prices({**self.cache[ticker], **fields})
                    self.cache[ticker] = row
                    values = [jsonb(row[c]) if c in MARKETS.json_columns and row[c] is not None else row.get(c)
                              for c in cols]
                    at = datetime.fromtimestamp(when, UTC)
                    conn.execute(close, (at, ticker))
                    conn.execute(insert, [*values, at])
            committed = time.time()
            self.stats.flush_seconds += time.perf_counter() - started
            self.stats.batches += 1
            self.stats.rows_flushed += len(work)
            self.stats.committed_updates += len(work)
            self.stats.versions_written += len(work)
            self.stats.freshness_ms.extend((committed - ts) * 1000.0 for *_, ts in work)
            return len(work)

    return PerRowFeed


def _measured_feed_class(base: Any) -> Any:
    class MeasuredFeed(base):  # type: ignore[misc, valid-type]
        """The feed as it is, plus a sample of the wire lag (exchange event time -> received here)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.wire_ms: list[float] = []
            self.writer_cpu_s = 0.0  # CPU time of the writing threads themselves (Python work per batch)
            cpu_lock = threading.Lock()

            def timed(write: Any) -> Any:
                def timed_write(*a: Any, **kw: Any) -> Any:
                    started = time.thread_time()
                    try:
                        return write(*a, **kw)
                    finally:
                        with cpu_lock:
                            self.writer_cpu_s += time.thread_time() - started

                return timed_write

            for store in getattr(self, "writers", (self.store,)):
                store.write_markets = timed(store.write_markets)

        def _queue(self, ticker: str, fields: dict[str, Any], when: float, event_ts: float) -> None:
            if self.stats.updates % 16 == 0:
                self.wire_ms.append((when - event_ts) * 1000.0)
            super()._queue(ticker, fields, when, event_ts)

    return MeasuredFeed


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process on this machine (the embedded server's backends)."""
    out = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] == "postgres" and proc.info["cpu_times"] is not None:
            out[proc.pid] = sum(proc.info["cpu_times"][:2])
    return out


async def run_phase(name: str, feed: Any, exchange: ExchangeProcess, rate: float, seconds: float,
                    stop_rate_after: bool = True) -> dict[str, Any]:
    stats = feed.stats
    before_committed = stats.committed_updates
    before_received = stats.updates
    before_versions = stats.versions_written
    before_batches, before_flush, before_rows = stats.batches, stats.flush_seconds, stats.rows_flushed
    freshness_start = len(stats.freshness_ms)
    wire_start = len(feed.wire_ms)
    writer_cpu0 = feed.writer_cpu_s
    me, other = psutil.Process(), psutil.Process(exchange.proc.pid)
    cpu0 = (me.cpu_times(), other.cpu_times())
    db0 = _postgres_cpu()
    sent0 = exchange.command(f"rate {rate:g}")
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    cpu1 = (me.cpu_times(), other.cpu_times())
    db1 = _postgres_cpu()
    sent1 = exchange.command("sent")
    committed = stats.committed_updates - before_committed
    batches = max(1, stats.batches - before_batches)
    samples = list(stats.freshness_ms)[freshness_start:]
    if stop_rate_after:
        exchange.command("rate -1")
    q = statistics.quantiles(samples, n=100) if len(samples) >= 100 else [float("nan")] * 99
    wire = feed.wire_ms[wire_start:]
    w = statistics.quantiles(wire, n=100) if len(wire) >= 100 else [float("nan")] * 99
    return {
        "phase": name,
        "produced_per_s": (sent1 - sent0) / elapsed,
        "received_per_s": (stats.updates - before_received) / elapsed,
        "persisted_per_s": committed / elapsed,
        "versions_per_s": (stats.versions_written - before_versions) / elapsed,
        "p50_ms": q[49],
        "p99_ms": q[98],
        "wire_p50_ms": w[49],
        "wire_p99_ms": w[98],
        "samples": len(samples),
        "flush_ms": (stats.flush_seconds - before_flush) / batches * 1000,
        "flush_cpu_ms": (feed.writer_cpu_s - writer_cpu0) / batches * 1000,
        "rows_per_flush": (stats.rows_flushed - before_rows) / batches,
        "ingest_cpu": (sum(cpu1[0][:2]) - sum(cpu0[0][:2])) / elapsed * 100,
        "exchange_cpu": (sum(cpu1[1][:2]) - sum(cpu0[1][:2])) / elapsed * 100,
        "db_cpu": sum(db1.get(pid, 0.0) - t for pid, t in db0.items()) / elapsed * 100,
    }


async def ingest_benchmark(db_url: str, exchange: ExchangeProcess, markets: int, seconds: float,
                           writers: int = 2) -> list[dict[str, Any]]:
    from precog.db.connection import connect
    from precog.ingest.market_feed import MarketFeed, MarketFeedSettings
    from precog.ingest.market_store import MarketStore
    from precog.ingest.quality import DataQualityMonitor
    from precog.venues.kalshi.client import AsyncKalshiClient
    from precog.venues.kalshi.environments import KalshiEnvironment

    env = KalshiEnvironment("local", exchange.base_url, exchange.ws_url)
    results = []
    for label, cls in (("batched", _measured_feed_class(MarketFeed)),
                       ("per-row", _measured_feed_class(_per_row_feed_class()))):
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("TRUNCATE markets, events, series CASCADE")
        rest = AsyncKalshiClient(env, rate_limits="premier")
        settings = MarketFeedSettings("local", {SERIES: None}, flush_interval=0.1, discovery_seconds=3600,
                                      freshness_samples=2_000_000)
        extra = [MarketStore(connect(db_url, autocommit=True), "local") for _ in range(writers - 1)]
        feed = cls(rest, MarketStore(connect(db_url, autocommit=True), "local"), settings, DataQualityMonitor(),
                   ws_url=env.ws_url, extra_stores=extra if label == "batched" else ())
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop))
        deadline = time.monotonic() + 120
        while feed.mode != "streaming" or feed.ws is None or len(feed.cache) < markets:
            if time.monotonic() > deadline:
                raise RuntimeError("ingestion did not start streaming within 120 s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # let the post-subscribe REST catch-up finish
        if label == "batched":
            results.append(await run_phase("paced 20k/s", feed, exchange, 10.0 * markets, seconds))
            await asyncio.sleep(1.0)
            results.append(await run_phase("max", feed, exchange, 0, seconds))
        else:
            results.append(await run_phase("per-row (max)", feed, exchange, 0, seconds))
        backlog = getattr(feed, "backlog", None)
        if isinstance(backlog, list):
            backlog.clear()  # measured already; do not drain a backlog the baseline can never catch up on
        stop.set()
        await asyncio.wait_for(task, 120)
        await rest.aclose()
        for store in feed.writers:
            store.conn.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 s phases instead of 10 s")
    parser.add_argument("--markets", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--writers", type=int, default=2,
                        help="database connections sharing each batch (by market), as `precog ingest run` uses")
    parser.add_argument("--serve-exchange", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_exchange:
        serve_exchange(args.markets)
        return 0
    seconds = args.seconds or (4.0 if args.quick else 10.0)

    from precog.db import embedded
    from precog.db.migrate import migrate

    external = os.environ.get("PRECOG_DATABASE_URL")
    home = None
    if external:
        db_url = external
    else:
        home = Path(tempfile.mkdtemp(prefix="precog-bench-ingest-", dir="/tmp"))
        home.chmod(0o755)
        admin = embedded.server_uri(home)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS precog_bench_ingest WITH (FORCE)")
            conn.execute("CREATE DATABASE precog_bench_ingest")
        db_url = embedded.with_database(admin, "precog_bench_ingest")
    migrate(db_url)
    exchange = ExchangeProcess(args.markets)
    try:
        results = asyncio.run(ingest_benchmark(db_url, exchange, args.markets, seconds, args.writers))
    finally:
        exchange.close()
        if home is not None:
            embedded.stop(home)
            shutil.rmtree(home, ignore_errors=True)  # a throw-away server: ~200 MB a run otherwise left in /tmp

    print(f"{'phase':<16}{'produced/s':>12}{'received/s':>12}{'persisted/s':>13}{'versions/s':>12}"
          f"{'fresh p50 ms':>14}{'fresh p99 ms':>14}{'wire p50/p99':>14}{'flush ms':>10}{'(CPU)':>7}{'rows/flush':>11}{'ingest CPU':>12}"
          f"{'exch. CPU':>11}{'DB CPU':>8}")
    for r in results:
        print(f"{r['phase']:<16}{r['produced_per_s']:>12,.0f}{r['received_per_s']:>12,.0f}"
              f"{r['persisted_per_s']:>13,.0f}{r['versions_per_s']:>12,.0f}{r['p50_ms']:>14,.1f}{r['p99_ms']:>14,.1f}"
              f"{r['wire_p50_ms']:>8,.0f}/{r['wire_p99_ms']:<5,.0f}{r['flush_ms']:>10,.0f}{r['flush_cpu_ms']:>7,.0f}{r['rows_per_flush']:>11,.0f}{r['ingest_cpu']:>11.0f}%{r['exchange_cpu']:>10.0f}%{r['db_cpu']:>7.0f}%")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work shares these CPUs)")
    paced, best, per_row = results[0], results[1], results[2]
    sustained = max(paced["persisted_per_s"], best["persisted_per_s"])
    speedup = sustained / per_row["persisted_per_s"] if per_row["persisted_per_s"] else float("inf")
    print(f"ingest: {sustained:,.0f} updates/s, freshness p99 {paced['p99_ms']:.0f} ms, "
          f"speedup vs per-row {speedup:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
