"""Kalshi's WebSocket API (`/trade-api/ws/v2`) on top of the engine's event stream.

Messages follow Kalshi's AsyncAPI document ("Kalshi Market Data WebSocket API" 2.0.0, AsyncAPI 3.0.0,
https://docs.kalshi.com/asyncapi.yaml), held to it by tests/venues/test_exchange_ws_contract.py: fixed-point
strings only (`*_dollars`, `*_fp`), no legacy integer cents or counts.

Commands: subscribe, unsubscribe, list_subscriptions, update_subscription (add_markets/delete_markets).
Channels (undocumented names are refused with code 8, as Kalshi does):
  orderbook_delta      `orderbook_snapshot` then `orderbook_delta`, `seq` per subscription (needs markets)
  ticker               `ticker` (no `seq`)
  trade                `trade` (`seq`)
  fill                 `fill` (no `seq`)
  user_orders          `user_order` (no `seq`)
  market_lifecycle_v2  `market_lifecycle_v2` (`seq`); every market's events: Kalshi takes no market filter here
The server admits only signed handshakes, as Kalshi does (unsigned ones too with its `allow_unsigned_ws`
opt-out); an unsigned connection gets the public channels only: orderbook_delta, fill and user_orders are
refused with code 9.

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
from precog.venues.exchange.model import NO, R_COUNT, SIDE_NAMES, TICKS, YES, Market, Order
from precog.venues.exchange.serialize import TICK_DOLLARS, dollars, fp, market_id

log = logging.getLogger(__name__)

CHANNELS = frozenset({"orderbook_delta", "ticker", "trade", "fill", "user_orders", "market_lifecycle_v2"})
PRIVATE_CHANNELS = frozenset({"orderbook_delta", "fill", "user_orders"})
UNFILTERED_CHANNELS = frozenset({"market_lifecycle_v2"})  # Kalshi: market filters not supported, all markets
_EVENT_CHANNEL = {"orderbook_delta": "orderbook_delta", "ticker": "ticker", "trade": "trade", "fill": "fill",
                  "order": "user_orders", "lifecycle": "market_lifecycle_v2"}
MESSAGE_TYPE = {"orderbook_delta": "orderbook_delta", "ticker": "ticker", "trade": "trade", "fill": "fill",
                "user_orders": "user_order", "market_lifecycle_v2": "market_lifecycle_v2"}
SEQUENCED = frozenset({"orderbook_delta", "trade", "market_lifecycle_v2"})  # channels whose messages carry `seq`
# lifecycle events Kalshi's stream announces (the engine's own `closed`, a scheduled close, is not one of them)
LIFECYCLE_EVENTS = frozenset({"created", "activated", "deactivated", "close_date_updated", "determined", "settled"})

# Kalshi's WebSocket error codes (6, 16 and 17 are retired: never sent)
ERR_PROCESS, ERR_PARAMS, ERR_CHANNELS, ERR_SIDS, ERR_COMMAND = 1, 2, 3, 4, 5
ERR_UNKNOWN_SID, ERR_UNKNOWN_CHANNEL, ERR_AUTH, ERR_CHANNEL, ERR_PARAM, ERR_ONE_SID, ERR_ACTION = (
    7, 8, 9, 10, 11, 12, 13)
ERR_MARKET_REQUIRED, ERR_ACTION_REQUIRED = 14, 15
# An unknown market ticker: "Market not found" (16) is retired and the document names no successor; the exchange
# answers "Invalid parameter", the documented code nearest in meaning.
ERR_MARKET_NOT_FOUND = ERR_PARAM


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
        if event.kind == "lifecycle" and event.data["event_type"] not in LIFECYCLE_EVENTS:
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
            ts = d["ts"]
            out: dict[str, Any] = {"market_ticker": event.ticker, "market_id": market_id(event.ticker),
                                   "price_dollars": TICK_DOLLARS[t], "delta_fp": fp(d["delta"]), "side": d["side"],
                                   "ts": iso_ms(ts), "ts_ms": ts}
            if d["client_order_id"]:  # sent only to the account whose order it was (see _dispatch)
                out["client_order_id"] = d["client_order_id"]
            return out
        if kind == "trade":
            tr = d["trade"]
            return {"trade_id": tr.trade_id, "market_ticker": tr.ticker,
                    "yes_price_dollars": TICK_DOLLARS[tr.yes_tick], "no_price_dollars": TICK_DOLLARS[TICKS - tr.yes_tick],
                    "count_fp": fp(tr.count), "taker_side": tr.taker_side, "taker_outcome_side": tr.taker_side,
                    "taker_book_side": _book_side(tr.taker_side), "is_block_trade": False,
                    "ts": tr.created_ms // 1000, "ts_ms": tr.created_ms}
        if kind == "fill":
            f = d["fill"]
            outcome = f.side if f.action == "buy" else ("no" if f.side == "yes" else "yes")
            out = {"trade_id": f.fill_id, "order_id": f.order_id, "market_ticker": f.ticker, "exchange_index": 0,
                   "is_taker": f.is_taker, "side": f.side, "action": f.action,
                   "yes_price_dollars": TICK_DOLLARS[f.yes_tick], "count_fp": fp(f.count), "fee_cost": dollars(f.fee),
                   "post_position_fp": fp(f.post_position), "purchased_side": outcome, "outcome_side": outcome,
                   "book_side": _book_side(outcome), "ts": f.created_ms // 1000, "ts_ms": f.created_ms}
            if f.client_order_id:
                out["client_order_id"] = f.client_order_id
            return out
        if kind == "order":
            return user_order_payload(d["order"])
        if kind == "ticker":
            return ticker_payload(d["market"], d["ts"])
        if kind == "lifecycle":
            m = d["market"]
            event_title = self.exchange.events[m.event_ticker].title if m.event_ticker in self.exchange.events else ""
            return lifecycle_payload(m, d["event_type"], is_deactivated=d.get("is_deactivated"), name=event_title)
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
        msg_type = MESSAGE_TYPE[channel]
        sequenced = channel in SEQUENCED
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
                    seq = f'"seq":{conn.next_seq(sub)},' if sequenced else ""
                    conn.send_text(f'{{"type":"{msg_type}","sid":{sub.sid},{seq}"msg":{serialised}}}')

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
            conn.send(_with_id({"type": "ok", "msg": [{"channel": s.channel, "sid": s.sid}
                                                      for s in conn.subs.values()]}, cid))
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
                # `seq`: the last one the subscription used (0 when it sent nothing; the document's minimum is 1)
                conn.send(_with_id({"sid": sid, "seq": sub.seq, "type": "unsubscribed"}, cid))
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
            channel = raw if isinstance(raw, str) and raw in CHANNELS else None
            if channel is None:
                error(ERR_UNKNOWN_CHANNEL, f"Unknown channel name {raw!r}")
                continue
            if channel in PRIVATE_CHANNELS and conn.user_id is None:
                error(ERR_AUTH, f"Authentication required for channel {channel}")
                continue
            if channel == "orderbook_delta" and tickers is None:
                error(ERR_MARKET_REQUIRED, "Market Ticker required")
                continue
            wanted = set(tickers) if tickers is not None and channel not in UNFILTERED_CHANNELS else None
            sub = Subscription(next(conn.sids), channel, wanted)
            conn.subs[sub.sid] = sub
            self._wanted[channel] = self._wanted.get(channel, 0) + 1
            conn.send(_with_id({"type": "subscribed", "msg": {"channel": channel, "sid": sub.sid}}, cid))
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
        if action is None:
            error(ERR_ACTION_REQUIRED, "Action required")
            return
        if action not in ("add_markets", "delete_markets"):
            error(ERR_ACTION, f"Unsupported action {action!r}")
            return
        if not tickers:
            error(ERR_MARKET_REQUIRED, "Market Ticker required")
            return
        unknown = [t for t in tickers if t not in self.exchange.markets]
        if unknown:
            error(ERR_MARKET_NOT_FOUND, f"Market not found: {', '.join(unknown)}")
            return
        new: list[str] = []
        if sub.channel in UNFILTERED_CHANNELS:
            pass  # every market's events already: nothing to add or remove
        elif action == "add_markets":
            if sub.tickers is None:
                sub.tickers = set()
            new = [t for t in tickers if t not in sub.tickers]
            sub.tickers.update(new)
        elif sub.tickers is not None:
            sub.tickers.difference_update(tickers)
            for t in tickers:
                sub.after_event.pop(t, None)
        ok: dict[str, Any] = {"sid": sub.sid, "type": "ok", "msg": {"market_tickers": sorted(sub.tickers or [])}}
        if sub.seq:  # optional in the document (minimum 1): left out while the subscription has sent nothing
            ok["seq"] = sub.seq
        conn.send(_with_id(ok, cid))
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


def _with_id(reply: dict[str, Any], cid: Any) -> dict[str, Any]:
    """A reply to command `cid`: Kalshi echoes the command's id; an id of 0 counts as none."""
    if isinstance(cid, int) and not isinstance(cid, bool) and cid > 0:
        return {"id": cid, **reply}
    return reply


