"""Our Kalshi REST client against the local exchange over real HTTP on 127.0.0.1.

Faults (429 storms, 5xx, slow answers, order creates whose response is lost) are injected by the
exchange itself through its /sim/ admin API, so every byte still crosses a real socket.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from precog.domain.market import MarketStatus
from precog.domain.order import Action, OrderRequest, OrderStatus, Side, new_client_order_id
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient, KalshiClient, RetryPolicy, _decode
from precog.venues.kalshi.environments import resolve_environment
from precog.venues.kalshi.errors import (
    KalshiBadRequest,
    KalshiConfigError,
    KalshiNotFound,
    KalshiRateLimited,
    KalshiSchemaError,
    KalshiServerError,
    KalshiTransportError,
    KalshiUnauthorized,
    OrderOutcomeUnknown,
)

FAST = RetryPolicy(max_retries=4, backoff_base=0.02, backoff_max=0.2, lookup_attempts=4, lookup_delay=0.2)


def client_for(ex: Any, *, signed: bool = True, timeout: float = 5.0, retry: RetryPolicy = FAST,
               alerts: Any = None) -> AsyncKalshiClient:
    signer = KalshiSigner.from_files(ex.key_id, ex.private_key_path) if signed else None
    env = resolve_environment("local", ex.base_url)
    return AsyncKalshiClient(env, signer=signer, timeout=timeout, retry=retry, rate_limits="unlimited",
                             alerts=alerts)


def order(ticker: str, side: str = "yes", action: str = "buy", count: str = "10", price: str = "0.40") -> OrderRequest:
    return OrderRequest(ticker=ticker, side=Side(side), action=Action(action), count=Decimal(count),
                        price=Decimal(price), client_order_id=new_client_order_id("t"))


def orders_with_cid(ex: Any, cid: str) -> list[Any]:
    with ex.exchange.lock:
        return [o for o in ex.exchange.orders.values() if o.client_order_id == cid]


class RecordingAlerts:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str, details: Any = None, **kw: Any) -> int:
        self.alerts.append({"type": alert_type, "severity": severity, "message": message, "details": details, **kw})
        return len(self.alerts)


async def test_public_market_data_without_a_key(local_exchange: Any) -> None:
    async with client_for(local_exchange, signed=False) as client:
        page = await client.get_markets(series_ticker=local_exchange.series_ticker)
        assert {m.ticker for m in page.items} == set(local_exchange.tickers)
        m = await client.get_market(local_exchange.tickers[0])
        assert m.status is MarketStatus.OPEN and m.venue_status == "active"
        assert isinstance(m.yes_bid, Decimal) and m.notional_value == 1
        event = await client.get_event(local_exchange.event_ticker, with_nested_markets=True)
        assert {x.ticker for x in event.markets} == set(local_exchange.tickers)
        series = await client.get_series(local_exchange.series_ticker)
        assert series.ticker == local_exchange.series_ticker
        assert local_exchange.series_ticker in {s.ticker for s in await client.get_series_list()}
        events = [e async for e in client.iter_events(series_ticker=local_exchange.series_ticker)]
        assert [e.event_ticker for e in events] == [local_exchange.event_ticker]
        book = await client.get_orderbook(local_exchange.tickers[0])
        assert book.ticker == local_exchange.tickers[0]
        with pytest.raises(KalshiConfigError, match="KALSHI_API_KEY_ID"):
            await client.get_balance()
        with pytest.raises(KalshiNotFound):
            await client.get_market("NO-SUCH-MARKET")


async def test_pagination_follows_cursors_over_many_markets(local_exchange: Any) -> None:
    ex = local_exchange.exchange
    with ex.lock:
        for i in range(230):
            ex.create_market(f"{local_exchange.event_ticker}-P{i:03d}", local_exchange.event_ticker)
    async with client_for(local_exchange, signed=False) as client:
        seen = [m.ticker async for m in client.iter_markets(page_size=37, event_ticker=local_exchange.event_ticker)]
        assert len(seen) == 232 and len(set(seen)) == 232
        first = await client.get_markets(event_ticker=local_exchange.event_ticker, limit=37)
        assert len(first.items) == 37 and first.cursor
        limited = [m async for m in client.iter_markets(max_items=50, event_ticker=local_exchange.event_ticker)]
        assert len(limited) == 50


async def test_order_lifecycle_create_get_amend_decrease_cancel(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[0]
    async with client_for(local_exchange) as client:
        before = await client.get_balance()
        req = order(ticker, "yes", "buy", "10", "0.40")
        placed = await client.create_order(req)
        assert placed.status is OrderStatus.RESTING and placed.client_order_id == req.client_order_id
        assert placed.yes_price == Decimal("0.40") and placed.remaining_count == 10
        assert (await client.get_order(placed.order_id)).order_id == placed.order_id
        resting = [o async for o in client.iter_orders(ticker=ticker, status="resting")]
        assert [o.order_id for o in resting] == [placed.order_id]
        book = await client.get_orderbook(ticker)
        assert book.best_yes_bid is not None and book.best_yes_bid.price == Decimal("0.40")

        old, new = await client.amend_order(placed.order_id, ticker=ticker, side="yes", action="buy",
                                            price=Decimal("0.41"), count=Decimal(10),
                                            client_order_id=req.client_order_id)
        assert old.yes_price == Decimal("0.40") and new.yes_price == Decimal("0.41")
        decreased = await client.decrease_order(new.order_id, reduce_by=Decimal(4))
        assert decreased.remaining_count == 6
        decreased = await client.decrease_order(new.order_id, reduce_to=Decimal(5))
        assert decreased.remaining_count == 5
        canceled = await client.cancel_order(new.order_id)
        assert canceled.order is not None and canceled.order.status is OrderStatus.CANCELED
        assert canceled.reduced_by == 5
        after = await client.get_balance()
        assert after.balance == before.balance  # nothing filled: all reserved cash came back


async def test_fills_positions_settlement_and_cash_to_the_cent(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[0]
    async with client_for(local_exchange) as client:
        start = (await client.get_balance()).balance
        local_exchange.counterparty_order(ticker, "no", "buy", 10, "0.55")  # a YES ask at 0.45
        filled = await client.create_order(order(ticker, "yes", "buy", "10", "0.45"))
        assert filled.status is OrderStatus.EXECUTED and filled.fill_count == 10
        fills = [f async for f in client.iter_fills(ticker=ticker)]
        assert len(fills) >= 1 and sum(f.count for f in fills) == 10
        assert all(f.price == Decimal("0.45") and f.is_taker for f in fills)
        fee = sum((f.fee or Decimal(0)) for f in fills)
        assert fee == Decimal("0.18")  # ceil_cent(0.07 * 10 * 0.45 * 0.55) = 0.18
        trades = [t async for t in client.iter_trades(ticker=ticker)]
        assert sum(t.count for t in trades) == 10 and trades[0].yes_price == Decimal("0.45")
        now = int(time.time())
        candles = await client.get_candlesticks(local_exchange.series_ticker, ticker, start_ts=now - 3600,
                                                end_ts=now + 120, period_interval=1)
        assert candles and sum(c.volume for c in candles) == 10
        assert candles[-1].price.close == Decimal("0.45")
        positions = [p async for p in client.iter_positions(ticker=ticker)]
        assert positions and positions[0].position == 10
        assert (await client.get_balance()).balance == start - Decimal("4.50") - fee
        local_exchange.settle(ticker, "1")
        settlements = [s async for s in client.iter_settlements(ticker=ticker)]
        assert len(settlements) == 1 and settlements[0].market_result == "yes"
        assert settlements[0].revenue == Decimal("10")
        assert (await client.get_balance()).balance == start - Decimal("4.50") - fee + Decimal("10")


async def test_batch_create_and_cancel(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[1]
    async with client_for(local_exchange) as client:
        reqs = [order(ticker, "no", "buy", "2", f"0.{30 + i}") for i in range(3)]
        bad = order(ticker, "no", "buy", "999999", "0.30")  # more than the account can pay
        results = await client.batch_create_orders([*reqs, bad])
        assert [r.client_order_id for r in results] == [r.client_order_id for r in [*reqs, bad]]
        assert all(r.order is not None and r.order.status is OrderStatus.RESTING for r in results[:3])
        assert results[3].order is None and results[3].error
        cancels = await client.batch_cancel_orders([r.order.order_id for r in results[:3] if r.order])
        assert [c.reduced_by for c in cancels] == [2, 2, 2]
        assert all(c.order is not None and c.order.status is OrderStatus.CANCELED for c in cancels)


async def test_rejected_order_is_one_clear_error_and_leaves_nothing_behind(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[0]
    async with client_for(local_exchange) as client:
        before = await client.get_balance()
        req = order(ticker, "yes", "buy", "100000", "0.90")
        with pytest.raises(KalshiBadRequest) as info:
            await client.create_order(req)
        message = str(info.value)
        assert "400" in message and "POST /portfolio/orders" in message and "\n" not in message
        assert orders_with_cid(local_exchange, req.client_order_id) == []
        assert (await client.get_balance()).balance == before.balance


async def test_429_storm_honours_retry_after_then_succeeds(local_exchange: Any) -> None:
    local_exchange.admin.fail_next(3, status=429, retry_after=0.15, path_prefix="/trade-api/v2/portfolio/balance")
    async with client_for(local_exchange) as client:
        started = time.monotonic()
        balance = await client.get_balance()
        elapsed = time.monotonic() - started
    assert balance.balance == Decimal("1000")
    assert elapsed >= 0.45  # three Retry-After waits, not the 0.02 s backoff


async def test_429_storm_longer_than_the_retry_budget_gives_one_clear_error(local_exchange: Any) -> None:
    local_exchange.admin.fail_next(50, status=429, retry_after=0.01, path_prefix="/trade-api/v2/markets")
    async with client_for(local_exchange, signed=False) as client:
        with pytest.raises(KalshiRateLimited) as info:
            await client.get_markets()
    assert "429" in str(info.value) and "gave up after 5 attempts" in str(info.value)
    local_exchange.admin.clear_faults()


async def test_5xx_is_retried_but_other_4xx_are_not(local_exchange: Any) -> None:
    local_exchange.admin.fail_next(2, status=503, path_prefix="/trade-api/v2/markets")
    async with client_for(local_exchange, signed=False) as client:
        assert (await client.get_markets()).items
        local_exchange.admin.fail_next(1, status=400, path_prefix="/trade-api/v2/markets")
        with pytest.raises(KalshiBadRequest):
            await client.get_markets()
        assert (await client.get_markets()).items  # exactly one request was spent on the 400


async def test_5xx_on_create_is_resolved_by_lookup_then_placed_once(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[0]
    local_exchange.admin.fail_next(1, status=500, method="POST", path_prefix="/trade-api/v2/portfolio/orders")
    async with client_for(local_exchange) as client:
        req = order(ticker, "yes", "buy", "3", "0.20")
        placed = await client.create_order(req)
    assert placed.client_order_id == req.client_order_id
    assert len(orders_with_cid(local_exchange, req.client_order_id)) == 1


async def test_dropped_create_response_is_resolved_by_lookup_without_duplicate(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[0]
    local_exchange.admin.drop_next_order_response()
    async with client_for(local_exchange) as client:
        req = order(ticker, "yes", "buy", "4", "0.30")
        placed = await client.create_order(req)
        assert placed.client_order_id == req.client_order_id and placed.remaining_count == 4
        # a second create with the same client_order_id is refused by the venue, and resolved to the same order
        again = await client.create_order(req)
        assert again.order_id == placed.order_id
    matching = orders_with_cid(local_exchange, req.client_order_id)
    assert len(matching) == 1 and matching[0].order_id == placed.order_id


async def test_create_timeout_is_resolved_by_lookup_never_resent(local_exchange: Any) -> None:
    """The create times out (the exchange is slow and drops it when we hang up). The lookups find no
    order, so we report the outcome as unknown instead of sending the order a second time; the caller
    may then retry with the same client_order_id, which the venue would refuse if the first had landed."""
    ticker = local_exchange.tickers[1]
    local_exchange.admin.delay_next(0.6, path_prefix="/trade-api/v2/portfolio/orders")
    async with client_for(local_exchange, timeout=0.3) as client:
        req = order(ticker, "no", "buy", "2", "0.25")
        with pytest.raises(OrderOutcomeUnknown) as info:
            await client.create_order(req)
        assert "ReadTimeout" in str(info.value) and "NOT re-sent" in str(info.value)
        assert orders_with_cid(local_exchange, req.client_order_id) == []
        placed = await client.create_order(req)
        again = await client.create_order(req)  # duplicate refused by the venue -> the same order
    assert placed.order_id == again.order_id
    assert len(orders_with_cid(local_exchange, req.client_order_id)) == 1


async def test_read_timeout_is_retried(local_exchange: Any) -> None:
    local_exchange.admin.delay_next(0.6, path_prefix="/trade-api/v2/markets")
    async with client_for(local_exchange, signed=False, timeout=0.3) as client:
        started = time.monotonic()
        assert (await client.get_markets()).items
        assert time.monotonic() - started < 0.6 + 0.3  # did not wait for the slow answer


async def test_unknown_outcome_that_cannot_be_found_is_reported_never_resent(local_exchange: Any) -> None:
    """The create's answer is lost and every lookup fails too: we say so and send nothing again."""
    ticker = local_exchange.tickers[0]
    local_exchange.admin.drop_next_order_response()
    local_exchange.admin.fail_next(20, status=503, method="GET", path_prefix="/trade-api/v2/portfolio/orders")
    alerts = RecordingAlerts()
    retry = RetryPolicy(max_retries=1, backoff_base=0.01, backoff_max=0.02, lookup_attempts=2, lookup_delay=0.01)
    async with client_for(local_exchange, retry=retry, alerts=alerts) as client:
        req = order(ticker, "yes", "buy", "1", "0.10")
        with pytest.raises(OrderOutcomeUnknown, match=req.client_order_id):
            await client.create_order(req)
    local_exchange.admin.clear_faults()
    assert len(orders_with_cid(local_exchange, req.client_order_id)) == 1  # the one original, not re-sent
    assert alerts.alerts and alerts.alerts[0]["type"] == "order_outcome_unknown"
    assert alerts.alerts[0]["severity"] == "critical"


