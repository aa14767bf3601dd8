"""Contract test: the local exchange's WebSocket messages and our Kalshi WebSocket client held to Kalshi's AsyncAPI
document ("Kalshi Market Data WebSocket API", info.version 2.0.0, AsyncAPI 3.0.0, https://docs.kalshi.com/asyncapi.yaml,
read 2026-11 as mirrored at github.com/TexasCoding/kalshi-python-sdk specs/asyncapi.yaml, commit bcd7533; the
per-channel pages under https://docs.kalshi.com/websockets/ render the same document).

The schemas below are written by hand from the fields the document declares for each message: names, types
(fixed-point strings `*_dollars` / `*_fp`, integer Unix times), required vs optional, the envelope
(`type`, `sid`, `seq` where the channel numbers its messages, `id` on command replies). They are JSON Schema 2020-12
in our own structure, not the vendor file. Fields a message carries that its schema does not declare fail unless
`UNDECLARED_ALLOWED` names them with a reason (it is empty: the exchange sends nothing undocumented).

1. A real exchange server on 127.0.0.1 is driven over a signed WebSocket through everything it can send: subscribe
   acknowledgements, book snapshots (both sides, one side, none) and deltas (ours with our client_order_id), quote
   changes, a trade, our own order filling and being canceled, a market created, paused, resumed, closed early,
   one determined and settled, subscription updates, list, unsubscribe and every error it answers; each frame is
   validated against the schema of its type. An unsigned handshake is refused (401), as the document requires;
   error 9 comes from an unsigned connection to an exchange served with the opt-out `--allow-unsigned-ws`.
2. Our client (`precog.venues.kalshi.websocket`, through the engine's `ViewWebSocket`) runs a full session against
   the exchange through a relay that records every command it sends (each validated: subscribe, unsubscribe,
   update_subscription) and reduces every frame it receives to the declared fields: books, quotes, trades, fills and
   lifecycle events must still come out right.
3. Every documented-required field the client reads is removed from a real frame in turn: the client must reject the
   frame loudly (a `venue_schema_error` alert, and a StreamError or a book resync), never read a default. Fields it
   reads but does not require are listed in `READ_OPTIONAL` with the reason; the rest in `NOT_READ`. Ingestion's
   ticker fast path (`precog.ingest.market_feed`) is held to the same frames.

Where the document is incomplete or contradicts itself, the test says so next to the schema (search "DOC:").
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets
from jsonschema import Draft202012Validator, FormatChecker
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus

from precog.domain.market import MarketStatus
from precog.engine.market_stream import ViewWebSocket
from precog.ingest.market_feed import RecordingWebSocket, fast_ticker
from precog.venues.kalshi import parsing as P
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.events import (
    BookResync,
    BookUpdated,
    ConnectionState,
    FillReceived,
    MarketLifecycle,
    MarketsSubscribed,
    StreamError,
    TickerUpdated,
    TradeOccurred,
)
from precog.venues.kalshi.websocket import KalshiWebSocket
from venues.conftest import LocalExchange, StreamRecorder

DOC = "https://docs.kalshi.com/asyncapi.yaml"
WS_PATH = "/trade-api/ws/v2"

# ------------------------------------------------------------------------------------------ building blocks

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
NUMBER: dict[str, Any] = {"type": "number"}
# `*_dollars` / `*_fp` / fee_cost / settlement_value: "fixed-point" decimal strings (DOC: described, no pattern given)
FIXED: dict[str, Any] = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
# DOC: `marketTicker` declares the pattern ^[A-Z0-9-]+$, which its own examples break ("FED-23DEC-T3.00",
# "HIGHNY-22DEC23-B53.5"): real tickers carry dots. Not enforced.
TICKER: dict[str, Any] = {"type": "string", "minLength": 1}
SIDE: dict[str, Any] = {"enum": ["yes", "no"]}
BOOK_SIDE: dict[str, Any] = {"enum": ["bid", "ask"]}
COMMAND_ID: dict[str, Any] = {"type": "integer", "minimum": 0}  # 0 counts as "no id"
SID: dict[str, Any] = {"type": "integer", "minimum": 1}
SEQ: dict[str, Any] = {"type": "integer", "minimum": 1}
UNIX_S: dict[str, Any] = {"type": "integer"}
UNIX_MS: dict[str, Any] = {"type": "integer"}
RFC3339: dict[str, Any] = {"type": "string", "format": "date-time"}


def array(items: dict[str, Any], *, min_items: int | None = None, max_items: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "array", "items": items}
    if min_items is not None:
        out["minItems"] = min_items
    if max_items is not None:
        out["maxItems"] = max_items
    return out


def record(required: dict[str, Any], optional: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An object: `required` fields must be there, `optional` ones may; anything else is undeclared."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}, **extra}


def const(value: str) -> dict[str, Any]:
    return {"const": value}


def data_message(msg_type: str, msg: dict[str, Any], *, sequenced: bool,
                 optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """A channel message: {type, sid, seq (sequenced channels only), msg}."""
    required: dict[str, Any] = {"type": const(msg_type), "sid": SID}
    if sequenced:
        required["seq"] = SEQ
    required["msg"] = msg
    return record(required, optional)


def only_with(field: str, event_types: Iterable[str]) -> dict[str, Any]:
    """DOC (market_lifecycle_v2): "This key will ONLY exist when ..." — the field appears with these events only."""
    return {"if": {"properties": {"event_type": {"not": {"enum": sorted(event_types)}}}},
            "then": {"not": {"required": [field]}}}


# ------------------------------------------------------------------------------------------ commands (client -> venue)
# DOC components/schemas subscribeCommandPayload, unsubscribeCommandPayload, updateSubscriptionCommandPayload,
# listSubscriptionsCommandPayload; https://docs.kalshi.com/websockets/websocket-connection

CHANNEL_NAMES = ["orderbook_delta", "ticker", "trade", "fill", "market_positions", "market_lifecycle_v2",
                 "multivariate_market_lifecycle", "communications", "order_group_updates", "user_orders",
                 "cfbenchmarks_value", "cfbenchmarks_value_5hz", "pyth_value"]  # DOC: no `ticker_v2` any more

SUBSCRIBE = record({
    "id": COMMAND_ID, "cmd": const("subscribe"),
    "params": record({"channels": array({"enum": CHANNEL_NAMES}, min_items=1)}, {
        "market_ticker": TICKER, "market_tickers": array(TICKER, min_items=1),
        "market_id": UUID, "market_ids": array(UUID, min_items=1),
        "send_initial_snapshot": BOOL, "skip_ticker_ack": BOOL, "use_yes_price": BOOL,
        "user_filter": {"enum": ["", "self"]}, "shard_factor": {"type": "integer", "minimum": 1},
        "shard_key": {"type": "integer", "minimum": 0},
        "index_ids": array(STR, min_items=1), "underlying_tickers": array(STR, min_items=1),
    }, **{"not": {"required": ["market_ticker", "market_tickers"]}}),  # mutually exclusive
})
UNSUBSCRIBE = record({"id": COMMAND_ID, "cmd": const("unsubscribe"),
                      "params": record({"sids": array(SID, min_items=1)})})
UPDATE_SUBSCRIPTION = record({
    "id": COMMAND_ID, "cmd": const("update_subscription"),
    "params": record({"action": {"enum": ["add_markets", "delete_markets", "get_snapshot"]}}, {
        "sid": SID, "sids": array(SID, min_items=1, max_items=1),
        "market_ticker": TICKER, "market_tickers": array(TICKER),
        "market_id": UUID, "market_ids": array(UUID), "send_initial_snapshot": BOOL,
    }, oneOf=[{"required": ["sid"]}, {"required": ["sids"]}]),  # "Either sid or sids ..., not both"
})
LIST_SUBSCRIPTIONS = record({"id": COMMAND_ID, "cmd": const("list_subscriptions")})
COMMANDS = {"subscribe": SUBSCRIBE, "unsubscribe": UNSUBSCRIBE, "update_subscription": UPDATE_SUBSCRIPTION,
            "list_subscriptions": LIST_SUBSCRIPTIONS}

# ------------------------------------------------------------------------------------------ replies (venue -> client)
# DOC components/schemas subscribedResponsePayload, unsubscribedResponsePayload, okResponsePayload,
# listSubscriptionsResponsePayload, errorResponsePayload (and the error-code table of info.description)

ERROR_CODES = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28]  # 6, 16, 17 retired
SUBSCRIBED = record({"type": const("subscribed"), "msg": record({"channel": STR, "sid": SID})}, {"id": COMMAND_ID})
UNSUBSCRIBED = record({"type": const("unsubscribed"), "sid": SID, "seq": SEQ}, {"id": COMMAND_ID})
OK_UPDATE = record({"type": const("ok")}, {
    "id": COMMAND_ID, "sid": SID, "seq": SEQ,
    "msg": record({}, {"market_tickers": array(TICKER), "market_ids": array(UUID)})})
OK_LIST = record({"type": const("ok"), "msg": array(record({"channel": STR, "sid": SID}))}, {"id": COMMAND_ID})
ERROR = record({"type": const("error"),
                "msg": record({"code": {"enum": ERROR_CODES}, "msg": STR},
                              {"market_ticker": STR, "market_tickers": array(STR)})},
               {"id": COMMAND_ID, "sid": SID, "seq": SEQ})

# ------------------------------------------------------------------------------------------ channel messages

LEVEL = array(FIXED, min_items=2, max_items=2)  # [price_in_dollars, contract_count_fp]
# DOC orderbookSnapshotPayload; https://docs.kalshi.com/websockets/orderbook-updates. A side's key "will not exist"
# when that side is empty.
ORDERBOOK_SNAPSHOT = data_message("orderbook_snapshot", record(
    {"market_ticker": TICKER, "market_id": UUID},
    {"yes_dollars_fp": array(LEVEL, min_items=1), "no_dollars_fp": array(LEVEL, min_items=1)},
), sequenced=True, optional={"id": COMMAND_ID})  # id: only in reply to a get_snapshot command
# DOC orderbookDeltaPayload. client_order_id (and subaccount) only when "you caused this orderbook change".
ORDERBOOK_DELTA = data_message("orderbook_delta", record(
    {"market_ticker": TICKER, "market_id": UUID, "price_dollars": FIXED, "delta_fp": FIXED, "side": SIDE},
    {"client_order_id": STR, "ts": RFC3339, "ts_ms": UNIX_MS, "subaccount": INT},
), sequenced=True)
# DOC tickerPayload; https://docs.kalshi.com/websockets/market-ticker. No `seq`: the ticker channel does not number
# its messages. ts and time are deprecated (ts_ms replaces them) but still required.
TICKER_MESSAGE = data_message("ticker", record({
    "market_id": UUID, "market_ticker": TICKER, "price_dollars": FIXED, "yes_bid_dollars": FIXED,
    "yes_ask_dollars": FIXED, "volume_fp": FIXED, "open_interest_fp": FIXED, "dollar_volume": INT,
    "dollar_open_interest": INT, "yes_bid_size_fp": FIXED, "yes_ask_size_fp": FIXED, "last_trade_size_fp": FIXED,
    "ts": UNIX_S, "ts_ms": UNIX_MS, "time": RFC3339,
}), sequenced=False)
# DOC tradePayload; https://docs.kalshi.com/websockets/public-trades. taker_side is deprecated ("will not be removed
# before May 14, 2026") in favour of taker_outcome_side / taker_book_side.
TRADE = data_message("trade", record({
    "trade_id": UUID, "market_ticker": TICKER, "yes_price_dollars": FIXED, "no_price_dollars": FIXED,
    "count_fp": FIXED, "taker_side": SIDE, "taker_outcome_side": SIDE, "taker_book_side": BOOK_SIDE,
    "is_block_trade": BOOL, "ts": UNIX_S, "ts_ms": UNIX_MS,
}), sequenced=True)
# DOC fillPayload; https://docs.kalshi.com/websockets/user-fills. No `seq`; no no_price_dollars (the YES price only).
FILL = data_message("fill", record({
    "trade_id": UUID, "order_id": UUID, "market_ticker": TICKER, "exchange_index": INT, "is_taker": BOOL,
    "side": SIDE, "yes_price_dollars": FIXED, "count_fp": FIXED, "fee_cost": FIXED,
    "action": {"enum": ["buy", "sell", "sell_partial", "sell_to_close", ""]}, "outcome_side": SIDE,
    "book_side": BOOK_SIDE, "ts": UNIX_S, "ts_ms": UNIX_MS, "post_position_fp": FIXED, "purchased_side": SIDE,
}, {"client_order_id": STR, "subaccount": INT}), sequenced=False)
# DOC marketLifecycleV2Payload (+ marketMetadataUpdatedPayload, the same message type with event_type
# "metadata_updated"); https://docs.kalshi.com/websockets/market-and-event-lifecycle. DOC: the enum lists no
# "closed" event: a market reaching its scheduled close is not announced on this channel.
PRICE_LEVEL_STRUCTURES = ["banded_centi_cent", "", "linear_cent", "deci_cent", "tapered_deci_cent",
                          "center_whole_edge_half_cent", "center_whole_edge_quint_cent", "center_half_edge_half_cent",
                          "center_half_edge_quint_cent", "center_half_edge_deci_cent", "center_quint_edge_quint_cent",
                          "center_quint_edge_deci_cent", "center_centi_edge_centi_cent", "center_deci_edge_centi_cent"]
LIFECYCLE_EVENT_TYPES = ["created", "deactivated", "activated", "close_date_updated", "determined", "settled",
                         "price_level_structure_updated", "metadata_updated"]
ADDITIONAL_METADATA = record({
    "name": STR, "title": STR, "yes_sub_title": STR, "no_sub_title": STR, "rules_primary": STR,
    "rules_secondary": STR, "can_close_early": BOOL, "event_ticker": STR, "expected_expiration_ts": UNIX_S,
}, {"strike_type": STR, "floor_strike": NUMBER, "cap_strike": NUMBER, "custom_strike": {"type": "object"}})
LIFECYCLE = data_message("market_lifecycle_v2", record(
    {"market_ticker": TICKER, "event_type": {"enum": LIFECYCLE_EVENT_TYPES}},
    {"exchange_index": INT, "open_ts": UNIX_S, "close_ts": UNIX_S, "determination_ts": UNIX_S, "settled_ts": UNIX_S,
     "result": STR, "settlement_value": FIXED, "is_deactivated": BOOL, "additional_metadata": ADDITIONAL_METADATA,
     "price_level_structure": {"enum": PRICE_LEVEL_STRUCTURES},
     "price_ranges": array(record({"start": FIXED, "end": FIXED, "step": FIXED})),
     # metadata_updated only
     "strike_type": STR, "floor_strike": NUMBER, "cap_strike": NUMBER, "custom_strike": {"type": "object"},
     "yes_sub_title": STR},
    allOf=[only_with("exchange_index", ["created"]), only_with("open_ts", ["created"]),
           only_with("close_ts", ["created", "close_date_updated"]), only_with("determination_ts", ["determined"]),
           only_with("settled_ts", ["settled"]), only_with("result", ["determined"]),
           only_with("settlement_value", ["determined"]),
           only_with("is_deactivated", ["activated", "deactivated"]),  # "when the market is paused/unpaused"
           only_with("additional_metadata", ["created"]),
           only_with("price_level_structure", ["created", "price_level_structure_updated"]),
           only_with("price_ranges", ["created", "price_level_structure_updated"])],
), sequenced=True)
# DOC userOrderPayload; https://docs.kalshi.com/websockets/user-orders. Message type `user_order` on the
# `user_orders` channel; no `seq`.
USER_ORDER = data_message("user_order", record({
    "order_id": UUID, "user_id": UUID, "ticker": TICKER, "exchange_index": INT,
    "status": {"enum": ["resting", "canceled", "executed", "unknown"]}, "side": SIDE, "is_yes": BOOL,
    "outcome_side": SIDE, "book_side": BOOK_SIDE, "yes_price_dollars": FIXED, "fill_count_fp": FIXED,
    "remaining_count_fp": FIXED, "initial_count_fp": FIXED, "taker_fill_cost_dollars": FIXED,
    "maker_fill_cost_dollars": FIXED, "taker_fees_dollars": FIXED, "maker_fees_dollars": FIXED,
    "client_order_id": STR, "created_time": {"type": ["string", "null"], "format": "date-time"},
    "created_ts_ms": {"type": ["integer", "null"]},
}, {"order_group_id": STR, "self_trade_prevention_type": {"enum": ["taker_at_cross", "maker"]},
    "last_update_time": RFC3339, "expiration_time": RFC3339, "expiration_ts_ms": UNIX_MS,
    "last_updated_ts_ms": UNIX_MS, "subaccount_number": INT,
    "last_update_reason": {"enum": ["Decrease", "Amend", "MarginCancel", "SelfTradeCancel", "ExpiryCancel",
                                    "CloseCancel", "HaltCancel", "Trade", "PostOnlyCrossCancel",
                                    "ReduceOnlyCancel"]}}), sequenced=False)

MESSAGES: dict[str, dict[str, Any]] = {
    "subscribed": SUBSCRIBED, "unsubscribed": UNSUBSCRIBED, "error": ERROR,
    "orderbook_snapshot": ORDERBOOK_SNAPSHOT, "orderbook_delta": ORDERBOOK_DELTA, "ticker": TICKER_MESSAGE,
    "trade": TRADE, "fill": FILL, "market_lifecycle_v2": LIFECYCLE, "user_order": USER_ORDER,
}

# Fields the exchange sends that the document does not declare, each with its reason. None today.
UNDECLARED_ALLOWED: dict[tuple[str, str], str] = {}
# Where the exchange knowingly departs from a documented constraint, with the reason.
DOC_DEVIATIONS: dict[tuple[str, str], str] = {
    ("unsubscribed", "seq"): "0 for a subscription that numbered no message (ticker, fill and user_order messages "
                             "carry no seq; the document's minimum is 1 and it does not say what Kalshi sends then)",
}

# ------------------------------------------------------------------------------------------ validation


def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


def _rfc3339(value: object) -> bool:
    if isinstance(value, str):
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value)
    return True


FORMATS = FormatChecker(formats=())
FORMATS.checks("uuid", raises=ValueError)(_uuid)
FORMATS.checks("date-time", raises=ValueError)(_rfc3339)


def schema_of(frame: dict[str, Any], *, command: bool = False) -> tuple[str, dict[str, Any]]:
    if command:
        name = frame.get("cmd")
        assert name in COMMANDS, f"our client sent a command the document does not have: {frame}"
        return str(name), COMMANDS[str(name)]
    kind = frame.get("type")
    if kind == "ok":
        return ("ok(list)", OK_LIST) if isinstance(frame.get("msg"), list) else ("ok", OK_UPDATE)
    assert kind in MESSAGES, f"the exchange sent a message type the document does not have: {frame}"
    return str(kind), MESSAGES[str(kind)]


def undeclared(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Paths of the fields in `value` its schema does not declare (recursively)."""
    out: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                out.append(path + key)
            else:
                out.extend(undeclared(schema["properties"][key], item, f"{path}{key}."))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            out.extend(undeclared(schema["items"], item, path))
    return out


