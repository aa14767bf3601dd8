"""`local_exchange`: a real Kalshi-compatible exchange server on 127.0.0.1 for venue tests.

    def test_something(local_exchange):
        local_exchange.base_url          # http://127.0.0.1:PORT/trade-api/v2
        local_exchange.ws_url            # ws://127.0.0.1:PORT/trade-api/ws/v2 (signed handshakes only, as Kalshi)
        local_exchange.key_id, local_exchange.private_key_path   # a funded account ($1,000)
        local_exchange.tickers           # two active markets of one NFL game event
        local_exchange.counterparty_order(ticker, "no", "buy", 10, "0.55")   # someone else trades
        local_exchange.admin.settle(ticker, "1")    # /sim/ admin API (faults, clock, WS drops ...)
        local_exchange.exchange          # the in-process engine, for direct inspection
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from precog.venues.exchange.admin_client import SimAdminClient
from precog.venues.exchange.auth import generate_key_pair
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.runner import ExchangeServer
from precog.venues.kalshi.events import StreamEvent

SERIES = "KXNFLGAME"
EVENT = "KXNFLGAME-25OCT05-NEBUF"
TICKERS = (f"{EVENT}-NE", f"{EVENT}-BUF")
STARTING_BALANCE = Decimal("1000.00")


@dataclass
class LocalExchange:
    server: ExchangeServer
    exchange: Exchange
    admin: SimAdminClient
    key_id: str
    private_key_path: Path
    user_id: str
    counterparty: str  # a second funded account (no API key) for the other side of trades
    tickers: tuple[str, ...] = TICKERS
    event_ticker: str = EVENT
    series_ticker: str = SERIES
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def root_url(self) -> str:
        return self.server.root_url

    def create_market(self, ticker: str, **fields: Any) -> str:
        self.admin.create_market(ticker, **fields)
        return ticker

    def counterparty_order(self, ticker: str, side: str, action: str, count: int,
                           price_dollars: str | Decimal | None, **fields: Any) -> dict[str, Any]:
        return self.admin.place_order(self.counterparty, ticker, side, action, count,
                                      price_dollars=price_dollars, **fields)

    def settle(self, ticker: str, settlement_value: str | Decimal) -> dict[str, Any]:
        return self.admin.settle(ticker, settlement_value)

    def balance(self, user_id: str | None = None) -> Decimal:
        with self.exchange.lock:
            return self.exchange.accounts[user_id or self.user_id].balance


def sign_headers(private_key: rsa.RSAPrivateKey, key_id: str, method: str, path: str,
                 timestamp_ms: int | None = None) -> dict[str, str]:
    """Kalshi's headers, written out independently of the client under test (RSA-PSS, SHA-256, salt 32)."""
    ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    signature = private_key.sign(f"{ts}{method.upper()}{path}".encode(),
                                 padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    return {"KALSHI-ACCESS-KEY": key_id, "KALSHI-ACCESS-TIMESTAMP": ts,
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode()}


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


class KalshiTestAuth(httpx.Auth):
    """httpx auth that signs every request like Kalshi wants (`skew_ms` shifts the timestamp)."""

    def __init__(self, key_id: str, private_key_path: Path, skew_ms: int = 0) -> None:
        self.key_id = key_id
        self.key = load_private_key(private_key_path)
        self.skew_ms = skew_ms

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        ts = int(time.time() * 1000) + self.skew_ms
        request.headers.update(sign_headers(self.key, self.key_id, request.method, request.url.path, ts))
        yield request


@pytest.fixture(scope="session")
def exchange_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, bytes]:
    """(key id, private key path, public key PEM) generated once per test session."""
    return generate_key_pair(tmp_path_factory.mktemp("exchange-keys"))


@contextlib.contextmanager
def serve_local_exchange(exchange_key: tuple[str, Path, bytes], **server_options: Any) -> Iterator[LocalExchange]:
    """The venue tests' exchange (two markets, a funded keyed account, a counterparty) served on 127.0.0.1;
    `server_options` go to the server (e.g. `allow_unsigned_ws=True`)."""
    key_id, key_path, public_pem = exchange_key
    ex = Exchange(seed=7)
    ex.create_series(SERIES, "Pro Football Game", tags=["Football"])
    ex.create_event(EVENT, SERIES, "New England at Buffalo", "NE at BUF")
    ex.create_market(TICKERS[0], EVENT, title="Will New England win?", yes_sub_title="New England",
                     no_sub_title="New England")
    ex.create_market(TICKERS[1], EVENT, title="Will Buffalo win?", yes_sub_title="Buffalo", no_sub_title="Buffalo")
    user = ex.create_account(balance=STARTING_BALANCE)
    counterparty = ex.create_account(balance=Decimal("100000.00"))
    server = ExchangeServer(ex, tick_interval=0.05, **server_options)
    server.keys.register(user.user_id, serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    admin = SimAdminClient(server.root_url)
    try:
        yield LocalExchange(server=server, exchange=ex, admin=admin, key_id=key_id, private_key_path=key_path,
                            user_id=user.user_id, counterparty=counterparty.user_id)
    finally:
        admin.close()
        server.stop()


@pytest.fixture
def local_exchange(exchange_key: tuple[str, Path, bytes]) -> Iterator[LocalExchange]:
    """Refuses an unsigned WebSocket handshake with 401, as Kalshi does."""
    with serve_local_exchange(exchange_key) as lx:
        yield lx


@pytest.fixture
def unsigned_ws_exchange(exchange_key: tuple[str, Path, bytes]) -> Iterator[LocalExchange]:
    """The same exchange served with the opt-out `allow_unsigned_ws=True` (`--allow-unsigned-ws`): an unsigned
    WebSocket connection gets the public channels."""
    with serve_local_exchange(exchange_key, allow_unsigned_ws=True) as lx:
        yield lx


@pytest.fixture
def kalshi_auth() -> type[KalshiTestAuth]:
    """The test-side signer class: `kalshi_auth(key_id, private_key_path, skew_ms=0)` is an httpx.Auth."""
    return KalshiTestAuth


@pytest.fixture
def sign(local_exchange: LocalExchange) -> Callable[..., dict[str, str]]:
    """`sign(method, path, key_id=None, timestamp_ms=None)`: Kalshi headers for the funded test key."""
    key = load_private_key(local_exchange.private_key_path)

    def _sign(method: str, path: str, key_id: str | None = None, timestamp_ms: int | None = None) -> dict[str, str]:
        return sign_headers(key, key_id or local_exchange.key_id, method, path, timestamp_ms)

    return _sign


@pytest.fixture
def exchange_http(local_exchange: LocalExchange) -> Iterator[httpx.Client]:
    """An httpx client on the exchange's REST base URL, signing as the funded test account."""
    with httpx.Client(base_url=local_exchange.base_url,
                      auth=KalshiTestAuth(local_exchange.key_id, local_exchange.private_key_path),
                      timeout=10) as client:
        yield client


@pytest.fixture
def public_http(local_exchange: LocalExchange) -> Iterator[httpx.Client]:
    """An unsigned httpx client on the REST base URL (public market data needs no key)."""
    with httpx.Client(base_url=local_exchange.base_url, timeout=10) as client:
        yield client


class StreamRecorder:
    """The events a Kalshi stream client hands its `on_event` callback, kept in order."""

    def __init__(self) -> None:
        self.events: list[StreamEvent] = []

    def __call__(self, event: StreamEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async def _poll() -> None:
            while not predicate():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(_poll(), timeout)
