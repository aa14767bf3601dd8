"""2020-2022 play-by-play games carry the playoff and neutral-site flags the spreadspoke games carry.

The plays file has no season-type or site column (see the data README): the playoffs are the weeks after the
regular season (17 weeks through 2020, 18 from 2021; nflfastR numbers the rounds on from there) and the
neutral sites (international games, relocated games, Super Bowls away from a team's stadium) are the public
schedule's. Models read the flags: Elo drops the home advantage on a neutral site and scales playoff games."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from backtest.bt_testkit import one_game_folder
from precog.backtest.errors import BacktestError
from precog.backtest.feed import LIST
from precog.backtest.history import game_events, load_nfl

# (date, away, home) of the games played at neither team's home stadium, 2020-2022 seasons
NEUTRAL = {
    (date(2020, 12, 7), "BUF", "SF"), (date(2020, 12, 13), "WAS", "SF"), (date(2021, 1, 3), "SEA", "SF"),  # Glendale
    (date(2021, 9, 12), "GB", "NO"),  # Jacksonville (Hurricane Ida)
    (date(2021, 10, 10), "NYJ", "ATL"), (date(2021, 10, 17), "MIA", "JAX"),  # London
    (date(2022, 10, 2), "MIN", "NO"), (date(2022, 10, 9), "NYG", "GB"), (date(2022, 10, 30), "DEN", "JAX"),  # London
    (date(2022, 11, 13), "SEA", "TB"),  # Munich
    (date(2022, 11, 20), "CLE", "BUF"),  # Detroit (snow)
    (date(2022, 11, 21), "SF", "ARI"),  # Mexico City
    (date(2022, 2, 13), "LAR", "CIN"),  # Super Bowl LVI, at the Rams' stadium
    (date(2023, 2, 12), "KC", "PHI"),  # Super Bowl LVII, Glendale
}
SUPER_BOWLS = {2020: (date(2021, 2, 7), "KC", "TB"), 2021: (date(2022, 2, 13), "LAR", "CIN"),
               2022: (date(2023, 2, 12), "KC", "PHI")}


@pytest.fixture(scope="module")
def plays_games(shared_data: Path) -> list:  # type: ignore[type-arg]
    hist = load_nfl(shared_data / "nfl")
    return [g for g in hist.between(date(2020, 9, 1), date(2023, 2, 28)) if g.plays]


def test_playoff_games_are_the_weeks_after_the_regular_season(plays_games: list) -> None:  # type: ignore[type-arg]
    by_season = Counter((g.season, g.week) for g in plays_games if g.playoff)
    for season in (2020, 2021, 2022):
        # 14-team playoffs from 2020: 6 wild-card games, 4 divisional, 2 conference finals, the Super Bowl
        assert {w: by_season[(season, w)] for w in ("Wildcard", "Division", "Conference", "Superbowl")} == \
            {"Wildcard": 6, "Division": 4, "Conference": 2, "Superbowl": 1}, season
        sb = next(g for g in plays_games if g.season == season and g.week == "Superbowl")
        assert (sb.day, sb.away, sb.home) == SUPER_BOWLS[season]
    regular = [g for g in plays_games if not g.playoff]
    assert all(g.week.isdigit() for g in regular)
    # the 18th week is the last regular-season week from 2021 on, the first playoff round in 2020
    assert max(int(g.week) for g in regular if g.season == 2020) == 17
    assert {int(g.week) for g in regular if g.season >= 2021} == set(range(1, 19))


def test_neutral_sites_are_flagged(plays_games: list) -> None:  # type: ignore[type-arg]
    neutral = {(g.day, g.away, g.home) for g in plays_games if g.neutral}
    assert neutral == NEUTRAL
    lv = next(g for g in plays_games if (g.day, g.away, g.home) == SUPER_BOWLS[2020])
    assert not lv.neutral, "Super Bowl LV was played in Tampa Bay's own stadium"


def test_the_flags_reach_the_events_and_the_training_archive(shared_data: Path,
                                                             plays_games: list) -> None:  # type: ignore[type-arg]
    sb = next(g for g in plays_games if (g.day, g.away, g.home) == SUPER_BOWLS[2022])
    listing = next(e for e in game_events([sb], "T-") if e.kind == LIST)
    assert (listing.data["playoff"], listing.data["neutral"], listing.data["week"]) == (True, True, "Superbowl")
    archive = {(a.day, a.away, a.home): a for a in load_nfl(shared_data / "nfl").archive if a.season >= 2020}
    assert {k for k, a in archive.items() if a.neutral} == NEUTRAL
    assert Counter(a.season for a in archive.values() if a.playoff) == {2020: 13, 2021: 13, 2022: 13}


def test_a_week_after_the_super_bowl_is_refused_naming_the_file(shared_data: Path, tmp_path: Path) -> None:
    one_game_folder(shared_data, tmp_path, edit=lambda r: r.update(week="22"))  # 2020: 17 weeks + 4 playoff rounds
    with pytest.raises(BacktestError, match=r"nflfastr_wp_plays_2020_2022\.csv\.gz.*2020_01_ARI_SF.*week.*22"):
        load_nfl(tmp_path)