def problems(frame: dict[str, Any], *, command: bool = False) -> list[str]:
    """Everything wrong with one frame: schema errors (less documented deviations) and undeclared fields."""
    name, schema = schema_of(frame, command=command)
    found = []
    for err in Draft202012Validator(schema, format_checker=FORMATS).iter_errors(frame):
        where = ".".join(str(p) for p in err.absolute_path)
        if (name, where) in DOC_DEVIATIONS:
            continue
        found.append(f"{name} {where or '<frame>'}: {err.message}")
    for field in undeclared(schema, frame):
        if (name, field) not in UNDECLARED_ALLOWED:
            found.append(f"{name}: `{field}` is not declared in the document")
    return found


def strip(schema: dict[str, Any], value: Any) -> Any:
    """`value` reduced to the fields its schema declares."""
    if isinstance(value, dict) and "properties" in schema:
        return {k: strip(schema["properties"][k], v) for k, v in value.items() if k in schema["properties"]}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [strip(schema["items"], v) for v in value]
    return value


# a ticker frame with every field the document declares (the document's own example market)
TICKER_FRAME = {"type": "ticker", "sid": 3, "msg": {
    "market_id": "9b0f6b43-5b68-4f9f-9f02-9b0b2d7c1d21", "market_ticker": "FED-23DEC-T3.00", "price_dollars": "0.4800",
    "yes_bid_dollars": "0.4500", "yes_ask_dollars": "0.5300", "volume_fp": "33896.00", "open_interest_fp": "20.00",
    "dollar_volume": 16948, "dollar_open_interest": 10, "yes_bid_size_fp": "300.00", "yes_ask_size_fp": "150.00",
    "last_trade_size_fp": "25.00", "ts": 1669149841, "ts_ms": 1669149841123, "time": "2022-11-22T20:44:01.123Z"}}


