"""The simulated market a backtest trades in: markets on the local exchange, a market maker quoting each
one around the data's fair value, and the engine's ProbabilitySource, all fed by released events only.

Fills come from the exchange's matching engine: our orders trade against the market maker's resting
quotes (price-time priority, the queue respected), never at a price the book did not offer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from precog.backtest.errors import LookAheadError
from precog.backtest.feed import Event, ms_to_dt
from precog.backtest.models import BacktestModel, GameInfo
from precog.engine.core import Estimate, TrackedMarket
from precog.venues.exchange import model as xm
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import ExchangeError

MM_USER = "backtest-market-maker"
_C = Decimal("0.01")
_MAX = Decimal("0.99")
# the prices in [0.01, 0.99] that are whole cents: x == x.quantize(_C) for x in that range exactly when x is one
# of these (equal Decimals hash alike, so 0.4, 0.40 and 0.400 all are)
_WHOLE_CENTS = frozenset(Decimal(c) / 100 for c in range(1, 100))


@dataclass(frozen=True)
class MakerConfig:
    half_spread: Decimal = Decimal("0.01")  # trade_strategies.yaml backtesting.market_half_spread
    level_size: int = 500  # contracts on the first level; deeper levels 2x, 3x
    levels: int = 3
    keep_unchanged_quotes: bool = True  # False: cancel and re-place on every quote event (the reference path)
    # defer a quote until someone can trade against it (see QuoteMaker.sync); False: place every quote at once
    lazy: bool = False


@dataclass
class ForecastRecord:
    model: str
    ticker: str
    ts_ms: int
    phase: str
    p_yes: Decimal
    market: Decimal  # the market's fair value at that moment


class QuoteMaker:
    """Quotes a market at fair -/+ half spread (whole cents, at least one cent wide), several levels deep."""

    def __init__(self, exchange: Exchange, config: MakerConfig) -> None:
        self.exchange = exchange
        self.config = config
        self.orders: dict[str, list[str]] = {}
        self._quoted: dict[str, tuple[Any, ...]] = {}  # ticker -> the quote its resting orders show
        self.unchanged = 0  # requotes that found the book already showing exactly that quote
        # lazy: the latest quote per market not placed yet, and the markets whose deferred quote changed since
        # the venue last asked (a deferred quote moves no order, so the exchange announces nothing)
        self.pending: dict[str, tuple[Decimal, Decimal, int | None, int | None]] = {}
        self.changed: set[str] = set()
        self.deferred = 0

    def pull(self, ticker: str) -> None:
        self.pending.pop(ticker, None)
        self._quoted.pop(ticker, None)
        for oid in self.orders.pop(ticker, []):
            o = self.exchange.orders.get(oid)
            if o is not None and o.status == xm.RESTING:
                self.exchange.cancel_order(MM_USER, oid)

    def quote(self, ticker: str, fair: Decimal) -> tuple[Decimal, Decimal]:
        """Quote around a fair value: bid = fair - h rounded down, ask = fair + h rounded up."""
        h = self.config.half_spread
        bid = max(_C, min(Decimal("0.98"), (fair - h).quantize(_C, rounding=ROUND_FLOOR)))
        ask = min(Decimal("0.99"), max(bid + _C, (fair + h).quantize(_C, rounding=ROUND_CEILING)))
        return self.quote_exact(ticker, bid, ask)

    def quote_exact(self, ticker: str, bid: Decimal, ask: Decimal, bid_size: int | None = None,
                    ask_size: int | None = None) -> tuple[Decimal, Decimal]:
        """Quote a given top of book (a recorded one); deeper levels one cent apart behind it."""
        if self.config.lazy and self._deferrable(ticker, bid, ask):
            self.pending[ticker] = (bid, ask, bid_size, ask_size)
            self.changed.add(ticker)
            self.deferred += 1
            return bid, ask
        self.pending.pop(ticker, None)
        self._place(ticker, bid, ask, bid_size, ask_size)
        return bid, ask

    # A quote can wait while nobody else's order rests in the market: until one of our orders goes there (the
    # venue calls `sync` first), the book it would make is only read, and `top` tells that book's top exactly.
    # Waiting changes no fill: only the maker's own orders rest, and they never trade with each other.

    def _deferrable(self, ticker: str, bid: Decimal, ask: Decimal) -> bool:
        """Whole-cent quotes inside (0, 1), not crossed, in a market where only the maker's orders rest (so
        placing them later cannot fail or trade and their top is known)."""
        if not (_C <= bid < ask <= _MAX) or bid not in _WHOLE_CENTS or ask not in _WHOLE_CENTS:
            return False
        for o in self.exchange.markets[ticker].resting.values():
            if o.user_id != MM_USER:
                return False
        return True

    def sync(self, ticker: str) -> None:
        """Place the market's deferred quote (before an order of ours goes to it, or its book is read)."""
        q = self.pending.pop(ticker, None)
        if q is not None and self.exchange.markets[ticker].status == xm.ACTIVE:
            self._place(ticker, *q)

    def top(self, ticker: str) -> tuple[int, int, int, int] | None:
        """(YES best tick, its size, NO best tick, its size) the deferred quote would show; None when there is
        no deferred quote (the exchange's book is the truth)."""
        q = self.pending.get(ticker)
        if q is None:
            return None
        bid, ask, bid_size, ask_size = q
        level = self.config.level_size
        return int(bid * 100), bid_size or level, xm.TICKS - int(ask * 100), ask_size or level

    def _place(self, ticker: str, bid: Decimal, ask: Decimal, bid_size: int | None, ask_size: int | None) -> None:
        quote = (bid, ask, bid_size, ask_size)
        if self.config.keep_unchanged_quotes and self._quoted.get(ticker) == quote \
                and self._book_is_ours_and_whole(ticker):
            # cancelling and re-placing the same untouched orders would leave the very same book
            self.unchanged += 1
            return
        self.pull(ticker)
        placed = []
        for lvl in range(self.config.levels):
            qty = self.config.level_size * (lvl + 1)
            bq = bid_size if lvl == 0 and bid_size else qty
            aq = ask_size if lvl == 0 and ask_size else qty
            b, a = bid - lvl * _C, ask + lvl * _C
            try:
                if b >= _C:
                    placed.append(self.exchange.place_order(MM_USER, ticker, "yes", "buy", bq, b).order_id)
                if a <= Decimal("0.99"):
                    placed.append(self.exchange.place_order(MM_USER, ticker, "no", "buy", aq, 1 - a).order_id)
            except ExchangeError:
                continue
        self.orders[ticker] = placed
        self._quoted[ticker] = quote

    def _book_is_ours_and_whole(self, ticker: str) -> bool:
        """Only our quotes rest in the market, none of them traded or cancelled since they were placed."""
        ours = self.orders.get(ticker, [])
        resting = self.exchange.markets[ticker].resting
        if len(resting) != len(ours):
            return False
        for oid in ours:
            o = resting.get(oid)
            if o is None or o.remaining != o.initial_count:
                return False
        return True


