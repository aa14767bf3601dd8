"""Market data objects shared by every layer: series, events, markets, order books, quotes, trades.

All prices are Decimal dollars in [0, 1] (a YES contract pays $1); counts are Decimal contracts because
venues now allow fractional contracts (0.01 granularity). Objects are immutable so they can be passed
between tasks without copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from precog.domain.money import ONE

_When = TypeVar("_When", datetime, float)


def expected_settlement(expected_expiration: _When | None, close: _When | None) -> _When | None:
    """When a market is expected to settle ("time to settlement" of spec 5.3 / 5.6): the venue's expected
    expiration (Kalshi `expected_expiration_time`, "Time when this market is expected to expire": shortly after
    the game for a game market), else the market's `close_time`. On Kalshi the close is the latest time the
    market may close (for a game market often days or weeks after the game; it closes early once decided), so
    it is only the last resort. Works on datetimes or epoch seconds (both arguments of one kind)."""
    return expected_expiration if expected_expiration is not None else close


def exit_deadline(expected_expiration: _When | None, close: _When | None) -> _When | None:
    """The last moment an exit can still beat the result: the expected settlement, or the close when trading stops
    before it (a market that closes at kickoff and settles after the game)."""
    settles = expected_settlement(expected_expiration, close)
    if settles is None or close is None:
        return settles
    return min(settles, close)


class MarketStatus(StrEnum):
    """Our market lifecycle (the `markets.status` column): what a trader can do with the market."""

    OPEN = "open"  # accepting orders
    CLOSED = "closed"  # not trading (not yet opened, or closed awaiting settlement)
    SETTLED = "settled"  # final result paid out
    HALTED = "halted"  # trading temporarily paused by the venue


@dataclass(frozen=True, slots=True)
class Series:
    ticker: str
    title: str
    category: str
    frequency: str = ""
    tags: tuple[str, ...] = ()
    fee_type: str = ""
    fee_multiplier: Decimal = ONE


@dataclass(frozen=True, slots=True)
class Market:
    ticker: str
    event_ticker: str
    status: MarketStatus
    venue_status: str  # the venue's own word (e.g. "determined"), kept for audit
    yes_bid: Decimal
    yes_ask: Decimal
    no_bid: Decimal
    no_ask: Decimal
    last_price: Decimal
    market_type: str = "binary"
    title: str = ""
    subtitle: str = ""
    yes_sub_title: str = ""
    no_sub_title: str = ""
    yes_bid_size: Decimal | None = None
    yes_ask_size: Decimal | None = None
    previous_yes_bid: Decimal | None = None
    previous_yes_ask: Decimal | None = None
    previous_price: Decimal | None = None
    volume: Decimal | None = None
    volume_24h: Decimal | None = None
    open_interest: Decimal | None = None
    notional_value: Decimal = ONE
    result: str = ""
    settlement_value: Decimal | None = None
    open_time: datetime | None = None
    close_time: datetime | None = None  # Kalshi: the latest the market may close (it closes early when decided)
    expiration_time: datetime | None = None  # Kalshi's deprecated `expiration_time`, as the venue sent it
    expected_expiration_time: datetime | None = None  # when the venue expects to settle it (see settles_at)
    latest_expiration_time: datetime | None = None
    settlement_ts: datetime | None = None
    can_close_early: bool | None = None
    tick_size: Decimal | None = None
    rules_primary: str = ""
    rules_secondary: str = ""

    @property
    def is_tradable(self) -> bool:
        return self.status is MarketStatus.OPEN

    @property
    def spread(self) -> Decimal:
        """YES ask - YES bid."""
        return self.yes_ask - self.yes_bid

    @property
    def mid(self) -> Decimal:
        return (self.yes_bid + self.yes_ask) / 2

    def settles_at(self) -> datetime | None:
        """When the market is expected to settle (`expected_settlement`: the venue's expected expiration, else
        `close_time`)."""
        return expected_settlement(self.expected_expiration_time, self.close_time)

    def exit_deadline(self) -> datetime | None:
        """The last moment an exit can still beat the result (`exit_deadline`)."""
        return exit_deadline(self.expected_expiration_time, self.close_time)


@dataclass(frozen=True, slots=True)
class Event:
    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str = ""
    category: str = ""
    mutually_exclusive: bool = False
    strike_date: datetime | None = None
    markets: tuple[Market, ...] = ()


@dataclass(frozen=True, slots=True)
class PriceLevel:
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class OrderBook:
    """Bids on both sides of a binary market, best (highest) price first.

    A NO bid at p is a YES ask at 1 - p, so the asks are implied from the other side's bids.
    """

    ticker: str
    yes_bids: tuple[PriceLevel, ...]
    no_bids: tuple[PriceLevel, ...]
    ts: datetime | None = None

    @property
    def best_yes_bid(self) -> PriceLevel | None:
        return self.yes_bids[0] if self.yes_bids else None

    @property
    def best_no_bid(self) -> PriceLevel | None:
        return self.no_bids[0] if self.no_bids else None

    @property
    def yes_ask(self) -> Decimal | None:
        best_no = self.best_no_bid
        return ONE - best_no.price if best_no else None

    @property
    def no_ask(self) -> Decimal | None:
        best_yes = self.best_yes_bid
        return ONE - best_yes.price if best_yes else None

    @property
    def spread(self) -> Decimal | None:
        ask, bid = self.yes_ask, self.best_yes_bid
        return ask - bid.price if ask is not None and bid is not None else None

    def yes_asks(self) -> tuple[PriceLevel, ...]:
        """YES asks implied from the NO bids, best (lowest) first."""
        return tuple(PriceLevel(ONE - level.price, level.quantity) for level in self.no_bids)

    def quote(self) -> Quote:
        yb, nb = self.best_yes_bid, self.best_no_bid
        return Quote(
            ticker=self.ticker,
            yes_bid=yb.price if yb else None,
            yes_ask=self.yes_ask,
            yes_bid_size=yb.quantity if yb else None,
            yes_ask_size=nb.quantity if nb else None,
            ts=self.ts,
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book for one market. None where a side is empty."""

    ticker: str
    yes_bid: Decimal | None
    yes_ask: Decimal | None
    yes_bid_size: Decimal | None = None
    yes_ask_size: Decimal | None = None
    last_price: Decimal | None = None
    volume: Decimal | None = None
    open_interest: Decimal | None = None
    ts: datetime | None = None

    @property
    def no_bid(self) -> Decimal | None:
        return ONE - self.yes_ask if self.yes_ask is not None else None

    @property
    def no_ask(self) -> Decimal | None:
        return ONE - self.yes_bid if self.yes_bid is not None else None

    @property
    def spread(self) -> Decimal | None:
        if self.yes_bid is None or self.yes_ask is None:
            return None
        return self.yes_ask - self.yes_bid


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade on the venue (not necessarily ours)."""

    trade_id: str
    ticker: str
    yes_price: Decimal
    no_price: Decimal
    count: Decimal
    taker_side: str
    created_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class OHLC:
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None


@dataclass(frozen=True, slots=True)
class Candlestick:
    ticker: str
    end_period_ts: datetime
    yes_bid: OHLC
    yes_ask: OHLC
    price: OHLC
    volume: Decimal
    open_interest: Decimal
    mean_price: Decimal | None = None
    previous_price: Decimal | None = None
