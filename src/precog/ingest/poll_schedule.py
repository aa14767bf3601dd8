"""Adaptive ESPN polling: fast only while games are live (spec 5.12, data_sources.yaml).

crunch (last 2 minutes of regulation or overtime) 5 s; live 15 s; halftime or suspended 30 s; a game about to start
(or past its start time but not yet live) 30 s; games later today 300 s; nothing left to play 600 s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from precog.feeds.game_state import GameState

REGULATION_PERIODS = {"nfl": 4, "ncaaf": 4, "nba": 4, "mlb": 9}


@dataclass(frozen=True, slots=True)
class PollSchedule:
    crunch_seconds: float = 5.0
    live_seconds: float = 15.0
    halftime_seconds: float = 30.0
    pregame_seconds: float = 30.0
    pregame_window_seconds: float = 600.0  # "about to start"
    idle_seconds: float = 300.0  # games later, nothing live
    done_seconds: float = 600.0  # every game final (or none at all)
    crunch_clock_seconds: int = 120

    def interval(self, games: Iterable[GameState], now: datetime) -> float:
        """Seconds until the next poll of one sport's scoreboard, given its current games."""
        best = self.done_seconds
        for game in games:
            best = min(best, self._for_game(game, now))
        return best

    def _for_game(self, game: GameState, now: datetime) -> float:
        if game.status == "live":
            return self.crunch_seconds if self.is_crunch(game) else self.live_seconds
        if game.status in ("halftime", "suspended"):  # paused: it resumes, but not within seconds
            return self.halftime_seconds
        if game.status == "scheduled":
            if game.start_time - now <= timedelta(seconds=self.pregame_window_seconds):
                return self.pregame_seconds
            return self.idle_seconds
        return self.done_seconds

    def is_crunch(self, game: GameState) -> bool:
        regulation = REGULATION_PERIODS.get(game.sport, 4)
        if game.period > regulation:
            return True  # overtime / extra innings
        if game.sport == "mlb":
            return game.period == regulation
        return (game.period == regulation and game.clock_seconds is not None
                and game.clock_seconds <= self.crunch_clock_seconds)
