"""Helpers shared by the forecasting tests (imported as `forecast.forecast_testkit`): synthetic files."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

from precog.forecast.teams import NFL_TEAM_CODES

GAMES_HEADER = ["date", "season", "neutral", "playoff", "team1", "team2", "elo1", "elo2", "elo_prob1", "score1",
                "score2", "result1"]
PLAYS_HEADER = ["wp", "game_id", "season", "week", "posteam", "defteam", "game_date", "home_team", "away_team",
                "posteam_score", "defteam_score", "score_differential", "qtr", "quarter_seconds_remaining",
                "half_seconds_remaining", "game_seconds_remaining", "yardline_100", "down", "ydstogo",
                "posteam_timeouts_remaining", "defteam_timeouts_remaining", "play_type", "home_score", "away_score"]


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as fh:  # type: ignore[operator]
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def synthetic_games(n_seasons: int = 5, seed: int = 7) -> list[list[object]]:
    """A round robin of 8 real team codes per season; stronger teams (by index) win more often."""
    rng = random.Random(seed)
    teams = sorted(NFL_TEAM_CODES)[:8]
    strength = {t: i * 2 for i, t in enumerate(teams)}
    rows: list[list[object]] = []
    for s in range(n_seasons):
        season = 2000 + s
        day = 0
        for i, home in enumerate(teams):
            for away in teams[i + 1:]:
                day += 1
                margin = strength[home] - strength[away] + 3 + rng.gauss(0, 13)
                s1 = max(0, int(20 + margin / 2))
                s2 = max(0, int(20 - margin / 2))
                res = 1 if s1 > s2 else 0 if s1 < s2 else 0.5
                date = f"{season}-09-{1 + day % 28:02d}" if day <= 28 else f"{season}-10-{1 + day % 28:02d}"
                rows.append([date, season, 0, 0, home, away, "", "", "", s1, s2, res])
    rows.sort(key=lambda r: str(r[0]))
    return rows


def synthetic_plays(n_games: int = 60, seed: int = 3) -> list[list[object]]:
    """Plausible play-by-play states: scores drift, the final score decides the label."""
    rng = random.Random(seed)
    teams = sorted(NFL_TEAM_CODES)
    rows: list[list[object]] = []
    for g in range(n_games):
        home, away = rng.sample(teams, 2)
        edge = rng.gauss(0, 0.15)
        t = 3600
        score = {home: 0, away: 0}
        pos = rng.choice([home, away])
        timeline = []
        while t > 0:
            d = pos
            other = away if pos == home else home
            yl = rng.randint(1, 99)
            down = rng.randint(1, 4)
            ytg = min(rng.randint(1, 15), yl)
            qtr = min(4, (3600 - t) // 900 + 1)
            timeline.append([d, other, qtr, t, yl, down, ytg, score[d], score[other]])
            if rng.random() < 0.12 + (edge if d == home else -edge) * 0.3:
                score[d] += rng.choice([3, 7, 7])
                pos = other
            elif rng.random() < 0.15:
                pos = other
            t -= rng.randint(20, 45)
        for d, other, qtr, t_left, yl, down, ytg, ps, ds in timeline:
            qsr = t_left - (4 - qtr) * 900
            hsr = t_left - 1800 if qtr <= 2 else t_left
            rows.append(["0.5", f"2021_{g:02d}_{away}_{home}", 2021 if g < n_games // 2 else 2022, 1 + g % 17, d, other,
                         f"2021-09-{1 + g % 28:02d}" if g < n_games // 2 else f"2022-09-{1 + g % 28:02d}", home, away,
                         ps, ds, ps - ds, qtr, qsr, hsr, t_left, yl, down, ytg, 3, 3, "pass", score[home], score[away]])
    return rows


