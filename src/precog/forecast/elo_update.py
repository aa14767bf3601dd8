"""Elo ratings kept current from ingested results (spec 7.3 auto-retraining, for Elo: apply each new result).

`update_from_results` reads the final games in `game_states` (current SCD2 rows, ESPN's scoreboards) that the
model version has not rated yet, plays them through `EloRatings` from the stored ratings and last seasons (in
start-time order: season regression at a team's first game of a new season, MOV and playoff multipliers,
neutral sites), and stores the result as `precog forecast elo train` does: one `elo_rating_history` row per team
per game (game key `espn:<sport>:<ESPN game id>`), `teams.current_elo_rating` and `teams.metadata.elo`, in one
transaction under an advisory lock (the CLI and a running ingestion process cannot apply a game twice).

A game is applied once per model version: a later correction of its final score (a new SCD2 version, still
final) is not re-applied, and a result stored after a later game of one of its teams was rated is skipped
(`rated_later`: Elo is order-dependent). `rebuild_from=D` (`--rebuild-from D`) is the repair for both: it removes
the version's rated games from day D on, puts every team back where the history left it before D and plays all
final results from D on again in start order (the current, corrected scores). It refuses when ratings from D on
came from elsewhere than ingested results (a training file), which it could not replay. Only ESPN's real games
reach `game_states` (simulated worlds — the demo, `precog run --venue local` — never write it), so nothing here
touches a simulated game.

`EloAutoUpdater` runs the update inside the long-running ingestion process after it stores a final state, at most
every `probability_models.elo.auto_update.interval_minutes`, off the polling path (its own thread and connection).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.forecast.elo import SEASON_START_MONTH, EloConfig, EloRatings, season_of
from precog.forecast.errors import ForecastError, RegistryError
from precog.forecast.gamesfile import Game
from precog.forecast.teams import canonical_team

log = logging.getLogger(__name__)

EASTERN = ZoneInfo("America/New_York")  # US leagues date their games by the Eastern day (as game links do)
PLAYOFF_SEASON_TYPES = frozenset({"playoffs", "championship"})  # espn_parse: ESPN season.type 3
ALERT_TYPE = "elo_update_failed"
# skip reasons (the summary's `skipped[].reason`)
UNKNOWN_TEAM = "unknown_team"
UNSCORED = "unscored"
PRESEASON = "preseason"
NO_START_TIME = "no_start_time"
RATED_LATER = "rated_later"


def game_key(sport: str, external_game_id: str) -> str:
    return f"espn:{sport}:{external_game_id}"


@dataclass(frozen=True, slots=True)
class AppliedGame:
    game_key: str
    date: date
    season: int
    home: str
    away: str
    home_score: int
    away_score: int
    neutral: bool
    playoff: bool
    p_home: float
    home_before: float
    home_after: float
    away_before: float
    away_after: float


@dataclass(frozen=True, slots=True)
class SkippedGame:
    game_key: str
    reason: str
    detail: str
    day: str | None = None  # the game's (Eastern) day, ISO, when its start time is known


@dataclass
class EloUpdateSummary:
    model: str
    sport: str
    dry_run: bool
    applied: list[AppliedGame] = field(default_factory=list)
    skipped: list[SkippedGame] = field(default_factory=list)
    already_applied: int = 0
    history_rows_added: int = 0
    rebuilt_from: date | None = None
    history_rows_removed: int = 0  # the rebuild's: the rated games from `rebuilt_from` on, played again
    # team -> (stored rating before the update, rating after); only teams that played an applied game
    teams: dict[str, tuple[float | None, float]] = field(default_factory=dict)

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "sport": self.sport, "dry_run": self.dry_run,
            "games_applied": len(self.applied), "already_applied": self.already_applied,
            "history_rows_added": self.history_rows_added,
            "rebuilt_from": None if self.rebuilt_from is None else self.rebuilt_from.isoformat(),
            "history_rows_removed": self.history_rows_removed,
            "skipped": self.skipped_by_reason(),
            "games": [asdict(g) | {"p_home": round(g.p_home, 4), "home_before": round(g.home_before, 2),
                                   "home_after": round(g.home_after, 2), "away_before": round(g.away_before, 2),
                                   "away_after": round(g.away_after, 2), "date": g.date.isoformat()}
                      for g in self.applied],
            "skipped_games": [asdict(s) for s in self.skipped],
            "teams": {code: {"before": None if b is None else round(b, 2), "after": round(a, 2)}
                      for code, (b, a) in sorted(self.teams.items())},
        }


# ---------------------------------------------------------------------------------------------- the model
def _model_sport(record: Any) -> str:
    return str(record.sport or (record.config or {}).get("sport") or "nfl")


def resolve_model(conn: psycopg.Connection[Any], sport: str, ref: str | None) -> Any:
    """The Elo version to update: `ref` (NAME or NAME@VERSION), else the sport's active Elo version. With several
    active, the one that wrote the teams' current ratings (`metadata.elo.model`); otherwise the caller must name
    one. Returns None when the sport has no active Elo version (nothing to keep current)."""
    from precog.forecast.registry import get_model, list_models

    if ref is not None:
        record = get_model(conn, ref)
        if record.model_type != "elo":
            raise RegistryError(f"{record.ref} is a {record.model_type} model, not an Elo model")
        if record.status == "deprecated":
            raise RegistryError(f"{record.ref} is deprecated; its ratings are no longer kept current")
        if _model_sport(record) != sport:
            raise RegistryError(f"{record.ref} is an Elo model of {_model_sport(record)}, not {sport} "
                                f"(pass --sport {_model_sport(record)})")
        return record
    active = [r for r in list_models(conn, status="active", model_type="elo") if _model_sport(r) == sport]
    if len(active) <= 1:
        return active[0] if active else None
    rows = conn.execute("SELECT metadata -> 'elo' ->> 'model' FROM teams WHERE sport = %s", (sport,)).fetchall()
    owners = Counter(r[0] for r in rows if r[0])
    for owner, _ in owners.most_common():
        for record in active:
            if record.ref == owner:
                return record
    raise RegistryError(f"{sport} has {len(active)} active Elo versions ({', '.join(r.ref for r in active)}) and "
                        "none wrote the current ratings: name one with --model NAME@VERSION")


# ---------------------------------------------------------------------------------------------- the update
@dataclass
class _Team:
    team_id: int
    rating: float | None
    last_season: int | None
    last_game: date | None


def _teams(conn: psycopg.Connection[Any], sport: str) -> dict[str, _Team]:
    rows = conn.execute(
        "SELECT team_code, team_id, current_elo_rating, (metadata -> 'elo' ->> 'last_season')::int,"
        " metadata -> 'elo' ->> 'last_game' FROM teams WHERE sport = %s", (sport,)).fetchall()
    out = {}
    for code, team_id, rating, season, last in rows:
        try:
            last_game = date.fromisoformat(last) if last else None
        except ValueError:
            last_game = None
        out[code] = _Team(team_id, None if rating is None else float(rating), season, last_game)
    return out


def _pending(conn: psycopg.Connection[Any], sport: str, model_id: int) -> tuple[list[dict[str, Any]], int]:
    """Current final game states of `sport` the model has not rated, in start order; and how many it has."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT g.external_game_id, g.event_id, g.home_team, g.away_team, g.home_score, g.away_score,"
            " g.start_time, g.neutral_site, g.sport_metadata ->> 'season_type' AS season_type,"
            " EXISTS (SELECT 1 FROM elo_rating_history h WHERE h.model_id = %(model)s"
            "         AND h.game_key = 'espn:' || g.sport || ':' || g.external_game_id) AS applied"
            " FROM game_states g WHERE g.row_current_ind AND g.sport = %(sport)s AND g.status = 'final'"
            " ORDER BY g.start_time NULLS LAST, g.external_game_id",
            {"model": model_id, "sport": sport}).fetchall()
    pending = [r for r in rows if not r["applied"]]
    return pending, len(rows) - len(pending)


