"""The running engine feeds the data breakers (spec 5.4, issue 7): data_stale gets the age of the engine's last
confirmed view of the markets it trades (it pauses entries past the limit and recovers by itself once the data
is fresh again); every market payload the data path refuses counts one bad point toward data_quality (3 within
5 minutes pause entries). Real parts: the local exchange (in process, and served over HTTP to the real Kalshi
client), a breaker board on the test database, the alerts table."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from engine.conftest import TICKER, TICKER2, Rig, rig_config
from engine.streamkit import CountingFaults, wait_for
from precog.domain.market import MarketStatus, Quote
from precog.engine.data_watch import market_defect
from precog.engine.kalshi_venue import KalshiVenue
from precog.engine.market_stream import MarketStream
from precog.trading.scan import board_for
from precog.trading.settings import TradingSettings
from precog.venues.exchange.runner import ExchangeServer
from precog.venues.kalshi.events import TickerUpdated

MARKET_PATH = f"/trade-api/v2/markets/{TICKER}"


def _board(rig: Rig, db_url: str, **changes: Any) -> Any:
    """The database-backed board, data_stale after 30 s. Its 60 s automatic reset is left out: these tests are
    about the recovery the fresh data itself brings (and `precog breakers list`, on the wall clock, must not
    lift a trip made on the rig's simulated clock)."""
    settings = TradingSettings.from_config(rig.config)
    resets = {k: v for k, v in settings.breakers.reset_seconds.items() if k != "data_stale"}
    breakers = dataclasses.replace(settings.breakers, data_stale_seconds=30, reset_seconds=resets, **changes)
    return board_for(lambda: psycopg.connect(db_url, autocommit=True), dataclasses.replace(settings, breakers=breakers),
                     alerts=rig.alerts)


def _events(rig: Rig, name: str) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT trigger_value->>'reason', resolution_action FROM circuit_breaker_events "
                    "WHERE breaker_type = %s ORDER BY event_id", name)


def _critical_trip_alerts(rig: Rig, name: str) -> list[str]:
    return [r[0] for r in rig.rows("SELECT message FROM alerts WHERE alert_type = 'circuit_breaker' "
                                   "AND severity = 'critical' ORDER BY alert_id") if f"circuit breaker {name} " in r[0]]


def _entries_on(rig: Rig, ticker: str) -> int:
    return int(rig.rows("SELECT count(*) FROM orders WHERE purpose = 'entry' AND market_id = %s", ticker)[0][0])


