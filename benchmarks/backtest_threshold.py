"""The standard threshold backtest (comparable with other engines): events/s through Precog's replay path.

Data (generated, fixed seed, not timed): 1,000,000 top-of-book quote events over 500 binary markets. Per
market a random-walk fair value kept in [0.02, 0.98] with steps of about a cent (normal, sd 1 cent); bid
and ask 1-2 cents either side (whole cents, 1..99); sizes 10-500; the market of each event chosen
uniformly; events 100 ms apart.

Strategy: remember the last mid per market; buy 10 YES at market when the mid crosses below 0.30 while
flat; sell at market when it crosses above 0.70 while holding.

Timed path (`precog.backtest.fast`): for every event, the quote state of the touched market and the
strategy; for every order, the market's book in the local exchange's matching engine brought to the
latest quote (the maker's resting orders cancelled and replaced), the order matched there (price-time
priority, quoted sizes; fills at the resting quote's price), fees, holds, balances and positions booked
by the exchange in Decimal. Not timed: data generation, creating the 500 markets and accounts.

Baseline in the same process: the same loop and strategy with no exchange (fills assumed at the quote,
no money) — what the event loop alone costs.

    .venv/bin/python benchmarks/backtest_threshold.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from precog.backtest.fast import FastReplay, ThresholdMethod, replay_events  # noqa: E402
from precog.venues.exchange.clock import SimClock  # noqa: E402
from precog.venues.exchange.engine import Exchange  # noqa: E402

MARKETS = 500
SEED = 20240901


def generate(n: int, markets: int = MARKETS, seed: int = SEED) -> list[tuple[int, int, int, int, int, int]]:
    rng = random.Random(seed)
    fair = [rng.uniform(0.02, 0.98) for _ in range(markets)]
    out = []
    for k in range(n):
        i = rng.randrange(markets)
        f = min(0.98, max(0.02, fair[i] + rng.gauss(0.0, 0.01)))
        fair[i] = f
        c = round(f * 100)
        bid = max(1, c - rng.randint(1, 2))
        ask = min(99, c + rng.randint(1, 2))
        out.append((i, bid, ask, rng.randint(10, 500), rng.randint(10, 500), k * 100))
    return out


def bare_loop(tickers: list[str], events: list[tuple[int, int, int, int, int, int]]) -> tuple[float, int]:
    """The same strategy on plain dicts, no exchange: the cost of the loop itself."""
    last: dict[str, int] = {}
    holding: dict[str, int] = {}
    orders = 0
    t0 = time.perf_counter()
    for i, bid, ask, _bs, _as, _ts in events:
        t = tickers[i]
        mid2 = bid + ask
        prev = last.get(t)
        last[t] = mid2
        if prev is None:
            continue
        if t in holding:
            if mid2 > 140 >= prev:
                del holding[t]
                orders += 1
        elif mid2 < 60 <= prev:
            holding[t] = 10
            orders += 1
    return time.perf_counter() - t0, orders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 events instead of 1,000,000")
    ap.add_argument("--events", type=int, default=None)
    args = ap.parse_args()
    n = args.events or (100_000 if args.quick else 1_000_000)
    events = generate(n)
    tickers = [f"KXREPLAY-M{i:03d}-Y" for i in range(MARKETS)]

    base_s, base_orders = bare_loop(tickers, events)

    ex = Exchange(SimClock(1_700_000_000_000))
    rt = FastReplay(ex, "bench", tickers, bankroll=Decimal("1000000"))
    strat = ThresholdMethod()
    rt.methods.append(strat)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    replay_events(rt, tickers, events)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    acct = ex.account("bench")
    audit = ex.audit()
    assert audit["imbalance"] == 0, audit
    rate = n / wall
    print(f"{'path':<52}{'events/s':>14}{'orders':>10}")
    print(f"{'bare loop, no exchange (baseline)':<52}{n / base_s:>14,.0f}{base_orders:>10}")
    print(f"{'replay through the matching engine + accounting':<52}{rate:>14,.0f}{rt.stats.orders:>10}")
    print(f"events: {n:,}; markets: {MARKETS}; fills: {len(rt.stats.fills):,}; book syncs: {rt.stats.syncs:,}; "
          f"CPU {n / cpu:,.0f} events/s; fees paid ${sum(f.fee for f in rt.stats.fills)}; "
          f"cash ${acct.balance}; open markets held {sum(1 for p in acct.positions.values() if p.held[0])}")
    print(f"ratio to the bare loop: {rate / (n / base_s):.2f}; exchange money conserved: yes")
    print(f"threshold backtest: {rate:,.0f} events/s ({n:,} events, {rt.stats.orders:,} orders)")


if __name__ == "__main__":
    main()
