"""The typed, source-independent state of one live game (what `game_states` stores and models read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

Sport = Literal["nfl", "ncaaf", "nba", "mlb"]
# suspended: play stopped mid-game and resumes later from the same state (not final, not rescheduled, not live)
GameStatus = Literal["scheduled", "live", "halftime", "suspended", "final", "postponed", "cancelled"]
Side = Literal["home", "away"]

SPORTS: tuple[Sport, ...] = ("nfl", "ncaaf", "nba", "mlb")
LIVE_STATUSES: frozenset[str] = frozenset({"live", "halftime"})


@dataclass(frozen=True, slots=True)
class GameState:
    """One game at one moment, normalised.

    `clock_seconds` is the game clock left in the current period in whole seconds, rounded up (basketball's
    tenths are kept in `metadata.clock_exact`).
    `down`/`distance`/`yard_line` are None between plays (ESPN sends down = -1) or outside football.
    `yards_to_goal` is the possession team's distance to the opponent's goal line (nflfastR's
    yardline_100). `neutral_site` is true when the game is played at neither team's stadium (ESPN
    `neutralSite`: an international game, a bowl, a Super Bowl): `home_team` is then only the listed home
    team and gets no home-field advantage. `metadata` holds what the source offers beyond the core fields
    (ESPN's own win probability, pre-game odds, situation texts); Decimal values stay Decimal.
    `metadata["season_type"]` is the game's place in the season when the source says it: "preseason",
    "regular", "playoffs" or "championship" (the final: Super Bowl, national championship, NBA Finals, World
    Series); absent when unknown. The decision layer applies the special-event rules (trading.yaml
    position_sizing.special_events) to the markets of a playoff or championship game.
    """

    sport: Sport
    game_id: str  # the source's game id (ESPN event id)
    start_time: datetime
    name: str
    short_name: str
    home_team: str  # team code (abbreviation) as the source spells it
    away_team: str
    home_team_id: str  # the source's team id (teams.espn_team_id)
    away_team_id: str
    home_team_name: str
    away_team_name: str
    status: GameStatus
    status_detail: str
    period: int
    clock_seconds: int | None
    display_clock: str
    home_score: int
    away_score: int
    possession: Side | None = None
    down: int | None = None
    distance: int | None = None
    yard_line: int | None = None
    yards_to_goal: int | None = None
    home_timeouts: int | None = None
    away_timeouts: int | None = None
    neutral_site: bool = False  # sources without site information (simulations) only ever have home games
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def is_final(self) -> bool:
        return self.status == "final"

    @property
    def lead(self) -> int:
        return abs(self.home_score - self.away_score)

    @property
    def leader(self) -> Literal["home", "away", "tied"]:
        if self.home_score > self.away_score:
            return "home"
        if self.away_score > self.home_score:
            return "away"
        return "tied"

    def state_key(self) -> tuple[Any, ...]:
        """The fields whose change is a new game state (clock ticks alone included: the clock is state; the site
        changes what the models answer)."""
        return (
            self.status,
            self.period,
            self.clock_seconds,
            self.home_score,
            self.away_score,
            self.possession,
            self.down,
            self.distance,
            self.yard_line,
            self.home_timeouts,
            self.away_timeouts,
            self.neutral_site,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: Decimals as strings, datetimes as ISO-8601."""
        return _jsonable(asdict(self)) | {"is_live": self.is_live, "lead": self.lead, "leader": self.leader}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """Public helper: Decimal -> str, datetime -> ISO, recursively (for --json output and JSONB)."""
    return _jsonable(value)
