"""Spec 7.x: while the real-time feed is not SUBSCRIBED, automated trading needs a person's approval. A live loop on
Kalshi whose market data is the WebSocket stream holds an entry decided on a market whose stream view is not live
(trading.manual_approval.when_realtime_down, default on) as the manual approval mode would — even with the mode
`off` — and says why; once the stream is back new decisions go straight out. Paper loops and the local exchange
never wait for this.

Real parts: the local exchange served over HTTP + WebSocket standing in for Kalshi (the venue is the Kalshi venue
with the real signed client), the engine's own stream connection reaching it through a loopback TCP relay that the
test closes (connections cut, new ones refused) and opens again, PostgreSQL, the alerts table.
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
from urllib.parse import urlsplit

import pytest

from engine.conftest import SERIES, TICKER, TICKER2, Rig, rig_config
from engine.streamkit import wait_for
from precog.config.errors import ConfigError
from precog.config.loader import Config, load_config
from precog.engine.kalshi_venue import KalshiVenue
from precog.engine.market_stream import MarketStream
from precog.engine.paper_venue import PaperVenue
from precog.trading.approvals import ApprovalPolicy, decide, list_approvals
from precog.venues.exchange.runner import ExchangeServer

TICKER3 = "KXNFLGAME-TEST-DALPHI-PHI"


class Relay:
    """A byte-level TCP relay on loopback to the exchange's WebSocket port. `shut()` cuts every connection and
    stops listening (a reconnect is refused); `open()` listens again on the same port."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.links: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def shut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in self.links:
            w.transport.abort()
        self.links.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.links += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


@dataclass
class Stand:
    rig: Rig
    server: ExchangeServer
    client: Any
    stream: MarketStream
    relay: Relay

    def ws_url(self) -> str:
        return urlsplit(self.server.ws_url)._replace(netloc=f"127.0.0.1:{self.relay.port}").geturl()


def _config(**changes: Any) -> Config:
    # mode off: only the real-time rule can hold an entry; no grace (a stream down at all is an outage: the
    # grace has its own test); no TTL on the price cache (a read not served by the stream goes to REST at once)
    return rig_config(**{"trading.manual_approval.mode": "off", "trading.manual_approval.realtime_grace_seconds": 0,
                         "position_management.monitoring.price_cache_ttl_seconds": 0, **changes})


@pytest.fixture
async def make_stand(make_rig: Callable[..., Rig], tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    stands: list[Stand] = []

    async def _make(config: Config | None = None) -> Stand:
        from cryptography.hazmat.primitives import serialization

        from precog.venues.exchange.auth import generate_key_pair
        from precog.venues.kalshi.auth import KalshiSigner
        from precog.venues.kalshi.client import AsyncKalshiClient
        from precog.venues.kalshi.environments import KalshiEnvironment
        from precog.venues.kalshi.ratelimit import tier_limits

        rig = make_rig(config or _config(), second_market=True)
        rig.exchange.create_event("KXNFLGAME-TEST-DALPHI", SERIES, "Dallas at Philadelphia")
        close_ms = rig.exchange.market(TICKER).close_ms
        rig.exchange.create_market(TICKER3, "KXNFLGAME-TEST-DALPHI", title="Will Philadelphia win?", close_ms=close_ms)
        for t in (TICKER, TICKER2, TICKER3):
            rig.quote("0.49", "0.50", ticker=t)
        key_id, key_path, public_pem = generate_key_pair(tmp_path / f"keys{len(stands)}")
        server = ExchangeServer(rig.exchange, tick_interval=0.05, auth_clock=lambda: int(time.time() * 1000))
        server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
        server.start()
        client = AsyncKalshiClient(KalshiEnvironment("local", server.base_url, server.ws_url),
                                   signer=KalshiSigner.from_files(key_id, key_path),
                                   rate_limits=tier_limits("unlimited"))
        relay = Relay(urlsplit(server.ws_url).port or 0)
        await relay.open()
        stream = MarketStream(client, max_price_age_seconds=120.0, overlay_seconds=600.0, alerts=rig.alerts)
        stand = Stand(rig, server, client, stream, relay)
        stream.open_connection(ws_url=stand.ws_url(), reconnect_base=0.1, reconnect_max=0.3)
        stands.append(stand)
        return stand

    yield _make
    for s in stands:
        await s.stream.close()
        await s.relay.shut()
        await s.client.aclose()
        s.server.stop()


def _kalshi(s: Stand) -> KalshiVenue:
    """The Kalshi venue (platform kalshi, as `precog run --venue kalshi` builds it) over the local exchange."""
    return KalshiVenue(s.client, market_stream=s.stream)


def _entries(rig: Rig, ticker: str) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT client_order_id, status FROM orders WHERE purpose = 'entry' AND market_id = %s", ticker)


def _approvals(rig: Rig) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT approval_id, market_id, status, details->>'why', client_order_id FROM entry_approvals "
                    "ORDER BY approval_id")


