"""Live game ingestion writes a game_states version exactly when a stored column changes: a moved kickoff
(or changed teams, status detail) is a change; the same reading again, after an accepted correction, is not."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from feeds.espn_testkit import RecordingAlerts, sample_dict, set_score
from precog.feeds.espn_parse import parse_scoreboard
from precog.feeds.espn_server import LocalEspnServer
from precog.ingest import scd2
from precog.ingest.game_store import change_key
from precog.ingest.games import GameFeed

LIVE = "401772931"  # DEN @ WSH, 4th quarter in the NFL sample
MNF = "401772821"  # NYG @ NE, scheduled, 2025-12-02T01:15Z in the NFL sample


def test_change_key_covers_every_column_the_writer_compares(espn_samples: dict[str, bytes]) -> None:
    """Kickoff time, team codes/ids/names and status detail change the key, like the SCD2 compare does."""
    game = next(g for g in parse_scoreboard(espn_samples["nfl"], "nfl").games if g.game_id == MNF)
    for changed in (replace(game, start_time=datetime(2025, 12, 2, 20, 0, tzinfo=UTC)),
                    replace(game, home_team="NEP"), replace(game, away_team_id="999"),
                    replace(game, home_team_name="TBD"), replace(game, status_detail="Delayed")):
        assert change_key(changed) != change_key(game), changed
    assert change_key(replace(game, metadata=dict(reversed(game.metadata.items())))) == change_key(game)


async def test_a_moved_kickoff_is_stored(make_nfl_feed: Callable[[], GameFeed], espn_server: LocalEspnServer, espn_samples: dict[str, bytes],
                                         db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    """ESPN moves a scheduled game's kickoff (flexed / delayed) with nothing else changed: a new version."""
    moved = sample_dict(espn_samples, "nfl")
    next(e for e in moved["events"] if e["id"] == MNF)["date"] = "2025-12-02T20:00Z"  # was 01:15Z
    espn_server.queue("nfl", espn_samples["nfl"], json.dumps(moved))
    feed = make_nfl_feed()
    await feed.poll("nfl")
    outcome = await feed.poll("nfl")
    assert outcome.versions_written == 1
    current = scd2.current(db, scd2.GAME_STATES, ("nfl", MNF))
    assert current is not None and current["start_time"] == datetime(2025, 12, 2, 20, 0, tzinfo=UTC)
    assert len(scd2.history(db, scd2.GAME_STATES, ("nfl", MNF))) == 2


async def test_identical_readings_after_a_correction_write_no_new_version(make_nfl_feed: Callable[[], GameFeed],
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    """A score correction accepted after three identical regressive readings is stored with
    metadata.corrected; the same reading again is no change: no new version, the marker stays current,
    also for a feed restarted from the database."""
    lower = sample_dict(espn_samples, "nfl")
    set_score(lower, LIVE, "away", 13)  # 20 -> 13
    espn_server.queue("nfl", espn_samples["nfl"], json.dumps(lower))
    feed = make_nfl_feed()
    for _ in range(4):  # original, then three identical regressive readings -> accepted as a correction
        await feed.poll("nfl")
    history = scd2.history(db, scd2.GAME_STATES, ("nfl", LIVE))
    assert [v["away_score"] for v in history] == [20, 13] and history[-1]["sport_metadata"]["corrected"] is True
    again = await feed.poll("nfl")  # the very same payload once more
    history = scd2.history(db, scd2.GAME_STATES, ("nfl", LIVE))
    assert again.versions_written == 0 and len(history) == 2, (
        f"identical reading wrote {again.versions_written} version(s); versions now "
        f"{[(v['away_score'], v['sport_metadata'].get('corrected')) for v in history]}")
    assert feed.latest[("nfl", LIVE)].metadata["corrected"] is True

    restarted = make_nfl_feed()  # seeded from the stored correction
    assert (await restarted.poll("nfl")).versions_written == 0
    assert len(scd2.history(db, scd2.GAME_STATES, ("nfl", LIVE))) == 2

    later = sample_dict(espn_samples, "nfl")
    set_score(later, LIVE, "away", 16)  # play goes on: a new, ordinary version
    espn_server.set_scoreboard("nfl", json.dumps(later))
    assert (await restarted.poll("nfl")).versions_written == 1
    current = scd2.current(db, scd2.GAME_STATES, ("nfl", LIVE))
    assert current is not None and current["away_score"] == 16 and "corrected" not in current["sport_metadata"]
