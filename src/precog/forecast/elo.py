"""Elo ratings: win expectancy, margin-of-victory updates, season regression, neutral sites, playoffs.

Everything a rating depends on comes from the model version's immutable config (`EloConfig`); the ratings
themselves are team state (stored in `teams.current_elo_rating`, ADR-030). `replay` walks a games file in
date order and forecasts each game from the ratings before it, then updates: an honest online forecast.

    E(team1) = 1 / (1 + 10^(-(R1 - R2 + HFA) / scale))         (HFA 0 at a neutral site)
    in playoffs the rating difference is multiplied by `playoff_multiplier`
    R' = R + K * mov_mult * (S - E)
    fivethirtyeight mov_mult = ln(max(|MOV|, 1) + 1) * 2.2 / (winner_diff * 0.001 + 2.2)
    new season: R = R * (1 - season_regression) + regression_mean * season_regression
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from precog.forecast.errors import ForecastError, UnknownTeamError
from precog.forecast.gamesfile import Game
from precog.forecast.teams import NFL_TEAM_CODES, canonical_team

MovMultiplier = Literal["fivethirtyeight", "log_capped", "none"]
# First month of a new season, per sport. Football seasons are named by the year they start (538's `season`)
# and end with the playoffs in January/February; from March on, games belong to the next season.
SEASON_START_MONTH: dict[str, int] = {"nfl": 3, "ncaaf": 3}


def regular_season_weeks(season: int) -> int:
    """Weeks of the NFL regular season: 17 through 2020, 18 since the 17-game schedule of 2021; the playoff
    rounds are numbered on after them (nflfastR's week column)."""
    return 17 if season <= 2020 else 18


class EloConfig(BaseModel):
    """Hyper-parameters of one Elo model version (frozen in `probability_models.config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sport: str = "nfl"
    k_factor: float = Field(default=20.0, gt=0, le=100)
    initial_rating: float = Field(default=1505.0, gt=0, lt=3000)
    home_field_advantage: float = Field(default=65.0, ge=-400, le=400)
    scale: float = Field(default=400.0, gt=0)
    mov_multiplier: MovMultiplier = "fivethirtyeight"
    season_regression: float = Field(default=1 / 3, ge=0, le=1)
    regression_mean: float = Field(default=1505.0, gt=0, lt=3000)
    playoff_multiplier: float = Field(default=1.0, gt=0, le=5)
    neutral_site_advantage: float = Field(default=0.0, ge=-400, le=400)


# FiveThirtyEight's published method (K 20, HFA 65, 1/3 regression to 1505).
FIVETHIRTYEIGHT_CONFIG = EloConfig()
# Tuned on seasons 1990-2009 only (docs/models.md), evaluated on 2010-2014: the shipped elo_nfl v1.0.
TUNED_NFL_CONFIG = EloConfig(k_factor=20.0, home_field_advantage=65.0, season_regression=0.45,
                             playoff_multiplier=1.4)


def season_of(day: date, sport: str = "nfl") -> int:
    """The season a game played on `day` belongs to (what a games file's `season` column says)."""
    first_month = SEASON_START_MONTH.get(sport)
    if first_month is None:
        raise ForecastError(f"no season calendar for sport {sport!r}: the game's season must be given explicitly "
                            f"(known calendars: {', '.join(sorted(SEASON_START_MONTH))})")
    return day.year if day.month >= first_month else day.year - 1


def win_expectancy(rating1: float, rating2: float, config: EloConfig, *, neutral: bool = False,
                   playoff: bool = False) -> float:
    """P(team1 wins) where team1 is at home unless `neutral`."""
    return 1.0 / (1.0 + 10.0 ** (-rating_difference(rating1, rating2, config, neutral=neutral, playoff=playoff)
                                 / config.scale))


def rating_difference(rating1: float, rating2: float, config: EloConfig, *, neutral: bool = False,
                      playoff: bool = False) -> float:
    diff = rating1 - rating2 + (config.neutral_site_advantage if neutral else config.home_field_advantage)
    if playoff:
        diff *= config.playoff_multiplier
    return diff


def mov_multiplier(config: EloConfig, margin: int, diff: float, result1: float) -> float:
    """Margin-of-victory multiplier of the K factor (`diff` is team1's rating difference incl. HFA)."""
    if config.mov_multiplier == "none":
        return 1.0
    points = max(abs(margin), 1)
    if config.mov_multiplier == "log_capped":
        return min(math.log(points + 1.0) / 2.0, 2.0)
    if result1 == 0.5:
        return math.log(points + 1.0) * 2.2
    winner_diff = diff if result1 == 1.0 else -diff
    # 538's autocorrelation correction: favourites that win big gain less than underdogs that do.
    return math.log(points + 1.0) * (2.2 / (winner_diff * 0.001 + 2.2))


@dataclass(frozen=True, slots=True)
class EloForecast:
    game: Game
    team1: str  # canonical codes
    team2: str
    p_team1: float
    rating1_before: float
    rating2_before: float
    rating1_after: float | None = None  # None for a game without a result
    rating2_after: float | None = None
    k_effective: float | None = None  # K x MOV multiplier used for the update


class EloRatings:
    """Mutable ratings of a set of teams under one config; knows each team's last season."""

    def __init__(self, config: EloConfig, initial: Mapping[str, float] | None = None, *,
                 allow_new_teams: bool = False) -> None:
        self.config = config
        self.ratings: dict[str, float] = {}
        self.last_season: dict[str, int] = {}
        self.games_played: dict[str, int] = {}
        self.allow_new_teams = allow_new_teams
        if initial is None:
            initial = {code: config.initial_rating for code in NFL_TEAM_CODES} if config.sport == "nfl" else {}
            if config.sport != "nfl":
                self.allow_new_teams = True
        self.initial = {canonical_team(k, config.sport): float(v) for k, v in initial.items()}

    def known(self, team: str) -> bool:
        return team in self.ratings or team in self.initial or self.allow_new_teams

    def _start(self, team: str) -> float:
        if team in self.initial:
            return self.initial[team]
        return self.config.initial_rating

    def rating(self, team: str, season: int | None = None) -> float:
        """The team's rating, regressed toward the mean if `season` is later than its last game's."""
        base = self.ratings.get(team)
        if base is None:
            return self._start(team)
        last = self.last_season.get(team)
        if season is not None and last is not None and season != last:
            r = self.config.season_regression
            return base * (1 - r) + self.config.regression_mean * r
        return base

    def set_rating(self, team: str, rating: float, season: int | None = None) -> None:
        self.ratings[team] = rating
        if season is not None:
            self.last_season[team] = season

    def predict(self, team1: str, team2: str, *, season: int | None = None, neutral: bool = False,
                playoff: bool = False) -> float:
        return win_expectancy(self.rating(team1, season), self.rating(team2, season), self.config,
                              neutral=neutral, playoff=playoff)

    def play(self, game: Game, team1: str, team2: str) -> EloForecast:
        """Forecast `game` from the current ratings, then update them with its result (if any)."""
        r1 = self.rating(team1, game.season)
        r2 = self.rating(team2, game.season)
        self.set_rating(team1, r1, game.season)
        self.set_rating(team2, r2, game.season)
        diff = rating_difference(r1, r2, self.config, neutral=game.neutral, playoff=game.playoff)
        p1 = 1.0 / (1.0 + 10.0 ** (-diff / self.config.scale))
        result = game.result1
        if result is None:
            return EloForecast(game, team1, team2, p1, r1, r2)
        assert game.score1 is not None and game.score2 is not None
        k = self.config.k_factor * mov_multiplier(self.config, game.score1 - game.score2, diff, result)
        shift = k * (result - p1)
        self.set_rating(team1, r1 + shift)
        self.set_rating(team2, r2 - shift)
        self.games_played[team1] = self.games_played.get(team1, 0) + 1
        self.games_played[team2] = self.games_played.get(team2, 0) + 1
        return EloForecast(game, team1, team2, p1, r1, r2, r1 + shift, r2 - shift, k)


def _resolve(ratings: EloRatings, game: Game, column: str, path: str) -> str:
    code = canonical_team(game.team1 if column == "team1" else game.team2, ratings.config.sport)
    if not ratings.known(code):
        raw = game.team1 if column == "team1" else game.team2
        raise UnknownTeamError(path, f"unknown team {raw!r}: no starting rating for it (give a ratings file "
                               "with --initial-elos that lists it, or allow new teams with --allow-new-teams)",
                               row=game.row, line=game.row + 2, column=column)
    return code


def check_teams(games: Sequence[Game], ratings: EloRatings, path: str = "games file") -> None:
    """Raise UnknownTeamError for the first game naming a team the ratings cannot start."""
    for game in games:
        _resolve(ratings, game, "team1", path)
        _resolve(ratings, game, "team2", path)


def replay(games: Iterable[Game], ratings: EloRatings, *, path: str = "games file") -> list[EloForecast]:
    """Forecast every game from information before it, in date order (stable), updating as results come.

    Returns the forecasts in the input order. Unknown teams raise before any rating is touched.
    """
    ordered = sorted(games, key=lambda g: (g.date, g.row))
    check_teams(ordered, ratings, path)
    out = [ratings.play(g, _resolve(ratings, g, "team1", path), _resolve(ratings, g, "team2", path))
           for g in ordered]
    out.sort(key=lambda f: f.game.row)
    return out


@dataclass(frozen=True, slots=True)
class TuneResult:
    config: EloConfig
    train_brier: float
    test_brier: float | None
    train_games: int
    test_games: int


def _brier(forecasts: Sequence[EloForecast], seasons: tuple[int, int]) -> tuple[float, int]:
    total, n = 0.0, 0
    for f in forecasts:
        res = f.game.result1
        if res is not None and seasons[0] <= f.game.season <= seasons[1]:
            total += (f.p_team1 - res) ** 2
            n += 1
    return (total / n if n else float("nan")), n


def tune(games: Sequence[Game], initial: Mapping[str, float] | None, *, base: EloConfig,
         train_seasons: tuple[int, int], test_seasons: tuple[int, int] | None,
         grid: Mapping[str, Sequence[float]], allow_new_teams: bool = False) -> list[TuneResult]:
    """Grid search: every combination of `grid` values over `base`, ranked by Brier on the train seasons only.

    The test seasons are scored for reporting; they never influence the ranking.
    """
    names = list(grid)
    results: list[TuneResult] = []
    for values in itertools.product(*(grid[n] for n in names)):
        config = base.model_copy(update=dict(zip(names, values, strict=True)))
        config = EloConfig.model_validate(config.model_dump())
        forecasts = replay(games, EloRatings(config, initial, allow_new_teams=allow_new_teams))
        train, n_train = _brier(forecasts, train_seasons)
        test, n_test = _brier(forecasts, test_seasons) if test_seasons else (None, 0)
        results.append(TuneResult(config, train, test, n_train, n_test))
    results.sort(key=lambda r: r.train_brier)
    return results
