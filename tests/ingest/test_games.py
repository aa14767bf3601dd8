"""Live game ingestion end to end: local ESPN server -> quality checks -> game_states (SCD2) -> links."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from feeds.espn_testkit import RecordingAlerts, competition, sample_dict, set_score
from precog.db.connection import connect
from precog.feeds.espn import EspnClient
from precog.feeds.espn_server import LocalEspnServer
from precog.ingest import scd2
from precog.ingest.breaker import DataBreaker, PgBreakerStore, read_data_breaker
from precog.ingest.game_store import GameStateStore
from precog.ingest.games import GameFeed
from precog.ingest.poll_schedule import PollSchedule
from precog.ingest.quality import DataQualityMonitor

LIVE = "401772931"  # DEN @ WSH, 4th quarter in the NFL sample


def make_feed(espn_server: LocalEspnServer, db: psycopg.Connection[Any], alerts: RecordingAlerts, *,
              sports: tuple[str, ...] = ("nfl",), breaker: DataBreaker | None = None,
              schedule: PollSchedule | None = None, now: Any = None) -> GameFeed:
    client = EspnClient(espn_server.base_url, retries=0, retry_delay=0, min_interval=0)
    monitor = DataQualityMonitor(alerts=alerts, breaker=breaker)
    kwargs = {"now": now} if now is not None else {}
    return GameFeed(client, sports=sports, monitor=monitor, store=GameStateStore(db), schedule=schedule, **kwargs)


def versions(db: psycopg.Connection[Any], game_id: str, sport: str = "nfl") -> list[dict[str, Any]]:
    return scd2.history(db, scd2.GAME_STATES, (sport, game_id))


async def test_scoreboard_is_stored_and_unchanged_polls_write_nothing(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    espn_server.set_scoreboard("nfl", espn_samples["nfl"])
    feed = make_feed(espn_server, db, alerts)
    first = await feed.poll("nfl")
    assert first.ok and first.games == 16 and first.versions_written == 16
    row = versions(db, LIVE)[0]
    assert (row["home_team"], row["away_team"], row["home_score"], row["away_score"]) == ("WSH", "DEN", 17, 20)
    assert (row["period"], row["period_label"], row["clock_seconds"], row["time_remaining"]) == (4, "Q4", 522, "8:42")
    assert (row["possession"], row["status"]) == ("away", "live")
    meta = row["sport_metadata"]
    assert (meta["down"], meta["distance"], meta["yard_line"], meta["home_timeouts"]) == (1, 10, 80, 3)
    assert meta["espn_win_probability"]["home"] == "0.2822"  # exact, as a string in JSONB
    pre = versions(db, "401772821")[0]
    assert pre["status"] == "scheduled" and pre["sport_metadata"]["pregame_odds"]["details"] == "NE -7"
    assert first.next_poll_seconds == 15  # a game is live: fast polling

    second = await feed.poll("nfl")
    assert second.ok and second.changed == 0 and second.versions_written == 0
    assert len(versions(db, LIVE)) == 1
    assert db.execute("SELECT count(*) FROM game_states").fetchone()[0] == 16
    assert alerts.raised == []


async def test_score_change_is_a_new_version_with_point_in_time_reads(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    later = sample_dict(espn_samples, "nfl")
    set_score(later, LIVE, "home", 24)
    competition(later, LIVE)["status"].update({"clock": 301.0, "displayClock": "5:01"})
    espn_server.queue("nfl", espn_samples["nfl"], json.dumps(later))
    feed = make_feed(espn_server, db, alerts)
    await feed.poll("nfl")
    between = datetime.now(UTC)
    await asyncio.sleep(0.01)
    outcome = await feed.poll("nfl")
    assert outcome.changed == 1 and outcome.versions_written == 1
    history = versions(db, LIVE)
    assert [(v["home_score"], v["clock_seconds"], v["row_current_ind"]) for v in history] == [
        (17, 522, False), (24, 301, True)]
    assert history[0]["row_end_ts"] == history[1]["created_at"]
    then = scd2.as_of(db, scd2.GAME_STATES, ("nfl", LIVE), between)
    assert then is not None and then["home_score"] == 17
    assert feed.latest[("nfl", LIVE)].home_score == 24


async def test_score_going_down_is_held_back_alerted_then_accepted_as_correction(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    lower = sample_dict(espn_samples, "nfl")
    set_score(lower, LIVE, "away", 13)  # 20 -> 13: a touchdown taken off the board
    espn_server.queue("nfl", espn_samples["nfl"], json.dumps(lower))
    feed = make_feed(espn_server, db, alerts)
    await feed.poll("nfl")
    held = await feed.poll("nfl")
    assert held.rejected == 1 and held.versions_written == 0
    assert [v["away_score"] for v in versions(db, LIVE)] == [20]  # the last good state stays current
    [alert] = alerts.of_type("data_quality")
    assert alert["details"]["check"] == "score_decrease" and "20 -> 13" in alert["message"]
    await feed.poll("nfl")
    accepted = await feed.poll("nfl")  # third identical reading: a real correction
    assert accepted.versions_written == 1
    current = versions(db, LIVE)[-1]
    assert current["away_score"] == 13 and current["sport_metadata"]["corrected"] is True


async def test_schema_drift_alerts_and_trips_the_data_breaker(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db_url: str, db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    espn_server.queue("nfl", espn_samples["nfl"], b'{"sports": "renamed"}')
    breaker = DataBreaker(threshold=3, alerts=alerts, store=PgBreakerStore(lambda: connect(db_url)))
    feed = make_feed(espn_server, db, alerts, breaker=breaker)
    assert (await feed.poll("nfl")).ok
    for _ in range(3):
        bad = await feed.poll("nfl")
        assert not bad.ok and "events: missing" in bad.error
    drift = [a for a in alerts.of_type("data_quality") if a["details"]["check"] == "schema_drift"]
    assert len(drift) == 3 and "espn:nfl" in drift[0]["message"]
    assert breaker.is_open()
    status = read_data_breaker(db)
    assert status.open and status.event_id == breaker.event_id
    assert [a["severity"] for a in alerts.of_type("circuit_breaker")] == ["critical"]
    assert len(versions(db, LIVE)) == 1  # nothing was overwritten by the bad payloads


async def test_one_bad_game_does_not_stop_the_others(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    data = sample_dict(espn_samples, "nfl")
    competition(data, LIVE)["competitors"][0]["score"] = None  # missing score on a live game
    espn_server.set_scoreboard("nfl", json.dumps(data))
    outcome = await make_feed(espn_server, db, alerts).poll("nfl")
    assert outcome.ok and outcome.games == 15 and outcome.schema_errors == 1
    assert versions(db, LIVE) == []
    [alert] = alerts.of_type("data_quality")
    assert "competitors[0].score: missing" in alert["message"] and alert["details"]["game_id"] == LIVE


async def test_feed_outage_marks_live_games_stale(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    clock = {"now": datetime.now(UTC)}
    espn_server.set_scoreboard("nfl", espn_samples["nfl"])
    feed = make_feed(espn_server, db, alerts, now=lambda: clock["now"])
    await feed.poll("nfl")
    espn_server.set_scoreboard("nfl", b"{}", status=503)
    clock["now"] += timedelta(seconds=30)
    failed = await feed.poll("nfl")
    assert not failed.ok and "HTTP 503" in failed.error and alerts.raised == []  # 30 s old: still fresh
    clock["now"] += timedelta(seconds=40)
    await feed.poll("nfl")
    stale = alerts.of_type("data_quality")
    assert [(a["details"]["check"], a["details"]["key"]) for a in stale] == [("stale_game", LIVE)]
    assert feed.latest[("nfl", LIVE)].home_score == 17  # last known state kept


async def test_restart_resumes_from_stored_states(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    espn_server.set_scoreboard("nfl", espn_samples["nfl"])
    await make_feed(espn_server, db, alerts).poll("nfl")
    restarted = make_feed(espn_server, db, alerts)
    assert restarted.latest[("nfl", LIVE)].metadata["espn_win_probability"]["home"] == Decimal("0.2822")
    outcome = await restarted.poll("nfl")
    assert outcome.changed == 0 and outcome.versions_written == 0


async def test_polling_is_fast_only_while_games_are_live(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    espn_server.set_scoreboard("nba", espn_samples["nba"])  # one game live
    espn_server.set_scoreboard("ncaaf", espn_samples["ncaaf"])  # every game final
    schedule = PollSchedule(crunch_seconds=0.05, live_seconds=0.05, halftime_seconds=0.05, pregame_seconds=0.05,
                            idle_seconds=30, done_seconds=30)
    feed = make_feed(espn_server, db, alerts, sports=("nba", "ncaaf"), schedule=schedule)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    await asyncio.sleep(0.6)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(espn_server.requests_for("nba")) >= 4
    assert len(espn_server.requests_for("ncaaf")) == 1
