"""The exchange's REST API over real HTTP on 127.0.0.1, signed with a key generated for the test session."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from precog.venues.exchange.admin_client import SimAdminClient, SimAdminError
from precog.venues.exchange.auth import generate_key_pair
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.runner import ExchangeServer

if TYPE_CHECKING:
    from conftest import LocalExchange


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] and body["error"]["message"]
    return body["error"]


# ---------------------------------------------------------------- public market data


def test_market_data_needs_no_key(local_exchange: LocalExchange, public_http: httpx.Client) -> None:
    assert public_http.get("/exchange/status").json() == {
        "exchange_active": True, "trading_active": True, "exchange_estimated_resume_time": None}
    series = public_http.get("/series").json()["series"]
    assert [s["ticker"] for s in series] == ["KXNFLGAME"] and series[0]["fee_type"] == "quadratic"
    assert public_http.get("/series/KXNFLGAME").json()["series"]["title"] == "Pro Football Game"
    market = public_http.get(f"/markets/{local_exchange.tickers[0]}").json()["market"]
    assert market["status"] == "active" and market["yes_sub_title"] == "New England"
    # both generations of every number
    assert market["yes_bid"] == 0 and market["yes_bid_dollars"] == "0.0000"
    assert market["yes_ask"] == 100 and market["yes_ask_dollars"] == "1.0000"
    assert market["volume"] == 0 and market["volume_fp"] == "0.00" and market["notional_value_dollars"] == "1.0000"
    event = public_http.get(f"/events/{local_exchange.event_ticker}", params={"with_nested_markets": "true"}).json()
    assert [m["ticker"] for m in event["event"]["markets"]] == list(local_exchange.tickers)
    assert [m["ticker"] for m in event["markets"]] == list(local_exchange.tickers)
    events = public_http.get("/events", params={"series_ticker": "KXNFLGAME", "status": "open"}).json()
    assert [e["event_ticker"] for e in events["events"]] == [local_exchange.event_ticker] and events["cursor"] == ""


def test_markets_paging_and_filters(local_exchange: LocalExchange, public_http: httpx.Client) -> None:
    for i in range(5):
        local_exchange.create_market(f"KXPAGE-25JAN01-M{i}")
    local_exchange.admin.close_market("KXPAGE-25JAN01-M4")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"series_ticker": "KXPAGE", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = public_http.get("/markets", params=params).json()
        seen += [m["ticker"] for m in body["markets"]]
        pages += 1
        cursor = body["cursor"]
        if not cursor:
            break
    assert seen == [f"KXPAGE-25JAN01-M{i}" for i in range(5)] and pages == 3
    open_now = public_http.get("/markets", params={"series_ticker": "KXPAGE", "status": "open"}).json()["markets"]
    assert len(open_now) == 4
    active = public_http.get("/markets", params={"series_ticker": "KXPAGE", "status": "active"}).json()["markets"]
    assert len(active) == 4
    closed = public_http.get("/markets", params={"status": "closed"}).json()["markets"]
    assert [m["ticker"] for m in closed] == ["KXPAGE-25JAN01-M4"] and closed[0]["status"] == "closed"
    picked = public_http.get("/markets", params={"tickers": "KXPAGE-25JAN01-M1,KXPAGE-25JAN01-M3"}).json()
    assert [m["ticker"] for m in picked["markets"]] == ["KXPAGE-25JAN01-M1", "KXPAGE-25JAN01-M3"]
    by_event = public_http.get("/markets", params={"event_ticker": local_exchange.event_ticker}).json()["markets"]
    assert {m["ticker"] for m in by_event} == set(local_exchange.tickers)
    bad = public_http.get("/markets", params={"status": "sleeping"})
    assert bad.status_code == 400 and "status" in error_of(bad)["message"]
    assert public_http.get("/markets", params={"cursor": "garbage!"}).status_code == 400


def test_orderbook_depth_and_both_forms(local_exchange: LocalExchange, public_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    for cents in (40, 41, 42):
        local_exchange.counterparty_order(t, "yes", "buy", 10, f"0.{cents}")
    local_exchange.counterparty_order(t, "no", "buy", 7, "0.55")
    book = public_http.get(f"/markets/{t}/orderbook").json()
    assert book["orderbook_fp"]["yes_dollars"] == [["0.4000", "10.00"], ["0.4100", "10.00"], ["0.4200", "10.00"]]
    assert book["orderbook_fp"]["no_dollars"] == [["0.5500", "7.00"]]
    assert book["orderbook"]["yes"] == [[40, 10], [41, 10], [42, 10]] and book["orderbook"]["no"] == [[55, 7]]
    top = public_http.get(f"/markets/{t}/orderbook", params={"depth": 1}).json()
    assert top["orderbook_fp"]["yes_dollars"] == [["0.4200", "10.00"]]
    market = public_http.get(f"/markets/{t}").json()["market"]
    assert (market["yes_bid_dollars"], market["yes_ask_dollars"], market["no_bid_dollars"]) == (
        "0.4200", "0.4500", "0.5500")
    assert market["yes_bid_size_fp"] == "10.00" and market["yes_ask_size_fp"] == "7.00"
    missing = public_http.get("/markets/KXNOPE-1/orderbook")
    assert missing.status_code == 404 and error_of(missing)["code"] == "market_not_found"


def test_trades_and_candlesticks(local_exchange: LocalExchange, exchange_http: httpx.Client,
                                 public_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    local_exchange.counterparty_order(t, "no", "buy", 5, "0.60")
    local_exchange.counterparty_order(t, "no", "buy", 5, "0.58")
    for _ in range(3):
        r = exchange_http.post("/portfolio/orders", json={"ticker": t, "side": "yes", "action": "buy", "count": 3,
                                                          "yes_price_dollars": "0.45", "type": "limit"})
        assert r.status_code == 201, r.text
    trades = public_http.get("/markets/trades", params={"ticker": t, "limit": 2}).json()
    assert len(trades["trades"]) == 2 and trades["cursor"]
    rest = public_http.get("/markets/trades", params={"ticker": t, "cursor": trades["cursor"]}).json()
    all_trades = trades["trades"] + rest["trades"]
    assert sum(tr["count"] for tr in all_trades) == 9
    assert {tr["yes_price_dollars"] for tr in all_trades} == {"0.4000", "0.4200"}
    assert all(tr["taker_side"] == "yes" and tr["count_fp"] == f"{tr['count']}.00" for tr in all_trades)
    now_s = local_exchange.admin.now_ms() // 1000
    candles = public_http.get(f"/series/KXNFLGAME/markets/{t}/candlesticks",
                              params={"start_ts": now_s - 120, "end_ts": now_s + 120, "period_interval": 1}).json()
    assert candles["ticker"] == t and candles["candlesticks"]
    last = candles["candlesticks"][-1]
    assert sum(c["volume"] for c in candles["candlesticks"]) == 9
    assert last["price"]["high_dollars"] == "0.4200" and last["yes_ask"]["close_dollars"] == "0.4200"
    bad = public_http.get(f"/series/KXNFLGAME/markets/{t}/candlesticks",
                          params={"start_ts": 0, "end_ts": 1, "period_interval": 5})
    assert bad.status_code == 400 and "period_interval" in error_of(bad)["message"]


# ---------------------------------------------------------------- authentication


def test_portfolio_requires_a_valid_signature(public_http: httpx.Client, sign: Callable[..., dict[str, str]]) -> None:
    r = public_http.get("/portfolio/balance")
    assert r.status_code == 401 and "KALSHI-ACCESS-KEY" in error_of(r)["message"]
    path = "/trade-api/v2/portfolio/balance"
    good = sign("GET", path)
    assert public_http.get("/portfolio/balance", headers=good).status_code == 200
    wrong_path = sign("GET", "/portfolio/balance")  # signing only the suffix: a classic client bug
    r = public_http.get("/portfolio/balance", headers=wrong_path)
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_signature"
    wrong_method = sign("POST", path)
    assert public_http.get("/portfolio/balance", headers=wrong_method).status_code == 401
    unknown = sign("GET", path, key_id="not-a-key")
    assert error_of(public_http.get("/portfolio/balance", headers=unknown))["code"] == "invalid_api_key"
    garbled = dict(good, **{"KALSHI-ACCESS-SIGNATURE": "!!!"})
    assert public_http.get("/portfolio/balance", headers=garbled).status_code == 401
    # a signed request to a public endpoint must be signed correctly as well
    assert public_http.get("/markets", headers=wrong_path).status_code == 401


def test_query_string_is_not_signed(local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    r = exchange_http.get("/portfolio/orders", params={"limit": 5, "status": "resting"})
    assert r.status_code == 200 and r.json() == {"orders": [], "cursor": ""}


def test_clock_skew_is_refused_with_a_hint(local_exchange: LocalExchange, kalshi_auth: Any) -> None:
    with httpx.Client(base_url=local_exchange.base_url,
                      auth=kalshi_auth(local_exchange.key_id, local_exchange.private_key_path, skew_ms=-45_000)) as c:
        r = c.get("/portfolio/balance")
    assert r.status_code == 401
    err = error_of(r)
    assert err["code"] == "timestamp_out_of_range" and "clock" in err["message"] and "45" in err["message"]
    # moving the exchange clock has the same effect on a correct client
    local_exchange.admin.advance_clock(120)
    with httpx.Client(base_url=local_exchange.base_url,
                      auth=kalshi_auth(local_exchange.key_id, local_exchange.private_key_path)) as c:
        r = c.get("/portfolio/balance")
    assert r.status_code == 401 and "behind the exchange clock" in error_of(r)["message"]


# ---------------------------------------------------------------- orders


def order_body(ticker: str, **fields: object) -> dict[str, object]:
    return {"ticker": ticker, "side": "yes", "action": "buy", "count": 10, "yes_price": 40, "type": "limit",
            **fields}


def test_order_lifecycle_over_http(local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    r = exchange_http.post("/portfolio/orders", json=order_body(t, client_order_id="c-1"))
    assert r.status_code == 201
    o = r.json()["order"]
    assert (o["status"], o["yes_price"], o["yes_price_dollars"], o["no_price_dollars"]) == (
        "resting", 40, "0.4000", "0.6000")
    assert (o["remaining_count"], o["remaining_count_fp"], o["initial_count_fp"], o["fill_count"]) == (
        10, "10.00", "10.00", 0)
    assert o["client_order_id"] == "c-1" and o["user_id"] == local_exchange.user_id
    oid = o["order_id"]
    # balance reflects the cash set aside for the resting order
    bal = exchange_http.get("/portfolio/balance").json()
    assert bal["balance"] == 100000 - 420 and bal["balance_dollars"] == "995.8000"
    # the same client_order_id again is a conflict, and nothing changes
    dup = exchange_http.post("/portfolio/orders", json=order_body(t, client_order_id="c-1"))
    assert dup.status_code == 409 and error_of(dup)["code"] == "order_already_exists"
    assert exchange_http.get("/portfolio/balance").json()["balance"] == 100000 - 420
    # decrease keeps the order
    r = exchange_http.post(f"/portfolio/orders/{oid}/decrease", json={"reduce_by": 4})
    assert r.status_code == 200 and r.json()["order"]["remaining_count"] == 6
    r = exchange_http.post(f"/portfolio/orders/{oid}/decrease", json={"reduce_to_fp": "5.00"})
    assert r.json()["order"]["remaining_count"] == 5
    # amend price and count
    r = exchange_http.post(f"/portfolio/orders/{oid}/amend", json={
        "ticker": t, "side": "yes", "action": "buy", "yes_price_dollars": "0.42", "count": 8,
        "client_order_id": "c-1", "updated_client_order_id": "c-1b"})
    assert r.status_code == 200, r.text
    assert r.json()["old_order"]["yes_price"] == 40 and r.json()["order"]["yes_price"] == 42
    assert r.json()["order"]["remaining_count"] == 8 and r.json()["order"]["client_order_id"] == "c-1b"
    # a counterparty hits it: partial fill as maker
    local_exchange.counterparty_order(t, "no", "buy", 3, "0.60")
    got = exchange_http.get(f"/portfolio/orders/{oid}").json()["order"]
    assert (got["fill_count"], got["remaining_count"], got["maker_fill_cost_dollars"]) == (3, 5, "1.2600")
    # cancel returns the order and how many contracts were cancelled
    r = exchange_http.delete(f"/portfolio/orders/{oid}")
    assert r.status_code == 200
    assert r.json()["reduced_by"] == 5 and r.json()["reduced_by_fp"] == "5.00"
    assert r.json()["order"]["status"] == "canceled"
    again = exchange_http.delete(f"/portfolio/orders/{oid}")
    assert again.status_code == 404
    listed = exchange_http.get("/portfolio/orders", params={"ticker": t}).json()["orders"]
    assert [x["order_id"] for x in listed] == [oid] and listed[0]["status"] == "canceled"
    assert exchange_http.get("/portfolio/orders", params={"status": "resting"}).json()["orders"] == []


def test_invalid_orders_name_the_problem(local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    cases = [
        (order_body(t, yes_price=None), 400, "exactly one of yes_price"),
        (order_body(t, no_price_dollars="0.60"), 400, "exactly one of"),
        (order_body(t, yes_price=0), 400, "yes_price"),
        (order_body(t, yes_price=None, yes_price_dollars="0.425"), 400, "tick"),
        (order_body(t, count=0), 400, "count"),
        (order_body(t, count=2, count_fp="3.00"), 400, "disagree"),
        (order_body(t, side="maybe"), 400, "side"),
        (order_body(t, time_in_force="forever"), 400, "time_in_force"),
        (order_body(t, client_order_id="has spaces"), 400, "client_order_id"),
        (order_body(t, count=5000, yes_price=90), 400, "insufficient balance"),
        (order_body("KXNOPE-25JAN01-X"), 404, "not found"),
    ]
    for body, status, text in cases:
        body = {k: v for k, v in body.items() if v is not None}
        r = exchange_http.post("/portfolio/orders", json=body)
        assert r.status_code == status, (body, r.text)
        assert text in error_of(r)["message"], (body, r.text)
    r = exchange_http.post("/portfolio/orders", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in error_of(r)["message"]
    assert error_of(exchange_http.post("/portfolio/orders", json=order_body(t, count=5000, yes_price=90)))[
        "code"] == "insufficient_balance"
    assert exchange_http.get("/portfolio/orders").json()["orders"] == []  # nothing was created
    assert exchange_http.get("/portfolio/orders/not-an-order").status_code == 404
    assert exchange_http.post("/portfolio/orders/x/decrease", json={"reduce_by": 1, "reduce_to": 1}).status_code == 400


def test_no_price_and_sell_orders(local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    t = local_exchange.tickers[1]
    r = exchange_http.post("/portfolio/orders", json={"ticker": t, "side": "no", "action": "buy", "count": 4,
                                                      "no_price_dollars": "0.3500"})
    o = r.json()["order"]
    assert (o["side"], o["no_price"], o["yes_price"]) == ("no", 35, 65)
    book = exchange_http.get(f"/markets/{t}/orderbook").json()["orderbook_fp"]
    assert book["no_dollars"] == [["0.3500", "4.00"]]
    # selling YES at 0.70 is a NO bid at 0.30
    exchange_http.post("/portfolio/orders", json={"ticker": t, "side": "yes", "action": "sell", "count": 2,
                                                  "yes_price": 70})
    book = exchange_http.get(f"/markets/{t}/orderbook").json()["orderbook_fp"]
    assert book["no_dollars"] == [["0.3000", "2.00"], ["0.3500", "4.00"]]


def test_batched_create_and_cancel(local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    r = exchange_http.post("/portfolio/orders/batched", json={"orders": [
        order_body(t, client_order_id="b-1", yes_price=30),
        order_body(t, client_order_id="b-2", yes_price=200),
        order_body(t, client_order_id="b-3", yes_price=31),
    ]})
    assert r.status_code == 201
    results = r.json()["orders"]
    assert [x["client_order_id"] for x in results] == ["b-1", "b-2", "b-3"]
    assert results[0]["order"]["status"] == "resting" and results[0]["error"] is None
    assert results[1]["order"] is None and "yes_price" in results[1]["error"]["message"]
    ids = [results[0]["order"]["order_id"], results[2]["order"]["order_id"], "missing-id"]
    r = exchange_http.request("DELETE", "/portfolio/orders/batched", json={"ids": ids})
    out = r.json()["orders"]
    assert [x["reduced_by"] for x in out] == [10, 10, 0]
    assert out[2]["error"]["code"] == "order_not_found" and out[0]["order"]["status"] == "canceled"
    too_many = exchange_http.post("/portfolio/orders/batched", json={"orders": [order_body(t)] * 21})
    assert too_many.status_code == 400 and "20" in error_of(too_many)["message"]


def test_positions_fills_and_fractional_settlement(local_exchange: LocalExchange,
                                                   exchange_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    local_exchange.counterparty_order(t, "no", "buy", 9, "0.63")
    r = exchange_http.post("/portfolio/orders", json=order_body(t, count=9, yes_price=37, client_order_id="f-1"))
    assert r.json()["order"]["status"] == "executed"
    fee = D(r.json()["order"]["taker_fees_dollars"])
    assert fee == D("0.15")  # ceil(0.07 x 9 x 0.37 x 0.63 = 0.1469)
    pos = exchange_http.get("/portfolio/positions").json()
    mp = pos["market_positions"]
    assert len(mp) == 1 and mp[0]["position"] == 9 and mp[0]["position_fp"] == "9.00"
    assert mp[0]["market_exposure"] == 333 and mp[0]["market_exposure_dollars"] == "3.3300"
    assert mp[0]["fees_paid_dollars"] == "0.1500"
    assert pos["event_positions"][0]["event_ticker"] == local_exchange.event_ticker
    fills = exchange_http.get("/portfolio/fills").json()["fills"]
    assert len(fills) == 1
    f = fills[0]
    assert (f["count"], f["count_fp"], f["yes_price"], f["yes_price_dollars"], f["is_taker"], f["side"]) == (
        9, "9.00", 37, "0.3700", True, "yes")
    assert f["fee_cost"] == "0.1500" and f["client_order_id"] == "f-1" and f["ticker"] == f["market_ticker"] == t
    before = exchange_http.get("/portfolio/balance").json()["balance"]
    local_exchange.settle(t, "0.4533")
    after = exchange_http.get("/portfolio/balance").json()["balance"]
    assert after - before == 407  # floor_cent(9 x 0.4533 = 4.0797)
    s = exchange_http.get("/portfolio/settlements").json()["settlements"]
    assert len(s) == 1
    assert (s[0]["market_result"], s[0]["yes_count"], s[0]["revenue"], s[0]["revenue_dollars"]) == (
        "scalar", 9, 407, "4.0700")
    assert s[0]["yes_total_cost_dollars"] == "3.3300" and s[0]["value_dollars"] == "0.4533"
    assert exchange_http.get("/portfolio/positions").json()["market_positions"] == []  # settled by default
    settled = exchange_http.get("/portfolio/positions", params={"settlement_status": "settled"}).json()
    assert settled["market_positions"][0]["realized_pnl_dollars"] == "0.7400"
    market = exchange_http.get(f"/markets/{t}").json()["market"]
    assert (market["status"], market["result"], market["settlement_value_dollars"]) == ("finalized", "scalar",
                                                                                        "0.4533")
    assert local_exchange.exchange.audit()["imbalance"] == 0


def test_orders_list_pages_newest_first(local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    ids = [exchange_http.post("/portfolio/orders", json=order_body(t, count=1, yes_price=10 + i)).json()["order"][
        "order_id"] for i in range(5)]
    page1 = exchange_http.get("/portfolio/orders", params={"limit": 3}).json()
    page2 = exchange_http.get("/portfolio/orders", params={"limit": 3, "cursor": page1["cursor"]}).json()
    assert [o["order_id"] for o in page1["orders"] + page2["orders"]] == ids[::-1] and page2["cursor"] == ""
    assert page1["orders"][0]["queue_position"] == 0


# ---------------------------------------------------------------- faults


def test_rate_limit_storm_and_server_errors(local_exchange: LocalExchange, public_http: httpx.Client) -> None:
    local_exchange.admin.fail_next(2, status=429, retry_after=1.5, path_prefix="/trade-api/v2/markets")
    for _ in range(2):
        r = public_http.get("/markets")
        assert r.status_code == 429 and r.headers["Retry-After"] == "1.5"
        assert error_of(r)["code"] == "too_many_requests"
    assert public_http.get("/exchange/status").status_code == 200  # other paths unaffected
    assert public_http.get("/markets").status_code == 200
    local_exchange.admin.fail_next(1, status=503)
    assert public_http.get("/series").status_code == 503
    assert public_http.get("/series").status_code == 200


def test_accepted_order_with_a_lost_response(local_exchange: LocalExchange, exchange_http: httpx.Client) -> None:
    t = local_exchange.tickers[0]
    local_exchange.admin.drop_next_order_response()
    with pytest.raises(httpx.TransportError):
        exchange_http.post("/portfolio/orders", json=order_body(t, client_order_id="lost-1"))
    # the order exists: a client must look it up by client_order_id rather than send it again
    orders = exchange_http.get("/portfolio/orders", params={"ticker": t}).json()["orders"]
    assert [o["client_order_id"] for o in orders] == ["lost-1"] and orders[0]["status"] == "resting"
    retry = exchange_http.post("/portfolio/orders", json=order_body(t, client_order_id="lost-1"))
    assert retry.status_code == 409


def test_delayed_responses(local_exchange: LocalExchange, public_http: httpx.Client) -> None:
    local_exchange.admin.delay_next(0.5, count=1)
    with pytest.raises(httpx.ReadTimeout):
        public_http.get("/exchange/status", timeout=0.2)
    assert public_http.get("/exchange/status", timeout=2).status_code == 200


# ---------------------------------------------------------------- admin


def test_admin_creates_markets_and_moves_the_clock(local_exchange: LocalExchange, public_http: httpx.Client) -> None:
    admin = local_exchange.admin
    now = admin.now_ms()
    admin.create_market("KXCLOCK-25JAN01-X", title="later", open_time=now + 60_000, close_time=now + 120_000)
    assert public_http.get("/markets/KXCLOCK-25JAN01-X").json()["market"]["status"] == "initialized"
    admin.advance_clock(61)
    assert public_http.get("/markets/KXCLOCK-25JAN01-X").json()["market"]["status"] == "active"
    admin.advance_clock(60)
    assert public_http.get("/markets/KXCLOCK-25JAN01-X").json()["market"]["status"] == "closed"
    with pytest.raises(SimAdminError, match="already exists"):
        admin.create_market("KXCLOCK-25JAN01-X")
    with pytest.raises(SimAdminError, match="settlement_value"):
        admin.settle(local_exchange.tickers[0], "1.5")
    acct = admin.create_account("25.00")
    order = admin.place_order(acct["user_id"], local_exchange.tickers[0], "yes", "buy", 5, price_dollars="0.20")
    assert order["status"] == "resting" and order["user_id"] == acct["user_id"]
    with pytest.raises(SimAdminError, match="insufficient balance"):
        admin.place_order(acct["user_id"], local_exchange.tickers[0], "yes", "buy", 500, price_dollars="0.90")
    assert admin.audit()["imbalance"] == "0.00" or D(admin.audit()["imbalance"]) == 0


def test_admin_token_protects_sim_endpoints() -> None:
    ex = Exchange()
    with ExchangeServer(ex, admin_token="s3cret") as server:
        with SimAdminClient(server.root_url) as anonymous:
            with pytest.raises(SimAdminError) as info:
                anonymous.create_market("KXA-1-B")
            assert info.value.status == 403
        with SimAdminClient(server.root_url, admin_token="s3cret") as admin:
            assert admin.create_market("KXA-1-B")["ticker"] == "KXA-1-B"


def test_admin_registers_an_api_key(tmp_path: Path, kalshi_auth: Any) -> None:
    key_id, key_path, public_pem = generate_key_pair(tmp_path)
    with ExchangeServer(Exchange()) as server, SimAdminClient(server.root_url) as admin:
        acct = admin.create_account("50", public_key_pem=public_pem.decode(), key_id=key_id)
        assert acct["key_id"] == key_id
        with httpx.Client(base_url=server.base_url, auth=kalshi_auth(key_id, key_path)) as c:
            assert c.get("/portfolio/balance").json()["balance"] == 5000
