"""Kalshi payloads -> typed domain objects.

Kalshi's API changed generations under its users, so every field is read in each form it has had,
most precise first:
  money/prices: `<name>_dollars` or `<name>_fixed` fixed-point strings  >  legacy integer cents `<name>`
  counts:       `<name>_fp` fixed-point strings                         >  legacy integer `<name>`
(A string found under the bare legacy name is read as dollars/contracts: cents were always numbers.)
Response bodies are decoded with `parse_float=Decimal`, so no binary float ever reaches a price.

Unknown fields are ignored. A required field missing in every form, or malformed in the form present,
raises `KalshiSchemaError` naming the field — never a default price.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from precog.alerts.api import AlertRaiser
from precog.domain.market import (
    OHLC,
    Candlestick,
    Event,
    Market,
    MarketStatus,
    OrderBook,
    PriceLevel,
    Quote,
    Series,
    Trade,
)
from precog.domain.money import ONE, ZERO
from precog.domain.order import Action, Fill, Order, OrderStatus, OrderType, Side
from precog.domain.portfolio import Balance, EventPosition, Position, Settlement
from precog.venues.kalshi.errors import KalshiSchemaError
from precog.venues.kalshi.events import MarketLifecycle

T = TypeVar("T")
Payload = Mapping[str, Any]
HUNDRED = Decimal(100)

# Kalshi's market status words (response `status`, the `status` query filter and older generations)
# onto our lifecycle. Not-yet-open markets are CLOSED (no trading); determined/disputed/amended markets
# have a result but no final payout yet, so they stay CLOSED until finalized/settled.
STATUS_MAP: dict[str, MarketStatus] = {
    "initialized": MarketStatus.CLOSED,
    "unopened": MarketStatus.CLOSED,
    "active": MarketStatus.OPEN,
    "open": MarketStatus.OPEN,
    "inactive": MarketStatus.HALTED,
    "paused": MarketStatus.HALTED,
    "halted": MarketStatus.HALTED,
    "closed": MarketStatus.CLOSED,
    "determined": MarketStatus.CLOSED,
    "disputed": MarketStatus.CLOSED,
    "amended": MarketStatus.CLOSED,
    "finalized": MarketStatus.SETTLED,
    "settled": MarketStatus.SETTLED,
}

LIFECYCLE_EVENT_STATUS: dict[str, MarketStatus] = {
    "created": MarketStatus.CLOSED,
    "activated": MarketStatus.OPEN,
    "deactivated": MarketStatus.HALTED,
    "determined": MarketStatus.CLOSED,
    "settled": MarketStatus.SETTLED,
}

ORDER_STATUS_MAP: dict[str, OrderStatus] = {
    "resting": OrderStatus.RESTING,
    "pending": OrderStatus.PENDING,
    "executed": OrderStatus.EXECUTED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
}

_MISSING = object()


# ----------------------------------------------------------------------------------------------- fields


def _get(p: Payload, name: str) -> Any:
    value = p.get(name, _MISSING)
    return _MISSING if value is None else value


def _decimal_text(value: str, field: str, kind: str) -> Decimal:
    try:
        result = Decimal(value.strip())
    except (InvalidOperation, AttributeError):
        raise KalshiSchemaError(field, f"is not a decimal string: {value!r}", kind=kind) from None
    if not result.is_finite():
        raise KalshiSchemaError(field, f"is not finite: {value!r}", kind=kind)
    return result


def _legacy_number(value: Any, field: str, kind: str) -> Decimal:
    if isinstance(value, bool):
        raise KalshiSchemaError(field, f"is a boolean, expected a number: {value!r}", kind=kind)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, float):  # only reachable when a caller decoded JSON without parse_float=Decimal
        raise KalshiSchemaError(field, "is a binary float; decode JSON with parse_float=Decimal", kind=kind)
    raise KalshiSchemaError(field, f"is not a number: {value!r}", kind=kind)


def dollars(
    p: Payload, name: str, kind: str, *, required: bool = True, price: bool = False
) -> Decimal | None:
    """Dollar amount `name` from `<name>_dollars` / `<name>_fixed` (strings) or legacy cents `<name>`."""
    for suffix in ("_dollars", "_fixed"):
        value = _get(p, name + suffix)
        if value is not _MISSING:
            if not isinstance(value, str):
                # a number under a *_dollars name is still dollars (some emitters forget to quote)
                amount = _legacy_number(value, name + suffix, kind)
            else:
                amount = _decimal_text(value, name + suffix, kind)
            return _check_price(amount, name + suffix, kind) if price else amount
    value = _get(p, name)
    if value is not _MISSING:
        if isinstance(value, str):
            amount = _decimal_text(value, name, kind)
        else:
            amount = _legacy_number(value, name, kind) / HUNDRED
        return _check_price(amount, name, kind) if price else amount
    if required:
        raise KalshiSchemaError(name, f"is missing (looked for {name}_dollars, {name}_fixed, {name})", kind=kind)
    return None


def _check_price(amount: Decimal, field: str, kind: str) -> Decimal:
    if not (ZERO <= amount <= ONE):
        raise KalshiSchemaError(field, f"is outside [0, 1] dollars: {amount}", kind=kind)
    return amount


def req_dollars(p: Payload, name: str, kind: str, *, price: bool = False) -> Decimal:
    value = dollars(p, name, kind, required=True, price=price)
    assert value is not None
    return value


def count(p: Payload, name: str, kind: str, *, required: bool = True) -> Decimal | None:
    """Contract count `name` from `<name>_fp` (string) or the legacy integer `<name>`."""
    value = _get(p, name + "_fp")
    if value is not _MISSING:
        if isinstance(value, str):
            return _decimal_text(value, name + "_fp", kind)
        return _legacy_number(value, name + "_fp", kind)
    value = _get(p, name)
    if value is not _MISSING:
        if isinstance(value, str):
            return _decimal_text(value, name, kind)
        return _legacy_number(value, name, kind)
    if required:
        raise KalshiSchemaError(name, f"is missing (looked for {name}_fp, {name})", kind=kind)
    return None


def req_count(p: Payload, name: str, kind: str) -> Decimal:
    value = count(p, name, kind, required=True)
    assert value is not None
    return value


def text(p: Payload, name: str, kind: str, *, required: bool = True, default: str = "") -> str:
    value = _get(p, name)
    if value is _MISSING:
        if required:
            raise KalshiSchemaError(name, "is missing", kind=kind)
        return default
    if not isinstance(value, str):
        raise KalshiSchemaError(name, f"is not a string: {value!r}", kind=kind)
    if required and not value:
        raise KalshiSchemaError(name, "is empty", kind=kind)
    return value


def first_text(p: Payload, names: tuple[str, ...], kind: str) -> str:
    for name in names:
        value = _get(p, name)
        if isinstance(value, str) and value:
            return value
    raise KalshiSchemaError(names[0], f"is missing (looked for {', '.join(names)})", kind=kind)


def boolean(p: Payload, name: str, kind: str, *, required: bool = False) -> bool | None:
    value = _get(p, name)
    if value is _MISSING:
        if required:
            raise KalshiSchemaError(name, "is missing", kind=kind)
        return None
    if not isinstance(value, bool):
        raise KalshiSchemaError(name, f"is not a boolean: {value!r}", kind=kind)
    return value


_FRACTION = re.compile(r"(\.\d{6})\d+")


def timestamp(p: Payload, name: str, kind: str, *, required: bool = False) -> datetime | None:
    """RFC 3339 string or Unix seconds (ints) / milliseconds (> 1e11) -> aware UTC datetime."""
    value = _get(p, name)
    if value is _MISSING or value == "":
        if required:
            raise KalshiSchemaError(name, "is missing", kind=kind)
        return None
    if isinstance(value, bool):
        raise KalshiSchemaError(name, f"is not a timestamp: {value!r}", kind=kind)
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise KalshiSchemaError(name, f"is not a valid Unix timestamp: {value!r}", kind=kind)
        seconds = Decimal(value)
        if seconds > Decimal(10) ** 11:
            seconds /= 1000
        try:
            return datetime.fromtimestamp(float(seconds), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise KalshiSchemaError(name, f"is not a valid Unix timestamp: {value!r}", kind=kind) from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00"))
        except ValueError:
            raise KalshiSchemaError(name, f"is not an RFC 3339 time: {value!r}", kind=kind) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise KalshiSchemaError(name, f"is not a timestamp: {value!r}", kind=kind)


def _enum(p: Payload, name: str, kind: str, enum: Callable[[str], T]) -> T:
    raw = text(p, name, kind)
    try:
        return enum(raw.lower())
    except ValueError:
        raise KalshiSchemaError(name, f"has unknown value {raw!r}", kind=kind) from None


def market_status(raw: str, *, field: str = "status", kind: str = "market") -> MarketStatus:
    try:
        return STATUS_MAP[raw.strip().lower()]
    except (KeyError, AttributeError):
        raise KalshiSchemaError(field, f"has unknown market status {raw!r}", kind=kind) from None


def _mapping(value: Any, field: str, kind: str) -> Payload:
    if not isinstance(value, Mapping):
        raise KalshiSchemaError(field, f"is not an object: {type(value).__name__}", kind=kind)
    return value


def unwrap(body: Any, key: str, kind: str) -> Payload:
    """`body[key]` as an object (e.g. {"market": {...}})."""
    body = _mapping(body, "<body>", kind)
    if key not in body or body[key] is None:
        raise KalshiSchemaError(key, "is missing from the response", kind=kind)
    return _mapping(body[key], key, kind)


def items(body: Any, key: str, kind: str) -> list[Payload]:
    """`body[key]` as a list of objects; a null list (Kalshi sends null for empty) is empty."""
    body = _mapping(body, "<body>", kind)
    if key not in body:
        raise KalshiSchemaError(key, "is missing from the response", kind=kind)
    value = body[key]
    if value is None:
        return []
    if not isinstance(value, list):
        raise KalshiSchemaError(key, f"is not a list: {type(value).__name__}", kind=kind)
    return [_mapping(v, f"{key}[{i}]", kind) for i, v in enumerate(value)]


def cursor_of(body: Any) -> str | None:
    if isinstance(body, Mapping):
        value = body.get("cursor")
        if isinstance(value, str) and value:
            return value
    return None


# ----------------------------------------------------------------------------------------------- objects


def parse_series(p: Payload) -> Series:
    kind = "series"
    mult = _get(p, "fee_multiplier")
    multiplier = ONE
    if mult is not _MISSING:
        multiplier = _decimal_text(mult, "fee_multiplier", kind) if isinstance(mult, str) else _legacy_number(
            mult, "fee_multiplier", kind
        )
    tags = _get(p, "tags")
    return Series(
        ticker=text(p, "ticker", kind),
        title=text(p, "title", kind, required=False),
        category=text(p, "category", kind, required=False),
        frequency=text(p, "frequency", kind, required=False),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        fee_type=text(p, "fee_type", kind, required=False),
        fee_multiplier=multiplier,
    )


def _price_ranges_tick(p: Payload, kind: str) -> Decimal | None:
    """The finest price step of `price_ranges` ([{start, end, step}] dollar strings), the form OpenAPI v3.13 gives
    a market's ticks in (its integer-cents `tick_size` is deprecated and cannot carry a deci-cent step)."""
    ranges = _get(p, "price_ranges")
    if ranges is _MISSING:
        return None
    if not isinstance(ranges, list):
        raise KalshiSchemaError("price_ranges", f"is not a list: {type(ranges).__name__}", kind=kind)
    steps = []
    for i, entry in enumerate(ranges):
        step = _get(_mapping(entry, f"price_ranges[{i}]", kind), "step")
        if not isinstance(step, str):
            raise KalshiSchemaError(f"price_ranges[{i}].step", f"is not a dollar string: {step!r}", kind=kind)
        value = _decimal_text(step, f"price_ranges[{i}].step", kind)
        if not ZERO < value <= ONE:
            raise KalshiSchemaError(f"price_ranges[{i}].step", f"is outside (0, 1] dollars: {step!r}", kind=kind)
        steps.append(value)
    return min(steps) if steps else None