def _skip_reason(row: dict[str, Any], home: str, away: str, teams: dict[str, _Team], day: date | None) -> tuple[str, str] | None:
    for side, code in (("home", home), ("away", away)):
        if code not in teams:
            return UNKNOWN_TEAM, f"{side} team {row[f'{side}_team']!r} is not in the teams table"
    if row["start_time"] is None or day is None:
        return NO_START_TIME, "no start time: its season and order are unknown"
    if row["season_type"] == "preseason":
        return PRESEASON, "preseason games do not move Elo ratings"
    if row["home_score"] == 0 and row["away_score"] == 0:
        return UNSCORED, "final without a score (0-0)"
    for code in (home, away):
        last = teams[code].last_game
        if last is not None and day <= last:
            return RATED_LATER, (f"{code}'s rating already includes a game on {last.isoformat()}; an earlier or "
                                 "same-day result applied now would be out of order (or counted twice)")
    return None


def _rewind(conn: psycopg.Connection[Any], sport: str, record: Any, day: date, teams: dict[str, _Team]
            ) -> tuple[int, set[str]]:
    """Remove the version's rated games from `day` on and put each team they moved back where the history left
    it: after its last rated game before `day` (rating, season, date), or, with none, at the rating its first
    removed game started from (already regressed for that game's season). Returns the rows removed and the
    teams put back; `teams` is updated in place. Raises ForecastError when a removed game did not come from
    ingested results (it could not be played again)."""
    prefix = f"espn:{sport}:"
    foreign = conn.execute(
        "SELECT game_key, game_date FROM elo_rating_history WHERE model_id = %s AND game_date >= %s"
        " AND (game_key IS NULL OR left(game_key, length(%s)) <> %s) ORDER BY game_date LIMIT 1",
        (record.model_id, day, prefix, prefix)).fetchone()
    if foreign is not None:
        raise ForecastError(
            f"{record.ref}'s ratings from {day.isoformat()} on include games that are not ingested results (e.g. "
            f"{foreign[0] or 'a game without a key'} on {foreign[1]}), which a rebuild cannot play again: rebuild from "
            f"a later day, or train the ratings again with `precog forecast elo train`")
    # per team moved from `day` on: its first such row (where it stood then) and its last row before `day`
    restored = conn.execute(
        "SELECT t.team_code, coalesce(b.rating_after, a.rating_before), coalesce(b.season, a.season), b.game_date"
        " FROM teams t"
        " JOIN LATERAL (SELECT h.rating_before, h.season FROM elo_rating_history h WHERE h.model_id = %(m)s"
        "               AND h.team_id = t.team_id AND h.game_date >= %(d)s"
        "               ORDER BY h.game_date, h.history_id LIMIT 1) a ON true"
        " LEFT JOIN LATERAL (SELECT h.rating_after, h.season, h.game_date FROM elo_rating_history h"
        "                    WHERE h.model_id = %(m)s AND h.team_id = t.team_id AND h.game_date < %(d)s"
        "                    ORDER BY h.game_date DESC, h.history_id DESC LIMIT 1) b ON true"
        " WHERE t.sport = %(s)s", {"m": record.model_id, "d": day, "s": sport}).fetchall()
    for code, rating, season, last_game in restored:
        team = teams[code]
        team.rating, team.last_season, team.last_game = float(rating), season, last_game
    # the history is append-only but for a rebuild, which archives what it takes back (migration 0021)
    conn.execute("SET LOCAL precog.elo_rebuild = 'on'")
    removed = conn.execute(
        "WITH gone AS (DELETE FROM elo_rating_history WHERE model_id = %(m)s AND game_date >= %(d)s RETURNING *)"
        " INSERT INTO elo_rating_rebuilds (model_id, sport, from_date, rows_removed, removed_rows)"
        " SELECT %(m)s, %(s)s, %(d)s, count(*), coalesce(jsonb_agg(to_jsonb(gone) ORDER BY gone.history_id), '[]')"
        " FROM gone RETURNING rows_removed", {"m": record.model_id, "d": day, "s": sport}).fetchone()
    conn.execute("SET LOCAL precog.elo_rebuild = 'off'")
    return (removed[0] if removed else 0), {code for code, *_ in restored}


