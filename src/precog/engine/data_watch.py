"""What the engine's data path tells the data_stale and data_quality circuit breakers (spec 5.4).

data_stale: each cycle, the age of the engine's last *confirmed* view of the data it decides on, worst first,
goes to `BreakerBoard.record_data_age` (it trips past trading.circuit_breakers.data_stale_seconds and recovers
by itself once the data is fresh again). A confirmed view is:

- a market read the venue answered with a good payload, at the time of the read: the in-process local
  exchange (demo, tests) and a REST read (Kalshi, the local exchange over HTTP, a paper account's data venue)
  alike. Kalshi sends WebSocket messages only when something changes, so a quiet market is not stale: a
  market served by a live stream subscription (`MarketStream.data_age`) is as old as the connection's last
  proof of life (a message, or the heartbeat that keeps it open). A read the REST budget held back serves the
  cached snapshot: as old as its fetch (`PriceCache.fetched_at`).
- for the decision layer (`precog run --venue kalshi`), which trades on ingestion's stored game states: the
  age of each live game's state (the later of its write and its ESPN feed's last success, as the decision
  scan sees it), for the games of the markets the engine holds, works or has candidates on.

The markets that count are the tracked markets still open and every market we hold; a market never read
successfully is as old as the engine's first attempt to read it. A backtest replays a recording whose time is
defined by its own events (a quiet hour is no stale data): it feeds none. The in-process worlds (demo, tests)
have no game feed of their own to go stale.

data_quality: every market payload the data path rejects counts one bad point
(`BreakerBoard.record_data_quality_failure`) and is never used (the last good snapshot stays, and ages): the
Kalshi client's own refusals (a missing field, a price outside [0, 1]: `KalshiSchemaError`), a snapshot whose
prices are outside [0, 1] or whose open book is crossed or inverted (`precog.ingest.quality.quote_issues`,
the checks ingestion runs), one that is not the market asked for, a stream price the market view refused, an
unreadable stream message, and a market in a live game whose price is older than 5 minutes (once per stale
spell). Ingestion's own quality breaker (precog.ingest.breaker) writes the same breaker type for the data it
stores; the engine's board sees its trips when it re-reads the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from precog.domain.market import Market
from precog.ingest.quality import quote_issues

log = logging.getLogger(__name__)

# spec 4.3 system.yaml circuit_breakers.data_quality: "stale price > 5 min in game" is a bad data point
LIVE_PRICE_MAX_AGE_SECONDS = 300.0


class RejectedMarketData(Exception):
    """A market payload the engine refused (counted as one bad data point); the caller keeps its last good one."""

    def __init__(self, ticker: str, defect: str) -> None:
        self.ticker = ticker
        self.defect = defect
        super().__init__(f"{ticker}: {defect}")


def market_defect(m: Market, ticker: str) -> str | None:
    """Why a market snapshot read for `ticker` must be refused, or None when it may be used."""
    if not m.ticker:
        return "the payload has no ticker"
    if m.ticker != ticker:
        return f"the payload is for {m.ticker!r}, not the market asked for"
    prices: dict[str, Decimal] = {"yes_bid": m.yes_bid, "yes_ask": m.yes_ask, "no_bid": m.no_bid,
                                  "no_ask": m.no_ask, "last_price": m.last_price}
    missing = [k for k, v in prices.items() if not isinstance(v, Decimal) or not v.is_finite()]
    if missing:
        return f"price field(s) missing or not a number: {', '.join(missing)}"
    # a book that cannot trade keeps whatever quotes the venue left on it (a settled market's): only the range
    # is checked there; an open market's book must not be crossed or inverted
    issues = quote_issues(ticker, yes_bid=m.yes_bid, yes_ask=m.yes_ask, no_bid=m.no_bid, no_ask=m.no_ask,
                          last_price=m.last_price, event_time=None, received_at=None, max_age_seconds=0)
    if not m.is_tradable:
        issues = [i for i in issues if i.check == "price_out_of_range"]
    if issues:
        return issues[0].message.removeprefix(f"{ticker}: ")
    return None


class DataWatch:
    """Per market, when the engine's view of it was last confirmed (engine clock, Unix seconds), and the bad
    data points it has counted. `board` is the engine's BreakerBoard (None: nothing is reported)."""

    def __init__(self, board: Any, platform_id: str) -> None:
        self.board = board
        self.platform_id = platform_id
        self.confirmed: dict[str, float] = {}
        self._first_wanted: dict[str, float] = {}  # a market never confirmed: when the engine first wanted it
        self._counted: dict[tuple[str, str], float] = {}  # (market, defect) -> when it was last counted
        self._live_stale: set[str] = set()  # markets in a live game whose price passed 5 min (counted once)
        self.bad_points = 0

    # ------------------------------------------------------------------ market reads

    def wanted(self, ticker: str, at: float) -> None:
        """The engine is about to read `ticker`: a market never confirmed is as old as the first attempt."""
        if ticker not in self.confirmed:
            self._first_wanted.setdefault(ticker, at)

    def confirm(self, ticker: str, at: float) -> None:
        """The view of `ticker` was confirmed at `at` (never moves back: an older confirmation changes nothing)."""
        if at > self.confirmed.get(ticker, float("-inf")):
            self.confirmed[ticker] = at
        self._first_wanted.pop(ticker, None)

    def reject(self, ticker: str, defect: str, at: float) -> RejectedMarketData:
        """A payload of `ticker` refused for `defect`: one bad data point (the same payload read twice at one
        instant, by the cycle and the position check, counts once). Returns the error to raise."""
        self.bad_point(ticker, defect, at)
        return RejectedMarketData(ticker, defect)

    def bad_point(self, where: str, defect: str, at: float) -> None:
        key = (where, defect)
        if self._counted.get(key) == at:
            return
        self._counted[key] = at
        if len(self._counted) > 1000:  # only the latest instant matters per key
            self._counted = {k: v for k, v in self._counted.items() if v == at}
        self.bad_points += 1
        log.warning("bad market data rejected: %s: %s", where, defect)
        if self.board is not None:
            self.board.record_data_quality_failure(f"{where}: {defect}"[:300], at=at)

    # ------------------------------------------------------------------ ages

    def market_age(self, ticker: str, now: float) -> float:
        at = self.confirmed.get(ticker)
        if at is None:
            at = self._first_wanted.get(ticker, now)
        return max(0.0, now - at)

    def forget(self, keep: Iterable[str]) -> None:
        """Drop what is known of markets the engine no longer reads (settled, no longer held)."""
        kept = set(keep)
        for table in (self.confirmed, self._first_wanted):
            for t in [t for t in table if t not in kept]:
                del table[t]
        self._live_stale &= kept

    def live_price_check(self, tickers_in_live_games: Iterable[str], now: float) -> None:
        """A market in a live game whose price is older than 5 minutes is one bad data point, once per spell."""
        for t in tickers_in_live_games:
            age = self.market_age(t, now)
            if age > LIVE_PRICE_MAX_AGE_SECONDS:
                if t not in self._live_stale:
                    self._live_stale.add(t)
                    self.bad_point(t, f"price in a live game is {age:.0f} s old (max "
                                      f"{LIVE_PRICE_MAX_AGE_SECONDS:.0f} s)", now)
            else:
                self._live_stale.discard(t)

    def report(self, ages: list[tuple[float, str]], now: float) -> None:
        """The worst of `ages` ((age, what) pairs) to the data_stale breaker, in one call (a second, fresher
        report would end the trip the first made); nothing in use is fresh."""
        if self.board is None:
            return
        age, what = max(ages, default=(0.0, f"{self.platform_id} market data"), key=lambda a: a[0])
        self.board.record_data_age(age, what=what, at=now)


