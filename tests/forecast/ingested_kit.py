"""In-game states as ESPN ingestion stores them, for the tests of what is learned from them (holds no tests)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import psycopg

from precog.feeds.game_state import GameState
from precog.ingest.game_store import GameStateStore


def live_state(game_id: str, kickoff: datetime, **changes: Any) -> GameState:
    """Denver at Kansas City, live at kickoff with Kansas City's ball at its 25; `changes` move it on."""
    base = GameState(
        sport="nfl", game_id=game_id, start_time=kickoff, name="Denver at Kansas City", short_name="DEN @ KC",
        home_team="KC", away_team="DEN", home_team_id="12", away_team_id="7", home_team_name="Chiefs",
        away_team_name="Broncos", status="live", status_detail="live", period=1, clock_seconds=900,
        display_clock="15:00", home_score=0, away_score=0, possession="home", down=1, distance=10, yard_line=25,
        yards_to_goal=75, home_timeouts=3, away_timeouts=3, neutral_site=False, metadata={})
    return dataclasses.replace(base, **changes)


def store_versions(db: psycopg.Connection[Any], *states: GameState) -> None:
    """Each state as the version one poll stored (30 s apart, from the first state's kickoff)."""
    store = GameStateStore(db)
    for i, state in enumerate(states):
        store.write([state], state.start_time + timedelta(seconds=30 * (i + 1)))
