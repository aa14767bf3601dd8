"""Forecast models as a backtest runs them: trained only on what the clock allows, updated only from
released events.

- `elo`: precog.forecast's Elo ratings, (re)trained with `precog.forecast.elo.replay` on the games of the
  training window read through the GuardedArchive, then updated online by each released result.
- `closing_line`: the market's own price (the closing line). Trading it can only lose the fees: the
  honesty baseline.
- `wp`: precog.forecast's in-game win-probability model on the released play-by-play state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from precog.backtest.feed import FINAL, Event, GuardedArchive
from precog.engine.core import Estimate
from precog.forecast.elo import TUNED_NFL_CONFIG, EloConfig, EloRatings, replay
from precog.forecast.gamesfile import Game
from precog.forecast.interface import to_probability


@dataclass
class GameInfo:
    """What is known about one market's game at the simulated time (filled from released events only)."""

    ticker: str
    schedule: dict[str, Any]
    fair: Decimal  # the price the market quotes around now
    state: dict[str, Any] | None = None
    final: bool = False
    history: list[Decimal] = field(default_factory=list)

    @property
    def phase(self) -> str:
        if self.final:
            return "final"
        return "live" if self.state is not None else "pre_game"


class BacktestModel(Protocol):
    key: str

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        """(Re)train on results known in [start_ms, end_ms); returns the number of games used."""
        ...

    def observe(self, event: Event, game: GameInfo) -> None:
        ...

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        ...


def _game(g: Any, row: int = 0) -> Game:
    return Game(row, g.day if isinstance(g.day, date) else date.fromisoformat(str(g.day)), int(g.season), g.home,
                g.away, bool(g.neutral), bool(g.playoff), int(g.home_score), int(g.away_score))


class EloModel:
    key = "elo"

    def __init__(self, config: EloConfig | None = None) -> None:
        self.config = config or TUNED_NFL_CONFIG
        self.ratings = EloRatings(self.config, allow_new_teams=True)
        self.trained_on = 0
        self.online_updates = 0

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        self.ratings = EloRatings(self.config, allow_new_teams=True)
        games = [_game(g, i) for i, g in enumerate(archive.finished_between(start_ms, end_ms))]
        replay(games, self.ratings, path="backtest training window")
        self.trained_on = len(games)
        return len(games)

    def observe(self, event: Event, game: GameInfo) -> None:
        if event.kind != FINAL or "home_score" not in event.data or not game.schedule.get("away"):
            return
        s = game.schedule
        g = Game(0, date.fromtimestamp(s["kickoff_ms"] / 1000), int(s["season"]), s["home"], s["away"],
                 bool(s["neutral"]), bool(s["playoff"]), int(event.data["home_score"]), int(event.data["away_score"]))
        self.ratings.play(g, s["home"], s["away"])
        self.online_updates += 1

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        if game.phase != "pre_game" or not game.schedule.get("away"):
            return None  # a pre-game model has nothing to say once the game is under way (or without teams)
        s = game.schedule
        p = self.ratings.predict(s["home"], s["away"], season=int(s["season"]), neutral=bool(s["neutral"]),
                                 playoff=bool(s["playoff"]))
        return Estimate(to_probability(p), "medium")


class ClosingLineModel:
    """P(home) = the market's current fair value."""

    key = "closing_line"

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0

    def observe(self, event: Event, game: GameInfo) -> None:
        return None

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        if game.final:
            return None
        p_home = game.fair if game.schedule.get("yes_is_home", True) else 1 - game.fair
        return Estimate(p_home, "medium")


class WinProbabilityModel:
    """The shipped in-game WP model (precog.forecast) on the latest released state."""

    key = "wp"

    def __init__(self) -> None:
        from precog.forecast.builtin import load_builtin_wp
        from precog.forecast.interface import WpForecaster

        self.forecaster = WpForecaster(load_builtin_wp())

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0  # the shipped artefact was fitted on seasons before the plays file (docs/models.md)

    def observe(self, event: Event, game: GameInfo) -> None:
        return None

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        from precog.forecast.state import SimpleState

        st = game.state
        if st is None or game.final or not game.schedule.get("away"):
            return None
        s = game.schedule
        state = SimpleState(s["home"], s["away"], int(st["home_score"]), int(st["away_score"]), int(st["period"]),
                            int(st["clock_seconds"]), "live", st.get("possession"), st.get("down"),
                            st.get("distance"), int(st["yards_to_goal"]), int(st["home_timeouts"]),
                            int(st["away_timeouts"]))
        f = self.forecaster.predict_state(state)
        conf = "high" if int(st["period"]) >= 4 else "medium"
        return Estimate(f.probability, conf)


def builtin_models(keys: set[str]) -> dict[str, BacktestModel]:
    out: dict[str, BacktestModel] = {}
    if "elo" in keys:
        out["elo"] = EloModel()
    if "closing_line" in keys:
        out["closing_line"] = ClosingLineModel()
    if "wp" in keys:
        out["wp"] = WinProbabilityModel()
    return out
