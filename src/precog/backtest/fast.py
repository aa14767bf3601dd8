"""The lean replay path for high-volume quote data (benchmarks, parameter sweeps).

Per event it does only what the event requires: store the touched market's top of book and let each
method look at that one market. The local exchange's book for a market is brought in line with the latest
quote lazily — right before one of our orders goes to it, and on every quote while we have an order
resting in it — so our fills still come from the matching engine (price-time priority, the quoted sizes,
our resting orders filled only when a quote crosses them), at prices the book offered. Balances, holds,
fees and positions are the exchange's own accounting (Decimal). Methods decide with the live decision
code (`precog.engine.entries.plan_entry`: edge net of fees, Kelly size, risk approval; exits with
`precog.trading.exits`), after an integer pre-filter that rejects the obvious no-trade quotes in a few
operations. Fills are kept in memory (`FastStats.fills`); nothing touches the database during the run.

Prices inside the loop are integer cents (exact); money is Decimal at the exchange and in every decision.
"""

from __future__ import annotations

import gzip
import heapq
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.domain.money import ZERO
from precog.engine.entries import SHRINK, MethodSpec, PortfolioView, RiskLimits, plan_entry, shrink
from precog.trading import exits as ex
from precog.venues.exchange import model as xm
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import ExchangeError

PRICES = tuple(Decimal(c) / 100 for c in range(101))
MAKER = "replay-market-maker"
SERIES = "KXREPLAY"


class QuoteMethod(Protocol):
    name: str

    def on_quote(self, rt: FastReplay, ticker: str, bid: int, ask: int, ts_ms: int) -> None: ...


@dataclass
class FillRecord:
    ts_ms: int
    method: str
    ticker: str
    side: str
    action: str
    count: int
    price: Decimal
    fee: Decimal


@dataclass
class FastStats:
    events: int = 0
    orders: int = 0
    rejected: int = 0
    syncs: int = 0
    fills: list[FillRecord] = field(default_factory=list)


class FastReplay:
    """Quote events -> methods -> orders matched by the local exchange. `on_quote` is the hot path."""

    def __init__(self, exchange: Exchange, user: str, tickers: Iterable[str], *, bankroll: Decimal) -> None:
        self.exchange = exchange
        self.user = user
        self.methods: list[QuoteMethod] = []
        self.quotes: dict[str, tuple[int, int, int, int]] = {}  # ticker -> (bid, ask, bid size, ask size)
        self._synced: dict[str, tuple[int, int, int, int]] = {}
        self._mm_orders: dict[str, tuple[str, ...]] = {}
        self.hot: set[str] = set()  # markets where one of our orders rests: their book follows every quote
        self.stats = FastStats()
        self.last_fills: list[FillRecord] = []  # the fills of the latest order
        self.now_ms = 0
        exchange.create_series(SERIES, "replay")
        exchange.create_account(MAKER, Decimal("1000000000"))
        exchange.create_account(user, bankroll)
        for t in tickers:
            ev = t.rsplit("-", 1)[0]
            if ev not in exchange.events:
                exchange.create_event(ev, SERIES, ev)
            exchange.create_market(t, ev, close_ms=exchange.now_ms() + 10 * 365 * 86_400_000)

    # ------------------------------------------------------------------ the hot path

    def on_quote(self, ticker: str, bid: int, ask: int, bid_size: int, ask_size: int, ts_ms: int) -> None:
        self.quotes[ticker] = (bid, ask, bid_size, ask_size)
        self.now_ms = ts_ms
        if self.hot and ticker in self.hot:
            self.sync(ticker)
        for m in self.methods:
            m.on_quote(self, ticker, bid, ask, ts_ms)

    # ------------------------------------------------------------------ the book and orders

    def sync(self, ticker: str) -> None:
        """Make the exchange's book for `ticker` show exactly the latest quote (the maker's two orders)."""
        q = self.quotes.get(ticker)
        if q is None or self._synced.get(ticker) == q:
            return
        ex_ = self.exchange
        for oid in self._mm_orders.get(ticker, ()):
            o = ex_.orders.get(oid)
            if o is not None and o.status == xm.RESTING:
                ex_.cancel_order(MAKER, oid)
        bid, ask, bsz, asz = q
        placed = []
        if 1 <= bid <= 99:
            placed.append(ex_.place_order(MAKER, ticker, "yes", "buy", bsz, PRICES[bid]).order_id)
        if 1 <= ask <= 99:
            placed.append(ex_.place_order(MAKER, ticker, "no", "buy", asz, PRICES[100 - ask]).order_id)
        self._mm_orders[ticker] = tuple(placed)
        self._synced[ticker] = q
        self.stats.syncs += 1

    def order(self, method: str, ticker: str, side: str, action: str, count: int, limit: Decimal | None = None,
              *, tif: str = "immediate_or_cancel") -> xm.Order | None:
        """An order through the matching engine (at market when `limit` is None); None when refused."""
        self.sync(ticker)
        if limit is None:
            limit = PRICES[99] if action == "buy" else PRICES[1]
        acct = self.exchange.account(self.user)
        before = len(acct.fills)
        self.last_fills = []
        try:
            o = self.exchange.place_order(self.user, ticker, side, action, count, limit, time_in_force=tif)
        except ExchangeError:
            self.stats.rejected += 1
            return None
        self.stats.orders += 1
        for r in acct.fills[before:]:
            f = xm.fill_view(r, self.user)
            rec = FillRecord(self.now_ms, method, ticker, f.side, f.action, f.count,
                             PRICES[f.yes_tick] if f.side == "yes" else PRICES[100 - f.yes_tick], f.fee)
            self.stats.fills.append(rec)
            self.last_fills.append(rec)
        if o.status == xm.RESTING:
            self.hot.add(ticker)
        return o

    def held(self, ticker: str) -> tuple[int, int]:
        pos = self.exchange.account(self.user).positions.get(ticker)
        return (pos.held[0], pos.held[1]) if pos is not None else (0, 0)

    def market(self, ticker: str) -> Market:
        """The domain Market the decision code reads (built only when a method needs it)."""
        bid, ask, bsz, asz = self.quotes[ticker]
        return Market(ticker=ticker, event_ticker=ticker.rsplit("-", 1)[0], status=MarketStatus.OPEN,
                      venue_status="active", yes_bid=PRICES[bid], yes_ask=PRICES[ask], no_bid=PRICES[100 - ask],
                      no_ask=PRICES[100 - bid], last_price=PRICES[bid], yes_bid_size=Decimal(bsz),
                      yes_ask_size=Decimal(asz))

    def equity(self, marks: dict[str, int] | None = None) -> Decimal:
        """Cash + holds + open contracts at the mid of the latest quote."""
        acct = self.exchange.account(self.user)
        value = acct.balance + sum((o.hold for o in acct.orders.values() if o.status == xm.RESTING), ZERO)
        for t, p in acct.positions.items():
            if p.held[0] or p.held[1]:
                bid, ask = self.quotes[t][:2]
                mid = Decimal(bid + ask) / 200
                value += p.held[0] * mid + p.held[1] * (1 - mid)
        return value