def test_the_schemas_are_valid_json_schema_and_catch_what_they_should() -> None:
    for schema in (*COMMANDS.values(), *MESSAGES.values(), OK_UPDATE, OK_LIST):
        Draft202012Validator.check_schema(schema)
    good = copy.deepcopy(TICKER_FRAME)
    assert problems(good) == []
    legacy = copy.deepcopy(good)
    legacy["msg"]["yes_bid"] = 45  # an integer-cents twin, as the exchange used to send
    assert problems(legacy) == ["ticker: `msg.yes_bid` is not declared in the document"]
    for change in ({"yes_bid_dollars": 0.45}, {"ts_ms": "soon"}, {"time": "2022-11-22 20:44"}, {"market_id": "x"}):
        bad = copy.deepcopy(good)
        bad["msg"].update(change)
        assert problems(bad), change
    bad = copy.deepcopy(good)
    del bad["msg"]["last_trade_size_fp"]
    assert problems(bad)
    settled = {"type": "market_lifecycle_v2", "sid": 1, "seq": 4,
               "msg": {"market_ticker": "T", "event_type": "settled", "result": "yes"}}
    assert problems(settled)  # result only with `determined`
    assert problems({"type": "error", "id": 3, "msg": {"code": 16, "msg": "Market not found"}})  # retired code