def update_from_results(conn: psycopg.Connection[Any], *, sport: str = "nfl", model: str | None = None,
                        dry_run: bool = False, rebuild_from: date | None = None) -> EloUpdateSummary:
    """Apply the final results in `game_states` the Elo version has not rated yet (see the module doc).

    `model` is NAME or NAME@VERSION (default: the sport's active Elo version). `dry_run` computes everything and
    writes nothing. `rebuild_from` first takes back the ratings of the games from that day on and then plays every
    final result from there again. Raises ForecastError (RegistryError) for a missing or unusable model."""
    if sport not in SEASON_START_MONTH:
        raise ForecastError(f"no season calendar for sport {sport!r}: Elo ratings cannot be updated from its results "
                            f"(known calendars: {', '.join(sorted(SEASON_START_MONTH))})")
    # a dry run's rewind happens inside the transaction and is rolled back with it
    with conn.transaction(force_rollback=dry_run):
        # one updater at a time per sport: the CLI and a running ingestion process never apply a game twice
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"precog.forecast.elo_update:{sport}",))
        record = resolve_model(conn, sport, model)
        if record is None:
            raise RegistryError(f"no active Elo model for {sport} (see `precog models list`); name one with --model")
        config = EloConfig.model_validate(record.config)
        summary = EloUpdateSummary(record.ref, sport, dry_run)
        teams = _teams(conn, sport)
        stored_rating = {code: t.rating for code, t in teams.items()}  # shown as "before"
        rewound: set[str] = set()
        if rebuild_from is not None:
            summary.rebuilt_from = rebuild_from
            summary.history_rows_removed, rewound = _rewind(conn, sport, record, rebuild_from, teams)
        rows, summary.already_applied = _pending(conn, sport, record.model_id)
        ratings = EloRatings(config, {c: t.rating for c, t in teams.items() if t.rating is not None},
                             allow_new_teams=True)  # a team in `teams` without a rating starts at the initial one
        for code, stored in teams.items():
            if stored.rating is not None:
                ratings.set_rating(code, stored.rating, stored.last_season)
        history: list[tuple[Any, ...]] = []
        for i, row in enumerate(rows):
            key = game_key(sport, row["external_game_id"])
            home, away = canonical_team(row["home_team"] or "", sport), canonical_team(row["away_team"] or "", sport)
            start: datetime | None = row["start_time"]
            day = start.astimezone(EASTERN).date() if start is not None else None
            reason = _skip_reason(row, home, away, teams, day)
            if reason is not None:
                summary.skipped.append(SkippedGame(key, *reason, day=None if day is None else day.isoformat()))
                continue
            assert start is not None and day is not None
            season = season_of(start.date(), sport)
            for code in (home, away):
                team = teams[code]
                if code in rewound and team.last_game is None and team.last_season is not None \
                        and season < team.last_season:
                    raise ForecastError(
                        f"cannot rebuild from {rebuild_from}: {code}'s first rated game from then on is in season "
                        f"{team.last_season}, and its rating before it is not in the history, so its {season} game "
                        f"{key} cannot be played first; rebuild from an earlier day")
            game = Game(row=i, date=day, season=season, team1=home, team2=away,
                        neutral=bool(row["neutral_site"]), playoff=row["season_type"] in PLAYOFF_SEASON_TYPES,
                        score1=int(row["home_score"]), score2=int(row["away_score"]))
            f = ratings.play(game, home, away)
            assert f.rating1_after is not None and f.rating2_after is not None
            summary.applied.append(AppliedGame(key, day, game.season, home, away, game.score1 or 0, game.score2 or 0,
                                               game.neutral, game.playoff, f.p_team1, f.rating1_before,
                                               f.rating1_after, f.rating2_before, f.rating2_after))
            res = game.result1
            for code, opp, before, after, outcome in ((home, away, f.rating1_before, f.rating1_after, res),
                                                      (away, home, f.rating2_before, f.rating2_after,
                                                       None if res is None else 1.0 - res)):
                result = "win" if outcome == 1.0 else "loss" if outcome == 0.0 else "tie"
                side = teams[code]
                history.append((side.team_id, row["event_id"], record.model_id, day, _r2(before), _r2(after),
                                teams[opp].team_id, result, _r2(config.k_factor), key, game.season))
                summary.teams[code] = (stored_rating[code], after)
                side.last_game, side.last_season = day, game.season
        for code in rewound - set(summary.teams):  # put back and not played again (no final result from the day on)
            summary.teams[code] = (stored_rating[code], teams[code].rating)  # type: ignore[assignment]
        if not dry_run and summary.teams:
            summary.history_rows_added = _store(conn, history, teams, summary, record.ref)
    return summary


