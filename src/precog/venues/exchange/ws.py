"""Kalshi's WebSocket API (`/trade-api/ws/v2`) on top of the engine's event stream.

Commands: subscribe, unsubscribe, list_subscriptions, update_subscription (add_markets/delete_markets).
Channels: orderbook_delta (snapshot, then deltas; `seq` per subscription), ticker, trade, fill,
user_orders, market_lifecycle_v2 (older names `orderbook_snapshot`, `trades`, `fills`, `market_lifecycle`,
`ticker_v2` are accepted). Public channels work without a key; orderbook_delta, fill and user_orders need
a signed handshake, like Kalshi.

Engine events arrive on whatever thread changed the exchange (under its lock); their payloads are built
there and handed to the event loop with `call_soon_threadsafe`. A new orderbook subscription records the
engine's event sequence number at its snapshot, so no delta is applied twice or missed.

Test controls (off by default): `drop_connections`, `skip_seq`, and `hold_subscriptions` /
`release_subscriptions`, which park subscription commands unapplied to open the window between a client's
REST snapshot and its subscription taking effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from precog.venues.exchange.clock import iso_ms
from precog.venues.exchange.engine import Exchange, ExchangeEvent
from precog.venues.exchange.model import TICKS, YES, Market
from precog.venues.exchange.serialize import TICK_DOLLARS, dollars, fp, market_id

log = logging.getLogger(__name__)

CHANNEL_ALIASES = {
    "orderbook_delta": "orderbook_delta", "orderbook_snapshot": "orderbook_delta",
    "ticker": "ticker", "ticker_v2": "ticker",
    "trade": "trade", "trades": "trade",
    "fill": "fill", "fills": "fill",
    "user_orders": "user_orders",
    "market_lifecycle_v2": "market_lifecycle_v2", "market_lifecycle": "market_lifecycle_v2",
}
PRIVATE_CHANNELS = frozenset({"orderbook_delta", "fill", "user_orders"})
_EVENT_CHANNEL = {"orderbook_delta": "orderbook_delta", "ticker": "ticker", "trade": "trade", "fill": "fill",
                  "order": "user_orders", "lifecycle": "market_lifecycle_v2"}

# Kalshi's WebSocket error codes
ERR_PROCESS, ERR_PARAMS, ERR_CHANNELS, ERR_SIDS, ERR_COMMAND = 1, 2, 3, 4, 5
ERR_UNKNOWN_SID, ERR_UNKNOWN_CHANNEL, ERR_AUTH, ERR_CHANNEL, ERR_PARAM, ERR_ONE_SID, ERR_ACTION = (
    7, 8, 9, 10, 11, 12, 13)
ERR_MARKET_NOT_FOUND = 16


@dataclass
class Subscription:
    sid: int
    channel: str
    tickers: set[str] | None  # None = every market
    seq: int = 0
    after_event: dict[str, int] = field(default_factory=dict)  # orderbook: ticker -> engine seq at snapshot


MAX_BACKLOG = 50_000  # messages queued for one client before it is disconnected as too slow


class Connection:
    def __init__(self, websocket: WebSocket, user_id: str | None) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.subs: dict[int, Subscription] = {}
        self.sids = itertools.count(1)
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.skip_seq = 0
        self.too_slow = False

    def send(self, message: dict[str, Any]) -> None:
        if not self.too_slow:
            self.send_text(json.dumps(message, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        """Queue an already serialised message (the fan-out serialises each event's body once)."""
        if self.too_slow:
            return
        if self.queue.qsize() >= MAX_BACKLOG:
            # a client that does not read would make us buffer forever: cut it off like a real exchange
            self.too_slow = True
            log.warning("websocket client fell %d messages behind; disconnecting it", MAX_BACKLOG)
            asyncio.ensure_future(self._close_slow())
            return
        self.queue.put_nowait(text)

    async def _close_slow(self) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code=1008, reason="client too slow")

    def next_seq(self, sub: Subscription) -> int:
        sub.seq += 1
        if self.skip_seq and sub.channel == "orderbook_delta":
            self.skip_seq -= 1
            sub.seq += 1  # test hook: a gap the client must notice
        return sub.seq


