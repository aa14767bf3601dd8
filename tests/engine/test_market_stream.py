"""The engine's live market view on the Kalshi path: prices from the WebSocket, REST only as the fallback.

Everything is real: the local exchange served over HTTP + WebSocket, the signed Kalshi client, the Engine on
a PostgreSQL database. REST requests are counted at the server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.conftest import TICKER, Rig, rig_config
from engine.streamkit import CountingFaults, wait_for
from precog.domain.market import MarketStatus, Quote
from precog.engine.kalshi_venue import KalshiVenue
from precog.engine.market_stream import MarketStream, stream_of
from precog.engine.paper_venue import PaperVenue
from precog.engine.runner import market_data_line
from precog.venues.exchange.runner import ExchangeServer
from precog.venues.kalshi.events import ConnectionState, TickerUpdated

MARKET_PATH = f"/trade-api/v2/markets/{TICKER}"
BATCH_PATH = "/trade-api/v2/markets"


@dataclass
class Served:
    server: ExchangeServer
    faults: CountingFaults
    client: Any
    stream: MarketStream
    venue: KalshiVenue


async def serve(rig: Rig, tmp: Path, **stream_options: Any) -> Served:
    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.kalshi.auth import KalshiSigner
    from precog.venues.kalshi.client import AsyncKalshiClient
    from precog.venues.kalshi.environments import KalshiEnvironment
    from precog.venues.kalshi.ratelimit import tier_limits

    key_id, key_path, public_pem = generate_key_pair(tmp)
    faults = CountingFaults()
    server = ExchangeServer(rig.exchange, faults=faults, tick_interval=0.05,
                            auth_clock=lambda: int(time.time() * 1000))
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    client = AsyncKalshiClient(KalshiEnvironment("local", server.base_url, server.ws_url),
                               signer=KalshiSigner.from_files(key_id, key_path), rate_limits=tier_limits("unlimited"))
    options = {"max_price_age_seconds": 120.0, "overlay_seconds": 600.0, "down_alert_seconds": 0.5,
               "alerts": rig.alerts, **stream_options}
    stream = MarketStream(client, **options)
    return Served(server, faults, client, stream, KalshiVenue(client, platform_id="local", market_stream=stream))


@pytest.fixture
async def served(make_rig: Callable[..., Rig], tmp_path: Path) -> AsyncIterator[tuple[Rig, Served]]:
    # no TTL on the engine's price cache: a read that is not served by the stream goes to REST at once
    rig = make_rig(rig_config(**{"position_management.monitoring.price_cache_ttl_seconds": 0}))
    s = await serve(rig, tmp_path)
    yield rig, s
    await s.stream.close()
    await s.client.aclose()
    s.server.stop()


async def hold_a_position(rig: Rig, s: Served) -> None:
    rig.venue = s.venue  # type: ignore[assignment]
    rig.make_engine(mode="live", market_data="poll")
    assert rig.engine is not None
    await rig.engine.start()
    rig.quote("0.49", "0.50")
    rig.probs.p[TICKER] = Decimal("0.62")
    await rig.run_until(lambda: rig.open_positions(), max_steps=20)
    rig.probs.p.clear()  # no more entries: the test is about watching the held market


async def test_a_held_market_is_priced_from_the_stream_without_rest_and_falls_back_when_it_drops(
        served: tuple[Rig, Served]) -> None:
    rig, s = served
    s.stream.open_connection(reconnect_base=2.0, reconnect_max=2.0)
    await hold_a_position(rig, s)
    engine = rig.engine
    assert engine is not None
    # the held market is followed and, once its subscription is confirmed by one REST snapshot, live
    for _ in range(20):
        await rig.step(1)
        if s.stream.is_live(TICKER):
            break
    assert s.stream.is_live(TICKER) and TICKER in s.stream.followed
    assert s.stream.status()["source"] == "own connection"
    single, batched = s.faults.gets(MARKET_PATH), s.faults.gets(BATCH_PATH)
    reads = s.stream.stats.stream_reads

    # quotes move on the exchange: the engine's view follows them, cycle after cycle, with no REST market read
    for bid, ask in (("0.51", "0.52"), ("0.53", "0.54"), ("0.52", "0.53")):
        rig.quote(bid, ask)
        await wait_for(lambda b=bid: s.stream.market(TICKER) is not None  # type: ignore[misc]
                       and s.stream.market(TICKER).yes_bid == Decimal(b), what=f"stream bid {bid}")
        await rig.step(1)
        snap = engine.snapshots[TICKER]
        assert (snap.yes_bid, snap.yes_ask) == (Decimal(bid), Decimal(ask))
        assert (snap.no_bid, snap.no_ask) == (1 - Decimal(ask), 1 - Decimal(bid))
        assert isinstance(snap.yes_bid, Decimal) and snap.yes_bid_size == Decimal(2000)
    assert s.faults.gets(MARKET_PATH) == single, "a live view must not read the market over REST"
    assert s.faults.gets(BATCH_PATH) == batched
    assert s.stream.stats.stream_reads > reads
    await rig.step(30)  # the monitor's next check of the position (30 s cadence)
    assert s.faults.gets(MARKET_PATH) == single
    pos = rig.open_positions()[0]
    assert pos.current_price == Decimal("0.52")  # the monitor marked the position on the stream's bid
    line = market_data_line(engine)  # the `precog run` status view's "market data" row
    assert line.startswith("stream up (own connection): 1/1 markets live,"), line
    assert f"{s.stream.stats.stream_reads:,} reads, {s.stream.stats.fallbacks:,} over REST, 0 rejected" in line, line

    # the stream drops: the next cycle reads REST (through the budgeted price cache) and, the stream being
    # down for longer than the limit, the alert is raised once
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{s.server.root_url}/sim/ws/drop")
        assert r.status_code == 200
    await wait_for(lambda: s.stream.ws is not None and s.stream.ws.state is not ConnectionState.SUBSCRIBED,
                   what="the drop seen by the client")
    rig.quote("0.47", "0.48")  # a move the stream cannot deliver now
    await asyncio.sleep(0.6)
    assert not s.stream.is_live(TICKER)
    await rig.step(1)
    assert s.faults.gets(MARKET_PATH) == single + 1
    assert engine.snapshots[TICKER].yes_bid == Decimal("0.47")
    assert [a for a in rig.alerts.raised if a[0] == "market_stream_down"]
    await rig.step(1)
    assert s.faults.gets(MARKET_PATH) == single + 2  # every cycle, within the budget, while it is down
    assert len([a for a in rig.alerts.raised if a[0] == "market_stream_down"]) == 1
    rows = rig.rows("SELECT severity, component FROM alerts WHERE alert_type = 'market_stream_down'")
    assert rows == [("high", "market_stream")]
    assert market_data_line(engine).startswith("stream DOWN (own connection): 0/1 markets live")

    # the client reconnects: the new subscription's order book snapshot (or else one batched REST snapshot)
    # confirms the view, then the stream serves it again
    await wait_for(lambda: s.stream.ws is not None and s.stream.ws.state is ConnectionState.SUBSCRIBED,
                   timeout=8, what="the reconnect")
    assert s.stream.ws is not None and s.stream.ws.connects == 2
    await rig.step(1)
    assert s.stream.is_live(TICKER)
    after = s.faults.gets(MARKET_PATH)
    assert after == single + 2 and s.faults.gets(BATCH_PATH) <= batched + 1
    rig.quote("0.50", "0.51")
    await wait_for(lambda: s.stream.market(TICKER) is not None
                   and s.stream.market(TICKER).yes_bid == Decimal("0.50"), what="stream bid after the reconnect")
    await rig.step(1)
    await rig.step(1)
    assert engine.snapshots[TICKER].yes_bid == Decimal("0.50")
    assert s.faults.gets(MARKET_PATH) == after


async def test_subscriptions_follow_the_engine_and_settlement_arrives_by_the_lifecycle_channel(
        make_rig: Callable[..., Rig], tmp_path: Path) -> None:
    rig = make_rig(rig_config(), second_market=True)
    s = await serve(rig, tmp_path)
    try:
        s.stream.open_connection()
        other = [t for t in rig.exchange.markets if t != TICKER][0]
        rig.quote("0.40", "0.42", ticker=other)
        rig.quote("0.49", "0.50")
        await s.stream.follow([TICKER, other])
        await wait_for(lambda: s.stream.is_up(), what="subscribed")
        await s.stream.follow([TICKER, other])  # confirms both with one batched snapshot
        assert s.stream.is_live(TICKER) and s.stream.is_live(other)
        hub = s.server.core.hub
        assert len(hub.connections) == 1
        subscribed = {t for c in hub.connections for sub in c.subs.values() for t in (sub.tickers or ())}
        assert subscribed == {TICKER, other}

        # the engine stops holding `other`: it leaves the subscription (update_subscription delete_markets)
        await s.stream.follow([TICKER])
        await wait_for(lambda: all(other not in (sub.tickers or ()) for c in hub.connections
                                   for sub in c.subs.values()), what="other unsubscribed")
        assert not s.stream.is_live(other) and s.stream.followed == {TICKER}
        rig.quote("0.30", "0.32", ticker=other)
        await asyncio.sleep(0.2)
        assert s.stream.market(other) is None

        # the market settles: the lifecycle event updates status and settlement value before any REST read
        m = s.stream.market(TICKER)
        assert m is not None and m.status is MarketStatus.OPEN
        before = s.faults.gets(MARKET_PATH)
        rig.exchange.settle_market(TICKER, Decimal("0.35"))  # a fractional settlement value
        await wait_for(lambda: (v := s.stream.market(TICKER)) is not None and v.status is MarketStatus.SETTLED,
                       what="settled by the lifecycle channel")
        view = s.stream.market(TICKER)
        assert view is not None and view.settlement_value == Decimal("0.35") and view.result == "scalar"
        assert s.faults.gets(MARKET_PATH) == before
        # the next cycle takes the full REST snapshot of the settled market (one batched call)
        batched = s.faults.gets(BATCH_PATH)
        await s.stream.follow([TICKER])
        assert s.faults.gets(BATCH_PATH) == batched + 1
        view = s.stream.market(TICKER)
        assert view is not None and view.status is MarketStatus.SETTLED and view.settlement_value == Decimal("0.35")
    finally:
        await s.stream.close()
        await s.client.aclose()
        s.server.stop()


async def test_a_bad_stream_price_is_rejected_with_an_alert_and_the_view_goes_back_to_rest(
        served: tuple[Rig, Served]) -> None:
    rig, s = served
    s.stream.open_connection()
    rig.quote("0.49", "0.50")
    await s.stream.follow([TICKER])
    await wait_for(lambda: s.stream.is_up(), what="subscribed")
    await s.stream.follow([TICKER])
    assert s.stream.is_live(TICKER)
    for bad in (Quote(TICKER, Decimal("1.5"), Decimal("0.50")), Quote(TICKER, Decimal("0.60"), Decimal("0.50"))):
        s.stream.on_event(TickerUpdated(bad))
        assert not s.stream.is_live(TICKER) and s.stream.market(TICKER) is None
        # never a price: the venue read goes to REST and returns the exchange's real quote
        before = s.faults.gets(MARKET_PATH)
        m = await s.venue.market(TICKER)
        assert (m.yes_bid, m.yes_ask) == (Decimal("0.49"), Decimal("0.50"))
        assert s.faults.gets(MARKET_PATH) == before + 1
        await s.stream.follow([TICKER])  # the next cycle confirms it again by REST
        assert s.stream.is_live(TICKER)
    raised = [a for a in rig.alerts.raised if a[0] == "market_stream_bad_quote"]
    assert raised and "outside [0, 1]" in raised[0][2]
    assert s.stream.stats.rejected == 2
    # a good stream price after that is used again
    rig.quote("0.45", "0.47")
    await wait_for(lambda: (v := s.stream.market(TICKER)) is not None and v.yes_bid == Decimal("0.45"),
                   what="good price after the rejection")


async def test_the_paper_venue_reads_through_the_stream(served: tuple[Rig, Served]) -> None:
    rig, s = served
    s.stream.open_connection()
    paper = PaperVenue(s.venue, Decimal("1000"))
    assert stream_of(paper) is s.stream and stream_of(rig.venue) is None
    rig.quote("0.49", "0.50")
    await s.stream.follow([TICKER])
    await wait_for(lambda: s.stream.is_up(), what="subscribed")
    await s.stream.follow([TICKER])
    before = s.faults.gets(MARKET_PATH)
    rig.quote("0.44", "0.46")
    await wait_for(lambda: (v := s.stream.market(TICKER)) is not None and v.yes_ask == Decimal("0.46"),
                   what="stream ask")
    m = await paper.market(TICKER)
    assert (m.yes_bid, m.yes_ask) == (Decimal("0.44"), Decimal("0.46"))
    assert s.faults.gets(MARKET_PATH) == before


async def test_with_ingestion_in_the_process_the_view_shares_its_one_connection(
        make_rig: Callable[..., Rig], tmp_path: Path, db_url: str) -> None:
    from precog.db.connection import connect
    from precog.ingest.market_feed import MarketFeed, MarketFeedSettings
    from precog.ingest.market_store import MarketStore
    from precog.ingest.quality import DataQualityMonitor

    rig = make_rig(rig_config())
    s = await serve(rig, tmp_path)
    rig.quote("0.49", "0.50")
    store_conn = connect(db_url, autocommit=True)
    feed = MarketFeed(s.client, MarketStore(store_conn, "local"),
                      MarketFeedSettings("local", {"KXNFLGAME": "nfl"}, flush_interval=0.05),
                      DataQualityMonitor(alerts=rig.alerts), ws_url=s.server.ws_url, signer=s.client.signer)
    s.stream.share(feed)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        await s.stream.follow([TICKER])  # before ingestion's stream exists: not live, nothing opened by the view
        assert not s.stream.is_live(TICKER) and s.stream.market(TICKER) is None
        await wait_for(lambda: s.stream.is_up(), what="ingestion's stream subscribed")
        await s.stream.follow([TICKER])  # already in ingestion's subscription: one REST snapshot confirms it
        assert s.stream.is_live(TICKER) and s.stream.status()["source"] == "ingestion"
        hub = s.server.core.hub
        assert len(hub.connections) == 1, "the engine's view must not open a second connection"
        rig.quote("0.55", "0.57")
        await wait_for(lambda: (v := s.stream.market(TICKER)) is not None and v.yes_bid == Decimal("0.55"),
                       what="the shared stream's price")
        view = await s.venue.market(TICKER)
        assert (view.yes_bid, view.yes_ask, view.no_bid) == (Decimal("0.55"), Decimal("0.57"), Decimal("0.43"))
        assert s.faults.gets(MARKET_PATH) == 0
        assert TICKER in feed.cache  # ingestion kept its own work going on the same events
        await wait_for(lambda: feed.cache[TICKER].get("yes_bid") == Decimal("0.55"), what="ingestion's row")

        # a malformed price on the shared stream (ingestion's fast ticker path): rejected by both, never a price
        assert feed.ws is not None
        feed.ws._on_raw(json.dumps({"type": "ticker", "sid": 1, "seq": 999, "msg": {
            "market_ticker": TICKER, "yes_bid_dollars": "1.5000", "yes_ask_dollars": "0.5700"}}))
        assert s.stream.market(TICKER) is None and s.stream.stats.rejected == 1
        assert [a for a in rig.alerts.raised if a[0] == "market_stream_bad_quote"]
        m = await s.venue.market(TICKER)  # REST has the venue's real quote
        assert (m.yes_bid, m.yes_ask) == (Decimal("0.55"), Decimal("0.57"))
        assert s.faults.gets(MARKET_PATH) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await s.stream.close()
        assert s.stream.on_event not in feed.listeners
        await s.client.aclose()
        s.server.stop()
        store_conn.close()
