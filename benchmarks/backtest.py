"""Backtest replay throughput: 1,000,000 recorded market-data events for 500 markets, two methods active.

Data (generated once, not timed): a feed recording in the recorder's own format (gzip JSON lines, one
Kalshi `ticker` frame per line with receive timestamps), written with `precog.ingest.recorder.Recorder`:
500 markets, random-walk fair values, bid/ask 1-2 cents around them, sizes 10-500, 100 ms apart.

Floor (same process, same file): read and decode every message (gzip, JSON line, the frame's bid/ask/sizes
to integer cents; `precog.backtest.fast.read_frames`) with no strategy.

Full engine (`precog.backtest.fast`): the same read and decode, then per event the touched market's quote
state and both methods on that market only:
  - `edge`: a per-market EWMA model; quotes that could pass the minimum edge go through the live decision
    code (`precog.engine.entries.plan_entry`: edge net of Kalshi fees, fractional Kelly, risk approval);
    held positions are checked against the live exit rules (`precog.trading.exits`) on every quote;
  - `threshold`: buy 10 below a 0.30 mid, sell above 0.70.
  Orders are matched by the local exchange's matching engine against the quoted book; fills, fees and
  positions are booked by the exchange (Decimal). Nothing is written to the database during the run.

    .venv/bin/python benchmarks/backtest.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest_threshold import generate  # noqa: E402

from precog.backtest.fast import EdgeMethod, FastReplay, ThresholdMethod, read_frames  # noqa: E402
from precog.config.loader import load_config  # noqa: E402
from precog.domain.fees import FeeSchedule  # noqa: E402
from precog.engine.entries import MethodSpec, RiskLimits  # noqa: E402
from precog.ingest.recorder import Recorder  # noqa: E402
from precog.trading.exits import ExitRules  # noqa: E402
from precog.venues.exchange.clock import SimClock  # noqa: E402
from precog.venues.exchange.engine import Exchange  # noqa: E402

MARKETS = 500
CENTS = {f"0.{c:02d}": c for c in range(100)} | {f"0.{c:02d}00": c for c in range(100)}


def write_recording(folder: Path, n: int) -> list[str]:
    tickers = [f"KXREPLAY-M{i:03d}-Y" for i in range(MARKETS)]
    t0 = datetime(2025, 10, 5, 17, tzinfo=UTC)
    with Recorder(folder, rotate_seconds=1e9, compresslevel=1) as rec:
        for i, bid, ask, bsz, asz, ts in generate(n, MARKETS):
            rec.record("kalshi:ws", {"type": "ticker", "sid": 1, "msg": {
                "market_ticker": tickers[i], "yes_bid_dollars": f"0.{bid:02d}00", "yes_ask_dollars": f"0.{ask:02d}00",
                "yes_bid_size_fp": str(bsz), "yes_ask_size_fp": str(asz)}}, t0 + timedelta(milliseconds=ts))
    return tickers


def decode(payload: dict) -> tuple[str, int, int, int, int]:  # type: ignore[type-arg]
    msg = payload["msg"]
    return (msg["market_ticker"], CENTS[msg["yes_bid_dollars"]], CENTS[msg["yes_ask_dollars"]],
            int(msg["yes_bid_size_fp"]), int(msg["yes_ask_size_fp"]))


def read_floor(folder: Path) -> tuple[float, float, int]:
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    for _ns, payload in read_frames(folder):
        decode(payload)
        n += 1
    return time.perf_counter() - t0, time.process_time() - c0, n


def full_engine(folder: Path, tickers: list[str]) -> tuple[float, float, int, FastReplay, EdgeMethod]:
    cfg = load_config(use_overrides=False)
    pm = cfg.section("position_management")
    limits = RiskLimits.from_config(cfg.section("trading"), pm)
    bankroll = Decimal("100000")
    rt = FastReplay(Exchange(SimClock(1_700_000_000_000)), "bench", tickers, bankroll=bankroll)
    spec = MethodSpec(method_id=1, strategy_id=1, model_id=1, name="edge", model_key="ewma", phase="live")
    edge = EdgeMethod(spec, limits, ExitRules.from_config(pm), FeeSchedule(), bankroll)
    rt.methods.extend([edge, ThresholdMethod("threshold")])
    on_quote = rt.on_quote
    c0, t0 = time.process_time(), time.perf_counter()
    n = 0
    for ns, payload in read_frames(folder):
        t, bid, ask, bsz, asz = decode(payload)
        on_quote(t, bid, ask, bsz, asz, ns // 1_000_000)
        n += 1
    return time.perf_counter() - t0, time.process_time() - c0, n, rt, edge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200,000 events instead of 1,000,000")
    args = ap.parse_args()
    n = 200_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="precog-bt-bench-") as tmp:
        folder = Path(tmp)
        tickers = write_recording(folder, n)
        floor_s, floor_cpu, n_floor = read_floor(folder)
        full_s, full_cpu, n_full, rt, edge = full_engine(folder, tickers)
    assert n_floor == n_full == n
    floor_rate, full_rate = n / floor_s, n / full_s
    by_method: dict[str, int] = {}
    for f in rt.stats.fills:
        by_method[f.method] = by_method.get(f.method, 0) + 1
    audit = rt.exchange.audit()
    assert audit["imbalance"] == 0, audit
    print(f"{'path':<54}{'events/s':>12}{'seconds':>9}{'CPU events/s':>14}")
    print(f"{'read + decode only (floor)':<54}{floor_rate:>12,.0f}{floor_s:>9.2f}{n / floor_cpu:>14,.0f}")
    print(f"{'read + decode + quote state + 2 methods + matching':<54}{full_rate:>12,.0f}{full_s:>9.2f}"
          f"{n / full_cpu:>14,.0f}")
    print(f"events: {n:,}; markets: {MARKETS}; orders: {rt.stats.orders:,}; fills by method: {by_method}; "
          f"edge decisions through plan_entry: {edge.decisions:,} ({edge.approved:,} approved); "
          f"equity ${rt.equity()}")
    print(f"backtest: {full_rate:,.0f} events/s, {full_rate / floor_rate:.2f} of the read floor")


if __name__ == "__main__":
    main()