# ------------------------------------------------------------------------------------------ driving the exchange


async def _recv(ws: Any, timeout: float = 2.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def _drain(ws: Any, quiet: float = 0.8) -> list[dict[str, Any]]:
    out = []
    while True:
        try:
            out.append(await _recv(ws, quiet))
        except TimeoutError:
            return out


async def _send(ws: Any, command: dict[str, Any]) -> None:
    await ws.send(json.dumps(command))


async def test_every_message_the_exchange_sends_is_in_the_document(
        local_exchange: LocalExchange, sign: Callable[..., dict[str, str]], exchange_http: httpx.Client) -> None:
    lx = local_exchange
    ne, buf = lx.tickers
    lx.counterparty_order(ne, "no", "buy", 10, "0.55")
    lx.counterparty_order(ne, "yes", "buy", 4, "0.40")
    lx.counterparty_order(buf, "yes", "buy", 2, "0.10")  # BUF: a book with one side only
    frames: list[dict[str, Any]] = []
    mine = await websockets.connect(lx.ws_url, additional_headers=sign("GET", WS_PATH))
    try:
        await _send(mine, {"id": 1, "cmd": "subscribe", "params": {
            "channels": ["orderbook_delta", "ticker", "trade", "fill", "user_orders", "market_lifecycle_v2"],
            "market_tickers": [ne]}})
        frames += await _drain(mine)
        sids = {f["msg"]["channel"]: f["msg"]["sid"] for f in frames if f["type"] == "subscribed"}
        assert len(sids) == 6
        # quotes move; our own order crosses a resting one (trade, fills, user orders, our delta); one rests and is
        # canceled
        lx.counterparty_order(ne, "yes", "buy", 3, "0.42")
        lx.counterparty_order(ne, "no", "buy", 2, "0.56")
        exchange_http.post("/portfolio/orders", json={"ticker": ne, "side": "yes", "action": "buy", "count": 3,
                                                      "yes_price": 45, "client_order_id": "contract-taker"})
        resting = exchange_http.post("/portfolio/orders", json={
            "ticker": ne, "side": "yes", "action": "buy", "count": 2, "yes_price": 30,
            "client_order_id": "contract-resting"}).json()["order"]
        exchange_http.delete(f"/portfolio/orders/{resting['order_id']}")
        # a second market joins the book subscription (its snapshot: YES side only), then an empty one
        await _send(mine, {"id": 2, "cmd": "update_subscription", "params": {
            "sids": [sids["orderbook_delta"]], "market_tickers": [buf], "action": "add_markets"}})
        lx.create_market("KXNFLGAME-25OCT05-NEBUF-TIE", event_ticker=lx.event_ticker, title="Tie?")
        tie = "KXNFLGAME-25OCT05-NEBUF-TIE"
        await _send(mine, {"id": 3, "cmd": "update_subscription", "params": {
            "sid": sids["orderbook_delta"], "market_ticker": tie, "action": "add_markets"}})
        frames += await _drain(mine)
        # lifecycle: paused, resumed, closed early; NE determined and settled before its close
        lx.admin.set_status(tie, "inactive")
        lx.admin.set_status(tie, "active")
        lx.admin.close_market(tie)
        lx.settle(ne, "1")
        await _send(mine, {"id": 4, "cmd": "update_subscription", "params": {
            "sids": [sids["orderbook_delta"]], "market_tickers": [buf], "action": "delete_markets"}})
        await _send(mine, {"id": 5, "cmd": "list_subscriptions"})
        await _send(mine, {"id": 6, "cmd": "unsubscribe", "params": {"sids": [sids["orderbook_delta"]]}})
        await _send(mine, {"id": 7, "cmd": "unsubscribe", "params": {"sids": [sids["ticker"]]}})
        # every refusal the exchange answers
        for command in (
            {"id": 10, "cmd": "subscribe", "params": {"channels": ["no_such_channel"]}},  # 8
            {"id": 11, "cmd": "unsubscribe", "params": {"sids": [999]}},  # 7
            {"id": 12, "cmd": "subscribe"},  # 2
            {"id": 13, "cmd": "subscribe", "params": {}},  # 3
            {"id": 14, "cmd": "unsubscribe", "params": {}},  # 4
            {"id": 15, "cmd": "frobnicate", "params": {}},  # 5
            {"id": 16, "cmd": "update_subscription", "params": {"sids": [1, 2], "action": "add_markets"}},  # 12
            {"id": 17, "cmd": "update_subscription", "params": {"sid": sids["fill"], "action": "get_snapshot",
                                                                "market_tickers": [buf]}},  # 13 (not served)
            {"id": 18, "cmd": "update_subscription", "params": {"sid": sids["fill"], "market_tickers": [buf]}},  # 15
            {"id": 19, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}},  # 14
            {"id": 20, "cmd": "subscribe", "params": {"channels": ["ticker"], "market_tickers": ["KXNOPE-1-X"]}},  # 11
        ):
            await _send(mine, command)
        await mine.send("{not json")  # 1
        frames += await _drain(mine)
    finally:
        await mine.close()

    bad = {i: p for i, f in enumerate(frames) if (p := problems(f))}
    assert not bad, "\n".join(f"{frames[i]}\n  -> {p}" for i, p in bad.items())
    kinds = {schema_of(f)[0] for f in frames}
    assert kinds >= {"subscribed", "orderbook_snapshot", "orderbook_delta", "ticker", "trade", "fill", "user_order",
                     "market_lifecycle_v2", "ok", "ok(list)", "unsubscribed", "error"}, kinds
    lifecycle = [f["msg"]["event_type"] for f in frames if f["type"] == "market_lifecycle_v2"]
    assert set(lifecycle) == {"created", "activated", "deactivated", "close_date_updated", "determined", "settled"}
    # 9 (authentication required) needs an unsigned connection: see the next test
    assert {f["msg"]["code"] for f in frames if f["type"] == "error"} == {1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 14, 15}
    snapshots = {f["msg"]["market_ticker"]: f["msg"] for f in frames if f["type"] == "orderbook_snapshot"}
    assert {"yes_dollars_fp", "no_dollars_fp"} <= set(snapshots[ne]) and "no_dollars_fp" not in snapshots[buf]
    assert "yes_dollars_fp" not in snapshots[tie]  # an empty side's key is left out
    deltas = [f["msg"] for f in frames if f["type"] == "orderbook_delta"]
    assert {d.get("client_order_id") for d in deltas} >= {None, "contract-resting"}  # ours named, others not
    assert {o["msg"]["status"] for o in frames if o["type"] == "user_order"} >= {"executed", "resting", "canceled"}
    fills = [f["msg"] for f in frames if f["type"] == "fill"]
    assert {(f["client_order_id"], f["outcome_side"], f["book_side"], f["is_taker"]) for f in fills} == {
        ("contract-taker", "yes", "bid", True)}  # it took two levels: 2 at $0.44, 1 at $0.45
    assert sum(Decimal(f["count_fp"]) for f in fills) == 3 and fills[-1]["post_position_fp"] == "3.00"
    determined = next(f["msg"] for f in frames if f["type"] == "market_lifecycle_v2"
                      and f["msg"]["event_type"] == "determined")
    assert (determined["market_ticker"], determined["result"], determined["settlement_value"]) == (ne, "yes", "1.0000")
    # only the channels Kalshi numbers carry `seq` (the schemas let no other data message have one)
    for f in frames:
        if f["type"] in ("orderbook_snapshot", "orderbook_delta", "trade", "market_lifecycle_v2"):
            assert isinstance(f.get("seq"), int), f
        elif f["type"] in ("ticker", "fill", "user_order", "subscribed", "error"):
            assert "seq" not in f, f
    for sid in {f["sid"] for f in frames if f["type"] in ("trade", "market_lifecycle_v2")}:
        seqs = [f["seq"] for f in frames if f.get("sid") == sid and f["type"] in ("trade", "market_lifecycle_v2")]
        assert seqs == list(range(1, len(seqs) + 1)), (sid, seqs)


