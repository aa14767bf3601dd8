"""Kalshi's fee schedule, the one fee function used by edges, sizing, the exchange and backtests.

An order's fee is ceil_to_cent(rate x multiplier x C x P x (1 - P)) where C is the number of contracts and P the
price in dollars. The general taker rate is 0.07; makers pay a lower rate (0.0175 on series that charge makers,
0 on most). Series carry a fee multiplier (1 by default).

An order filled in several pieces pays what a single equivalent fill would cost (Kalshi's fee rounding,
docs.kalshi.com "Fee Rounding"): each fill's trade fee is rounded up to $0.0001, the balance is kept in whole
cents by a rounding fee, and the order's accumulated rounding overpayment is rebated in whole cents. For
whole-cent prices and contracts that makes the order's fees so far ceil_to_cent(sum of its trade fees), which
`order_fill_fee` charges fill by fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from precog.domain.money import ONE, TICK4, ZERO, ceil_cent

TAKER_RATE = Decimal("0.07")
MAKER_RATE = Decimal("0.0175")


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    taker_rate: Decimal = TAKER_RATE
    maker_rate: Decimal = ZERO
    multiplier: Decimal = ONE

    def fee(self, count: int, price: Decimal, *, taker: bool = True) -> Decimal:
        """Fee in dollars for `count` contracts filled at `price`, rounded up to the cent."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if not (ZERO <= price <= ONE):
            raise ValueError(f"price must be within [0, 1], got {price}")
        if count == 0:
            return ZERO
        rate = self.taker_rate if taker else self.maker_rate
        raw = rate * self.multiplier * Decimal(count) * price * (ONE - price)
        return ceil_cent(raw) if raw > 0 else ZERO

    def trade_fee(self, count: int, price: Decimal, *, taker: bool = True) -> Decimal:
        """The fee model's fee for one fill, rounded up to $0.0001 (what `order_fill_fee` accumulates)."""
        if count <= 0:
            return ZERO
        rate = self.taker_rate if taker else self.maker_rate
        raw = rate * self.multiplier * Decimal(count) * price * (ONE - price)
        return raw.quantize(TICK4, rounding=ROUND_CEILING) if raw > 0 else ZERO

    def fee_per_contract(self, count: int, price: Decimal, *, taker: bool = True) -> Decimal:
        """Average fee per contract for an order of `count` (the ceil spreads over the whole order)."""
        if count <= 0:
            return ZERO
        return self.fee(count, price, taker=taker) / Decimal(count)


def order_fill_fee(basis: Decimal, charged: Decimal, trade_fee: Decimal) -> tuple[Decimal, Decimal]:
    """(the order's new fee basis, the fee this fill pays): `basis` is the sum of the order's earlier trade fees
    (`FeeSchedule.trade_fee`), `charged` what its earlier fills paid. The order has then paid, over all its fills,
    ceil_to_cent(basis): never more than one fill of the whole order would (see the module docstring)."""
    basis += trade_fee
    return basis, max(ceil_cent(basis) - charged, ZERO)


DEFAULT_FEES = FeeSchedule()


def taker_fee(count: int, price: Decimal, multiplier: Decimal = ONE) -> Decimal:
    return FeeSchedule(multiplier=multiplier).fee(count, price, taker=True)
