"""Tick-to-order latency: a market-data event -> edge -> sizing + risk approval -> order persisted (created) ->
sent over loopback HTTP with the real Kalshi client -> accepted by the local exchange -> state persisted.

In the same run, the floor: the bare order round trip (the same client sending the same kind of order, no
decision, no database). Orders are priced below the ask so they rest and the book stays the same for every
event. Runs against a temporary database on the embedded PostgreSQL (or PRECOG_DATABASE_URL's server).

    .venv/bin/python benchmarks/tick_to_order.py [--events 10000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from precog.config.loader import load_config
from precog.db.connection import connect, database_url
from precog.db.embedded import with_database
from precog.db.migrate import migrate
from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.domain.money import ONE
from precog.domain.order import OrderRequest, OrderType, TimeInForce
from precog.engine import entries
from precog.engine.core import prepare_connection
from precog.engine.demo import ensure_demo_methods, simulated_market_settings
from precog.engine.kalshi_venue import http_venue_for_local_exchange
from precog.trading.executor import Executor, OrderIntent
from precog.trading.orders import OrderStore
from precog.trading.portfolio import Portfolio
from precog.venues.exchange.engine import Exchange

TICKER = "KXNFLGAME-BENCH-NEBUF-BUF"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _market(i: int) -> Market:
    """A market-data event: the quote moves a cent up or down around 0.50."""
    bid = Decimal(48 + (i % 3)) / 100
    ask = bid + Decimal("0.02")
    return Market(ticker=TICKER, event_ticker="KXNFLGAME-BENCH-NEBUF", status=MarketStatus.OPEN, venue_status="active",
                  yes_bid=bid, yes_ask=ask, no_bid=ONE - ask, no_ask=ONE - bid, last_price=bid,
                  yes_bid_size=Decimal(1000), yes_ask_size=Decimal(1000),
                  close_time=datetime.now(UTC) + timedelta(hours=3))  # a game market closes after its game


async def run(events: int) -> None:
    base = database_url()
    name = f"precog_bench_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(base, name)
    try:
        migrate(url)
        await _measure(url, events)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _measure(url: str, events: int) -> None:
    cfg = load_config(use_env=False)
    conn = connect(url, autocommit=True)
    prepare_connection(conn)  # the engine's session settings
    ex = Exchange()
    ex.create_series("KXNFLGAME", "Pro Football Game")
    ex.create_event("KXNFLGAME-BENCH-NEBUF", "KXNFLGAME", "New England at Buffalo")
    ex.create_market(TICKER, "KXNFLGAME-BENCH-NEBUF", title="Will Buffalo win?")
    ex.create_account("us", Decimal("100000000"))
    venue, close = await http_venue_for_local_exchange(ex, "us")
    try:
        run_id = conn.execute("INSERT INTO engine_runs (kind, mode, platform_id, account_ref) "
                              "VALUES ('benchmark', 'paper', 'local', %s) RETURNING run_id",
                              (venue.account_ref,)).fetchone()[0]  # type: ignore[index]
        executor = Executor(venue, OrderStore(conn), Portfolio(conn, "local", "paper", account_ref=venue.account_ref),
                            run_id=run_id, mode="paper", clock=lambda: datetime.now(UTC))
        pm = cfg.section("position_management")
        limits = entries.RiskLimits.from_config(cfg.section("trading"), pm)
        # a real method row (the demo's in-game method) so the shared RiskManager can check its status
        method = next(m for m in ensure_demo_methods(conn) if m.phase == "live")
        risk = entries.EngineRisk(conn, simulated_market_settings(cfg), mode="paper")
        risk.load_units([method])
        risk.sync([], Decimal("100000"))
        fees = FeeSchedule()
        pv = entries.PortfolioView(balance=Decimal("100000"), bankroll=Decimal("100000"), open_positions=0,
                                   exposure=Decimal(0), markets_held=frozenset(), positions_by_game={},
                                   exposure_by_game={})
        p_yes = Decimal("0.64")
        warm = min(200, events // 10)

        # interleaved, so both paths see the same book, server load and machine noise:
        # the floor (a bare order round trip) and then the full tick-to-order path
        bare: list[float] = []
        full: list[float] = []
        for i in range(events + warm):
            req = OrderRequest(ticker=TICKER, side="yes", action="buy", count=Decimal(1),  # type: ignore[arg-type]
                               price=Decimal("0.30"), client_order_id=f"bare-{run_id}-{i}", type=OrderType.LIMIT,
                               time_in_force=TimeInForce.GOOD_TILL_CANCELED)
            t0 = time.perf_counter()
            await venue.place_order(req)
            t1 = time.perf_counter()

            m = _market(i)  # the market-data event arrives
            plan, reason = entries.plan_entry(p_yes, m, method, pv, limits, fees, m.event_ticker)
            if plan is None:
                raise SystemExit(f"benchmark setup error: the entry was refused ({reason})")
            approval = risk.approve(plan, m, method, event_id=m.event_ticker, sport="nfl", confidence="medium",
                                    now=time.time())
            if not approval.approved:
                raise SystemExit(f"benchmark setup error: the risk manager refused the entry ({approval.reason})")
            intent = OrderIntent(market_id=TICKER, side=plan.side, action="buy", quantity=approval.intent.quantity,
                                 limit_price=plan.limit_price - Decimal("0.10"), purpose="entry",
                                 decision_key=f"bench|{run_id}|{i}", edge=plan.edge.edge, confidence="medium",
                                 approval=approval)
            rec = await executor.submit(intent)
            risk.release(approval)  # the resting order is not tracked as exposure here: every event starts equal
            t2 = time.perf_counter()
            if rec.venue_order_id is None:
                raise SystemExit(f"order {i} was not accepted: {rec.status}")
            if i >= warm:
                bare.append((t1 - t0) * 1000)
                full.append((t2 - t1) * 1000)
    finally:
        await close()
        conn.close()

    b50, b99 = statistics.median(bare), _pct(bare, 0.99)
    f50, f99 = statistics.median(full), _pct(full, 0.99)
    ratio = f50 / b50
    print(f"{'path':<44} {'events':>7} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'bare order round trip (HTTP, no decision/db)':<44} {len(bare):>7} {b50:>8.3f} {b99:>8.3f}")
    print(f"{'tick -> edge -> risk -> order (persisted)':<44} {len(full):>7} {f50:>8.3f} {f99:>8.3f}")
    print(f"targets: p99 <= 10 ms ({'met' if f99 <= 10 else 'MISSED'}), overhead <= 2x "
          f"({'met' if ratio <= 2 else 'MISSED'})")
    print(f"tick-to-order p50 {f50:.2f} ms p99 {f99:.2f} ms, overhead vs bare round trip {ratio:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="1,000 events")
    args = ap.parse_args()
    asyncio.run(run(1000 if args.quick else args.events))


if __name__ == "__main__":
    sys.exit(main())