def parse_market(p: Payload) -> Market:
    kind = "market"
    raw_status = text(p, "status", kind)
    tick_size = _price_ranges_tick(p, kind)
    tick = _get(p, "tick_size")
    if tick_size is None and tick is not _MISSING:
        # legacy tick_size is in cents
        tick_size = _legacy_number(tick, "tick_size", kind) / HUNDRED if not isinstance(tick, str) else (
            _decimal_text(tick, "tick_size", kind)
        )
    notional = dollars(p, "notional_value", kind, required=False)
    return Market(
        ticker=text(p, "ticker", kind),
        event_ticker=text(p, "event_ticker", kind),
        status=market_status(raw_status),
        venue_status=raw_status,
        yes_bid=req_dollars(p, "yes_bid", kind, price=True),
        yes_ask=req_dollars(p, "yes_ask", kind, price=True),
        no_bid=req_dollars(p, "no_bid", kind, price=True),
        no_ask=req_dollars(p, "no_ask", kind, price=True),
        last_price=req_dollars(p, "last_price", kind, price=True),
        market_type=text(p, "market_type", kind, required=False, default="binary"),
        title=text(p, "title", kind, required=False),
        subtitle=text(p, "subtitle", kind, required=False),
        yes_sub_title=text(p, "yes_sub_title", kind, required=False),
        no_sub_title=text(p, "no_sub_title", kind, required=False),
        yes_bid_size=count(p, "yes_bid_size", kind, required=False),
        yes_ask_size=count(p, "yes_ask_size", kind, required=False),
        previous_yes_bid=dollars(p, "previous_yes_bid", kind, required=False, price=True),
        previous_yes_ask=dollars(p, "previous_yes_ask", kind, required=False, price=True),
        previous_price=dollars(p, "previous_price", kind, required=False, price=True),
        volume=count(p, "volume", kind, required=False),
        volume_24h=count(p, "volume_24h", kind, required=False),
        open_interest=count(p, "open_interest", kind, required=False),
        notional_value=notional if notional is not None else ONE,
        result=text(p, "result", kind, required=False),
        settlement_value=dollars(p, "settlement_value", kind, required=False, price=True),
        open_time=timestamp(p, "open_time", kind),
        close_time=timestamp(p, "close_time", kind),
        # two facts, kept apart: the deprecated expiration_time, and when Kalshi expects to settle the market
        expiration_time=timestamp(p, "expiration_time", kind),
        expected_expiration_time=timestamp(p, "expected_expiration_time", kind),
        latest_expiration_time=timestamp(p, "latest_expiration_time", kind),
        settlement_ts=timestamp(p, "settlement_ts", kind),
        can_close_early=boolean(p, "can_close_early", kind),
        tick_size=tick_size,
        rules_primary=text(p, "rules_primary", kind, required=False),
        rules_secondary=text(p, "rules_secondary", kind, required=False),
    )


