"""Orders and fills: what we ask a venue to do and what it did.

Prices are Decimal dollars of the side traded (a NO order at 0.40 is a YES ask at 0.60); counts are
Decimal contracts. Every order carries a `client_order_id` so a request whose outcome is unknown can
be found again instead of being sent twice.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from precog.domain.money import ONE, ZERO


class Side(StrEnum):
    YES = "yes"
    NO = "no"


class Action(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GOOD_TILL_CANCELED = "good_till_canceled"
    FILL_OR_KILL = "fill_or_kill"
    IMMEDIATE_OR_CANCEL = "immediate_or_cancel"


class OrderStatus(StrEnum):
    PENDING = "pending"
    RESTING = "resting"
    EXECUTED = "executed"
    CANCELED = "canceled"


_CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_client_order_id(prefix: str = "pc") -> str:
    """A fresh idempotency key (<= 64 chars of [A-Za-z0-9_-])."""
    return f"{prefix}-{uuid.uuid4().hex}"


class OrderRequestError(ValueError):
    """An order that must not be sent (names the offending field)."""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order. `price` is the limit price of `side` in dollars (YES price for YES, NO price for NO)."""

    ticker: str
    side: Side
    action: Action
    count: Decimal
    price: Decimal
    client_order_id: str
    type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce | None = None
    post_only: bool = False
    reduce_only: bool = False
    expiration_ts: int | None = None
    buy_max_cost: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.ticker:
            raise OrderRequestError("ticker: must not be empty")
        if not isinstance(self.side, Side):
            object.__setattr__(self, "side", Side(self.side))
        if not isinstance(self.action, Action):
            object.__setattr__(self, "action", Action(self.action))
        if not isinstance(self.type, OrderType):
            object.__setattr__(self, "type", OrderType(self.type))
        if self.time_in_force is not None and not isinstance(self.time_in_force, TimeInForce):
            object.__setattr__(self, "time_in_force", TimeInForce(self.time_in_force))
        if not isinstance(self.count, Decimal) or not self.count.is_finite() or self.count <= ZERO:
            raise OrderRequestError(f"count: must be a positive Decimal, got {self.count!r}")
        if self.count != self.count.quantize(Decimal("0.01")):
            raise OrderRequestError(f"count: at most 2 decimal places, got {self.count}")
        if not isinstance(self.price, Decimal) or not self.price.is_finite() or not (ZERO < self.price < ONE):
            raise OrderRequestError(f"price: must be a Decimal strictly between 0 and 1, got {self.price!r}")
        if not _CLIENT_ORDER_ID.match(self.client_order_id or ""):
            raise OrderRequestError(
                f"client_order_id: must be 1-64 chars of [A-Za-z0-9_-], got {self.client_order_id!r}"
            )

    @property
    def yes_price(self) -> Decimal:
        return self.price if self.side is Side.YES else ONE - self.price


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    client_order_id: str
    ticker: str
    side: Side
    action: Action
    type: OrderType
    status: OrderStatus
    yes_price: Decimal
    no_price: Decimal
    initial_count: Decimal
    fill_count: Decimal
    remaining_count: Decimal
    taker_fees: Decimal = ZERO
    maker_fees: Decimal = ZERO
    taker_fill_cost: Decimal = ZERO
    maker_fill_cost: Decimal = ZERO
    created_time: datetime | None = None
    last_update_time: datetime | None = None
    expiration_time: datetime | None = None

    @property
    def price(self) -> Decimal:
        """Limit price of the order's own side."""
        return self.yes_price if self.side is Side.YES else self.no_price

    @property
    def is_open(self) -> bool:
        return self.status in (OrderStatus.RESTING, OrderStatus.PENDING)

    @property
    def fees(self) -> Decimal:
        return self.taker_fees + self.maker_fees


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    trade_id: str
    order_id: str
    ticker: str
    side: Side
    action: Action
    count: Decimal
    yes_price: Decimal
    no_price: Decimal
    is_taker: bool
    fee: Decimal | None = None
    client_order_id: str = ""
    created_time: datetime | None = None

    @property
    def price(self) -> Decimal:
        return self.yes_price if self.side is Side.YES else self.no_price
