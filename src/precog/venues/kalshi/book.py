"""Local order books maintained from the WebSocket `orderbook_snapshot` + `orderbook_delta` stream.

Hot path: a delta is a dict update. Internally prices are integer micro-dollars (1e-6, Kalshi's finest
price precision) and quantities integer centi-contracts (0.01, the finest count granularity), so there
is no Decimal arithmetic per message; Decimal appears only when a book is read (`snapshot()`).
Price/count strings repeat constantly, so their conversions are memoised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from precog.domain.market import OrderBook, PriceLevel
from precog.venues.kalshi.errors import KalshiSchemaError

PRICE_SCALE = 1_000_000  # micro-dollars per dollar
COUNT_SCALE = 100  # centi-contracts per contract
_CENT_UNITS = PRICE_SCALE // 100
_D_PRICE_SCALE = Decimal(PRICE_SCALE)
_D_COUNT_SCALE = Decimal(COUNT_SCALE)
_CACHE_LIMIT = 200_000

_price_cache: dict[str, int] = {}
_count_cache: dict[str, int] = {}


def _exact_units(text: str, scale: int, field: str) -> int:
    try:
        value = Decimal(text.strip()) * scale
    except (InvalidOperation, AttributeError):
        raise KalshiSchemaError(field, f"is not a decimal string: {text!r}", kind="orderbook") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise KalshiSchemaError(field, f"has more precision than the venue allows: {text!r}", kind="orderbook")
    return int(value)


def price_units(text: str) -> int:
    """'0.4200' -> 420000 micro-dollars (memoised)."""
    units = _price_cache.get(text)
    if units is None:
        units = _exact_units(text, PRICE_SCALE, "price_dollars")
        if not 0 <= units <= PRICE_SCALE:
            raise KalshiSchemaError("price_dollars", f"is outside [0, 1]: {text!r}", kind="orderbook")
        if len(_price_cache) > _CACHE_LIMIT:
            _price_cache.clear()
        _price_cache[text] = units
    return units


def count_units(text: str) -> int:
    """'10.00' -> 1000 centi-contracts; '-3.50' -> -350 (memoised)."""
    units = _count_cache.get(text)
    if units is None:
        units = _exact_units(text, COUNT_SCALE, "count_fp")
        if len(_count_cache) > _CACHE_LIMIT:
            _count_cache.clear()
        _count_cache[text] = units
    return units


def _price_of(raw: Any, field: str) -> int:
    if type(raw) is str:
        return price_units(raw)
    if type(raw) is int:  # legacy integer cents
        if not 0 <= raw <= 100:
            raise KalshiSchemaError(field, f"is outside [0, 100] cents: {raw!r}", kind="orderbook")
        return raw * _CENT_UNITS
    if isinstance(raw, Decimal) and raw.is_finite():  # legacy sub-cent number decoded as Decimal
        return _exact_units(str(raw / 100), PRICE_SCALE, field)
    raise KalshiSchemaError(field, f"is not a price: {raw!r}", kind="orderbook")


def _count_of(raw: Any, field: str) -> int:
    if type(raw) is str:
        return count_units(raw)
    if type(raw) is int:  # legacy integer contracts
        return raw * COUNT_SCALE
    if isinstance(raw, Decimal) and raw.is_finite():
        return _exact_units(str(raw), COUNT_SCALE, field)
    raise KalshiSchemaError(field, f"is not a count: {raw!r}", kind="orderbook")


def _to_price(units: int) -> Decimal:
    return Decimal(units) / _D_PRICE_SCALE


def _to_count(units: int) -> Decimal:
    return Decimal(units) / _D_COUNT_SCALE


class BookInconsistent(Exception):
    """A delta would make a level negative: our book diverged from the venue's; resync it."""


class LocalBook:
    """Bids of both sides of one market as {price micro-dollars: quantity centi-contracts}."""

    __slots__ = ("ticker", "yes", "no", "seq", "stale")

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self.seq: int | None = None
        self.stale = True  # no snapshot yet

    def load_snapshot(self, msg: Mapping[str, Any]) -> None:
        """Replace the book from an `orderbook_snapshot` msg (any generation of its fields)."""
        self.yes = self._side(msg, "yes")
        self.no = self._side(msg, "no")
        self.stale = False

    @staticmethod
    def _side(msg: Mapping[str, Any], side: str) -> dict[int, int]:
        for name in (f"{side}_dollars_fp", f"{side}_dollars", f"{side}_fp", side):
            if name in msg:
                levels: Iterable[Any] = msg[name] or ()
                if not isinstance(levels, list | tuple):
                    raise KalshiSchemaError(name, f"is not a list of [price, quantity] levels: {levels!r}"[:200],
                                            kind="orderbook")
                out: dict[int, int] = {}
                for level in levels:
                    if not isinstance(level, list | tuple) or len(level) < 2:
                        raise KalshiSchemaError(name, f"level is not [price, quantity]: {level!r}", kind="orderbook")
                    qty = _count_of(level[1], name)
                    if qty < 0:
                        raise KalshiSchemaError(name, f"has a negative quantity: {level!r}", kind="orderbook")
                    if qty:
                        out[_price_of(level[0], name)] = qty
                return out
        return {}

    def apply_delta(self, msg: Mapping[str, Any]) -> None:
        """Apply one `orderbook_delta` msg: quantity at (side, price) changes by delta."""
        raw_price = msg.get("price_dollars")
        price = _price_cache.get(raw_price) if type(raw_price) is str else None  # type: ignore[arg-type]
        if price is None:
            price = _price_of(raw_price if raw_price is not None else msg.get("price"), "price_dollars")
        raw_delta = msg.get("delta_fp")
        delta = _count_cache.get(raw_delta) if type(raw_delta) is str else None  # type: ignore[arg-type]
        if delta is None:
            delta = _count_of(raw_delta if raw_delta is not None else msg.get("delta"), "delta_fp")
        side = msg.get("side")
        if side == "yes":
            book = self.yes
        elif side == "no":
            book = self.no
        else:
            raise KalshiSchemaError("side", f"is not yes/no: {side!r}", kind="orderbook_delta")
        qty = book.get(price, 0) + delta
        if qty > 0:
            book[price] = qty
        elif qty == 0:
            book.pop(price, None)
        else:
            raise BookInconsistent(f"{self.ticker}: {side} level {price} would become {qty}")

    def best_yes_bid(self) -> Decimal | None:
        return _to_price(max(self.yes)) if self.yes else None

    def best_no_bid(self) -> Decimal | None:
        return _to_price(max(self.no)) if self.no else None

    def snapshot(self, depth: int | None = None) -> OrderBook:
        """Immutable Decimal view, best bid first on each side."""

        def levels(side: dict[int, int]) -> tuple[PriceLevel, ...]:
            prices = sorted(side, reverse=True)
            if depth is not None:
                prices = prices[:depth]
            return tuple(PriceLevel(_to_price(p), _to_count(side[p])) for p in prices)

        return OrderBook(self.ticker, levels(self.yes), levels(self.no))