def parse_event(p: Payload, markets: list[Payload] | None = None) -> Event:
    kind = "event"
    nested = _get(p, "markets")
    market_payloads = markets if markets is not None else (nested if isinstance(nested, list) else [])
    return Event(
        event_ticker=text(p, "event_ticker", kind),
        series_ticker=text(p, "series_ticker", kind, required=False),
        title=text(p, "title", kind, required=False),
        sub_title=text(p, "sub_title", kind, required=False),
        category=text(p, "category", kind, required=False),
        mutually_exclusive=bool(boolean(p, "mutually_exclusive", kind)),
        strike_date=timestamp(p, "strike_date", kind),
        markets=tuple(parse_market(_mapping(m, "markets[]", kind)) for m in market_payloads),
    )


def _level(entry: Any, field: str, kind: str) -> PriceLevel:
    if not isinstance(entry, list | tuple) or len(entry) < 2:
        raise KalshiSchemaError(field, f"level is not [price, quantity]: {entry!r}", kind=kind)
    raw_price, raw_qty = entry[0], entry[1]
    if isinstance(raw_price, str):
        price = _decimal_text(raw_price, field, kind)
    else:
        price = _legacy_number(raw_price, field, kind) / HUNDRED
    qty = _decimal_text(raw_qty, field, kind) if isinstance(raw_qty, str) else _legacy_number(raw_qty, field, kind)
    _check_price(price, field, kind)
    if price in (ZERO, ONE):  # a bid at $0 or $1 would imply a free contract on the other side
        raise KalshiSchemaError(field, f"has a level at {price} dollars (book prices lie strictly between 0 and 1)",
                                kind=kind)
    if qty < 0:
        raise KalshiSchemaError(field, f"has a negative quantity: {entry!r}", kind=kind)
    return PriceLevel(price, qty)


