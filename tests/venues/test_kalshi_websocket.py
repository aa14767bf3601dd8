"""Our Kalshi WebSocket client against the local exchange over a real WebSocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from precog.domain.market import MarketStatus
from precog.domain.order import Action, OrderRequest, Side, new_client_order_id
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy
from precog.venues.kalshi.environments import resolve_environment
from precog.venues.kalshi.events import (
    BookResync,
    BookUpdated,
    ConnectionState,
    FillReceived,
    MarketLifecycle,
    StateChanged,
    StreamEvent,
    TickerUpdated,
    TradeOccurred,
)
from precog.venues.kalshi.websocket import KalshiWebSocket
from venues.conftest import StreamRecorder


def signer_of(ex: Any) -> KalshiSigner:
    return KalshiSigner.from_files(ex.key_id, ex.private_key_path)


def rest(ex: Any) -> AsyncKalshiClient:
    env = resolve_environment("local", ex.base_url)
    return AsyncKalshiClient(env, signer=signer_of(ex), rate_limits="unlimited",
                             retry=RetryPolicy(max_retries=2, backoff_base=0.02))


def stream(ex: Any, rec: StreamRecorder, **kw: Any) -> KalshiWebSocket:
    return KalshiWebSocket(ex.ws_url, signer=signer_of(ex), tickers=ex.tickers, on_event=rec,
                           reconnect_base=0.05, reconnect_max=0.2, **kw)


async def books_agree(ws: KalshiWebSocket, client: AsyncKalshiClient, ticker: str) -> bool:
    ours = ws.book(ticker)
    theirs = await client.get_orderbook(ticker)
    return ours is not None and ours.yes_bids == theirs.yes_bids and ours.no_bids == theirs.no_bids


async def test_state_machine_snapshot_and_deltas_match_the_venue(local_exchange: Any) -> None:
    rec = StreamRecorder()
    ticker = local_exchange.tickers[0]
    local_exchange.counterparty_order(ticker, "yes", "buy", 5, "0.40")
    async with rest(local_exchange) as client, stream(local_exchange, rec) as ws:
        await ws.wait_for_state(ConnectionState.SUBSCRIBED)
        states = [e.state for e in rec.of(StateChanged)]
        assert states[:3] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.SUBSCRIBED]
        await rec.wait(lambda: ws.book(ticker) is not None)
        snap = ws.book(ticker)
        assert snap is not None and snap.best_yes_bid is not None and snap.best_yes_bid.price == Decimal("0.40")
        assert any(e.is_snapshot for e in rec.of(BookUpdated) if e.ticker == ticker)

        local_exchange.counterparty_order(ticker, "no", "buy", 7, "0.55")
        local_exchange.counterparty_order(ticker, "yes", "buy", 3, "0.42")
        await rec.wait(lambda: (b := ws.book(ticker)) is not None and b.yes_ask == Decimal("0.45")
                       and b.best_yes_bid is not None and b.best_yes_bid.price == Decimal("0.42"))
        assert await books_agree(ws, client, ticker)
        assert any(not e.is_snapshot for e in rec.of(BookUpdated))
        await rec.wait(lambda: any(e.quote.ticker == ticker and e.quote.yes_bid == Decimal("0.42")
                                   for e in rec.of(TickerUpdated)))


async def test_trades_fills_and_lifecycle_events(local_exchange: Any) -> None:
    rec = StreamRecorder()
    ticker = local_exchange.tickers[0]
    async with rest(local_exchange) as client, stream(local_exchange, rec) as ws:
        await ws.wait_for_state(ConnectionState.SUBSCRIBED)
        local_exchange.counterparty_order(ticker, "no", "buy", 4, "0.60")
        req = OrderRequest(ticker=ticker, side=Side.YES, action=Action.BUY, count=Decimal(4), price=Decimal("0.40"),
                           client_order_id=new_client_order_id("ws"))
        placed = await client.create_order(req)
        await rec.wait(lambda: bool(rec.of(FillReceived)) and bool(rec.of(TradeOccurred)))
        fill = rec.of(FillReceived)[0].fill
        assert fill.order_id == placed.order_id and fill.count == 4 and fill.yes_price == Decimal("0.40")
        trade = rec.of(TradeOccurred)[0].trade
        assert trade.ticker == ticker and trade.yes_price == Decimal("0.40") and trade.taker_side == "yes"
        local_exchange.settle(ticker, "1")
        await rec.wait(lambda: any(e.status is MarketStatus.SETTLED for e in rec.of(MarketLifecycle)))
        assert any(e.ticker == ticker for e in rec.of(MarketLifecycle))


async def test_sequence_gap_triggers_resync_from_a_fresh_snapshot(local_exchange: Any) -> None:
    rec = StreamRecorder()
    ticker = local_exchange.tickers[1]
    async with rest(local_exchange) as client, stream(local_exchange, rec) as ws:
        await ws.wait_for_state(ConnectionState.SUBSCRIBED)
        await rec.wait(lambda: ws.book(ticker) is not None)
        local_exchange.admin.skip_ws_seq(1)
        for cents in range(20, 33):  # a burst: deltas keep arriving after the gap, before the resync lands
            local_exchange.counterparty_order(ticker, "yes", "buy", 2, f"0.{cents}")
        local_exchange.counterparty_order(ticker, "yes", "buy", 2, "0.33")
        await rec.wait(lambda: bool(rec.of(BookResync)))
        gap = rec.of(BookResync)[0]
        assert ticker in gap.tickers and gap.got_seq > gap.expected_seq
        local_exchange.counterparty_order(ticker, "yes", "buy", 1, "0.34")
        await rec.wait(lambda: (b := ws.book(ticker)) is not None and b.best_yes_bid is not None
                       and b.best_yes_bid.price == Decimal("0.34"))
        assert await books_agree(ws, client, ticker)
        assert ws.resyncs == 1 and ws.connects == 1  # resynced in place, no reconnect needed


async def test_disconnect_reconnects_with_backoff_and_rebuilds_books(local_exchange: Any) -> None:
    rec = StreamRecorder()
    ticker = local_exchange.tickers[0]
    async with rest(local_exchange) as client, stream(local_exchange, rec) as ws:
        await ws.wait_for_state(ConnectionState.SUBSCRIBED)
        await rec.wait(lambda: ws.book(ticker) is not None)
        assert local_exchange.admin.drop_websockets() >= 1
        await rec.wait(lambda: any(e.state is ConnectionState.DISCONNECTED for e in rec.of(StateChanged)))
        local_exchange.counterparty_order(ticker, "yes", "buy", 6, "0.38")  # happens while we are away
        await rec.wait(lambda: ws.connects == 2 and ws.state is ConnectionState.SUBSCRIBED)
        await rec.wait(lambda: (b := ws.book(ticker)) is not None and b.best_yes_bid is not None
                       and b.best_yes_bid.price == Decimal("0.38"))
        assert await books_agree(ws, client, ticker)
    assert ws.state is ConnectionState.CLOSED


async def test_events_async_iterator(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[0]
    ws = KalshiWebSocket(local_exchange.ws_url, signer=signer_of(local_exchange), tickers=[ticker])
    seen: list[StreamEvent] = []
    async with ws:
        async def consume() -> None:
            async for event in ws.events():
                seen.append(event)
                if isinstance(event, BookUpdated) and event.is_snapshot:
                    return

        await asyncio.wait_for(consume(), 5)
    assert isinstance(seen[0], StateChanged) and seen[0].state is ConnectionState.CONNECTING


class _Alerts:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str, *a: Any, **kw: Any) -> None:
        self.calls.append((alert_type, message))


async def test_unreachable_venue_alerts_after_repeated_failures() -> None:
    alerts = _Alerts()
    ws = KalshiWebSocket("ws://127.0.0.1:9/trade-api/ws/v2", alerts=alerts, reconnect_base=0.01,
                         reconnect_max=0.02, alert_after_failures=3, open_timeout=1)
    async with ws:
        async def _alerted() -> None:
            while not alerts.calls:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(_alerted(), 5)
    assert alerts.calls[0][0] == "websocket_down" and "3 times" in alerts.calls[0][1]


async def test_without_a_key_the_stream_is_refused_and_alerts_as_on_kalshi(local_exchange: Any) -> None:
    """No key: the venue refuses the handshake (401), the client keeps retrying with backoff and raises
    websocket_down; it never reaches SUBSCRIBED (its consumers fall back to REST)."""
    alerts = _Alerts()
    rec = StreamRecorder()
    ws = KalshiWebSocket(local_exchange.ws_url, tickers=[local_exchange.tickers[0]], on_event=rec, alerts=alerts,
                         reconnect_base=0.01, reconnect_max=0.05, alert_after_failures=3)
    async with ws:
        await rec.wait(lambda: bool(alerts.calls))
    assert alerts.calls[0][0] == "websocket_down" and "HTTP 401" in alerts.calls[0][1]
    assert ws.connects == 0
    assert ConnectionState.SUBSCRIBED not in [e.state for e in rec.of(StateChanged)]


async def test_public_channels_without_a_key_where_the_exchange_allows_it(unsigned_ws_exchange: Any) -> None:
    rec = StreamRecorder()
    ticker = unsigned_ws_exchange.tickers[0]
    ws = KalshiWebSocket(unsigned_ws_exchange.ws_url, tickers=[ticker], on_event=rec)
    async with ws:
        await ws.wait_for_state(ConnectionState.SUBSCRIBED)
        unsigned_ws_exchange.counterparty_order(ticker, "yes", "buy", 1, "0.20")
        await rec.wait(lambda: bool(rec.of(TickerUpdated)))
    assert ws.book(ticker) is None  # the order book channel needs a key, like Kalshi's


class FreezingTcpProxy:
    """A byte-level TCP relay on loopback that can go silent (a half-dead network path: the socket
    stays open but nothing, not even a pong, gets through)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.frozen = False
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                if self.frozen:
                    continue  # swallow everything
                dst.write(data)
                await dst.drain()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            up_writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_heartbeat_timeout_on_a_silent_connection_reconnects(local_exchange: Any) -> None:
    from urllib.parse import urlsplit

    proxy = FreezingTcpProxy(urlsplit(local_exchange.ws_url).port or 0)
    port = await proxy.start()
    rec = StreamRecorder()
    ws = KalshiWebSocket(f"ws://127.0.0.1:{port}/trade-api/ws/v2", signer=signer_of(local_exchange),
                         tickers=local_exchange.tickers, on_event=rec, heartbeat_interval=0.2,
                         heartbeat_timeout=0.3, reconnect_base=0.05, reconnect_max=0.1)
    try:
        async with ws:
            await ws.wait_for_state(ConnectionState.SUBSCRIBED)
            proxy.frozen = True  # pings go unanswered from now on
            await rec.wait(lambda: any(e.state is ConnectionState.DISCONNECTED for e in rec.of(StateChanged)), 5)
            proxy.frozen = False
            await rec.wait(lambda: ws.connects >= 2 and ws.state is ConnectionState.SUBSCRIBED, 5)
            await rec.wait(lambda: ws.book(local_exchange.tickers[0]) is not None, 5)
    finally:
        await proxy.close()
    reasons = [e.reason for e in rec.of(StateChanged) if e.state is ConnectionState.DISCONNECTED]
    assert reasons and ("ping" in reasons[0].lower() or "keepalive" in reasons[0].lower() or "1011" in reasons[0])
