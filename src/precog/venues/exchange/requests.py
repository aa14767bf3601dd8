"""Kalshi request bodies -> engine arguments, with Kalshi's validation messages (400 naming the field)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from precog.venues.exchange.errors import InvalidOrder, InvalidRequest

_PRICE_FIELDS = ("yes_price", "no_price", "yes_price_dollars", "no_price_dollars")


def _int_field(body: dict[str, Any], name: str, *, minimum: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOrder(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidOrder(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool_field(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidOrder(f"{name} must be true or false, got {value!r}")
    return value


def _str_field(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidOrder(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidOrder(f"{name} must be a string, got {value!r}")
    return value


def _dollars(value: Any, name: str) -> Decimal:
    if not isinstance(value, str):
        raise InvalidOrder(f"{name} must be a fixed-point dollar string like \"0.4200\", got {value!r}")
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        raise InvalidOrder(f"{name} {value!r} is not a decimal number") from None
    if not d.is_finite():
        raise InvalidOrder(f"{name} {value!r} is not a finite number")
    return d


def count_from(body: dict[str, Any], int_name: str, fp_name: str, *, required: bool) -> int | None:
    """A whole contract count from `count` and/or `count_fp` (they must agree when both are given)."""
    n = body.get(int_name)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        raise InvalidOrder(f"{int_name} must be an integer, got {n!r}")
    raw_fp = body.get(fp_name)
    n_fp: int | None = None
    if raw_fp is not None:
        d = _dollars(raw_fp, fp_name) if isinstance(raw_fp, str) else None
        if d is None:
            raise InvalidOrder(f"{fp_name} must be a fixed-point count string like \"10.00\", got {raw_fp!r}")
        if d != d.to_integral_value():
            raise InvalidOrder(f"{fp_name} {raw_fp!r}: fractional contracts are not enabled on this market")
        n_fp = int(d)
    if n is not None and n_fp is not None and n != n_fp:
        raise InvalidOrder(f"{int_name} ({n}) and {fp_name} ({raw_fp}) disagree")
    result = n if n is not None else n_fp
    if result is None and required:
        raise InvalidOrder(f"{int_name} (or {fp_name}) is required")
    return result


def side_price(body: dict[str, Any], side: str, *, required: bool) -> Decimal | None:
    """The price of `side` in dollars from exactly one of the four price fields."""
    given = [f for f in _PRICE_FIELDS if body.get(f) is not None]
    if len(given) > 1:
        raise InvalidOrder("exactly one of yes_price, no_price, yes_price_dollars, or no_price_dollars should "
                           f"be provided (got {', '.join(given)})")
    if not given:
        if required:
            raise InvalidOrder("exactly one of yes_price, no_price, yes_price_dollars, or no_price_dollars should "
                               "be provided")
        return None
    name = given[0]
    value = body[name]
    if name.endswith("_dollars"):
        price = _dollars(value, name)
    else:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidOrder(f"{name} must be an integer number of cents (1-99), got {value!r}")
        if not 1 <= value <= 99:
            raise InvalidOrder(f"{name} must be within 1-99 cents, got {value}")
        price = Decimal(value) / 100
    if not Decimal("0") < price < Decimal("1"):
        raise InvalidOrder(f"{name} must be within (0, 1) dollars, got {price}")
    quoted_side = "yes" if name.startswith("yes") else "no"
    return price if quoted_side == side else 1 - price


def parse_create_order(body: Any) -> dict[str, Any]:
    """Keyword arguments for `Exchange.place_order` from a CreateOrderRequest body."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    ticker = _str_field(body, "ticker", required=True)
    side = _str_field(body, "side", required=True)
    action = _str_field(body, "action", required=True)
    if side not in ("yes", "no"):
        raise InvalidOrder(f"side must be 'yes' or 'no', got {side!r}")
    if action not in ("buy", "sell"):
        raise InvalidOrder(f"action must be 'buy' or 'sell', got {action!r}")
    otype = _str_field(body, "type") or "limit"
    if otype not in ("limit", "market"):
        raise InvalidOrder(f"type must be 'limit' or 'market', got {otype!r}")
    count = count_from(body, "count", "count_fp", required=True)
    assert count is not None
    if count < 1:
        raise InvalidOrder(f"count must be >= 1, got {count}")
    price = side_price(body, side, required=otype == "limit")
    expiration_ts = _int_field(body, "expiration_ts", minimum=0)
    buy_max_cost = _int_field(body, "buy_max_cost", minimum=1)
    sell_floor = _int_field(body, "sell_position_floor")
    if sell_floor not in (None, 0):
        raise InvalidOrder("sell_position_floor only accepts 0 (use reduce_only)")
    reduce_only = _bool_field(body, "reduce_only") or _bool_field(body, "sell_position_capped") or sell_floor == 0
    subaccount = _int_field(body, "subaccount", minimum=0) or 0
    if subaccount:
        raise InvalidOrder(f"subaccount {subaccount} does not exist (the local exchange has only the primary, 0)")
    return {
        "ticker": ticker, "side": side, "action": action, "count": count, "price": price, "type": otype,
        "time_in_force": _str_field(body, "time_in_force"),
        "client_order_id": _str_field(body, "client_order_id"),
        "expiration_ms": expiration_ts * 1000 if expiration_ts else None,
        "post_only": _bool_field(body, "post_only"), "reduce_only": reduce_only,
        "buy_max_cost": Decimal(buy_max_cost) / 100 if buy_max_cost is not None else None,
        "self_trade_prevention_type": _str_field(body, "self_trade_prevention_type"),
        "order_group_id": _str_field(body, "order_group_id"),
        "cancel_order_on_pause": _bool_field(body, "cancel_order_on_pause"),
    }


def parse_amend(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    side = _str_field(body, "side", required=True)
    if side not in ("yes", "no"):
        raise InvalidOrder(f"side must be 'yes' or 'no', got {side!r}")
    action = _str_field(body, "action", required=True)
    price = side_price(body, side, required=True)
    return {
        "ticker": _str_field(body, "ticker", required=True), "side": side, "action": action,
        "price": price, "count": count_from(body, "count", "count_fp", required=False),
        "updated_client_order_id": _str_field(body, "updated_client_order_id"),
    }


def parse_decrease(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    reduce_by = count_from(body, "reduce_by", "reduce_by_fp", required=False)
    reduce_to = count_from(body, "reduce_to", "reduce_to_fp", required=False)
    if (reduce_by is None) == (reduce_to is None):
        raise InvalidRequest("exactly one of reduce_by (reduce_by_fp) or reduce_to (reduce_to_fp) must be given")
    return {"reduce_by": reduce_by, "reduce_to": reduce_to}