async def test_the_handshake_must_be_signed(local_exchange: LocalExchange,
                                           unsigned_ws_exchange: LocalExchange) -> None:
    """The document requires the signed handshake on every connection: unsigned, the exchange answers the upgrade
    with 401 and never accepts. With the opt-out (`--allow-unsigned-ws`) an unsigned connection's refusal of a
    private channel is the documented error 9."""
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(local_exchange.ws_url)
    assert info.value.response.status_code == 401
    public = await websockets.connect(unsigned_ws_exchange.ws_url)
    try:
        await _send(public, {"id": 1, "cmd": "subscribe", "params": {"channels": ["fill"]}})
        frames = await _drain(public)
    finally:
        await public.close()
    assert [f["msg"]["code"] for f in frames if f["type"] == "error"] == [9]
    bad = {i: p for i, f in enumerate(frames) if (p := problems(f))}
    assert not bad, bad


# ------------------------------------------------------------------------------------------ our client, through a relay


class Relay:
    """A WebSocket relay on 127.0.0.1 between our client and the exchange: records every command the client sends
    and every frame the exchange sends, and hands the client each frame reduced to its documented fields. The
    signed handshake headers are passed on (the path is the same, so the signature holds)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.commands: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        self.url = ""
        self._server: Any = None

    async def __aenter__(self) -> Relay:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}{WS_PATH}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, client: Any) -> None:
        headers = [(k, v) for k, v in client.request.headers.raw_items() if k.lower().startswith("kalshi-access-")]
        async with connect(self.upstream, additional_headers=headers) as venue:
            async def upstream() -> None:
                async for text in client:
                    self.commands.append(json.loads(text))
                    await venue.send(text)

            async def downstream() -> None:
                async for text in venue:
                    frame = json.loads(text)
                    self.frames.append(frame)
                    await client.send(json.dumps(strip(schema_of(frame)[1], frame)))

            tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await task


class Alerts:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str, details: Any = None,
                    **kw: Any) -> int:
        self.alerts.append({"type": alert_type, "message": message, "details": details})
        return len(self.alerts)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout} s") from None


async def run_client_session(lx: LocalExchange, exchange_http: httpx.Client) -> tuple[Relay, StreamRecorder, Alerts]:
    """Our client's whole session through the relay: subscribe, books, quotes, a fill and its trade, a market added
    and dropped, a book resync, a settlement. Returns what the relay saw and what the client emitted."""
    ne, buf = lx.tickers
    lx.counterparty_order(ne, "yes", "buy", 5, "0.40")
    lx.counterparty_order(ne, "no", "buy", 6, "0.55")
    events, alerts = StreamRecorder(), Alerts()
    signer = KalshiSigner.from_files(lx.key_id, lx.private_key_path)
    async with Relay(lx.ws_url) as relay:
        ws = ViewWebSocket(relay.url, signer=signer, tickers=[ne], on_event=events, alerts=alerts,
                           reconnect_base=0.05, reconnect_max=0.2)
        async with ws:
            await ws.wait_for_state(ConnectionState.SUBSCRIBED)
            await until(lambda: ws.book(ne) is not None, "NE's book from its snapshot")
            lx.counterparty_order(ne, "yes", "buy", 3, "0.42")
            await until(lambda: any(e.quote.ticker == ne and e.quote.yes_bid == Decimal("0.42")
                                    for e in events.of(TickerUpdated)), "the new quote")
            order = exchange_http.post("/portfolio/orders", json={
                "ticker": ne, "side": "yes", "action": "buy", "count": 4, "yes_price": 45,
                "client_order_id": "contract-client"}).json()["order"]
            await until(lambda: bool(events.of(FillReceived)) and bool(events.of(TradeOccurred)), "fill and trade")
            fill = events.of(FillReceived)[0].fill
            assert (fill.order_id, fill.count, fill.yes_price, fill.side.value, fill.action.value, fill.is_taker,
                    fill.client_order_id) == (order["order_id"], 4, Decimal("0.45"), "yes", "buy", True,
                                              "contract-client")
            assert fill.fee is not None and fill.fee > 0 and fill.created_time is not None
            trade = events.of(TradeOccurred)[0].trade
            assert (trade.ticker, trade.count, trade.yes_price, trade.no_price, trade.taker_side) == (
                ne, 4, Decimal("0.45"), Decimal("0.55"), "yes")
            await until(lambda: (b := ws.book(ne)) is not None and b.yes_ask == Decimal("0.45")
                        and b.no_bids[0].quantity == 2, "the book after the fill")
            rest_book = exchange_http.get(f"/markets/{ne}/orderbook").json()["orderbook_fp"]
            book = ws.book(ne)
            assert book is not None
            assert [[f"{lv.price:.4f}", f"{lv.quantity:.2f}"] for lv in reversed(book.yes_bids)] == \
                rest_book["yes_dollars"]
            # a market joins (new subscribe commands) and leaves (update_subscription delete_markets)
            await ws.add_markets([buf])
            await until(lambda: MarketsSubscribed((buf,)) in events.events, "BUF announced")
            await until(lambda: ws.book(buf) is not None, "BUF's (empty) book")
            await ws.remove_markets([buf])
            # a sequence gap: the client resubscribes the book (unsubscribe + subscribe)
            assert lx.admin.skip_ws_seq(1) == 1
            lx.counterparty_order(ne, "yes", "buy", 1, "0.30")
            lx.counterparty_order(ne, "yes", "buy", 1, "0.31")
            await until(lambda: bool(events.of(BookResync)) and ws.resyncs == 1, "the resync")
            await until(lambda: (b := ws.book(ne)) is not None and Decimal("0.31") in [lv.price for lv in b.yes_bids],
                        "the fresh snapshot")
            # settlement: Kalshi sends result and value with `determined` only; `settled` carries them here
            lx.settle(ne, "1")
            await until(lambda: any(e.event_type == "settled" for e in events.of(MarketLifecycle)), "settled")
            settled = next(e for e in events.of(MarketLifecycle) if e.event_type == "settled")
            assert (settled.ticker, settled.status, settled.result, settled.settlement_value) == (
                ne, MarketStatus.SETTLED, "yes", Decimal("1.0000"))
            await asyncio.sleep(0.2)
    return relay, events, alerts


async def test_our_client_sends_documented_commands_and_works_on_documented_fields_only(
        local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    relay, events, alerts = await run_client_session(local_exchange, exchange_http)
    bad = {i: p for i, c in enumerate(relay.commands) if (p := problems(c, command=True))}
    assert not bad, "\n".join(f"{relay.commands[i]}\n  -> {p}" for i, p in bad.items())
    sent = {c["cmd"] for c in relay.commands}
    assert sent == {"subscribe", "unsubscribe", "update_subscription"}, sent
    lifecycle = [c for c in relay.commands if "market_lifecycle_v2" in c.get("params", {}).get("channels", [])]
    assert lifecycle and all("market_tickers" not in c["params"] for c in lifecycle)  # DOC: no market filter there
    assert not [p for f in relay.frames for p in problems(f)], "the exchange sent an undocumented frame"
    errors = [e for e in events.of(StreamError)]
    assert not alerts.alerts and not [e for e in errors if e.code is None], (alerts.alerts, errors)


# ------------------------------------------------------------------------------------------ rejection of missing fields

# For each message type our client reads: groups of documented-required fields it reads. Removing every field of a
# group must make the client reject the frame; removing one field of a larger group must not (an alternative form).
_ENVELOPE: list[tuple[str, ...]] = [("type",), ("msg",)]
REQUIRED_READS: dict[str, list[tuple[str, ...]]] = {
    "subscribed": [*_ENVELOPE, ("msg.sid",), ("msg.channel",)],
    "error": [*_ENVELOPE, ("msg.code",)],
    "orderbook_snapshot": [*_ENVELOPE, ("sid",), ("seq",), ("msg.market_ticker",)],
    "orderbook_delta": [*_ENVELOPE, ("sid",), ("seq",), ("msg.market_ticker",), ("msg.price_dollars",),
                        ("msg.delta_fp",), ("msg.side",)],
    "ticker": [*_ENVELOPE, ("msg.market_ticker",), ("msg.yes_bid_dollars",), ("msg.yes_ask_dollars",)],
    "trade": [*_ENVELOPE, ("msg.trade_id",), ("msg.market_ticker",), ("msg.yes_price_dollars",), ("msg.count_fp",),
              ("msg.taker_outcome_side", "msg.taker_side"), ("msg.ts_ms", "msg.ts")],
    "fill": [*_ENVELOPE, ("msg.trade_id",), ("msg.order_id",), ("msg.market_ticker",), ("msg.is_taker",),
             ("msg.side",), ("msg.action",), ("msg.yes_price_dollars",), ("msg.count_fp",), ("msg.fee_cost",)],
    "market_lifecycle_v2": [*_ENVELOPE, ("msg.market_ticker",), ("msg.event_type",)],
}
# Documented-required fields the client reads without requiring them, each with the reason.
_QUOTE = ("a quote is usable without it; ingestion's fast path (ingest.market_feed.fast_ticker) and the backtest's "
          "recording reader read quotes without it and must read every frame as parse_ticker does")
READ_OPTIONAL: dict[tuple[str, str], str] = {
    **{("ticker", f"msg.{f}"): _QUOTE for f in ("price_dollars", "volume_fp", "open_interest_fp", "yes_bid_size_fp",
                                                 "yes_ask_size_fp", "ts_ms", "ts")},
    ("ticker", "msg.time"): "ingestion reads the millisecond time from it when present (frame_time), else ts_ms/ts",
    ("trade", "msg.no_price_dollars"): "1 - the YES price when absent (a binary market)",
    ("fill", "msg.ts_ms"): "one parser reads REST fills too, and OpenAPI v3.13 does not require a fill's time",
    ("fill", "msg.ts"): "the same",
}
# Documented-required fields the client does not read at all.
NOT_READ: dict[str, set[str]] = {
    "subscribed": set(),
    "error": {"msg.msg"},  # the text is shown when present, the message object itself otherwise
    "orderbook_snapshot": {"msg.market_id"},
    "orderbook_delta": {"msg.market_id"},
    "ticker": {"sid", "msg.market_id", "msg.dollar_volume", "msg.dollar_open_interest", "msg.last_trade_size_fp"},
    "trade": {"sid", "seq", "msg.taker_book_side", "msg.is_block_trade"},
    "fill": {"sid", "msg.exchange_index", "msg.outcome_side", "msg.book_side", "msg.post_position_fp",
             "msg.purchased_side"},
    "market_lifecycle_v2": {"sid", "seq"},  # the client keeps no lifecycle sequence (ingestion counts its gaps)
}


def required_fields(schema: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for name in schema.get("required", ()):
        out.add(prefix + name)
        sub = schema["properties"][name]
        if sub.get("type") == "object":
            out |= required_fields(sub, f"{prefix}{name}.")
    return out


def without(frame: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    out = copy.deepcopy(frame)
    for path in fields:
        *parents, last = path.split(".")
        node = out
        for p in parents:
            node = node[p]
        node.pop(last, None)
    return out


def test_every_required_field_is_classified() -> None:
    for kind, groups in REQUIRED_READS.items():
        classified = {f for g in groups for f in g} | NOT_READ[kind] | {f for k, f in READ_OPTIONAL if k == kind}
        assert classified == required_fields(MESSAGES[kind]), (kind, classified ^ required_fields(MESSAGES[kind]))


def _typed(kind: str) -> type | None:
    return {"ticker": TickerUpdated, "trade": TradeOccurred, "fill": FillReceived,
            "market_lifecycle_v2": MarketLifecycle, "orderbook_snapshot": BookUpdated,
            "orderbook_delta": BookUpdated}.get(kind)


def feed(frames: list[dict[str, Any]], tickers: list[str]) -> tuple[StreamRecorder, Alerts]:
    """Frames into a fresh client's reader (its real `_on_raw`); what it emitted and the alerts it raised."""
    events, alerts = StreamRecorder(), Alerts()
    ws = KalshiWebSocket("ws://127.0.0.1:9/unused", tickers=tickers, on_event=events, alerts=alerts)
    for frame in frames:
        ws._on_raw(json.dumps(frame))
    return events, alerts