async def test_market_data_the_rest_budget_holds_back_trips_data_stale_past_the_limit_and_recovers(
        make_rig: Callable[..., Rig], db_url: str, precog_cli: Any) -> None:
    # polled market data (as `precog run --venue kalshi` reads it): at most 2 venue reads a minute, no cache TTL,
    # so with two markets a read that is not the minute's first two serves the cached snapshot, however old
    # (positions are checked every 5 s)
    rig = make_rig(rig_config(**{"position_management.monitoring.max_api_calls_per_minute": 2,
                                 "position_management.monitoring.price_cache_ttl_seconds": 0,
                                 "position_management.monitoring.normal_frequency": 5}), second_market=True)
    rig.quote("0.49", "0.50")
    rig.quote("0.49", "0.50", ticker=TICKER2)
    rig.probs.p[TICKER] = Decimal("0.62")
    board = _board(rig, db_url)
    engine = rig.make_engine(market_data="poll", breakers=board)
    await engine.start()
    await rig.run_until(lambda: rig.open_positions(), seconds=61)  # each step: a new minute, both markets read
    assert not board.is_open("data_stale")

    await rig.step(61)  # both markets read now: T0
    assert engine.data_watch.market_age(TICKER2, rig.now().timestamp()) == 0
    await rig.step(30)  # the budget is spent until T0 + 60: the snapshots are 30 s old, at the limit
    assert engine.prices.fetched_at(TICKER2) == rig.now() - timedelta(seconds=30)
    assert not board.is_open("data_stale") and engine.trading_state == "ACTIVE"
    await rig.step(1)  # 31 s: past it
    assert board.is_open("data_stale") and engine.trading_state == "REDUCING"
    (reason, resolution), = _events(rig, "data_stale")
    assert reason == f"local market data for {TICKER} is 31 s old (max 30 s)" and resolution is None
    assert len(_critical_trip_alerts(rig, "data_stale")) == 1
    listed = precog_cli("breakers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "data_stale" in [b["name"] for b in json.loads(listed.stdout)["open"]]

    # entries wait, with the breaker's reason; exits go on (on the last snapshot we have)
    rig.probs.p[TICKER2] = Decimal("0.62")  # an edge on the other market
    rig.probs.p[TICKER] = Decimal("0.30")  # the model gave up on the position: edge_disappeared
    (pos,) = rig.open_positions()
    await rig.run_until(lambda: engine.exits.jobs, max_steps=4, seconds=5)
    job = engine.exits.jobs[pos.position_id]
    assert job.condition == "edge_disappeared" and engine.stats.exits_started == {"edge_disappeared": 1}
    assert job.order is not None and rig.exchange.get_order("us", job.order.venue_order_id).action == "sell"
    assert board.is_open("data_stale")
    assert board.entry_block(rig.now().timestamp()) == "trading REDUCING by data_stale"
    assert rig.rows("SELECT trading_state, state_reason FROM engine_runs WHERE run_id = %s", engine.run_id) == [
        ("REDUCING", "breaker board: data_stale")]
    assert _entries_on(rig, TICKER2) == 0

    # T0 + 60: the minute's budget is back, the markets are read: fresh, the breaker resolves itself
    for _ in range(30):
        if engine.data_watch.market_age(TICKER2, rig.now().timestamp()) == 0:
            break
        await rig.step(1)
    assert engine.prices.fetched_at(TICKER2) == rig.now()
    assert not board.is_open("data_stale") and engine.trading_state == "ACTIVE"
    assert [r[1] for r in _events(rig, "data_stale")] == ["recovered"]
    await rig.run_until(lambda: _entries_on(rig, TICKER2) > 0, max_steps=4, seconds=1)


# ---------------------------------------------------------------------------------------- the HTTP path


class TamperingTransport(httpx.AsyncHTTPTransport):
    """The network between the Kalshi client and the local exchange: `tamper(market)` rewrites the payload of
    the next answers to GET /markets/{TICKER} (the exchange itself never serves a malformed market)."""

    def __init__(self) -> None:
        super().__init__()
        self.tamper: Callable[[dict[str, Any]], None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if self.tamper is None or request.method != "GET" or request.url.path != MARKET_PATH:
            return response
        body = json.loads(await response.aread())
        self.tamper(body["market"])
        return httpx.Response(response.status_code, headers={"content-type": "application/json"},
                              content=json.dumps(body).encode())


@dataclass
class Served:
    server: ExchangeServer
    faults: CountingFaults
    transport: TamperingTransport
    stream: MarketStream
    venue: KalshiVenue


@pytest.fixture
async def served(make_rig: Callable[..., Rig], tmp_path: Path) -> AsyncIterator[tuple[Rig, Served]]:
    """The rig's exchange served over HTTP, read by the real signed Kalshi client (no retries: a failed read
    fails at once), with a market view that has no connection of its own (REST serves every read)."""
    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.kalshi.auth import KalshiSigner
    from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy
    from precog.venues.kalshi.environments import KalshiEnvironment
    from precog.venues.kalshi.ratelimit import tier_limits

    rig = make_rig()
    key_id, key_path, public_pem = generate_key_pair(tmp_path)
    faults = CountingFaults()
    server = ExchangeServer(rig.exchange, faults=faults, tick_interval=0.05, auth_clock=lambda: int(time.time() * 1000))
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    transport = TamperingTransport()
    client = AsyncKalshiClient(KalshiEnvironment("local", server.base_url, server.ws_url),
                               signer=KalshiSigner.from_files(key_id, key_path), rate_limits=tier_limits("unlimited"),
                               retry=RetryPolicy(max_retries=0), alerts=rig.alerts, transport=transport)
    stream = MarketStream(client, alerts=rig.alerts)
    s = Served(server, faults, transport, stream, KalshiVenue(client, platform_id="local", market_stream=stream))
    rig.venue = s.venue  # type: ignore[assignment]
    rig.quote("0.49", "0.50")
    yield rig, s
    await stream.close()
    await client.aclose()
    server.stop()


async def test_a_venue_that_stops_answering_market_reads_trips_data_stale_from_the_failed_cycles(
        served: tuple[Rig, Served], db_url: str) -> None:
    rig, s = served
    board = _board(rig, db_url)
    engine = rig.make_engine(mode="live", breakers=board)
    await engine.start()
    await rig.step(5)  # read: T0
    s.faults.fail(503, count=10_000, path_prefix=MARKET_PATH)
    for seconds in (10, 10, 10):  # 30 s without a successful read: at the limit
        with pytest.raises(Exception, match="503"):
            await rig.step(seconds)
    assert not board.is_open("data_stale")
    with pytest.raises(Exception, match="503"):
        await rig.step(1)
    assert board.is_open("data_stale")
    assert board.entry_block(rig.now().timestamp()) == "trading REDUCING by data_stale"
    assert _events(rig, "data_stale")[0][0] == f"local market data for {TICKER} is 31 s old (max 30 s)"
    assert len(_critical_trip_alerts(rig, "data_stale")) == 1
    s.faults.clear()
    await rig.step(1)  # answered again: fresh, recovered by itself
    assert not board.is_open("data_stale") and engine.trading_state == "ACTIVE"
    assert [r[1] for r in _events(rig, "data_stale")] == ["recovered"]


async def test_three_malformed_market_payloads_within_the_window_trip_data_quality_two_do_not(
        served: tuple[Rig, Served], db_url: str) -> None:
    rig, s = served
    board = _board(rig, db_url)
    engine = rig.make_engine(mode="live", breakers=board)
    await engine.start()
    await rig.step(5)
    good = engine.snapshots[TICKER]
    assert (good.yes_bid, good.yes_ask) == (Decimal("0.49"), Decimal("0.50"))

    def price_above_a_dollar(m: dict[str, Any]) -> None:
        m["yes_bid_dollars"], m["yes_bid"] = "1.5000", 150

    def missing_field(m: dict[str, Any]) -> None:
        for key in ("yes_ask", "yes_ask_dollars"):
            m.pop(key, None)

    def crossed_book(m: dict[str, Any]) -> None:  # well-formed fields, but the YES bid is above the YES ask
        m.update(yes_bid_dollars="0.6000", yes_bid=60, no_ask_dollars="0.4000", no_ask=40)

    for tamper in (price_above_a_dollar, missing_field):
        s.transport.tamper = tamper
        await rig.step(5)  # the cycle goes on; the payload is refused, never used
        assert engine.snapshots[TICKER] is good
    assert not board.is_open("data_quality") and engine.trading_state == "ACTIVE"
    s.transport.tamper = crossed_book
    await rig.step(5)
    assert engine.snapshots[TICKER] is good
    assert board.is_open("data_quality") and engine.trading_state == "REDUCING"
    (reason, _), = _events(rig, "data_quality")
    assert reason.startswith("3 bad data points within 5 min (last: ")
    assert f"{TICKER}: crossed book: yes_bid 0.6000 > yes_ask 0.5000" in reason
    assert len(_critical_trip_alerts(rig, "data_quality")) == 1
    # the Kalshi client named the malformed fields itself
    schema = {r[0] for r in rig.rows("SELECT details->>'field' FROM alerts WHERE alert_type = 'venue_schema_error'")}
    assert {"yes_bid_dollars", "yes_ask"} <= schema

    # a price the market view refuses from the stream is one more bad point of the engine's
    before = engine.data_watch.bad_points
    assert TICKER in s.stream.followed  # the engine follows what it trades
    s.stream.on_event(TickerUpdated(Quote(TICKER, Decimal("1.20"), Decimal("1.30"))))
    assert engine.data_watch.bad_points == before + 1

    s.transport.tamper = None
    await rig.step(5)
    assert engine.snapshots[TICKER] is not good and engine.snapshots[TICKER].yes_bid == Decimal("0.49")


async def test_two_bad_points_then_a_quiet_window_do_not_add_up(served: tuple[Rig, Served], db_url: str) -> None:
    rig, s = served
    board = _board(rig, db_url)
    engine = rig.make_engine(mode="live", breakers=board)
    await engine.start()
    await rig.step(5)
    s.transport.tamper = lambda m: m.update(yes_bid_dollars="1.5000", yes_bid=150)
    await rig.step(5)
    await rig.step(5)
    s.transport.tamper = None
    await rig.step(300)  # the first two leave the 5-minute window
    s.transport.tamper = lambda m: m.update(yes_bid_dollars="1.5000", yes_bid=150)
    await rig.step(1)
    assert engine.data_watch.bad_points == 3
    assert not board.is_open("data_quality")


def test_market_defects_are_the_ingest_checks_on_an_open_book_and_the_range_on_any() -> None:
    from precog.domain.market import Market

    def market(bid: str, ask: str, status: MarketStatus = MarketStatus.OPEN, ticker: str = TICKER) -> Market:
        b, a = Decimal(bid), Decimal(ask)
        return Market(ticker=ticker, event_ticker="E", status=status, venue_status=status.value, yes_bid=b,
                      yes_ask=a, no_bid=1 - a, no_ask=1 - b, last_price=Decimal("0.50"))

    assert market_defect(market("0.49", "0.50"), TICKER) is None
    assert market_defect(market("0", "1"), TICKER) is None  # an empty book
    assert market_defect(market("0.55", "0.50"), TICKER) == "crossed book: yes_bid 0.55 > yes_ask 0.50"
    assert market_defect(market("0.55", "0.50", MarketStatus.SETTLED), TICKER) is None  # a settled book's leftovers
    assert market_defect(market("0.49", "1.01", MarketStatus.SETTLED), TICKER) is not None
    assert market_defect(market("0.49", "0.50", ticker=TICKER2), TICKER) == \
        f"the payload is for {TICKER2!r}, not the market asked for"


async def test_a_quiet_market_on_a_live_stream_is_not_stale(served: tuple[Rig, Served], db_url: str) -> None:
    """Kalshi sends a market's messages only when it changes: while the subscription is alive, a market nobody
    trades is as fresh as the connection's last proof of life, with no REST read to confirm it."""
    rig, s = served
    s.stream.open_connection()
    board = _board(rig, db_url)
    engine = rig.make_engine(mode="live", breakers=board)
    await engine.start()
    for _ in range(40):
        await rig.step(1)
        if s.stream.is_live(TICKER):
            break
    await wait_for(lambda: s.stream.is_live(TICKER), what="a live view")
    reads = s.faults.gets(MARKET_PATH)
    for _ in range(5):  # 5 simulated minutes without a change on the market
        await rig.step(61)
        assert engine.data_watch.market_age(TICKER, rig.now().timestamp()) <= 40  # heartbeat 10 s + timeout 30 s
    assert not board.is_open("data_stale") and engine.trading_state == "ACTIVE"
    assert s.faults.gets(MARKET_PATH) == reads, "a live view is confirmed by the stream, not by REST reads"
    assert s.stream.data_age(TICKER) is not None


async def test_the_decision_layer_trips_data_stale_on_a_live_games_old_state_and_recovers(db_url: str) -> None:
    """`precog run --venue kalshi` trades on ingestion's stored game states: a live game behind a market it holds
    whose state is older than the limit (neither a new version nor a success of its ESPN feed) trips data_stale;
    a scheduled game never does; the feed answering again ends it."""
    from datetime import UTC, datetime

    from engine.conftest import FixedProbabilities, planner_engine
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn)
    ex, _ = world_exchange()
    now = [datetime.now(UTC)]
    engine = planner_engine(db_url, ex, lambda: now[0], probabilities=FixedProbabilities())
    board = engine.board
    await engine.start()
    await engine.step()
    assert engine.portfolio.open_positions(), "the planner entered: the engine holds a market of the game"

    def stored_state(status: str) -> None:  # the stored version in place, 90 s old (SCD2 set-up only)
        world.conn.execute("SET session_replication_role = replica")
        world.conn.execute("UPDATE game_states SET status = %s, created_at = now() - interval '90 seconds' "
                           "WHERE row_current_ind", (status,))
        world.conn.execute("SET session_replication_role = origin")

    stored_state("scheduled")
    await engine.step()  # a scheduled game's state may be old: it is not the data of an in-game decision
    assert not board.is_open("data_stale")

    stored_state("live")
    await engine.step()
    assert board.is_open("data_stale") and engine.trading_state == "REDUCING"
    reason = world.conn.execute("SELECT trigger_value->>'reason' FROM circuit_breaker_events "
                                "WHERE breaker_type = 'data_stale'").fetchone()[0]
    assert reason.startswith("ESPN game state for BUF@KC is ") and reason.endswith(" s old (max 60 s)")

    world.conn.execute("INSERT INTO ingest_feed_status (feed, mode, last_success_at) VALUES ('espn:nfl', 'polling', "
                       "%s)", (now[0],))  # the feed polled the game just now and found nothing new
    await engine.step()
    assert not board.is_open("data_stale") and engine.trading_state == "ACTIVE"
