"""Venue benchmarks: matching engine, client order book, and our REST client's overhead.

(1) Matching: orders/s into one in-process exchange book with a realistic mix (from
    `benchmarks/exchange_matching.py`), against a bare integer book on the same orders.
(2) Client book: WebSocket `orderbook_delta` messages applied per second to our local books
    (`BookRegistry.on_message`: sequence check + book update), in-process, on pre-generated decoded
    messages, against a bare dict update per message (baseline). JSON decoding is reported separately.
(3) Order round trip through `AsyncKalshiClient.create_order` to the local exchange on loopback, p50/p99,
    against a bare httpx POST of the same body with the same per-request RSA-PSS signature (signing is
    part of Kalshi's protocol, so both pay it). Ratio = our client's overhead (rate limiting, retry
    wrapper, JSON encode, Decimal parsing into a typed Order).

    .venv/bin/python benchmarks/exchange.py [--quick]

Last line: `exchange: N orders/s matched, N deltas/s, client overhead N.Nx`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

from precog.domain.order import Action, OrderRequest, Side  # noqa: E402
from precog.venues.kalshi.auth import KalshiSigner  # noqa: E402
from precog.venues.kalshi.book import BookRegistry  # noqa: E402
from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy, order_body  # noqa: E402
from precog.venues.kalshi.environments import resolve_environment  # noqa: E402

TICKERS = tuple(f"KXBENCH-25JAN01-M{i:02d}" for i in range(20))


# ------------------------------------------------------------------------------------------ (1) matching


def matching(quick: bool) -> tuple[float | None, str]:
    try:
        from exchange_matching import bench_baseline, bench_matching, make_ops
    except ImportError as exc:  # the exchange benchmark module is not there
        return None, f"matching benchmark unavailable ({exc})"
    import gc

    from precog.venues.exchange.gc_tuning import tune_for_matching

    n = 50_000 if quick else 200_000
    ops = make_ops(n)
    # Engine and baseline both run with the GC settings `precog exchange serve` uses (gc_tuning).
    previous = tune_for_matching()
    try:
        try:
            bench_matching(20_000, ops[:20_000])  # warm-up
            rate = max(bench_matching(n, ops) for _ in range(1 if quick else 2))
        except Exception as exc:  # noqa: BLE001 - report the engine's failure, still run (2) and (3)
            return None, f"matching benchmark FAILED: {type(exc).__name__}: {exc}"
        base = max(bench_baseline(n, ops) for _ in range(1 if quick else 2))
    finally:
        gc.unfreeze()
        gc.set_threshold(*previous)
    return rate, (f"bare integer book {base:,.0f} orders/s; engine/baseline {rate / base:.2f}x "
                  "(both with the exchange process's GC settings)")


# ------------------------------------------------------------------------------------------ (2) book


def make_deltas(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Snapshots for 20 markets, then n deltas shaped like Kalshi's (both price/count generations)."""
    rng = random.Random(seed)
    snapshots = []
    for seq, ticker in enumerate(TICKERS, start=1):
        snapshots.append({"type": "orderbook_snapshot", "sid": 1, "seq": seq, "msg": {
            "market_ticker": ticker, "market_id": "00000000-0000-0000-0000-000000000000",
            "yes_dollars_fp": [[f"0.{c:02d}00", "100000.00"] for c in range(1, 100)],
            "no_dollars_fp": [[f"0.{c:02d}00", "100000.00"] for c in range(1, 100)]}})
    deltas = []
    seq = len(TICKERS)
    for _ in range(n):
        seq += 1
        cents = rng.randrange(30, 70)
        qty = rng.choice((1, 2, 5, 10, 25, 50)) * (1 if rng.random() < 0.5 else -1)
        deltas.append({"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": {
            "market_ticker": TICKERS[rng.randrange(len(TICKERS))], "market_id": "00000000-0000-0000-0000-000000000000",
            "price": cents, "price_dollars": f"0.{cents:02d}00", "delta": qty, "delta_fp": f"{qty}.00",
            "side": "yes" if rng.random() < 0.5 else "no", "ts": "2025-01-01T00:00:00Z"}})
    return snapshots, deltas


def book_rates(n: int) -> tuple[float, float, float]:
    snapshots, deltas = make_deltas(n)
    best = 0.0
    for _ in range(3):
        registry = BookRegistry()
        for s in snapshots:
            registry.on_message(s)
        on_message = registry.on_message
        start = time.perf_counter()
        for d in deltas:
            on_message(d)
        best = max(best, n / (time.perf_counter() - start))
    # baseline: the least any book must do per message (one dict read-modify-write, no checks)
    base = 0.0
    for _ in range(3):
        books: dict[str, dict[str, int]] = {t: {} for t in TICKERS}
        start = time.perf_counter()
        for d in deltas:
            m = d["msg"]
            book = books[m["market_ticker"]]
            key = m["price_dollars"]
            book[key] = book.get(key, 0) + m["delta"]
        base = max(base, n / (time.perf_counter() - start))
    # end to end including JSON decoding of the raw text frames (what the socket delivers)
    raw = [json.dumps(d) for d in deltas[: min(n, 200_000)]]
    registry = BookRegistry()
    for s in snapshots:
        registry.on_message(s)
    loads = json.loads
    start = time.perf_counter()
    for text in raw:
        registry.on_message(loads(text))
    decoded = len(raw) / (time.perf_counter() - start)
    return best, base, decoded


