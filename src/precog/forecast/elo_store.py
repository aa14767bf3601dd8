"""Persisting an Elo replay: `teams.current_elo_rating` and `elo_rating_history` (append-only).

Every game with a result gives one history row per side whose team is in `teams` (codes mapped with
`teams.canonical_team`, e.g. 538's WSH -> WAS, OAK -> LV). Teams that are not in `teams` (historic
franchises in 538's file) are rated during the replay but get no history; they are reported, or
created first with `create_missing_teams`. History rows carry the model version and a game key, so a
second run on the same (or a longer) file adds only games not yet recorded. One transaction: a failure
leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from precog.forecast.elo import EloForecast
from precog.forecast.errors import ForecastError

TEAM_CODE_MAX = 10  # teams.team_code VARCHAR(10)
HISTORY_COLUMNS = ("team_id", "model_id", "game_date", "rating_before", "rating_after", "opponent_team_id",
                   "game_result", "k_factor", "game_key", "season")


@dataclass
class EloTrainSummary:
    games: int
    rated_games: int
    history_rows_added: int
    teams_updated: list[str]
    teams_created: list[str]
    teams_without_history: dict[str, int] = field(default_factory=dict)  # code -> games, not in `teams`
    final_ratings: dict[str, float] = field(default_factory=dict)


def _r2(x: float) -> str:
    return f"{x:.2f}"


def store_replay(conn: psycopg.Connection[Any], forecasts: Sequence[EloForecast], *, model_id: int, model_ref: str,
                 k_factor: float, sport: str = "nfl", create_missing_teams: bool = False,
                 source: str = "") -> EloTrainSummary:
    played = [f for f in forecasts if f.rating1_after is not None]
    codes_in_file = Counter([f.team1 for f in played] + [f.team2 for f in played])
    final: dict[str, float] = {}
    last_season: dict[str, int] = {}
    last_date: dict[str, str] = {}
    for f in sorted(played, key=lambda f: (f.game.date, f.game.row)):
        assert f.rating1_after is not None and f.rating2_after is not None
        final[f.team1], final[f.team2] = f.rating1_after, f.rating2_after
        for t in (f.team1, f.team2):
            last_season[t] = f.game.season
            last_date[t] = f.game.date.isoformat()
    with conn.transaction():
        teams = dict(conn.execute("SELECT team_code, team_id FROM teams WHERE sport = %s", (sport,)).fetchall())
        created: list[str] = []
        if create_missing_teams:
            for code in sorted(set(codes_in_file) - set(teams)):
                if len(code) > TEAM_CODE_MAX:  # teams.team_code is VARCHAR(10)
                    raise ForecastError(f"{source or 'games file'}: team code {code!r} is longer than "
                                        f"{TEAM_CODE_MAX} characters; it cannot be added to the teams table")
                row = conn.execute(
                    "INSERT INTO teams (team_code, team_name, sport, metadata) VALUES (%s, %s, %s, %s) RETURNING team_id",
                    (code, code, sport, Jsonb({"created_by": "precog forecast elo train", "source": source})),
                ).fetchone()
                assert row is not None
                teams[code] = row[0]
                created.append(code)
        missing = {c: n for c, n in codes_in_file.items() if c not in teams}
        rows = []
        for f in played:
            assert f.rating1_after is not None and f.rating2_after is not None
            res = f.game.result1
            key = f"{f.game.date.isoformat()}:{f.team1}-{f.team2}"
            for team, opp, before, after, outcome in (
                (f.team1, f.team2, f.rating1_before, f.rating1_after, res),
                (f.team2, f.team1, f.rating2_before, f.rating2_after, None if res is None else 1.0 - res),
            ):
                if team not in teams:
                    continue
                result = "win" if outcome == 1.0 else "loss" if outcome == 0.0 else "tie"
                rows.append((teams[team], model_id, f.game.date, _r2(before), _r2(after), teams.get(opp), result,
                             _r2(k_factor), key, f.game.season))
        conn.execute("CREATE TEMP TABLE elo_history_load (LIKE elo_rating_history INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor() as cur, cur.copy(
            f"COPY elo_history_load ({', '.join(HISTORY_COLUMNS)}) FROM STDIN"  # noqa: S608 - constant columns
        ) as copy:
            for r in rows:
                copy.write_row(r)
        added = conn.execute(
            f"INSERT INTO elo_rating_history ({', '.join(HISTORY_COLUMNS)}) "  # noqa: S608 - constant columns
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM elo_history_load ORDER BY game_date, game_key "
            "ON CONFLICT (model_id, team_id, game_key) WHERE model_id IS NOT NULL AND game_key IS NOT NULL "
            "DO NOTHING"
        ).rowcount
        updated = []
        for code, rating in sorted(final.items()):
            if code not in teams:
                continue
            conn.execute(
                "UPDATE teams SET current_elo_rating = %s, "
                "metadata = coalesce(metadata, '{}'::jsonb) || jsonb_build_object('elo', %s::jsonb) "
                "WHERE team_id = %s",
                (_r2(rating), Jsonb({"model": model_ref, "last_season": last_season[code],
                                      "last_game": last_date[code]}), teams[code]),
            )
            updated.append(code)
    return EloTrainSummary(len(forecasts), len(played), added, updated, created, missing,
                           {c: round(r, 2) for c, r in final.items()})