def book_side(p: Payload, side: str, kind: str) -> tuple[PriceLevel, ...]:
    """Bids of one side, best first, from `<side>_dollars_fp` > `<side>_dollars` > legacy `<side>`."""
    for name in (f"{side}_dollars_fp", f"{side}_dollars", f"{side}_fp", side):
        if name in p:
            raw = p[name]
            if raw is None:
                return ()
            if not isinstance(raw, list):
                raise KalshiSchemaError(name, f"is not a list of levels: {type(raw).__name__}", kind=kind)
            levels = [_level(e, name, kind) for e in raw]
            levels.sort(key=lambda lv: lv.price, reverse=True)
            return tuple(lv for lv in levels if lv.quantity > 0)
    return ()


def parse_orderbook(body: Payload, ticker: str) -> OrderBook:
    """GET /markets/{ticker}/orderbook: `orderbook_fp` (current) or `orderbook` (older generations)."""
    kind = "orderbook"
    for key in ("orderbook_fp", "orderbook"):
        if key in body and body[key] is not None:
            book = _mapping(body[key], key, kind)
            return OrderBook(ticker=ticker, yes_bids=book_side(book, "yes", kind), no_bids=book_side(book, "no", kind))
    raise KalshiSchemaError("orderbook_fp", "is missing (looked for orderbook_fp, orderbook)", kind=kind)


