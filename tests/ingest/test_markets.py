"""Market ingestion against the local exchange: discovery, streaming, drops, gaps, fallback, quality, recording."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from feeds.espn_testkit import RecordingAlerts
from precog.db.connection import connect
from precog.domain.market import Quote
from precog.ingest import scd2
from precog.ingest.breaker import DataBreaker
from precog.ingest.market_feed import MarketFeed, MarketFeedSettings, RecordingWebSocket
from precog.ingest.market_store import MarketStore
from precog.ingest.quality import DataQualityMonitor
from precog.ingest.recorder import Recorder, read_recording
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import KalshiEnvironment
from precog.venues.kalshi.events import ConnectionState, StreamError, TickerUpdated
from venues.conftest import LocalExchange

D = Decimal


class Running:
    def __init__(self, feed: MarketFeed, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.feed, self.stop, self.task = feed, stop, task


FEEDS: list[MarketFeed] = []


async def until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            states = [f.status() for f in FEEDS]
            raise AssertionError(f"timed out waiting for {what}; feeds: {states}")
        await asyncio.sleep(0.02)


def make_feed(lx: LocalExchange, db_url: str, alerts: RecordingAlerts, *,
              signed: bool = True, ws_url: str | None = None, recorder: Recorder | None = None,
              breaker: DataBreaker | None = None, **settings: Any) -> MarketFeed:
    """A feed on the local exchange, with the test account's key unless `signed=False` (the exchange, like Kalshi,
    then refuses the WebSocket handshake)."""
    signer = KalshiSigner.from_files(lx.key_id, lx.private_key_path) if signed else None
    env = KalshiEnvironment("local", lx.base_url, ws_url or lx.ws_url)
    rest = AsyncKalshiClient(env, signer=signer, rate_limits="premier")
    base = {"flush_interval": 0.05, "fallback_poll_seconds": 0.3, "fallback_grace_seconds": 0.2}
    FEEDS.clear()
    # the feed writes from a worker thread: it gets its own connection (the test reads on another)
    feed = MarketFeed(rest, MarketStore(connect(db_url, autocommit=True), "local"),
                      MarketFeedSettings("local", {lx.series_ticker: "nfl"}, **{**base, **settings}),
                      DataQualityMonitor(alerts=alerts, breaker=breaker), ws_url=env.ws_url, signer=signer,
                      recorder=recorder)
    FEEDS.append(feed)
    return feed


@pytest.fixture
async def running(local_exchange: LocalExchange, db_url: str,
                  alerts: RecordingAlerts) -> AsyncIterator[Callable[..., Any]]:
    started: list[Running] = []

    async def start(**kwargs: Any) -> MarketFeed:
        feed = make_feed(local_exchange, db_url, alerts, **kwargs)
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop))
        started.append(Running(feed, stop, task))
        await until(lambda: feed.stats.batches >= 1, what="discovery")
        return feed

    yield start
    for r in started:
        r.stop.set()
        await asyncio.wait_for(r.task, 15)
        await r.feed.rest.aclose()
        r.feed.store.conn.close()


def current(db: psycopg.Connection[Any], ticker: str) -> dict[str, Any]:
    row = scd2.current(db, scd2.MARKETS, (ticker,))
    assert row is not None, ticker
    return row


async def test_discovery_stores_series_events_and_markets_with_cursor_paging(
        local_exchange: LocalExchange, db_url: str, db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    ex = local_exchange.exchange
    ex.create_event("KXNFLGAME-25NOV30DENWAS", "KXNFLGAME", "Denver at Washington", "DEN at WAS")
    for code, name in (("DEN", "Denver"), ("WAS", "Washington")):
        ex.create_market(f"KXNFLGAME-25NOV30DENWAS-{code}", "KXNFLGAME-25NOV30DENWAS", title=f"Will {name} win?",
                         yes_sub_title=name)
    feed = make_feed(local_exchange, db_url, alerts, page_size=1)  # one market per page: paging is exercised
    tickers = await feed.discover()
    await feed.rest.aclose()
    assert sorted(tickers) == sorted([*local_exchange.tickers, "KXNFLGAME-25NOV30DENWAS-DEN",
                                      "KXNFLGAME-25NOV30DENWAS-WAS"])
    assert db.execute("SELECT series_id, platform_id, category, subcategory FROM series").fetchall() == [
        ("KXNFLGAME", "local", "sports", "nfl")]
    events = db.execute("SELECT event_id, series_id, title FROM events ORDER BY event_id").fetchall()
    assert events == [("KXNFLGAME-25NOV30DENWAS", "KXNFLGAME", "Denver at Washington"),
                      ("KXNFLGAME-25OCT05-NEBUF", "KXNFLGAME", "New England at Buffalo")]
    ne = current(db, "KXNFLGAME-25OCT05-NEBUF-NE")
    assert ne["event_id"] == "KXNFLGAME-25OCT05-NEBUF" and ne["status"] == "open" and ne["platform_id"] == "local"
    assert ne["metadata"]["yes_sub_title"] == "New England" and ne["title"] == "Will New England win?"
    assert (ne["yes_bid"], ne["yes_ask"]) == (D("0.0000"), D("1.0000"))  # empty book


async def test_stream_updates_become_versions_under_the_material_change_rule(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    feed = await running()
    ne = local_exchange.tickers[0]
    local_exchange.counterparty_order(ne, "yes", "buy", 10, "0.42")
    local_exchange.counterparty_order(ne, "no", "buy", 50, "0.55")
    await until(lambda: current(db, ne)["yes_ask"] == D("0.45"), what="quote stored")
    row = current(db, ne)
    assert (row["yes_bid"], row["yes_ask"], row["no_bid"], row["no_ask"]) == (D("0.42"), D("0.45"), D("0.55"),
                                                                              D("0.58"))
    assert row["spread"] == D("0.03") and row["yes_price"] == D("0.435")
    taker = local_exchange.exchange.create_account(balance=D("1000")).user_id
    local_exchange.admin.place_order(taker, ne, "yes", "buy", 3, price_dollars="0.45")  # trades 3 @ 0.45
    await until(lambda: current(db, ne)["last_price"] == D("0.45"), what="trade stored")
    versions_before = len(scd2.history(db, scd2.MARKETS, (ne,)))
    updates_before = feed.stats.updates
    local_exchange.admin.place_order(taker, ne, "yes", "buy", 2, price_dollars="0.45")  # volume +2: not material
    await until(lambda: feed.stats.updates > updates_before, what="ticker update")
    await asyncio.sleep(0.2)
    assert len(scd2.history(db, scd2.MARKETS, (ne,))) == versions_before
    assert current(db, ne)["volume"] == 3  # the stored version keeps the last material state
    # point in time: before the first quote the market was an empty book
    first = scd2.history(db, scd2.MARKETS, (ne,))[0]
    assert first["yes_bid"] == D("0") and first["row_end_ts"] is not None
    assert feed.stats.freshness_ms and max(feed.stats.freshness_ms) < 5000


async def test_settlement_arrives_through_lifecycle(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    await running()
    buf = local_exchange.tickers[1]
    local_exchange.settle(buf, "1")
    await until(lambda: current(db, buf)["status"] == "settled", what="settlement")
    row = current(db, buf)
    assert row["result"] == "yes" and row["settlement_value"] == D("1.0000")


async def test_websocket_drop_reconnects_and_fills_the_gap_over_rest(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    feed = await running()
    ne = local_exchange.tickers[0]
    await until(lambda: feed.ws is not None and feed.ws.connects == 1 and feed.mode == "streaming")
    assert local_exchange.admin.drop_websockets() == 1
    local_exchange.counterparty_order(ne, "yes", "buy", 5, "0.37")  # happens while we are disconnected
    await until(lambda: feed.ws is not None and feed.ws.connects >= 2, what="reconnect")
    await until(lambda: current(db, ne)["yes_bid"] == D("0.37"), what="missed update recovered")
    assert feed.stats.rest_snapshots >= 2  # discovery + the catch-up after the reconnect
    # back to streaming once the venue confirms the subscription (on a loaded machine the reconnect can take
    # long enough for the feed to poll in between, and the missed update may come from that poll)
    await until(lambda: feed.mode == "streaming", what="streaming again")


async def test_rest_polling_while_the_stream_is_unavailable(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    feed = await running(ws_url="ws://127.0.0.1:9/trade-api/ws/v2")  # nothing listens there
    await until(lambda: feed.mode == "polling", what="polling mode")
    assert feed.status()["reliable_realtime"] is False
    buf = local_exchange.tickers[1]
    local_exchange.counterparty_order(buf, "no", "buy", 5, "0.30")
    await until(lambda: current(db, buf)["yes_ask"] == D("0.70"), what="polled price")


async def test_without_a_key_the_stream_is_refused_and_prices_come_from_rest_polling(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    """As on Kalshi, the local exchange refuses an unsigned WebSocket handshake: a feed without a key never
    streams, reports polling (not realtime), and still gets every market's prices into the database."""
    feed = await running(signed=False)
    await until(lambda: feed.mode == "polling", what="polling mode")
    status = feed.status()
    assert status["reliable_realtime"] is False and status["messages"] == 0
    assert feed.ws is not None and feed.ws.connects == 0  # every handshake was refused
    ne, buf = local_exchange.tickers
    local_exchange.counterparty_order(ne, "yes", "buy", 5, "0.31")
    local_exchange.counterparty_order(buf, "no", "buy", 5, "0.30")
    await until(lambda: current(db, ne)["yes_bid"] == D("0.31") and current(db, buf)["yes_ask"] == D("0.70"),
                what="polled prices")
    assert feed.mode == "polling" and feed.ws.connects == 0


