"""game_states storage: GameState <-> SCD2 rows, written through the shared SCD2 writer (a version on change)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.domain.jsonutil import canonical
from precog.feeds.game_state import GameState
from precog.ingest.scd2 import GAME_STATES, WriteResult, write_batch

# GameState fields kept in sport_metadata (the columns hold the rest).
_META_FIELDS = ("name", "short_name", "home_team_id", "away_team_id", "home_team_name", "away_team_name",
                "status_detail", "down", "distance", "yard_line", "yards_to_goal", "home_timeouts", "away_timeouts")


def period_label(state: GameState) -> str:
    """'Q1'..'Q4', 'OT', '2OT', 'Halftime', 'Final', 'Pregame'; baseball uses ESPN's 'Top 7th' detail."""
    if state.status == "halftime":
        return "Halftime"
    if state.status == "final":
        return "Final" if state.period <= 4 or state.sport == "mlb" else "Final/OT"
    if state.status in ("scheduled", "postponed", "cancelled"):
        return state.status.capitalize() if state.status != "scheduled" else "Pregame"
    if state.sport == "mlb":
        return (state.status_detail or f"Inning {state.period}")[:20]
    if state.period <= 4:
        return f"Q{state.period}"
    extra = state.period - 4
    return "OT" if extra == 1 else f"{extra}OT"


def to_row(state: GameState, event_id: str | None, received_at: datetime) -> dict[str, Any]:
    meta: dict[str, Any] = {name: getattr(state, name) for name in _META_FIELDS}
    meta.update(state.metadata)
    return {
        "sport": state.sport,
        "external_game_id": state.game_id,
        "event_id": event_id,
        "home_team": state.home_team[:10],
        "away_team": state.away_team[:10],
        "home_score": state.home_score,
        "away_score": state.away_score,
        "period": state.period,
        "period_label": period_label(state),
        "clock_seconds": state.clock_seconds,
        "time_remaining": state.display_clock[:20],
        "possession": state.possession,
        "status": state.status,
        "start_time": state.start_time,
        "neutral_site": state.neutral_site,
        "sport_metadata": meta,
        "source_updated_at": received_at,
    }


# event_id is left out: it comes from game_links, and a new link is written as a change by the feed itself.
_CHANGE_COLUMNS = tuple(c for c in GAME_STATES.compare_columns if c != "event_id")
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # source_updated_at is not compared


def change_key(state: GameState) -> tuple[Any, ...]:
    """The values the SCD2 writer compares for this state: equal keys never make a new version, and any
    column it compares (kickoff time, teams, status detail ...) changes the key. Taken from
    GAME_STATES.compare_columns so the two cannot drift; JSON compared canonically (JSONB reorders keys)."""
    row = to_row(state, None, _NO_TIME)
    return tuple(canonical(row[c]) if c in GAME_STATES.json_columns else row[c] for c in _CHANGE_COLUMNS)


def from_row(row: dict[str, Any]) -> GameState:
    """A stored game_states row back to a GameState (Decimals in metadata come back from their strings)."""
    meta = dict(row.get("sport_metadata") or {})
    core = {name: meta.pop(name, None) for name in _META_FIELDS}
    for key in ("espn_win_probability",):
        if isinstance(meta.get(key), dict):
            meta[key] = {k: Decimal(v) for k, v in meta[key].items()}
    odds = meta.get("pregame_odds")
    if isinstance(odds, dict):
        for key in ("home_spread", "over_under", "home_implied_probability"):
            if odds.get(key) is not None:
                odds[key] = Decimal(str(odds[key]))
    if meta.get("clock_exact") is not None:
        meta["clock_exact"] = Decimal(str(meta["clock_exact"]))
    start = row.get("start_time")
    return GameState(
        sport=row["sport"],
        game_id=row["external_game_id"],
        start_time=start if start is not None else datetime(1970, 1, 1, tzinfo=UTC),
        name=core["name"] or "",
        short_name=core["short_name"] or "",
        home_team=row["home_team"] or "",
        away_team=row["away_team"] or "",
        home_team_id=str(core["home_team_id"] or ""),
        away_team_id=str(core["away_team_id"] or ""),
        home_team_name=core["home_team_name"] or "",
        away_team_name=core["away_team_name"] or "",
        status=row["status"],
        status_detail=core["status_detail"] or "",
        period=int(row["period"] or 0),
        clock_seconds=row["clock_seconds"],
        display_clock=row.get("time_remaining") or "",
        home_score=int(row["home_score"]),
        away_score=int(row["away_score"]),
        possession=row["possession"],
        down=core["down"],
        distance=core["distance"],
        yard_line=core["yard_line"],
        yards_to_goal=core["yards_to_goal"],
        home_timeouts=core["home_timeouts"],
        away_timeouts=core["away_timeouts"],
        neutral_site=_neutral_site(row),
        metadata=meta,
    )


def _neutral_site(row: dict[str, Any]) -> bool:
    """The stored site flag (NOT NULL since migration 0012); a row without it is read from a schema that is not
    migrated, and guessing a home game there would give the listed home team a home-field advantage."""
    value = row.get("neutral_site")
    if not isinstance(value, bool):
        raise ValueError(f"game_states row {row.get('sport')}/{row.get('external_game_id')}: neutral_site is "
                         f"{value!r}, not a boolean (is migration 0012 applied?)")
    return value


class GameStateStore:
    """Writes batches of game states (a new SCD2 version only where something changed) and reads them back."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn  # an autocommit connection owned by the caller

    def event_links(self, sport: str | None = None) -> dict[tuple[str, str], str]:
        """(sport, ESPN game id) -> the Kalshi event linked to it (the winner-market event when several)."""
        rows = self.conn.execute(
            "SELECT sport, external_game_id, min(event_id) FROM game_links"
            " WHERE (%(sport)s::text IS NULL OR sport = %(sport)s) GROUP BY sport, external_game_id",
            {"sport": sport},
        ).fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    def write(self, states: Sequence[GameState], received_at: datetime,
              links: dict[tuple[str, str], str] | None = None) -> WriteResult:
        links = self.event_links() if links is None else links
        rows = [to_row(s, links.get((s.sport, s.game_id)), received_at) for s in states]
        return write_batch(self.conn, GAME_STATES, rows, received_at)

    def current(self, sports: Iterable[str] | None = None, *, live_only: bool = False) -> list[GameState]:
        return [from_row(r) for r in self.current_rows(sports, live_only=live_only)]

    def current_rows(self, sports: Iterable[str] | None = None, *, live_only: bool = False) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT * FROM game_states WHERE row_current_ind"
                " AND (%(sports)s::text[] IS NULL OR sport = ANY(%(sports)s::text[]))"
                " AND (NOT %(live)s OR status IN ('live', 'halftime'))"
                " ORDER BY start_time, external_game_id",
                {"sports": list(sports) if sports is not None else None, "live": live_only},
            )
            return list(cur.fetchall())
