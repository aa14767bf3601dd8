"""A suspended game through the live feed: stored as suspended (never postponed), resumes without a quality
alarm, is forecast from its state (not as a game yet to start); a possession id of neither team is alerted."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from feeds.espn_testkit import RecordingAlerts, competition, sample_dict
from precog.feeds.espn_parse import parse_scoreboard
from precog.feeds.espn_server import LocalEspnServer
from precog.feeds.game_state import GameState
from precog.forecast.builtin import load_builtin_wp
from precog.forecast.configs import EnsembleConfig
from precog.forecast.elo import TUNED_NFL_CONFIG
from precog.forecast.interface import EloForecaster, EnsembleForecaster, WpForecaster, ratings_from_mapping
from precog.ingest import scd2
from precog.ingest.games import GameFeed
from precog.ingest.poll_schedule import PollSchedule

LIVE = "401772931"  # DEN @ WSH, 4th quarter in the NFL sample


def _with_status(espn_samples: dict[str, bytes], name: str, state: str) -> str:
    data = sample_dict(espn_samples, "nfl")
    competition(data, LIVE)["status"]["type"].update({"name": name, "state": state, "shortDetail": name})
    return json.dumps(data)


async def test_suspended_game_is_stored_as_suspended_and_resumes_without_alarm(make_nfl_feed: Callable[[], GameFeed],
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    feed = make_nfl_feed()
    espn_server.set_scoreboard("nfl", espn_samples["nfl"])
    await feed.poll("nfl")
    espn_server.set_scoreboard("nfl", _with_status(espn_samples, "STATUS_SUSPENDED", "in"))
    suspended = await feed.poll("nfl")
    assert suspended.ok and suspended.schema_errors == 0 and suspended.versions_written == 1
    espn_server.set_scoreboard("nfl", _with_status(espn_samples, "STATUS_IN_PROGRESS", "in"))
    resumed = await feed.poll("nfl")
    assert resumed.versions_written == 1
    rows = scd2.history(db, scd2.GAME_STATES, ("nfl", LIVE))
    assert [r["status"] for r in rows] == ["live", "suspended", "live"]
    assert all((r["home_score"], r["away_score"], r["period"]) == (17, 20, 4) for r in rows)
    assert alerts.raised == []  # live -> suspended -> live is not a status going backwards


def _suspended(espn_samples: dict[str, bytes]) -> GameState:
    board = parse_scoreboard(_with_status(espn_samples, "STATUS_SUSPENDED", "in"), "nfl")
    return next(g for g in board.games if g.game_id == LIVE)


def test_a_paused_game_is_polled_like_halftime(espn_samples: dict[str, bytes]) -> None:
    schedule = PollSchedule()
    assert schedule.interval([_suspended(espn_samples)], datetime.now(UTC)) == schedule.halftime_seconds


def test_a_suspended_game_is_forecast_from_its_state_not_as_a_game_yet_to_start(
        espn_samples: dict[str, bytes]) -> None:
    game = _suspended(espn_samples)
    elo = EloForecaster(TUNED_NFL_CONFIG, ratings_from_mapping({"WSH": 1480, "DEN": 1560}))
    ensemble = EnsembleForecaster(EnsembleConfig(), elo, WpForecaster(load_builtin_wp(), elo), [])
    forecast = ensemble.predict_state(game)
    assert forecast.details["phase"] == "in_game" and "winprob" in forecast.components


async def test_possession_of_neither_team_is_alerted_as_schema_drift_and_the_last_state_kept(make_nfl_feed: Callable[[], GameFeed],
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    feed = make_nfl_feed()
    espn_server.set_scoreboard("nfl", espn_samples["nfl"])
    await feed.poll("nfl")
    data = sample_dict(espn_samples, "nfl")
    competition(data, LIVE)["situation"]["possession"] = "999"
    espn_server.set_scoreboard("nfl", json.dumps(data))
    outcome = await feed.poll("nfl")
    assert outcome.ok and outcome.schema_errors == 1
    [alert] = alerts.of_type("data_quality")
    assert alert["details"]["check"] == "schema_drift" and alert["details"]["game_id"] == LIVE
    assert "situation.possession: '999' is neither the home team id '28' nor the away team id '7'" in alert["message"]
    assert feed.latest[("nfl", LIVE)].possession == "away"
    assert len(scd2.history(db, scd2.GAME_STATES, ("nfl", LIVE))) == 1