def _error_reply(conn: Connection, cid: Any) -> Callable[[int, str], None]:
    def error(code: int, msg: str) -> None:
        conn.send(_with_id({"type": "error", "msg": {"code": code, "msg": msg}}, cid))

    return error


def _transport_of(websocket: WebSocket) -> asyncio.BaseTransport | None:
    send = getattr(websocket, "_send", None)
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


def snapshot_payload(ticker: str, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> dict[str, Any]:
    """`orderbook_snapshot` msg: each side as [[price dollars, count fp], ...], the key left out when it is empty."""
    msg: dict[str, Any] = {"market_ticker": ticker, "market_id": market_id(ticker)}
    for name, levels in (("yes", yes), ("no", no)):
        if levels:
            msg[f"{name}_dollars_fp"] = [[TICK_DOLLARS[t], fp(q)] for t, q in levels]
    return msg


def _book_side(outcome_side: str) -> str:
    """Kalshi's book vocabulary for an outcome side: a YES position is a bid, a NO position an ask."""
    return "bid" if outcome_side == "yes" else "ask"


def ticker_payload(m: Market, ts_ms: int) -> dict[str, Any]:
    bid = m.book[YES].best
    nb = m.book[NO].best
    ask = TICKS - nb if nb else TICKS
    dollar_volume = m.volume * m.last_tick // TICKS if m.last_tick else 0
    last_size = m.trades[-1][R_COUNT] if m.trades else 0
    return {
        "market_id": market_id(m.ticker), "market_ticker": m.ticker, "price_dollars": TICK_DOLLARS[m.last_tick],
        "yes_bid_dollars": TICK_DOLLARS[bid], "yes_ask_dollars": TICK_DOLLARS[ask],
        "volume_fp": fp(m.volume), "open_interest_fp": fp(m.open_interest), "dollar_volume": dollar_volume,
        "dollar_open_interest": m.open_interest // 2,
        "yes_bid_size_fp": fp(m.book[YES].qty[bid] if bid else 0), "yes_ask_size_fp": fp(m.book[NO].qty[nb] if nb else 0),
        "last_trade_size_fp": fp(last_size), "ts": ts_ms // 1000, "ts_ms": ts_ms, "time": iso_ms(ts_ms),
    }


def lifecycle_payload(m: Market, event_type: str, *, is_deactivated: bool | None = None,
                      name: str = "") -> dict[str, Any]:
    """`market_lifecycle_v2` msg: each optional key only with the event Kalshi documents it for."""
    msg: dict[str, Any] = {"market_ticker": m.ticker, "event_type": event_type}
    if event_type == "created":
        msg.update(exchange_index=0, open_ts=m.open_ms // 1000, close_ts=m.close_ms // 1000,
                   price_level_structure="linear_cent",
                   price_ranges=[{"start": "0.0000", "end": "1.0000", "step": "0.0100"}])
        msg["additional_metadata"] = {
            "name": name or m.title, "title": m.title, "yes_sub_title": m.yes_sub_title,
            "no_sub_title": m.no_sub_title, "rules_primary": m.rules_primary, "rules_secondary": m.rules_secondary,
            "can_close_early": m.can_close_early, "event_ticker": m.event_ticker,
            "expected_expiration_ts": m.expected_expiration_ms // 1000}
    elif event_type == "close_date_updated":
        msg["close_ts"] = m.close_ms // 1000
    elif event_type in ("activated", "deactivated"):
        if is_deactivated is not None:  # a pause or an unpause, not a market's first opening
            msg["is_deactivated"] = is_deactivated
    elif event_type == "determined" and m.settlement_value is not None:
        msg["result"] = m.result
        msg["settlement_value"] = dollars(m.settlement_value)
        if m.determined_ms is not None:
            msg["determination_ts"] = m.determined_ms // 1000
    elif event_type == "settled" and m.settled_ms is not None:
        msg["settled_ts"] = m.settled_ms // 1000
    return msg


def user_order_payload(o: Order) -> dict[str, Any]:
    """`user_order` msg (the `user_orders` channel): the order as Kalshi's stream shows it."""
    outcome = SIDE_NAMES[o.bside]  # buy YES / sell NO bid YES: positioned for YES
    out: dict[str, Any] = {
        "order_id": o.order_id, "user_id": o.user_id, "ticker": o.ticker, "exchange_index": 0, "status": o.status,
        "side": o.side, "is_yes": o.side == "yes", "outcome_side": outcome, "book_side": _book_side(outcome),
        "yes_price_dollars": TICK_DOLLARS[o.yes_tick], "fill_count_fp": fp(o.fill_count),
        "remaining_count_fp": fp(o.remaining), "initial_count_fp": fp(o.initial_count),
        "taker_fill_cost_dollars": dollars(o.taker_fill_cost), "maker_fill_cost_dollars": dollars(o.maker_fill_cost),
        "taker_fees_dollars": dollars(o.taker_fees), "maker_fees_dollars": dollars(o.maker_fees),
        "client_order_id": o.client_order_id or "", "self_trade_prevention_type": o.stp,
        "created_time": iso_ms(o.created_ms), "created_ts_ms": o.created_ms,
        "last_update_time": iso_ms(o.updated_ms), "last_updated_ts_ms": o.updated_ms,
        "subaccount_number": o.subaccount,
    }
    if o.order_group_id:
        out["order_group_id"] = o.order_group_id
    if o.expiration_ms:
        out["expiration_time"] = iso_ms(o.expiration_ms)
        out["expiration_ts_ms"] = o.expiration_ms
    return out
