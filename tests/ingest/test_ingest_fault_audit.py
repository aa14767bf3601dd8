"""Market ingestion under malformed venue data (audit of s16): what the venue sent is stored exactly, a bad frame
is rejected loudly (a data_quality alert), and no single bad frame may stop the stream or the history writer.

Frames go through the real stream handler (`RecordingWebSocket._on_raw`, what the socket reader calls for each
frame) of a feed discovered from the real local exchange; the history lands in the test's PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from websockets.asyncio.server import serve

from feeds.espn_testkit import RecordingAlerts
from precog.db.connection import connect
from precog.ingest import scd2
from precog.ingest.market_feed import MarketFeed, MarketFeedSettings, RecordingWebSocket
from precog.ingest.market_store import MarketStore
from precog.ingest.quality import DataQualityMonitor
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import KalshiEnvironment
from venues.conftest import LocalExchange

D = Decimal


def _feed(lx: LocalExchange, db_url: str, alerts: RecordingAlerts, ws_url: str | None = None) -> MarketFeed:
    signer = KalshiSigner.from_files(lx.key_id, lx.private_key_path)
    env = KalshiEnvironment("local", lx.base_url, ws_url or lx.ws_url)
    rest = AsyncKalshiClient(env, signer=signer, rate_limits="premier")
    settings = MarketFeedSettings("local", {lx.series_ticker: "nfl"}, flush_interval=0.05,
                                  fallback_poll_seconds=0.3, fallback_grace_seconds=0.2)
    return MarketFeed(rest, MarketStore(connect(db_url, autocommit=True), "local"), settings,
                      DataQualityMonitor(alerts=alerts), ws_url=env.ws_url, signer=signer)


async def _attached(lx: LocalExchange, db_url: str, alerts: RecordingAlerts) -> tuple[MarketFeed, RecordingWebSocket]:
    feed = _feed(lx, db_url, alerts)
    await feed.discover()
    ws = RecordingWebSocket(lx.ws_url, tickers=list(lx.tickers), on_event=feed.on_event)
    ws.on_gap = feed._on_gap
    feed.ws = ws
    return feed, ws


async def _close(feed: MarketFeed) -> None:
    await feed.rest.aclose()
    feed.store.conn.close()


def _ticker(ticker: str, bid: str, ask: str, **extra: Any) -> str:
    msg = {"market_ticker": ticker, "yes_bid_dollars": bid, "yes_ask_dollars": ask, "price_dollars": "0.5000",
           "volume_fp": "12.00", "open_interest_fp": "4.00", "ts": int(time.time()),
           "time": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    msg.update(extra)
    return json.dumps({"type": "ticker", "sid": 2, "msg": msg})


def _current(db: psycopg.Connection[Any], ticker: str) -> dict[str, Any]:
    row = scd2.current(db, scd2.MARKETS, (ticker,))
    assert row is not None, ticker
    return row


def _checks(alerts: RecordingAlerts) -> list[str]:
    return [a["details"]["check"] for a in alerts.of_type("data_quality")]


async def test_a_negative_size_is_rejected_with_an_alert_and_does_not_block_the_history_writer(
        local_exchange: LocalExchange, db_url: str, db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    """markets.volume / open_interest are CHECK (>= 0): a negative count merged into the cached row made every
    later batch of that writer fail (database_error, retried forever), so no market's prices were stored."""
    feed, ws = await _attached(local_exchange, db_url, alerts)
    ne, buf = local_exchange.tickers
    ws._on_raw(_ticker(ne, "0.4000", "0.4500", volume_fp="-5.00"))
    ws._on_raw(_ticker(buf, "0.3000", "0.3500", open_interest_fp="-1.00"))
    assert feed.stats.rejected == 2
    assert _checks(alerts).count("schema_drift") >= 1
    await feed.flush()
    ws._on_raw(_ticker(ne, "0.4100", "0.4600"))  # the next good frame of each market is stored
    ws._on_raw(_ticker(buf, "0.3100", "0.3600"))
    await feed.flush()
    assert alerts.of_type("database_error") == []
    await _close(feed)
    row_ne, row_buf = _current(db, ne), _current(db, buf)
    assert (row_ne["yes_bid"], row_ne["yes_ask"], row_ne["volume"]) == (D("0.41"), D("0.46"), 12)
    assert (row_buf["yes_bid"], row_buf["yes_ask"], row_buf["open_interest"]) == (D("0.31"), D("0.36"), 4)
    # the rejected frames made no version: no price 0.40 / 0.30 was ever stored
    bids = {r[0] for r in db.execute("SELECT yes_bid FROM markets WHERE market_id = ANY(%s)", ([ne, buf],))}
    assert D("0.40") not in bids and D("0.30") not in bids


