"""The engine's live market view on Kalshi: the latest quote of each followed market from the WebSocket, laid
over the market's REST snapshot; REST is only the fallback.

What a view is made of, per ticker:
- the REST snapshot (status, close time, result, settlement value, volume, titles ...) fetched once when the
  ticker is followed, again every `overlay_seconds` (at most half the max price age; one batched
  `GET /markets?tickers=` call for up to 100 markets) and right after a lifecycle event;
- the stream's prices on top: `ticker` messages (bid/ask, last, volume, open interest), the top of the local
  book when the connection is signed (`orderbook_delta`: prices and sizes), and `market_lifecycle_v2` status
  changes (open, closed, determined, settled with the settlement value).

A view is served only while it is trustworthy: the stream is subscribed, the ticker's prices were confirmed
(a REST snapshot requested, or a stream price received) after its current subscription started — after a
reconnect every view needs a new confirmation; a ticker added to a live subscription starts when the venue
acknowledges it (`MarketsSubscribed`), so a REST snapshot taken before the venue applied the subscription
never confirms it — and that confirmation is at most `max_price_age_seconds` old
(trading.yaml data_freshness.max_price_age_seconds). Kalshi sends a ticker message only when something
changes, so a quiet market stays current through the periodic REST snapshot, not through silence. Otherwise
`market()` returns None and the caller reads REST (the engine through its budgeted price cache); when the
stream has been down for longer than `down_alert_seconds` a `market_stream_down` alert is raised (once per
outage).

Sources: `share(feed)` takes the stream events of ingestion's MarketFeed in the same process (one WebSocket
connection for both); `open_connection()` makes the view open its own connection (`precog run --no-ingest`),
subscribed to exactly the followed tickers. A price outside [0, 1], a crossed quote or a book gap is rejected
with an alert and makes that view unusable until its next good price — never a price; each refusal (and each
unreadable stream message) is told to `rejection_observers`, which the trading loop counts toward its
data_quality breaker. `data_age` is how old a live view is for the data_stale breaker: a quiet market on a
live connection is as fresh as the connection's last proof of life.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import websockets

from precog.alerts.api import AlertRaiser
from precog.domain.market import Market, OrderBook, Quote
from precog.domain.money import ONE, ZERO
from precog.venues.kalshi.events import (
    BookResync,
    BookUpdated,
    ConnectionState,
    MarketLifecycle,
    MarketsSubscribed,
    StateChanged,
    StreamError,
    StreamEvent,
    TickerUpdated,
)
from precog.venues.kalshi.websocket import LIFECYCLE, ORDERBOOK, TICKER, KalshiWebSocket

if TYPE_CHECKING:
    from precog.ingest.market_feed import MarketFeed
    from precog.venues.kalshi.client import AsyncKalshiClient

log = logging.getLogger(__name__)

_NEVER = -math.inf
_VIEW_CHANNELS = frozenset({TICKER, LIFECYCLE, ORDERBOOK})
_BATCH = 100  # Kalshi's GET /markets takes up to 100 tickers (and returns up to `limit` of them)
RETRY_SECONDS = 5.0


class ViewWebSocket(KalshiWebSocket):
    """The Kalshi WebSocket client, subscribed to exactly the markets the engine follows: markets can also be
    dropped (`update_subscription` with `delete_markets` on each market subscription), and with no market
    followed nothing is subscribed (a market channel without tickers would be every market on the venue)."""

    async def _subscribe_all(self) -> None:
        if not self.tickers:
            self._set_state(ConnectionState.SUBSCRIBED)
            return
        await super()._subscribe_all()

    async def remove_markets(self, tickers: Iterable[str]) -> None:
        gone = [t for t in dict.fromkeys(tickers) if t in self.tickers]
        if not gone:
            return
        dropped = set(gone)
        self.tickers = [t for t in self.tickers if t not in dropped]
        if self._ws is None or self.state not in (ConnectionState.CONNECTED, ConnectionState.SUBSCRIBED):
            return  # the next connection subscribes the remaining tickers only
        for sid, channel in list(self._sid_channel.items()):
            if channel in _VIEW_CHANNELS:
                await self._send("update_subscription",
                                 {"sids": [sid], "action": "delete_markets", "market_tickers": gone})


@dataclass
class StreamStats:
    stream_reads: int = 0  # market() answered from memory
    fallbacks: int = 0  # market() had no trustworthy view: the caller went to REST
    rest_snapshots: int = 0  # batched REST calls made by the view (baselines and the slow overlay)
    quotes: int = 0  # stream prices applied
    rejected: int = 0  # stream prices refused (out of range, crossed) and book gaps
    down_alerts: int = 0


@dataclass
class _View:
    base: Market | None = None  # the latest REST snapshot
    base_at: float = _NEVER  # when its request went out
    yes_bid: Decimal = ZERO
    yes_ask: Decimal = ONE
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    last: Decimal | None = None
    volume: Decimal | None = None
    open_interest: Decimal | None = None
    quote_at: float = _NEVER  # when the latest stream price arrived
    lifecycle: MarketLifecycle | None = None
    lifecycle_at: float = _NEVER
    since: float = math.inf  # when this ticker's current subscription started (inf: not subscribed)
    bad_at: float = _NEVER  # a rejected update or a book gap: prices unknown until a later confirmation
    asked_at: float = _NEVER  # when the view last asked REST for this ticker

    @property
    def confirmed_at(self) -> float:
        return max(self.base_at, self.quote_at)


class MarketStream:
    def __init__(self, rest: AsyncKalshiClient, *, max_price_age_seconds: float = 120.0,
                 overlay_seconds: float = 60.0, down_alert_seconds: float | None = None,
                 alerts: AlertRaiser | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if max_price_age_seconds <= 0 or overlay_seconds <= 0:
            raise ValueError("max_price_age_seconds and overlay_seconds must be positive")
        self.rest = rest
        self.max_age = float(max_price_age_seconds)
        # a quiet market is confirmed by the overlay: at least twice per max age, so it never goes stale
        self.overlay_seconds = min(float(overlay_seconds), self.max_age / 2)
        self.down_alert_seconds = float(max_price_age_seconds if down_alert_seconds is None else down_alert_seconds)
        self.alerts = alerts
        self.clock = clock
        self.stats = StreamStats()
        self._views: dict[str, _View] = {}
        self._feed: MarketFeed | None = None
        self._own: ViewWebSocket | None = None
        self._own_options: dict[str, Any] | None = None
        self._up_since: float | None = None
        self._down_since: float | None = None
        self._alerted = False
        self._due: set[str] = set()  # tickers whose REST snapshot is wanted now (a lifecycle event)
        self._overlay_at = _NEVER
        self._heard_at = _NEVER  # the latest stream event of any kind: the connection proved alive then
        # called with (ticker, defect) for every stream price refused and every unreadable stream message: the
        # trading loop counts them toward its data_quality breaker
        self.rejection_observers: list[Callable[[str, str], None]] = []

    # ------------------------------------------------------------------ sources

    def share(self, feed: MarketFeed) -> None:
        """Use ingestion's stream (the same process): its events come here, new tickers join its subscription."""
        if self._own_options is not None:
            raise ValueError("the market view already has its own connection")
        self._feed = feed
        feed.listeners.append(self.on_event)

    def open_connection(self, ws_url: str | None = None, **ws_options: Any) -> None:
        """Open our own WebSocket (started once a market is followed); `ws_options` go to the client
        (signer, reconnect_base, heartbeat_interval ...). Signed connections also get the order book."""
        if self._feed is not None:
            raise ValueError("the market view already shares ingestion's stream")
        ws_options.setdefault("signer", self.rest.signer)
        ws_options.setdefault("alerts", self.alerts)
        self._own_options = {"ws_url": ws_url or self.rest.environment.ws_url, **ws_options}

    async def close(self) -> None:
        if self._feed is not None and self.on_event in self._feed.listeners:
            self._feed.listeners.remove(self.on_event)
        if self._own is not None:
            await self._own.stop()

    @property
    def ws(self) -> KalshiWebSocket | None:
        if self._own is not None:
            return self._own
        return self._feed.ws if self._feed is not None else None

    @property
    def source(self) -> str:
        return "ingestion" if self._feed is not None else "own connection" if self._own_options else "none"

    def _start_own(self, tickers: list[str]) -> None:
        assert self._own_options is not None
        options = dict(self._own_options)
        url = options.pop("ws_url")
        channels = [TICKER, LIFECYCLE] + ([ORDERBOOK] if options.get("signer") is not None else [])
        self._own = ViewWebSocket(url, tickers=tickers, channels=channels, on_event=self.on_event,
                                  book_event_depth=1, **options)
        self._own.start()

    # ------------------------------------------------------------------ engine side

    @property
    def followed(self) -> frozenset[str]:
        return frozenset(self._views)

    def is_up(self) -> bool:
        ws = self.ws
        up = ws is not None and ws.state is ConnectionState.SUBSCRIBED
        now = self.clock()
        if up and self._up_since is None:
            self._on_up(now)  # subscribed before we saw the event (attached late): confirm everything again
        elif not up and self._up_since is not None:
            self._on_down(now)
        return up

    def down_seconds(self) -> float | None:
        """Seconds the stream has been down (not subscribed) while markets are followed, None while it is up."""
        if self.is_up():
            return None
        return self.clock() - self._down_since if self._down_since is not None else 0.0

    def is_live(self, ticker: str) -> bool:
        """The view of `ticker` may be used now instead of REST."""
        v = self._views.get(ticker)
        if v is None or v.base is None or not self.is_up():
            return False
        confirmed = v.confirmed_at
        return confirmed >= v.since and confirmed > v.bad_at and self.clock() - confirmed <= self.max_age

    def data_age(self, ticker: str) -> float | None:
        """Seconds since the live view of `ticker` was last confirmed, or None when it is not live (the caller
        reads REST). Kalshi sends a market's messages only when it changes, so a live subscription is as fresh
        as the connection's last proof of life: its latest message, or at worst the heartbeat that keeps it
        open (a ping not answered within the heartbeat timeout closes the connection, and the view with it)."""
        if not self.is_live(ticker):
            return None
        now = self.clock()
        v = self._views[ticker]
        age = now - max(v.confirmed_at, self._heard_at)
        ws = self.ws
        if ws is not None:
            age = min(age, float(ws.heartbeat_interval) + float(ws.heartbeat_timeout))
        return max(0.0, age)

    def market(self, ticker: str) -> Market | None:
        """The live view of `ticker`, or None (read REST instead; counted as a fallback)."""
        if self.is_live(ticker):
            self.stats.stream_reads += 1
            return self._compose(self._views[ticker])
        self.stats.fallbacks += 1
        self._check_down()
        return None

    def observe_rest(self, market: Market, requested_at: float) -> None:
        """A REST snapshot fetched elsewhere (the fallback read): it becomes the view's base."""
        v = self._views.get(market.ticker)
        if v is not None:
            self._apply_base(v, market, requested_at)

    async def follow(self, tickers: Iterable[str]) -> None:
        """Called every engine cycle with what the engine holds, quotes and plans: subscriptions follow
        (added and removed), new or re-subscribed views get their REST snapshot, the slow overlay runs."""
        wanted = set(tickers)
        gone = [t for t in self._views if t not in wanted]
        for t in gone:
            del self._views[t]
            self._due.discard(t)
        new = sorted(t for t in wanted if t not in self._views)
        for t in new:
            self._views[t] = _View()
        if self._own_options is not None and self._own is None and wanted:
            self._start_own(sorted(wanted))
        ws = self.ws
        up = self.is_up()
        if ws is not None:
            already = set(ws.tickers) - ws.subscribing()  # subscribed and acknowledged by the venue
            try:
                if gone and isinstance(ws, ViewWebSocket):
                    await ws.remove_markets(gone)  # ingestion's subscription keeps its own markets
                if new:
                    await ws.add_markets(new)
            except websockets.WebSocketException as exc:  # the reconnect subscribes the followed tickers
                log.info("market view: subscription change interrupted (%s)", exc)
            if new and up and self._up_since is not None:
                # a ticker added just now starts when the venue acknowledges it (on_event: MarketsSubscribed)
                for t in new:
                    if t in already:
                        self._views[t].since = self._up_since
        self._check_down()
        if up:
            await self._refresh_rest()

    async def _refresh_rest(self) -> None:
        now = self.clock()
        overlay = now - self._overlay_at >= self.overlay_seconds
        # a lifecycle event asks once; an unconfirmed view REST did not answer for (or a failed call) is asked
        # again after RETRY_SECONDS, not every cycle
        # (a view whose subscription the venue has not acknowledged yet is not asked: that answer could predate it)
        stale = [t for t, v in self._views.items()
                 if v.since != math.inf and (overlay or t in self._due or (now - v.asked_at >= RETRY_SECONDS and (
                     v.base is None or v.confirmed_at < v.since or v.bad_at >= v.confirmed_at)))]
        if not stale:
            return
        self._due.difference_update(stale)
        for t in stale:
            self._views[t].asked_at = now
        from precog.venues.kalshi.errors import KalshiError

        if overlay:
            self._overlay_at = now
        for i in range(0, len(stale), _BATCH):
            chunk = stale[i:i + _BATCH]
            requested = self.clock()
            try:
                page = await self.rest.get_markets(tickers=chunk, limit=len(chunk))
            except KalshiError as exc:  # the views stay unconfirmed: the engine reads REST through its budget
                log.warning("market view: REST snapshot of %d market(s) failed: %s", len(chunk), exc)
                return
            self.stats.rest_snapshots += 1
            for m in page.items:
                v = self._views.get(m.ticker)
                if v is not None:
                    self._apply_base(v, m, requested)

    def status(self) -> dict[str, Any]:
        live = sum(1 for t in list(self._views) if self.is_live(t))
        return {"source": self.source, "connected": self.is_up(), "followed": len(self._views), "live": live,
                **dataclasses.asdict(self.stats)}

    # ------------------------------------------------------------------ stream side

    def on_event(self, event: StreamEvent) -> None:
        """Every stream event (called in the WebSocket reader task; ingestion's feed calls it after its own
        handling)."""
        self._heard_at = self.clock()
        if isinstance(event, TickerUpdated):
            v = self._views.get(event.quote.ticker)
            if v is not None:
                self._on_quote(event.quote.ticker, v, event.quote)
        elif isinstance(event, BookUpdated):
            v = self._views.get(event.ticker)
            if v is not None:
                self._on_book(event.ticker, v, event.book)
        elif isinstance(event, MarketLifecycle):
            v = self._views.get(event.ticker)
            if v is not None:
                v.lifecycle, v.lifecycle_at = event, self.clock()
                self._due.add(event.ticker)  # the full snapshot (result, settlement details) on the next cycle
        elif isinstance(event, BookResync):
            now = self.clock()
            for t in event.tickers:
                v = self._views.get(t)
                if v is not None:
                    v.bad_at = now
        elif isinstance(event, MarketsSubscribed):
            self._on_subscribed(event.tickers)
        elif isinstance(event, StateChanged):
            if event.state is ConnectionState.SUBSCRIBED:
                self._on_up(self.clock())
            else:
                self._on_down(self.clock())
        elif isinstance(event, StreamError) and event.code is None:
            # a message nobody could read (the client alerted venue_schema_error): some market may have missed
            # an update, so every view is confirmed again by REST before it is used
            now = self.clock()
            for v in self._views.values():
                v.bad_at = now
            self._tell_rejected("(stream)", f"an unreadable stream message: {event.message}"[:300])

    def _tell_rejected(self, ticker: str, defect: str) -> None:
        for observe in self.rejection_observers:
            try:
                observe(ticker, defect)
            except Exception:  # noqa: BLE001 - an observer's problem never stops market data
                log.exception("market view: rejection observer failed")

    def _on_subscribed(self, tickers: tuple[str, ...]) -> None:
        """The venue applied the subscription of these tickers (added to a live stream): their views start now and
        get their REST snapshot on the next cycle. During a (re)connection's first subscription `_on_up` does it."""
        if self._up_since is None:
            return
        now = self.clock()
        for t in tickers:
            v = self._views.get(t)
            if v is not None and v.since == math.inf:
                v.since = now
                self._due.add(t)

    def _on_up(self, now: float) -> None:
        self._up_since = now
        ws = self.ws
        waiting = ws.subscribing() if ws is not None else set()  # attached late: those start at their ack
        for t, v in self._views.items():
            v.since = math.inf if t in waiting else now
        if self._down_since is not None:
            log.info("market view: stream back after %.1f s", now - self._down_since)
        self._down_since = None
        self._alerted = False

    def _on_down(self, now: float) -> None:
        self._up_since = None
        if self._down_since is None:
            self._down_since = now
        for v in self._views.values():
            v.since = math.inf

    def _on_quote(self, ticker: str, v: _View, q: Quote) -> None:
        bid = q.yes_bid if q.yes_bid is not None else ZERO  # an empty side quotes like REST: bid 0, ask 1
        ask = q.yes_ask if q.yes_ask is not None else ONE
        problem = _quote_problem(bid, ask, q.last_price, q.yes_bid_size, q.yes_ask_size)
        if problem is not None:
            self._reject(ticker, v, problem, {"yes_bid": str(q.yes_bid), "yes_ask": str(q.yes_ask),
                                              "last_price": str(q.last_price)})
            return
        # a ticker message without sizes: the size shown stays only while its price does
        bid_size = q.yes_bid_size if q.yes_bid_size is not None else (v.bid_size if bid == v.yes_bid else None)
        ask_size = q.yes_ask_size if q.yes_ask_size is not None else (v.ask_size if ask == v.yes_ask else None)
        self._set_prices(v, bid, ask, bid_size, ask_size)
        if q.last_price is not None:
            v.last = q.last_price
        if q.volume is not None:
            v.volume = q.volume
        if q.open_interest is not None:
            v.open_interest = q.open_interest

    def _on_book(self, ticker: str, v: _View, book: OrderBook) -> None:
        best_bid, best_no = book.best_yes_bid, book.best_no_bid
        bid = best_bid.price if best_bid else ZERO
        ask = ONE - best_no.price if best_no else ONE
        bid_size = best_bid.quantity if best_bid else None
        ask_size = best_no.quantity if best_no else None
        problem = _quote_problem(bid, ask, None, bid_size, ask_size)
        if problem is not None:
            self._reject(ticker, v, problem, {"yes_bid": str(bid), "yes_ask": str(ask)})
            return
        self._set_prices(v, bid, ask, bid_size, ask_size)

    def _set_prices(self, v: _View, bid: Decimal, ask: Decimal, bid_size: Decimal | None,
                    ask_size: Decimal | None) -> None:
        v.yes_bid, v.yes_ask, v.bid_size, v.ask_size = bid, ask, bid_size, ask_size
        v.quote_at = self.clock()
        self.stats.quotes += 1

    def _reject(self, ticker: str, v: _View, problem: str, details: dict[str, Any]) -> None:
        v.bad_at = self.clock()
        self.stats.rejected += 1
        log.warning("market view: rejected a stream price for %s: %s", ticker, problem)
        self._tell_rejected(ticker, f"stream price refused: {problem}")
        if self.alerts is not None:
            try:
                self.alerts.raise_alert("market_stream_bad_quote", "high", "market_stream",
                                        f"stream price for {ticker} rejected: {problem}; REST until the next good one",
                                        {"ticker": ticker, "problem": problem, **details},
                                        dedup_key=f"market_stream_bad_quote:{ticker}", category="data")
            except Exception:  # noqa: BLE001 - the alert sink failing must not stop market data
                log.exception("could not raise market_stream_bad_quote")

    # ------------------------------------------------------------------ views

    def _apply_base(self, v: _View, market: Market, requested_at: float) -> None:
        if requested_at < v.base_at:
            return  # an older answer than the base we have
        v.base, v.base_at = market, requested_at

    def _compose(self, v: _View) -> Market:
        base = v.base
        assert base is not None
        changes: dict[str, Any] = {}
        if v.quote_at > v.base_at:  # the stream's prices are newer than the snapshot's
            changes.update(yes_bid=v.yes_bid, yes_ask=v.yes_ask, no_bid=ONE - v.yes_ask, no_ask=ONE - v.yes_bid,
                           yes_bid_size=v.bid_size, yes_ask_size=v.ask_size)
            if v.last is not None:
                changes["last_price"] = v.last
            if v.volume is not None:
                changes["volume"] = v.volume
            if v.open_interest is not None:
                changes["open_interest"] = v.open_interest
        life = v.lifecycle
        if life is not None and v.lifecycle_at > v.base_at:
            if life.status is not None:
                changes["status"] = life.status
            if life.event_type:
                changes["venue_status"] = life.event_type
            if life.result:
                changes["result"] = life.result.lower()
            if life.settlement_value is not None:
                changes["settlement_value"] = life.settlement_value
            if life.close_time is not None:
                changes["close_time"] = life.close_time
        return dataclasses.replace(base, **changes) if changes else base

    def _check_down(self) -> None:
        if self.is_up():
            return
        now = self.clock()
        if not self._views:
            self._down_since = None  # nothing followed: the stream is not needed (ours opens with the first)
            return
        if self._down_since is None:
            self._down_since = now
        down_for = now - self._down_since
        if self._alerted or down_for < self.down_alert_seconds:
            return
        self._alerted = True
        self.stats.down_alerts += 1
        ws = self.ws
        url = ws.ws_url if ws is not None else "(not connected)"
        log.warning("market view: stream down for %.0f s; reading markets over REST", down_for)
        if self.alerts is not None:
            try:
                self.alerts.raise_alert(
                    "market_stream_down", "high", "market_stream",
                    f"Kalshi market stream down for {down_for:.0f} s ({self.source}); the engine reads "
                    f"{len(self._views)} market(s) over REST within the API budget",
                    {"url": url, "down_seconds": round(down_for, 1), "followed": len(self._views),
                     "state": ws.state.value if ws is not None else "none"},
                    dedup_key=f"market_stream_down:{url}", category="data")
            except Exception:  # noqa: BLE001 - the alert sink failing must not stop market data
                log.exception("could not raise market_stream_down")


def _quote_problem(bid: Decimal, ask: Decimal, last: Decimal | None, bid_size: Decimal | None,
                   ask_size: Decimal | None) -> str | None:
    for name, value in (("yes_bid", bid), ("yes_ask", ask), ("last_price", last)):
        if value is not None and (not value.is_finite() or not ZERO <= value <= ONE):
            return f"{name} {value} is outside [0, 1]"
    if bid > ask:
        return f"crossed quote: yes_bid {bid} > yes_ask {ask}"
    for name, size in (("yes_bid_size", bid_size), ("yes_ask_size", ask_size)):
        if size is not None and (not size.is_finite() or size < 0):
            return f"{name} {size} is negative"
    return None


def stream_of(venue: Any) -> MarketStream | None:
    """The live market view behind a venue (a wrapper such as PaperVenue exposes its data venue as `.data`)."""
    for _ in range(4):
        if venue is None:
            return None
        found = getattr(venue, "market_stream", None)
        if isinstance(found, MarketStream):
            return found
        venue = getattr(venue, "data", None)
    return None
