"""Elo ratings kept current from the results ingestion stores (spec 7.3 auto-retraining, for Elo).

Before: `teams.current_elo_rating` moved only when someone ran `precog forecast elo train` on a 538-format file,
so every rating went stale as a season went on although ESPN's final scores were in `game_states`. Now
`precog forecast elo update` (and the ingestion process by itself) plays each new final result through the same
`EloRatings` maths a training replay uses, from the stored ratings, once per game.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time as clock
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from feeds.espn_testkit import RecordingAlerts, competition, load_samples, run_cli, sample_dict
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.feeds.espn_parse import parse_scoreboard
from precog.feeds.espn_server import LocalEspnServer
from precog.feeds.game_state import GameState
from precog.forecast.elo import EloConfig, EloRatings, replay, season_of
from precog.forecast.elo_store import store_replay
from precog.forecast.elo_update import EloAutoUpdater, update_from_results
from precog.forecast.errors import ForecastError
from precog.forecast.gamesfile import Game, read_games
from precog.forecast.interface import load_team_ratings
from precog.forecast.registry import create_model, ensure_builtin_models, get_model, transition
from precog.ingest.game_store import GameStateStore
from precog.ingest.runner import IngestOptions, run_ingest
from precog.ingest.settings import load_ingest_settings

EASTERN_1PM = time(17, 0, tzinfo=UTC)  # a 1 PM Eastern kickoff in the autumn (EDT) or 12 PM in winter


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(db_url, autocommit=True) as conn:
        ensure_builtin_models(conn)
        yield conn


def _final(game_id: str, day: date, home: str, away: str, home_score: int, away_score: int, *,
           neutral: bool = False, season_type: str | None = "regular", status: str = "final") -> GameState:
    return GameState(
        sport="nfl", game_id=game_id, start_time=datetime.combine(day, EASTERN_1PM), name=f"{away} at {home}",
        short_name=f"{away} @ {home}", home_team=home, away_team=away, home_team_id="1", away_team_id="2",
        home_team_name=home, away_team_name=away, status=status, status_detail="Final", period=4,  # type: ignore[arg-type]
        clock_seconds=0, display_clock="0:00", home_score=home_score, away_score=away_score, neutral_site=neutral,
        metadata={} if season_type is None else {"season_type": season_type})


def _store(db: psycopg.Connection[Any], *states: GameState) -> None:
    GameStateStore(db).write(list(states), datetime.now(UTC))


def _game(s: GameState, row: int, *, playoff: bool = False) -> Game:
    """The same game as a games-file row (538 codes: the replay maps WSH -> WAS, OAK -> LV itself)."""
    return Game(row=row, date=s.start_time.date(), season=season_of(s.start_time.date()), team1=s.home_team,
                team2=s.away_team, neutral=s.neutral_site, playoff=playoff, score1=s.home_score, score2=s.away_score)


def _ratings(db: psycopg.Connection[Any]) -> dict[str, Decimal]:
    return dict(db.execute("SELECT team_code, current_elo_rating FROM teams WHERE sport = 'nfl'").fetchall())


def _history(db: psycopg.Connection[Any], key: str | None = None) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT t.team_code, h.rating_before, h.rating_after, h.game_result, h.season, h.game_date, h.game_key"
        " FROM elo_rating_history h JOIN teams t USING (team_id)"
        " WHERE h.game_key LIKE 'espn:%%' AND (%s::text IS NULL OR h.game_key = %s) ORDER BY h.history_id",
        (key, key)).fetchall()


def _r2(x: float) -> Decimal:
    return Decimal(f"{x:.2f}")


def test_final_results_update_ratings_as_the_replay_does_once_each(db: psycopg.Connection[Any],
                                                                  shared_games_path: Path) -> None:
    record = get_model(db, "elo_nfl")
    config = EloConfig.model_validate(record.config)
    # seed as `precog forecast elo train` does: seasons 2011-2013 of 538's file (ends with the 2013 Super Bowl)
    seeded = [g for g in read_games(shared_games_path) if 2011 <= g.season <= 2013]
    store_replay(db, replay(seeded, EloRatings(config)), model_id=record.model_id, model_ref=record.ref,
                 k_factor=config.k_factor)
    before = load_team_ratings(db)
    assert before.last_season["SEA"] == 2013

    season = [
        _final("g1", date(2014, 9, 4), "SEA", "GB", 36, 16),               # both teams' first 2014 game: regressed
        _final("g2", date(2014, 9, 7), "WSH", "HOU", 6, 17),               # ESPN's WSH is teams.WAS
        _final("g3", date(2014, 9, 14), "SD", "SEA", 30, 21),
        _final("g4", date(2014, 9, 28), "MIA", "OAK", 38, 14, neutral=True),  # London: no home-field advantage
        _final("g5", date(2014, 10, 12), "CIN", "CAR", 37, 37),            # a tie is a result (0.5)
        _final("g6", date(2015, 1, 10), "SEA", "CAR", 31, 17, season_type="playoffs"),
    ]
    skipped = [
        _final("s1", date(2014, 1, 19), "SEA", "SF", 23, 17, season_type="playoffs"),  # already in the trained file
        _final("s2", date(2015, 1, 25), "AFC", "NFC", 32, 28, season_type="playoffs"),  # Pro Bowl: not in `teams`
        _final("s3", date(2014, 8, 7), "BUF", "NYG", 13, 17, season_type="preseason"),
        _final("s4", date(2014, 11, 2), "DAL", "ARI", 0, 0),
    ]
    live = _final("l1", date(2015, 1, 11), "DEN", "IND", 7, 10, status="live")
    _store(db, *season, *skipped, live)

    summary = update_from_results(db)

    expected = replay([_game(s, i, playoff=s.game_id == "g6") for i, s in enumerate(season)], before.as_elo(config))
    assert summary.model == record.ref
    assert [g.game_key for g in summary.applied] == [f"espn:nfl:{s.game_id}" for s in season]
    assert {s.game_key: s.reason for s in summary.skipped} == {
        "espn:nfl:s1": "rated_later", "espn:nfl:s2": "unknown_team", "espn:nfl:s3": "preseason",
        "espn:nfl:s4": "unscored"}
    for applied, f in zip(summary.applied, expected, strict=True):
        assert applied.p_home == pytest.approx(f.p_team1, abs=1e-12)
        assert (applied.home_after, applied.away_after) == pytest.approx((f.rating1_after, f.rating2_after), abs=1e-9)
    # the season regression happened at SEA's first 2014 game only, from its stored rating
    r = config.season_regression
    sea = float(before.ratings["SEA"])
    assert summary.applied[0].home_before == pytest.approx(sea * (1 - r) + config.regression_mean * r)
    assert summary.applied[2].away_before == pytest.approx(expected[0].rating1_after)
    # the playoff multiplier scales the rating difference (HFA included); the neutral game has no HFA
    g6 = summary.applied[5]
    diff = (g6.home_before - g6.away_before + config.home_field_advantage) * config.playoff_multiplier
    assert config.playoff_multiplier != 1.0 and g6.p_home == pytest.approx(1 / (1 + 10 ** (-diff / config.scale)))
    g4 = summary.applied[3]
    assert g4.p_home == pytest.approx(1 / (1 + 10 ** (-(g4.home_before - g4.away_before) / config.scale)))

    final = {}
    for f in expected:
        final[f.team1], final[f.team2] = f.rating1_after, f.rating2_after
    stored = _ratings(db)
    assert {code: stored[code] for code in final} == {code: _r2(x) for code, x in final.items()}
    assert stored["BUF"] == _r2(before.ratings["BUF"]) and stored["DAL"] == _r2(before.ratings["DAL"])
    meta = db.execute("SELECT metadata -> 'elo' FROM teams WHERE team_code = 'SEA'").fetchone()
    assert meta is not None and meta[0] == {"model": record.ref, "last_season": 2014, "last_game": "2015-01-10"}
    rows = _history(db)
    assert len(rows) == 12 and summary.history_rows_added == 12
    assert rows[2:4] == [("WAS", _r2(expected[1].rating1_before), _r2(expected[1].rating1_after), "loss", 2014,
                          date(2014, 9, 7), "espn:nfl:g2"),
                         ("HOU", _r2(expected[1].rating2_before), _r2(expected[1].rating2_after), "win", 2014,
                          date(2014, 9, 7), "espn:nfl:g2")]
    assert [row[3] for row in rows if row[6] == "espn:nfl:g5"] == ["tie", "tie"]

    # idempotent: nothing new, nothing applied again
    again = update_from_results(db)
    assert again.applied == [] and again.already_applied == 6 and again.history_rows_added == 0
    assert _ratings(db) == stored and len(_history(db)) == 12

    # a corrected final score (a new SCD2 version, still final) is not applied a second time
    _store(db, _final("g6", date(2015, 1, 10), "SEA", "CAR", 31, 20, season_type="playoffs"))
    assert db.execute("SELECT count(*) FROM game_states WHERE external_game_id = 'g6'").fetchone() == (2,)
    assert update_from_results(db).applied == [] and _ratings(db) == stored

    # the next final moves the two teams from their stored ratings
    now = load_team_ratings(db)
    nxt = _final("g7", date(2015, 1, 18), "SEA", "GB", 28, 22, season_type="playoffs")
    _store(db, nxt)
    [f7] = replay([_game(nxt, 0, playoff=True)], now.as_elo(config))
    third = update_from_results(db)
    assert [g.game_key for g in third.applied] == ["espn:nfl:g7"]
    assert third.teams == {"SEA": (pytest.approx(now.ratings["SEA"]), pytest.approx(f7.rating1_after)),
                           "GB": (pytest.approx(now.ratings["GB"]), pytest.approx(f7.rating2_after))}
    assert (_ratings(db)["SEA"], _ratings(db)["GB"]) == (_r2(f7.rating1_after), _r2(f7.rating2_after))


def test_cli_dry_run_reports_and_changes_nothing_then_applies(db: psycopg.Connection[Any]) -> None:
    _store(db, _final("d1", date(2025, 9, 7), "KC", "BAL", 27, 20), _final("d2", date(2025, 9, 7), "QQQ", "BUF", 3, 9))
    ratings = _ratings(db)

    dry = run_cli("forecast", "elo", "update", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["games_applied"] == 1 and report["skipped"] == {"unknown_team": 1}
    assert report["teams"]["KC"]["before"] == float(ratings["KC"]) and report["teams"]["KC"]["after"] > float(ratings["KC"])
    assert report["history_rows_added"] == 0
    assert _ratings(db) == ratings and _history(db) == []

    done = run_cli("forecast", "elo", "update")
    assert done.exit_code == 0, done.output
    assert "elo_nfl@v1.0: applied 1 final nfl results" in done.stdout and "added 2 elo_rating_history rows" in done.stdout
    assert f"{ratings['KC']}" in done.stdout and f"{report['teams']['KC']['after']:.2f}" in done.stdout
    assert "skipped espn:nfl:d2: home team 'QQQ' is not in the teams table" in done.stdout
    assert _ratings(db)["KC"] == Decimal(f"{report['teams']['KC']['after']:.2f}")

    for args, message in ((("--model", "wp_nfl"), "is a regression model, not an Elo model"),
                          (("--sport", "nba"), "no season calendar for sport 'nba'")):
        bad = run_cli("forecast", "elo", "update", *args)
        assert bad.exit_code == 1 and message in str(bad.exception), bad.output


def test_a_failed_automatic_update_alerts_once_per_sport_and_is_retried(db_url: str, db: psycopg.Connection[Any]) -> None:
    # two active Elo versions of the NFL, neither of which wrote the current ratings: which to update is unknown
    create_model(db, "elo_nfl", "v1.1", "elo", {"sport": "nfl", "k_factor": 25.0}, created_by="test")
    db.execute("UPDATE probability_models SET validation_sample_size = 1000 WHERE model_version = 'v1.1'"
               " AND model_name = 'elo_nfl'")  # as if `precog forecast evaluate --record` had run
    for target in ("testing", "active"):
        transition(db, "elo_nfl@v1.1", target, changed_by="test")
    _store(db, _final("f1", date(2025, 9, 7), "KC", "BAL", 27, 20))
    alerts = RecordingAlerts()
    now = [0.0]
    updater = EloAutoUpdater(lambda: connect(db_url, autocommit=True), ["nfl", "nba"], interval_seconds=600,
                             alerts=alerts, clock=lambda: now[0])
    assert updater.sports == ["nfl"]  # no season calendar, no Elo update for the NBA
    updater.note_finals("nfl", [])  # the first poll makes the sport due
    assert updater.update_now() == [] and updater.failures == 1
    [alert] = alerts.of_type("elo_update_failed")
    assert alert["severity"] == "medium" and alert["dedup_key"] == "elo_update_failed:nfl"
    assert "2 active Elo versions" in alert["message"] and "--model" in alert["message"]
    assert updater.pending == {"nfl"} and updater.due_in() == 600  # retried after the interval, not at once
    transition(db, "elo_nfl@v1.1", "deprecated", reason="test", changed_by="test")
    now[0] = 600.0
    [summary] = updater.update_now()
    assert [g.game_key for g in summary.applied] == ["espn:nfl:f1"] and len(alerts.raised) == 1


def _wait(check: Callable[[], bool], what: str, timeout: float = 45.0) -> Any:
    async def go() -> None:
        deadline = clock.monotonic() + timeout
        while not await asyncio.to_thread(check):
            if clock.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)
    return go()


def test_ingestion_applies_a_game_that_goes_final_within_the_run(db_url: str, db: psycopg.Connection[Any],
                                                                 shared_data: Path, tmp_path: Path) -> None:
    body = sample_dict(load_samples(shared_data), "nfl")
    states = {s.game_id: s for s in parse_scoreboard(json.dumps(body).encode(), "nfl").games}
    assert states["401772931"].status == "live" and sum(s.status == "final" for s in states.values()) == 14
    later = copy.deepcopy(body)
    done = competition(body, "401772785")["status"]  # another game's final status block
    event = next(e for e in later["events"] if e["id"] == "401772931")
    event["status"] = copy.deepcopy(done)
    comp = competition(later, "401772931")
    comp["status"] = copy.deepcopy(done)
    for c in comp["competitors"]:
        c["score"] = "24" if c["homeAway"] == "home" else "27"  # WSH 24, DEN 27

    with LocalEspnServer() as espn:
        espn.set_scoreboard("nfl", body)
        (tmp_path / "data_sources.yaml").write_text(
            f"espn:\n  base_url: {espn.base_url}\n  poll_live_seconds: 1\n  requests_per_minute: 600\n")
        (tmp_path / "probability_models.yaml").write_text("elo:\n  auto_update:\n    interval_minutes: 0.1\n")
        settings = load_ingest_settings(load_config(tmp_path, use_env=False, use_overrides=False, environ={}), ["nfl"])
        assert settings.elo_auto_update is True and settings.elo_update_interval_seconds == pytest.approx(6.0)
        settings = dataclasses.replace(settings, elo_update_interval_seconds=0.5)  # keep the test short
        seeded = load_team_ratings(db)
        config = EloConfig.model_validate(get_model(db, "elo_nfl").config)
        alerts = RecordingAlerts()

        def applied(n: int) -> Callable[[], bool]:
            return lambda: len({row[6] for row in _history(db)}) >= n

        async def scenario() -> Any:
            stop = asyncio.Event()
            task = asyncio.create_task(run_ingest(db_url, settings, IngestOptions(venue="local", markets=False),
                                                  alerts=alerts, stop=stop))
            try:
                await _wait(applied(14), "the 14 games already final to be applied")
                espn.set_scoreboard("nfl", later)
                await _wait(applied(15), "the game that went final to be applied")
            finally:
                stop.set()
            return await task

        report = asyncio.run(scenario())

    assert alerts.of_type("elo_update_failed") == []
    finals = sorted((s for s in states.values() if s.status == "final"), key=lambda s: (s.start_time, s.game_id))
    games = [Game(row=i, date=(s.start_time - timedelta(hours=5)).date(), season=2025, team1=s.home_team,
                  team2=s.away_team, neutral=s.neutral_site, score1=s.home_score, score2=s.away_score)
             for i, s in enumerate(finals)]
    expected: dict[str, float] = {}
    for f in replay(games, seeded.as_elo(config)):
        expected[f.team1], expected[f.team2] = f.rating1_after, f.rating2_after
    last = Game(row=0, date=date(2025, 11, 30), season=2025, team1="WSH", team2="DEN", score1=24, score2=27)
    [f] = replay([last], seeded.as_elo(config))  # neither team played another game on this scoreboard
    expected["WAS"], expected["DEN"] = f.rating1_after, f.rating2_after
    stored = _ratings(db)
    assert {code: stored[code] for code in expected} == {code: _r2(x) for code, x in expected.items()}
    assert _history(db, "espn:nfl:401772931")[0][:4] == ("WAS", _r2(f.rating1_before), _r2(f.rating1_after), "loss")
    assert sum(u["games_applied"] for u in report.elo_updates) == 15


def _replayed(db: psycopg.Connection[Any], start: dict[str, Decimal], *games: GameState) -> dict[str, float]:
    """The teams' ratings after `games` played in order from the `start` ratings (one season: no regression)."""
    config = EloConfig.model_validate(get_model(db, "elo_nfl").config)
    ratings = EloRatings(config, {code: float(r) for code, r in start.items()})
    for code, r in start.items():
        ratings.set_rating(code, float(r), 2025)
    out: dict[str, float] = {}
    for f in replay([_game(s, i) for i, s in enumerate(games)], ratings):
        out[f.team1], out[f.team2] = f.rating1_after, f.rating2_after
    return out