class ThresholdMethod:
    """The standard comparison strategy: remember the last mid per market; buy `size` YES at market when the
    mid crosses below `low` while flat; sell at market when it crosses above `high` while holding."""

    def __init__(self, name: str = "threshold", *, low_cents: int = 30, high_cents: int = 70, size: int = 10) -> None:
        self.name = name
        self.low2 = 2 * low_cents  # compare 2 x mid = bid + ask: no division in the hot path
        self.high2 = 2 * high_cents
        self.size = size
        self.last: dict[str, int] = {}
        self.holding: dict[str, int] = {}

    def on_quote(self, rt: FastReplay, ticker: str, bid: int, ask: int, ts_ms: int) -> None:
        mid2 = bid + ask
        prev = self.last.get(ticker)
        self.last[ticker] = mid2
        if prev is None:
            return
        if ticker in self.holding:
            if mid2 > self.high2 >= prev:
                self._sell(rt, ticker)
        elif mid2 < self.low2 <= prev:
            o = rt.order(self.name, ticker, "yes", "buy", self.size)
            if o is not None and o.fill_count:
                self.holding[ticker] = o.fill_count

    def _sell(self, rt: FastReplay, ticker: str) -> None:
        o = rt.order(self.name, ticker, "yes", "sell", self.holding[ticker])
        if o is not None and o.fill_count:
            left = self.holding[ticker] - o.fill_count
            if left:
                self.holding[ticker] = left
            else:
                del self.holding[ticker]