def parse_trade(p: Payload) -> Trade:
    """REST `Trade` (OpenAPI) or the WebSocket `trade` msg (AsyncAPI). `taker_side` is the outcome side the taker
    took: the stream's `taker_outcome_side` (buy YES / sell NO -> yes), else the legacy `taker_side`."""
    kind = "trade"
    yes = req_dollars(p, "yes_price", kind, price=True)
    no = dollars(p, "no_price", kind, required=False, price=True)
    created = timestamp(p, "created_time", kind) or timestamp(p, "ts_ms", kind) or timestamp(p, "ts", kind)
    if created is None:
        raise KalshiSchemaError("created_time", "is missing (looked for created_time, ts_ms, ts)", kind=kind)
    taker = first_text(p, ("taker_outcome_side", "taker_side"), kind)
    if taker not in ("yes", "no"):
        raise KalshiSchemaError("taker_outcome_side", f"is not yes/no: {taker!r}", kind=kind)
    return Trade(
        trade_id=first_text(p, ("trade_id",), kind),
        ticker=first_text(p, ("ticker", "market_ticker"), kind),
        yes_price=yes,
        no_price=no if no is not None else ONE - yes,
        count=req_count(p, "count", kind),
        taker_side=taker,
        created_time=created,
    )


def _ohlc(p: Any, field: str, kind: str, *, required: bool) -> OHLC:
    if p is None or p is _MISSING:
        if required:
            raise KalshiSchemaError(field, "is missing", kind=kind)
        return OHLC(None, None, None, None)
    p = _mapping(p, field, kind)
    return OHLC(
        open=dollars(p, "open", f"{kind}.{field}", required=False, price=True),
        high=dollars(p, "high", f"{kind}.{field}", required=False, price=True),
        low=dollars(p, "low", f"{kind}.{field}", required=False, price=True),
        close=dollars(p, "close", f"{kind}.{field}", required=False, price=True),
    )


