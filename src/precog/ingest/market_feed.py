"""Market ingestion: series -> events -> markets in sync, prices streamed, history written in batches.

- Discovery: REST with cursor paging (`/events`, `/markets` per configured series), on start and every
  `discovery_seconds`; new markets join the WebSocket subscription.
- Prices: WebSocket `ticker` (+ `market_lifecycle_v2`) updates are checked (data quality), merged into the
  market's last known full row and written through the SCD2 writer every `flush_interval` seconds in one
  set-based batch (the material-change rule decides what becomes a new version).
- Fallback: while the stream is not subscribed, the markets are polled over REST every
  `fallback_poll_seconds`; when the stream comes back one REST snapshot fills the gap.
- Subscription window: an update made between discovery's REST snapshot and the moment the venue applies the
  subscription of a market is never streamed. So when the venue acknowledges a subscription that added
  markets (the first one of each connection, and each discovery addition: `MarketsSubscribed`), those markets
  get one REST snapshot, requested after the acknowledgement.
- A REST answer never undoes a newer stream update: prices or lifecycle fields (status, result, settlement)
  that the stream delivered after the request went out are kept.
- Every raw message can be recorded (Recorder) for replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from precog.domain.jsonutil import dumps
from precog.domain.market import Market, Quote
from precog.domain.money import ONE, ZERO
from precog.ingest.market_store import MarketStore, derive_prices, market_row
from precog.ingest.quality import DataQualityMonitor, QualityIssue, quote_issues
from precog.ingest.recorder import Recorder
from precog.ingest.scd2 import WriteResult
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.errors import KalshiError, KalshiSchemaError
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

log = logging.getLogger(__name__)
T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RESULTS = {"yes", "no", "void", "scalar"}
_STREAM_FIELDS = frozenset({"yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "volume", "open_interest",
                            "yes_price", "no_price", "spread"})
# `seq` is optional: Kalshi's ticker (like fill and user_order) messages carry none, only sequenced channels do
_ENVELOPE_SEQ = re.compile(r'\{"type":\s*"(?P<type>[a-z_0-9]+)",\s*"sid":\s*(?P<sid>\d+)(?:,\s*"seq":\s*(?P<seq>\d+))?')


@dataclass(frozen=True, slots=True)
class MarketFeedSettings:
    platform_id: str  # 'kalshi' or 'local'
    series: dict[str, str | None]  # series ticker -> sport (nfl, ncaaf ...)
    flush_interval: float = 0.1
    discovery_seconds: float = 300.0  # markets.yaml discovery.poll_seconds
    fallback_poll_seconds: float = 60.0  # spec 6.7: REST every 60 s while the stream is down
    fallback_grace_seconds: float = 5.0  # a reconnect within this time does not switch to polling
    max_price_age_seconds: float = 120.0  # trading.yaml data_freshness.max_price_age_seconds
    status_seconds: float = 5.0
    discovery_status: str | None = "open"
    use_websocket: bool = True
    orderbook: bool = False  # needs a signed connection on Kalshi
    freshness_samples: int = 200_000
    page_size: int = 1000  # REST cursor paging (Kalshi allows up to 1000 markets, 200 events per page)
    heartbeat: tuple[float, float] = (10.0, 30.0)  # WebSocket ping interval, pong timeout (system.yaml timeouts)


class RecordingWebSocket(KalshiWebSocket):
    """The Kalshi WebSocket client, plus: every raw frame is timestamped (and recorded) on arrival."""

    def __init__(self, *args: Any, recorder: Recorder | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorder = recorder
        self.last_message_at: float | None = None  # epoch seconds
        self.messages = 0
        self.frame_time: datetime | None = None
        self.gaps = 0
        self.on_gap: Callable[[int, int, int], None] | None = None
        self._last_seq: dict[int, int] = {}

    def _on_raw(self, raw: str | bytes) -> None:
        now = time.time()
        self.last_message_at = now
        self.messages += 1
        text = raw.decode() if isinstance(raw, bytes) else raw
        if self.recorder is not None:
            self.recorder.record("kalshi:ws", text, datetime.fromtimestamp(now, UTC))
        # The typed ticker keeps only `ts` (whole seconds); the frame's `time` has milliseconds. It is read
        # here and used by the on_event callback, which the parent calls synchronously for this frame.
        self.frame_time = _frame_time(text)
        kind = self._check_sequence(text)
        if kind == "ticker" and self.on_event is not None:
            quote = fast_ticker(text, self.frame_time)
            if quote is not None:  # the common case, without the generic parser's per-field machinery
                try:
                    self.on_event(TickerUpdated(quote))
                except Exception:  # noqa: BLE001 - as in _emit: a consumer bug must not end the reader task
                    log.exception("market stream handler failed on a ticker frame")
                return
        super()._on_raw(raw)

    def _check_sequence(self, text: str) -> str | None:
        """Lifecycle (and trade) subscriptions carry a per-subscription `seq` too; a jump means lost messages.

        Returns the message type when the envelope starts the usual way."""
        match = _ENVELOPE_SEQ.match(text)
        if match is None:
            return None
        if match["type"] in ("orderbook_snapshot", "orderbook_delta") or match["seq"] is None:
            return match["type"]  # books are checked (and resynced) by the client itself; no seq, no check
        sid, seq = int(match["sid"]), int(match["seq"])
        expected = self._last_seq.get(sid, seq - 1) + 1
        self._last_seq[sid] = seq
        if seq > expected:
            self.gaps += 1
            if self.on_gap is not None:
                self.on_gap(sid, expected, seq)
        return match["type"]


@dataclass
class FeedStats:
    updates: int = 0  # price/lifecycle updates accepted into a batch
    rejected: int = 0  # updates refused by the quality checks
    unknown_ticker: int = 0
    rest_snapshots: int = 0
    rows_flushed: int = 0
    versions_written: int = 0
    batches: int = 0
    committed_updates: int = 0
    flush_seconds: float = 0.0
    freshness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))


class MarketFeed:
    def __init__(
        self,
        rest: AsyncKalshiClient,
        store: MarketStore,
        settings: MarketFeedSettings,
        monitor: DataQualityMonitor,
        *,
        ws_url: str | None = None,
        signer: Any = None,
        recorder: Recorder | None = None,
        on_commit: Callable[[int, int], None] | None = None,
        on_discovered: Callable[[list[str]], None] | None = None,
        extra_stores: Sequence[MarketStore] = (),
    ) -> None:
        self.rest = rest
        self.store = store
        # Each batch is split by market across `store` and the extra stores (each on its own connection),
        # written concurrently: the halves' database work overlaps. A market always goes to the same store,
        # so its versions are written in order and one current row per market holds.
        self.writers: tuple[MarketStore, ...] = (store, *extra_stores)
        self._writer_locks = [threading.Lock() for _ in self.writers]
        self._writer_of: dict[str, int] = {}  # ticker -> index into writers
        self.settings = settings
        self.monitor = monitor
        self.ws_url = ws_url
        self.signer = signer
        self.recorder = recorder
        self.on_commit = on_commit
        self.on_discovered = on_discovered
        self.stats = FeedStats(freshness_ms=deque(maxlen=settings.freshness_samples))
        self.cache: dict[str, dict[str, Any]] = {}  # ticker -> last known full row
        self._pending: dict[str, dict[str, Any]] = {}  # ticker -> fields changed since the last flush
        self._pending_at: dict[str, float] = {}  # ticker -> receive time (epoch s) of its latest update
        # event times (epoch s) of every update in the batch, per writer
        self._pending_ts: list[list[float]] = [[] for _ in self.writers]
        self._db_lock = asyncio.Lock()
        self._conn_lock = self._writer_locks[0]  # `store`'s connection: batches and discovery's writes
        self.ws: RecordingWebSocket | None = None
        self.mode = "down"
        self._down_since: float | None = time.monotonic()
        self._needs_refresh = asyncio.Event()  # a full REST refresh is wanted (reconnect, gap, resync)
        self._confirm: dict[str, None] = {}  # markets whose new subscription was acknowledged: REST them once
        self._wake = asyncio.Event()  # wakes the fallback loop for either of the two
        self._last_rest_poll = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_stream: dict[str, float] = {}  # ticker -> when its last stream price arrived
        self._last_lifecycle: dict[str, dict[str, float]] = {}  # ticker -> field -> when the stream last set it
        # other consumers of this stream in the process (the engine's market view): called after our own handling
        self.listeners: list[Callable[[StreamEvent], None]] = []

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking database call in a worker thread. The thread lock outlives a cancelled await, so
        two calls can never use the connection at once (a cancelled task's thread finishes first)."""
        return await self._on_writer(0, fn, *args)

    async def _on_writer(self, index: int, fn: Callable[..., T], *args: Any) -> T:
        lock = self._writer_locks[index]

        def locked() -> T:
            with lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _writer_index(self, ticker: str) -> int:
        index = self._writer_of.get(ticker)
        if index is None:  # stable across runs (not Python's salted hash)
            index = self._writer_of[ticker] = zlib.crc32(ticker.encode()) % len(self.writers)
        return index

    # ----------------------------------------------------------------------------------- discovery

    async def discover(self) -> list[str]:
        """Series, events and markets of every configured series via REST (cursor paging); returns tickers."""
        requested_at = time.time()
        markets: list[Market] = []
        failures: list[KalshiError] = []
        for series_ticker, sport in self.settings.series.items():
            try:
                series = await self.rest.get_series(series_ticker)
            except KalshiError as exc:
                log.warning("series %s: %s", series_ticker, exc)
                failures.append(exc)
                if _is_schema(exc):
                    self.monitor.schema_drift(f"{self.settings.platform_id}:series", str(exc))
                continue
            events = [e async for e in self.rest.iter_events(series_ticker=series_ticker,
                                                              status=self.settings.discovery_status,
                                                              page_size=min(200, self.settings.page_size))]
            found = [m async for m in self.rest.iter_markets(series_ticker=series_ticker,
                                                              status=self.settings.discovery_status,
                                                              page_size=self.settings.page_size)]
            async with self._db_lock:
                await self._db(self._store_hierarchy, series, sport, events, found)
            markets.extend(found)
        if failures and len(failures) == len(self.settings.series):
            raise failures[0]  # nothing could be discovered: the venue is unreachable or refuses us
        self.ingest_snapshot(markets, datetime.now(UTC), requested_at)
        await self.flush()
        tickers = [m.ticker for m in markets]
        if self.on_discovered is not None:
            try:
                self.on_discovered(tickers)
            except Exception:  # noqa: BLE001 - a consumer's failure must not stop market ingestion
                log.exception("on_discovered callback failed")
        return tickers

    def _store_hierarchy(self, series: Any, sport: str | None, events: Sequence[Any], markets: Sequence[Market]) -> None:
        self.store.upsert_series(series, sport)
        self.store.upsert_events(events, sport)
        self.store.ensure_events([m.event_ticker for m in markets])

    async def refresh_from_rest(self, tickers: Iterable[str] | None = None) -> int:
        """One REST snapshot of the followed markets (the fallback poll, gap filling after a reconnect), or of
        `tickers` (the markets of an acknowledged subscription)."""
        requested_at = time.time()
        markets: list[Market] = []
        try:
            if tickers is None:
                for series_ticker in self.settings.series:
                    # only followed markets: a new one is discovery's (its event stored first, then subscribed)
                    markets.extend([m async for m in self.rest.iter_markets(
                        series_ticker=series_ticker, status=self.settings.discovery_status,
                        page_size=self.settings.page_size) if m.ticker in self.cache])
                # followed markets that left the status filter (closed, settled): fetch them by ticker
                seen = {m.ticker for m in markets}
                missing = [t for t, row in self.cache.items() if t not in seen and row.get("status") != "settled"]
            else:
                missing = list(tickers)
            for i in range(0, len(missing), 100):
                page = await self.rest.get_markets(tickers=missing[i:i + 100], limit=100)
                markets.extend(page.items)
        except KalshiError as exc:
            log.warning("REST market refresh failed: %s", exc)
            if _is_schema(exc):
                self.monitor.schema_drift(f"{self.settings.platform_id}:rest", str(exc))
            return 0
        self.ingest_snapshot(markets, datetime.now(UTC), requested_at)
        self.stats.rest_snapshots += 1
        self._last_rest_poll = time.monotonic()
        return len(markets)

    def ingest_snapshot(self, markets: Sequence[Market], received: datetime, requested_at: float | None = None) -> None:
        """Full market objects (REST): checked, then queued for the next batch as complete rows.

        Prices of a market that the stream updated after the REST request went out are newer than the
        snapshot's, so for those markets only the non-price fields are taken from the snapshot."""
        for m in markets:
            issues = quote_issues(m.ticker, yes_bid=m.yes_bid, yes_ask=m.yes_ask, no_bid=m.no_bid, no_ask=m.no_ask,
                                  last_price=m.last_price, event_time=None, received_at=None,
                                  max_age_seconds=self.settings.max_price_age_seconds)
            bad_count = _count_issue(m.ticker, volume=m.volume, volume_24h=m.volume_24h, open_interest=m.open_interest)
            if bad_count is not None:
                issues.append(bad_count)
            row = market_row(m, self.settings.platform_id)
            # JSON text once per snapshot, not once per version written (stream updates never touch it)
            row["metadata"] = dumps(row["metadata"]) if row["metadata"] is not None else None
            if issues:
                self.monitor.report(issues)
                self.stats.rejected += 1
                if m.ticker in self.cache:
                    continue
                # a new market with a bad quote: keep its identity, not its prices
                row.update(yes_bid=None, yes_ask=None, no_bid=None, no_ask=None, last_price=None)
                if bad_count is not None:
                    row.update(volume=None, volume_24h=None, open_interest=None)
                derive_prices(row)
            self.cache.setdefault(m.ticker, row)
            if requested_at is not None:
                if self._last_stream.get(m.ticker, 0.0) > requested_at:
                    row = {k: v for k, v in row.items() if k not in _STREAM_FIELDS}
                lifecycle = self._last_lifecycle.get(m.ticker)
                if lifecycle is not None:  # e.g. a settlement streamed while this request was in flight
                    row = {k: v for k, v in row.items() if lifecycle.get(k, 0.0) <= requested_at}
            self._queue(m.ticker, row, received.timestamp(), received.timestamp())

    # ----------------------------------------------------------------------------------- stream

    def on_event(self, event: StreamEvent) -> None:
        """Called by the WebSocket client for every message (in its reader task)."""
        if isinstance(event, TickerUpdated):
            self._on_quote(event)
        elif isinstance(event, BookUpdated):
            book = event.book  # an empty side quotes like Kalshi's REST: YES bid 0, YES ask 1
            yes_bid = book.best_yes_bid.price if book.best_yes_bid else ZERO
            yes_ask = book.yes_ask if book.yes_ask is not None else ONE
            self._on_prices(event.ticker, yes_bid, yes_ask, None, None, None, book.ts)
        elif isinstance(event, MarketLifecycle):
            self._on_lifecycle(event)
        elif isinstance(event, StateChanged):
            self._on_state(event)
        elif isinstance(event, MarketsSubscribed):
            self._on_subscribed(event)
        elif isinstance(event, BookResync):
            self._refresh_all()
        elif isinstance(event, StreamError):
            text = event.message
            check = "price_out_of_range" if "outside [0, 1]" in text else "schema_drift"
            if event.code is None:  # a message we could not read (codes are venue command errors)
                if check == "schema_drift":
                    self.monitor.schema_drift(f"{self.settings.platform_id}:ws", text)
                else:
                    self.monitor.report([QualityIssue(check, f"{self.settings.platform_id}:ws", text)])
            else:
                log.warning("venue stream error %s: %s", event.code, text)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop market ingestion
                log.exception("market stream listener failed")

    def _on_quote(self, event: TickerUpdated) -> None:
        q = event.quote
        no_bid = ONE - q.yes_ask if q.yes_ask is not None else None
        no_ask = ONE - q.yes_bid if q.yes_bid is not None else None
        precise = self.ws.frame_time if self.ws is not None else None
        self._on_prices(q.ticker, q.yes_bid, q.yes_ask, q.last_price, q.volume, q.open_interest, precise or q.ts,
                        no_bid=no_bid, no_ask=no_ask)

    def _on_prices(self, ticker: str, yes_bid: Decimal | None, yes_ask: Decimal | None, last: Decimal | None,
                   volume: Decimal | None, open_interest: Decimal | None, ts: datetime | None, *,
                   no_bid: Decimal | None = None, no_ask: Decimal | None = None) -> None:
        if ticker not in self.cache:
            self.stats.unknown_ticker += 1
            return
        received = time.time()
        if no_bid is None and yes_ask is not None:
            no_bid = ONE - yes_ask
        if no_ask is None and yes_bid is not None:
            no_ask = ONE - yes_bid
        event_ts = ts.timestamp() if ts is not None else received
        # every message: the two comparisons first, the issue built only for a malformed count
        if not (_count_ok(volume) and _count_ok(open_interest)):
            issue = _count_issue(ticker, volume=volume, open_interest=open_interest)
            assert issue is not None
            self.monitor.report([issue])
            self.stats.rejected += 1
            return  # a malformed frame is rejected whole, never stored (nor defaulted)
        # fast screen (every message); the detailed checks run only when something looks wrong
        if not (_price_ok(yes_bid) and _price_ok(yes_ask) and _price_ok(last) and _price_ok(no_bid)
                and _price_ok(no_ask) and (yes_bid is None or yes_ask is None or yes_bid <= yes_ask
                                           or yes_bid == ZERO)
                and received - event_ts <= self.settings.max_price_age_seconds):
            issues = quote_issues(ticker, yes_bid=yes_bid, yes_ask=yes_ask, no_bid=no_bid, no_ask=no_ask,
                                  last_price=last, event_time=ts,
                                  received_at=datetime.fromtimestamp(received, UTC),
                                  max_age_seconds=self.settings.max_price_age_seconds)
            if issues:
                self.monitor.report(issues)
                if any(i.check != "stale_price" for i in issues):
                    self.stats.rejected += 1
                    return  # a bad price is never stored; a stale one is (it is still the venue's latest)
        fields: dict[str, Any] = {}
        if yes_bid is not None:
            fields["yes_bid"] = yes_bid
            fields["no_ask"] = no_ask
        if yes_ask is not None:
            fields["yes_ask"] = yes_ask
            fields["no_bid"] = no_bid
        if last is not None:
            fields["last_price"] = last
        if volume is not None:
            fields["volume"] = int(volume)
        if open_interest is not None:
            fields["open_interest"] = int(open_interest)
        # validity starts when we learned it (never earlier: no look-ahead in backtests); freshness is
        # measured from the venue's own event time
        self._last_stream[ticker] = received
        self._queue(ticker, fields, received, event_ts)

    def _on_lifecycle(self, event: MarketLifecycle) -> None:
        if event.ticker not in self.cache:
            self.stats.unknown_ticker += 1
            return
        fields: dict[str, Any] = {}
        if event.status is not None:
            fields["status"] = event.status.value
        if event.result and event.result.lower() in _RESULTS:
            fields["result"] = event.result.lower()
        if event.settlement_value is not None:
            fields["settlement_value"] = event.settlement_value
        if event.close_time is not None:
            fields["close_time"] = event.close_time
        if event.event_type:
            fields["venue_status"] = event.event_type[:30]
        now = time.time()
        stamps = self._last_lifecycle.setdefault(event.ticker, {})
        for name in fields:
            stamps[name] = now
        self._queue(event.ticker, fields, now, now)

    def _on_subscribed(self, event: MarketsSubscribed) -> None:
        """The venue applied the subscription of these markets: what happened to them between our last REST
        snapshot and now was never streamed, so each gets one REST snapshot, requested after this moment.
        (Markets we do not ingest, e.g. ones only the engine's view follows, are not ours to store.)"""
        known = [t for t in event.tickers if t in self.cache]
        if known:
            self._confirm.update(dict.fromkeys(known))
            self._wake.set()

    def _refresh_all(self) -> None:
        self._needs_refresh.set()
        self._wake.set()

    def _on_gap(self, sid: int, expected: int, got: int) -> None:
        log.warning("market stream gap on sid %d: expected seq %d, got %d; refreshing over REST", sid, expected, got)
        self._refresh_all()

    def _on_state(self, event: StateChanged) -> None:
        if event.state is ConnectionState.SUBSCRIBED:
            if self.mode != "streaming" and self.stats.batches:
                self._refresh_all()  # fill whatever was missed while the stream was down
            self.mode = "streaming"
            self._down_since = None
        elif event.state in (ConnectionState.DISCONNECTED, ConnectionState.CONNECTING):
            if self._down_since is None:
                self._down_since = time.monotonic()

    def _queue(self, ticker: str, fields: dict[str, Any], when: float, event_ts: float) -> None:
        pending = self._pending.get(ticker)
        if pending is None:
            self._pending[ticker] = dict(fields)
        else:
            pending.update(fields)
        self._pending_at[ticker] = when
        index = self._writer_of.get(ticker)
        self._pending_ts[self._writer_index(ticker) if index is None else index].append(event_ts)
        self.stats.updates += 1

    # ----------------------------------------------------------------------------------- batches

    async def flush(self) -> int:
        """Write everything pending as one SCD2 batch per writer (concurrently). Returns the new versions."""
        if not self._pending:
            return 0
        pending, times, stamps = self._pending, self._pending_at, self._pending_ts
        self._pending, self._pending_at, self._pending_ts = {}, {}, [[] for _ in self.writers]
        parts: list[tuple[list[dict[str, Any]], list[datetime]]] = [([], []) for _ in self.writers]
        for ticker, fields in pending.items():
            row = self.cache.get(ticker)
            if row is None:
                continue
            row = derive_prices({**row, **fields})
            self.cache[ticker] = row
            rows, observed = parts[self._writer_index(ticker)]
            rows.append(row)
            observed.append(datetime.fromtimestamp(times[ticker], UTC))
        started = time.perf_counter()

        def writer(index: int) -> Callable[[], tuple[WriteResult, float]]:
            store, (rows, observed) = self.writers[index], parts[index]

            def write() -> tuple[WriteResult, float]:
                written = store.write_markets(rows, observed)
                return written, time.time()  # the commit time, before the loop gets round to resuming us

            return write

        used = [i for i, (rows, _) in enumerate(parts) if rows or stamps[i]]
        async with self._db_lock:
            outcomes = await asyncio.gather(*(self._on_writer(i, writer(i)) for i in used), return_exceptions=True)
        versions = committed_updates = failed_rows = 0
        failed: list[BaseException] = []
        for i, outcome in zip(used, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                failed.append(outcome)
                failed_rows += len(parts[i][0])
                log.error("writing %d market rows failed", len(parts[i][0]), exc_info=outcome)
                for ticker, fields in pending.items():  # keep the data and retry; newer updates win
                    if self._writer_index(ticker) == i:
                        self._pending[ticker] = {**fields, **self._pending.get(ticker, {})}
                        self._pending_at.setdefault(ticker, times[ticker])
                self._pending_ts[i].extend(stamps[i])
                continue
            result, committed = outcome
            versions += result.versions_written
            committed_updates += len(stamps[i])
            self.stats.rows_flushed += len(parts[i][0])
            self.stats.freshness_ms.extend((committed - ts) * 1000.0 for ts in stamps[i])
        if failed:
            if self.monitor.alerts is not None:
                self.monitor.alerts.raise_alert(
                    "database_error", "high", "ingest", f"writing market history failed: {failed[0]}",
                    {"rows": failed_rows}, dedup_key="ingest:market_store",
                    category="system")
            if len(failed) == len(used):
                return 0
        self.stats.flush_seconds += time.perf_counter() - started
        self.stats.batches += 1
        self.stats.versions_written += versions
        self.stats.committed_updates += committed_updates
        if self.on_commit is not None:
            self.on_commit(committed_updates, versions)
        return versions

    # ----------------------------------------------------------------------------------- running

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> None:
        # Batches are written by worker threads while this loop keeps receiving. With CPython's default
        # 5 ms GIL switch interval every database round trip of a writer (a batch makes about eight)
        # waits up to 5 ms for a busy loop to let go: tens of ms of freshness per batch. 0.5 ms bounds it
        # (measured against 1 ms with two writers: freshness p99 a little lower, CPU cost ~1%).
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        tickers = await self.discover()
        if once:
            return
        if self.settings.use_websocket and self.ws_url:
            channels = [TICKER, LIFECYCLE] + ([ORDERBOOK] if self.settings.orderbook else [])
            self.ws = RecordingWebSocket(self.ws_url, signer=self.signer, tickers=tickers, channels=channels,
                                         on_event=self.on_event, alerts=self.monitor.alerts, book_event_depth=1,
                                         recorder=self.recorder, max_queue=16,
                                         heartbeat_interval=self.settings.heartbeat[0],
                                         heartbeat_timeout=self.settings.heartbeat[1])
            self.ws.on_gap = self._on_gap
            self.ws.start()
        self._tasks = [
            asyncio.create_task(self._flush_loop(stop), name="ingest-flush"),
            asyncio.create_task(self._discovery_loop(stop), name="ingest-discovery"),
            asyncio.create_task(self._fallback_loop(stop), name="ingest-fallback"),
        ]
        try:
            await stop.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.ws is not None:
                await self.ws.stop()
            await self.flush()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        interval = self.settings.flush_interval
        while not stop.is_set():
            started = time.monotonic()
            await self.flush()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _discovery_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.settings.discovery_seconds)
            known = set(self.cache)
            try:
                tickers = await self.discover()
            except KalshiError as exc:
                log.warning("discovery failed: %s", exc)
                continue
            new = [t for t in tickers if t not in known]
            if new and self.ws is not None:
                await self.ws.add_markets(new)
            async with self._db_lock:
                await self._db(self.store.mark_events_final)

    async def _fallback_loop(self, stop: asyncio.Event) -> None:
        """REST polling while the stream is down; one REST snapshot after a reconnect or a book gap, and of the
        markets of each acknowledged new subscription."""
        while not stop.is_set():
            self._wake.clear()
            if self._needs_refresh.is_set():
                self._needs_refresh.clear()
                # requested after their acknowledgement too, and it covers every followed market
                self._confirm.clear()
                await self.refresh_from_rest()
            elif self._confirm:
                tickers, self._confirm = list(self._confirm), {}
                await self.refresh_from_rest(tickers)
            streaming = self.ws is not None and self.ws.state is ConnectionState.SUBSCRIBED
            if not streaming:
                down_for = time.monotonic() - (self._down_since or time.monotonic())
                if self.ws is None or down_for >= self.settings.fallback_grace_seconds:
                    self.mode = "polling"
                    if time.monotonic() - self._last_rest_poll >= self.settings.fallback_poll_seconds:
                        await self.refresh_from_rest()
            else:
                self._check_silence()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.2)
            except TimeoutError:
                pass

    def _check_silence(self) -> None:
        ws = self.ws
        if ws is None or ws.last_message_at is None:
            return
        last = datetime.fromtimestamp(ws.last_message_at, UTC)
        self.monitor.check_feed_silence(f"{self.settings.platform_id}:ws", last, datetime.now(UTC),
                                        self.settings.max_price_age_seconds * 5)

    def status(self) -> dict[str, Any]:
        ws = self.ws
        return {
            "mode": self.mode,
            "reliable_realtime": self.mode == "streaming",
            "last_message_at": datetime.fromtimestamp(ws.last_message_at, UTC) if ws and ws.last_message_at else None,
            "messages": ws.messages if ws else 0,
            "markets": len(self.cache),
            "updates": self.stats.updates,
            "rejected": self.stats.rejected,
            "versions_written": self.stats.versions_written,
            "batches": self.stats.batches,
            "rest_snapshots": self.stats.rest_snapshots,
            "ws_connects": ws.connects if ws else 0,
            "ws_resyncs": ws.resyncs if ws else 0,
            "ws_gaps": ws.gaps if ws else 0,
        }