def live_game_ages(conn: Any, tickers: Iterable[str], now: float) -> list[tuple[str, float, list[str]]]:
    """The live games behind `tickers` (markets -> game_links -> current game_states), each as (label such as
    'ESPN game state for KC@BUF', age in seconds at `now`, its markets among `tickers`). A game state is as
    fresh as the later of its own write and its ESPN feed's last success (the SCD2 writer only writes a new
    version when something changed), as the decision scan sees it (precog.trading.snapshot.load_games)."""
    from precog.trading.views import LIVE_GAME_STATUSES

    wanted = sorted(set(tickers))
    if not wanted:
        return []
    rows = conn.execute(
        "SELECT gs.sport, gs.external_game_id, gs.away_team, gs.home_team,"
        " GREATEST(gs.created_at, f.last_success_at), array_agg(DISTINCT m.market_id)"
        " FROM markets m"
        " JOIN game_links gl ON gl.event_id = m.event_id"
        " JOIN game_states gs ON gs.sport = gl.sport AND gs.external_game_id = gl.external_game_id"
        "  AND gs.row_current_ind"
        " LEFT JOIN ingest_feed_status f ON f.feed = 'espn:' || gs.sport AND f.mode <> 'down'"
        " WHERE m.row_current_ind AND m.market_id = ANY(%s) AND gs.status = ANY(%s)"
        " GROUP BY gs.sport, gs.external_game_id, gs.away_team, gs.home_team, gs.created_at, f.last_success_at",
        (wanted, sorted(LIVE_GAME_STATUSES))).fetchall()
    out = []
    for sport, game_id, away, home, observed, markets in rows:
        name = f"{away}@{home}" if away and home else f"{sport} game {game_id}"
        age = max(0.0, now - observed.timestamp()) if observed is not None else float("inf")
        out.append((f"ESPN game state for {name}", age, list(markets)))
    return out
