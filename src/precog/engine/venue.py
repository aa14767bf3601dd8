"""What the engine needs from a trading venue, as one async interface.

Implementations: `LocalVenue` (the in-process local exchange), `KalshiVenue` (Kalshi's REST API, or the local
exchange served over HTTP — the same client and path as live trading) and `PaperVenue` (real market data,
simulated fills against the current book). The engine never knows which one it talks to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from precog.domain.market import Market, OrderBook
from precog.domain.order import Fill, Order, OrderRequest
from precog.domain.portfolio import Balance, Position, Settlement


class VenueRejected(Exception):
    """The venue refused the order; nothing was created (e.g. insufficient balance, market closed)."""


class VenueOutcomeUnknown(Exception):
    """The request may or may not have reached the venue; the order must be looked up by client_order_id."""


class DepthUnavailable(Exception):
    """The venue shows this account no order book depth (e.g. the endpoint needs credentials it does not have)."""


class Venue(Protocol):
    platform_id: str
    # Identifies the account at the venue (e.g. `local:<exchange session>:<user>`); records of other accounts
    # on the same platform (an earlier local exchange) are never reconciled against this one.
    account_ref: str

    async def place_order(self, req: OrderRequest) -> Order:
        """Create the order. Raises VenueRejected (nothing happened) or VenueOutcomeUnknown."""
        ...

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        ...

    async def get_order(self, order_id: str) -> Order:
        ...

    async def cancel_order(self, order_id: str) -> Order | None:
        """Cancel what is left of a resting order; None when it was no longer resting."""
        ...

    async def open_orders(self) -> Sequence[Order]:
        ...

    async def fills(self, since_ms: int | None = None) -> Sequence[Fill]:
        """Our fills, oldest first (optionally only those at or after `since_ms`)."""
        ...

    async def positions(self) -> Sequence[Position]:
        ...

    async def balance(self) -> Balance:
        ...

    async def settlements(self) -> Sequence[Settlement]:
        ...

    async def market(self, ticker: str) -> Market:
        ...

    async def orderbook(self, ticker: str, depth: int | None = None) -> OrderBook:
        """The resting bids of both sides, best first (`depth` keeps the best N levels per side; None = all).
        A YES ask is a NO bid at 1 - price: `OrderBook.yes_asks()`. Raises DepthUnavailable when the venue
        will not show this account its book."""
        ...
