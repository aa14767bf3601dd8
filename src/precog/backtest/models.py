"""Forecast models as a backtest runs them: trained only on what the clock allows, updated only from
released events.

- `elo`: precog.forecast's Elo ratings, (re)trained with `precog.forecast.elo.replay` on the games of the
  training window read through the GuardedArchive, then updated online by each released result.
- `closing_line`: the market's own price (the closing line). Trading it can only lose the fees: the
  honesty baseline.
- `wp`: precog.forecast's in-game win-probability model, re-trained (`precog.forecast.winprob.train`, the
  shipped recipe, every training game used) on the play-by-play of the training window's games read
  through the GuardedArchive, scored on the released play-by-play state. A window without enough plays
  leaves it untrained: it then forecasts nothing (never the shipped artefact, which has seen 2020-2022).

Every model describes the version it traded with (`describe()`), stored with the run per window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from precog.backtest.feed import FINAL, ArchivedGame, Event, GuardedArchive
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
    version: int = 0  # bumped by the world on every change to the fields above (keys its forecast cache)
    # for the report (never read by models): when each `history` value was quoted, and the game's first state
    history_ms: list[int] = field(default_factory=list)
    started_ms: int | None = None

    @property
    def phase(self) -> str:
        if self.final:
            return "final"
        return "live" if self.state is not None else "pre_game"


class BacktestModel(Protocol):
    """A forecast model as a backtest runs it.

    A model may declare `reads_clock = False`: its `estimate` is then a function of the game it is given and
    of its own state alone (never of `now_ms`), and its state changes only in `train` and in an `observe`
    that does not return False. The world then reuses its last estimate of a market until that game or the
    model changes (the engine re-decides every market each decision interval; most of those asks repeat).
    A model without the attribute is asked every time."""

    key: str

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        """(Re)train on results known in [start_ms, end_ms); returns the number of games used."""
        ...

    def observe(self, event: Event, game: GameInfo) -> bool | None:
        """Learn from a released event; False = the model's state did not change (anything else: it may have)."""
        ...

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        ...


def describe(model: BacktestModel) -> dict[str, Any]:
    """What the model traded with in a window: {version, status (trained | untrained | fixed), games, note}.
    Models without `describe` (tests' own) are reported as such."""
    fn = getattr(model, "describe", None)
    if fn is None:
        return {"version": f"{model.key} (no version information)", "status": "fixed", "games": 0, "note": None}
    info: dict[str, Any] = fn()
    return info


