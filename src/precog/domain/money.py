"""Money helpers: every price, probability, fee and P&L is a Decimal built from a string.

Floats are refused at the boundary so a binary-float rounding error can never reach a money path.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

ZERO = Decimal("0")
ONE = Decimal("1")
CENT = Decimal("0.01")
TICK4 = Decimal("0.0001")  # DECIMAL(10,4): the storage precision of prices and money
MIN_PRICE = Decimal("0.0001")
MAX_PRICE = Decimal("0.9999")


class MoneyError(ValueError):
    """A value that should be money/probability could not be read exactly."""


def to_decimal(value: object, *, field: str = "value") -> Decimal:
    """Exact Decimal from str/int/Decimal. Floats and bools are refused (they are never exact money)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"{field}: {value!r} is a {type(value).__name__}; money must be a string or Decimal")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = Decimal(text)
        except InvalidOperation as exc:
            raise MoneyError(f"{field}: {value!r} is not a decimal number") from exc
    else:
        raise MoneyError(f"{field}: {value!r} ({type(value).__name__}) is not a decimal number")
    if not result.is_finite():
        raise MoneyError(f"{field}: {value!r} is not finite")
    return result


D = to_decimal


def q4(value: Decimal) -> Decimal:
    """Round half-up to 4 places (the DECIMAL(10,4) storage precision)."""
    return value.quantize(TICK4, rounding=ROUND_HALF_UP)


def ceil_cent(value: Decimal) -> Decimal:
    """Round up to the next whole cent (Kalshi rounds fees up)."""
    return value.quantize(CENT, rounding=ROUND_CEILING)


def floor_cent(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_FLOOR)


def cents_to_dollars(cents: int) -> Decimal:
    """Legacy integer cents (Kalshi's older fields) to dollars."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise MoneyError(f"cents must be an int, got {cents!r}")
    return Decimal(cents) / 100


def whole_contracts(count: Decimal, what: str) -> int:
    """A contract count as an int, refusing a fractional one (Kalshi's `*_fp` counts allow 0.01 contracts on markets
    with fractional trading; our books hold whole contracts): never truncated silently."""
    whole = int(count)
    if whole != count:
        raise ValueError(f"{what}: {count} contracts is not a whole number (fractional trading is not supported); "
                         "not booked")
    return whole


def is_probability(value: Decimal) -> bool:
    return ZERO <= value <= ONE


def fmt_money(value: Decimal) -> str:
    """`$1,234.56` / `-$3.20` for people; JSON output uses str(Decimal)."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value).quantize(CENT, rounding=ROUND_HALF_UP):,}"
