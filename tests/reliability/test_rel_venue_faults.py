"""Venue faults while the real engine trades over the real Kalshi client (HTTP, RSA-signed) against the local
exchange: 5xx and 429 storms, responses slower than the client timeout, order creates whose response is lost
after the exchange accepted them, a venue outage longer than the retry budget, and schema drift (a price field
renamed / missing). Afterwards our books must equal the exchange's: no lost or duplicate order, no lost fill,
positions equal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from precog.engine.alert_sink import TableAlertSink
from precog.engine.runner import run_loop
from precog.reliability import tally
from precog.reliability.drift import DriftTransport
from reliability.conftest import RelExchange
from reliability.relkit import MovingMarketMaker, check_books, kalshi_client, make_engine

ORDERS_PATH = "/trade-api/v2/portfolio/orders"


def _alerts(conn: psycopg.Connection[Any], alert_type: str) -> list[tuple[str, Any]]:
    return conn.execute("SELECT message, details FROM alerts WHERE alert_type = %s ORDER BY alert_id",
                        (alert_type,)).fetchall()


@pytest.mark.timeout(180)
async def test_rel_engine_trades_through_storms_timeouts_lost_responses_and_an_outage(
        db_url: str, rel_exchange: RelExchange) -> None:
    rx = rel_exchange
    conn = psycopg.connect(db_url, autocommit=True)
    alerts = TableAlertSink(conn, "test")
    client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path, timeout=0.6, alerts=alerts)
    engine = make_engine(conn, client, rx.tickers, alerts=alerts)
    mm = MovingMarketMaker(rx.exchange, rx.mm, rx.tickers)
    mm.start()
    # step -> fault injected before that step (each is armed on the exchange's /sim/ API)
    # step -> fault armed (on the exchange's /sim/ API) before that step. The order-create faults are armed
    # first so the engine's first entries meet them; the storms and the outage come while positions are managed.
    schedule: dict[int, tuple[str, Callable[[], Any]]] = {
        1: ("lost create responses", lambda: rx.admin.drop_next_order_response(2)),
        4: ("slow order creates", lambda: rx.admin.delay_next(1.5, 1, path_prefix=ORDERS_PATH)),
        10: ("503 storm", lambda: rx.admin.fail_next(6, status=503)),
        16: ("429 storm", lambda: rx.admin.fail_next(6, status=429, retry_after=0.2)),
        22: ("500s on order creates", lambda: rx.admin.fail_next(1, status=500, method="POST",
                                                                 path_prefix=ORDERS_PATH)),
        28: ("outage", lambda: rx.admin.fail_next(40, status=503)),
    }
    injected: list[str] = []

    def before_step(_: float) -> None:
        fault = schedule.get(engine.stats.steps + 1)
        if fault is not None:
            fault[1]()
            injected.append(fault[0])

    try:
        await run_loop(engine, interval_s=0.05, venue_label="local", before_step=before_step,
                       until=lambda: engine.stats.steps >= 60)
    finally:
        mm.stop()
    state = rx.admin.clear_faults()
    # a last clean run reconciles whatever the faults left open, then stops (cancels resting entries)
    engine2 = make_engine(conn, client, rx.tickers, alerts=alerts)
    await run_loop(engine2, interval_s=0.05, venue_label="local", until=lambda: engine2.stats.steps >= 5)
    await client.aclose()

    books = check_books(conn, rx.exchange, rx.user)
    assert books.venue_orders >= 3, "the engine must really have traded for the faults to matter"
    assert books.clean, books
    assert len(injected) == len(schedule)
    dropped = int(state["dropped_responses"])
    assert dropped == 2, "both lost-response faults must have hit an order create"
    assert not state["delays"] and not state["errors"], f"every armed fault was consumed: {state}"
    # the outage is longer than the retry budget: steps failed, and each failure raised an alert
    failed = _alerts(conn, "engine_step_failed")
    assert failed, "a venue outage past the retry budget must raise engine_step_failed"
    assert any("503" in m or "gave up" in m for m, _ in failed)
    conn.close()
    kw = {"lost_orders": books.lost_orders + books.duplicate_orders, "lost_fills": books.lost_fills}
    tally.record("venue: 503 storm (6 responses)", 1, "retried with backoff; the cycle completed", **kw)
    tally.record("venue: 429 storm with Retry-After", 1, "waited Retry-After, retried; the cycle completed")
    tally.record("venue: order create slower than the client timeout", 1,
                 "looked the order up by client_order_id; never re-sent")
    tally.record("venue: order accepted, response lost (connection cut)", dropped,
                 "looked the order up by client_order_id: exactly one order each")
    tally.record("venue: 500 on order create", 1, "resolved by lookup: placed once")
    tally.record("venue: outage longer than the retry budget", 1,
                 f"cycles failed with engine_step_failed alerts ({len(failed)}); trading resumed after it; "
                 "books equal the exchange's")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("drift", ["renamed", "missing"])
async def test_rel_schema_drift_on_a_price_field_alerts_and_invents_no_price(
        db_url: str, rel_exchange: RelExchange, drift: str) -> None:
    rx = rel_exchange
    for t in rx.tickers:
        rx.quote(t, "0.45", "0.50")
    conn = psycopg.connect(db_url, autocommit=True)
    alerts = TableAlertSink(conn, "test")
    fields = ("yes_bid_dollars", "yes_bid")
    transport = DriftTransport(httpx.AsyncHTTPTransport(),
                               rename={f: f + "_v9" for f in fields} if drift == "renamed" else {},
                               drop=fields if drift == "missing" else ())
    client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path, alerts=alerts)
    client._http._transport = transport  # the same client, its responses passing through the drift
    engine = make_engine(conn, client, rx.tickers, alerts=alerts)
    await run_loop(engine, interval_s=0.02, venue_label="local", until=lambda: engine.stats.steps >= 8)
    await client.aclose()

    assert transport.rewritten > 0
    assert not rx.exchange.account(rx.user).orders, "no order may be sent on a price we could not read"
    schema = _alerts(conn, "venue_schema_error")
    assert schema, "schema drift must raise venue_schema_error"
    message, details = schema[0]
    assert "yes_bid" in message and details["field"] == "yes_bid"
    assert conn.execute("SELECT count(*) FROM positions").fetchone()[0] == 0
    conn.close()
    tally.record(f"venue: schema drift (price field {drift})", 8,
                 "KalshiSchemaError naming yes_bid, venue_schema_error alert; no order, no position, no price stored")


@pytest.mark.timeout(60)
async def test_rel_clock_skew_is_reported_with_a_clear_clock_message(rel_exchange: RelExchange,
                                                                      db_url: str) -> None:
    """The venue refuses signatures whose timestamp is off: the error and the alert say to check the clock."""
    from precog.venues.kalshi.errors import KalshiUnauthorized

    rx = rel_exchange
    conn = psycopg.connect(db_url, autocommit=True)
    alerts = TableAlertSink(conn, "test")
    client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path, alerts=alerts)
    real_headers = client.signer.headers  # type: ignore[union-attr]

    def skewed(method: str, path: str, timestamp_ms: int | None = None) -> dict[str, str]:
        return real_headers(method, path, int(time.time() * 1000) - 120_000)  # our clock 2 minutes behind

    object.__setattr__(client.signer, "headers", skewed)
    with pytest.raises(KalshiUnauthorized) as err:
        await client.get_balance()
    assert "clock" in str(err.value) and "timedatectl" in str(err.value)
    # the engine refuses to start on it (reconciliation needs the venue) and the alert says why
    engine = make_engine(conn, client, rx.tickers, alerts=alerts)
    with pytest.raises(KalshiUnauthorized):
        await run_loop(engine, interval_s=0.02, venue_label="local", until=lambda: engine.stats.steps >= 2)
    await client.aclose()
    rows = _alerts(conn, "venue_auth_rejected")
    assert rows and "clock" in rows[0][0] and "behind the exchange clock" in rows[0][0]
    assert rows[0][1]["status"] == 401
    assert not rx.exchange.account(rx.user).orders
    conn.close()
    tally.record("clock: our clock 2 minutes behind the venue (signature rejected)", 1 + 2,
                 "HTTP 401 turned into one error naming the clock (timedatectl/NTP); an alert carries it")


def test_rel_dropped_create_responses_never_duplicate_orders(rel_exchange: RelExchange) -> None:
    """Ten order creates in a row whose responses are lost: ten orders at the venue, one per client id."""
    from decimal import Decimal

    from precog.domain.order import OrderRequest

    rx = rel_exchange
    rx.admin.drop_next_order_response(10)

    async def place() -> list[Any]:
        client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path)
        out = []
        for i in range(10):
            req = OrderRequest(rx.tickers[0], "yes", "buy", Decimal(1), Decimal("0.10"), f"rel-drop-{i}")
            out.append(await client.create_order(req))
        await client.aclose()
        return out

    orders = asyncio.run(place())
    venue = rx.exchange.account(rx.user).orders.values()
    assert sorted(o.client_order_id for o in venue) == sorted(f"rel-drop-{i}" for i in range(10))
    assert {o.order_id for o in orders} == {o.order_id for o in venue}
    assert rx.admin.clear_faults()["dropped_responses"] == 10
    tally.record("venue: order accepted, response lost (connection cut)", 10,
                 "looked the order up by client_order_id: exactly one order each")