def _span(games: Sequence[ArchivedGame]) -> dict[str, Any]:
    """The training games' dates and a digest of their ids (which games, not just how many)."""
    ids = sorted(g.game_id for g in games)
    return {"games": len(games), "first_game": str(min(g.day for g in games)) if games else None,
            "last_game": str(max(g.day for g in games)) if games else None,
            "games_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] if ids else None}


def _game(g: Any, row: int = 0) -> Game:
    return Game(row, g.day if isinstance(g.day, date) else date.fromisoformat(str(g.day)), int(g.season), g.home,
                g.away, bool(g.neutral), bool(g.playoff), int(g.home_score), int(g.away_score))


class EloModel:
    key = "elo"
    reads_clock = False

    def __init__(self, config: EloConfig | None = None) -> None:
        self.config = config or TUNED_NFL_CONFIG
        self.ratings = EloRatings(self.config, allow_new_teams=True)
        self.trained_on = 0
        self.online_updates = 0
        self.training: dict[str, Any] = _span([])

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        self.ratings = EloRatings(self.config, allow_new_teams=True)
        archived = archive.finished_between(start_ms, end_ms)
        games = [_game(g, i) for i, g in enumerate(archived)]
        replay(games, self.ratings, path="backtest training window")
        self.trained_on = len(games)
        self.training = _span(archived)
        return len(games)

    def describe(self) -> dict[str, Any]:
        t = self.training
        if not t["games"]:
            return {"version": "elo_nfl@v1.0 config, initial ratings", "status": "untrained", **t,
                    "note": "no results in the training window: every team starts at the initial rating and the "
                            "ratings learn only from results released during the test window"}
        return {"version": f"elo_nfl@v1.0 config, retrained [{t['games_sha256']}]", "status": "trained", **t,
                "note": None}

    def observe(self, event: Event, game: GameInfo) -> bool:
        if event.kind != FINAL or "home_score" not in event.data or not game.schedule.get("away"):
            return False
        s = game.schedule
        g = Game(0, date.fromtimestamp(s["kickoff_ms"] / 1000), int(s["season"]), s["home"], s["away"],
                 bool(s["neutral"]), bool(s["playoff"]), int(event.data["home_score"]), int(event.data["away_score"]))
        self.ratings.play(g, s["home"], s["away"])
        self.online_updates += 1
        return True

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
    reads_clock = False

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0

    def describe(self) -> dict[str, Any]:
        return {"version": "closing_line_nfl@v1.0 (the market's price: nothing to train)", "status": "fixed",
                "games": 0, "note": None}

    def observe(self, event: Event, game: GameInfo) -> bool:
        return False

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        if game.final:
            return None
        p_home = game.fair if game.schedule.get("yes_is_home", True) else 1 - game.fair
        return Estimate(p_home, "medium")


class _EloStrength:
    """Pre-game strength for the WP model (Elo rating difference as a logit), from the training window's
    results and the results released since: the live counterpart of the in-file strength it trained with."""

    def __init__(self, config: EloConfig) -> None:
        self.config = config
        self.ratings = EloRatings(config, allow_new_teams=True)
        self.season: int | None = None

    def strength(self, posteam: str, defteam: str, season: int | None = None) -> float:
        from precog.forecast.winprob import strength_logit

        s = season if season is not None else self.season
        return strength_logit(self.ratings.rating(posteam, s), self.ratings.rating(defteam, s), self.config.scale)


# Fitted WP models by (training games, recipe): A/B lanes and repeated runs over one window fit once.
_WP_FITS: dict[tuple[str, str], Any] = {}
MIN_WP_TRAINING_PLAYS = 1000  # as `precog forecast wp train` requires


class WinProbabilityModel:
    """The in-game WP model, re-trained on each training window's play-by-play (no look-ahead)."""

    key = "wp"
    reads_clock = False

    def __init__(self, config: Any = None) -> None:
        from precog.forecast.builtin import load_builtin_wp

        # the shipped recipe (time knots, L2, Platt calibration, Elo strength), fitted on every training game
        self.config = config or load_builtin_wp().config.model_copy(
            update={"holdout_fraction": 0.0, "training_data_sha256": None, "training_file": None})
        self.forecaster: Any = None
        self.strength = _EloStrength(self.config.strength_elo)
        self.trained_on = 0
        self.training: dict[str, Any] = _span([])
        self.train_plays = 0
        self.version: str | None = None
        self.note: str | None = None
        self.train_game_ids: list[str] = []  # archive ids of the games whose plays it was fitted on

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        from precog.forecast import winprob
        from precog.forecast.errors import ForecastError
        from precog.forecast.interface import WpForecaster

        self.forecaster, self.version, self.note, self.train_plays = None, None, None, 0
        self.strength = _EloStrength(self.config.strength_elo)
        games, plays = archive.plays_between(start_ms, end_ms)
        self.training = _span(games)
        self.train_game_ids = sorted(g.game_id for g in games)
        self.trained_on = 0
        if plays is None:
            self.note = ("cannot be trained on this window: no play-by-play of games finished in the training "
                         "window (the plays file covers 2020-2022); it makes no forecasts here")
            return 0
        key = (hashlib.sha256("\n".join(self.train_game_ids).encode()).hexdigest(),
               self.config.model_dump_json())
        model = _WP_FITS.get(key)
        if model is None:
            if len(plays) < MIN_WP_TRAINING_PLAYS:
                self.note = (f"cannot be trained on this window: only {len(plays)} plays of {len(games)} games in "
                             f"the training window (at least {MIN_WP_TRAINING_PLAYS} needed); it makes no forecasts "
                             "here")
                return 0
            try:
                model = winprob.train(plays, self.config).model
            except ForecastError as exc:
                self.note = f"cannot be trained on this window: {exc}; it makes no forecasts here"
                return 0
            if len(_WP_FITS) >= 8:
                _WP_FITS.pop(next(iter(_WP_FITS)))
            _WP_FITS[key] = model
        digest = hashlib.sha256(model.coef.tobytes() + model.ot_coef.tobytes()).hexdigest()[:12]
        self.version = f"wp_nfl@bt-{digest}"
        self.train_plays = len(plays)
        replay([_game(g, i) for i, g in enumerate(games)], self.strength.ratings, path="backtest training window")
        # duck-typed: WpForecaster only asks its Elo for strength(home, away)
        self.forecaster = WpForecaster(model, self.strength, model_ref=self.version)  # type: ignore[arg-type]
        self.trained_on = len(games)
        return len(games)

    def describe(self) -> dict[str, Any]:
        if self.forecaster is None:
            return {"version": None, "status": "untrained", "plays": 0, **self.training, "note": self.note}
        return {"version": self.version, "status": "trained", "plays": self.train_plays, **self.training,
                "note": None}

    def observe(self, event: Event, game: GameInfo) -> bool:
        if self.forecaster is None or event.kind != FINAL or "home_score" not in event.data \
                or not game.schedule.get("away"):
            return False
        s = game.schedule
        g = Game(0, date.fromtimestamp(s["kickoff_ms"] / 1000), int(s["season"]), s["home"], s["away"],
                 bool(s["neutral"]), bool(s["playoff"]), int(event.data["home_score"]), int(event.data["away_score"]))
        self.strength.ratings.play(g, s["home"], s["away"])
        return True

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        from precog.forecast.state import SimpleState

        st = game.state
        if self.forecaster is None or st is None or game.final or not game.schedule.get("away"):
            return None
        s = game.schedule
        self.strength.season = int(s["season"])
        state = SimpleState(s["home"], s["away"], int(st["home_score"]), int(st["away_score"]), int(st["period"]),
                            int(st["clock_seconds"]), "live", st.get("possession"), st.get("down"),
                            st.get("distance"), int(st["yards_to_goal"]), int(st["home_timeouts"]),
                            int(st["away_timeouts"]))
        f = self.forecaster.predict_state(state, neutral=bool(s["neutral"]))  # neutral site: `home` feature 0
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
