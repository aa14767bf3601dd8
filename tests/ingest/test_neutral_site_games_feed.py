"""A neutral-site game through the live feed: its `game_states` row says so (migration 0012), a restarted feed
reads it back, a site correction is a new version, and a malformed flag is alerted with the last state kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from feeds.espn_testkit import RecordingAlerts, competition, sample_dict
from precog.feeds.espn_server import LocalEspnServer
from precog.ingest import scd2
from precog.ingest.games import GameFeed

NEUTRAL_GAME = "401752786"  # UGA vs GT at Mercedes-Benz Stadium (`neutralSite: true` in the college sample)
HOME_GAME = "401752921"  # OSU @ MICH at Michigan Stadium


@pytest.fixture
def make_ncaaf_feed(make_game_feed: Callable[[str], GameFeed]) -> Callable[[], GameFeed]:
    return lambda: make_game_feed("ncaaf")


def _with_neutral(espn_samples: dict[str, bytes], value: Any) -> str:
    data = sample_dict(espn_samples, "ncaaf")
    competition(data, NEUTRAL_GAME)["neutralSite"] = value
    return json.dumps(data)


async def test_an_ingested_neutral_game_row_carries_it_and_a_restart_reads_it_back(
        make_ncaaf_feed: Callable[[], GameFeed], espn_server: LocalEspnServer, espn_samples: dict[str, bytes],
        db: psycopg.Connection[Any]) -> None:
    espn_server.set_scoreboard("ncaaf", espn_samples["ncaaf"])
    outcome = await make_ncaaf_feed().poll("ncaaf")
    assert outcome.ok and outcome.schema_errors == 0
    neutral = scd2.current(db, scd2.GAME_STATES, ("ncaaf", NEUTRAL_GAME))
    home = scd2.current(db, scd2.GAME_STATES, ("ncaaf", HOME_GAME))
    assert neutral is not None and neutral["neutral_site"] is True
    assert home is not None and home["neutral_site"] is False
    flagged = db.execute("SELECT external_game_id FROM current_game_states WHERE neutral_site").fetchall()
    assert flagged == [(NEUTRAL_GAME,)]

    restarted = make_ncaaf_feed()  # seeded from the stored rows
    assert restarted.latest[("ncaaf", NEUTRAL_GAME)].neutral_site is True
    assert restarted.latest[("ncaaf", HOME_GAME)].neutral_site is False
    again = await restarted.poll("ncaaf")
    assert again.changed == 0 and again.versions_written == 0  # the stored flag compares equal to ESPN's


async def test_a_site_correction_is_a_new_version(make_ncaaf_feed: Callable[[], GameFeed],
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any]) -> None:
    feed = make_ncaaf_feed()
    espn_server.set_scoreboard("ncaaf", _with_neutral(espn_samples, False))
    await feed.poll("ncaaf")
    espn_server.set_scoreboard("ncaaf", espn_samples["ncaaf"])
    corrected = await feed.poll("ncaaf")
    assert corrected.versions_written == 1
    rows = scd2.history(db, scd2.GAME_STATES, ("ncaaf", NEUTRAL_GAME))
    assert [r["neutral_site"] for r in rows] == [False, True]


async def test_a_string_flag_is_alerted_as_schema_drift_and_the_last_state_kept(
        make_ncaaf_feed: Callable[[], GameFeed], espn_server: LocalEspnServer, espn_samples: dict[str, bytes],
        db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    feed = make_ncaaf_feed()
    espn_server.set_scoreboard("ncaaf", espn_samples["ncaaf"])
    await feed.poll("ncaaf")
    espn_server.set_scoreboard("ncaaf", _with_neutral(espn_samples, "false"))
    outcome = await feed.poll("ncaaf")
    assert outcome.ok and outcome.schema_errors == 1
    [alert] = alerts.of_type("data_quality")
    assert alert["details"]["check"] == "schema_drift" and alert["details"]["game_id"] == NEUTRAL_GAME
    assert "competitions[0].neutralSite: 'false' is not a JSON boolean" in alert["message"]
    assert feed.latest[("ncaaf", NEUTRAL_GAME)].neutral_site is True
    rows = scd2.history(db, scd2.GAME_STATES, ("ncaaf", NEUTRAL_GAME))
    assert [r["neutral_site"] for r in rows] == [True]


async def test_a_missing_flag_keeps_the_games_state_flowing_and_is_alerted(
        make_ncaaf_feed: Callable[[], GameFeed], espn_server: LocalEspnServer, espn_samples: dict[str, bytes],
        db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    data = sample_dict(espn_samples, "ncaaf")
    del competition(data, HOME_GAME)["neutralSite"]
    espn_server.set_scoreboard("ncaaf", json.dumps(data))
    outcome = await make_ncaaf_feed().poll("ncaaf")
    assert outcome.ok and outcome.schema_errors == 0
    home = scd2.current(db, scd2.GAME_STATES, ("ncaaf", HOME_GAME))
    assert home is not None and home["neutral_site"] is False  # its score and clock are stored as ever
    [alert] = alerts.of_type("data_quality")
    assert alert["details"]["check"] == "schema_drift" and alert["details"]["game_ids"] == [HOME_GAME]
    assert "neutralSite missing: read as home games" in alert["message"]