class WebSocketHub:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.connections: set[Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted: dict[str, int] = {}  # channel -> number of subscriptions (read by the listener)
        # Engine events wait here for the loop; one wake-up drains all of them (a wake-up per event costs
        # a self-pipe write and a loop iteration each, the fan-out's largest cost at 20,000 events/s).
        self._inbox: deque[tuple[int, str, str, dict[str, Any], str | None]] = deque()
        self._drain_scheduled = False
        # test control (off by default): subscription commands parked unapplied, see hold_subscriptions()
        self._holding = False
        self._held: list[tuple[Connection, dict[str, Any]]] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.exchange.add_listener(self._on_event)

    def stop(self) -> None:
        self.exchange.remove_listener(self._on_event)

    def backlog(self) -> int:
        """Messages made but not yet handed to the slowest client's socket (any thread may ask: producers
        that want to go "as fast as the stream can carry" pace themselves on it)."""
        return len(self._inbox) + max((c.queue.qsize() for c in list(self.connections)), default=0)

    # ------------------------------------------------------------------ engine side (any thread)

    def _on_event(self, event: ExchangeEvent) -> None:
        channel = _EVENT_CHANNEL.get(event.kind)
        if channel is None or not self._wanted.get(channel) or self._loop is None:
            return
        payload = self._payload(event)
        self._inbox.append((event.seq, channel, event.ticker, payload, event.data.get("user_id")))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _payload(self, event: ExchangeEvent) -> dict[str, Any]:
        d = event.data
        kind = event.kind
        if kind == "orderbook_delta":
            t = d["tick"]
            return {"market_ticker": event.ticker, "market_id": market_id(event.ticker), "price": t,
                    "price_dollars": TICK_DOLLARS[t], "delta": d["delta"], "delta_fp": fp(d["delta"]),
                    "side": d["side"], "ts": iso_ms(d["ts"]), "client_order_id": d["client_order_id"]}
        if kind == "trade":
            tr = d["trade"]
            return {"trade_id": tr.trade_id, "market_ticker": tr.ticker, "yes_price": tr.yes_tick,
                    "yes_price_dollars": TICK_DOLLARS[tr.yes_tick], "no_price": TICKS - tr.yes_tick,
                    "no_price_dollars": TICK_DOLLARS[TICKS - tr.yes_tick], "count": tr.count,
                    "count_fp": fp(tr.count), "taker_side": tr.taker_side, "ts": tr.created_ms // 1000}
        if kind == "fill":
            f = d["fill"]
            return {"trade_id": f.fill_id, "order_id": f.order_id, "client_order_id": f.client_order_id,
                    "market_ticker": f.ticker, "is_taker": f.is_taker, "side": f.side, "action": f.action,
                    "yes_price": f.yes_tick, "yes_price_dollars": TICK_DOLLARS[f.yes_tick],
                    "no_price": TICKS - f.yes_tick, "no_price_dollars": TICK_DOLLARS[TICKS - f.yes_tick],
                    "count": f.count, "count_fp": fp(f.count), "fee_cost": dollars(f.fee),
                    "post_position": f.post_position, "post_position_fp": fp(f.post_position),
                    "purchased_side": f.side if f.action == "buy" else ("no" if f.side == "yes" else "yes"),
                    "ts": f.created_ms // 1000}
        if kind == "order":
            from precog.venues.exchange.serialize import order_json

            return order_json(d["order"])
        if kind == "ticker":
            return ticker_payload(d["market"], d["ts"])
        if kind == "lifecycle":
            return lifecycle_payload(d["market"], d["event_type"])
        raise ValueError(kind)

    # ------------------------------------------------------------------ loop side

    def _drain(self) -> None:
        """Dispatch every engine event that arrived since the last drain, in engine order."""
        self._drain_scheduled = False  # first: an event appended from now on schedules the next drain
        inbox = self._inbox
        while inbox:
            self._dispatch(*inbox.popleft())

    def _dispatch(self, event_seq: int, channel: str, ticker: str, payload: dict[str, Any],
                  user_id: str | None) -> None:
        msg_type = channel
        serialised: str | None = None  # the payload serialised once, shared by every subscriber
        for conn in list(self.connections):
            if channel in PRIVATE_CHANNELS and channel != "orderbook_delta" and conn.user_id != user_id:
                continue
            for sub in list(conn.subs.values()):
                if sub.channel != channel or (sub.tickers is not None and ticker not in sub.tickers):
                    continue
                if channel == "orderbook_delta":
                    if event_seq <= sub.after_event.get(ticker, 0):
                        continue  # already in the snapshot this subscription received
                    body = payload if conn.user_id == user_id else {
                        k: v for k, v in payload.items() if k != "client_order_id"}
                    conn.send({"type": msg_type, "sid": sub.sid, "seq": conn.next_seq(sub), "msg": body})
                else:
                    if serialised is None:
                        serialised = json.dumps(payload, separators=(",", ":"))
                    # byte for byte what json.dumps of the envelope dict would give
                    conn.send_text(
                        f'{{"type":"{msg_type}","sid":{sub.sid},"seq":{conn.next_seq(sub)},"msg":{serialised}}}')

    async def serve(self, websocket: WebSocket, user_id: str | None) -> None:
        await websocket.accept()
        conn = Connection(websocket, user_id)
        self.connections.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        try:
            while True:
                text = await websocket.receive_text()
                self._command(conn, text)
        except WebSocketDisconnect:
            pass
        except RuntimeError:  # socket already closed by a drop
            pass
        finally:
            self.connections.discard(conn)
            for sub in conn.subs.values():
                self._wanted[sub.channel] -= 1
            conn.subs.clear()
            conn.queue.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def _writer(self, conn: Connection) -> None:
        try:
            while True:
                text = await conn.queue.get()
                if text is None:
                    return
                await conn.websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    def _command(self, conn: Connection, text: str) -> None:
        try:
            cmd = json.loads(text)
        except json.JSONDecodeError:
            conn.send({"type": "error", "msg": {"code": ERR_PROCESS, "msg": "Unable to process message"}})
            return
        if not isinstance(cmd, dict):
            conn.send({"type": "error", "msg": {"code": ERR_PROCESS, "msg": "Unable to process message"}})
            return
        cid = cmd.get("id")
        name = cmd.get("cmd")
        params = cmd.get("params")
        error = _error_reply(conn, cid)
        if name == "list_subscriptions":
            conn.send({"id": cid, "type": "ok",
                       "msg": [{"channel": s.channel, "sid": s.sid} for s in conn.subs.values()]})
            return
        if name not in ("subscribe", "unsubscribe", "update_subscription"):
            error(ERR_COMMAND, f"Unknown command {name!r}")
            return
        if self._holding and name in ("subscribe", "update_subscription"):
            self._held.append((conn, cmd))
            return
        self._apply(conn, cid, name, params, error)

    def _apply(self, conn: Connection, cid: Any, name: str, params: Any, error: Callable[[int, str], None]) -> None:
        if not isinstance(params, dict):
            error(ERR_PARAMS, "Params required")
            return
        if name == "subscribe":
            self._subscribe(conn, cid, params, error)
        elif name == "unsubscribe":
            sids = params.get("sids")
            if not isinstance(sids, list) or not sids:
                error(ERR_SIDS, "Subscription IDs required")
                return
            for sid in sids:
                sub = conn.subs.pop(sid, None) if isinstance(sid, int) else None
                if sub is None:
                    error(ERR_UNKNOWN_SID, f"Unknown subscription ID {sid!r}")
                    continue
                self._wanted[sub.channel] -= 1
                conn.send({"id": cid, "sid": sid, "seq": sub.seq, "type": "unsubscribed"})
        else:
            self._update(conn, cid, params, error)

    def _tickers(self, params: dict[str, Any]) -> list[str] | None:
        tickers: list[str] = []
        one = params.get("market_ticker")
        if isinstance(one, str) and one:
            tickers.append(one)
        many = params.get("market_tickers")
        if isinstance(many, list):
            tickers.extend(t for t in many if isinstance(t, str) and t)
        return tickers or None

    def _subscribe(self, conn: Connection, cid: Any, params: dict[str, Any], error: Any) -> None:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            error(ERR_CHANNELS, "Channels required")
            return
        tickers = self._tickers(params)
        if tickers is not None:
            unknown = [t for t in tickers if t not in self.exchange.markets]
            if unknown:
                error(ERR_MARKET_NOT_FOUND, f"Market not found: {', '.join(unknown)}")
                return
        for raw in channels:
            channel = CHANNEL_ALIASES.get(raw) if isinstance(raw, str) else None
            if channel is None:
                error(ERR_UNKNOWN_CHANNEL, f"Unknown channel name {raw!r}")
                continue
            if channel in PRIVATE_CHANNELS and conn.user_id is None:
                error(ERR_AUTH, f"Authentication required for channel {channel}")
                continue
            if channel == "orderbook_delta" and tickers is None:
                error(ERR_PARAM, "orderbook_delta needs market_ticker or market_tickers")
                continue
            sub = Subscription(next(conn.sids), channel, set(tickers) if tickers is not None else None)
            conn.subs[sub.sid] = sub
            self._wanted[channel] = self._wanted.get(channel, 0) + 1
            conn.send({"id": cid, "type": "subscribed", "msg": {"channel": channel, "sid": sub.sid}})
            if channel == "orderbook_delta":
                for ticker in tickers or []:
                    self._send_snapshot(conn, sub, ticker)

    def _send_snapshot(self, conn: Connection, sub: Subscription, ticker: str) -> None:
        with self.exchange.lock:
            m = self.exchange.markets[ticker]
            yes, no = m.book[YES].depth(), m.book[1].depth()
            sub.after_event[ticker] = self.exchange.event_seq
        conn.send({"type": "orderbook_snapshot", "sid": sub.sid, "seq": conn.next_seq(sub),
                   "msg": snapshot_payload(ticker, yes, no)})

    def _update(self, conn: Connection, cid: Any, params: dict[str, Any], error: Any) -> None:
        sids = params.get("sids")
        if isinstance(params.get("sid"), int):
            sids = [params["sid"]]
        if not isinstance(sids, list) or len(sids) != 1:
            error(ERR_ONE_SID, "Exactly one subscription ID is required")
            return
        sub = conn.subs.get(sids[0])
        if sub is None:
            error(ERR_UNKNOWN_SID, f"Unknown subscription ID {sids[0]!r}")
            return
        action = params.get("action")
        tickers = self._tickers(params)
        if action not in ("add_markets", "delete_markets"):
            error(ERR_ACTION, f"Unsupported action {action!r}")
            return
        if not tickers:
            error(ERR_PARAM, "market_ticker or market_tickers required")
            return
        unknown = [t for t in tickers if t not in self.exchange.markets]
        if unknown:
            error(ERR_MARKET_NOT_FOUND, f"Market not found: {', '.join(unknown)}")
            return
        if action == "add_markets":
            if sub.tickers is None:
                sub.tickers = set()
            new = [t for t in tickers if t not in sub.tickers]
            sub.tickers.update(new)
        else:
            new = []
            if sub.tickers is not None:
                sub.tickers.difference_update(tickers)
                for t in tickers:
                    sub.after_event.pop(t, None)
        conn.send({"id": cid, "sid": sub.sid, "seq": sub.seq, "type": "ok",
                   "msg": {"market_tickers": sorted(sub.tickers or [])}})
        if sub.channel == "orderbook_delta":
            for t in new:
                self._send_snapshot(conn, sub, t)

    # ------------------------------------------------------------------ test hooks (loop thread)

    async def drop_connections(self, *, abort: bool = True) -> int:
        """Cut every WebSocket connection (abruptly by default, like a network failure)."""
        conns = list(self.connections)
        for conn in conns:
            transport = _transport_of(conn.websocket)
            if abort and isinstance(transport, asyncio.Transport):
                transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await conn.websocket.close(code=1011)
        return len(conns)

    def hold_subscriptions(self) -> None:
        """Test control, off by default: from now on `subscribe` and `update_subscription` commands are parked
        unapplied — no reply, and no events for their markets — until `release_subscriptions()`. It lets a test
        change a market after a client's REST snapshot but before the client's new subscription takes effect,
        deterministically. Any thread may call it."""
        self._holding = True

    def held_subscriptions(self) -> list[dict[str, Any]]:
        """The commands parked so far, as the clients sent them (any thread)."""
        return [cmd for _, cmd in list(self._held)]

    def release_subscriptions(self) -> None:
        """Stop parking and apply the parked commands in arrival order, on the server's loop (any thread)."""
        if self._loop is None:
            self._holding = False
            return
        self._loop.call_soon_threadsafe(self._release)

    def _release(self) -> None:
        self._holding = False
        held, self._held = self._held, []
        for conn, cmd in held:
            if conn in self.connections:  # else its client went away meanwhile
                cid = cmd.get("id")
                self._apply(conn, cid, str(cmd.get("cmd")), cmd.get("params"), _error_reply(conn, cid))

    def skip_seq(self, count: int = 1) -> int:
        """Make the next orderbook message on every connection skip a sequence number."""
        for conn in self.connections:
            conn.skip_seq += count
        return len(self.connections)


def _error_reply(conn: Connection, cid: Any) -> Callable[[int, str], None]:
    def error(code: int, msg: str) -> None:
        out: dict[str, Any] = {"type": "error", "msg": {"code": code, "msg": msg}}
        if cid is not None:
            out["id"] = cid
        conn.send(out)

    return error


def _transport_of(websocket: WebSocket) -> asyncio.BaseTransport | None:
    send = getattr(websocket, "_send", None)
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


def snapshot_payload(ticker: str, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> dict[str, Any]:
    msg: dict[str, Any] = {"market_ticker": ticker, "market_id": market_id(ticker)}
    for name, levels in (("yes", yes), ("no", no)):
        msg[name] = [[t, q] for t, q in levels]
        msg[f"{name}_dollars"] = [[TICK_DOLLARS[t], q] for t, q in levels]
        msg[f"{name}_dollars_fp"] = [[TICK_DOLLARS[t], fp(q)] for t, q in levels]
    return msg


def ticker_payload(m: Market, ts_ms: int) -> dict[str, Any]:
    bid = m.book[YES].best
    nb = m.book[1].best
    ask = TICKS - nb if nb else TICKS
    dollar_volume = m.volume * m.last_tick // TICKS if m.last_tick else 0
    return {
        "market_ticker": m.ticker, "market_id": market_id(m.ticker), "price": m.last_tick,
        "yes_bid": bid, "yes_ask": ask, "price_dollars": TICK_DOLLARS[m.last_tick],
        "yes_bid_dollars": TICK_DOLLARS[bid], "yes_ask_dollars": TICK_DOLLARS[ask],
        "no_bid_dollars": TICK_DOLLARS[nb], "no_ask_dollars": TICK_DOLLARS[TICKS - bid if bid else TICKS],
        "yes_bid_size_fp": fp(m.book[YES].qty[bid] if bid else 0),
        "yes_ask_size_fp": fp(m.book[1].qty[nb] if nb else 0),
        "volume": m.volume, "volume_fp": fp(m.volume), "open_interest": m.open_interest,
        "open_interest_fp": fp(m.open_interest), "dollar_volume": dollar_volume,
        "dollar_open_interest": m.open_interest // 2, "ts": ts_ms // 1000, "time": iso_ms(ts_ms),
    }


def lifecycle_payload(m: Market, event_type: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"market_ticker": m.ticker, "event_type": event_type, "status": m.status,
                           "open_ts": m.open_ms // 1000, "close_ts": m.close_ms // 1000}
    if event_type == "created":
        msg["additional_metadata"] = {"title": m.title, "yes_sub_title": m.yes_sub_title,
                                      "no_sub_title": m.no_sub_title, "event_ticker": m.event_ticker,
                                      "expected_expiration_ts": m.expiration_ms // 1000}
    if event_type == "deactivated":
        msg["is_deactivated"] = True
    if event_type == "activated":
        msg["is_deactivated"] = False
    if m.settlement_value is not None and event_type in ("determined", "settled"):
        msg["result"] = m.result
        msg["settlement_value"] = dollars(m.settlement_value)
        if m.determined_ms is not None:
            msg["determination_ts"] = m.determined_ms // 1000
    if event_type == "settled" and m.settled_ms is not None:
        msg["settled_ts"] = m.settled_ms // 1000
    return msg