def test_a_result_stored_late_is_played_in_order_by_a_rebuild(db: psycopg.Connection[Any]) -> None:
    """ESPN's result of an earlier game reaches the database after a later game of one of its teams was rated
    (ingestion was down that day and its date was back-filled later): the plain update must skip it (Elo is
    order-dependent), says so with the command that repairs it, and `--rebuild-from` rates all of them in order."""
    # both teams' stored "last season" is 2025 so no season regression blurs the comparison
    db.execute("UPDATE teams SET metadata = coalesce(metadata, '{}'::jsonb) || '{\"elo\": {\"last_season\": 2025}}'"
               " WHERE sport = 'nfl'")
    start = _ratings(db)
    g1 = _final("r1", date(2025, 9, 7), "KC", "BAL", 27, 20)
    g3 = _final("r3", date(2025, 9, 21), "CIN", "KC", 17, 24)
    _store(db, g1, g3)
    assert len(update_from_results(db).applied) == 2
    late = _final("r2", date(2025, 9, 14), "KC", "DEN", 10, 30)
    _store(db, late)

    plain = run_cli("forecast", "elo", "update")
    assert plain.exit_code == 0, plain.output
    assert "skipped espn:nfl:r2: KC's rating already includes a game on 2025-09-21" in plain.stdout
    assert "--rebuild-from 2025-09-14` plays them in order" in " ".join(plain.stdout.split())
    in_wrong_order = _ratings(db)
    in_wrong_order_rows = [row[2] for row in _history(db, "espn:nfl:r3")]

    dry = json.loads(run_cli("forecast", "elo", "update", "--rebuild-from", "2025-09-14", "--dry-run",
                             "--json").stdout)
    assert dry["rebuilt_from"] == "2025-09-14" and dry["history_rows_removed"] == 2 and dry["games_applied"] == 2
    assert _ratings(db) == in_wrong_order and len(_history(db)) == 4  # a dry run takes nothing back

    done = run_cli("forecast", "elo", "update", "--rebuild-from", "2025-09-14")
    assert done.exit_code == 0, done.output
    assert "took back 2 elo_rating_history rows from 2025-09-14 on" in done.stdout
    assert "applied 2 final nfl results" in done.stdout and "rebuild-from" not in done.stdout.split("took back")[1]
    expected = _replayed(db, start, g1, late, g3)
    stored = _ratings(db)
    for code in ("KC", "BAL", "DEN", "CIN"):
        # the rebuild starts from the stored (cent-rounded) ratings, as every update does
        assert float(stored[code]) == pytest.approx(expected[code], abs=0.02), code
    assert stored["KC"] != in_wrong_order["KC"] and stored["DEN"] != start["DEN"]
    assert [(row[0], row[6]) for row in _history(db)] == [
        ("KC", "espn:nfl:r1"), ("BAL", "espn:nfl:r1"), ("KC", "espn:nfl:r2"), ("DEN", "espn:nfl:r2"),
        ("CIN", "espn:nfl:r3"), ("KC", "espn:nfl:r3")]
    meta = db.execute("SELECT metadata -> 'elo' ->> 'last_game' FROM teams WHERE team_code = 'KC'").fetchone()
    assert meta == ("2025-09-21",)
    again = update_from_results(db)  # nothing left out of order
    assert again.applied == [] and again.skipped == [] and _ratings(db) == stored
    # what the rebuild took back is archived, and the history stays append-only for everyone else
    [(from_date, removed, archived)] = db.execute(
        "SELECT from_date, rows_removed, removed_rows FROM elo_rating_rebuilds").fetchall()
    assert from_date == date(2025, 9, 14) and removed == 2
    assert sorted((r["game_key"], r["rating_after"]) for r in archived) == sorted(
        ("espn:nfl:r3", float(v)) for v in in_wrong_order_rows)
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        db.execute("DELETE FROM elo_rating_history")


