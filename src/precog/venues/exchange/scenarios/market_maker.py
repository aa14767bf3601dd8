"""Scripted participants: a fair value that wanders (seeded), a market maker quoting around it, and noise
traders that take liquidity so trades happen. Prices are whole cents; fair values are integer basis points
(1/10000 of a dollar) so no float reaches a quote."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import ExchangeError
from precog.venues.exchange.model import ACTIVE, RESTING

BP = 10_000  # basis points per dollar


def cents_price(cents: int) -> Decimal:
    return Decimal(cents) / 100


@dataclass
class NoisyFairValue:
    """A random walk of the YES fair value in basis points, bounded away from 0 and 1."""

    value_bp: int
    rng: random.Random
    step_bp: int = 60
    low_bp: int = 300
    high_bp: int = 9_700

    def step(self) -> int:
        self.value_bp = min(self.high_bp, max(self.low_bp, self.value_bp + self.rng.randint(-self.step_bp,
                                                                                             self.step_bp)))
        return self.value_bp

    def set(self, value_bp: int) -> None:
        self.value_bp = min(self.high_bp, max(self.low_bp, value_bp))


@dataclass
class MarketMaker:
    """Quotes YES bids below and NO bids below (1 - fair), `levels` deep, replacing quotes when fair moves."""

    exchange: Exchange
    user_id: str
    ticker: str
    half_spread_cents: int = 2
    size: int = 10
    levels: int = 3
    noise_bp: int = 80
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    quoted_at: int | None = None
    order_ids: list[str] = field(default_factory=list)

    def quote(self, fair_bp: int) -> None:
        """Re-quote around a noisy reading of `fair_bp` (the maker does not know the fair value exactly)."""
        ex = self.exchange
        with ex.lock:
            m = ex.markets.get(self.ticker)
            if m is None or m.status != ACTIVE:
                self.order_ids.clear()
                return
            seen_bp = fair_bp + self.rng.randint(-self.noise_bp, self.noise_bp)
            mid = min(97, max(3, (seen_bp + 50) // 100))
            live = [ex.orders[o] for o in self.order_ids if ex.orders[o].status == RESTING]
            if self.quoted_at == mid and len(live) == len(self.order_ids) and live:
                return
            for o in live:
                ex.cancel_order(self.user_id, o.order_id)
            self.order_ids.clear()
            for i in range(self.levels):
                yes_bid = mid - self.half_spread_cents - i
                no_bid = (100 - mid) - self.half_spread_cents - i
                for side, cents in (("yes", yes_bid), ("no", no_bid)):
                    if 1 <= cents <= 99:
                        try:
                            o = ex.place_order(self.user_id, self.ticker, side, "buy", self.size,
                                               cents_price(cents), post_only=True)
                        except ExchangeError:
                            continue  # would cross (a taker moved the book) or out of cash
                        if o.status == RESTING:
                            self.order_ids.append(o.order_id)
            self.quoted_at = mid


@dataclass
class NoiseTrader:
    """Now and then crosses the spread for a few contracts, leaning towards the fair value."""

    exchange: Exchange
    user_id: str
    rng: random.Random
    probability: float = 0.3
    max_size: int = 5

    def maybe_trade(self, ticker: str, fair_bp: int) -> None:
        if self.rng.random() >= self.probability:
            return
        ex = self.exchange
        with ex.lock:
            m = ex.markets.get(ticker)
            if m is None or m.status != ACTIVE:
                return
            buy_yes = self.rng.randrange(BP) < fair_bp  # informed-ish: buys YES more often when fair is high
            side = "yes" if buy_yes else "no"
            limit = min(99, max(1, (fair_bp if buy_yes else BP - fair_bp) // 100 + 3))
            try:
                ex.place_order(self.user_id, ticker, side, "buy", self.rng.randint(1, self.max_size),
                               cents_price(limit), time_in_force="immediate_or_cancel")
            except ExchangeError:
                pass


class MarketMakerScenario:
    """One market (`KXPRECOG-DEMO-A` by default) with a market maker around a wandering fair value."""

    name = "market_maker"

    def __init__(self, exchange: Exchange, *, seed: int = 1, ticker: str = "KXPRECOG-DEMO-A",
                 start_bp: int = 5_000, step_seconds: float = 1.0, maker_balance: Decimal = Decimal("1000000"),
                 create: bool = True) -> None:
        self.exchange = exchange
        self.rng = random.Random(seed)
        self.ticker = ticker
        self.step_ms = int(step_seconds * 1000)
        self.last_ms: int | None = None
        event_ticker = ticker.rsplit("-", 1)[0]
        series_ticker = event_ticker.split("-", 1)[0]
        if create:
            with exchange.lock:
                if series_ticker not in exchange.series:
                    exchange.create_series(series_ticker, "Precog demo markets", category="Demo")
                if event_ticker not in exchange.events:
                    exchange.create_event(event_ticker, series_ticker, "Precog demo event")
                if ticker not in exchange.markets:
                    exchange.create_market(ticker, event_ticker, title="Will the demo outcome happen?",
                                           yes_sub_title="Yes", no_sub_title="No")
        self.fair = NoisyFairValue(start_bp, random.Random(self.rng.random()))
        maker = exchange.create_account(balance=maker_balance)
        taker = exchange.create_account(balance=maker_balance)
        self.maker = MarketMaker(exchange, maker.user_id, ticker, rng=random.Random(self.rng.random()))
        self.taker = NoiseTrader(exchange, taker.user_id, random.Random(self.rng.random()))

    def step(self, now_ms: int) -> None:
        if self.last_ms is not None and now_ms - self.last_ms < self.step_ms:
            return
        self.last_ms = now_ms
        fair = self.fair.step()
        self.maker.quote(fair)
        self.taker.maybe_trade(self.ticker, fair)
