"""`precog ingest run`: live games (ESPN) and market data (Kalshi or the local exchange) in one process.

Both feeds share one data-quality monitor and one data breaker. Feed health is written to
`ingest_feed_status` every few seconds so the trading side (or `precog ingest status`) can tell real-time
streaming from fallback polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from precog.alerts.api import AlertRaiser
from precog.db.connection import connect
from precog.domain.jsonutil import dumps
from precog.feeds.espn import EspnClient
from precog.forecast.elo_update import EloAutoUpdater
from precog.forecast.wp_refit import WpAutoRefit
from precog.ingest.breaker import DataBreaker, PgBreakerStore
from precog.ingest.game_link import GameLink
from precog.ingest.game_store import GameStateStore
from precog.ingest.games import GameFeed, PollOutcome
from precog.ingest.market_feed import MarketFeed, MarketFeedSettings
from precog.ingest.market_store import MarketStore
from precog.ingest.quality import DataQualityMonitor
from precog.ingest.recorder import Recorder, RecordingTransport
from precog.ingest.settings import IngestSettings
from precog.venues.kalshi.auth import signer_from_env
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import resolve_environment

log = logging.getLogger(__name__)


@dataclass
class IngestOptions:
    venue: str = "kalshi"  # kalshi | local
    env: str = "demo"  # demo | prod (kalshi); ignored for local
    base_url: str | None = None
    once: bool = False
    record_dir: Path | None = None
    games: bool = True
    markets: bool = True
    game_date: str | None = None
    flush_interval: float = 0.1
    fallback_poll_seconds: float = 60.0
    status_seconds: float = 2.0


@dataclass
class IngestReport:
    started_at: datetime
    finished_at: datetime | None = None
    game_polls: list[dict[str, Any]] = field(default_factory=list)
    markets: dict[str, Any] = field(default_factory=dict)
    quality_issues: dict[str, int] = field(default_factory=dict)
    breaker_open: bool = False
    recorded_messages: int = 0
    recording_files: list[str] = field(default_factory=list)
    elo_updates: list[dict[str, Any]] = field(default_factory=list)  # Elo passes that applied results
    wp_refits: list[str] = field(default_factory=list)  # WP versions trained automatically (precog.forecast.wp_refit)


def platform_for(venue: str) -> str:
    if venue not in ("kalshi", "local"):
        raise ValueError(f"--venue must be kalshi or local, got {venue!r}")
    return venue


async def run_ingest(db_url: str, settings: IngestSettings, options: IngestOptions, *,
                     alerts: AlertRaiser | None, stop: asyncio.Event | None = None,
                     on_poll: Callable[[PollOutcome], None] | None = None,
                     on_links: Callable[[list[GameLink]], None] | None = None,
                     on_market_feed: Callable[[MarketFeed], None] | None = None) -> IngestReport:
    """`on_market_feed` receives the market feed before it starts (another consumer of its stream)."""
    stop = stop or asyncio.Event()
    report = IngestReport(started_at=datetime.now(UTC))
    platform = platform_for(options.venue)
    recorder = Recorder(options.record_dir) if options.record_dir else None
    breaker = DataBreaker(threshold=settings.breaker_bad_points, cooldown_seconds=settings.breaker_open_seconds,
                          alerts=alerts, store=PgBreakerStore(lambda: connect(db_url)))
    breaker.restore()
    monitor = DataQualityMonitor(alerts=alerts, breaker=breaker, limits=settings.limits)
    timeout = settings.statement_timeout_ms
    game_conn = connect(db_url, autocommit=True, statement_timeout_ms=timeout)
    market_conn = connect(db_url, autocommit=True, statement_timeout_ms=timeout)
    market_conn_2 = connect(db_url, autocommit=True, statement_timeout_ms=timeout)  # a second writer (split by market)
    status_conn = connect(db_url, autocommit=True, statement_timeout_ms=timeout)
    espn: EspnClient | None = None
    rest: AsyncKalshiClient | None = None
    tasks: list[asyncio.Task[Any]] = []
    game_feed: GameFeed | None = None
    market_feed: MarketFeed | None = None
    elo: EloAutoUpdater | None = None
    refitter: WpAutoRefit | None = None
    try:
        if options.games and not settings.espn_enabled:
            log.warning("data_sources.espn.enabled is false: no game states are polled")
        if options.games and settings.espn_enabled:
            espn = EspnClient(settings.espn_base_url, timeout=settings.espn_timeout, retries=settings.espn_retries,
                              min_interval=settings.espn_min_interval,
                              on_raw=recorder.record if recorder is not None else None,
                              paths=settings.espn_paths, params=settings.espn_params)
            series_by_sport: dict[str, list[str]] = {}
            for series_ticker, sport in settings.series.items():
                series_by_sport.setdefault(sport, []).append(series_ticker)
            game_feed = GameFeed(espn, sports=settings.sports, monitor=monitor, store=GameStateStore(game_conn),
                                 schedule=settings.schedule, date=options.game_date,
                                 series_prefixes=series_by_sport)

            if settings.elo_auto_update:  # new final results move the Elo ratings (off the polling path)
                elo = EloAutoUpdater(lambda: connect(db_url, autocommit=True, statement_timeout_ms=timeout),
                                     settings.sports, interval_seconds=settings.elo_update_interval_seconds,
                                     alerts=alerts)

            def _poll(outcome: PollOutcome) -> None:
                if elo is not None:
                    elo.note_finals(outcome.sport, outcome.finals_written)
                report.game_polls.append({
                    "sport": outcome.sport, "ok": outcome.ok, "games": outcome.games, "changed": outcome.changed,
                    "versions_written": outcome.versions_written, "rejected": outcome.rejected,
                    "links": [link.event_ticker for link in outcome.links], "error": outcome.error,
                    "next_poll_seconds": outcome.next_poll_seconds, "date": outcome.date})
                if on_poll is not None:
                    on_poll(outcome)

            tasks.append(asyncio.create_task(_games(game_feed, stop, options, settings, _poll), name="games"))
        if options.markets:
            environment = resolve_environment(platform if platform == "local" else options.env, options.base_url)
            transport = RecordingTransport(recorder, f"{platform}:rest") if recorder is not None else None
            rest = AsyncKalshiClient(environment, signer=signer_from_env(environment.name), alerts=alerts,
                                     transport=transport, rate_limits=settings.kalshi_rate_limits,
                                     retry=settings.kalshi_retry, timeout=settings.kalshi_timeout,
                                     usage_alert=settings.kalshi_usage_alert)
            feed_settings = MarketFeedSettings(
                platform_id=platform, series=dict(settings.series), flush_interval=options.flush_interval,
                discovery_seconds=settings.discovery_seconds, fallback_poll_seconds=options.fallback_poll_seconds,
                max_price_age_seconds=settings.limits.max_price_age_seconds,
                orderbook=rest.signer is not None,  # order books are a private channel on Kalshi
                heartbeat=settings.kalshi_heartbeat)
            market_feed = MarketFeed(rest, MarketStore(market_conn, platform), feed_settings, monitor,
                                     ws_url=environment.ws_url, signer=rest.signer, recorder=recorder,
                                     on_discovered=_relinker(game_feed, on_links),
                                     extra_stores=[MarketStore(market_conn_2, platform)])
            if on_market_feed is not None:
                on_market_feed(market_feed)
            tasks.append(asyncio.create_task(market_feed.run(stop, once=options.once), name="markets"))
        if elo is not None and not options.once:
            tasks.append(asyncio.create_task(elo.run(stop), name="elo_update"))
        refit = settings.wp_refit
        if game_feed is not None and not options.once and refit is not None and refit.enabled \
                and "nfl" in settings.sports:  # new WP versions from the in-game states this process stores
            from precog.paths import precog_home

            refitter = WpAutoRefit(lambda: connect(db_url, autocommit=True), refit, precog_home() / "training",
                                   alerts=alerts)
            tasks.append(asyncio.create_task(refitter.run(stop), name="wp_refit"))
        if not options.once:
            tasks.append(asyncio.create_task(
                _status_loop(status_conn, stop, options.status_seconds, platform, game_feed, market_feed, monitor,
                             breaker), name="status"))
        if options.once:
            await asyncio.gather(*tasks)
            if elo is not None and elo.pending:
                await asyncio.to_thread(elo.update_now)
        else:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    stop.set()
                    raise task.exception()  # type: ignore[misc]
    finally:
        stop.set()
        for task in tasks:
            if not task.done():
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=15)
        _write_status(status_conn, platform, game_feed, market_feed, monitor, breaker)
        if espn is not None:
            await espn.aclose()
        if rest is not None:
            await rest.aclose()
        if recorder is not None:
            recorder.close()
            report.recorded_messages = recorder.count
            report.recording_files = [str(p) for p in recorder.paths]
        for conn in (game_conn, market_conn, market_conn_2, status_conn):
            conn.close()
    report.finished_at = datetime.now(UTC)
    report.quality_issues = dict(monitor.counts)
    report.breaker_open = breaker.is_open()
    if market_feed is not None:
        report.markets = market_feed.status()
    if elo is not None:
        report.elo_updates = [s.as_dict() for s in elo.runs if s.applied]
    if refitter is not None:
        report.wp_refits = [t.ref for t in refitter.trained]
    return report


async def _games(feed: GameFeed, stop: asyncio.Event, options: IngestOptions, settings: IngestSettings,
                 on_poll: Callable[[PollOutcome], None]) -> None:
    """The game feed. A long run polls ESPN's current scoreboards once first (live data is not held back), then
    catches up on the scoreboard days it missed while stopped (data_sources.espn.backfill_days), then polls on.
    A one-shot run (`--once`, e.g. from cron) polls the current scoreboards, then only the start days of stored
    games still without an end after that poll (their finals came while nothing polled)."""
    if options.game_date is not None or settings.espn_backfill_days <= 0:
        await feed.run(stop, once=options.once, on_poll=on_poll)
        return
    if options.once:
        await feed.run(stop, once=True, on_poll=on_poll)
        await feed.backfill(settings.espn_backfill_days, stop, on_poll=on_poll, missed_only=True)
        return
    await feed.run(stop, once=True, on_poll=on_poll)
    due = dict(feed.due_at)  # each sport's next poll, as its first poll scheduled it
    await feed.backfill(settings.espn_backfill_days, stop, on_poll=on_poll)
    await feed.run(stop, on_poll=on_poll, due=due)


def _relinker(game_feed: GameFeed | None,
              on_links: Callable[[list[GameLink]], None] | None) -> Callable[[list[str]], None] | None:
    """After each market discovery: link the newly stored venue events to the games already polled."""
    if game_feed is None:
        return None

    def relink(_tickers: list[str]) -> None:
        links = game_feed.relink()
        if links and on_links is not None:
            on_links(links)

    return relink


async def _status_loop(conn: psycopg.Connection[Any], stop: asyncio.Event, every: float, platform: str,
                       games: GameFeed | None, markets: MarketFeed | None, monitor: DataQualityMonitor,
                       breaker: DataBreaker) -> None:
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        try:
            await asyncio.to_thread(_write_status, conn, platform, games, markets, monitor, breaker)
        except psycopg.Error as exc:
            log.warning("could not write ingest_feed_status: %s", exc)


def _write_status(conn: psycopg.Connection[Any], platform: str, games: GameFeed | None,
                  markets: MarketFeed | None, monitor: DataQualityMonitor, breaker: DataBreaker) -> None:
    issues = sum(monitor.counts.values())
    rows: list[tuple[Any, ...]] = []
    if markets is not None:
        st = markets.status()
        rows.append((f"{platform}:markets", platform, st["mode"], st["reliable_realtime"], st["last_message_at"],
                     st["last_message_at"], st["messages"], st["versions_written"], issues,
                     Jsonb(st, dumps=dumps)))
    if games is not None:
        for sport in games.sports:
            last = games.last_success.get(sport)
            live = sum(1 for g in games.games(sport) if g.is_live)
            rows.append((f"espn:{sport}", "espn", "polling" if last else "down", bool(last), last, last, 0, 0,
                         issues, Jsonb({"games": len(games.games(sport)), "live_games": live,
                                        "breaker_open": breaker.is_open()})))
    for row in rows:
        conn.execute(
            "INSERT INTO ingest_feed_status (feed, platform_id, mode, reliable_realtime, last_message_at,"
            " last_success_at, messages, versions_written, quality_issues, details, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
            " ON CONFLICT (feed) DO UPDATE SET platform_id = EXCLUDED.platform_id, mode = EXCLUDED.mode,"
            " reliable_realtime = EXCLUDED.reliable_realtime, last_message_at = EXCLUDED.last_message_at,"
            " last_success_at = EXCLUDED.last_success_at, messages = EXCLUDED.messages,"
            " versions_written = EXCLUDED.versions_written, quality_issues = EXCLUDED.quality_issues,"
            " details = EXCLUDED.details, updated_at = now()",
            row,
        )