async def test_401_explains_key_and_clock(local_exchange: Any, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    stranger.chmod(0o600)
    env = resolve_environment("local", local_exchange.base_url)
    signer = KalshiSigner.from_files(local_exchange.key_id, stranger)  # right key id, wrong private key
    async with AsyncKalshiClient(env, signer=signer, retry=FAST) as client:
        with pytest.raises(KalshiUnauthorized) as info:
            await client.get_balance()
    message = str(info.value)
    assert "401" in message and "clock" in message and "private key" in message
    assert "BEGIN" not in message


async def test_connection_refused_is_one_clear_error() -> None:
    env = resolve_environment("local", "http://127.0.0.1:9/trade-api/v2")
    async with AsyncKalshiClient(env, retry=RetryPolicy(max_retries=1, backoff_base=0.01)) as client:
        with pytest.raises(KalshiTransportError, match="gave up after 2 attempts"):
            await client.get_markets()


def test_malformed_json_body_is_a_schema_error() -> None:
    with pytest.raises(KalshiSchemaError, match="not valid JSON"):
        _decode(b"<html>bad gateway</html>", method="GET", path="/markets")
    assert _decode(b'{"x": 0.1}', method="GET", path="/m") == {"x": Decimal("0.1")}


def test_sync_client_for_scripts(local_exchange: Any) -> None:
    env = resolve_environment("local", local_exchange.base_url)
    signer = KalshiSigner.from_files(local_exchange.key_id, local_exchange.private_key_path)
    with KalshiClient(AsyncKalshiClient(env, signer=signer, retry=FAST)) as client:
        assert client.get_balance().balance == Decimal("1000")
        assert {m.ticker for m in client.iter_markets()} >= set(local_exchange.tickers)
        with pytest.raises(KalshiServerError):
            local_exchange.admin.fail_next(10, status=502, path_prefix="/trade-api/v2/markets")
            client.get_markets()
    local_exchange.admin.clear_faults()


async def test_write_budget_is_separate_from_reads(local_exchange: Any) -> None:
    from precog.venues.kalshi.ratelimit import RateLimits

    env = resolve_environment("local", local_exchange.base_url)
    signer = KalshiSigner.from_files(local_exchange.key_id, local_exchange.private_key_path)
    async with AsyncKalshiClient(env, signer=signer, rate_limits=RateLimits(1000, 5), retry=FAST) as client:
        started = time.monotonic()
        for _ in range(20):
            await client.get_markets(limit=1)
        reads = time.monotonic() - started
        started = time.monotonic()
        placed = [await client.create_order(order(local_exchange.tickers[0], price="0.05", count="1")) for _ in range(8)]
        writes = time.monotonic() - started
    assert reads < 1.0  # the read bucket is not slowed by the small write budget
    assert writes >= 0.5  # 8 writes at 5/s with a burst of 5: at least 3 waits of 0.2 s
    assert len(placed) == 8
