"""Kalshi's trade API (or the local exchange served over HTTP) as a Venue, through the real async client."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from precog.domain.market import Market, OrderBook
from precog.domain.order import Fill, Order, OrderRequest
from precog.domain.portfolio import Balance, Position, Settlement
from precog.engine.market_stream import MarketStream
from precog.engine.venue import DepthUnavailable, VenueOutcomeUnknown, VenueRejected
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.errors import (
    KalshiAPIError,
    KalshiConfigError,
    KalshiForbidden,
    KalshiNotFound,
    KalshiServerError,
    KalshiTransportError,
    KalshiUnauthorized,
    OrderOutcomeUnknown,
)


def account_ref_for(platform_id: str, base_url: str, key_id: str | None) -> str:
    """The venue account's name in our books: platform, host and a hash of the API key id (the key id itself
    is a credential and is never stored)."""
    digest = hashlib.sha256((key_id or "anonymous").encode()).hexdigest()[:16]
    return f"{platform_id}:{base_url}:key-{digest}"


class KalshiVenue:
    def __init__(self, client: AsyncKalshiClient, platform_id: str = "kalshi", account_ref: str | None = None,
                 market_stream: MarketStream | None = None) -> None:
        self.client = client
        # the live market view (WebSocket quotes over REST snapshots); without one every read is REST
        self.market_stream = market_stream
        self.platform_id = platform_id
        key = client.signer.key_id if client.signer else None
        self.account_ref = account_ref or account_ref_for(platform_id, client.environment.base_url, key)
        self._tickers: set[str] = set()

    async def place_order(self, req: OrderRequest) -> Order:
        self._tickers.add(req.ticker)
        try:
            return await self.client.create_order(req)
        except OrderOutcomeUnknown as exc:
            raise VenueOutcomeUnknown(str(exc)) from exc
        except (KalshiTransportError, KalshiServerError) as exc:
            raise VenueOutcomeUnknown(str(exc)) from exc
        except KalshiAPIError as exc:  # 4xx: refused, nothing was created
            raise VenueRejected(str(exc)) from exc

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        try:
            return await self.client.find_order(ticker, client_order_id)
        except (KalshiTransportError, KalshiAPIError) as exc:  # the lookup failed: still unknown, look again later
            raise VenueOutcomeUnknown(f"lookup of {client_order_id} failed: {exc}") from exc

    async def get_order(self, order_id: str) -> Order:
        return await self.client.get_order(order_id)

    async def cancel_order(self, order_id: str) -> Order | None:
        try:
            return (await self.client.cancel_order(order_id)).order
        except KalshiNotFound:
            return None

    async def open_orders(self) -> Sequence[Order]:
        return [o async for o in self.client.iter_orders(status="resting")]

    async def fills(self, since_ms: int | None = None) -> Sequence[Fill]:
        min_ts = None if since_ms is None else max(since_ms // 1000 - 1, 0)
        fills = [f async for f in self.client.iter_fills(min_ts=min_ts)]
        fills.sort(key=lambda f: (f.created_time is None, f.created_time, f.fill_id))
        return fills

    async def positions(self) -> Sequence[Position]:
        return [p async for p in self.client.iter_positions()]

    async def balance(self) -> Balance:
        return await self.client.get_balance()

    async def settlements(self) -> Sequence[Settlement]:
        return [s async for s in self.client.iter_settlements()]

    async def market(self, ticker: str) -> Market:
        """The stream's view while it is live and fresh (no REST call); otherwise REST, and the answer becomes
        the view's base."""
        stream = self.market_stream
        if stream is None:
            return await self.client.get_market(ticker)
        live = stream.market(ticker)
        if live is not None:
            return live
        requested = stream.clock()
        m = await self.client.get_market(ticker)
        stream.observe_rest(m, requested)
        return m

    async def orderbook(self, ticker: str, depth: int | None = None) -> OrderBook:
        try:
            return await self.client.get_orderbook(ticker, depth=depth)
        except (KalshiUnauthorized, KalshiForbidden, KalshiConfigError) as exc:  # the endpoint wants credentials
            raise DepthUnavailable(str(exc)) from exc


async def http_venue_for_local_exchange(exchange: Any, user_id: str, *, platform_id: str = "local",
                                        key_dir: Path | None = None
                                        ) -> tuple[KalshiVenue, Callable[[], Awaitable[None]]]:
    """Serve `exchange` on 127.0.0.1 and return a venue that reaches `user_id`'s account through the real
    Kalshi client over HTTP (RSA-PSS signed), plus an async closer that stops both."""
    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.exchange.runner import ExchangeServer
    from precog.venues.kalshi.auth import KalshiSigner
    from precog.venues.kalshi.environments import KalshiEnvironment
    from precog.venues.kalshi.ratelimit import tier_limits

    tmp = None
    if key_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="precog-keys-")
        key_dir = Path(tmp.name)
    key_id, key_path, public_pem = generate_key_pair(key_dir)
    # requests are signed with the wall clock; the exchange may run on simulated time
    server = ExchangeServer(exchange, tick_interval=0.05, auth_clock=lambda: int(time.time() * 1000))
    server.keys.register(user_id, serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    env = KalshiEnvironment("local", server.base_url, server.ws_url)
    client = AsyncKalshiClient(env, signer=KalshiSigner.from_files(key_id, key_path),
                               rate_limits=tier_limits("unlimited"))
    venue = KalshiVenue(client, platform_id=platform_id)

    async def close() -> None:
        await client.aclose()
        server.stop()
        if tmp is not None:
            tmp.cleanup()

    return venue, close
