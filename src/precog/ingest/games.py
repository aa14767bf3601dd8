"""Live game ingestion: poll ESPN per sport (adaptively), check quality, store game_states on change, link events.

One `GameFeed` serves the whole process: `latest` holds the current state of every game for in-process
readers (the engine); the database holds the history. A scoreboard that fails to download keeps the last
known states; live games whose data grows older than max_game_state_age are reported stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from precog.feeds.espn import EspnClient, EspnFetchError
from precog.feeds.espn_parse import EspnSchemaError
from precog.feeds.game_state import GameState
from precog.ingest.game_link import DEFAULT_GAME_SERIES, GameLink, link_events
from precog.ingest.game_store import GameStateStore, change_key
from precog.ingest.poll_schedule import PollSchedule
from precog.ingest.quality import DataQualityMonitor, GameStateGate

log = logging.getLogger(__name__)
EASTERN = ZoneInfo("America/New_York")  # ESPN's scoreboard days (`dates=YYYYMMDD`) are US Eastern days
_ENDED = frozenset(("final", "postponed", "cancelled"))


@dataclass
class PollOutcome:
    sport: str
    ok: bool
    games: int = 0
    changed: int = 0
    versions_written: int = 0
    rejected: int = 0
    schema_errors: int = 0
    links: list[GameLink] = field(default_factory=list)
    finals_written: list[str] = field(default_factory=list)  # ESPN ids of final states stored by this poll
    error: str = ""
    next_poll_seconds: float = 0.0
    date: str | None = None  # the scoreboard day asked for (YYYYMMDD) by a back-fill; None: ESPN's current one


class GameFeed:
    def __init__(
        self,
        client: EspnClient,
        *,
        sports: Sequence[str],
        monitor: DataQualityMonitor,
        store: GameStateStore | None = None,
        schedule: PollSchedule | None = None,
        date: str | None = None,
        series_prefixes: dict[str, list[str]] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.sports = list(sports)
        self.monitor = monitor
        self.store = store
        self.schedule = schedule or PollSchedule()
        self.date = date
        self.series_prefixes = series_prefixes or {}
        self.now = now
        self.gate = GameStateGate(monitor)
        self.latest: dict[tuple[str, str], GameState] = {}
        self.last_success: dict[str, datetime] = {}
        self._written_key: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.due_at: dict[str, float] = {}
        if store is not None:
            stored = store.current(self.sports)
            self.gate.seed(stored)
            for state in stored:
                self.latest[(state.sport, state.game_id)] = state
                self._written_key[(state.sport, state.game_id)] = change_key(state)

    def games(self, sport: str) -> list[GameState]:
        return [g for (s, _), g in self.latest.items() if s == sport]

    def backfill_days(self, sport: str, days: int, *, missed_only: bool = False) -> list[str]:
        """The scoreboard days (YYYYMMDD, oldest first) a restart catches up on, through yesterday and at most
        `days` of them: from the earliest stored game that started but has no end stored (left live, or still
        scheduled after its start: it ended while nothing polled), else from the latest game that started (later
        games of that day may be missing). None without a stored state of the sport (a first run starts today).
        `missed_only` (a one-shot run, e.g. from cron): only the start days of the games without a stored end (each
        is on its start day's scoreboard), so a run that missed nothing asks ESPN for nothing more."""
        now = self.now()
        today = now.astimezone(EASTERN).date()
        started = [g for g in self.games(sport) if g.start_time is not None and g.start_time <= now]
        if days <= 0 or not started:
            return []
        unended = [g.start_time for g in started if g.status not in _ENDED and g.start_time is not None]
        first: date
        if missed_only:
            first = today - timedelta(days=days)
            return sorted({d.strftime("%Y%m%d") for t in unended if first <= (d := t.astimezone(EASTERN).date()) < today})
        since = min(unended) if unended else max(g.start_time for g in started if g.start_time is not None)
        first = max(since.astimezone(EASTERN).date(), today - timedelta(days=days))
        return [(first + timedelta(days=i)).strftime("%Y%m%d") for i in range((today - first).days)]

    async def backfill(self, days: int, stop: asyncio.Event, on_poll: Callable[[PollOutcome], None] | None = None,
                       *, missed_only: bool = False) -> list[PollOutcome]:
        """Poll each sport's missed scoreboard days once (`backfill_days`), stored as any poll is: final scores
        that came while no ingestion ran reach `game_states` (and the Elo ratings) after a restart."""
        outcomes: list[PollOutcome] = []
        for sport in self.sports:
            for day in self.backfill_days(sport, days, missed_only=missed_only):
                if stop.is_set():
                    return outcomes
                outcome = await self.poll(sport, day)
                outcomes.append(outcome)
                if on_poll is not None:
                    on_poll(outcome)
        return outcomes

    async def poll(self, sport: str, day: str | None = None) -> PollOutcome:
        """Fetch one scoreboard (ESPN's current one, or `day`'s: YYYYMMDD), check it, store what changed. Never
        raises for feed problems."""
        source = f"espn:{sport}"
        day = day or self.date
        try:
            response = await self.client.fetch(sport, day)
        except EspnFetchError as exc:
            self._report_staleness(sport)
            return self._finish(PollOutcome(sport, ok=False, error=str(exc), date=day))
        received = response.received_at
        try:
            board = response.parse()
        except EspnSchemaError as exc:
            self.monitor.schema_drift(source, str(exc))
            self._report_staleness(sport)
            return self._finish(PollOutcome(sport, ok=False, error=str(exc), schema_errors=1, date=day))

        outcome = PollOutcome(sport, ok=True, games=len(board.games), schema_errors=len(board.errors), date=day)
        for error in board.errors:
            self.monitor.schema_drift(source, str(error), {"game_id": error.game_id})
        for name in sorted(set(board.unknown_statuses)):
            self.monitor.schema_drift(source, f"unknown status name {name!r}")
        if board.missing_neutral_site:
            self.monitor.schema_drift(source, "competitions[0].neutralSite missing: read as home games (a neutral "
                                      "site's listed home team gets a home-field advantage it does not have)",
                                      {"game_ids": sorted(board.missing_neutral_site)})

        changed: list[GameState] = []
        for game in board.games:
            admitted = self.gate.admit(game)
            if admitted is None:
                outcome.rejected += 1
                continue
            key = (sport, game.game_id)
            self.latest[key] = admitted
            if self._written_key.get(key) != change_key(admitted):
                changed.append(admitted)
        self.last_success[sport] = received
        outcome.changed = len(changed)

        if self.store is not None:
            prefixes = self.series_prefixes.get(sport) or DEFAULT_GAME_SERIES.get(sport, [])
            try:
                outcome.links = link_events(self.store.conn, self.games(sport), series_prefixes=prefixes)
                if outcome.links:  # a new link is a change of event_id for these games
                    linked = {link.game.game_id for link in outcome.links}
                    changed.extend(g for g in self.games(sport) if g.game_id in linked and g not in changed)
                if changed:
                    result = self.store.write(changed, received)
                    outcome.versions_written = result.versions_written
                    outcome.finals_written = [g.game_id for g in changed if g.status == "final"]
            except Exception as exc:  # noqa: BLE001 - a DB failure must not stop the feed; it is alerted
                log.exception("storing %s game states failed", sport)
                if self.monitor.alerts is not None:
                    self.monitor.alerts.raise_alert(
                        "database_error", "high", "ingest", f"storing {sport} game states failed: {exc}",
                        {"sport": sport}, dedup_key=f"ingest:game_store:{sport}", category="system")
                return self._finish(outcome)
        for game in changed:
            self._written_key[(sport, game.game_id)] = change_key(game)
        return self._finish(outcome)

    def relink(self) -> list[GameLink]:
        """Link venue events stored since the last poll (called after market discovery) and stamp the games."""
        if self.store is None:
            return []
        links: list[GameLink] = []
        for sport in self.sports:
            games = self.games(sport)
            prefixes = self.series_prefixes.get(sport) or DEFAULT_GAME_SERIES.get(sport, [])
            new = link_events(self.store.conn, games, series_prefixes=prefixes)
            if new:
                linked = {link.game.game_id for link in new}
                changed = [g for g in games if g.game_id in linked]
                self.store.write(changed, self.last_success.get(sport) or self.now())
                for game in changed:
                    self._written_key[(sport, game.game_id)] = change_key(game)
            links.extend(new)
        return links

    def _finish(self, outcome: PollOutcome) -> PollOutcome:
        outcome.next_poll_seconds = self.schedule.interval(self.games(outcome.sport), self.now())
        return outcome

    def _report_staleness(self, sport: str) -> None:
        live = [g.game_id for g in self.games(sport) if g.is_live]
        if live:
            self.monitor.check_game_staleness(live, self.last_success.get(sport), self.now(), f"espn:{sport}")

    async def run(self, stop: asyncio.Event, *, once: bool = False,
                  on_poll: Callable[[PollOutcome], None] | None = None, due: dict[str, float] | None = None) -> None:
        """Poll every sport on its own adaptive interval until `stop` is set (or once each). `due`: when (event
        loop time) each sport is polled first; default now. Each poll's `next_poll_seconds` is also kept in
        `due_at` (what a later `run` may continue from)."""
        loop = asyncio.get_running_loop()
        due = {sport: (due or {}).get(sport, loop.time()) for sport in self.sports}
        self.due_at = due
        while not stop.is_set():
            now = loop.time()
            for sport in [s for s, t in due.items() if t <= now]:
                outcome = await self.poll(sport)
                if on_poll is not None:
                    on_poll(outcome)
                due[sport] = loop.time() + outcome.next_poll_seconds
            if once:
                return
            wait = max(0.0, min(due.values()) - loop.time())
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass
