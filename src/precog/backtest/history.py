"""Historical NFL seasons as backtest events: closing-line pre-game markets, play-by-play in-game states,
settlement from the final score.

Sources (the shared data folder, never copied into the repository):
- `spreadspoke_scores_1966_2014.csv`: schedule, final score and closing spread. The pre-game market is
  priced at P(home) = Phi(home expected margin / sigma) (sigma = `closing_line_sigma_points`, 13.5).
- `fivethirtyeight_nfl_games_1920_2014.csv`: every game with its result; the archive the Elo model is
  trained on (only up to the simulated clock, through `GuardedArchive`).
- `nflfastr_wp_plays_2020_2022.csv.gz` (optional): in-game states for 2020-2022. Those games get a market
  that stays open during the game and is quoted around nflfastR's win probability of each play. Its
  pre-game price is the game's closing spread when spreadspoke has the game; the plays file itself has no
  pre-game column (no spread_line, no vegas wp: every `wp` is of a play after the opening kickoff), so a
  game without a closing spread is listed at kickoff, with its first play, and has no pre-game quote.
  The file has no season-type or site column: a game's playoff flag (and spreadspoke's round name as its
  week) comes from its week number after the regular season's weeks, its neutral flag from the public
  schedule's neutral-site games (`precog.forecast.plays.NEUTRAL_SITE_PLAY_GAMES`), so Elo treats them as the
  spreadspoke games.
  The same file, read the way `precog forecast wp train` reads it, is what the in-game WP model re-trains
  on in each training window (`training_plays`, through the GuardedArchive: only games finished before
  the clock).

Times: kickoff at 18:00 UTC on the game's date (the files have no kickoff times); a market with a closing
line is listed 26 hours before kickoff and quoted again 2 hours before; a pre-game-only market closes at
kickoff; the result is known 3 h 10 min after kickoff. The data itself carries no later facts inside
earlier events.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from precog.backtest.errors import BacktestError
from precog.backtest.feed import CLOSE, FINAL, LIST, QUOTE, STATE, ArchivedGame, Event, PlayByPlay, dt_to_ms
from precog.forecast.elo import regular_season_weeks
from precog.forecast.plays import NEUTRAL_SITE_PLAY_GAMES  # shared with WP training (the `home` feature)
from precog.forecast.teams import canonical_team

SPREADSPOKE = "spreadspoke_scores_1966_2014.csv"
FIVETHIRTYEIGHT = "fivethirtyeight_nfl_games_1920_2014.csv"
TEAMS = "nfl_teams.csv"
PLAYS = "nflfastr_wp_plays_2020_2022.csv.gz"

KICKOFF_HOUR_UTC = 18
LIST_BEFORE = timedelta(hours=26)
REQUOTE_BEFORE = timedelta(hours=2)
GAME_LENGTH = timedelta(hours=3, minutes=10)
SERIES = "KXNFLGAME"
# team_favorite_id spellings that differ from nfl_teams.csv's team_id
_FAVORITE_ALIASES = {"LVR": "OAK"}
# spreadspoke's schedule_week of the playoff rounds; nflfastR numbers them on after the regular season's weeks
PLAYOFF_ROUNDS = ("Wildcard", "Division", "Conference", "Superbowl")
FIRST_PLAYS_SEASON = 1999  # nflfastR's first season; the week rule below holds from there on


def phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def fair_from_spread(home_margin: float, sigma: float) -> Decimal:
    """P(home wins) implied by the closing line, 4 places (the model maths is float, the price Decimal)."""
    p = min(max(phi(home_margin / sigma), 0.0001), 0.9999)
    return Decimal(f"{p:.4f}")


@dataclass(frozen=True, slots=True)
class Play:
    """The state before one play, home perspective, plus the market's fair value then."""

    home_score: int
    away_score: int
    period: int
    clock_seconds: int
    possession: str  # home | away
    down: int | None
    distance: int | None
    yards_to_goal: int
    home_timeouts: int
    away_timeouts: int
    fair: Decimal  # P(home) the market quotes around (nflfastR's wp, home side)


