"""An order create whose answer is lost *and* which reaches the exchange only after the client's lookups gave
up stays tracked (unresolved, looked up again each cycle), so a stop or restart cancels it at the venue.

Real engine, real Kalshi client over HTTP (RSA-signed), real local exchange; the production default
RetryPolicy (4 lookups, 0.25 s doubling). A transport in front of the real one holds the POST
/portfolio/orders in flight (a request stuck in a proxy / venue queue): the client times out at once, and the
request reaches the exchange 4 s later. The client itself documents this case (`_MaybeProcessed`: "the request
may still be in flight, so absence now proves nothing"), so `Executor.resolve` keeps it open for a grace
period.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from engine.conftest import rig_config
from precog.engine import entries
from precog.engine.alert_sink import TableAlertSink
from precog.engine.core import Engine, TrackedMarket
from precog.engine.demo import ensure_demo_methods, simulated_market_settings
from precog.engine.kalshi_venue import KalshiVenue
from precog.trading.executor import OrderIntent
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy
from precog.venues.kalshi.environments import KalshiEnvironment
from precog.venues.kalshi.ratelimit import tier_limits
from reliability.conftest import RelExchange, rel_exchange, rel_key  # noqa: F401 - fixtures
from reliability.relkit import Flipping

ORDERS_PATH = "/trade-api/v2/portfolio/orders"


class LateTransport(httpx.AsyncBaseTransport):
    """The next order create times out for the client but is delivered to the venue `late_s` seconds later."""

    def __init__(self, inner: httpx.AsyncBaseTransport, late_s: float) -> None:
        self.inner = inner
        self.late_s = late_s
        self.armed = False
        self.delivered: list[int] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def _deliver(self, request: httpx.Request) -> None:
        await asyncio.sleep(self.late_s)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.delivered.append(response.status_code)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.armed and request.method == "POST" and request.url.path == ORDERS_PATH:
            self.armed = False
            await request.aread()
            self._tasks.append(asyncio.create_task(self._deliver(request)))
            raise httpx.ReadTimeout("timed out waiting for the venue's answer", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _engine(conn: psycopg.Connection[Any], client: AsyncKalshiClient, rx: RelExchange, alerts: Any) -> Engine:
    cfg = rig_config()
    venue = KalshiVenue(client, platform_id="local", account_ref="local:audit")
    methods = [m for m in ensure_demo_methods(conn) if m.phase == "live"]
    markets = [TrackedMarket(t, t.rsplit("-", 1)[0], "nfl") for t in rx.tickers]
    return Engine(conn, venue, config=cfg, mode="paper", kind="test", methods=methods, probabilities=Flipping(),
                  markets=markets, clock=lambda: datetime.now(UTC), alerts=alerts, initial_cash=Decimal("10000"),
                  risk_settings=simulated_market_settings(cfg))


async def _approval(engine: Engine, ticker: str, quantity: int) -> Any:
    m = await engine.venue.market(ticker)
    fee = engine.fees.fee(1, m.yes_ask)
    p = Decimal("0.70")
    plan = entries.EntryPlan("yes", quantity, m.yes_ask, "limit", "good_till_canceled",
                             entries.Edge("yes", p, m.yes_ask, fee, p - m.yes_ask - fee))
    assert engine.entry_risk is not None
    engine.entry_risk.load_units(engine.methods)
    engine.entry_risk.sync([], Decimal("10000"))
    approval = engine.entry_risk.approve(plan, m, engine.methods[0], event_id=m.event_ticker, sport="nfl",
                                         confidence="medium", now=datetime.now(UTC).timestamp())
    assert approval.approved, approval
    return approval


@pytest.mark.timeout(90)
async def test_late_landing_create_stays_tracked_and_is_canceled(
        db_url: str, rel_exchange: RelExchange) -> None:  # noqa: F811
    rx = rel_exchange
    ticker = rx.tickers[0]
    rx.quote(ticker, "0.49", "0.50")
    conn = psycopg.connect(db_url, autocommit=True)
    alerts = TableAlertSink(conn, "test")
    env = KalshiEnvironment("local", rx.base_url, rx.ws_url)
    # production lookup policy (RetryPolicy() defaults); a short client timeout keeps the test quick
    client = AsyncKalshiClient(env, signer=KalshiSigner.from_files(rx.key_id, rx.key_path), timeout=0.5,
                               rate_limits=tier_limits("unlimited"), retry=RetryPolicy(), alerts=alerts)
    late = LateTransport(client._http._transport, 4.0)
    client._http._transport = late
    engine = _engine(conn, client, rx, alerts)
    await engine.start()
    approval = await _approval(engine, ticker, 10)

    # the create reaches the exchange 4 s late: after the timeout and the ~1.75 s of lookups
    late.armed = True
    intent = OrderIntent(market_id=ticker, side="yes", action="buy", quantity=10, limit_price=Decimal("0.45"),
                         purpose="entry", decision_key="audit|late-create", approval=approval,
                         time_in_force="good_till_canceled")
    rec = await engine.executor.submit(intent)
    assert rec.status.value == "unresolved"  # not found yet: absence proves nothing while it may be in flight
    await asyncio.sleep(4.5)  # the delayed request is processed by the exchange now
    assert late.delivered == [201], late.delivered

    acct = rx.exchange.account(rx.user)
    venue_order = acct.by_client_id.get(rec.client_order_id)
    assert venue_order is not None, "precondition: the late create did land at the exchange"
    assert venue_order.status == "resting"

    # our books: the order must still be tracked (unresolved/open), not written off as rejected
    row = conn.execute("SELECT status, reject_reason FROM orders WHERE client_order_id = %s",
                       (rec.client_order_id,)).fetchone()
    tracked = rec.client_order_id in engine.executor.open
    # a stop cancels every resting entry of ours; a restart cancels what a dead process left resting
    await engine.stop()
    engine2 = _engine(conn, client, rx, alerts)
    await engine2.start()
    await engine2.stop()
    still_resting = acct.by_client_id[rec.client_order_id].status == "resting"
    await client.aclose()
    conn.close()
    assert (row[0], tracked, still_resting) == ("unresolved", True, False), (
        f"venue: order {venue_order.order_id} resting; ours: status={row[0]!r} ({row[1]!r}), "
        f"tracked by the executor={tracked}; after stop + restart + stop the venue order is still resting="
        f"{still_resting}")
