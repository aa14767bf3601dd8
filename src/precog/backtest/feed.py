"""Time-ordered backtest events and the guard that keeps the future out of reach.

Structure (no look-ahead by construction): every piece of data is an `Event` with the time it became known.
`EventFeed` hands out events only up to the simulated clock; results and settlements are their own events
at the end of the game, never attached to the pre-game or in-game events. Anything a model may consult
outside the event stream (the archive of past games and their play-by-play, for training) goes through
`GuardedArchive`, which raises `LookAheadError` on any read of a fact whose time is after the clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from precog.backtest.errors import LookAheadError

# event kinds
LIST = "list"  # a market is listed: schedule facts of the game, the opening quote
QUOTE = "quote"  # the market's fair value / top of book changed
STATE = "state"  # an in-game state (score, clock, possession ...)
CLOSE = "close"  # trading in the market ends (e.g. at kickoff for a pre-game-only market)
FINAL = "final"  # the result: the game is over, the market settles


@dataclass(frozen=True, slots=True)
class Event:
    ts_ms: int
    seq: int  # tie-break: the order events arrived in
    kind: str
    ticker: str
    data: dict[str, Any] = field(default_factory=dict)


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def dt_to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class EventFeed:
    """Releases events in time order, never one whose time is after the clock it is asked for."""

    def __init__(self, events: Iterable[Event]) -> None:
        self._events = sorted(events, key=lambda e: (e.ts_ms, e.seq))
        self._next = 0
        self.released_until_ms: int | None = None

    def __len__(self) -> int:
        return len(self._events)

    @property
    def remaining(self) -> int:
        return len(self._events) - self._next

    def next_time(self) -> int | None:
        return self._events[self._next].ts_ms if self._next < len(self._events) else None

    def release(self, clock_ms: int) -> list[Event]:
        """Every not yet released event with ts <= clock_ms, oldest first."""
        if self.released_until_ms is not None and clock_ms < self.released_until_ms:
            raise LookAheadError(f"the feed clock went backwards ({clock_ms} < {self.released_until_ms})")
        self.released_until_ms = clock_ms
        start = self._next
        end = start
        while end < len(self._events) and self._events[end].ts_ms <= clock_ms:
            end += 1
        self._next = end
        return self._events[start:end]


@dataclass(frozen=True, slots=True)
class ArchivedGame:
    """One finished game as the archive holds it; `final_ms` is when its result became known."""

    game_id: str
    day: date
    season: int
    home: str
    away: str
    neutral: bool
    playoff: bool
    kickoff_ms: int
    final_ms: int
    home_score: int
    away_score: int


@dataclass(frozen=True)
class PlayByPlay:
    """Every play of a play-by-play file (`precog.forecast.plays.Plays`, as `precog forecast wp train` reads
    it) and the rows of each archived game. A game's plays are known once the game is over (its final_ms)."""

    source: str
    plays: Any  # precog.forecast.plays.Plays
    rows: dict[str, Any]  # archive game id -> row indices (numpy int array) into `plays`


class GuardedArchive:
    """Past games (and their play-by-play) for training and online updates, readable only up to the clock.

    `clock` returns the simulated time in ms. Reading a game whose result is not yet known raises
    LookAheadError; so does asking for games (or plays) up to a time after the clock. `play_by_play`
    loads the plays on first use (None: the data has none)."""

    def __init__(self, games: Sequence[ArchivedGame], clock: Callable[[], int],
                 play_by_play: Callable[[], PlayByPlay | None] | None = None) -> None:
        self._games = sorted(games, key=lambda g: (g.final_ms, g.game_id))
        self._finals = [g.final_ms for g in self._games]
        self._by_id = {g.game_id: g for g in self._games}
        self._clock = clock
        self._pbp_loader = play_by_play
        self.reads = 0
        self.play_reads = 0

    def _check(self, ms: int, what: str) -> None:
        now = self._clock()
        if ms > now:
            raise LookAheadError(f"look-ahead: {what} is known at {ms_to_dt(ms).isoformat()} but the simulated "
                                 f"clock is {ms_to_dt(now).isoformat()}")

    def finished_between(self, start_ms: int, end_ms: int) -> list[ArchivedGame]:
        """Games whose result became known in [start_ms, end_ms); end_ms must not be after the clock."""
        self._check(end_ms - 1, "results up to the requested time")
        lo = bisect.bisect_left(self._finals, start_ms)
        hi = bisect.bisect_left(self._finals, end_ms)
        self.reads += hi - lo
        return self._games[lo:hi]

    def plays_between(self, start_ms: int, end_ms: int) -> tuple[list[ArchivedGame], Any | None]:
        """The games whose result became known in [start_ms, end_ms) that have play-by-play, and their plays
        (a `Plays` subset, None when there are none); end_ms must not be after the clock."""
        self._check(end_ms - 1, "plays of games finished up to the requested time")
        games = self.finished_between(start_ms, end_ms)
        pbp = self._pbp_loader() if self._pbp_loader is not None else None
        if pbp is None:
            return [], None
        with_plays = [g for g in games if g.game_id in pbp.rows]
        if not with_plays:
            return [], None
        mask = np.zeros(len(pbp.plays), dtype=bool)
        for g in with_plays:
            mask[pbp.rows[g.game_id]] = True
        self.play_reads += int(mask.sum())
        return with_plays, pbp.plays.subset(mask)

    def result(self, game_id: str) -> ArchivedGame:
        g = self._by_id.get(game_id)
        if g is None:
            raise KeyError(f"no game {game_id} in the archive")
        self._check(g.final_ms, f"the result of {game_id}")
        self.reads += 1
        return g

    def __len__(self) -> int:
        return len(self._games)