@dataclass
class HistGame:
    game_id: str
    day: date
    season: int
    week: str
    playoff: bool
    neutral: bool
    home: str
    away: str
    home_score: int
    away_score: int
    fair: Decimal  # the closing-line P(home); without a closing line the first play's (quoted from kickoff)
    home_margin: float | None  # expected home margin from the closing spread (None: no pre-game price)
    plays: list[Play] = field(default_factory=list)

    @property
    def pre_game_priced(self) -> bool:
        """A closing line exists: the market is listed and quoted before kickoff."""
        return self.home_margin is not None

    @property
    def kickoff(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, KICKOFF_HOUR_UTC, tzinfo=UTC)

    def ticker(self, tag: str = "") -> str:
        """Kalshi-style ticker; `tag` makes it unique per backtest window (order ids derive from the ticker, so
        two runs over the same games in one database must not share tickers)."""
        return f"{SERIES}-{tag}{self.day:%y%b%d}{self.away}{self.home}-{self.home}".upper()

    @property
    def settlement_value(self) -> Decimal:
        if self.home_score > self.away_score:
            return Decimal(1)
        if self.home_score < self.away_score:
            return Decimal(0)
        return Decimal("0.5")

    def archived(self) -> ArchivedGame:
        k = self.kickoff
        return ArchivedGame(self.game_id, self.day, self.season, self.home, self.away, self.neutral, self.playoff,
                            dt_to_ms(k), dt_to_ms(k + GAME_LENGTH), self.home_score, self.away_score)


@dataclass
class NflHistory:
    folder: Path
    games: list[HistGame]  # the games with a market (a closing line or plays), date order
    archive: list[ArchivedGame]  # every finished game we know of (538 + the above), for model training
    sources: list[str]

    def between(self, start: date | None, end: date | None) -> list[HistGame]:
        return [g for g in self.games if (start is None or g.day >= start) and (end is None or g.day <= end)]


def game_key(day: date, team_a: str, team_b: str) -> tuple[date, frozenset[str]]:
    """One game whatever the order its teams are listed in: 538 and spreadspoke list the teams of a
    neutral-site game (Super Bowl, London) in opposite order, so ids built from home/away differ."""
    return day, frozenset((team_a, team_b))


def resolve_folder(path: Path) -> Path:
    """The folder holding the NFL files: PATH itself, PATH/nfl, or the folder of a spreadspoke file."""
    if path.is_file():
        path = path.parent
    for cand in (path, path / "nfl"):
        if (cand / SPREADSPOKE).is_file() or (cand / PLAYS).is_file():
            return cand
    raise BacktestError(f"{path}: no NFL history here (expected {SPREADSPOKE} and/or {PLAYS}, or a recording "
                        "directory of *.jsonl.gz files from `precog ingest run --record`)")


def _team_codes(folder: Path) -> dict[str, str]:
    codes: dict[str, str] = {}
    f = folder / TEAMS
    if not f.is_file():
        raise BacktestError(f"{f}: missing (maps spreadspoke's team names to codes)")
    with f.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            codes[row["team_name"].strip()] = canonical_team(row["team_id"])
    return codes


def _bool(text: str) -> bool:
    return text.strip().upper() in ("TRUE", "1", "YES")


def read_spreadspoke(folder: Path, sigma: float) -> list[HistGame]:
    """Games with a final score and a closing spread (rows without a spread have no market: skipped)."""
    codes = _team_codes(folder)
    path = folder / SPREADSPOKE
    out: list[HistGame] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            fav = row["team_favorite_id"].strip()
            spread = row["spread_favorite"].strip()
            if not fav or not spread or not row["score_home"].strip():
                continue

            def bad(col: str, why: str, row_no: int = i) -> BacktestError:
                return BacktestError(f"{path.name} line {row_no}, column {col}: {why}")

            try:
                m, d, y = (int(x) for x in row["schedule_date"].split("/"))
                day = date(y, m, d)
            except ValueError:
                raise bad("schedule_date", f"{row['schedule_date']!r} is not M/D/YYYY") from None
            home = codes.get(row["team_home"].strip())
            away = codes.get(row["team_away"].strip())
            if home is None or away is None:
                raise bad("team_home" if home is None else "team_away", "unknown team name (not in nfl_teams.csv)")
            try:
                pts = abs(float(spread))
                hs, as_ = int(row["score_home"]), int(row["score_away"])
            except ValueError:
                raise bad("spread_favorite", f"{spread!r} or the score is not a number") from None
            favc = canonical_team(_FAVORITE_ALIASES.get(fav, fav))
            margin = 0.0 if favc == "PICK" else pts if favc == home else -pts if favc == away else None
            if margin is None:
                raise bad("team_favorite_id", f"{fav!r} is neither the home team {home} nor the away team {away}")
            out.append(HistGame(f"{day:%Y%m%d}_{away}_{home}", day, int(row["schedule_season"]),
                                row["schedule_week"].strip(), _bool(row["schedule_playoff"]),
                                _bool(row["stadium_neutral"]), home, away, hs, as_, fair_from_spread(margin, sigma),
                                margin))
    return out