def test_a_corrected_final_score_is_applied_by_a_rebuild_from_its_day(db: psycopg.Connection[Any]) -> None:
    db.execute("UPDATE teams SET metadata = coalesce(metadata, '{}'::jsonb) || '{\"elo\": {\"last_season\": 2025}}'"
               " WHERE sport = 'nfl'")
    start = _ratings(db)
    first, nxt = _final("c1", date(2025, 10, 5), "SEA", "TB", 35, 3), _final("c2", date(2025, 10, 12), "SEA", "HOU", 20, 19)
    _store(db, first, nxt)
    update_from_results(db)
    corrected = _final("c1", date(2025, 10, 5), "SEA", "TB", 21, 20)  # a big win was a one-point win
    _store(db, corrected)
    assert update_from_results(db).applied == []  # applied once: the plain update does not re-apply it
    summary = update_from_results(db, rebuild_from=date(2025, 10, 5))
    assert summary.history_rows_removed == 4 and [g.game_key for g in summary.applied] == ["espn:nfl:c1", "espn:nfl:c2"]
    assert (summary.applied[0].home_score, summary.applied[0].away_score) == (21, 20)
    expected = _replayed(db, start, corrected, nxt)
    stored = _ratings(db)
    for code in ("SEA", "TB", "HOU"):
        assert float(stored[code]) == pytest.approx(expected[code], abs=0.02), code
    # a team whose first rated game is taken back and not played again goes back to its rating before it
    _store(db, _final("c2", date(2025, 10, 12), "SEA", "HOU", 0, 0, status="postponed"))  # ESPN took it back
    update_from_results(db, rebuild_from=date(2025, 10, 12))
    assert _ratings(db)["HOU"] == start["HOU"] and _history(db, "espn:nfl:c2") == []