async def test_orderbook_sequence_gap_triggers_resync_and_rest_refresh(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    feed = await running(orderbook=True)
    await until(lambda: feed.mode == "streaming")
    snapshots = feed.stats.rest_snapshots
    assert local_exchange.admin.skip_ws_seq(1) == 1
    ne = local_exchange.tickers[0]
    local_exchange.counterparty_order(ne, "yes", "buy", 5, "0.33")
    await until(lambda: feed.ws is not None and feed.ws.resyncs >= 1, what="book resync")
    await until(lambda: feed.stats.rest_snapshots > snapshots, what="REST refresh")
    await until(lambda: current(db, ne)["yes_bid"] == D("0.33"))


async def test_bad_stream_data_is_rejected_alerted_and_trips_the_breaker(
        local_exchange: LocalExchange, db_url: str, db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    breaker = DataBreaker(threshold=3, alerts=alerts)
    feed = make_feed(local_exchange, db_url, alerts, breaker=breaker)
    await feed.discover()
    await feed.rest.aclose()
    ne = local_exchange.tickers[0]
    now = datetime.now(UTC)
    feed.on_event(TickerUpdated(Quote(ne, yes_bid=D("0.60"), yes_ask=D("0.50"), ts=now)))  # crossed
    feed.on_event(StreamError(None, "ticker: yes_bid_dollars is outside [0, 1] dollars: 1.5"))
    assert feed.stats.rejected == 1 and not breaker.is_open()
    feed.on_event(StreamError(None, "ticker: msg is missing or not an object"))
    assert breaker.is_open()
    checks = [a["details"]["check"] for a in alerts.of_type("data_quality")]
    assert checks == ["crossed_book", "price_out_of_range", "schema_drift"]
    assert alerts.of_type("circuit_breaker")[0]["severity"] == "critical"
    await feed.flush()
    assert current(db, ne)["yes_bid"] == D("0")  # the crossed quote was never stored
    # an unknown market (not discovered) is counted, not stored
    feed.on_event(TickerUpdated(Quote("KXNOPE-1", yes_bid=D("0.1"), yes_ask=D("0.2"), ts=now)))
    assert feed.stats.unknown_ticker == 1


async def test_recorder_captures_raw_frames_and_rest_bodies(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any],
        tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, flush_seconds=0)
    feed = await running(recorder=recorder)
    ne = local_exchange.tickers[0]
    await until(lambda: feed.mode == "streaming")
    local_exchange.counterparty_order(ne, "yes", "buy", 10, "0.48")
    await until(lambda: current(db, ne)["yes_bid"] == D("0.48"))
    recorder.flush()
    frames = [m.json_payload() for m in read_recording(tmp_path, sources=["kalshi:ws"])]
    tickers = [f["msg"] for f in frames if f.get("type") == "ticker"]
    assert any(t["market_ticker"] == ne and t["yes_bid_dollars"] == "0.4800" for t in tickers)
    assert all(m.received_at.tzinfo is not None for m in read_recording(tmp_path))
    recorder.close()


async def test_ticker_sequence_gaps_and_legacy_frames(local_exchange: LocalExchange, db_url: str,
                                                      db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    """Frames as the venue sends them, fed to the stream handler: a seq jump asks for a REST refresh;
    a legacy ticker (cents only) still goes through the venue client's full parser."""
    feed = make_feed(local_exchange, db_url, alerts)
    await feed.discover()
    ws = RecordingWebSocket(local_exchange.ws_url, tickers=list(local_exchange.tickers), on_event=feed.on_event)
    ws.on_gap = feed._on_gap
    feed.ws = ws
    ne, buf = local_exchange.tickers
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def frame(seq: int, ticker: str, bid: str, ask: str) -> str:
        return json.dumps({"type": "ticker", "sid": 3, "seq": seq, "msg": {
            "market_ticker": ticker, "yes_bid_dollars": bid, "yes_ask_dollars": ask, "price_dollars": "0.5000",
            "volume_fp": "12.00", "open_interest_fp": "4.00", "ts": int(time.time()), "time": now}})

    ws._on_raw(frame(1, ne, "0.5000", "0.5200"))
    ws._on_raw(frame(2, ne, "0.5100", "0.5200"))
    assert ws.gaps == 0 and not feed._needs_refresh.is_set()
    ws._on_raw(frame(5, ne, "0.5300", "0.5400"))  # 3 and 4 were lost
    assert ws.gaps == 1 and feed._needs_refresh.is_set()
    legacy = json.dumps({"type": "ticker", "sid": 3, "seq": 6, "msg": {
        "market_ticker": buf, "yes_bid": 20, "yes_ask": 25, "price": 22, "volume": 3, "ts": int(time.time())}})
    ws._on_raw(legacy)
    await feed.flush()
    await feed.rest.aclose()
    feed.store.conn.close()
    row_ne, row_buf = current(db, ne), current(db, buf)
    assert (row_ne["yes_bid"], row_ne["yes_ask"], row_ne["volume"]) == (D("0.53"), D("0.54"), 12)
    assert (row_buf["yes_bid"], row_buf["yes_ask"], row_buf["last_price"]) == (D("0.20"), D("0.25"), D("0.22"))


async def test_markets_changed_before_their_subscription_took_effect_are_caught_up_at_the_acknowledgement(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    """Discovery finds new markets and adds them to the live stream. Whatever happens to them after discovery's
    REST snapshot but before the venue applies their subscription is never streamed: the venue's acknowledgement
    makes the feed take one REST snapshot of exactly those markets, long before the next discovery pass."""
    discovery_seconds = 3.0
    feed = await running(discovery_seconds=discovery_seconds)
    await until(lambda: feed.mode == "streaming", what="streaming")
    lx, hub = local_exchange, local_exchange.server.core.hub
    ex = lx.exchange
    event = "KXNFLGAME-25NOV30DENWAS"
    ex.create_event(event, lx.series_ticker, "Denver at Washington", "DEN at WAS")
    settles, moves, quiet = (ex.create_market(f"{event}-{code}", event, title=f"{code} wins?").ticker
                             for code in ("DEN", "WAS", "TIE"))
    hub.hold_subscriptions()  # the exchange parks subscribe commands unapplied until released
    new = {settles, moves, quiet}
    await until(lambda: any(new <= set(c["params"].get("market_tickers", [])) for c in hub.held_subscriptions()),
                timeout=discovery_seconds + 10, what="discovery's subscription of the new markets (held)")
    assert current(db, settles)["status"] == "open" and current(db, moves)["yes_bid"] == D("0")
    snapshots = feed.stats.rest_snapshots
    # in the window: the venue changes two of them; the stream cannot deliver it (not subscribed yet)
    lx.settle(settles, "1")
    lx.counterparty_order(moves, "yes", "buy", 5, "0.41")
    released = time.monotonic()
    hub.release_subscriptions()
    # well before the next discovery pass (>= discovery_seconds away): the REST snapshot taken at the ack
    await until(lambda: current(db, settles)["status"] == "settled" and current(db, moves)["yes_bid"] == D("0.41"),
                timeout=discovery_seconds - 1.0, what="the changes made in the subscription window")
    assert time.monotonic() - released < discovery_seconds
    row = current(db, settles)
    assert row["result"] == "yes" and row["settlement_value"] == D("1.0000")
    assert feed.stats.rest_snapshots == snapshots + 1  # one batched snapshot of exactly the new markets
    assert len(scd2.history(db, scd2.MARKETS, (quiet,))) == 1  # unchanged: the material-change rule wrote nothing
    # and from now on their updates are streamed
    lx.counterparty_order(quiet, "no", "buy", 5, "0.30")
    await until(lambda: current(db, quiet)["yes_ask"] == D("0.70"), what="a streamed update of a new market")


async def test_a_rest_answer_older_than_a_streamed_settlement_does_not_undo_it(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    """A REST refresh requested before a settlement whose answer arrives after the stream delivered it (the race
    behind the once-flaky settlement test): the older answer must not turn the market back to open."""
    feed = await running()
    await until(lambda: feed.mode == "streaming", what="streaming")
    buf = local_exchange.tickers[1]
    requested_at = time.time()
    answer = await feed.rest.get_markets(tickers=[buf], limit=1)  # the venue's answer while BUF is still open
    assert answer.items[0].status.value == "open"
    local_exchange.settle(buf, "1")
    await until(lambda: current(db, buf)["status"] == "settled", what="settlement streamed")
    feed.ingest_snapshot(answer.items, datetime.now(UTC), requested_at)  # that answer is processed only now
    await feed.flush()
    row = current(db, buf)
    assert (row["status"], row["result"], row["settlement_value"]) == ("settled", "yes", D("1.0000"))


async def test_changes_before_the_first_subscription_took_effect_are_caught_up(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any]) -> None:
    """Startup order: discovery's REST snapshot comes first, the connection's first subscription after it; a
    change in between is caught up by one REST snapshot taken when the venue acknowledges the subscription."""
    hub = local_exchange.server.core.hub
    hub.hold_subscriptions()
    feed = await running(fallback_grace_seconds=60.0)  # no REST polling meanwhile: only the catch-up can see it
    ne, buf = local_exchange.tickers
    await until(lambda: len(hub.held_subscriptions()) == 2, what="the first subscription (ticker, lifecycle) parked")
    assert feed.ws is not None and feed.ws.state is ConnectionState.CONNECTED and feed.stats.rest_snapshots == 0
    local_exchange.settle(buf, "1")
    local_exchange.counterparty_order(ne, "yes", "buy", 5, "0.44")
    hub.release_subscriptions()
    await until(lambda: current(db, buf)["status"] == "settled" and current(db, ne)["yes_bid"] == D("0.44"),
                timeout=5.0, what="the changes made before the first subscription took effect")
    assert feed.mode == "streaming" and feed.stats.rest_snapshots == 1  # one catch-up, not one per reason


async def test_a_full_rest_refresh_leaves_markets_not_yet_discovered_to_discovery(
        running: Callable[..., Any], local_exchange: LocalExchange, db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    """A market that appeared after the last discovery pass (its event not stored, not subscribed) must not be
    taken by a reconnect's or the fallback poll's refresh: it would fail every batch on the events foreign key
    and, looking known, never be subscribed by the next discovery pass."""
    feed = await running(discovery_seconds=300.0)
    ex = local_exchange.exchange
    event = "KXNFLGAME-25NOV30DENWAS"
    ex.create_event(event, local_exchange.series_ticker, "Denver at Washington", "DEN at WAS")
    new = ex.create_market(f"{event}-DEN", event, title="Denver wins?").ticker
    ne = local_exchange.tickers[0]
    local_exchange.counterparty_order(ne, "yes", "buy", 5, "0.38")
    assert await feed.refresh_from_rest() == 2  # the followed markets only
    await feed.flush()
    assert new not in feed.cache and current(db, ne)["yes_bid"] == D("0.38")
    assert not alerts.of_type("database_error")
    assert await feed.discover() and new in feed.cache  # discovery takes it: event first, then the market
    assert current(db, new)["event_id"] == event
