"""A restarted ingestion catches up on the scoreboard days it missed (data_sources.espn.backfill_days).

Before: `precog ingest run` polled ESPN's current scoreboard only, so a game that ended while no ingestion ran
stayed `live` in `game_states` for good, and its result never reached the Elo ratings. Now a long run first
polls each missed day (`?dates=YYYYMMDD`) once, from the day of the latest stored game that had started, and a
final stored out of order (after a later game of its team was rated) is played in order by an Elo rebuild.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time as clock
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from feeds.espn_testkit import RecordingAlerts, competition
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.feeds.espn import EspnClient
from precog.feeds.espn_server import LocalEspnServer
from precog.feeds.game_state import GameState
from precog.forecast.elo import EloConfig, EloRatings, replay
from precog.forecast.elo_update import update_from_results
from precog.forecast.gamesfile import Game
from precog.forecast.registry import ensure_builtin_models, get_model
from precog.ingest.game_store import GameStateStore
from precog.ingest.games import GameFeed
from precog.ingest.quality import DataQualityMonitor
from precog.ingest.runner import IngestOptions, run_ingest
from precog.ingest.settings import load_ingest_settings

EASTERN = ZoneInfo("America/New_York")
GAME = "401772785"  # SF at CLE in the ESPN sample: final, SF 26 - CLE 8


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(db_url, autocommit=True) as conn:
        ensure_builtin_models(conn)
        yield conn


def _state(game_id: str, day: date, home: str, away: str, home_score: int, away_score: int,
           status: str) -> GameState:
    return GameState(
        sport="nfl", game_id=game_id, start_time=datetime.combine(day, time(18, 0, tzinfo=UTC)),
        name=f"{away} at {home}", short_name=f"{away} @ {home}", home_team=home, away_team=away, home_team_id="1",
        away_team_id="2", home_team_name=home, away_team_name=away, status=status,  # type: ignore[arg-type]
        status_detail=status, period=4 if status == "final" else 2, clock_seconds=0 if status == "final" else 600,
        display_clock="0:00", home_score=home_score, away_score=away_score, metadata={"season_type": "regular"})


def _feed(espn: LocalEspnServer, store: GameStateStore | None, now: datetime) -> GameFeed:
    return GameFeed(EspnClient(espn.base_url, retries=0, min_interval=0.0), sports=["nfl"],
                    monitor=DataQualityMonitor(), store=store, now=lambda: now)


def test_the_days_a_restart_catches_up_on(db: psycopg.Connection[Any]) -> None:
    now = datetime(2026, 11, 27, 15, tzinfo=UTC)  # 10 AM Eastern
    with LocalEspnServer() as espn:
        assert _feed(espn, GameStateStore(db), now).backfill_days("nfl", 7) == []  # nothing stored: a first run
        store = GameStateStore(db)
        store.write([_state("a", date(2026, 11, 24), "KC", "BAL", 7, 3, "live"),
                     _state("b", date(2026, 11, 30), "KC", "DEN", 0, 0, "scheduled")], now)
        feed = _feed(espn, GameStateStore(db), now)
        # from the game left live (a game still to start does not count) through yesterday, Eastern days
        assert feed.backfill_days("nfl", 7) == ["20261124", "20261125", "20261126"]
        assert feed.backfill_days("nfl", 2) == ["20261125", "20261126"]  # at most `days` of them
        assert feed.backfill_days("nfl", 0) == []  # off
        # a one-shot run: the start day of the game left live only
        assert feed.backfill_days("nfl", 7, missed_only=True) == ["20261124"]
        assert feed.backfill_days("nfl", 2, missed_only=True) == []  # further back than `days`
        late_evening = datetime(2026, 11, 27, 3, tzinfo=UTC)  # 10 PM Eastern on the 26th: still the 26th there
        assert _feed(espn, GameStateStore(db), late_evening).backfill_days("nfl", 7) == ["20261124", "20261125"]
        # every started game ended: from the latest one's day (later games of that day may be missing)
        store.write([_state("a", date(2026, 11, 24), "KC", "BAL", 17, 3, "final"),
                     _state("c", date(2026, 11, 25), "NE", "NYJ", 21, 20, "final")], now)
        assert _feed(espn, GameStateStore(db), now).backfill_days("nfl", 7) == ["20261125", "20261126"]
        # a one-shot run asks only for the days of games that still lack an end: here none
        assert _feed(espn, GameStateStore(db), now).backfill_days("nfl", 7, missed_only=True) == []


def test_a_one_shot_run_fetches_the_final_it_missed_and_nothing_more(
        db_url: str, db: psycopg.Connection[Any], espn_samples: dict[str, bytes], tmp_path: Path) -> None:
    """`precog ingest run --once` from cron: the game left live by an earlier run gets its final from its day's
    scoreboard; once nothing lacks an end, a run asks ESPN for the current scoreboard only."""
    today = datetime.now(EASTERN).date()
    d1 = today - timedelta(days=2)
    GameStateStore(db).write([_state(GAME, d1, "CLE", "SF", 7, 10, "live")], datetime.now(UTC))
    missed = copy.deepcopy(json.loads(espn_samples["nfl"]))
    missed["events"] = [e for e in missed["events"] if e["id"] == GAME]
    stamp = f"{d1.isoformat()}T18:00Z"
    missed["events"][0]["date"] = stamp
    competition(missed, GAME)["date"] = stamp
    with LocalEspnServer() as espn:
        espn.set_scoreboard("nfl", {"events": []})
        espn.set_scoreboard("nfl", missed, day=d1.strftime("%Y%m%d"))
        (tmp_path / "data_sources.yaml").write_text(f"espn:\n  base_url: {espn.base_url}\n  backfill_days: 5\n"
                                                    "  requests_per_minute: 600\n")
        settings = load_ingest_settings(load_config(tmp_path, use_env=False, use_overrides=False, environ={}), ["nfl"])
        once = IngestOptions(venue="local", markets=False, once=True)
        first = asyncio.run(run_ingest(db_url, settings, once, alerts=RecordingAlerts()))
        days = [r.query.get("dates", [None])[0] for r in espn.requests_for("nfl")]
        assert days == [None, d1.strftime("%Y%m%d")]  # the current scoreboard, then the missed day only
        assert [p["date"] for p in first.game_polls] == days and first.game_polls[1]["changed"] == 1
        row = db.execute("SELECT status, home_score, away_score FROM game_states WHERE external_game_id = %s"
                         " AND row_current_ind", (GAME,)).fetchone()
        assert row == ("final", 8, 26)
        asyncio.run(run_ingest(db_url, settings, once, alerts=RecordingAlerts()))
        assert [r.query.get("dates", [None])[0] for r in espn.requests_for("nfl")][2:] == [None]


def test_a_restart_stores_the_finals_it_missed_and_elo_plays_them_in_order(
        db_url: str, db: psycopg.Connection[Any], espn_samples: dict[str, bytes], tmp_path: Path) -> None:
    today = datetime.now(EASTERN).date()
    d1, d2 = today - timedelta(days=3), today - timedelta(days=2)
    store = GameStateStore(db)
    # the process stopped while SF at CLE was live; a later CLE game was stored and rated meanwhile (another
    # process, a manual `--date` run): the missed final must go before it
    store.write([_state(GAME, d1, "CLE", "SF", 7, 10, "live")], datetime.now(UTC))
    later = _state("later", d2, "CLE", "PIT", 20, 17, "final")
    store.write([later], datetime.now(UTC))
    start = dict(db.execute("SELECT team_code, current_elo_rating FROM teams WHERE sport = 'nfl'").fetchall())
    assert [g.game_key for g in update_from_results(db).applied] == ["espn:nfl:later"]

    sample = json.loads(espn_samples["nfl"])
    missed = copy.deepcopy(sample)
    missed["events"] = [e for e in missed["events"] if e["id"] == GAME]
    stamp = f"{d1.isoformat()}T18:00Z"
    missed["events"][0]["date"] = stamp
    competition(missed, GAME)["date"] = stamp
    with LocalEspnServer() as espn:
        espn.set_scoreboard("nfl", {"events": []})  # today's scoreboard: nothing
        espn.set_scoreboard("nfl", missed, day=d1.strftime("%Y%m%d"))
        (tmp_path / "data_sources.yaml").write_text(f"espn:\n  base_url: {espn.base_url}\n  backfill_days: 5\n"
                                                    "  requests_per_minute: 600\n")
        settings = load_ingest_settings(load_config(tmp_path, use_env=False, use_overrides=False, environ={}), ["nfl"])
        assert settings.espn_backfill_days == 5
        settings = dataclasses.replace(settings, elo_update_interval_seconds=0.5)
        alerts = RecordingAlerts()

        def rebuilt() -> bool:
            with connect(db_url, autocommit=True) as c:
                return c.execute("SELECT count(*) FROM elo_rating_history WHERE game_key = %s",
                                 (f"espn:nfl:{GAME}",)).fetchone() == (2,)

        async def scenario() -> Any:
            stop = asyncio.Event()
            task = asyncio.create_task(run_ingest(db_url, settings, IngestOptions(venue="local", markets=False),
                                                  alerts=alerts, stop=stop))
            try:
                deadline = clock.monotonic() + 45
                while not await asyncio.to_thread(rebuilt):
                    assert clock.monotonic() < deadline, "the missed final never reached the Elo ratings"
                    await asyncio.sleep(0.1)
            finally:
                stop.set()
            return await task

        report = asyncio.run(scenario())
        days = [r.query.get("dates", [None])[0] for r in espn.requests_for("nfl")]

    # ESPN's current scoreboard first (live data is not held back), then one request per missed day: from the day
    # of the game left live through yesterday
    assert days[:4] == [None, d1.strftime("%Y%m%d"), d2.strftime("%Y%m%d"),
                        (today - timedelta(days=1)).strftime("%Y%m%d")]
    assert all(d is None for d in days[4:])
    assert [p["date"] for p in report.game_polls[:4]] == days[:4] and report.game_polls[1]["changed"] == 1
    row = db.execute("SELECT status, home_score, away_score FROM game_states WHERE external_game_id = %s"
                     " AND row_current_ind", (GAME,)).fetchone()
    assert row == ("final", 8, 26)
    assert alerts.of_type("elo_update_failed") == []

    # the ratings are those of the two games played in order, and the history says so
    config = EloConfig.model_validate(get_model(db, "elo_nfl").config)
    ratings = EloRatings(config, {code: float(r) for code, r in start.items()})
    expected: dict[str, float] = {}
    season = later.start_time.year if later.start_time.month >= 3 else later.start_time.year - 1
    games = [Game(row=0, date=d1, season=season, team1="CLE", team2="SF", score1=8, score2=26),
             Game(row=1, date=d2, season=season, team1="CLE", team2="PIT", score1=20, score2=17)]
    for f in replay(games, ratings):
        expected[f.team1], expected[f.team2] = f.rating1_after, f.rating2_after
    stored = dict(db.execute("SELECT team_code, current_elo_rating FROM teams WHERE sport = 'nfl'").fetchall())
    for code in ("CLE", "SF", "PIT"):
        assert float(stored[code]) == pytest.approx(expected[code], abs=0.02), code
    keys = [r[0] for r in db.execute("SELECT game_key FROM elo_rating_history WHERE game_key LIKE 'espn:%%'"
                                     " ORDER BY history_id").fetchall()]
    assert keys == [f"espn:nfl:{GAME}"] * 2 + ["espn:nfl:later"] * 2
    assert db.execute("SELECT from_date, rows_removed FROM elo_rating_rebuilds").fetchall() == [(d1, 2)]
