"""Account state reported by a venue: cash, positions, settlements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from precog.domain.money import ZERO


@dataclass(frozen=True, slots=True)
class Balance:
    balance: Decimal  # available cash in dollars
    portfolio_value: Decimal | None = None
    updated_ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Net position in one market: positive = YES contracts, negative = NO contracts."""

    ticker: str
    position: Decimal
    market_exposure: Decimal = ZERO
    total_traded: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    resting_orders_count: int | None = None
    last_updated: datetime | None = None

    @property
    def side(self) -> str | None:
        if self.position > 0:
            return "yes"
        if self.position < 0:
            return "no"
        return None


@dataclass(frozen=True, slots=True)
class EventPosition:
    event_ticker: str
    total_cost: Decimal
    total_cost_shares: Decimal
    event_exposure: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal


@dataclass(frozen=True, slots=True)
class Settlement:
    ticker: str
    event_ticker: str
    market_result: str  # yes / no / scalar / void
    yes_count: Decimal
    no_count: Decimal
    yes_total_cost: Decimal
    no_total_cost: Decimal
    revenue: Decimal  # dollars paid out
    fee_cost: Decimal
    settled_time: datetime | None = None
    value: Decimal | None = None  # payout of one YES contract in dollars (fractional settlements)
    # the venue gave these figures in whole cents (Kalshi's `revenue` and `value` are integers): a sub-cent
    # settlement's exact figures cannot be compared with them beyond the cent
    cents_only: frozenset[str] = frozenset()
