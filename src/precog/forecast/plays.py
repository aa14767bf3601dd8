"""Play-by-play files in the shared data's nflfastR column format, validated into numpy arrays.

Each row is the game state before a play. Columns used:
    game_id, posteam, defteam, home_team, away_team, score_differential (posteam - defteam), qtr,
    game_seconds_remaining, yardline_100 (yards to the opponent's goal), down (empty for a conversion
    try), ydstogo, posteam_timeouts_remaining, defteam_timeouts_remaining
    optional: season, game_date (order of games for pre-game strength), week (with season: a playoff game is
    numbered after the regular season's weeks), home_score / away_score (the game's final score: the outcome
    label), wp (nflfastR's published win probability, for comparison), neutral_site (1 for a game at neither
    team's stadium) and playoff (1 for a playoff game; both written by `precog forecast wp export`).
The files have no site column: neutral-site games are known by game id (`NEUTRAL_SITE_PLAY_GAMES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from precog.forecast.csvio import LINE_OFFSET, CsvTable
from precog.forecast.errors import InputFileError, UnknownTeamError
from precog.forecast.teams import canonical_team, is_current_nfl_team

STATE_COLUMNS = (
    "game_id", "posteam", "defteam", "home_team", "away_team", "score_differential", "qtr",
    "game_seconds_remaining", "yardline_100", "down", "ydstogo", "posteam_timeouts_remaining",
    "defteam_timeouts_remaining",
)
OUTCOME_COLUMNS = ("home_score", "away_score")
PUBLISHED_COLUMN = "wp"
# Games of the shared plays file's seasons (2020-2022) played at neither team's home stadium, by nflfastR game id.
# The file has no site column; these are the public NFL schedule's (spreadspoke flags its Super Bowls and
# international games, and some relocated ones, neutral the same way). The WP model's `home` feature is 0 for
# their plays, and the backtest flags these games neutral. Super Bowl LV (2020_21_KC_TB) is not one: Tampa Bay
# played it in its own stadium.
NEUTRAL_SITE_PLAY_GAMES = frozenset({
    "2020_13_BUF_SF", "2020_14_WAS_SF", "2020_17_SEA_SF",  # 49ers home games moved to Glendale (county COVID ban)
    "2021_01_GB_NO",  # moved to Jacksonville (Hurricane Ida)
    "2021_05_NYJ_ATL", "2021_06_MIA_JAX", "2022_04_MIN_NO", "2022_05_NYG_GB", "2022_08_DEN_JAX",  # London
    "2022_10_SEA_TB",  # Munich
    "2022_11_SF_ARI",  # Mexico City
    "2022_11_CLE_BUF",  # moved to Detroit (snow)
    # Super Bowl LVI was at the Rams' (the designated away team's) stadium: the designated home team had no home
    # field, and the flags cannot give one to the away team
    "2021_22_LA_CIN",
    "2022_22_KC_PHI",  # Super Bowl LVII, Glendale
})

FloatArray = NDArray[np.float64]


@dataclass
class Plays:
    """Validated plays as arrays (posteam perspective). `down` 0 = a conversion try (no down)."""

    path: str
    game_id: NDArray[np.str_]
    posteam: NDArray[np.str_]  # canonical team codes
    defteam: NDArray[np.str_]
    home_team: NDArray[np.str_]
    away_team: NDArray[np.str_]
    score_diff: FloatArray
    qtr: NDArray[np.int64]
    game_seconds: FloatArray
    yardline_100: FloatArray
    down: NDArray[np.int64]
    ydstogo: FloatArray
    pos_timeouts: FloatArray
    def_timeouts: FloatArray
    season: NDArray[np.int64] | None = None
    game_date: NDArray[np.str_] | None = None
    home_final: FloatArray | None = None
    away_final: FloatArray | None = None
    published: FloatArray | None = None
    extra: dict[str, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.game_id.size)

    @property
    def posteam_is_home(self) -> NDArray[np.bool_]:
        return self.posteam == self.home_team

    @property
    def neutral_site(self) -> NDArray[np.bool_]:
        """True for the plays of a game at neither team's stadium: `NEUTRAL_SITE_PLAY_GAMES`, or a row whose
        optional `neutral_site` column is 1 (the plays exported from ingested games carry it)."""
        known = np.isin(self.game_id, np.array(sorted(NEUTRAL_SITE_PLAY_GAMES), dtype=np.str_))
        flag = self.extra.get("neutral_site")
        return known if flag is None else known | (flag == 1.0)

    @property
    def overtime(self) -> NDArray[np.bool_]:
        return self.qtr >= 5

    @property
    def has_outcomes(self) -> bool:
        return self.home_final is not None and self.away_final is not None

    def outcome(self) -> FloatArray:
        """1 if the team with the ball won the game, 0 if it lost, 0.5 for a tie."""
        if self.home_final is None or self.away_final is None:
            raise InputFileError(self.path, "has no final scores (columns home_score, away_score): "
                                 "cannot train or evaluate")
        home_won = np.sign(self.home_final - self.away_final)
        pos_sign = np.where(self.posteam_is_home, 1.0, -1.0)
        return (home_won * pos_sign + 1.0) / 2.0

    def subset(self, mask: NDArray[np.bool_]) -> Plays:
        def cut(a):  # type: ignore[no-untyped-def]
            return None if a is None else a[mask]

        return Plays(self.path, self.game_id[mask], self.posteam[mask], self.defteam[mask], self.home_team[mask],
                     self.away_team[mask], self.score_diff[mask], self.qtr[mask], self.game_seconds[mask],
                     self.yardline_100[mask], self.down[mask], self.ydstogo[mask], self.pos_timeouts[mask],
                     self.def_timeouts[mask], cut(self.season), cut(self.game_date), cut(self.home_final),
                     cut(self.away_final), cut(self.published), {k: v[mask] for k, v in self.extra.items()})


def _floats(table: CsvTable, column: str, *, allow_empty: bool = False) -> FloatArray:
    cells = list(table.column_text(column))
    cleaned = ["nan" if c in ("", "NA", "NaN", "nan") else c for c in cells]
    try:
        values = np.array(cleaned, dtype=np.float64)
    except ValueError:
        for i, c in enumerate(cleaned):
            try:
                float(c)
            except ValueError:
                raise table.error(i, column, f"{cells[i]!r} is not a number") from None
        raise
    bad = ~np.isfinite(values)
    if not allow_empty and bad.any():
        i = int(np.argmax(bad))
        raise table.error(i, column, "is empty" if cells[i] in ("", "NA", "NaN", "nan") else
                          f"{cells[i]!r} is not a finite number")
    return values


def _check(table: CsvTable, column: str, bad: NDArray[np.bool_], values: FloatArray | NDArray[np.str_],
           message: str) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        n = int(bad.sum())
        more = f" ({n - 1} more row(s) like it)" if n > 1 else ""
        raise table.error(i, column, message.format(value=values[i]) + more)


def _whole(table: CsvTable, column: str, values: FloatArray) -> None:
    finite = np.isfinite(values)
    _check(table, column, finite & (values != np.round(values)), values, "{value} is not a whole number")


def read_plays(path: Path | str, *, require_outcomes: bool = False) -> Plays:
    """Read and validate a plays file. Every impossible state is refused naming its row and column."""
    table = CsvTable.read(path)
    table.require(STATE_COLUMNS, "to describe the game state")
    if require_outcomes:
        table.require(OUTCOME_COLUMNS, "to train or evaluate (the game's final score)")
    if len(table) == 0:
        raise InputFileError(str(table.path), "the file has a header but no plays")

    def teams(column: str) -> NDArray[np.str_]:
        raw = np.array(list(table.column_text(column)), dtype=np.str_)
        empty = raw == ""
        _check(table, column, empty, raw, "is empty")
        # a few dozen distinct codes over 100,000+ rows: each is looked up once
        distinct, where = np.unique(raw, return_inverse=True)
        canon_distinct = np.array([canonical_team(c) for c in distinct], dtype=np.str_)
        canon = canon_distinct[where]
        unknown = np.array([not is_current_nfl_team(c) for c in canon_distinct])[where]
        if unknown.any():
            i = int(np.argmax(unknown))
            raise UnknownTeamError(str(table.path), f"unknown team {str(raw[i])!r} (not an NFL team code)",
                                   row=i, line=i + LINE_OFFSET, column=column)
        return canon

    game_id = np.array(list(table.column_text("game_id")), dtype=np.str_)
    _check(table, "game_id", game_id == "", game_id, "is empty")
    home, away, pos, deff = teams("home_team"), teams("away_team"), teams("posteam"), teams("defteam")
    _check(table, "away_team", home == away, away, "home and away team are the same ({value})")
    _check(table, "posteam", (pos != home) & (pos != away), pos, "{value} is neither the home nor the away team")
    _check(table, "defteam", (deff != home) & (deff != away), deff, "{value} is neither the home nor the away team")
    _check(table, "defteam", deff == pos, deff, "{value} is also the team with the ball")

    diff = _floats(table, "score_differential")
    _whole(table, "score_differential", diff)
    _check(table, "score_differential", np.abs(diff) > 200, diff, "{value} is not a plausible score difference")

    qtr_f = _floats(table, "qtr")
    _check(table, "qtr", (qtr_f < 1) | (qtr_f > 10) | (qtr_f != np.round(qtr_f)), qtr_f,
           "{value} is not a quarter (1-4, 5+ for overtime)")
    qtr = qtr_f.astype(np.int64)

    secs = _floats(table, "game_seconds_remaining")
    _check(table, "game_seconds_remaining", secs < 0, secs, "negative time remaining ({value})")
    _check(table, "game_seconds_remaining", secs > 3600, secs, "{value} is more than a game (3600 s)")
    regulation = qtr <= 4
    lo = (4 - qtr) * 900.0
    _check(table, "game_seconds_remaining", regulation & ((secs < lo) | (secs > lo + 900)), secs,
           "{value} s remaining is impossible in this row's quarter (column qtr)")
    _check(table, "game_seconds_remaining", ~regulation & (secs > 900), secs,
           "{value} s remaining is impossible in overtime (at most 900)")

    yl = _floats(table, "yardline_100")
    _check(table, "yardline_100", (yl < 0) | (yl > 100), yl, "{value} is not a yard line (0-100)")

    down_f = _floats(table, "down", allow_empty=True)
    _whole(table, "down", down_f)
    _check(table, "down", np.isfinite(down_f) & ((down_f < 1) | (down_f > 4)), down_f,
           "down {value} is impossible (1-4, empty for a conversion try)")
    down = np.where(np.isfinite(down_f), down_f, 0).astype(np.int64)

    ytg = _floats(table, "ydstogo")
    _check(table, "ydstogo", (ytg < 0) | (ytg > 100), ytg, "{value} is not a distance to go (0-100)")
    _check(table, "ydstogo", (down > 0) & (ytg > yl) & (yl > 0), ytg,
           "{value} yards to go is more than the distance to the goal line (column yardline_100)")

    tos = {}
    for col in ("posteam_timeouts_remaining", "defteam_timeouts_remaining"):
        v = _floats(table, col)
        _check(table, col, (v < 0) | (v > 3) | (v != np.round(v)), v, "{value} timeouts is impossible (0-3)")
        tos[col] = v

    plays = Plays(str(table.path), game_id, pos, deff, home, away, diff, qtr, secs, yl, down, ytg,
                  tos["posteam_timeouts_remaining"], tos["defteam_timeouts_remaining"])

    # a game's teams must not change from play to play
    _consistent_games(table, plays)

    if table.has("season"):
        season = _floats(table, "season")
        _check(table, "season", (season < 1900) | (season > 2200) | (season != np.round(season)), season,
               "{value} is not a season")
        plays.season = season.astype(np.int64)
    if table.has("game_date"):
        plays.game_date = np.array(list(table.column_text("game_date")), dtype=np.str_)
        _check(table, "game_date", plays.game_date == "", plays.game_date, "is empty")
    if table.has("home_score") and table.has("away_score"):
        hs, as_ = _floats(table, "home_score"), _floats(table, "away_score")
        for col, v in (("home_score", hs), ("away_score", as_)):
            _check(table, col, v < 0, v, "a final score cannot be negative ({value})")
            _whole(table, col, v)
        plays.home_final, plays.away_final = hs, as_
    if table.has(PUBLISHED_COLUMN):
        wp = _floats(table, PUBLISHED_COLUMN, allow_empty=True)
        _check(table, PUBLISHED_COLUMN, np.isfinite(wp) & ((wp < 0) | (wp > 1)), wp,
               "{value} is not a probability in [0, 1]")
        plays.published = wp
    if table.has("week"):  # empty: unknown (a row exported from ingested states: `playoff` says what matters)
        week = _floats(table, "week", allow_empty=True)
        _check(table, "week", np.isfinite(week) & ((week < 1) | (week > 30) | (week != np.round(week))), week,
               "{value} is not a week")
        plays.extra["week"] = week
    if table.has("playoff"):  # optional: 1 = a playoff game (as a week past the regular season says), 0 or empty
        flag = _floats(table, "playoff", allow_empty=True)
        _check(table, "playoff", np.isfinite(flag) & (flag != 0) & (flag != 1), flag, "{value} is not 0 or 1")
        plays.extra["playoff"] = np.where(np.isfinite(flag), flag, 0.0)
    if table.has("neutral_site"):  # optional: 1 = a game at neither team's stadium, 0 or empty = as listed
        flag = _floats(table, "neutral_site", allow_empty=True)
        _check(table, "neutral_site", np.isfinite(flag) & (flag != 0) & (flag != 1), flag, "{value} is not 0 or 1")
        plays.extra["neutral_site"] = np.where(np.isfinite(flag), flag, 0.0)
    for col in ("posteam_score", "defteam_score"):
        if table.has(col):
            plays.extra[col] = _floats(table, col, allow_empty=True)
    if "posteam_score" in plays.extra and "defteam_score" in plays.extra:
        implied = plays.extra["posteam_score"] - plays.extra["defteam_score"]
        _check(table, "score_differential", np.isfinite(implied) & (implied != diff), diff,
               "{value} differs from posteam_score - defteam_score")
    return plays


def _consistent_games(table: CsvTable, plays: Plays) -> None:
    first: dict[str, tuple[str, str]] = {}
    for i, (g, h, a) in enumerate(zip(plays.game_id, plays.home_team, plays.away_team, strict=True)):
        seen = first.setdefault(str(g), (str(h), str(a)))
        if seen != (h, a):
            raise table.error(i, "home_team", f"game {g} was {seen[0]} vs {seen[1]} in an earlier row, "
                              f"here {h} vs {a}")


def game_order(plays: Plays) -> list[str]:
    """Game ids in chronological order (game_date, then first appearance in the file)."""
    first_row: dict[str, int] = {}
    for i, g in enumerate(plays.game_id):
        first_row.setdefault(str(g), i)
    if plays.game_date is None:
        return sorted(first_row, key=first_row.__getitem__)
    dates = {g: str(plays.game_date[i]) for g, i in first_row.items()}
    return sorted(first_row, key=lambda g: (dates[g], first_row[g]))


def second_half_receiver(plays: Plays) -> NDArray[np.float64]:
    """+1 when the team with the ball receives the second-half kickoff, -1 when its opponent does, 0 unknown.

    The team with the ball on a game's first play (at 58+ minutes left) received the opening kickoff, so
    the other team receives after halftime. Only first-half plays get a value; later plays and games
    whose first play is missing from the file get 0.
    """
    out = np.zeros(len(plays))
    opening: dict[str, str] = {}
    best: dict[str, float] = {}
    for i, (g, t) in enumerate(zip(plays.game_id, plays.game_seconds, strict=True)):
        gs = str(g)
        if t > best.get(gs, -1.0):
            best[gs] = float(t)
            opening[gs] = str(plays.posteam[i])
    first_half = plays.qtr <= 2
    for j in np.nonzero(first_half)[0]:
        gs = str(plays.game_id[j])
        if best.get(gs, 0.0) >= 3480.0:
            out[j] = -1.0 if plays.posteam[j] == opening[gs] else 1.0
    return out
