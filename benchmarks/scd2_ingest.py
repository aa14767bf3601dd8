"""Benchmark: market snapshots through the SCD2 writer vs a naive per-market transaction vs raw COPY.

20 batches of 10,000 market snapshots (about 30% material changes per batch) into `markets`.
Baselines in the same run on the same server: (a) naive: one transaction per market (SELECT ... FOR UPDATE
the current row, compare, UPDATE it and INSERT the new version); (b) raw COPY of the same rows into an
unindexed table (the physical floor), timed batch by batch in turn with the SCD2 writer.

    python benchmarks/scd2_ingest.py [--batches 20] [--batch-size 10000] [--naive-batches 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from precog.db import embedded
from precog.db.migrate import migrate
from precog.ingest import scd2

CENT = Decimal("0.01")


def make_batches(n_batches: int, batch_size: int, seed: int = 7) -> list[list[dict]]:
    rng = random.Random(seed)
    tickers = [f"KXNFLGAME-BENCH-{i:05d}" for i in range(batch_size)]
    bids = {t: Decimal(rng.randint(5, 90)) / 100 for t in tickers}
    volume = dict.fromkeys(tickers, 1000)
    batches = []
    for _ in range(n_batches + 1):  # batch 0 seeds the table (not timed)
        batch = []
        for t in tickers:
            r = rng.random()
            if r < 0.30:  # material change: a move of 1-3 cents
                bids[t] = min(Decimal("0.95"), max(Decimal("0.03"), bids[t] + CENT * rng.choice((-3, -2, -1, 1, 2, 3))))
                volume[t] += rng.randint(10, 50)
            # else: unchanged quote (immaterial)
            bid = bids[t]
            batch.append({
                "market_id": t, "platform_id": "kalshi", "event_id": None, "external_id": t, "ticker": t,
                "title": f"Bench market {t}", "market_type": "binary", "yes_bid": bid, "yes_ask": bid + CENT * 2,
                "no_bid": Decimal(1) - bid - CENT * 2, "no_ask": Decimal(1) - bid, "last_price": bid + CENT,
                "volume": volume[t], "status": "open", "tick_size": CENT, "notional_value": Decimal(1),
            })
        batches.append(batch)
    return batches


def bench_scd2_and_raw_copy(url: str, batches: list[list[dict]], t0: datetime) -> tuple[float, int, float]:
    """The SCD2 writer and the raw-COPY floor, batch by batch in turn on two connections, so that load from
    other work on the machine falls on both alike (the ratio is what the target is about)."""
    cols = scd2.MARKETS.columns
    copy_sql = f"COPY bench_raw ({', '.join(cols)}) FROM STDIN"  # noqa: S608 - constant column list
    with psycopg.connect(url) as conn, psycopg.connect(url) as raw:
        raw.execute("CREATE UNLOGGED TABLE IF NOT EXISTS bench_raw AS SELECT * FROM markets WITH NO DATA")
        raw.execute("TRUNCATE bench_raw")
        raw.commit()
        scd2.write_batch(conn, scd2.MARKETS, batches[0], t0)
        conn.commit()
        written = 0
        scd2_s = copy_s = 0.0
        for i, batch in enumerate(batches[1:], start=1):
            start = time.perf_counter()
            written += scd2.write_batch(conn, scd2.MARKETS, batch, t0 + timedelta(seconds=i)).versions_written
            conn.commit()
            scd2_s += time.perf_counter() - start
            # the floor: the same rows, plain COPY (text, psycopg's formatting) into an unindexed table
            start = time.perf_counter()
            with raw.cursor().copy(copy_sql) as copy:
                for row in batch:
                    copy.write_row([row.get(c) for c in cols])
            raw.commit()
            copy_s += time.perf_counter() - start
    rows = sum(len(b) for b in batches[1:])
    return rows / scd2_s, written, rows / copy_s


def _material(old: dict, new: dict) -> bool:
    for col in scd2.MARKET_PRICE_COLUMNS:
        a, b = old[col], new[col]
        if a != b and (a is None or b is None or abs(b - a) >= CENT or (a > 0 and abs(b - a) / a >= Decimal("0.02"))):
            return True
    return abs(new["volume"] - old["volume"]) >= 10 or new["status"] != old["status"]


def bench_naive(url: str, batches: list[list[dict]], t0: datetime) -> tuple[float, int]:
    cols = scd2.MARKETS.columns
    insert = (f"INSERT INTO markets ({', '.join(cols)}, created_at) "  # noqa: S608 - constant column list
              f"VALUES ({', '.join(['%s'] * len(cols))}, %s)")
    select = ("SELECT id, yes_bid, yes_ask, no_bid, no_ask, last_price, volume, status FROM markets "
              "WHERE market_id = %s AND row_current_ind FOR UPDATE")
    written = 0
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for i, batch in enumerate(batches, start=1):
            ts = t0 + timedelta(seconds=i)
            for row in batch:
                with conn.transaction():
                    cur = conn.execute(select, (row["market_id"],)).fetchone()
                    if cur is not None:
                        old = dict(zip(("id", "yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "volume", "status"),
                                       cur, strict=True))
                        if not _material(old, row):
                            continue
                        conn.execute("UPDATE markets SET row_current_ind = FALSE, row_end_ts = %s WHERE id = %s",
                                     (ts, old["id"]))
                    conn.execute(insert, [*(row.get(c) for c in cols), ts])
                    written += 1
        elapsed = time.perf_counter() - start
    rows = sum(len(b) for b in batches)
    return rows / elapsed, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--naive-batches", type=int, default=2,
                        help="batches pushed through the naive path (it is slow; rows/s is what is compared)")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="precog-bench-", dir="/tmp"))
    home.chmod(0o755)
    admin = embedded.server_uri(home)
    try:
        urls = {}
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in ("bench_scd2", "bench_naive"):
                conn.execute(f"CREATE DATABASE {name}")
                urls[name] = embedded.with_database(admin, name)
        for url in urls.values():
            migrate(url)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        batches = make_batches(args.batches, args.batch_size)
        scd2_rate, scd2_written, copy_rate = bench_scd2_and_raw_copy(urls["bench_scd2"], batches, t0)
        naive_rate, naive_written = bench_naive(urls["bench_naive"], batches[: args.naive_batches + 1], t0)
    finally:
        embedded.stop(home)

    snapshots = args.batches * args.batch_size
    print(f"{'path':<34}{'rows/s':>12}{'versions written':>18}")
    print(f"{'scd2 writer (stage+close+COPY)':<34}{scd2_rate:>12,.0f}{scd2_written:>18,}")
    print(f"{'naive per-market transaction':<34}{naive_rate:>12,.0f}{naive_written:>18,}")
    print(f"{'raw COPY, unindexed (floor)':<34}{copy_rate:>12,.0f}{snapshots:>18,}")
    print(f"snapshots: {snapshots:,} in {args.batches} batches; material changes: "
          f"{scd2_written / snapshots:.0%}; naive measured on {args.naive_batches + 1} batches")
    print(f"scd2 speedup vs naive: {scd2_rate / naive_rate:.1f}x; fraction of raw COPY: {scd2_rate / copy_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