class SequenceGap(Exception):
    """Messages of a subscription were missed: the books it feeds must be rebuilt from a new snapshot."""

    def __init__(self, sid: int, expected: int, got: int, tickers: tuple[str, ...]) -> None:
        self.sid = sid
        self.expected = expected
        self.got = got
        self.tickers = tickers
        super().__init__(f"sid {sid}: expected seq {expected}, got {got}")


class BookRegistry:
    """All local books of one connection plus the per-subscription sequence check.

    `on_message(envelope)` takes a decoded `orderbook_snapshot` / `orderbook_delta` envelope
    ({"type", "sid", "seq", "msg"}) and returns the book it changed. A sequence gap raises
    SequenceGap (the books of that subscription are marked stale); a delta that would drive a level
    negative raises BookInconsistent. Both mean: resubscribe for a fresh snapshot.
    """

    __slots__ = ("books", "_seq", "_sid_tickers")

    def __init__(self) -> None:
        self.books: dict[str, LocalBook] = {}
        self._seq: dict[int, int] = {}
        self._sid_tickers: dict[int, set[str]] = {}

    def book(self, ticker: str) -> LocalBook:
        book = self.books.get(ticker)
        if book is None:
            book = self.books[ticker] = LocalBook(ticker)
        return book

    def on_message(self, envelope: Mapping[str, Any]) -> LocalBook:
        msg = envelope["msg"]
        sid = envelope.get("sid")
        seq = envelope.get("seq")
        if sid is not None and seq is not None:
            last = self._seq.get(sid)
            if last is not None and seq != last + 1:
                if seq <= last:  # a duplicate/replayed message: already applied
                    return self.book(msg["market_ticker"])
                raise self._gap(sid, last + 1, seq)
            self._seq[sid] = seq
        book = self.books.get(msg["market_ticker"])
        if envelope["type"] == "orderbook_delta":
            if book is None or book.stale:
                # a delta before the snapshot of its market: the stream is out of order
                if sid is not None and seq is not None:
                    raise self._gap(sid, seq, seq)
                raise BookInconsistent(f"{msg['market_ticker']}: delta before snapshot")
            # Hot path, inlined: both strings already seen (memoised, validated) and a known side.
            # Anything else goes through apply_delta, which validates and names the bad field.
            try:
                price = _price_cache.get(msg.get("price_dollars"))  # type: ignore[arg-type]
                delta = _count_cache.get(msg.get("delta_fp"))  # type: ignore[arg-type]
            except TypeError:  # an unhashable value: malformed, let the slow path say so
                price = delta = None
            side = msg.get("side")
            if price is None or delta is None or (side != "yes" and side != "no"):
                book.apply_delta(msg)
                return book
            levels = book.yes if side == "yes" else book.no
            qty = levels.get(price, 0) + delta
            if qty > 0:
                levels[price] = qty
            elif qty == 0:
                levels.pop(price, None)
            else:
                raise BookInconsistent(f"{book.ticker}: {side} level {price} would become {qty}")
            return book
        if book is None:
            book = self.book(msg["market_ticker"])
        book.load_snapshot(msg)
        if sid is not None:
            self._sid_tickers.setdefault(sid, set()).add(book.ticker)
        return book

    def _gap(self, sid: int, expected: int, got: int) -> SequenceGap:
        tickers = tuple(sorted(self._sid_tickers.get(sid, ())))
        self.forget_subscription(sid)
        return SequenceGap(sid, expected, got, tickers)

    def forget_subscription(self, sid: int) -> tuple[str, ...]:
        """Drop the sequence state of `sid` and mark its books stale until their next snapshot."""
        self._seq.pop(sid, None)
        tickers = tuple(sorted(self._sid_tickers.pop(sid, ())))
        for ticker in tickers:
            book = self.books.get(ticker)
            if book is not None:
                book.stale = True
        return tickers

    def reset(self) -> None:
        """Connection lost: every book is stale and all sequence state is void."""
        self._seq.clear()
        self._sid_tickers.clear()
        for book in self.books.values():
            book.stale = True
