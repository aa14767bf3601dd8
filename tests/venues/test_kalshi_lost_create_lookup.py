"""An order create whose answer is lost is never reported as "rejected, nothing created", even when the
lookups after it fail.

OpenAPI v3.13 `POST /portfolio/orders` answers 201 (created) or 400/401/409/429/500; a lost answer
(connection cut) says nothing about whether the order exists. `precog.engine.venue.VenueRejected` means
"the venue refused the order; nothing was created" and the executor then drops the order from its books, so a
lost answer is VenueOutcomeUnknown and the executor looks the order up again.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from precog.domain.order import Action, OrderRequest, Side, new_client_order_id
from precog.engine.kalshi_venue import KalshiVenue
from precog.engine.venue import VenueOutcomeUnknown, VenueRejected
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy
from precog.venues.kalshi.environments import resolve_environment
from venues.conftest import TICKERS, LocalExchange

TICKER = TICKERS[0]
ORDERS = "/trade-api/v2/portfolio/orders"


def _client(lx: LocalExchange, max_retries: int) -> AsyncKalshiClient:
    retry = RetryPolicy(max_retries=max_retries, backoff_base=0.01, backoff_max=0.02, lookup_attempts=2,
                        lookup_delay=0.01)
    return AsyncKalshiClient(resolve_environment("local", lx.server.base_url),
                             signer=KalshiSigner.from_files(lx.key_id, lx.private_key_path),
                             retry=retry, rate_limits="unlimited")


def _buy(count: str, tag: str) -> OrderRequest:
    return OrderRequest(ticker=TICKER, side=Side.YES, action=Action.BUY, count=Decimal(count), price=Decimal("0.30"),
                        client_order_id=new_client_order_id(tag))


async def test_lost_create_then_rate_limited_lookup_is_not_reported_as_rejected(
        local_exchange: LocalExchange) -> None:
    admin = local_exchange.admin
    admin.drop_next_order_response()  # the order is executed, its HTTP answer is lost
    admin.fail_next(50, status=429, retry_after=0.01, method="GET", path_prefix=ORDERS)
    client = _client(local_exchange, max_retries=2)
    req = _buy("3", "lost")
    outcome: str
    try:
        await KalshiVenue(client).place_order(req)
        outcome = "placed"
    except VenueOutcomeUnknown:
        outcome = "unknown"
    except VenueRejected as exc:
        outcome = f"rejected: {exc}"
    finally:
        await client.aclose()
        admin.clear_faults()
    ex = local_exchange.exchange
    with ex.lock:
        live = [o for o in ex.orders.values() if o.client_order_id == req.client_order_id]
    assert len(live) == 1, "the create did reach the venue (precondition)"
    # VenueOutcomeUnknown (the executor looks the order up again), never VenueRejected ("nothing was created")
    # while a live order rests at the venue
    assert outcome in ("unknown", "placed"), f"order resting at the venue but reported as {outcome!r}"


async def test_a_conflict_whose_order_cannot_be_found_is_unknown_and_a_lookup_failure_is_not_a_refusal(
        local_exchange: LocalExchange) -> None:
    """409 says the venue already has this client_order_id: failing to find it never means "nothing created";
    and a lookup that fails (throttled past its retries) leaves the order's outcome unknown."""
    admin = local_exchange.admin
    client = _client(local_exchange, max_retries=1)
    venue = KalshiVenue(client)
    req = _buy("2", "conflict")
    try:
        admin.fail_next(1, status=409, method="POST", path_prefix=ORDERS)
        with pytest.raises(VenueOutcomeUnknown):
            await venue.place_order(req)
        admin.clear_faults()
        admin.fail_next(50, status=429, retry_after=0.01, method="GET", path_prefix=ORDERS)
        with pytest.raises(VenueOutcomeUnknown):
            await venue.find_order(TICKER, req.client_order_id)
        admin.clear_faults()
        assert await venue.find_order(TICKER, req.client_order_id) is None  # the 409 was the only answer
    finally:
        admin.clear_faults()
        await client.aclose()
