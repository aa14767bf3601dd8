"""WebSocket disconnects and sequence gaps, over and over, while prices move: market ingestion reconnects,
resyncs the books, fills every gap over REST, and ends with the exchange's prices stored — nothing lost."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from feeds.espn_testkit import RecordingAlerts
from precog.db.connection import connect
from precog.ingest import scd2
from precog.ingest.market_feed import MarketFeed, MarketFeedSettings
from precog.ingest.market_store import MarketStore
from precog.ingest.quality import DataQualityMonitor
from precog.reliability import tally
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import KalshiEnvironment
from precog.venues.kalshi.events import ConnectionState
from reliability.conftest import SERIES, RelExchange

ROUNDS = 8


async def _until(cond: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.timeout(180)
async def test_rel_ws_drop_and_gap_storm_loses_no_price(rel_exchange: RelExchange, db_url: str) -> None:
    rx = rel_exchange
    signer = KalshiSigner.from_files(rx.key_id, rx.key_path)
    env = KalshiEnvironment("local", rx.base_url, rx.ws_url)
    rest = AsyncKalshiClient(env, signer=signer, rate_limits="premier")
    store_conn = connect(db_url, autocommit=True)
    alerts = RecordingAlerts()
    feed = MarketFeed(rest, MarketStore(store_conn, "local"),
                      MarketFeedSettings("local", {SERIES: "nfl"}, flush_interval=0.05, fallback_poll_seconds=0.3,
                                         fallback_grace_seconds=0.2, orderbook=True),
                      DataQualityMonitor(alerts=alerts), ws_url=env.ws_url, signer=signer)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    db = psycopg.connect(db_url, autocommit=True)

    def stored_bid(ticker: str) -> Decimal | None:
        row = scd2.current(db, scd2.MARKETS, (ticker,))
        return None if row is None else row["yes_bid"]

    drops = gaps = 0
    try:
        await _until(lambda: feed.ws is not None and feed.mode == "streaming", what="streaming")
        for r in range(ROUNDS):
            ticker = rx.tickers[r % 2]
            bid = Decimal(30 + r) / 100
            await _until(lambda: feed.ws is not None and feed.mode == "streaming"
                         and feed.ws.state == ConnectionState.SUBSCRIBED, what="streaming again")
            if r % 2 == 0:
                drops += rx.admin.drop_websockets()
            else:
                gaps += rx.admin.skip_ws_seq(1)
            rx.exchange.place_order(rx.mm, ticker, "yes", "buy", 5, bid)  # the price moves during the fault
            await _until(lambda t=ticker, b=bid: stored_bid(t) == b, what=f"round {r}: {ticker} bid {bid}")
        for ticker in rx.tickers:  # the final state equals the exchange's best bid (the last, highest one)
            best = max(Decimal(30 + r) / 100 for r in range(ROUNDS) if rx.tickers[r % 2] == ticker)
            assert stored_bid(ticker) == best
        assert feed.ws is not None and feed.ws.connects >= 1 + drops // 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await rest.aclose()
        store_conn.close()
        db.close()
    assert drops == ROUNDS // 2 and gaps == ROUNDS // 2
    tally.record("venue: WebSocket disconnect during ingestion", drops,
                 "reconnected with backoff and refreshed over REST; the price that moved meanwhile was stored")
    tally.record("venue: WebSocket sequence gap during ingestion", gaps,
                 "book resubscribed for a fresh snapshot plus a REST refresh; no price lost")