async def _all_live(s: Stand, tickers: tuple[str, ...]) -> None:
    for _ in range(40):
        await s.rig.step(1)
        if all(s.stream.is_live(t) for t in tickers):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"stream views not live: {[t for t in tickers if not s.stream.is_live(t)]}")


async def _step_until(rig: Rig, cond: Callable[[], Any], steps: int = 30) -> None:
    for _ in range(steps):
        await rig.step(1)
        if cond():
            return
    raise AssertionError(f"condition not reached after {steps} steps")


async def test_a_live_entry_waits_while_the_stream_is_down_and_entries_go_straight_out_once_it_is_back(
        make_stand: Callable[..., Any]) -> None:
    s = await make_stand()
    rig = s.rig
    rig.venue = _kalshi(s)  # type: ignore[assignment]
    engine = rig.make_engine(mode="live", market_data="poll")
    await engine.start()
    await _all_live(s, (TICKER, TICKER2, TICKER3))

    # the stream is live: the entry goes out at once, nobody is asked
    rig.probs.p[TICKER] = Decimal("0.62")
    await _step_until(rig, lambda: _entries(rig, TICKER))
    assert s.stream.is_live(TICKER)
    assert _approvals(rig) == []

    # the stream goes down (the connection cut, reconnects refused): an entry decided now is held, not sent
    await s.relay.shut()
    await wait_for(lambda: not s.stream.is_up(), what="the stream down")
    rig.probs.p[TICKER2] = Decimal("0.62")
    await _step_until(rig, lambda: _approvals(rig))
    (approval_id, market, status, why, client_order_id), = _approvals(rig)
    assert (market, status) == (TICKER2, "pending")
    assert why is not None and why.startswith("real-time data down: the market stream is "), why
    assert _entries(rig, TICKER2) == []
    assert not [o for o in rig.exchange.account("us").orders.values() if o.ticker == TICKER2]
    alerts = rig.rows("SELECT severity, message, details FROM alerts WHERE alert_type = 'entry_approval_pending'")
    assert len(alerts) == 1
    severity, message, details = alerts[0]
    assert severity == "high" and f"entry {approval_id} waits for approval ({why}): buy " in message, message
    assert f"precog approvals approve {approval_id}" in message
    assert (details if isinstance(details, dict) else json.loads(details))["why"] == why
    listed, = list_approvals(rig.conn)  # what `precog approvals list` reads
    assert (listed["approval_id"], listed["why"]) == (approval_id, why)
    for _ in range(3):  # later decisions while it is down: the same one row, still nothing sent
        await rig.step(5)
    assert len(_approvals(rig)) == 1 and _entries(rig, TICKER2) == []

    # the stream is back: the held row stays pending (a person answers it), a new decision goes straight out
    await s.relay.open()
    await wait_for(lambda: s.stream.is_up(), timeout=10, what="the stream back")
    await _all_live(s, (TICKER2, TICKER3))
    await rig.step(20)
    assert _approvals(rig)[0][2] == "pending" and _entries(rig, TICKER2) == []
    rig.probs.p[TICKER3] = Decimal("0.62")
    await _step_until(rig, lambda: _entries(rig, TICKER3))
    assert s.stream.is_live(TICKER3)
    assert [r[1] for r in _approvals(rig)] == [TICKER2]  # no row for the entry decided on live data

    # the held entry, approved now, is sent under the row's client_order_id
    decide(rig.conn, approval_id, approve=True, by="alice")
    await _step_until(rig, lambda: _entries(rig, TICKER2))
    assert [r[0] for r in _entries(rig, TICKER2)] == [client_order_id]
    assert _approvals(rig)[0][2] == "submitted"


@pytest.mark.parametrize("when_down", [True, False])
async def test_with_the_stream_refused_from_the_start_the_setting_decides(
        make_stand: Callable[..., Any], when_down: bool) -> None:
    s = await make_stand(_config(**{"trading.manual_approval.when_realtime_down": when_down}))
    await s.relay.shut()  # every connection attempt is refused
    rig = s.rig
    rig.venue = _kalshi(s)  # type: ignore[assignment]
    engine = rig.make_engine(mode="live", market_data="poll")
    await engine.start()
    rig.probs.p[TICKER] = Decimal("0.62")
    await _step_until(rig, lambda: _entries(rig, TICKER) or _approvals(rig))
    for _ in range(3):
        await rig.step(5)
    assert not s.stream.is_up() and s.stream.ws is not None
    if when_down:
        assert _entries(rig, TICKER) == []
        (_, market, status, why, _), = _approvals(rig)
        assert (market, status) == (TICKER, "pending")
        assert why.startswith("real-time data down: the market stream is "), why
    else:  # when_realtime_down: false — decisions on REST data go out as before
        assert _entries(rig, TICKER) and _approvals(rig) == []


