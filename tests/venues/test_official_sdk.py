"""Kalshi's official Python SDK (kalshi-python-sync 3.2.0), unchanged, against the local exchange.

The SDK validates every response with strict pydantic models that still require the legacy integer
fields (cents, counts) next to the `*_dollars` strings, so this test fails if either generation is missing.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import TYPE_CHECKING, Any

import pytest

kalshi = pytest.importorskip("kalshi_python_sync", reason="kalshi-python-sync (test extra) is not installed")

from kalshi_python_sync import Configuration, KalshiClient  # noqa: E402
from kalshi_python_sync.exceptions import ApiException  # noqa: E402

from precog.venues.exchange import Exchange, ExchangeServer  # noqa: E402
from precog.venues.exchange.serialize import market_json  # noqa: E402

if TYPE_CHECKING:
    from conftest import LocalExchange


@pytest.fixture
def sdk(local_exchange: LocalExchange) -> KalshiClient:
    assert kalshi.__version__ == "3.2.0"
    config = Configuration(host=local_exchange.base_url)
    config.api_key_id = local_exchange.key_id
    config.private_key_pem = local_exchange.private_key_path.read_text()
    return KalshiClient(config)


def test_sdk_market_data(local_exchange: LocalExchange, sdk: KalshiClient) -> None:
    t = local_exchange.tickers[0]
    local_exchange.counterparty_order(t, "no", "buy", 12, "0.58")
    local_exchange.counterparty_order(t, "yes", "buy", 5, "0.38")
    markets = sdk.get_markets(event_ticker=local_exchange.event_ticker, limit=10)
    assert [m.ticker for m in markets.markets] == list(local_exchange.tickers) and markets.cursor == ""
    market = sdk.get_market(t).market
    assert market.status == "active" and market.yes_bid == 38 and market.yes_ask_dollars == "0.4200"
    book = sdk.get_market_orderbook(t).orderbook
    assert book.yes_dollars == [["0.3800", "5.00"]] and book.no_dollars == [["0.5800", "12.00"]]
    assert sdk.get_exchange_status().trading_active is True
    event = sdk.get_event(local_exchange.event_ticker, with_nested_markets=True)
    assert event.event.series_ticker == "KXNFLGAME" and len(event.markets) == 2
    assert sdk.get_series(local_exchange.series_ticker).series.ticker == "KXNFLGAME"


def test_sdk_trading_round_trip(local_exchange: LocalExchange, sdk: KalshiClient) -> None:
    t = local_exchange.tickers[0]
    assert sdk.get_balance().balance == 100_000
    local_exchange.counterparty_order(t, "no", "buy", 10, "0.55")

    filled = sdk.create_order(ticker=t, side="yes", action="buy", count=4, yes_price=45, client_order_id="sdk-1")
    assert filled.order.status == "executed" and filled.order.fill_count == 4
    assert filled.order.taker_fill_cost == 180 and filled.order.taker_fees == 7  # ceil(0.07*4*.45*.55) = 0.07

    resting = sdk.create_order(ticker=t, side="yes", action="buy", count=3, yes_price=30, client_order_id="sdk-2")
    assert resting.order.status == "resting" and resting.order.remaining_count == 3
    orders = sdk.get_orders(ticker=t)
    assert [o.client_order_id for o in orders.orders] == ["sdk-2", "sdk-1"]
    cancelled = sdk.cancel_order(resting.order.order_id)
    assert cancelled.order.status == "canceled" and cancelled.reduced_by == 3
    assert sdk.get_order(resting.order.order_id).order.status == "canceled"

    positions = sdk.get_positions()
    assert [(p.ticker, p.position, p.market_exposure, p.fees_paid) for p in positions.market_positions] == [
        (t, 4, 180, 7)]
    assert positions.event_positions[0].event_ticker == local_exchange.event_ticker

    fills = sdk.get_fills(ticker=t).fills
    assert len(fills) == 1
    f = fills[0]
    assert (f.order_id, f.side, f.action, f.count, f.yes_price, f.no_price, f.is_taker) == (
        filled.order.order_id, "yes", "buy", 4, 45, 55, True)
    assert f.yes_price_fixed == "0.4500"
    assert sdk.get_balance().balance == 100_000 - 180 - 7


def test_sdk_sees_exchange_errors(local_exchange: LocalExchange, sdk: KalshiClient) -> None:
    with pytest.raises(ApiException) as info:
        sdk.create_order(ticker="KXNOPE-25JAN01-X", side="yes", action="buy", count=1, yes_price=50)
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        sdk.create_order(ticker=local_exchange.tickers[0], side="yes", action="buy", count=100_000, yes_price=90)
    assert info.value.status == 400 and "insufficient balance" in str(info.value.body)


def test_sdk_reads_settled_markets_from_a_legacy_status_server(exchange_key: Any) -> None:
    """kalshi-python-sync 3.2.0 predates `finalized`/`scalar`: `legacy_status=True` serves its vocabulary."""
    key_id, key_path, public_pem = exchange_key
    ex = Exchange()
    ex.create_series("KXOLD", "old")
    ex.create_event("KXOLD-1", "KXOLD", "old")
    for t in ("KXOLD-1-A", "KXOLD-1-B"):
        ex.create_market(t, "KXOLD-1")
    ex.settle_market("KXOLD-1-A", D("0.4"))
    ex.set_market_status("KXOLD-1-B", "inactive")
    acct = ex.create_account(balance=D("5"))
    with ExchangeServer(ex, legacy_status=True) as server:
        server.keys.register(acct.user_id, public_pem, key_id)
        config = Configuration(host=server.base_url)
        config.api_key_id = key_id
        config.private_key_pem = key_path.read_text()
        markets = {m.ticker: m for m in KalshiClient(config).get_markets().markets}
        assert (markets["KXOLD-1-A"].status, markets["KXOLD-1-A"].result) == ("settled", "")
        assert markets["KXOLD-1-A"].settlement_value_dollars == "0.4000"
        assert markets["KXOLD-1-B"].status == "closed"
        assert KalshiClient(config).get_balance().balance == 500
    # the default server speaks the OpenAPI v3.13 words
    assert market_json(ex.markets["KXOLD-1-A"], ex.now_ms())["status"] == "finalized"