UNKNOWN = object()  # `known_estimate`: the model would have to be asked


@dataclass
class WorldStats:
    markets: int = 0
    quotes: int = 0
    states: int = 0
    finals: int = 0
    events: int = 0


class BacktestWorld:
    def __init__(self, exchange: Exchange, clock_ms: Callable[[], int], models: dict[str, BacktestModel],
                 maker: MakerConfig, series: str = "KXNFLGAME") -> None:
        self.exchange = exchange
        self.clock_ms = clock_ms
        self.models = models
        self.maker = QuoteMaker(exchange, maker)
        self.series = series
        exchange.create_series(series, "NFL game winner (backtest)", category="Sports", tags=["Football"])
        exchange.create_account(MM_USER, Decimal("1000000000"))
        self.games: dict[str, GameInfo] = {}
        self.new_markets: list[TrackedMarket] = []
        self.forecasts: list[ForecastRecord] = []
        self._logged: set[tuple[str, str, str]] = set()
        self.outcomes: dict[str, Decimal] = {}  # settlement values, once known
        self.stats = WorldStats()
        self.peek_guard = True
        # forecasts of models whose estimate reads only the game and their own state (`reads_clock = False`):
        # (model, market) -> (game version, model version, estimate), reused until either changes
        self._model_version = dict.fromkeys(models, 0)
        self._clock_free = {k for k, m in models.items() if getattr(m, "reads_clock", True) is False}
        self._estimates: dict[tuple[str, str], tuple[int, int, Estimate | None]] = {}
        self._handlers: dict[str, Callable[[BacktestWorld, Event], None]] = {}  # event kind -> `_on_<kind>`

    # ------------------------------------------------------------------ events

    def apply(self, events: list[Event]) -> None:
        now = self.clock_ms()
        stats, games, models, handlers = self.stats, self.games, self.models, self._handlers
        for ev in events:
            if ev.ts_ms > now:
                raise LookAheadError(f"event {ev.kind} for {ev.ticker} at {ms_to_dt(ev.ts_ms)} applied before its "
                                     f"time ({ms_to_dt(now)})")
            stats.events += 1
            handler = handlers.get(ev.kind)
            if handler is None:  # the class's function (a bound method kept here would make the world a cycle)
                handler = handlers[ev.kind] = getattr(type(self), "_on_" + ev.kind)  # an unknown kind raises here
            handler(self, ev)
            g = games.get(ev.ticker)
            if g is not None:
                for key, m in models.items():
                    if m.observe(ev, g) is not False:
                        self._model_version[key] += 1

    def _on_list(self, ev: Event) -> None:
        d = ev.data
        event_ticker = ev.ticker.rsplit("-", 1)[0]
        if event_ticker not in self.exchange.events:
            self.exchange.create_event(event_ticker, self.series, f"{d['away']} at {d['home']}",
                                       sub_title=f"{d['away']} @ {d['home']}", strike_date_ms=d["kickoff_ms"])
        self.exchange.create_market(ev.ticker, event_ticker, title=f"Will {d['home']} beat {d['away']}?",
                                    yes_sub_title=d["home"], no_sub_title=d["away"], close_ms=d["close_ms"],
                                    settlement_timer_s=0)
        schedule = {k: v for k, v in d.items() if k != "fair"}
        self.games[ev.ticker] = GameInfo(ev.ticker, schedule, d["fair"])
        self.new_markets.append(TrackedMarket(ev.ticker, event_ticker, "nfl", ms_to_dt(d["close_ms"])))
        self.stats.markets += 1
        self._requote(ev.ticker, d, ev.ts_ms)

    def _requote(self, ticker: str, d: dict[str, Any], ts_ms: int) -> None:
        g = self.games[ticker]
        g.fair = fair = d["fair"]
        g.history.append(fair)
        g.history_ms.append(ts_ms)
        g.version += 1
        if self.exchange.markets[ticker].status == xm.ACTIVE:
            if "bid" in d:  # a recorded top of book
                self.maker.quote_exact(ticker, d["bid"], d["ask"], d.get("bid_size"), d.get("ask_size"))
            else:
                self.maker.quote(ticker, fair)
            self.stats.quotes += 1

    def _on_quote(self, ev: Event) -> None:
        if ev.ticker in self.games:
            self._requote(ev.ticker, ev.data, ev.ts_ms)

    def _on_state(self, ev: Event) -> None:
        g = self.games.get(ev.ticker)
        if g is None:
            return
        for k in ("home", "away", "yes_is_home"):  # a recording learns the teams from the scoreboard
            if k in ev.data:
                g.schedule[k] = ev.data[k]
        g.state = {k: v for k, v in ev.data.items() if k not in ("fair", "home", "away", "yes_is_home")}
        if g.started_ms is None:
            g.started_ms = ev.ts_ms
        g.version += 1
        self.stats.states += 1
        if "fair" in ev.data:
            self._requote(ev.ticker, ev.data, ev.ts_ms)

    def _on_close(self, ev: Event) -> None:
        if ev.ticker in self.games:
            self.maker.pull(ev.ticker)
            m = self.exchange.markets[ev.ticker]
            if m.status == xm.ACTIVE:
                self.exchange.set_market_status(ev.ticker, xm.CLOSED)

    def _on_final(self, ev: Event) -> None:
        g = self.games.get(ev.ticker)
        if g is None:
            return
        self.maker.pull(ev.ticker)
        g.final = True
        g.version += 1
        value = Decimal(ev.data["settlement_value"])
        self.outcomes[ev.ticker] = value
        self.exchange.determine_market(ev.ticker, value)  # settlement_timer 0: pays out at once
        self.stats.finals += 1

    def take_new_markets(self) -> list[TrackedMarket]:
        out, self.new_markets = self.new_markets, []
        return out

    # ------------------------------------------------------------------ ProbabilitySource

    def estimate(self, model_key: str, ticker: str, now: datetime) -> Estimate | None:
        g = self.games.get(ticker)
        model = self.models.get(model_key)
        if g is None or model is None:
            return None
        cached = model_key in self._clock_free
        if cached:
            reused = self._reused(model_key, ticker, g)
            if reused is not UNKNOWN:
                return reused  # type: ignore[return-value]  # the same forecast (already logged)
        est = model.estimate(g, self.clock_ms())
        if est is not None:
            if not g.schedule.get("yes_is_home", True):
                est = Estimate(1 - est.p_yes, est.confidence)  # models forecast the home team; YES is the away team
            phase = g.phase
            key = (model_key, ticker, phase if phase != "live" else f"live:{len(g.history)}")
            if key not in self._logged:
                self._logged.add(key)
                self.forecasts.append(ForecastRecord(model_key, ticker, self.clock_ms(), phase, est.p_yes, g.fair))
        if cached:
            self._estimates[(model_key, ticker)] = (g.version, self._model_version[model_key], est)
        return est

    def known_estimate(self, model_key: str, ticker: str) -> Estimate | None | object:
        """The estimate `estimate` would return now without asking the model (its reused forecast, see
        `estimate`), or UNKNOWN when the model would have to be asked."""
        g = self.games.get(ticker)
        if g is None:
            return UNKNOWN
        hit = self._estimates.get((model_key, ticker))  # `_reused`, inline: asked for every due decision
        if hit is None or hit[0] != g.version or hit[1] != self._model_version[model_key]:
            return UNKNOWN
        return hit[2]

    def _reused(self, model_key: str, ticker: str, g: GameInfo) -> Estimate | None | object:
        """The model's last estimate of the market while neither the game nor the model changed since; else
        UNKNOWN."""
        hit = self._estimates.get((model_key, ticker))
        if hit is None or hit[0] != g.version or hit[1] != self._model_version[model_key]:
            return UNKNOWN
        return hit[2]

    def phase(self, ticker: str, now: datetime) -> str:
        g = self.games.get(ticker)
        return g.phase if g is not None else "final"

    # ------------------------------------------------------------------ reporting helpers

    def calibration_pairs(self) -> dict[str, tuple[list[float], list[float], list[float]]]:
        """Per model: the forecasts it made (first per game and phase), the outcomes, the market's price then."""
        out: dict[str, tuple[list[float], list[float], list[float]]] = {}
        for f in self.forecasts:
            y = self.outcomes.get(f.ticker)
            if y is None:
                continue
            p, ys, mk = out.setdefault(f.model, ([], [], []))
            p.append(float(f.p_yes))
            ys.append(float(y))
            mk.append(float(f.market))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"markets": self.stats.markets, "quotes": self.stats.quotes, "states": self.stats.states,
                "finals": self.stats.finals, "events": self.stats.events}