def _price_ok(value: Decimal | None) -> bool:
    return value is None or ZERO <= value <= ONE


class _TickerFields(msgspec.Struct):
    """The fields of a current-shape ticker message that ingestion reads (the others are skipped unparsed)."""

    market_ticker: str
    yes_bid_dollars: str
    yes_ask_dollars: str
    price_dollars: Any = None
    volume_fp: Any = msgspec.UNSET
    volume: Any = None
    open_interest_fp: Any = msgspec.UNSET
    open_interest: Any = None
    ts: Any = None


class _TickerFrame(msgspec.Struct):
    msg: _TickerFields


# json.loads of a whole ticker frame costs ~6 us; decoding only these fields ~1 us (20,000 frames a second)
_decode_ticker = msgspec.json.Decoder(_TickerFrame).decode
_PRICES: dict[str, Decimal] = {}  # "0.4100" -> Decimal: a few hundred distinct price strings ever


def _price(text: str) -> Decimal:
    value = _PRICES.get(text)
    if value is None:
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError(f"not a price: {text}")
        if len(_PRICES) < 20_000:
            _PRICES[text] = value
    return value


def _count(value: Any) -> Decimal | None:
    """A count the fast path reads exactly; anything else (a float, a boolean, NaN) raises ValueError so the
    frame goes to the full parser, which reads or rejects it with a schema alert (never silently dropped)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"not a count: {value!r}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"not a count: {value!r}")
    return result


def _count_ok(value: Decimal | None) -> bool:
    return value is None or (value.is_finite() and value >= 0)


def _count_issue(ticker: str, **counts: Decimal | None) -> QualityIssue | None:
    """Contract counts (volume, open interest) are never negative or non-finite: such a payload is malformed."""
    bad = {k: str(v) for k, v in counts.items() if not _count_ok(v)}
    if not bad:
        return None
    return QualityIssue("schema_drift", ticker, f"{ticker}: malformed contract count: "
                        + ", ".join(f"{k}={v}" for k, v in bad.items()), "high", bad)


def fast_ticker(text: str, frame_time: datetime | None) -> Quote | None:
    """A ticker frame in Kalshi's current shape (`*_dollars` strings) -> Quote; None for anything else,
    which then goes through the venue client's full parser (legacy cents, missing fields, errors)."""
    try:
        msg = _decode_ticker(text).msg
        last = msg.price_dollars
        if last is not None and not isinstance(last, str):
            return None  # e.g. an unquoted number: the full parser reads it as dollars
        # a null `*_fp` counts as absent, as in the full parser (which then reads the legacy integer)
        volume = msg.volume if msg.volume_fp in (msgspec.UNSET, None) else msg.volume_fp
        interest = msg.open_interest if msg.open_interest_fp in (msgspec.UNSET, None) else msg.open_interest_fp
        ts = frame_time
        if ts is None and isinstance(msg.ts, int) and not isinstance(msg.ts, bool):
            ts = datetime.fromtimestamp(msg.ts, UTC)
        return Quote(
            ticker=msg.market_ticker,
            yes_bid=_price(msg.yes_bid_dollars),
            yes_ask=_price(msg.yes_ask_dollars),
            last_price=_price(last) if isinstance(last, str) else None,
            volume=_count(volume),
            open_interest=_count(interest),
            ts=ts,
        )
    except (msgspec.DecodeError, TypeError, ValueError, ArithmeticError):
        return None


def _frame_time(text: str) -> datetime | None:
    start = text.find('"time":"')
    if start < 0:
        return None
    end = text.find('"', start + 8)
    try:
        parsed = datetime.fromisoformat(text[start + 8:end].replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_schema(exc: Exception) -> bool:
    return isinstance(exc, KalshiSchemaError)