def read_538(folder: Path) -> list[ArchivedGame]:
    path = folder / FIVETHIRTYEIGHT
    if not path.is_file():
        return []
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if not row["score1"].strip():
                continue
            day = date.fromisoformat(row["date"])
            k = datetime(day.year, day.month, day.day, KICKOFF_HOUR_UTC, tzinfo=UTC)
            home, away = canonical_team(row["team1"]), canonical_team(row["team2"])
            out.append(ArchivedGame(f"{day:%Y%m%d}_{away}_{home}", day, int(row["season"]), home, away,
                                    row["neutral"] == "1", row["playoff"] not in ("0", ""), dt_to_ms(k),
                                    dt_to_ms(k + GAME_LENGTH), int(row["score1"]), int(row["score2"])))
    return out


def _num(text: str) -> float | None:
    text = text.strip()
    return float(text) if text and text != "NA" else None


def plays_week(path: Path, game_id: str, season: int, week_text: str) -> tuple[str, bool]:
    """(week as spreadspoke writes it, playoff) of a plays-file game: its week number, or the playoff round
    after the regular season's weeks (the file has no season-type column)."""
    def bad(why: str) -> BacktestError:
        return BacktestError(f"{path.name}, game {game_id}, column week: {week_text!r} {why}")

    try:
        week = int(week_text)
    except ValueError:
        raise bad("is not a week number") from None
    if season < FIRST_PLAYS_SEASON:
        raise bad(f"of season {season}: the playoff weeks are known from {FIRST_PLAYS_SEASON} on")
    regular = regular_season_weeks(season)
    if not 1 <= week <= regular + len(PLAYOFF_ROUNDS):
        raise bad(f"is outside season {season} (weeks 1-{regular} and the playoff rounds "
                  f"{regular + 1}-{regular + len(PLAYOFF_ROUNDS)})")
    if week <= regular:
        return str(week), False
    return PLAYOFF_ROUNDS[week - regular - 1], True


