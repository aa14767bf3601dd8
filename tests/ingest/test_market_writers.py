"""Market history written by two connections at once (each batch split by market): order and retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
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
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import KalshiEnvironment
from venues.conftest import LocalExchange

D = Decimal
EVENT = "KXNFLGAME-25DEC07-SPLIT"


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def markets(local_exchange: LocalExchange) -> list[str]:
    """Eight more markets of one event, so both writers get some (the split is by ticker)."""
    ex = local_exchange.exchange
    ex.create_event(EVENT, local_exchange.series_ticker, "Split test", "A at B")
    tickers = [f"{EVENT}-M{i}" for i in range(8)]
    for ticker in tickers:
        ex.create_market(ticker, EVENT, title=f"market {ticker}")
    return tickers


@pytest.fixture
async def two_writer_feed(local_exchange: LocalExchange, db_url: str, markets: list[str],
                          alerts: RecordingAlerts) -> AsyncIterator[Callable[..., Any]]:
    feeds: list[tuple[MarketFeed, asyncio.Event, asyncio.Task[None]]] = []

    async def start(prepare: Callable[[MarketFeed], None] | None = None) -> MarketFeed:
        env = KalshiEnvironment("local", local_exchange.base_url, local_exchange.ws_url)
        signer = KalshiSigner.from_files(local_exchange.key_id, local_exchange.private_key_path)  # streams need it
        rest = AsyncKalshiClient(env, signer=signer, rate_limits="premier")
        feed = MarketFeed(rest, MarketStore(connect(db_url, autocommit=True), "local"),
                          MarketFeedSettings("local", {local_exchange.series_ticker: "nfl"}, flush_interval=0.05,
                                             fallback_poll_seconds=0.3, fallback_grace_seconds=0.2),
                          DataQualityMonitor(alerts=alerts), ws_url=env.ws_url, signer=signer,
                          extra_stores=[MarketStore(connect(db_url, autocommit=True), "local")])
        if prepare is not None:
            prepare(feed)
        stop = asyncio.Event()
        feeds.append((feed, stop, asyncio.create_task(feed.run(stop))))
        await until(lambda: feed.mode == "streaming" and feed.stats.batches >= 1, "discovery and subscription")
        return feed

    yield start
    for feed, stop, task in feeds:
        stop.set()
        await asyncio.wait_for(task, 15)
        await feed.rest.aclose()
        for store in feed.writers:
            store.conn.close()


def bid(db: psycopg.Connection[Any], ticker: str) -> Decimal | None:
    row = scd2.current(db, scd2.MARKETS, (ticker,))
    return row["yes_bid"] if row else None


def assert_one_ordered_history(db: psycopg.Connection[Any], ticker: str) -> list[dict[str, Any]]:
    versions = scd2.history(db, scd2.MARKETS, (ticker,))
    assert [v["row_current_ind"] for v in versions] == [False] * (len(versions) - 1) + [True], ticker
    for older, newer in zip(versions, versions[1:], strict=False):
        assert older["created_at"] <= newer["created_at"] and older["row_end_ts"] == newer["created_at"], ticker
    return versions


async def test_both_writers_store_every_market_in_order(
        two_writer_feed: Callable[..., Any], local_exchange: LocalExchange, markets: list[str],
        db: psycopg.Connection[Any]) -> None:
    feed = await two_writer_feed()
    assert {feed._writer_index(t) for t in markets} == {0, 1}  # the test exercises both connections
    for step, price in enumerate(("0.30", "0.35", "0.40")):  # three material moves of every market
        for ticker in markets:
            local_exchange.counterparty_order(ticker, "yes", "buy", 1, price)
        await until(lambda p=price: all(bid(db, t) == D(p) for t in markets), f"bids at {price} (step {step})")
    for ticker in markets:
        bids = [v["yes_bid"] for v in assert_one_ordered_history(db, ticker)]
        assert bids[-3:] == [D("0.30"), D("0.35"), D("0.40")], ticker
    # nothing lost between the two halves: every accepted update is committed
    await until(lambda: feed.stats.committed_updates == feed.stats.updates, "every update committed")
    assert feed.stats.freshness_ms and max(feed.stats.freshness_ms) < 5000


async def test_a_failing_writer_keeps_its_markets_for_the_retry_while_the_other_commits(
        two_writer_feed: Callable[..., Any], local_exchange: LocalExchange, markets: list[str],
        db: psycopg.Connection[Any], db_url: str, alerts: RecordingAlerts) -> None:
    def short_lock_wait(feed: MarketFeed) -> None:
        feed.writers[1].conn.execute("SET lock_timeout = '100ms'")

    feed = await two_writer_feed(short_lock_wait)
    first = next(t for t in markets if feed._writer_index(t) == 0)
    second = next(t for t in markets if feed._writer_index(t) == 1)
    with db.transaction():  # another session holds the current row of `second`: its writer times out
        db.execute("SELECT 1 FROM markets WHERE market_id = %s AND row_current_ind FOR UPDATE", (second,))
        for ticker in (first, second):
            local_exchange.counterparty_order(ticker, "yes", "buy", 1, "0.33")
        with connect(db_url, autocommit=True) as reader:
            await until(lambda: bid(reader, first) == D("0.33") and bool(alerts.of_type("database_error")),
                        "the first writer's commit and the second's failure")  # the healthy half commits
            assert bid(reader, second) != D("0.33")
    # lock released: the kept update is written by a later flush, in order
    await until(lambda: bid(db, second) == D("0.33"), "the retried update")
    assert_one_ordered_history(db, second)
    assert alerts.of_type("database_error")[0]["dedup_key"] == "ingest:market_store"
    await until(lambda: feed.stats.committed_updates == feed.stats.updates, "every update committed")