def rated_later_since(summary: EloUpdateSummary) -> date | None:
    """The earliest day of the results skipped as `rated_later`: where `rebuild_from` would have to start to
    play them in order (None when there are none)."""
    days = [date.fromisoformat(s.day) for s in summary.skipped if s.reason == RATED_LATER and s.day]
    return min(days) if days else None


def _r2(x: float) -> str:
    return f"{x:.2f}"


def _store(conn: psycopg.Connection[Any], history: list[tuple[Any, ...]], teams: dict[str, _Team],
           summary: EloUpdateSummary, model_ref: str) -> int:
    added = 0
    with conn.cursor() as cur:
        for row in history:
            cur.execute(
                "INSERT INTO elo_rating_history (team_id, event_id, model_id, game_date, rating_before, rating_after,"
                " opponent_team_id, game_result, k_factor, game_key, season)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (model_id, team_id, game_key) WHERE model_id IS NOT NULL AND game_key IS NOT NULL"
                " DO NOTHING", row)
            added += cur.rowcount
        for code, (_, after) in sorted(summary.teams.items()):
            team = teams[code]
            last_game = None if team.last_game is None else team.last_game.isoformat()  # None: put back, no game
            cur.execute(
                "UPDATE teams SET current_elo_rating = %s,"
                " metadata = coalesce(metadata, '{}'::jsonb) || jsonb_build_object('elo', %s::jsonb)"
                " WHERE team_id = %s",
                (_r2(after), Jsonb({"model": model_ref, "last_season": team.last_season,
                                    "last_game": last_game}), team.team_id))
    return added


