"""Backtest replay throughput: 1,000,000 recorded market-data events for 500 markets, two methods active.

Data (generated once, not timed): a feed recording in the recorder's own format (gzip JSON lines, one
Kalshi `ticker` frame per line with receive timestamps), written with `precog.ingest.recorder.Recorder`:
500 markets, random-walk fair values, bid/ask 1-2 cents around them, sizes 10-500, 100 ms apart.

Floor (same process, same file): read and decode every message (gzip, JSON line, the frame's bid/ask/sizes
to integer cents; `precog.backtest.fast.read_frames`) with no strategy.

Lean path (`precog.backtest.fast`, the [lean] rows): the same read and decode, then per event the touched market's quote
state and both methods on that market only:
  - `edge`: a per-market EWMA model; quotes that could pass the minimum edge go through the live decision
    code (`precog.engine.entries.plan_entry`: edge net of Kalshi fees, fractional Kelly, risk approval);
    held positions are checked against the live exit rules (`precog.trading.exits`) on every quote;
  - `threshold`: buy 10 below a 0.30 mid, sell above 0.70.
  Orders are matched by the local exchange's matching engine against the quoted book; fills, fees and
  positions are booked by the exchange (Decimal). Nothing is written to the database during the run.

The rows marked [db] are what `precog backtest` itself runs: the live `Engine` (decision, risk, execution,
positions in PostgreSQL, an embedded server started for the run) on a simulated clock:
  - the benchmark's data shape with fewer events (500 markets, 20,000 quotes; --quick 10,000) and two
    methods trading together (mean reversion over the last 20 and the last 50 fair values; account and
    breaker limits widened so they keep trading: ACTIVE_TRADING);
  - a smaller recording (50 markets, one mean-reversion method);
  - an NFL stretch with in-game states (2021; the shipped Elo pre-game and in-game WP methods, A/B lanes).
Each is run on fresh databases by the reference (the plain Engine stepped at every event time, every
quote placed in the exchange) and by the fast path (`precog.backtest.stepping`: per-cycle work limited to
the markets that changed, idle steps skipped, quotes placed only when they could trade); the two must book
the same trades to the cent (checked). events/s there = events / seconds of replay (data loading and
model training excluded), the best of `--repeats` interleaved runs (the machine is shared); CPU events/s
counts this process's CPU only (PostgreSQL's own work is not in it).

Then the fast path once on the lean rows' own recording (1,000,000 quotes; --quick 200,000), the two
methods and limits as in the first [db] scenario: the headline (last line), against the read floor. With
--no-db the headline is the lean path.

    .venv/bin/python benchmarks/backtest.py [--quick] [--no-db]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def write_recording(folder: Path, n: int, markets: int = MARKETS) -> list[str]:
    tickers = [f"KXREPLAY-M{i:03d}-Y" for i in range(markets)]
    t0 = datetime(2025, 10, 5, 17, tzinfo=UTC)
    with Recorder(folder, rotate_seconds=1e9, compresslevel=1) as rec:
        for i, bid, ask, bsz, asz, ts in generate(n, markets):
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


class MeanReversionModel:
    """P(yes) = the mean of the market's last `window` fair values: a method that disagrees with the quote and
    trades (two windows make two methods)."""

    reads_clock = False  # the estimate reads the game's fair values only (the world may reuse it)

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self.key = f"mean_reversion_{window}"

    def train(self, archive: Any, start_ms: int, end_ms: int) -> int:
        return 0

    def observe(self, event: Any, game: Any) -> bool:
        return False  # no state of its own

    def estimate(self, game: Any, now_ms: int) -> Any:
        from precog.engine.core import Estimate

        recent = game.history[-self.window:]
        if game.final or len(recent) < 5:
            return None
        return Estimate((sum(recent, Decimal(0)) / len(recent)).quantize(Decimal("0.0001")), "medium")


def _method_row(url: str, model: MeanReversionModel) -> Any:
    """The mean-reversion method as database rows (model, strategy, method) and the ChosenMethod running it."""
    from precog.backtest.methods import HOLD_TO_SETTLEMENT, ChosenMethod
    from precog.db.connection import connect
    from precog.engine.entries import MethodSpec
    from precog.ingest.scd2 import jsonb

    name = f"bench_{model.key}"
    with connect(url, autocommit=True) as conn:
        model_id = conn.execute("INSERT INTO probability_models (model_name, model_version, model_type, sport, config, "
                                "status) VALUES (%s, 'v1.0', 'fixed', 'nfl', '{}', 'active') "
                                "RETURNING model_id", (name,)).fetchone()[0]  # type: ignore[index]
        strategy_id = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, sport, config, status) "
                                   "VALUES (%s, 'v1.0', 'nfl', '{}', 'active') "
                                   "RETURNING strategy_id", (name,)).fetchone()[0]  # type: ignore[index]
        row = conn.execute(
            "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, "
            "risk_config, execution_config, sport_config, config_hash, status) VALUES (%s, "
            "'v1.0', %s, %s, %s, '{}', '{}', %s, %s, 'active') RETURNING method_id",
            (name, strategy_id, model_id, jsonb(HOLD_TO_SETTLEMENT), jsonb({"nfl": {"enabled": True}}),
             name)).fetchone()
        method_id = row[0]  # type: ignore[index]
    spec = MethodSpec(method_id=method_id, strategy_id=strategy_id, model_id=model_id,
                      name=f"{name}@v1.0", model_key=model.key, phase="pre_game", min_edge=Decimal("0.05"),
                      kelly_fraction=Decimal("0.25"), position_mgmt=HOLD_TO_SETTLEMENT)
    return ChosenMethod(f"{name}@v1.0", spec, f"{name}@v1.0", f"{name}@v1.0")


# The recorded markets are random walks, so the mean-reversion methods lose to fees: with the shipped limits
# (10 trades an hour, a $500 daily loss limit, breakers reset by an operator, i.e. the next day in a backtest)
# the engine would stop trading within simulated minutes and replay the rest idle. These limits (the
# configuration schema's widest) and a $1,000,000 bankroll keep both methods trading; breakers still trip and
# reset after 10 simulated minutes.
ACTIVE_TRADING = """\
account:
  daily_loss_limit_dollars: 2000.00
  weekly_loss_limit_dollars: 10000.00
  max_trades_per_hour: 2000
  max_trades_per_day: 20000
