"""Typed events produced by the Kalshi WebSocket client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from precog.domain.market import MarketStatus, OrderBook, Quote, Trade
from precog.domain.order import Fill


class ConnectionState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SUBSCRIBED = "subscribed"
    CLOSED = "closed"  # stopped by us; no more reconnects


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: ConnectionState
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MarketsSubscribed:
    """The venue acknowledged the subscribe command(s) that added these markets: from now on their updates are
    streamed. Whatever happened to them before this moment was not, so a consumer that needs their current
    state asks REST now (a request sent earlier can miss a change made before the subscription took effect)."""

    tickers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """The local book of `ticker` changed (snapshot or delta). `book` is an immutable copy."""

    ticker: str
    book: OrderBook
    is_snapshot: bool
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class BookResync:
    """A sequence gap was seen; the books of these tickers are stale until their next snapshot."""

    tickers: tuple[str, ...]
    expected_seq: int
    got_seq: int


@dataclass(frozen=True, slots=True)
class TickerUpdated:
    quote: Quote


@dataclass(frozen=True, slots=True)
class TradeOccurred:
    trade: Trade


@dataclass(frozen=True, slots=True)
class FillReceived:
    fill: Fill


@dataclass(frozen=True, slots=True)
class MarketLifecycle:
    ticker: str
    event_type: str  # created, activated, deactivated, close_date_updated, determined, settled, ...
    status: MarketStatus | None
    result: str = ""
    close_time: datetime | None = None
    settlement_value: Decimal | None = None  # dollars, when the venue sent one


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error message from the venue (e.g. a rejected subscription)."""

    code: int | None
    message: str


StreamEvent = (
    StateChanged
    | MarketsSubscribed
    | BookUpdated
    | BookResync
    | TickerUpdated
    | TradeOccurred
    | FillReceived
    | MarketLifecycle
    | StreamError
)
