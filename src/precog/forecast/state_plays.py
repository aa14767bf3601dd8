"""Ingested game states as training plays for the in-game WP model (spec 7.3: keep the models current).

The WP model trains on plays in nflfastR's column format (`precog.forecast.plays`); the shipped file covers the
2020-2022 seasons. ESPN ingestion stores every change of a live game in `game_states` (possession, down and
distance, yards to the goal, timeouts, clock, score), which is the same state before a play, and the game's
final row gives the outcome label. `export_plays` writes those states of finished NFL games as a plays file —
optionally after the rows of a base plays file, so one file (one checksum in the trained version's config)
holds both — for `precog forecast wp train --plays FILE`.

A state becomes a row only when everything the model reads is known and possible: status `live` (halftime,
suspended and between-play states without a down are left out), possession home or away, period 1-10, clock,
yards to the goal 1-99, down 1-4 with 1 to (yards to the goal) yards to go, both teams' timeouts 0-3; the game's
current row is `final` with a score (a 0-0 final is left out). Repeated identical states of one game (versions
that differ in a field the model does not read) are written once. Neutral-site games carry `neutral_site = 1`
and playoff games (ESPN's season type) `playoff = 1` (the reader's optional columns; `week` stays empty: ESPN's
scoreboard week is not stored). Game ids are `espn_<ESPN game id>`; the season and game date come from the start
time (US Eastern day). A base file's rows keep their week.
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from precog.forecast.csvio import CsvTable
from precog.forecast.elo import season_of
from precog.forecast.elo_update import PLAYOFF_SEASON_TYPES
from precog.forecast.errors import InputFileError
from precog.forecast.plays import OUTCOME_COLUMNS, STATE_COLUMNS
from precog.ingest.game_store import from_row

EASTERN = ZoneInfo("America/New_York")
# what the file holds: the reader's state columns, then the optional ones it understands
COLUMNS: tuple[str, ...] = (*STATE_COLUMNS, "season", "week", "game_date", *OUTCOME_COLUMNS, "neutral_site",
                             "playoff")
# why an ingested state is left out (the summary's counts)
NOT_LIVE = "not_live"
NO_POSSESSION = "no_possession"
NO_DOWN = "no_down"
INCOMPLETE = "incomplete"
IMPOSSIBLE = "impossible"
REPEATED = "repeated"


@dataclass
class ExportSummary:
    path: str
    games: int = 0
    rows: int = 0
    base_rows: int = 0
    seasons: list[int] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)
    games_left_out: int = 0  # finished games none of whose states could be written

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "games": self.games, "rows": self.rows, "base_rows": self.base_rows,
                "seasons": self.seasons, "states_left_out": dict(sorted(self.left_out.items())),
                "games_left_out": self.games_left_out}


def _row(state: Any, final: Any, season: int, day: date) -> tuple[dict[str, Any] | None, str | None]:
    """One state as a plays row, or None and why it is left out."""
    if state.status != "live":
        return None, NOT_LIVE
    if state.possession not in ("home", "away"):
        return None, NO_POSSESSION
    if state.down is None:
        return None, NO_DOWN  # between plays (ESPN's down -1) or a try: the state before the play is unknown
    values = (state.period, state.clock_seconds, state.yards_to_goal, state.distance, state.home_timeouts,
              state.away_timeouts)
    if any(v is None for v in values):
        return None, INCOMPLETE
    period, clock, to_goal, distance = int(state.period), int(state.clock_seconds), int(state.yards_to_goal), \
        int(state.distance)
    home_to, away_to = int(state.home_timeouts), int(state.away_timeouts)
    regulation = period <= 4
    remaining = (4 - period) * 900 + clock if regulation else clock
    if not (1 <= period <= 10 and 0 <= clock <= 900 and 1 <= to_goal <= 99
            and 1 <= int(state.down) <= 4 and 1 <= distance <= to_goal and 0 <= home_to <= 3 and 0 <= away_to <= 3):
        return None, IMPOSSIBLE
    home_has = state.possession == "home"
    pos, deff = (state.home_team, state.away_team) if home_has else (state.away_team, state.home_team)
    diff = state.home_score - state.away_score
    return {
        "game_id": f"espn_{state.game_id}", "posteam": pos, "defteam": deff, "home_team": state.home_team,
        "away_team": state.away_team, "score_differential": diff if home_has else -diff, "qtr": period,
        "game_seconds_remaining": remaining, "yardline_100": to_goal, "down": int(state.down),
        "ydstogo": distance, "posteam_timeouts_remaining": home_to if home_has else away_to,
        "defteam_timeouts_remaining": away_to if home_has else home_to, "season": season,
        "game_date": day.isoformat(), "home_score": final.home_score, "away_score": final.away_score,
        "neutral_site": 1 if final.neutral_site else 0,
        "playoff": 1 if (final.metadata or {}).get("season_type") in PLAYOFF_SEASON_TYPES else 0,
    }, None


# SQL over `game_states g`: the NFL games whose states are learned from (current row final, with a score), and a
# game's US Eastern day (wp_refit counts the same games)
FINISHED_GAME = ("g.sport = 'nfl' AND g.row_current_ind AND g.status = 'final' AND g.start_time IS NOT NULL"
                 " AND (g.home_score > 0 OR g.away_score > 0)")
GAME_DAY = "(g.start_time AT TIME ZONE 'America/New_York')::date"


def _finished_games(conn: psycopg.Connection[Any], start: date | None, end: date | None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT * FROM game_states g WHERE {FINISHED_GAME}"  # noqa: S608 - constant SQL fragments; values are parameters
            f" AND (%(start)s::date IS NULL OR {GAME_DAY} >= %(start)s)"
            f" AND (%(end)s::date IS NULL OR {GAME_DAY} <= %(end)s)"
            " ORDER BY g.start_time, g.external_game_id", {"start": start, "end": end}).fetchall()


def _versions(conn: psycopg.Connection[Any], game_id: str) -> Iterator[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        yield from cur.execute("SELECT * FROM game_states WHERE sport = 'nfl' AND external_game_id = %s"
                               " ORDER BY created_at, id", (game_id,))


def _open(path: Path) -> IO[str]:
    return gzip.open(path, "wt", newline="") if path.suffix == ".gz" else path.open("w", newline="")


def _base_rows(base: Path) -> Iterator[dict[str, Any]]:
    """The rows of a plays file (validated by the WP reader first), restricted to the exported columns."""
    from precog.forecast.plays import read_plays

    read_plays(base, require_outcomes=True)  # refuse a bad base file before writing anything
    table = CsvTable.read(base)
    names = [c for c in COLUMNS if table.has(c)]
    columns = {c: list(table.column_text(c)) for c in names}
    for i in range(len(table)):
        yield {c: columns[c][i] for c in names}


def export_plays(conn: psycopg.Connection[Any], out: Path, *, start: date | None = None, end: date | None = None,
                 base: Path | None = None) -> ExportSummary:
    """Write the ingested states of the NFL games finished between `start` and `end` (Eastern days, inclusive)
    as a plays file at `out` (.csv or .csv.gz), after the rows of `base` when given. Raises InputFileError
    when nothing at all would be written (no base, no usable state)."""
    summary = ExportSummary(str(out))
    games = _finished_games(conn, start, end)
    seasons: set[int] = set()
    rows: list[dict[str, Any]] = []
    for game in games:
        final = from_row(game)
        day = final.start_time.astimezone(EASTERN).date()
        season = season_of(final.start_time.date(), "nfl")
        seen: set[tuple[Any, ...]] = set()
        written = 0
        for version in _versions(conn, game["external_game_id"]):
            row, why = _row(from_row(version), final, season, day)
            if row is None:
                summary.left_out[why or IMPOSSIBLE] += 1
                continue
            key = tuple(row[c] for c in STATE_COLUMNS)
            if key in seen:
                summary.left_out[REPEATED] += 1
                continue
            seen.add(key)
            rows.append(row)
            written += 1
        if written:
            summary.games += 1
            seasons.add(season)
        else:
            summary.games_left_out += 1
    summary.rows = len(rows)
    summary.seasons = sorted(seasons)
    base_iter = _base_rows(base) if base is not None else iter(())
    with _open(out) as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), restval="", extrasaction="ignore")
        writer.writeheader()
        for base_row in base_iter:
            writer.writerow(base_row)
            summary.base_rows += 1
        writer.writerows(rows)
    if summary.rows + summary.base_rows == 0:
        out.unlink(missing_ok=True)
        when = "" if start is None and end is None else f" between {start or 'the start'} and {end or 'now'}"
        raise InputFileError(str(out), f"no ingested NFL game{when} has a usable in-game state (finished games: "
                             f"{len(games)}); nothing was written")
    return summary