def read_plays(folder: Path, seasons: set[int] | None = None) -> list[HistGame]:
    """Games of the nflfastR file with every play's state (home perspective) and nflfastR's home wp."""
    path = folder / PLAYS
    if not path.is_file():
        return []
    rows_by_game: dict[str, list[dict[str, str]]] = defaultdict(list)
    with gzip.open(path, "rt", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if seasons is not None and int(row["season"]) not in seasons:
                continue
            rows_by_game[row["game_id"]].append(row)
    games = []
    for rows in rows_by_game.values():
        first = rows[0]
        home, away = canonical_team(first["home_team"]), canonical_team(first["away_team"])
        plays = []
        for r in rows:
            wp = _num(r["wp"])
            diff = _num(r["score_differential"])
            if wp is None or diff is None:
                continue  # a play without a probability (e.g. end of a period): no quote
            pos_home = canonical_team(r["posteam"]) == home
            ps, ds = int(float(r["posteam_score"] or 0)), int(float(r["defteam_score"] or 0))
            hs, as_ = (ps, ds) if pos_home else (ds, ps)
            qtr = int(float(r["qtr"]))
            qsec = _num(r["quarter_seconds_remaining"]) or 0.0
            down = _num(r["down"])
            ytg = _num(r["ydstogo"])
            p_home = wp if pos_home else 1.0 - wp
            p_home = min(max(p_home, 0.0001), 0.9999)
            pt, dt = int(float(r["posteam_timeouts_remaining"])), int(float(r["defteam_timeouts_remaining"]))
            plays.append(Play(hs, as_, qtr, int(min(qsec, 900)), "home" if pos_home else "away",
                              int(down) if down else None, int(ytg) if ytg is not None and down else None,
                              int(float(r["yardline_100"])), pt if pos_home else dt, dt if pos_home else pt,
                              Decimal(f"{p_home:.4f}")))
        if not plays:
            continue
        day = date.fromisoformat(first["game_date"])
        season = int(first["season"])
        week, playoff = plays_week(path, first["game_id"], season, first["week"])
        games.append(HistGame(f"{day:%Y%m%d}_{away}_{home}", day, season, week, playoff,
                              first["game_id"] in NEUTRAL_SITE_PLAY_GAMES, home, away, int(float(first["home_score"])),
                              int(float(first["away_score"])), plays[0].fair, None, plays))
    return games


def training_plays(folder: Path) -> PlayByPlay | None:
    """The plays file as the WP model trains on it, each game's rows under its archive id (None: no file)."""
    path = folder / PLAYS
    if not path.is_file():
        return None
    return _training_plays(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _training_plays(path: str, mtime_ns: int) -> PlayByPlay:
    from precog.forecast.errors import ForecastError
    from precog.forecast.plays import read_plays as read_training_plays

    try:
        plays = read_training_plays(path, require_outcomes=True)
    except ForecastError as exc:
        raise BacktestError(f"{path}: cannot be used to train the WP model: {exc}") from exc
    if plays.game_date is None:
        raise BacktestError(f"{path}: column game_date is missing (needed to know when each game was played)")
    ids, first, inverse = np.unique(plays.game_id, return_index=True, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(ids)))[:-1]
    rows: dict[str, Any] = {}
    for k, idx in enumerate(np.split(order, bounds)):
        i = int(first[k])
        day = date.fromisoformat(str(plays.game_date[i]))
        rows[f"{day:%Y%m%d}_{plays.away_team[i]}_{plays.home_team[i]}"] = idx
    return PlayByPlay(path, plays, rows)


def load_nfl(path: Path, *, sigma: float = 13.5, start: date | None = None, end: date | None = None,
             in_game: bool = True) -> NflHistory:
    folder = resolve_folder(path)
    sources: list[str] = []
    by_key: dict[tuple[date, frozenset[str]], HistGame] = {}
    if (folder / SPREADSPOKE).is_file():
        by_key.update((game_key(g.day, g.home, g.away), g) for g in read_spreadspoke(folder, sigma))
        sources.append(SPREADSPOKE)
    if in_game and (folder / PLAYS).is_file() and (end is None or end.year >= 2020):
        seasons = None
        if start is not None or end is not None:
            lo = start.year - 1 if start else 2020
            hi = end.year if end else 2022
            seasons = set(range(lo, hi + 1))
        for g in read_plays(folder, seasons):
            key = game_key(g.day, g.home, g.away)
            _take_closing_line(g, by_key.get(key))
            by_key[key] = g  # one market per game: the plays game, priced pre-game by its closing line if any
        sources.append(PLAYS)
    games = sorted(by_key.values(), key=lambda g: (g.day, g.game_id))
    # every result once, whichever source lists it and in whichever team order (a game trained on twice
    # would count double in the Elo ratings); a game with plays keeps its own id, the key of its plays
    archive = {game_key(g.day, g.home, g.away): g for g in read_538(folder)}
    if archive:
        sources.append(FIVETHIRTYEIGHT)
    for g in games:
        key = game_key(g.day, g.home, g.away)
        if g.plays or key not in archive:
            archive[key] = g.archived()
    return NflHistory(folder, games, sorted(archive.values(), key=lambda g: (g.final_ms, g.game_id)), sources)


def _take_closing_line(game: HistGame, line: HistGame | None) -> None:
    """Price a plays game before kickoff with the closing spread of the same game (home side of the plays file)."""
    if line is None or line.home_margin is None:
        return
    same_side = line.home == game.home
    game.home_margin = line.home_margin if same_side else -line.home_margin
    game.fair = line.fair if same_side else 1 - line.fair
    game.week, game.playoff, game.neutral = line.week, line.playoff, line.neutral


def game_events(games: list[HistGame], tag: str = "") -> Iterator[Event]:
    """The events of each game; facts appear only at the time they became known."""
    seq = 0
    for g in games:
        k = g.kickoff
        t = g.ticker(tag)
        schedule: dict[str, Any] = {"game_id": g.game_id, "home": g.home, "away": g.away, "season": g.season,
                                    "week": g.week, "playoff": g.playoff, "neutral": g.neutral,
                                    "kickoff_ms": dt_to_ms(k), "in_game": bool(g.plays),
                                    "close_ms": dt_to_ms(k + (GAME_LENGTH if g.plays else timedelta(0)))}
        if g.pre_game_priced:
            seq += 1
            yield Event(dt_to_ms(k - LIST_BEFORE), seq, LIST, t, {**schedule, "fair": g.fair})
            seq += 1
            yield Event(dt_to_ms(k - REQUOTE_BEFORE), seq, QUOTE, t, {"fair": g.fair})
        else:
            # no pre-game price in the data (plays only): any play's wp is after the opening kickoff, so the
            # market opens at kickoff with the first play's state, never earlier
            seq += 1
            yield Event(dt_to_ms(k), seq, LIST, t, {**schedule, "fair": g.fair})
        if g.plays:
            span = GAME_LENGTH.total_seconds() * 1000 - 60_000
            n = len(g.plays)
            for i, p in enumerate(g.plays):
                seq += 1
                yield Event(dt_to_ms(k) + int(span * i / n), seq, STATE, t, {
                    "home_score": p.home_score, "away_score": p.away_score, "period": p.period,
                    "clock_seconds": p.clock_seconds, "possession": p.possession, "down": p.down,
                    "distance": p.distance, "yards_to_goal": p.yards_to_goal, "home_timeouts": p.home_timeouts,
                    "away_timeouts": p.away_timeouts, "fair": p.fair})
        else:
            seq += 1
            yield Event(dt_to_ms(k), seq, CLOSE, t, {})
        seq += 1
        yield Event(dt_to_ms(k + GAME_LENGTH), seq, FINAL, t, {
            "home_score": g.home_score, "away_score": g.away_score, "settlement_value": g.settlement_value})