# ------------------------------------------------------------------------------------------ (3) round trip


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _round_trips(base_url: str, signer: KalshiSigner, ticker: str, n: int) -> tuple[list[float], list[float]]:
    env = resolve_environment("local", base_url)
    ours: list[float] = []
    bare: list[float] = []
    async with AsyncKalshiClient(env, signer=signer, rate_limits="unlimited", retry=RetryPolicy()) as client, \
            httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        sign_path = env.path_prefix + "/portfolio/orders"
        for i in range(n + 50):
            price = Decimal(1 + i % 5) / 100  # 0.01 .. 0.05: rests, never crosses
            req_a = OrderRequest(ticker, Side.YES, Action.BUY, Decimal(1), price, f"bench-a-{i}")
            req_b = OrderRequest(ticker, Side.YES, Action.BUY, Decimal(1), price, f"bench-b-{i}")
            pair = [("ours", req_a), ("bare", req_b)]
            if i % 2:
                pair.reverse()  # alternate who goes first so book growth and caches treat both alike
            for who, req in pair:
                if who == "ours":
                    start = time.perf_counter()
                    placed = await client.create_order(req)
                    elapsed = time.perf_counter() - start
                    assert placed.client_order_id == req.client_order_id
                    if i >= 50:
                        ours.append(elapsed)
                else:
                    body = json.dumps(order_body(req), separators=(",", ":")).encode()
                    start = time.perf_counter()
                    headers = {"Content-Type": "application/json", **signer.headers("POST", sign_path)}
                    response = await http.post("/portfolio/orders", content=body, headers=headers)
                    elapsed = time.perf_counter() - start
                    if response.status_code != 201:
                        raise RuntimeError(f"bare POST failed: {response.status_code} {response.text}")
                    if i >= 50:
                        bare.append(elapsed)
    return ours, bare


def round_trip(n: int) -> tuple[list[float], list[float]]:
    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.exchange.engine import Exchange
    from precog.venues.exchange.runner import ExchangeServer

    with tempfile.TemporaryDirectory() as tmp:
        key_id, key_path, public_pem = generate_key_pair(Path(tmp))
        ex = Exchange(seed=1)
        ex.create_series("KXBENCH", "bench")
        ex.create_event("KXBENCH-25JAN01", "KXBENCH", "bench")
        ex.create_market(TICKERS[0], "KXBENCH-25JAN01")
        user = ex.create_account(balance=Decimal("1000000"))
        server = ExchangeServer(ex)
        server.keys.register(user.user_id, serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
        server.start()
        try:
            signer = KalshiSigner.from_files(key_id, key_path)
            return asyncio.run(_round_trips(server.base_url, signer, TICKERS[0], n))
        finally:
            server.stop()


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (~10 s)")
    args = parser.parse_args()

    matched, matching_note = matching(args.quick)
    deltas, delta_base, decoded = book_rates(100_000 if args.quick else 500_000)
    ours, bare = round_trip(200 if args.quick else 1000)
    ours_p50, ours_p99 = statistics.median(ours), _percentile(ours, 0.99)
    bare_p50, bare_p99 = statistics.median(bare), _percentile(bare, 0.99)
    overhead = ours_p50 / bare_p50

    print(f"{'benchmark':<58}{'result':>22}")
    if matched is None:
        print(f"{'(1) matching: orders/s into one book':<58}{'n/a':>22}")
    else:
        print(f"{'(1) matching: orders/s into one book':<58}{matched:>22,.0f}")
    print(f"    {matching_note}")
    print(f"{'(2) client book: deltas applied/s (seq check + update)':<58}{deltas:>22,.0f}")
    print(f"{'    baseline: bare dict update per delta':<58}{delta_base:>22,.0f}")
    print(f"{'    incl. JSON decode of the text frame':<58}{decoded:>22,.0f}")
    print(f"{'(3) order round trip, our client p50 / p99 (ms)':<58}{ours_p50 * 1e3:>13.2f} / {ours_p99 * 1e3:.2f}")
    print(f"{'    bare signed httpx POST p50 / p99 (ms)':<58}{bare_p50 * 1e3:>13.2f} / {bare_p99 * 1e3:.2f}")
    print(f"{'    overhead (p50 ratio; p99 ratio)':<58}{overhead:>17.2f}x / {ours_p99 / bare_p99:.2f}x")
    print(f"    targets: >= 100,000 orders/s, >= 500,000 deltas/s, overhead <= 1.5x; {len(ours)} round trips each")
    matched_text = f"{matched:,.0f}" if matched is not None else "n/a"
    print(f"exchange: {matched_text} orders/s matched, {deltas:,.0f} deltas/s, client overhead {overhead:.1f}x")


if __name__ == "__main__":
    main()