async def test_a_non_finite_size_is_rejected_and_the_stream_handler_keeps_reading(
        local_exchange: LocalExchange, db_url: str, db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    """`"volume_fp": "NaN"` passed the fast decoder and int(NaN) raised out of the frame handler: the socket
    reader task died while the client still said SUBSCRIBED (no reconnect, no REST polling)."""
    feed, ws = await _attached(local_exchange, db_url, alerts)
    ne, _ = local_exchange.tickers
    for bad in ("NaN", "Infinity", "-Infinity", "sNaN"):
        ws._on_raw(_ticker(ne, "0.4000", "0.4500", volume_fp=bad))  # must not raise
        ws._on_raw(_ticker(ne, "0.4000", "0.4500", open_interest_fp=bad))
    assert _checks(alerts) == ["schema_drift"] * 8  # each frame rejected loudly (the full parser names the field)
    assert all("not finite" in a["message"] for a in alerts.of_type("data_quality"))
    ws._on_raw(_ticker(ne, "0.4200", "0.4700"))
    await feed.flush()
    await _close(feed)
    row = _current(db, ne)
    assert (row["yes_bid"], row["volume"], row["open_interest"]) == (D("0.42"), 12, 4)


async def test_numbers_under_dollar_and_fp_names_are_read_as_the_full_parser_reads_them(
        local_exchange: LocalExchange, db_url: str, db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    """The fast path dropped an unquoted `price_dollars` / `volume_fp` silently (last price / volume lost) where the
    venue client's parser reads a number under a `*_dollars` / `*_fp` name as that unit."""
    feed, ws = await _attached(local_exchange, db_url, alerts)
    ne, _ = local_exchange.tickers
    frame = _ticker(ne, "0.4000", "0.4400")
    frame = frame.replace('"price_dollars": "0.5000"', '"price_dollars": 0.43')
    frame = frame.replace('"volume_fp": "12.00"', '"volume_fp": 17.0')
    ws._on_raw(frame)
    await feed.flush()
    await _close(feed)
    row = _current(db, ne)
    assert (row["last_price"], row["volume"]) == (D("0.43"), 17)
    assert alerts.of_type("data_quality") == []


async def test_a_bad_frame_over_a_real_socket_does_not_stop_the_feed(
        local_exchange: LocalExchange, db_url: str, db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    """End to end: a venue socket sends a malformed frame, then a good one; the good one is stored and the feed
    stays streaming."""
    ne, buf = local_exchange.tickers
    sent = asyncio.Event()

    async def venue(conn: Any) -> None:
        sid = 0
        for _ in range(2):  # ticker, market_lifecycle_v2
            cmd = json.loads(await conn.recv())
            sid += 1
            await conn.send(json.dumps({"id": cmd["id"], "type": "subscribed",
                                        "msg": {"channel": cmd["params"]["channels"][0], "sid": sid}}))
        await asyncio.sleep(0.3)
        await conn.send(_ticker(ne, "0.4000", "0.4500", volume_fp="NaN"))
        await conn.send(_ticker(buf, "0.2200", "0.2700"))
        sent.set()
        await conn.wait_closed()  # until the feed stops

    async with serve(venue, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        feed = _feed(local_exchange, db_url, alerts, ws_url=f"ws://127.0.0.1:{port}/trade-api/ws/v2")
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop))
        try:
            await asyncio.wait_for(sent.wait(), 10)
            deadline = time.monotonic() + 10
            while _current(db, buf)["yes_bid"] != D("0.22"):
                assert time.monotonic() < deadline, feed.status()
                await asyncio.sleep(0.05)
            assert feed.ws is not None and feed.ws._task is not None and not feed.ws._task.done()
            assert feed.mode == "streaming" and "schema_drift" in _checks(alerts)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            await _close(feed)


async def test_a_rest_market_with_a_negative_count_is_rejected_and_does_not_block_the_writer(
        local_exchange: LocalExchange, db_url: str, db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    """The REST side of the same rule: a snapshot market with a negative volume is alerted and not stored, and
    the other markets of the batch still are."""
    feed, _ws = await _attached(local_exchange, db_url, alerts)
    ne, buf = local_exchange.tickers
    local_exchange.counterparty_order(ne, "yes", "buy", 5, "0.33")
    local_exchange.counterparty_order(buf, "yes", "buy", 5, "0.21")
    page = await feed.rest.get_markets(tickers=[ne, buf], limit=10)
    by_ticker = {m.ticker: m for m in page.items}
    bad = dataclasses.replace(by_ticker[ne], volume=D("-3"))
    feed.ingest_snapshot([bad, by_ticker[buf]], datetime.now(UTC), time.time())
    await feed.flush()
    await _close(feed)
    assert _checks(alerts) == ["schema_drift"] and "volume=-3" in alerts.of_type("data_quality")[0]["message"]
    assert alerts.of_type("database_error") == []
    assert _current(db, buf)["yes_bid"] == D("0.21")
    assert _current(db, ne)["yes_bid"] != D("0.33")  # the malformed snapshot made no version