circuit_breakers:
  unusual_activity:
    trades: 500
    window_minutes: 5
  reset:
    consecutive_losses: 600
    daily_loss_limit: 600
    weekly_loss_limit: 600
    rapid_loss: 600
"""
ACTIVE_BANKROLL = Decimal("1000000")


Row = tuple[str, float, float, float, int, int, int]


def db_rows(quick: bool, repeats: int, headline: Path | None) -> tuple[list[Row], Row | None, float]:
    """(label, events/s, replay seconds, CPU events/s, events, steps, trades) per [db] row, the best of `repeats`
    runs of each path; raises if the paths book different trades. With `headline` (the lean rows' recording),
    also the fast path once on all of it (the reference would take hours there)."""
    import psycopg

    from precog.backtest.runner import BacktestOptions, run_backtest
    from precog.db import embedded
    from precog.db.migrate import migrate
    from precog.paths import shared_data_dir

    logging.disable(logging.WARNING)  # breaker state changes are in the reports
    rows: list[Row] = []
    top: Row | None = None
    end_to_end = [0.0]  # the headline's events per second of the whole `run_backtest` (data reading included)
    home = Path(tempfile.mkdtemp(prefix="precog-bt-bench-pg-"))
    home.chmod(0o755)  # the server may run as its own user
    try:
        admin = embedded.server_uri(home)
        # (label, options, own methods: mean-reversion windows traded together, paths: reference and/or fast)
        scenarios: list[tuple[str, dict[str, Any], tuple[int, ...], tuple[bool, ...]]] = []
        wide = home / "recording-500"
        n_wide = 10_000 if quick else 20_000
        write_recording(wide, n_wide, markets=MARKETS)
        scenarios.append((f"recording, {n_wide:,} quotes / {MARKETS} markets, 2 methods",
                          {"data": wide, "bankroll": ACTIVE_BANKROLL}, (20, 50), (False, True)))
        active = home / "config"  # both methods keep trading: see ACTIVE_TRADING
        active.mkdir()
        (active / "trading.yaml").write_text(ACTIVE_TRADING)
        rec = home / "recording"
        n_rec = 4_000 if quick else 20_000
        write_recording(rec, n_rec, markets=50)
        scenarios.append((f"recording, {n_rec:,} quotes / 50 markets, 1 method", {"data": rec}, (20,), (False, True)))
        shared = shared_data_dir()
        if shared is not None:
            end = date(2021, 9, 14) if quick else date(2021, 9, 30)
            # both shipped methods by name (the defaults leave the Elo lane out: 2021 has no pre-game prices; its
            # lane replays the same events idle, as recorded before)
            scenarios.append((f"NFL 2021-09-09..{end:%m-%d} in-game, 2 methods (A/B)",
                              {"data": shared / "nfl", "start": date(2021, 9, 9), "end": end,
                               "methods": ["nfl_elo_pregame@v1.1", "nfl_live_wp@v1.1"]}, (), (False, True)))
        if headline is not None:
            scenarios.append(("headline", {"data": headline, "bankroll": ACTIVE_BANKROLL}, (20, 50), (True,)))
        for k, (label, kw, windows, paths) in enumerate(scenarios):
            booked = []
            best: dict[bool, Row] = {}
            runs = 1 if len(paths) == 1 else repeats
            for rep, fast in [(r, f) for r in range(runs) for f in paths]:
                name = f"bench_bt_{os.getpid()}_{k}_{rep}_{int(fast)}"
                with psycopg.connect(admin, autocommit=True) as c:
                    c.execute(f'CREATE DATABASE "{name}"')
                url = embedded.with_database(admin, name)
                migrate(url)
                extra: dict[str, Any] = {}
                if windows:
                    models = [MeanReversionModel(w) for w in windows]
                    extra = {"extra_models": {m.key: m for m in models},
                             "extra_methods": [_method_row(url, m) for m in models], "together": True}
                opts = BacktestOptions(out=home / "reports", fast_path=fast, **kw, **extra)
                cfg = load_config(active, db_url=url, use_overrides=False) if windows else None
                started = time.perf_counter()
                result = asyncio.run(run_backtest(url, opts, config=cfg))
                whole = time.perf_counter() - started  # reading the data, replay, report
                e = result.summary["engine"]
                with psycopg.connect(url) as c:
                    trades = c.execute("SELECT market_id, side, action, price, quantity, fees FROM trades "
                                       "ORDER BY trade_id").fetchall()
                booked.append((trades, result.summary["totals"]["pnl"]))
                with psycopg.connect(admin, autocommit=True) as c:
                    c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                path = "fast: idle steps skipped, cached reads" if fast else "reference: Engine.step per event time"
                row = (f"[db] {label}; {path}", e["events_per_second"], e["replay_seconds"],
                       e["events"] / e["replay_cpu_seconds"], e["events"], e["steps"], len(trades))
                if fast not in best or row[1] > best[fast][1]:
                    best[fast] = row
            if label == "headline":
                top = best[True]
                end_to_end[0] = e["events"] / whole
                continue
            rows.extend([best[False], best[True]])
            if any(b != booked[0] for b in booked):
                raise AssertionError(f"{label}: the fast path booked different trades than the reference")
    finally:
        embedded.stop(home)
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    return rows, top, end_to_end[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200,000 events instead of 1,000,000 (and smaller [db] runs)")
    ap.add_argument("--no-db", action="store_true", help="only the lean path (no PostgreSQL rows)")
    ap.add_argument("--repeats", type=int, default=2, help="[db] runs per path (the best counts; default 2)")
    args = ap.parse_args()
    n = 200_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="precog-bt-bench-") as tmp:
        folder = Path(tmp) / "recording"
        tickers = write_recording(folder, n)
        floor_s, floor_cpu, n_floor = read_floor(folder)
        full_s, full_cpu, n_full, rt, edge = full_engine(folder, tickers)
        db, top, whole_rate = ([], None, 0.0) if args.no_db else db_rows(args.quick, max(1, args.repeats), folder)
    assert n_floor == n_full == n
    floor_rate, full_rate = n / floor_s, n / full_s
    by_method: dict[str, int] = {}
    for f in rt.stats.fills:
        by_method[f.method] = by_method.get(f.method, 0) + 1
    audit = rt.exchange.audit()
    assert audit["imbalance"] == 0, audit
    w = 96
    print(f"{'path':<{w}}{'events/s':>12}{'seconds':>9}{'CPU events/s':>14}")
    print(f"{'[lean] read + decode only (floor)':<{w}}{floor_rate:>12,.0f}{floor_s:>9.2f}{n / floor_cpu:>14,.0f}")
    print(f"{'[lean] read + decode + quote state + 2 methods + matching (precog.backtest.fast)':<{w}}"
          f"{full_rate:>12,.0f}{full_s:>9.2f}{n / full_cpu:>14,.0f}")
    if top is not None:
        top = (f"[db] the same {n:,} quotes / {MARKETS} markets, 2 methods (precog backtest); fast, once",
               *top[1:])
    for label, rate, secs, cpu_rate, events, steps, trades in db + ([top] if top is not None else []):
        print(f"{label:<{w}}{rate:>12,.0f}{secs:>9.2f}{cpu_rate:>14,.0f}   ({events:,} events, {steps:,} steps, "
              f"{trades} trades)")
    for ref, fast in zip(db[::2], db[1::2], strict=True):
        print(f"[db] {fast[0].split(';')[0][5:]}: fast path {fast[1] / ref[1]:.2f}x the reference "
              f"({fast[3] / ref[3]:.2f}x in CPU), same trades")
    print(f"[lean] events: {n:,}; markets: {MARKETS}; orders: {rt.stats.orders:,}; fills by method: {by_method}; "
          f"edge decisions through plan_entry: {edge.decisions:,} ({edge.approved:,} approved); "
          f"equity ${rt.equity()}")
    if top is not None:  # the headline is `precog backtest` itself on the benchmark's data
        print(f"[db] the headline run end to end (reading and decoding the recording, replay, report): "
              f"{whole_rate:,.0f} events/s, {whole_rate / floor_rate:.2f} of the read floor")
        print(f"backtest: {top[1]:,.0f} events/s, {top[1] / floor_rate:.2f} of the read floor")
    else:
        print(f"backtest: {full_rate:,.0f} events/s, {full_rate / floor_rate:.2f} of the read floor")


if __name__ == "__main__":
    main()