def test_a_rebuild_refuses_to_take_back_ratings_it_cannot_replay(db: psycopg.Connection[Any],
                                                                 shared_games_path: Path) -> None:
    record = get_model(db, "elo_nfl")
    config = EloConfig.model_validate(record.config)
    seeded = [g for g in read_games(shared_games_path) if g.season == 2013]
    store_replay(db, replay(seeded, EloRatings(config)), model_id=record.model_id, model_ref=record.ref,
                 k_factor=config.k_factor)
    ratings, rows = _ratings(db), db.execute("SELECT count(*) FROM elo_rating_history").fetchone()
    bad = run_cli("forecast", "elo", "update", "--rebuild-from", "2013-12-01")
    assert bad.exit_code == 1 and "are not ingested results" in str(bad.exception), bad.output
    assert "precog forecast elo train" in str(bad.exception)
    assert _ratings(db) == ratings and db.execute("SELECT count(*) FROM elo_rating_history").fetchone() == rows
    typo = run_cli("forecast", "elo", "update", "--rebuild-from", "12/01/2013")
    assert typo.exit_code == 1 and "--rebuild-from must be a date YYYY-MM-DD" in str(typo.exception)


def test_a_rebuild_refuses_a_season_order_it_cannot_restore(db: psycopg.Connection[Any]) -> None:
    """NYJ's only rated game is in the 2025 season; a 2024-season result of NYJ stored late cannot be played
    before it: NYJ's rating before its 2025 game (before that season's regression) is not in the history."""
    _store(db, _final("n25", date(2025, 9, 14), "NYJ", "BUF", 20, 17))
    assert [g.game_key for g in update_from_results(db).applied] == ["espn:nfl:n25"]
    ratings, rows = _ratings(db), _history(db)
    _store(db, _final("n24", date(2025, 1, 5), "NYJ", "MIA", 32, 20))  # the 2024 season's last week
    with pytest.raises(ForecastError, match="NYJ's first rated game from then on is in season 2025"):
        update_from_results(db, rebuild_from=date(2025, 1, 1))
    assert _ratings(db) == ratings and _history(db) == rows  # nothing taken back
