"""Benchmark: in-game WP scoring, batched numpy vs a per-state Python loop of the same model.

    .venv/bin/python benchmarks/forecast.py [--quick] [--states N] [--loop-states N]

Scores N (default 1,000,000) random but plausible NFL states with the shipped wp_nfl model in one batch
(feature construction included), and a subset through `WpModel.predict_one` (the same model in plain
Python, one state per call); the loop's rate is measured on the subset and extrapolated to N.
The two paths are checked to agree on the subset. Last line is the headline.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from precog.forecast.builtin import load_builtin_wp
from precog.forecast.winprob import WpInputs, WpModel


def random_states(n: int, seed: int = 2024) -> WpInputs:
    rng = np.random.default_rng(seed)
    overtime = rng.random(n) < 0.01
    seconds = np.where(overtime, rng.integers(0, 601, n), rng.integers(0, 3601, n)).astype(np.float64)
    yardline = rng.integers(1, 100, n).astype(np.float64)
    down = rng.integers(0, 5, n)
    ydstogo = np.minimum(rng.integers(1, 20, n), yardline).astype(np.float64)
    return WpInputs(
        score_diff=np.clip(np.round(rng.normal(0, 9, n)), -35, 35), game_seconds=seconds, overtime=overtime,
        yardline_100=yardline, down=down, ydstogo=np.where(down == 0, 2.0, ydstogo),
        pos_timeouts=rng.integers(0, 4, n).astype(np.float64), def_timeouts=rng.integers(0, 4, n).astype(np.float64),
        home=rng.choice([-1.0, 1.0], n), strength=rng.normal(0, 0.4, n),
        receives_2h=np.where(seconds >= 1800, rng.choice([-1.0, 1.0], n), 0.0),
    )


def time_batch(model: WpModel, states: WpInputs, repeats: int) -> tuple[float, np.ndarray]:
    best = float("inf")
    out = np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = model.predict(states)
        best = min(best, time.perf_counter() - start)
    return best, out


def time_loop(model: WpModel, states: WpInputs) -> tuple[float, list[float]]:
    rows = list(zip(*(getattr(states, f).tolist() for f in WpInputs.__dataclass_fields__), strict=True))
    predict_one = model.predict_one
    start = time.perf_counter()
    out = [predict_one(*row) for row in rows]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description="WP scoring benchmark: batch vs per-state loop")
    parser.add_argument("--quick", action="store_true", help="200,000 states, 10,000 in the loop")
    parser.add_argument("--states", type=int, default=None, help="states scored in the batch (default 1,000,000)")
    parser.add_argument("--loop-states", type=int, default=None, help="states scored one by one (default 50,000)")
    args = parser.parse_args()
    n = args.states or (200_000 if args.quick else 1_000_000)
    n_loop = min(args.loop_states or (10_000 if args.quick else 50_000), n)

    model = load_builtin_wp()
    states = random_states(n)
    batch_s, batch_p = time_batch(model, states, repeats=3)
    loop_s, loop_p = time_loop(model, states.take(slice(0, n_loop)))
    worst = float(np.max(np.abs(batch_p[:n_loop] - np.array(loop_p))))
    if worst > 1e-9:
        raise SystemExit(f"batch and per-state paths disagree by {worst}")

    batch_rate = n / batch_s
    loop_rate = n_loop / loop_s
    loop_extrapolated = n / loop_rate
    print(f"{'path':<34} {'states':>10} {'seconds':>10} {'states/s':>12}")
    print(f"{'batch (numpy, best of 3)':<34} {n:>10,} {batch_s:>10.3f} {batch_rate:>12,.0f}")
    print(f"{'per-state loop (measured)':<34} {n_loop:>10,} {loop_s:>10.3f} {loop_rate:>12,.0f}")
    print(f"{'per-state loop (extrapolated to N)':<34} {n:>10,} {loop_extrapolated:>10.3f} {loop_rate:>12,.0f}")
    print(f"paths agree on the {n_loop:,} loop states (max |diff| {worst:.1e}); model wp_nfl v1.0 (shipped)")
    print(f"wp scoring: {batch_rate:,.0f} states/s, speedup vs per-state {batch_rate / loop_rate:.1f}x")


if __name__ == "__main__":
    main()