def parse_candlestick(p: Payload, ticker: str) -> Candlestick:
    kind = "candlestick"
    end = timestamp(p, "end_period_ts", kind, required=True)
    assert end is not None
    price = p.get("price")
    price_map = price if isinstance(price, Mapping) else {}
    return Candlestick(
        ticker=ticker,
        end_period_ts=end,
        yes_bid=_ohlc(p.get("yes_bid"), "yes_bid", kind, required=True),
        yes_ask=_ohlc(p.get("yes_ask"), "yes_ask", kind, required=True),
        price=_ohlc(price, "price", kind, required=False),
        volume=req_count(p, "volume", kind),
        open_interest=req_count(p, "open_interest", kind),
        mean_price=dollars(price_map, "mean", kind, required=False, price=True),
        previous_price=dollars(price_map, "previous", kind, required=False, price=True),
    )


def parse_balance(p: Payload) -> Balance:
    kind = "balance"
    return Balance(
        balance=req_dollars(p, "balance", kind),
        portfolio_value=dollars(p, "portfolio_value", kind, required=False),
        updated_ts=timestamp(p, "updated_ts", kind),
    )


def parse_position(p: Payload) -> Position:
    kind = "market_position"
    resting = _get(p, "resting_orders_count")
    return Position(
        ticker=first_text(p, ("ticker", "market_ticker"), kind),
        position=req_count(p, "position", kind),
        market_exposure=dollars(p, "market_exposure", kind, required=False) or ZERO,
        total_traded=dollars(p, "total_traded", kind, required=False) or ZERO,
        realized_pnl=dollars(p, "realized_pnl", kind, required=False) or ZERO,
        fees_paid=dollars(p, "fees_paid", kind, required=False) or ZERO,
        resting_orders_count=resting if isinstance(resting, int) and not isinstance(resting, bool) else None,
        last_updated=timestamp(p, "last_updated_ts", kind),
    )


def parse_event_position(p: Payload) -> EventPosition:
    kind = "event_position"
    return EventPosition(
        event_ticker=text(p, "event_ticker", kind),
        total_cost=dollars(p, "total_cost", kind, required=False) or ZERO,
        total_cost_shares=count(p, "total_cost_shares", kind, required=False) or ZERO,
        event_exposure=dollars(p, "event_exposure", kind, required=False) or ZERO,
        realized_pnl=dollars(p, "realized_pnl", kind, required=False) or ZERO,
        fees_paid=dollars(p, "fees_paid", kind, required=False) or ZERO,
    )


def parse_fill(p: Payload) -> Fill:
    kind = "fill"
    side = _enum(p, "side", kind, Side)
    yes = dollars(p, "yes_price", kind, required=False, price=True)
    no = dollars(p, "no_price", kind, required=False, price=True)
    if yes is None and no is None:
        raise KalshiSchemaError("yes_price", "is missing (looked for yes_price_dollars, no_price_dollars, ...)", kind=kind)
    if yes is None:
        assert no is not None
        yes = ONE - no
    if no is None:
        no = ONE - yes
    is_taker = boolean(p, "is_taker", kind, required=True)
    trade_id = first_text(p, ("trade_id", "fill_id"), kind)
    return Fill(
        fill_id=text(p, "fill_id", kind, required=False) or trade_id,
        trade_id=trade_id,
        order_id=text(p, "order_id", kind),
        ticker=first_text(p, ("ticker", "market_ticker"), kind),
        side=side,
        action=_enum(p, "action", kind, Action),
        count=req_count(p, "count", kind),
        yes_price=yes,
        no_price=no,
        is_taker=bool(is_taker),
        fee=req_dollars(p, "fee_cost", kind),  # required by both the REST Fill and the WebSocket fill
        client_order_id=text(p, "client_order_id", kind, required=False),
        created_time=timestamp(p, "created_time", kind) or timestamp(p, "ts_ms", kind) or timestamp(p, "ts", kind),
    )