class EdgeMethod:
    """An edge method on a per-market model (an exponentially weighted mean of the mid): the live decision
    code sizes and approves entries (fees, Kelly, risk limits); the live exit rules close positions.

    Integer pre-filter: the best possible edge in cents is |shrunk p - mid| - half spread; below the minimum
    edge nothing the decision code could approve, so the quote costs a few integer operations."""

    def __init__(self, spec: MethodSpec, limits: RiskLimits, rules: ex.ExitRules, fees: FeeSchedule,
                 bankroll: Decimal, *, alpha_pct: int = 5) -> None:
        self.name = spec.name
        self.spec = spec
        self.limits = limits
        self.rules = rules
        self.fees = fees
        self.bankroll = bankroll
        self.alpha = alpha_pct  # EWMA weight of the new mid, percent
        self.fair: dict[str, int] = {}  # EWMA of 2 x mid, in hundredths of a cent (integer maths)
        self.positions: dict[str, tuple[str, int, Decimal]] = {}  # ticker -> (side, quantity, entry price)
        self.min_edge_x100 = int(max(limits.min_edge_global, spec.min_edge) * 10_000)
        self.max_open = limits.max_open_positions
        self.keep_pct = int((1 - SHRINK) * 100)  # the decision code's shrinkage toward 0.5
        self.max_spread_c = int(limits.max_spread * 100)
        self.exposure = ZERO
        self.decisions = 0
        self.approved = 0

    def p_yes(self, ticker: str) -> Decimal:
        return Decimal(self.fair[ticker]) / 20_000

    def on_quote(self, rt: FastReplay, ticker: str, bid: int, ask: int, ts_ms: int) -> None:
        fair = self.fair
        mid2 = (bid + ask) * 100
        f = fair.get(ticker)
        f = mid2 if f is None else f + (mid2 - f) * self.alpha // 100
        fair[ticker] = f
        if self.positions:
            pos = self.positions.get(ticker)
            if pos is not None:
                self._manage(rt, ticker, pos, bid, ask)
                return
        # pre-filter: rules plan_entry would refuse on anyway (room, spread), then the edge (hundredths of a
        # cent) of the shrunk fair against the far side of the book: YES at the ask, NO at 1 - bid
        if len(self.positions) >= self.max_open or ask - bid > self.max_spread_c:
            return
        p = 5000 + ((f >> 1) - 5000) * self.keep_pct // 100
        m = self.min_edge_x100
        if p - ask * 100 < m and bid * 100 - p < m:
            return
        self.decisions += 1
        pv = PortfolioView(balance=rt.exchange.account(rt.user).balance, bankroll=self.bankroll,
                           open_positions=len(self.positions), exposure=self.exposure,
                           markets_held=frozenset(self.positions), positions_by_game={}, exposure_by_game={})
        plan, _reason = plan_entry(self.p_yes(ticker), rt.market(ticker), self.spec, pv, self.limits, self.fees,
                                   ticker)
        if plan is None:
            return
        self.approved += 1
        o = rt.order(self.name, ticker, plan.side, "buy", plan.quantity, plan.limit_price)
        if o is not None and o.fill_count:
            cost = sum((f.price * f.count for f in rt.last_fills), ZERO)
            self.positions[ticker] = (plan.side, o.fill_count, cost / o.fill_count)
            self.exposure += cost
        if o is not None and o.status == xm.RESTING:
            rt.exchange.cancel_order(rt.user, o.order_id)  # entries are immediate-or-nothing here

    def _manage(self, rt: FastReplay, ticker: str, pos: tuple[str, int, Decimal], bid: int, ask: int) -> None:
        side, qty, entry = pos
        sb, sa = (bid, ask) if side == "yes" else (100 - ask, 100 - bid)
        edge = shrink(self.p_yes(ticker) if side == "yes" else 1 - self.p_yes(ticker)) - PRICES[sb]
        s = ex.ExitSituation(quantity=qty, initial_quantity=qty, entry_price=entry, bid=PRICES[sb] if sb > 0 else None,
                             ask=PRICES[sa] if sa < 100 else None, bid_size=rt.quotes[ticker][2],
                             recomputed_edge=edge)
        decision = ex.resolve(ex.evaluate(s, self.rules))
        if decision is None:
            return
        o = rt.order(self.name, ticker, side, "sell", qty)
        if o is not None and o.fill_count:
            left = qty - o.fill_count
            self.exposure -= entry * o.fill_count
            if left:
                self.positions[ticker] = (side, left, entry)
            else:
                del self.positions[ticker]


def read_frames(path: Path, source_prefix: str = "kalshi") -> Iterator[tuple[int, Any]]:
    """(receive time ns, payload) of every recorded message from sources starting with `source_prefix`, in
    receive order — the recorder's format (`precog.ingest.recorder`), read without building a datetime and
    a message object per line (the replay loop needs neither). Stops cleanly at a torn or truncated tail."""
    from precog.ingest.recorder import recording_files

    def one(f: Path) -> Iterator[tuple[int, int, Any]]:
        loads = json.loads
        try:
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        return
                    row = loads(line)
                    if row["source"].startswith(source_prefix):
                        yield row["recv_ns"], row["seq"], row["payload"]
        except (EOFError, zlib.error, gzip.BadGzipFile):
            return

    files = recording_files(path)
    stream = one(files[0]) if len(files) == 1 else heapq.merge(*(one(f) for f in files))
    for ns, _seq, payload in stream:
        yield ns, payload


def replay_events(rt: FastReplay, tickers: list[str], events: Iterable[tuple[int, int, int, int, int, int]]) -> int:
    """Events as (market index, bid, ask, bid size, ask size, ts ms) tuples; returns how many."""
    on_quote = rt.on_quote
    n = 0
    for i, bid, ask, bsz, asz, ts in events:
        on_quote(tickers[i], bid, ask, bsz, asz, ts)
        n += 1
    rt.stats.events += n
    return n
