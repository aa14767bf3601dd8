"""Live game states -> model inputs, with validation of impossible states.

Any object with the attributes of `precog.feeds.game_state.GameState` works (a Protocol, so this layer
does not depend on how the feed builds it): home/away team and score, period, clock_seconds (left in the
period), status, possession ('home'/'away'/None), down, distance, yards_to_goal, home/away timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from precog.forecast.errors import ForecastError

PREGAME_STATUSES = frozenset({"scheduled", "pregame", "postponed"})
DEFAULT_YARDS_TO_GOAL = 75  # a touchback: own 25
DEFAULT_DISTANCE = 10


class InvalidStateError(ForecastError):
    """A game state that cannot happen (negative clock, down 5 ...): names the field."""


@runtime_checkable
class FootballState(Protocol):
    """Read-only view of a live game state (what `precog.feeds.game_state.GameState` offers)."""

    @property
    def home_team(self) -> str: ...

    @property
    def away_team(self) -> str: ...

    @property
    def home_score(self) -> int: ...

    @property
    def away_score(self) -> int: ...

    @property
    def period(self) -> int: ...

    @property
    def clock_seconds(self) -> int | None: ...

    @property
    def status(self) -> str: ...

    @property
    def possession(self) -> str | None: ...

    @property
    def down(self) -> int | None: ...

    @property
    def distance(self) -> int | None: ...

    @property
    def yards_to_goal(self) -> int | None: ...

    @property
    def home_timeouts(self) -> int | None: ...

    @property
    def away_timeouts(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class SimpleState:
    """A plain FootballState for callers without a feed object (tests, CLI, backtests)."""

    home_team: str
    away_team: str
    home_score: int = 0
    away_score: int = 0
    period: int = 1
    clock_seconds: int | None = 900
    status: str = "live"
    possession: str | None = None
    down: int | None = None
    distance: int | None = None
    yards_to_goal: int | None = None
    home_timeouts: int | None = None
    away_timeouts: int | None = None


@dataclass(frozen=True, slots=True)
class Situation:
    """A validated in-game state, home perspective, ready for the WP model."""

    home_lead: int
    game_seconds: int  # regulation: seconds left in the game; overtime: left in the period
    overtime: bool
    possession: str | None
    yards_to_goal: int
    down: int  # 1-4 (between plays: 1)
    distance: int
    home_timeouts: int
    away_timeouts: int


def _get(state: object, name: str) -> object:
    return getattr(state, name, None)


def validate(state: object) -> None:
    """Raise InvalidStateError naming the first impossible field."""
    for name in ("home_team", "away_team"):
        v = _get(state, name)
        if not isinstance(v, str) or not v.strip():
            raise InvalidStateError(f"game state field {name}: {v!r} is not a team code")
    for name in ("home_score", "away_score"):
        v = _get(state, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InvalidStateError(f"game state field {name}: {v!r} is not a score (whole number >= 0)")
    period = _get(state, "period")
    if not isinstance(period, int) or isinstance(period, bool) or not 0 <= period <= 10:
        raise InvalidStateError(f"game state field period: {period!r} is not a period (0-4, 5+ overtime)")
    clock = _get(state, "clock_seconds")
    if clock is not None:
        if not isinstance(clock, int | float) or isinstance(clock, bool):
            raise InvalidStateError(f"game state field clock_seconds: {clock!r} is not a number of seconds")
        if clock < 0:
            raise InvalidStateError(f"game state field clock_seconds: negative time remaining ({clock})")
        if clock > 900:
            raise InvalidStateError(f"game state field clock_seconds: {clock} s is more than a quarter (900)")
    down = _get(state, "down")
    if down is not None and (not isinstance(down, int) or not 1 <= down <= 4):
        raise InvalidStateError(f"game state field down: down {down!r} is impossible (1-4, None between plays)")
    distance = _get(state, "distance")
    if distance is not None and (not isinstance(distance, int) or not 0 <= distance <= 100):
        raise InvalidStateError(f"game state field distance: {distance!r} is not a distance to go (0-100)")
    ytg = _get(state, "yards_to_goal")
    if ytg is not None and (not isinstance(ytg, int) or not 0 <= ytg <= 100):
        raise InvalidStateError(f"game state field yards_to_goal: {ytg!r} is not a yard line (0-100)")
    for name in ("home_timeouts", "away_timeouts"):
        v = _get(state, name)
        if v is not None and (not isinstance(v, int) or not 0 <= v <= 3):
            raise InvalidStateError(f"game state field {name}: {v!r} timeouts is impossible (0-3)")
    possession = _get(state, "possession")
    if possession not in (None, "home", "away"):
        raise InvalidStateError(f"game state field possession: {possession!r} is not 'home', 'away' or None")


def situation(state: FootballState) -> Situation:
    """The in-game situation of a live (or halftime) state. Validates first."""
    validate(state)
    if state.status == "halftime":
        period, clock = 2, 0
    else:
        period = max(state.period, 1)
        clock = 900 if state.clock_seconds is None else int(round(state.clock_seconds))
    overtime = period >= 5
    game_seconds = clock if overtime else (4 - period) * 900 + clock
    down = state.down if state.down is not None else 1
    distance = state.distance if state.distance is not None else DEFAULT_DISTANCE
    ytg = state.yards_to_goal if state.yards_to_goal is not None else DEFAULT_YARDS_TO_GOAL
    return Situation(
        home_lead=state.home_score - state.away_score, game_seconds=game_seconds, overtime=overtime,
        possession=state.possession if state.status != "halftime" else None, yards_to_goal=ytg, down=down,
        distance=min(distance, ytg) if ytg > 0 else distance,
        home_timeouts=3 if state.home_timeouts is None else state.home_timeouts,
        away_timeouts=3 if state.away_timeouts is None else state.away_timeouts,
    )