async def test_a_stream_down_for_less_than_the_grace_defers_entries_without_asking(
        make_stand: Callable[..., Any]) -> None:
    # the default 30 s: a reconnect or the start of a run is no outage; the entry is decided again later
    s = await make_stand(_config(**{"trading.manual_approval.realtime_grace_seconds": 30}))
    rig = s.rig
    rig.venue = _kalshi(s)  # type: ignore[assignment]
    engine = rig.make_engine(mode="live", market_data="poll")
    await engine.start()
    await _all_live(s, (TICKER, TICKER2, TICKER3))
    await s.relay.shut()
    await wait_for(lambda: not s.stream.is_up(), what="the stream down")
    rig.probs.p[TICKER2] = Decimal("0.62")
    for _ in range(5):
        await rig.step(5)
    down = s.stream.down_seconds()
    assert down is not None and down < 30  # the stream's own (wall) clock: well inside the grace
    assert _approvals(rig) == [] and _entries(rig, TICKER2) == []  # nothing asked, nothing sent
    assert engine.stats.entries_refused.get("awaiting_stream", 0) >= 1
    # back within the grace: the deferred decision goes straight out, nobody was asked
    await s.relay.open()
    await wait_for(lambda: s.stream.is_up(), timeout=10, what="the stream back")
    await _all_live(s, (TICKER2,))
    await _step_until(rig, lambda: _entries(rig, TICKER2))
    assert _approvals(rig) == []


@pytest.mark.parametrize("loop", ["paper on kalshi", "live on the local exchange"])
async def test_paper_and_the_local_exchange_never_wait_for_the_stream(make_stand: Callable[..., Any],
                                                                      loop: str) -> None:
    s = await make_stand()
    await s.relay.shut()
    rig = s.rig
    if loop == "paper on kalshi":
        rig.venue = PaperVenue(_kalshi(s), Decimal("10000"), clock=rig.now)  # type: ignore[assignment]
        engine = rig.make_engine(mode="paper", market_data="poll")
    else:
        rig.venue = KalshiVenue(s.client, platform_id="local", market_stream=s.stream)  # type: ignore[assignment]
        engine = rig.make_engine(mode="live", market_data="poll")
    await engine.start()
    rig.probs.p[TICKER] = Decimal("0.62")
    await _step_until(rig, lambda: _entries(rig, TICKER))
    assert not s.stream.is_up()
    assert _approvals(rig) == []


# ---------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("value", ["\"yes\"", "1", "\"true\""])
def test_a_non_boolean_when_realtime_down_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "trading.yaml").write_text(f"manual_approval:\n  when_realtime_down: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"manual_approval\.when_realtime_down"):
        load_config(tmp_path, use_env=False)
    with pytest.raises(ValueError, match=r"trading\.manual_approval\.when_realtime_down must be true or false"):
        ApprovalPolicy.from_config(Config({"trading": {"manual_approval": {"when_realtime_down": "yes"}}}, {}))


@pytest.mark.parametrize("value", ["-1", "601", "2.5", "true"])
def test_a_grace_outside_0_to_600_seconds_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    (tmp_path / "trading.yaml").write_text(f"manual_approval:\n  realtime_grace_seconds: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"manual_approval\.realtime_grace_seconds"):
        load_config(tmp_path, use_env=False)
    with pytest.raises(ValueError, match=r"realtime_grace_seconds must be whole seconds in 0-600"):
        ApprovalPolicy.from_config(Config({"trading": {"manual_approval": {"realtime_grace_seconds": 601}}}, {}))


def test_it_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    assert ApprovalPolicy.from_config(load_config(use_env=False)).when_realtime_down is True
    (tmp_path / "trading.yaml").write_text("manual_approval:\n  when_realtime_down: false\n", encoding="utf-8")
    policy = ApprovalPolicy.from_config(load_config(tmp_path, use_env=False))
    assert policy == ApprovalPolicy("prod", 120, False)
    assert not policy.watches_realtime(trading_mode="live", platform_id="kalshi", kind="run", streamed=True)


@pytest.mark.parametrize(("trading_mode", "platform", "kind", "streamed", "watches"), [
    ("live", "kalshi", "run", True, True),
    ("live", "kalshi", "run", False, False),  # no stream behind the venue: nothing to watch
    ("paper", "kalshi", "run", True, False),
    ("live", "local", "run", True, False),  # the local exchange moves no money
    ("backtest", "kalshi", "backtest", True, False),
])
def test_which_loops_watch_the_stream(trading_mode: str, platform: str, kind: str, streamed: bool,
                                      watches: bool) -> None:
    policy = ApprovalPolicy("off", 120)
    assert policy.watches_realtime(trading_mode=trading_mode, platform_id=platform, kind=kind,
                                   streamed=streamed) is watches