def parse_order(p: Payload) -> Order:
    kind = "order"
    side = _enum(p, "side", kind, Side)
    yes = dollars(p, "yes_price", kind, required=False, price=True)
    no = dollars(p, "no_price", kind, required=False, price=True)
    if yes is None and no is None:
        raise KalshiSchemaError(
            "yes_price", "is missing (looked for yes_price_dollars, no_price_dollars, yes_price, no_price)", kind=kind
        )
    yes = yes if yes is not None else ONE - no  # type: ignore[operator]
    no = no if no is not None else ONE - yes
    raw_status = text(p, "status", kind)
    try:
        status = ORDER_STATUS_MAP[raw_status.lower()]
    except KeyError:
        raise KalshiSchemaError("status", f"has unknown order status {raw_status!r}", kind=kind) from None
    fill = count(p, "fill_count", kind, required=False)
    remaining = req_count(p, "remaining_count", kind)
    initial = count(p, "initial_count", kind, required=False)
    if fill is None and initial is None:
        raise KalshiSchemaError("fill_count", "is missing (looked for fill_count_fp, fill_count, initial_count)", kind=kind)
    if fill is None:
        assert initial is not None
        fill = initial - remaining
    if initial is None:
        initial = fill + remaining
    return Order(
        order_id=text(p, "order_id", kind),
        client_order_id=text(p, "client_order_id", kind, required=False),
        ticker=first_text(p, ("ticker", "market_ticker"), kind),
        side=side,
        action=_enum(p, "action", kind, Action),
        type=_enum(p, "type", kind, OrderType) if _get(p, "type") is not _MISSING else OrderType.LIMIT,
        status=status,
        yes_price=yes,
        no_price=no,
        initial_count=initial,
        fill_count=fill,
        remaining_count=remaining,
        taker_fees=dollars(p, "taker_fees", kind, required=False) or ZERO,
        maker_fees=dollars(p, "maker_fees", kind, required=False) or ZERO,
        taker_fill_cost=dollars(p, "taker_fill_cost", kind, required=False) or ZERO,
        maker_fill_cost=dollars(p, "maker_fill_cost", kind, required=False) or ZERO,
        created_time=timestamp(p, "created_time", kind),
        last_update_time=timestamp(p, "last_update_time", kind),
        expiration_time=timestamp(p, "expiration_time", kind),
    )


def parse_settlement(p: Payload) -> Settlement:
    kind = "settlement"
    return Settlement(
        ticker=text(p, "ticker", kind),
        event_ticker=text(p, "event_ticker", kind, required=False),
        market_result=text(p, "market_result", kind),
        yes_count=req_count(p, "yes_count", kind),
        no_count=req_count(p, "no_count", kind),
        yes_total_cost=req_dollars(p, "yes_total_cost", kind),
        no_total_cost=req_dollars(p, "no_total_cost", kind),
        revenue=req_dollars(p, "revenue", kind),
        fee_cost=dollars(p, "fee_cost", kind, required=False) or ZERO,
        settled_time=timestamp(p, "settled_time", kind),
        value=dollars(p, "value", kind, required=False),
        cents_only=_in_whole_cents(p, ("revenue", "value")),
    )