# ---------------------------------------------------------------------------------------------- automatic
class EloAutoUpdater:
    """Applies new final results of the ingested sports, at most every `interval_seconds`, in a worker thread.

    `note_finals(sport, ids)` (called by the game feed's poll callback) marks a sport as having new final states;
    `run(stop)` waits for that and updates; the first pass after start follows the first poll at once. A failure
    is logged and raised as one `elo_update_failed` alert (medium; deduplicated per sport) when there is an alert
    sink, and tried again after the interval; it never stops ingestion."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], sports: Iterable[str], *,
                 interval_seconds: float, alerts: Any | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.connect = connect
        self.sports = [s for s in sports if s in SEASON_START_MONTH]
        self.interval = interval_seconds
        self.alerts = alerts
        self.clock = clock
        self.pending: set[str] = set()
        self._polled: set[str] = set()
        # ESPN ids of the final states this process stored, per sport: one of them skipped as `rated_later` arrived
        # out of order (a back-filled day, a late correction of the scoreboard), so the pass rebuilds from its day
        self._written: dict[str, set[str]] = {}
        self.last_run: float | None = None
        self.runs: list[EloUpdateSummary] = []
        self.failures = 0
        self._wake = asyncio.Event()
        self._lock = threading.Lock()  # `pending` is marked on the event loop and taken in the worker thread

    def note_finals(self, sport: str, game_ids: Iterable[str]) -> None:
        """After every poll of `sport`: the first one (catching up on results stored while the process was
        stopped or an update failed) and any that stored a final state make the sport due."""
        first = sport not in self._polled
        self._polled.add(sport)
        ids = list(game_ids)
        if ids:
            with self._lock:
                self._written.setdefault(sport, set()).update(ids)
        if sport in self.sports and (first or ids):
            with self._lock:
                self.pending.add(sport)
            self._wake.set()

    def due_in(self) -> float:
        if self.last_run is None:
            return 0.0
        return max(0.0, self.last_run + self.interval - self.clock())

    def update_now(self) -> list[EloUpdateSummary]:
        """One pass over the pending sports (blocking: call it from a worker thread)."""
        with self._lock:
            sports, self.pending = sorted(self.pending), set()
        self.last_run = self.clock()
        done: list[EloUpdateSummary] = []
        for sport in sports:
            try:
                with self.connect() as conn:
                    if resolve_model(conn, sport, None) is None:
                        continue  # no Elo model of this sport: nothing to keep current
                    summary = update_from_results(conn, sport=sport)
                    rebuilt = self._rebuild_if_out_of_order(conn, sport, summary)
            except Exception as exc:  # noqa: BLE001 - a failed update must never stop ingestion; it is alerted
                self.failures += 1
                with self._lock:
                    self.pending.add(sport)  # tried again after the interval (the alert is deduplicated)
                log.exception("updating %s Elo ratings from final results failed", sport)
                self._alert(sport, exc)
                continue
            done.append(summary)
            if rebuilt is not None:
                done.append(rebuilt)
                summary = rebuilt
                log.info("%s: rebuilt the %s Elo ratings from %s (results stored out of order): %d games played "
                         "again", summary.model, sport, summary.rebuilt_from, len(summary.applied))
            late = rated_later_since(summary)
            if late is not None:  # not alerted: a game a training file already rated is skipped the same way
                log.warning("%s: %d %s results are older than games already rated and were skipped; if they are "
                            "not in the ratings yet, `precog forecast elo update --sport %s --rebuild-from %s` plays "
                            "them in order", summary.model, summary.skipped_by_reason().get(RATED_LATER, 0), sport,
                            sport, late.isoformat())
            if summary.applied:
                log.info("%s: applied %d final %s results to Elo ratings (%d teams)", summary.model,
                         len(summary.applied), sport, len(summary.teams))
        self.runs.extend(done)
        return done

    def _rebuild_if_out_of_order(self, conn: psycopg.Connection[Any], sport: str, summary: EloUpdateSummary
                                 ) -> EloUpdateSummary | None:
        """Rebuild from the earliest day of the results this process stored that the pass skipped as
        `rated_later`. Those ids are forgotten first, so a rebuild that cannot be done is alerted once, not at
        every pass."""
        prefix = f"espn:{sport}:"
        with self._lock:
            written = self._written.get(sport, set())
            late = [s for s in summary.skipped
                    if s.reason == RATED_LATER and s.day and s.game_key.removeprefix(prefix) in written]
            written.difference_update(s.game_key.removeprefix(prefix) for s in late)
        if not late:
            return None
        return update_from_results(conn, sport=sport, model=summary.model,
                                   rebuild_from=min(date.fromisoformat(s.day) for s in late if s.day))

    def _alert(self, sport: str, exc: Exception) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.raise_alert(
                ALERT_TYPE, "medium", "forecast",
                f"updating {sport} Elo ratings from final results failed: {exc}; run `precog forecast elo update "
                f"--sport {sport}` to see why", {"sport": sport, "error": str(exc)},
                dedup_key=f"{ALERT_TYPE}:{sport}", category="system")
        except Exception:  # noqa: BLE001 - an alert sink that fails too must not end the ingestion process
            log.exception("could not raise %s for %s", ALERT_TYPE, sport)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.pending and self.due_in() <= 0:
                await asyncio.to_thread(self.update_now)
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waiters, timeout=self.due_in() if self.pending else None,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
