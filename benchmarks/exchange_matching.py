"""Matching-engine throughput: orders/s into one in-process book with a realistic order mix.

Mix (per order): ~60% limit orders that rest (no cross), ~25% orders that cross the spread and trade,
~15% cancels of resting orders, spread across YES and NO bids, buys and sells, several accounts.
The baseline is a bare price-time book on plain integers (no accounts, fees or money) run on the same
orders in the same process: the ratio says what the exchange's accounting costs on top of matching.

    .venv/bin/python benchmarks/exchange_matching.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from precog.venues.exchange.clock import SimClock  # noqa: E402
from precog.venues.exchange.engine import Exchange  # noqa: E402
from precog.venues.exchange.errors import ExchangeError  # noqa: E402

TICKER = "KXBENCH-25JAN01-X"
ACCOUNTS = 8
PRICES = tuple(Decimal(c) / 100 for c in range(100))
_last_stats: dict[str, int] = {}


def make_ops(n: int, seed: int = 42) -> list[tuple]:
    """('add', account, side, action, count, cents) / ('cross', ...) / ('cancel', k) — k picks a live order."""
    rng = random.Random(seed)
    ops: list[tuple] = []
    fair = 50
    for _ in range(n):
        if rng.random() < 0.02:
            fair = min(80, max(20, fair + rng.choice((-1, 1))))
        r = rng.random()
        acct = rng.randrange(ACCOUNTS)
        side = "yes" if rng.random() < 0.5 else "no"
        action = "buy" if rng.random() < 0.8 else "sell"
        count = rng.randint(1, 20)
        # the order bids on the YES book (buy yes / sell no) or the NO book (buy no / sell yes)
        side_fair = fair if (side == "yes") == (action == "buy") else 100 - fair
        if r < 0.60:  # rests below the touch of its own side
            ops.append(("add", acct, side, action, count, _side_cents(action, side_fair - rng.randint(1, 8))))
        elif r < 0.85:  # crosses the spread and trades
            ops.append(("add", acct, side, action, count, _side_cents(action, side_fair + rng.randint(1, 6))))
        else:
            ops.append(("cancel", rng.random()))
    return ops


def _side_cents(action: str, bid_tick: int) -> int:
    """A bid at `bid_tick` on the order's book side, as the price of the order's own side."""
    bid_tick = min(98, max(2, bid_tick))
    return bid_tick if action == "buy" else 100 - bid_tick


def bench_matching(n_orders: int, ops: list[tuple] | None = None, *, clock: Callable[[], float] = time.perf_counter
                   ) -> float:
    """Orders (adds + cancels) per second through the exchange engine (accounts, fees, Decimal money).

    `clock` is wall time by default; `time.process_time` gives the CPU-time rate (steadier on a shared machine).
    """
    ops = ops or make_ops(n_orders)
    ex = Exchange(SimClock(1_700_000_000_000), seed=1)
    ex.create_series("KXBENCH", "bench")
    ex.create_event("KXBENCH-25JAN01", "KXBENCH", "bench")
    ex.create_market(TICKER, "KXBENCH-25JAN01")
    users = [ex.create_account(f"u{i}", Decimal("100000000")).user_id for i in range(ACCOUNTS)]
    live: list[str] = []
    rejected = 0
    place = ex.place_order
    cancel = ex.cancel_order
    orders = ex.orders
    start = clock()
    for op in ops:
        if op[0] == "add":
            _, a, side, action, count, cents = op
            try:
                o = place(users[a], TICKER, side, action, count, PRICES[cents])
            except ExchangeError:
                rejected += 1
                continue
            if o.status == "resting":
                live.append(o.order_id)
        else:
            while live:
                i = int(op[1] * len(live))
                oid = live[i]
                live[i] = live[-1]
                live.pop()
                o = orders[oid]
                if o.status == "resting":
                    cancel(o.user_id, oid)
                    break
    elapsed = clock() - start
    _last_stats.update(trades=len(ex.trades), rejected=rejected)
    audit = ex.audit()
    if audit["imbalance"] != 0:
        raise AssertionError(f"money not conserved: {audit}")
    return len(ops) / elapsed


def bench_baseline(n_orders: int, ops: list[tuple] | None = None, *,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    """The same orders through a bare integer price-time book: no accounts, fees, ids or Decimal."""
    ops = ops or make_ops(n_orders)
    levels = [[deque() for _ in range(101)], [deque() for _ in range(101)]]
    qty = [[0] * 101, [0] * 101]
    best = [0, 0]
    live: list[list[int]] = []
    start = clock()
    for op in ops:
        if op[0] == "add":
            _, a, side, action, count, cents = op
            s = (0 if side == "yes" else 1) if action == "buy" else (1 if side == "yes" else 0)
            tick = cents if action == "buy" else 100 - cents
            o = [count, s, tick]
            opp = 1 - s
            while o[0] and best[opp] and tick + best[opp] >= 100:
                t = best[opp]
                lv = levels[opp][t]
                while o[0] and lv:
                    mk = lv[0]
                    if not mk[0]:
                        lv.popleft()
                        continue
                    x = min(o[0], mk[0])
                    o[0] -= x
                    mk[0] -= x
                    qty[opp][t] -= x
                    if not mk[0]:
                        lv.popleft()
                if not qty[opp][t]:
                    lv.clear()
                    b = t - 1
                    while b and not qty[opp][b]:
                        b -= 1
                    best[opp] = b
            if o[0]:
                levels[s][tick].append(o)
                qty[s][tick] += o[0]
                if tick > best[s]:
                    best[s] = tick
                live.append(o)
        else:
            while live:
                i = int(op[1] * len(live))
                o = live[i]
                live[i] = live[-1]
                live.pop()
                if o[0]:
                    s, t = o[1], o[2]
                    qty[s][t] -= o[0]
                    o[0] = 0
                    if not qty[s][t]:
                        levels[s][t].clear()
                        if best[s] == t:
                            b = t - 1
                            while b and not qty[s][b]:
                                b -= 1
                            best[s] = b
                    break
    return len(ops) / (clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (~1 s)")
    args = parser.parse_args()
    n = 50_000 if args.quick else 300_000
    ops = make_ops(n)
    from precog.venues.exchange.gc_tuning import tune_for_matching

    tune_for_matching()  # the GC settings of `precog exchange serve`, for engine and baseline alike
    bench_matching(min(n, 20_000), ops[:20_000])  # warm-up
    runs = 1 if args.quick else 3
    rate = max(bench_matching(n, ops) for _ in range(runs))
    base = max(bench_baseline(n, ops) for _ in range(runs))
    cpu_rate = max(bench_matching(n, ops, clock=time.process_time) for _ in range(runs))
    cpu_base = max(bench_baseline(n, ops, clock=time.process_time) for _ in range(runs))
    adds = sum(1 for op in ops if op[0] == "add")
    print(f"{'case':<44}{'orders/s (wall)':>17}{'orders/s (CPU)':>17}")
    print(f"{'bare integer book (baseline)':<44}{base:>17,.0f}{cpu_base:>17,.0f}")
    print(f"{'exchange engine (accounts, fees, Decimal)':<44}{rate:>17,.0f}{cpu_rate:>17,.0f}")
    print(f"orders: {n:,} ({adds / n:.0%} adds, {1 - adds / n:.0%} cancels), trades: {_last_stats['trades']:,}, "
          f"rejected: {_last_stats['rejected']:,}; engine/baseline = {rate / base:.3f}x")
    print(f"matching: {rate:,.0f} orders/s matched")


if __name__ == "__main__":
    main()