async def test_a_frame_missing_a_required_field_the_client_reads_is_rejected_loudly(
        local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    relay, _, _ = await run_client_session(local_exchange, exchange_http)
    seen = [strip(schema_of(f)[1], f) for f in relay.frames]  # real frames, documented fields only
    by_kind: dict[str, dict[str, Any]] = {}
    for f in seen:
        by_kind.setdefault(schema_of(f)[0], f)
    error = {"id": 9, "type": "error", "msg": {"code": 8, "msg": "Unknown channel name"}}  # none in the session
    by_kind.setdefault("error", error)
    assert set(REQUIRED_READS) <= set(by_kind), set(REQUIRED_READS) - set(by_kind)
    snapshot = by_kind["orderbook_snapshot"]
    book_sub = {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": snapshot["sid"]}}
    delta = next(f for f in seen if f["type"] == "orderbook_delta" and f["sid"] == snapshot["sid"]
                 and f["msg"]["market_ticker"] == snapshot["msg"]["market_ticker"])
    delta = {**delta, "seq": snapshot["seq"] + 1}

    def run(kind: str, frame: dict[str, Any]) -> tuple[StreamRecorder, Alerts]:
        ticker = frame.get("msg", {}).get("market_ticker", "T") if isinstance(frame.get("msg"), dict) else "T"
        before = [book_sub, snapshot] if kind == "orderbook_delta" else [book_sub] if kind == "orderbook_snapshot" \
            else []
        return feed([*before, frame], [ticker])

    def accepted(kind: str, events: StreamRecorder, alerts: Alerts) -> bool:
        typed = _typed(kind)
        got = len(events.of(typed)) if typed else 0
        expected = 2 if kind == "orderbook_delta" else 1  # the snapshot before the delta counts once
        clean = not alerts.alerts and not events.of(BookResync) and not [e for e in events.of(StreamError)
                                                                         if e.code is None]
        if kind in ("subscribed", "error"):
            return clean
        return clean and got == expected

    for kind, groups in REQUIRED_READS.items():
        frame = delta if kind == "orderbook_delta" else by_kind[kind]
        events, alerts = run(kind, frame)
        assert accepted(kind, events, alerts), f"{kind}: the intact frame must be read: {frame}"
        for group in groups:
            events, alerts = run(kind, without(frame, group))
            assert not accepted(kind, events, alerts), f"{kind} without {group} was accepted"
            assert any(a["type"] == "venue_schema_error" for a in alerts.alerts), f"{kind} without {group}: no alert"
            typed = _typed(kind)
            if typed is not None:  # nothing reaches the consumer from the broken frame (the delta's snapshot did)
                assert len(events.of(typed)) == (1 if kind == "orderbook_delta" else 0), f"{kind} w/o {group} read"
            if len(group) > 1:  # one of several alternative forms: the others suffice
                for field in group:
                    events, alerts = run(kind, without(frame, [field]))
                    assert accepted(kind, events, alerts), f"{kind} without only {field} must still be read"
        for field in [f for k, f in READ_OPTIONAL if k == kind] + sorted(NOT_READ[kind]):
            events, alerts = run(kind, without(frame, [field]))
            assert accepted(kind, events, alerts), f"{kind} without {field} (not required by us) must be read"
    await asyncio.sleep(0.05)  # the resyncs the broken book frames spawned (no socket: they return at once)


def test_ingestion_reads_a_documented_ticker_frame_on_its_fast_path_and_rejects_a_partial_one() -> None:
    """Kalshi's ticker frames carry no `seq`: ingestion must still take them on its fast path (it looked for
    `"seq"` in the envelope before), read them as the client's parser does, and refuse one without a side."""
    frame = copy.deepcopy(TICKER_FRAME)
    assert problems(frame) == []
    text = json.dumps(frame, separators=(",", ":"))
    events, alerts = StreamRecorder(), Alerts()
    ws = RecordingWebSocket("ws://127.0.0.1:9/unused", tickers=["FED-23DEC-T3.00"], on_event=events,
                            alerts=alerts)
    assert ws._check_sequence(text) == "ticker"
    fast = fast_ticker(text, None)
    full = P.parse_ticker(frame["msg"])
    assert fast is not None and (fast.ticker, fast.yes_bid, fast.yes_ask, fast.last_price, fast.volume,
                                 fast.open_interest) == (full.ticker, full.yes_bid, full.yes_ask, full.last_price,
                                                         full.volume, full.open_interest)
    ws._on_raw(text)
    assert [e.quote.yes_ask for e in events.of(TickerUpdated)] == [Decimal("0.53")] and not alerts.alerts
    ws._on_raw(json.dumps(without(frame, ["msg.yes_ask_dollars"])))
    assert len(events.of(TickerUpdated)) == 1 and [a["type"] for a in alerts.alerts] == ["venue_schema_error"]
    assert [e.code for e in events.of(StreamError)] == [None]


def test_an_older_generation_ticker_is_read_but_never_one_without_both_sides_of_the_quote() -> None:
    """An integer-cents ticker (an older API generation) is still read, but no quote reaches the consumer without
    the market and both sides of the top of the book, in whichever form (it used to be read with a side missing)."""
    events, alerts = feed([{"type": "ticker", "sid": 1, "seq": 1, "msg": {"market_ticker": "T", "yes_bid": 40}}], ["T"])
    assert not events.of(TickerUpdated) and alerts.alerts
    events, alerts = feed([{"type": "ticker", "sid": 1, "msg": {"market_ticker": "T", "yes_bid": 40, "yes_ask": 44}}],
                          ["T"])
    assert [e.quote.yes_ask for e in events.of(TickerUpdated)] == [Decimal("0.44")] and not alerts.alerts