def _in_whole_cents(p: Payload, names: tuple[str, ...]) -> frozenset[str]:
    """The figures a payload gave only as legacy integer cents (no `*_dollars` / `*_fixed` string)."""
    return frozenset(n for n in names if isinstance(_get(p, n), int | float) and not isinstance(_get(p, n), bool)
                     and _get(p, n + "_dollars") is _MISSING and _get(p, n + "_fixed") is _MISSING)


# --------------------------------------------------------------------------------------- stream payloads


def parse_ticker(p: Payload) -> Quote:
    """The WebSocket `ticker` msg, every field but the market optional (the backtest's recording reader checks
    single fields with it). The stream client reads quotes with `parse_ticker_quote`."""
    kind = "ticker"
    return Quote(
        ticker=first_text(p, ("market_ticker", "ticker"), kind),
        yes_bid=dollars(p, "yes_bid", kind, required=False, price=True),
        yes_ask=dollars(p, "yes_ask", kind, required=False, price=True),
        yes_bid_size=count(p, "yes_bid_size", kind, required=False),
        yes_ask_size=count(p, "yes_ask_size", kind, required=False),
        last_price=dollars(p, "price", kind, required=False, price=True),
        volume=count(p, "volume", kind, required=False),
        open_interest=count(p, "open_interest", kind, required=False),
        ts=timestamp(p, "ts_ms", kind) or timestamp(p, "ts", kind),
    )


def parse_ticker_quote(p: Payload) -> Quote:
    """A `ticker` msg as the WebSocket client reads it. Kalshi documents every field as always present; a quote
    needs the market and both sides of the top of the book, so a frame without them is rejected. The last price,
    sizes, volume, open interest and time are read when present: ingestion's fast path
    (`ingest.market_feed.fast_ticker`) and the backtest's recording reader take quotes without them and must read
    every frame as `parse_ticker` does."""
    quote = parse_ticker(p)
    for name in ("yes_bid", "yes_ask"):
        if getattr(quote, name) is None:
            raise KalshiSchemaError(name, f"is missing (looked for {name}_dollars, {name}_fixed, {name})",
                                    kind="ticker")
    return quote


def parse_lifecycle(p: Payload) -> MarketLifecycle:
    kind = "market_lifecycle"
    event_type = text(p, "event_type", kind, required=False)
    status: MarketStatus | None = None
    raw_status = _get(p, "status")
    if isinstance(raw_status, str) and raw_status:
        status = market_status(raw_status, kind=kind)
    elif event_type:
        status = LIFECYCLE_EVENT_STATUS.get(event_type)
        if status is None and boolean(p, "is_deactivated", kind):
            status = MarketStatus.HALTED
    if not event_type and status is None:
        raise KalshiSchemaError("event_type", "is missing (looked for event_type, status)", kind=kind)
    return MarketLifecycle(
        ticker=first_text(p, ("market_ticker", "ticker"), kind),
        event_type=event_type,
        status=status,
        result=text(p, "result", kind, required=False),
        close_time=timestamp(p, "close_ts", kind) or timestamp(p, "close_time", kind),
        settlement_value=dollars(p, "settlement_value", kind, required=False, price=True),
    )


# ------------------------------------------------------------------------------------------ alerting


class KalshiParser:
    """Runs a parse function; on schema drift raises one alert (deduplicated per kind+field) and re-raises."""

    def __init__(self, alerts: AlertRaiser | None = None, *, component: str = "kalshi_client") -> None:
        self.alerts = alerts
        self.component = component

    def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except KalshiSchemaError as exc:
            self.report(exc)
            raise

    def report(self, exc: KalshiSchemaError) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.raise_alert(
                "venue_schema_error",
                "high",
                self.component,
                str(exc),
                {"kind": exc.kind, "field": exc.field, "problem": exc.problem},
                dedup_key=f"kalshi:{exc.kind}:{exc.field}",
                category="data",
            )
        except Exception:  # an alert sink failure must not hide the schema error itself
            import logging

            logging.getLogger(__name__).exception("could not raise venue_schema_error alert")
