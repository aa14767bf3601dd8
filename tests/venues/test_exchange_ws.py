"""The exchange's WebSocket API over a real connection: snapshot + deltas, channels, auth, test hooks."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from precog.venues.exchange.auth import generate_key_pair
from venues.conftest import load_private_key, sign_headers

if TYPE_CHECKING:
    from venues.conftest import LocalExchange

WS_PATH = "/trade-api/ws/v2"


async def connect(lx: LocalExchange, sign: Callable[..., dict[str, str]] | None) -> Any:
    headers = sign("GET", WS_PATH) if sign else None
    return await websockets.connect(lx.ws_url, additional_headers=headers)


async def send(ws: Any, cmd_id: int, cmd: str, **params: Any) -> None:
    message: dict[str, Any] = {"id": cmd_id, "cmd": cmd}
    if params:
        message["params"] = params
    await ws.send(json.dumps(message))


async def recv(ws: Any, timeout: float = 2.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def drain(ws: Any, quiet: float = 0.3) -> list[dict[str, Any]]:
    out = []
    while True:
        try:
            out.append(await recv(ws, quiet))
        except TimeoutError:
            return out


def apply_book(book: dict[str, dict[str, int]], msg: dict[str, Any]) -> None:
    if msg["type"] == "orderbook_snapshot":  # an empty side's key is left out, as Kalshi does
        book["yes"] = {p: int(q.split(".")[0]) for p, q in msg["msg"].get("yes_dollars_fp", [])}
        book["no"] = {p: int(q.split(".")[0]) for p, q in msg["msg"].get("no_dollars_fp", [])}
    elif msg["type"] == "orderbook_delta":
        side = book[msg["msg"]["side"]]
        price = msg["msg"]["price_dollars"]
        side[price] = side.get(price, 0) + int(msg["msg"]["delta_fp"].split(".")[0])
        if side[price] == 0:
            del side[price]
        assert side.get(price, 0) >= 0


async def test_snapshot_then_deltas_track_the_book(local_exchange: LocalExchange, sign: Any,
                                                   exchange_http: httpx.Client) -> None:
    lx = local_exchange
    t = lx.tickers[0]
    lx.counterparty_order(t, "no", "buy", 10, "0.55")
    lx.counterparty_order(t, "yes", "buy", 4, "0.40")
    ws = await connect(lx, sign)
    try:
        await send(ws, 1, "subscribe", channels=["orderbook_delta"], market_ticker=t)
        assert (await recv(ws)) == {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}}
        snap = await recv(ws)
        assert snap["type"] == "orderbook_snapshot" and snap["seq"] == 1 and snap["sid"] == 1
        assert snap["msg"]["no_dollars_fp"] == [["0.5500", "10.00"]]
        assert snap["msg"]["yes_dollars_fp"] == [["0.4000", "4.00"]]
        book: dict[str, dict[str, int]] = {}
        apply_book(book, snap)
        rng = random.Random(11)
        mine: list[str] = []
        for _ in range(40):
            r = rng.random()
            if r < 0.45:
                side = rng.choice(("yes", "no"))
                cents = rng.randint(35, 48) if side == "yes" else rng.randint(52, 65)
                lx.counterparty_order(t, side, "buy", rng.randint(1, 8), f"0.{cents}")
            elif r < 0.8:
                body = {"ticker": t, "side": rng.choice(("yes", "no")), "action": "buy",
                        "count": rng.randint(1, 6), "yes_price": rng.randint(40, 60)}
                o = exchange_http.post("/portfolio/orders", json=body).json()["order"]
                if o["status"] == "resting":
                    mine.append(o["order_id"])
            elif mine:
                exchange_http.delete(f"/portfolio/orders/{mine.pop(rng.randrange(len(mine)))}")
        messages = await drain(ws)
        seqs = [m["seq"] for m in messages]
        assert seqs == list(range(2, 2 + len(messages))), "sequence numbers must be consecutive"
        for m in messages:
            apply_book(book, m)
        rest = exchange_http.get(f"/markets/{t}/orderbook").json()["orderbook_fp"]
        assert book["yes"] == {p: int(q.split(".")[0]) for p, q in rest["yes_dollars"]}
        assert book["no"] == {p: int(q.split(".")[0]) for p, q in rest["no_dollars"]}
        # my own deltas carry my client_order_id; the exchange state is conserved
        assert lx.exchange.audit()["imbalance"] == 0
    finally:
        await ws.close()


async def test_an_unsigned_handshake_is_refused_with_401_naming_the_missing_headers(
        local_exchange: LocalExchange, sign: Any) -> None:
    """Kalshi needs a signed handshake on every connection, public channels included; so does the exchange."""
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(local_exchange.ws_url)
    assert info.value.response.status_code == 401
    error = json.loads(info.value.response.body)["error"]
    assert error["code"] == "missing_authentication"
    assert "handshake must be signed" in error["message"]
    assert all(h in error["message"] for h in ("KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP",
                                               "KALSHI-ACCESS-SIGNATURE"))
    assert "--allow-unsigned-ws" in error["details"]
    partial = {"KALSHI-ACCESS-KEY": sign("GET", WS_PATH)["KALSHI-ACCESS-KEY"]}
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(local_exchange.ws_url, additional_headers=partial)
    message = json.loads(info.value.response.body)["error"]["message"]
    assert info.value.response.status_code == 401 and "KALSHI-ACCESS-KEY" not in message
    assert "KALSHI-ACCESS-TIMESTAMP, KALSHI-ACCESS-SIGNATURE" in message
    assert not local_exchange.server.core.hub.connections  # nothing was accepted


async def test_with_the_opt_out_an_unsigned_connection_gets_the_public_channels_only(
        unsigned_ws_exchange: LocalExchange) -> None:
    lx = unsigned_ws_exchange
    t = lx.tickers[0]
    ws = await connect(lx, None)
    try:
        await send(ws, 1, "subscribe", channels=["orderbook_delta"], market_ticker=t)
        err = await recv(ws)
        assert err["type"] == "error" and err["id"] == 1 and err["msg"]["code"] == 9
        await send(ws, 5, "subscribe", channels=["fill"])
        assert (await recv(ws))["msg"]["code"] == 9
        await send(ws, 2, "subscribe", channels=["ticker", "trade", "market_lifecycle_v2"], market_tickers=[t])
        subs = [await recv(ws) for _ in range(3)]
        assert [s["msg"]["channel"] for s in subs] == ["ticker", "trade", "market_lifecycle_v2"]
        lx.counterparty_order(t, "no", "buy", 5, "0.55")
        admin_acct = lx.admin.create_account("100")
        lx.admin.place_order(admin_acct["user_id"], t, "yes", "buy", 2, price_dollars="0.45")
        got = {m["type"]: m for m in await drain(ws)}
        trade = got["trade"]["msg"]
        assert (trade["market_ticker"], trade["count_fp"], trade["yes_price_dollars"], trade["taker_outcome_side"],
                trade["taker_book_side"]) == (t, "2.00", "0.4500", "yes", "bid")
        tick = got["ticker"]["msg"]
        assert tick["market_ticker"] == t and tick["yes_ask_dollars"] == "0.4500" and tick["volume_fp"] == "2.00"
        assert "seq" not in got["ticker"] and got["trade"]["seq"] >= 1  # only sequenced channels number messages
        lx.settle(t, "0.25")  # before its close time: the close moves to now, then the result, then the payout
        lifecycle = [m["msg"] for m in await drain(ws) if m["type"] == "market_lifecycle_v2"]
        assert [m["event_type"] for m in lifecycle] == ["close_date_updated", "determined", "settled"]
        assert lifecycle[1]["settlement_value"] == "0.2500" and lifecycle[1]["result"] == "scalar"
        assert "result" not in lifecycle[2] and "settled_ts" in lifecycle[2]  # Kalshi: result with `determined` only
        for code, channels in ((8, ["no_such_channel"]), (8, ["trades"]), (8, ["ticker_v2"])):
            await send(ws, 3, "subscribe", channels=channels)  # names Kalshi's document does not list are refused
            assert (await recv(ws))["msg"]["code"] == code
        await send(ws, 4, "frobnicate", params={})
        assert (await recv(ws))["msg"]["code"] == 5
    finally:
        await ws.close()


async def test_fills_are_private(local_exchange: LocalExchange, sign: Any, exchange_http: httpx.Client,
                                 tmp_path: Path) -> None:
    lx = local_exchange
    t = lx.tickers[1]
    other_key, other_path, other_pem = generate_key_pair(tmp_path)  # another account, with its own key
    lx.admin.create_account("100", public_key_pem=other_pem.decode(), key_id=other_key)
    mine = await connect(lx, sign)
    other = await websockets.connect(lx.ws_url, additional_headers=sign_headers(
        load_private_key(other_path), other_key, "GET", WS_PATH))
    try:
        for ws in (mine, other):
            await send(ws, 1, "subscribe", channels=["fill", "user_orders"])
            assert [(await recv(ws))["msg"]["channel"] for _ in range(2)] == ["fill", "user_orders"]
        lx.counterparty_order(t, "no", "buy", 3, "0.70")
        exchange_http.post("/portfolio/orders", json={"ticker": t, "side": "yes", "action": "buy", "count": 3,
                                                      "yes_price": 30, "client_order_id": "ws-fill"})
        msgs = await drain(mine)
        fills = [m["msg"] for m in msgs if m["type"] == "fill"]
        assert len(fills) == 1
        f = fills[0]
        assert (f["client_order_id"], f["count_fp"], f["yes_price_dollars"], f["is_taker"], f["post_position_fp"],
                f["outcome_side"]) == ("ws-fill", "3.00", "0.3000", True, "3.00", "yes")
        orders = [m["msg"] for m in msgs if m["type"] == "user_order"]
        assert orders and orders[-1]["client_order_id"] == "ws-fill" and orders[-1]["status"] == "executed"
        assert [m["type"] for m in await drain(other)] == []  # another account's fills and orders stay private
    finally:
        await mine.close()
        await other.close()


async def test_subscription_management(local_exchange: LocalExchange, sign: Any) -> None:
    lx = local_exchange
    a, b = lx.tickers
    lx.counterparty_order(b, "yes", "buy", 2, "0.10")
    ws = await connect(lx, sign)
    try:
        await send(ws, 1, "subscribe", channels=["orderbook_delta"], market_ticker=a)
        await recv(ws)
        await recv(ws)
        await send(ws, 2, "update_subscription", sids=[1], market_tickers=[b], action="add_markets")
        ok = await recv(ws)
        assert ok["type"] == "ok" and ok["msg"]["market_tickers"] == sorted([a, b])
        snap = await recv(ws)
        assert snap["type"] == "orderbook_snapshot" and snap["msg"]["market_ticker"] == b and snap["seq"] == 2
        assert snap["msg"]["yes_dollars_fp"] == [["0.1000", "2.00"]] and "no_dollars_fp" not in snap["msg"]
        await send(ws, 3, "list_subscriptions")
        listed = await recv(ws)
        assert listed == {"id": 3, "type": "ok", "msg": [{"channel": "orderbook_delta", "sid": 1}]}
        await send(ws, 4, "update_subscription", sids=[1], market_tickers=[a], action="delete_markets")
        assert (await recv(ws))["msg"]["market_tickers"] == [b]
        lx.counterparty_order(a, "yes", "buy", 1, "0.20")  # no longer subscribed: no delta
        lx.counterparty_order(b, "yes", "buy", 1, "0.20")
        msgs = await drain(ws)
        assert [m["msg"]["market_ticker"] for m in msgs] == [b]
        await send(ws, 5, "unsubscribe", sids=[1])
        assert (await recv(ws))["type"] == "unsubscribed"
        await send(ws, 6, "unsubscribe", sids=[1])
        assert (await recv(ws))["msg"]["code"] == 7
        await send(ws, 7, "subscribe", channels=["orderbook_delta"], market_ticker="KXNOPE-1-X")
        err = await recv(ws)
        assert err["type"] == "error" and err["msg"]["code"] == 11  # "Market not found" (16) is retired
        await send(ws, 8, "subscribe", channels=["orderbook_delta"])
        assert (await recv(ws))["msg"]["code"] == 14  # Market Ticker required
    finally:
        await ws.close()


async def test_skip_seq_hook_makes_a_gap(local_exchange: LocalExchange, sign: Any) -> None:
    lx = local_exchange
    t = lx.tickers[0]
    ws = await connect(lx, sign)
    try:
        await send(ws, 1, "subscribe", channels=["orderbook_delta"], market_ticker=t)
        await recv(ws)
        assert (await recv(ws))["seq"] == 1
        lx.counterparty_order(t, "yes", "buy", 1, "0.20")
        assert (await recv(ws))["seq"] == 2
        assert lx.admin.skip_ws_seq() == 1
        lx.counterparty_order(t, "yes", "buy", 1, "0.21")
        lx.counterparty_order(t, "yes", "buy", 1, "0.22")
        assert [m["seq"] for m in await drain(ws)] == [4, 5]  # 3 never arrives: the client must resync
    finally:
        await ws.close()


async def test_drop_hook_cuts_connections(local_exchange: LocalExchange, sign: Any) -> None:
    ws = await connect(local_exchange, sign)
    await send(ws, 1, "subscribe", channels=["ticker"])
    await recv(ws)
    assert local_exchange.admin.drop_websockets() == 1
    with pytest.raises(ConnectionClosed):
        for _ in range(5):
            await recv(ws, 2.0)


async def test_bad_handshake_signature_is_refused_with_401(local_exchange: LocalExchange, sign: Any) -> None:
    headers = sign("GET", "/trade-api/v2/portfolio/balance")  # signed for another path
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(local_exchange.ws_url, additional_headers=headers)
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body)["error"]["code"] == "invalid_signature"
