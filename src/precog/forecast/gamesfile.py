"""Games files in the FiveThirtyEight `nfl-elo-game` column format.

Columns: date, season, neutral, playoff, team1 (home), team2, [elo1, elo2, elo_prob1], score1, score2,
result1. `date`, `season`, `team1`, `team2` are always required; scores are required to train or
evaluate (a game without scores is a future game: it is predicted but does not move ratings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from precog.forecast.csvio import CsvTable

REQUIRED_COLUMNS = ("date", "season", "team1", "team2")
RESULT_COLUMNS = ("score1", "score2")
PUBLISHED_COLUMN = "elo_prob1"


@dataclass(frozen=True, slots=True)
class Game:
    row: int  # 0-based index of the game in its file
    date: date
    season: int
    team1: str  # home team (or the first-listed team at a neutral site), as the file spells it
    team2: str
    neutral: bool = False
    playoff: bool = False
    score1: int | None = None
    score2: int | None = None
    published_prob1: float | None = None  # the file's own forecast (538's elo_prob1), for comparison

    @property
    def played(self) -> bool:
        return self.score1 is not None and self.score2 is not None

    @property
    def result1(self) -> float | None:
        """1 / 0 / 0.5 from team1's side; None for a game not played yet."""
        if self.score1 is None or self.score2 is None:
            return None
        if self.score1 > self.score2:
            return 1.0
        if self.score1 < self.score2:
            return 0.0
        return 0.5


def _flag(table: CsvTable, row: int, column: str) -> bool:
    if not table.has(column):
        return False
    cell = table.text(row, column)
    if cell in ("", "0", "0.0", "false", "False", "FALSE"):
        return False
    if cell in ("1", "1.0", "true", "True", "TRUE"):
        return True
    raise table.error(row, column, f"{cell!r} is not 0 or 1")


def read_games(path: Path | str, *, require_results: bool = False) -> list[Game]:
    """Read and validate a games file. Errors name the file, row and column."""
    table = CsvTable.read(path)
    table.require(REQUIRED_COLUMNS, "to identify each game")
    if require_results:
        table.require(RESULT_COLUMNS, "to train or evaluate (final scores)")
    if len(table) == 0:
        raise table.error(0, "date", "the file has a header but no games")
    games: list[Game] = []
    for i in range(len(table)):
        text = table.text(i, "date")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise table.error(i, "date", f"{text!r} is not a date (YYYY-MM-DD)") from None
        season = table.integer(i, "season")
        assert season is not None
        if not 1800 <= season <= 2200:
            raise table.error(i, "season", f"{season} is not a plausible season")
        team1, team2 = table.text(i, "team1").upper(), table.text(i, "team2").upper()
        if not team1:
            raise table.error(i, "team1", "is empty")
        if not team2:
            raise table.error(i, "team2", "is empty")
        if team1 == team2:
            raise table.error(i, "team2", f"a team cannot play itself ({team1})")
        score1 = score2 = None
        if table.has("score1") and table.has("score2"):
            score1 = table.integer(i, "score1", allow_empty=not require_results)
            score2 = table.integer(i, "score2", allow_empty=not require_results)
            if (score1 is None) != (score2 is None):
                col = "score1" if score1 is None else "score2"
                raise table.error(i, col, "is empty while the other score is given")
            for col, val in (("score1", score1), ("score2", score2)):
                if val is not None and val < 0:
                    raise table.error(i, col, f"a score cannot be negative ({val})")
        if table.has("result1") and score1 is not None and score2 is not None:
            res = table.number(i, "result1", allow_empty=True)
            if res is not None:
                expected = 1.0 if score1 > score2 else 0.0 if score1 < score2 else 0.5
                if res != expected:
                    raise table.error(i, "result1", f"{res:g} contradicts the score {score1}-{score2}")
        published = None
        if table.has(PUBLISHED_COLUMN):
            published = table.number(i, PUBLISHED_COLUMN, allow_empty=True)
            if published is not None and not 0.0 <= published <= 1.0:
                raise table.error(i, PUBLISHED_COLUMN, f"{published} is not a probability in [0, 1]")
        games.append(Game(row=i, date=day, season=season, team1=team1, team2=team2,
                          neutral=_flag(table, i, "neutral"), playoff=_flag(table, i, "playoff"),
                          score1=score1, score2=score2, published_prob1=published))
    return games


def read_initial_ratings(path: Path | str) -> dict[str, float]:
    """538's `initial_elos.csv` format: team,elo."""
    table = CsvTable.read(path)
    table.require(("team", "elo"), "for starting ratings")
    ratings: dict[str, float] = {}
    for i in range(len(table)):
        team = table.text(i, "team").upper()
        if not team:
            raise table.error(i, "team", "is empty")
        value = table.number(i, "elo")
        assert value is not None
        if not 0 < value < 3000:
            raise table.error(i, "elo", f"{value} is outside 0-3000")
        ratings[team] = value
    return ratings
