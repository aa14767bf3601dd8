"""Adaptive polling: fast only while games are live."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from precog.feeds.game_state import GameState
from precog.ingest.poll_schedule import PollSchedule

NOW = datetime(2025, 11, 30, 18, 0, tzinfo=UTC)


def g(status: str, *, sport: str = "nfl", period: int = 1, clock: int | None = 900,
      start: datetime = NOW) -> GameState:
    base = GameState(sport="nfl", game_id="1", start_time=start, name="", short_name="", home_team="A",
                     away_team="B", home_team_id="1", away_team_id="2", home_team_name="", away_team_name="",
                     status="live", status_detail="", period=1, clock_seconds=900, display_clock="", home_score=0,
                     away_score=0)
    return dataclasses.replace(base, sport=sport, status=status, period=period, clock_seconds=clock,
                               start_time=start)


def test_intervals_follow_the_games() -> None:
    s = PollSchedule()
    assert s.interval([], NOW) == 600
    assert s.interval([g("final")], NOW) == 600
    assert s.interval([g("scheduled", start=NOW + timedelta(hours=5))], NOW) == 300
    assert s.interval([g("scheduled", start=NOW + timedelta(minutes=5))], NOW) == 30
    assert s.interval([g("scheduled", start=NOW - timedelta(minutes=5))], NOW) == 30  # late kickoff
    assert s.interval([g("halftime", period=2)], NOW) == 30
    assert s.interval([g("live", period=2)], NOW) == 15
    assert s.interval([g("live", period=4, clock=119)], NOW) == 5  # two-minute drill
    assert s.interval([g("live", period=5, clock=600)], NOW) == 5  # overtime
    assert s.interval([g("live", sport="mlb", period=9, clock=None)], NOW) == 5
    # the fastest game decides
    assert s.interval([g("final"), g("scheduled", start=NOW + timedelta(hours=5)), g("live", period=1)], NOW) == 15
