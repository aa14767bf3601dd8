"""Kalshi WebSocket market data: signed connection, subscriptions, local books, reconnects.

State machine: DISCONNECTED -> CONNECTING -> CONNECTED -> SUBSCRIBED, back to DISCONNECTED on any
error (then reconnect with exponential backoff + jitter), CLOSED after `stop()`.

Books come from `orderbook_snapshot` + `orderbook_delta` with a per-subscription sequence check; a gap
(or a delta that would make a level negative) unsubscribes that subscription and subscribes again,
which makes the venue send fresh snapshots. Liveness: WebSocket pings every `heartbeat_interval`; no
pong within `heartbeat_timeout` closes the connection and triggers a reconnect.

Every subscribe command that adds markets (the connection's first subscription, `add_markets`) is
announced with one `MarketsSubscribed(tickers)` once the venue has acknowledged all the commands carrying
those markets, and before the state becomes SUBSCRIBED: a consumer that took a REST snapshot before
that moment takes a new one then, so nothing that happened between the two is lost.

`market_lifecycle_v2` takes no market filter on Kalshi (every market's events arrive): it is subscribed once
per connection without markets (its acknowledgement still counts for the first announcement) and events of
markets not followed are passed on too. Kalshi sends a market's `result` and `settlement_value` only with
its `determined` event; the `settled` event that follows carries them here when this client saw that event.

Message shapes are Kalshi's AsyncAPI document (https://docs.kalshi.com/asyncapi.yaml, tested in
tests/venues/test_exchange_ws_contract.py); a frame missing a documented field the client reads is rejected
with a `venue_schema_error` alert (and a StreamError, or a book resync), never read as a default.

Consume events either with `on_event=` (a plain callable, called in the reader task) or
`async for event in ws.events()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect

from precog.alerts.api import AlertRaiser
from precog.domain.market import OrderBook
from precog.venues.kalshi import parsing as P
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.book import BookInconsistent, BookRegistry, SequenceGap
from precog.venues.kalshi.errors import KalshiSchemaError
from precog.venues.kalshi.events import (
    BookResync,
    BookUpdated,
    ConnectionState,
    FillReceived,
    MarketLifecycle,
    MarketsSubscribed,
    StateChanged,
    StreamError,
    StreamEvent,
    TickerUpdated,
    TradeOccurred,
)

log = logging.getLogger(__name__)


class _MaskSignedHeaders(logging.Filter):
    """The websockets library logs every handshake header at DEBUG; the key id and signature are credentials."""

    _HEADER = re.compile(r"(KALSHI-ACCESS-(?:KEY|SIGNATURE|TIMESTAMP)\s*:\s*)\S+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = self._HEADER.sub(r"\1***", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


# the connection's own logger (handshake and frames), never showing the signed headers
_wire_log = logging.getLogger(__name__ + ".wire")
_wire_log.addFilter(_MaskSignedHeaders())

ORDERBOOK = "orderbook_delta"
TICKER = "ticker"
TRADE = "trade"
FILL = "fill"
LIFECYCLE = "market_lifecycle_v2"
DEFAULT_CHANNELS = (ORDERBOOK, TICKER, TRADE, FILL, LIFECYCLE)
# channels that are per market (need market_tickers) vs per account
_MARKET_CHANNELS = {ORDERBOOK, TICKER, "ticker_v2", TRADE, LIFECYCLE, "market_lifecycle"}
# market channels Kalshi does not filter by market: subscribed once, without markets (every market's events)
_UNFILTERED_CHANNELS = {LIFECYCLE, "market_lifecycle"}
_PRIVATE_CHANNELS = {FILL, "user_orders", "market_positions", "order_group_updates"}
_BOOK_TYPES = ("orderbook_snapshot", "orderbook_delta")


class KalshiWebSocket:
    def __init__(
        self,
        ws_url: str,
        *,
        signer: KalshiSigner | None = None,
        tickers: Iterable[str] = (),
        channels: Iterable[str] = DEFAULT_CHANNELS,
        on_event: Callable[[StreamEvent], Any] | None = None,
        alerts: AlertRaiser | None = None,
        book_event_depth: int | None = 10,
        open_timeout: float = 30.0,
        heartbeat_interval: float = 10.0,
        heartbeat_timeout: float = 30.0,
        reconnect_base: float = 1.0,
        reconnect_max: float = 30.0,
        alert_after_failures: int = 5,
        max_queue: int = 100_000,
    ) -> None:
        self.ws_url = ws_url
        self.signer = signer
        self.tickers: list[str] = list(dict.fromkeys(tickers))
        self.channels = tuple(dict.fromkeys(channels))
        self.on_event = on_event
        self.alerts = alerts
        self.book_event_depth = book_event_depth
        self.open_timeout = open_timeout
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.reconnect_base = reconnect_base
        self.reconnect_max = reconnect_max
        self.alert_after_failures = alert_after_failures
        self.registry = BookRegistry()
        self.state = ConnectionState.DISCONNECTED
        self.connects = 0  # successful connections so far (1 = first, 2+ = reconnects)
        self.resyncs = 0
        self._parse = P.KalshiParser(alerts, component="kalshi_websocket")
        self._queue: asyncio.Queue[StreamEvent] = asyncio.Queue(max_queue)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_id = 0
        self._pending: dict[int, tuple[str, ...]] = {}  # command id -> channels awaiting "subscribed"
        self._pending_markets: dict[int, tuple[str, ...]] = {}  # command id -> markets it adds (announced on ack)
        self._acked_markets: dict[str, None] = {}  # acknowledged, but another command for them is still pending
        self._sid_channel: dict[int, str] = {}
        self._book_sids: set[int] = set()
        self._retired_sids: set[int] = set()  # book subscriptions dropped for a resync: ignore stragglers
        self._determined: dict[str, tuple[str, Decimal | None]] = {}  # ticker -> (result, value) until settled
        self._failures = 0
        self._alerted = False
        self._background: set[asyncio.Task[None]] = set()

    # --------------------------------------------------------------------------------- public API

    @property
    def books(self) -> Mapping[str, Any]:
        return self.registry.books

    def book(self, ticker: str, depth: int | None = None) -> OrderBook | None:
        """Current book of `ticker` (None until its snapshot arrives or while it is being resynced)."""
        local = self.registry.books.get(ticker)
        if local is None or local.stale:
            return None
        return local.snapshot(depth)

    async def __aenter__(self) -> KalshiWebSocket:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name="kalshi-websocket")
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._set_state(ConnectionState.CLOSED, "stopped")

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Typed events until `stop()`."""
        while True:
            if self.state is ConnectionState.CLOSED and self._queue.empty():
                return
            try:
                event = await asyncio.wait_for(self._queue.get(), timeout=0.5)
            except TimeoutError:
                continue
            yield event

    async def wait_for_state(self, state: ConnectionState, timeout: float = 10.0) -> None:
        async def _poll() -> None:
            while self.state is not state:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(_poll(), timeout)

    async def add_markets(self, tickers: Iterable[str]) -> None:
        """Follow more markets (subscribes them now when connected)."""
        new = [t for t in tickers if t not in self.tickers]
        if not new:
            return
        self.tickers.extend(new)
        if self._ws is not None and self.state in (ConnectionState.CONNECTED, ConnectionState.SUBSCRIBED):
            channels = [c for c in self.channels if c in _MARKET_CHANNELS and c not in _UNFILTERED_CHANNELS]
            if channels:
                await self._subscribe(channels, new, announce=True)

    def subscribing(self) -> set[str]:
        """Markets whose subscription the venue has not acknowledged yet (not announced by MarketsSubscribed)."""
        return {t for tickers in self._pending_markets.values() for t in tickers} | set(self._acked_markets)

    async def kill_connection(self) -> None:
        """Drop the current connection as if the network failed (used by tools and tests)."""
        if self._ws is not None:
            self._ws.transport.abort()

    # --------------------------------------------------------------------------------- loop

    async def run(self) -> None:
        """Connect, subscribe and read until stop(); reconnect on any failure."""
        attempt = 0
        while not self._stopping:
            self._set_state(ConnectionState.CONNECTING)
            try:
                async with self._connect() as ws:
                    self._ws = ws
                    self.connects += 1
                    self._set_state(ConnectionState.CONNECTED)
                    await self._subscribe_all()
                    attempt = 0
                    async for raw in ws:
                        self._on_raw(raw)
                        if self.state is ConnectionState.SUBSCRIBED:
                            self._failures = 0
                reason = "closed by the venue"
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
            if self._stopping:
                break
            self._on_disconnect(reason)
            delay = min(self.reconnect_max, self.reconnect_base * (2**attempt))
            delay = delay / 2 + random.uniform(0, delay / 2)
            attempt += 1
            log.info("kalshi websocket: %s; reconnecting in %.2fs", reason, delay)
            await asyncio.sleep(delay)

    def _connect(self) -> Any:
        headers: dict[str, str] = {}
        if self.signer is not None:
            headers = self.signer.headers("GET", urlsplit(self.ws_url).path)
        return connect(
            self.ws_url,
            additional_headers=headers,
            open_timeout=self.open_timeout,
            ping_interval=self.heartbeat_interval,
            ping_timeout=self.heartbeat_timeout,
            close_timeout=min(2.0, self.heartbeat_timeout),
            max_size=16 * 2**20,
            max_queue=4096,
            logger=_wire_log,
        )

    def _on_disconnect(self, reason: str) -> None:
        self.registry.reset()
        self._sid_channel.clear()
        self._book_sids.clear()
        self._retired_sids.clear()
        self._pending.clear()
        self._pending_markets.clear()
        self._acked_markets.clear()
        self._failures += 1
        self._set_state(ConnectionState.DISCONNECTED, reason)
        if self._failures >= self.alert_after_failures and not self._alerted and self.alerts is not None:
            self._alerted = True
            self.alerts.raise_alert(
                "websocket_down",
                "high",
                "kalshi_websocket",
                f"Kalshi WebSocket failed {self._failures} times in a row: {reason}",
                {"url": self.ws_url, "failures": self._failures},
                dedup_key=f"websocket_down:{self.ws_url}",
                category="system",
            )

    def _set_state(self, state: ConnectionState, reason: str = "") -> None:
        if state is self.state:
            return
        self.state = state
        if state is ConnectionState.SUBSCRIBED:
            self._failures = 0
            self._alerted = False
        self._emit(StateChanged(state, reason))

    def _emit(self, event: StreamEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a consumer bug must not kill the market-data connection
                log.exception("kalshi websocket on_event callback failed")
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # nobody is draining events(): drop the oldest so memory stays bounded
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self._queue.put_nowait(event)

    # --------------------------------------------------------------------------------- commands

    async def _send(self, cmd: str, params: Mapping[str, Any]) -> int:
        assert self._ws is not None
        self._next_id += 1
        await self._ws.send(json.dumps({"id": self._next_id, "cmd": cmd, "params": dict(params)}))
        return self._next_id

    async def _subscribe(self, channels: Iterable[str], tickers: Iterable[str] | None, *,
                         announce: bool = False, announces: Iterable[str] = ()) -> None:
        """Send one subscribe command; with `announce`, its markets get a MarketsSubscribed once it is acknowledged
        (`announces`: markets the command covers without naming them, a channel that takes no market filter)."""
        channels = tuple(channels)
        params: dict[str, Any] = {"channels": list(channels)}
        tickers = list(tickers or ())
        if tickers:
            params["market_tickers"] = tickers
        cmd_id = await self._send("subscribe", params)
        self._pending[cmd_id] = channels
        covered = tuple(tickers) if announce else tuple(announces)
        if covered:
            self._pending_markets[cmd_id] = covered

    def _command_done(self, cmd_id: Any, acknowledged: bool) -> None:
        """A pending command was answered (acknowledged, or refused with an error). Markets of acknowledged
        commands are announced once no other pending command still carries them (the first subscription sends
        one command per channel: a market is streamed completely only when all of them are applied)."""
        markets = self._pending_markets.pop(cmd_id, ()) if isinstance(cmd_id, int) else ()
        if acknowledged:
            self._acked_markets.update(dict.fromkeys(markets))
        if not self._acked_markets:
            return
        waiting = {t for tickers in self._pending_markets.values() for t in tickers}
        ready = tuple(t for t in self._acked_markets if t not in waiting)
        for t in ready:
            del self._acked_markets[t]
        if ready:
            self._emit(MarketsSubscribed(ready))

    async def _subscribe_all(self) -> None:
        market_channels = [c for c in self.channels if c in _MARKET_CHANNELS]
        if not self.tickers:
            market_channels = [c for c in market_channels if c != ORDERBOOK]  # needs explicit markets
        private = [c for c in self.channels if c in _PRIVATE_CHANNELS]
        if self.signer is None and private:
            log.info("kalshi websocket: no API key, skipping private channels %s", private)
            private = []
        other = [c for c in self.channels if c not in _MARKET_CHANNELS and c not in _PRIVATE_CHANNELS]
        for channel in market_channels:
            if channel in _UNFILTERED_CHANNELS:
                await self._subscribe([channel], None, announces=self.tickers)
            else:
                await self._subscribe([channel], self.tickers, announce=True)
        for channel in private + other:
            await self._subscribe([channel], None)
        if not self._pending:
            self._set_state(ConnectionState.SUBSCRIBED)

    async def _resync(self, sid: int, tickers: tuple[str, ...]) -> None:
        """Unsubscribe the broken book subscription and subscribe again: the venue sends new snapshots."""
        self.resyncs += 1
        self._book_sids.discard(sid)
        self._sid_channel.pop(sid, None)
        targets = list(tickers) or list(self.tickers)
        if self._ws is None:
            return
        try:
            await self._send("unsubscribe", {"sids": [sid]})
            await self._subscribe([ORDERBOOK], targets)
        except websockets.WebSocketException as exc:
            log.info("kalshi websocket: resync interrupted by %s; the reconnect will resubscribe", exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --------------------------------------------------------------------------------- messages

    def _on_raw(self, raw: str | bytes) -> None:
        try:
            envelope = json.loads(raw, parse_float=Decimal)
        except ValueError:
            self._report(KalshiSchemaError("<message>", f"is not valid JSON: {str(raw)[:80]!r}", kind="websocket"))
            return
        if not isinstance(envelope, dict):
            self._report(KalshiSchemaError("<message>", "is not a JSON object", kind="websocket"))
            return
        kind = envelope.get("type")
        if not isinstance(kind, str) or not kind:
            self._report(KalshiSchemaError("type", f"is missing or not a string: {kind!r}", kind="websocket"))
            return
        try:
            if kind in _BOOK_TYPES:
                self._on_book(envelope)
            elif kind == "subscribed":
                self._on_subscribed(envelope)
            elif kind == "ok" and isinstance(envelope.get("id"), int) and envelope["id"] in self._pending:
                # a plain acknowledgement of a pending command (update_subscription answers this way)
                self._pending.pop(envelope["id"])
                self._command_done(envelope["id"], acknowledged=True)
                if not self._pending and self.state is ConnectionState.CONNECTED:
                    self._set_state(ConnectionState.SUBSCRIBED)
            elif kind == "error":
                inner = envelope.get("msg")
                msg: Mapping[str, Any] = inner if isinstance(inner, Mapping) else envelope
                code = msg.get("code")
                if not isinstance(code, int) or isinstance(code, bool):
                    self._parse.report(KalshiSchemaError("code", f"is missing or not an integer: {code!r}",
                                                         kind="error"))
                    code = None
                self._emit(StreamError(code, str(msg.get("msg") or msg.get("message") or msg)))
                if self._pending.pop(envelope.get("id", -1), None) is not None:
                    self._command_done(envelope.get("id"), acknowledged=False)
                if not self._pending and self.state is ConnectionState.CONNECTED:
                    self._set_state(ConnectionState.SUBSCRIBED)
            elif kind in ("ticker", "ticker_v2"):
                self._emit(TickerUpdated(self._parse(P.parse_ticker_quote, self._parse(self._msg, envelope))))
            elif kind == "trade":
                self._emit(TradeOccurred(self._parse(P.parse_trade, self._parse(self._msg, envelope))))
            elif kind == "fill":
                self._emit(FillReceived(self._parse(P.parse_fill, self._parse(self._msg, envelope))))
            elif kind in ("market_lifecycle_v2", "market_lifecycle"):
                event: MarketLifecycle = self._parse(P.parse_lifecycle, self._parse(self._msg, envelope))
                self._emit(self._with_result(event))
            # unsubscribed / ok / list_subscriptions / unknown future types: nothing to do
        except KalshiSchemaError as exc:
            self._emit(StreamError(None, str(exc)))
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
            # a payload of a shape no parser foresaw: rejected loudly, and the connection keeps reading
            self._report(KalshiSchemaError("<message>", f"could not be read ({type(exc).__name__}: {exc})"[:200],
                                           kind=str(kind)))

    def _with_result(self, event: MarketLifecycle) -> MarketLifecycle:
        """Kalshi sends `result` / `settlement_value` with a market's `determined` event only: its `settled` event
        gets them from the `determined` one this client saw (a settled market's payout is that result)."""
        if event.event_type == "determined" and (event.result or event.settlement_value is not None):
            if len(self._determined) >= 100_000:
                self._determined.clear()
            self._determined[event.ticker] = (event.result, event.settlement_value)
        elif event.event_type == "settled":
            known = self._determined.pop(event.ticker, None)
            if known is not None and not event.result and event.settlement_value is None:
                return dataclasses.replace(event, result=known[0], settlement_value=known[1])
        return event

    @staticmethod
    def _msg(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
        """The `msg` object of a channel message (run through `self._parse`, so its absence is alerted too)."""
        msg = envelope.get("msg")
        if not isinstance(msg, Mapping):
            raise KalshiSchemaError("msg", "is missing or not an object", kind=str(envelope.get("type")))
        return msg

    def _report(self, exc: KalshiSchemaError) -> None:
        self._parse.report(exc)
        self._emit(StreamError(None, str(exc)))

    def _on_subscribed(self, envelope: Mapping[str, Any]) -> None:
        inner = envelope.get("msg")
        msg: Mapping[str, Any] = inner if isinstance(inner, Mapping) else {}
        sid, channel = msg.get("sid"), msg.get("channel")
        for name, value, ok in (("sid", sid, isinstance(sid, int) and not isinstance(sid, bool)),
                                ("channel", channel, isinstance(channel, str) and bool(channel))):
            if not ok:  # the command still counts as answered; the subscription cannot be managed without them
                self._report(KalshiSchemaError(f"msg.{name}", f"is missing or malformed: {value!r}", kind="subscribed"))
        if isinstance(sid, int):
            self._sid_channel[sid] = str(channel or "")
            if channel == ORDERBOOK:
                self._book_sids.add(sid)
        cmd_id = envelope.get("id")
        waiting = self._pending.get(cmd_id) if isinstance(cmd_id, int) else None
        if waiting is not None:
            remaining = tuple(c for c in waiting if c != channel) if channel else ()
            if remaining and len(remaining) < len(waiting):
                self._pending[cmd_id] = remaining  # type: ignore[index]
            else:
                self._pending.pop(cmd_id, None)  # type: ignore[arg-type]
                self._command_done(cmd_id, acknowledged=True)
        if not self._pending and self.state is ConnectionState.CONNECTED:
            self._set_state(ConnectionState.SUBSCRIBED)

    def _book_broken(self, sid: Any, ticker: str | None) -> None:
        """The books of subscription `sid` (or `ticker`'s) cannot be trusted: mark them stale, resubscribe."""
        known = isinstance(sid, int) and not isinstance(sid, bool)
        tickers = self.registry.forget_subscription(sid) if known else ()
        tickers = tickers or ((ticker,) if ticker else ())
        if known:
            self._retired_sids.add(sid)
        self._emit(BookResync(tickers, -1, -1))
        if known:
            self._spawn(self._resync(sid, tickers))

    def _on_book(self, envelope: Mapping[str, Any]) -> None:
        sid = envelope.get("sid")
        for name in ("sid", "seq"):  # both key dicts and compare as numbers: anything else is drift
            value = envelope.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                # without both, no gap can be seen: the book cannot be trusted from here on
                self._report(KalshiSchemaError(name, f"is missing or not an integer: {value!r}",
                                               kind=str(envelope.get("type"))))
                if isinstance(sid, int) and not isinstance(sid, bool) and sid in self._book_sids:
                    self._book_broken(sid, None)
                return
        if sid in self._retired_sids:
            return  # a late message of a subscription we dropped for a resync
        msg = envelope.get("msg")
        if not isinstance(msg, Mapping) or not isinstance(msg.get("market_ticker"), str):
            self._report(KalshiSchemaError("market_ticker", "is missing", kind=str(envelope.get("type"))))
            return
        try:
            book = self.registry.on_message(envelope)
        except SequenceGap as gap:
            log.warning("kalshi websocket: sequence gap on sid %s (%s); resyncing", gap.sid, gap)
            self._retired_sids.add(gap.sid)
            self._emit(BookResync(gap.tickers or tuple(self.tickers), gap.expected, gap.got))
            self._spawn(self._resync(gap.sid, gap.tickers))
            return
        except (BookInconsistent, KalshiSchemaError) as exc:
            if isinstance(exc, KalshiSchemaError):
                self._parse.report(exc)
            ticker = msg["market_ticker"]
            log.warning("kalshi websocket: book %s unusable (%s); resyncing", ticker, exc)
            self._book_broken(sid, ticker)
            return
        self._emit(
            BookUpdated(
                book.ticker,
                book.snapshot(self.book_event_depth),
                envelope.get("type") == "orderbook_snapshot",
                envelope.get("seq") if isinstance(envelope.get("seq"), int) else None,
            )
        )
