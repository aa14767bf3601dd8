"""Monitoring cadence (30 s, 5 s near a threshold) and the price cache's TTL and API budget (spec 5.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from precog.domain.market import Market, MarketStatus
from precog.trading.monitor import PriceCache


def _market(ticker: str = "T", bid: str = "0.50") -> Market:
    b = Decimal(bid)
    return Market(ticker=ticker, event_ticker="E", status=MarketStatus.OPEN, venue_status="active", yes_bid=b,
                  yes_ask=b + Decimal("0.01"), no_bid=1 - b - Decimal("0.01"), no_ask=1 - b, last_price=b)


async def test_price_cache_serves_within_ttl_and_keeps_to_the_budget() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    calls: list[str] = []

    async def fetch(ticker: str) -> Market:
        calls.append(ticker)
        return _market(ticker)

    cache = PriceCache(fetch, lambda: now[0], ttl_seconds=10, max_calls_per_minute=3)
    await cache.get("A")
    await cache.get("A")
    assert calls == ["A"]  # second read within 10 s: cached
    now[0] += timedelta(seconds=11)
    await cache.get("A")
    await cache.get("B")
    assert calls == ["A", "A", "B"]
    assert await cache.get("C") is None  # 3 calls this minute: budget spent, nothing cached for C
    now[0] += timedelta(seconds=11)
    stale = await cache.get("A")
    assert stale is not None and calls == ["A", "A", "B"] and cache.budget_waits == 2  # stale data, no call
    now[0] += timedelta(seconds=60)
    await cache.get("C")
    assert calls[-1] == "C"  # a new minute window


async def test_positions_are_checked_every_30_s_and_every_5_s_near_a_threshold(make_rig: Any) -> None:
    rig = make_rig()
    engine = await rig.engine_with_position()
    pos = rig.open_positions()[0]
    before = engine.monitor.checks
    for _ in range(12):  # 60 s at 5 s steps, price steady (-2%): normal cadence
        await rig.step()
    assert engine.monitor.checks - before == 2
    rig.quote("0.44", "0.45")  # -12%: not yet past the -12% stop, but within 2 points of it -> urgent
    await rig.step(30)
    before = engine.monitor.checks
    for _ in range(6):
        await rig.step()
    assert engine.monitor.checks - before == 6
    assert engine.monitor.is_urgent(pos)
