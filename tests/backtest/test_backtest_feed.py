"""The structural no-look-ahead guarantees, the walk-forward windows and the NFL history loader."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from precog.backtest.errors import BacktestError, LookAheadError
from precog.backtest.feed import CLOSE, FINAL, LIST, QUOTE, ArchivedGame, Event, EventFeed, GuardedArchive
from precog.backtest.history import fair_from_spread, game_events, load_nfl
from precog.backtest.walkforward import parse, windows


def test_feed_releases_only_events_at_or_before_the_clock() -> None:
    feed = EventFeed([Event(300, 3, FINAL, "A"), Event(100, 1, LIST, "A"), Event(200, 2, QUOTE, "A")])
    assert feed.next_time() == 100
    assert [e.kind for e in feed.release(150)] == [LIST]
    assert feed.release(199) == []
    assert [e.kind for e in feed.release(300)] == [QUOTE, FINAL]
    assert feed.next_time() is None


def test_feed_refuses_a_clock_that_goes_back() -> None:
    feed = EventFeed([Event(100, 1, LIST, "A")])
    feed.release(500)
    with pytest.raises(LookAheadError):
        feed.release(400)


def _game(final_ms: int, gid: str = "g1") -> ArchivedGame:
    return ArchivedGame(gid, date(2013, 9, 8), 2013, "NE", "BUF", False, False, final_ms - 1000, final_ms, 23, 21)


def test_archive_refuses_a_result_before_it_is_known() -> None:
    now = [999]
    archive = GuardedArchive([_game(1000)], lambda: now[0])
    with pytest.raises(LookAheadError, match="the result of g1"):
        archive.result("g1")
    with pytest.raises(LookAheadError):
        archive.finished_between(0, 2000)  # asks up to a time after the clock
    now[0] = 1000
    assert archive.result("g1").home_score == 23
    assert [g.game_id for g in archive.finished_between(0, 1001)] == ["g1"]


def test_walk_forward_windows_never_overlap_training_and_testing() -> None:
    wf = parse("train=3y,test=1y,step=1y")
    wins = windows(wf, date(2005, 9, 1), date(2012, 2, 15))
    assert [(w.train_from, w.train_to, w.test_from, w.test_to) for w in wins[:2]] == [
        (date(2005, 9, 1), date(2008, 9, 1), date(2008, 9, 1), date(2009, 8, 31)),
        (date(2006, 9, 1), date(2009, 9, 1), date(2009, 9, 1), date(2010, 8, 31))]
    assert wins[-1].test_to == date(2012, 2, 15)
    for w in wins:
        assert w.train_to is not None and w.train_to <= w.test_from


@pytest.mark.parametrize("text, message", [("train=3y", "missing test"), ("train=3x,test=1y", "not KEY=N"),
                                           ("train=0y,test=1y", "positive")])
def test_walk_forward_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(BacktestError, match=message):
        parse(text)


def test_closing_spread_prices_the_favourite() -> None:
    assert fair_from_spread(0.0, 13.5) == Decimal("0.5000")
    assert fair_from_spread(7.0, 13.5) == Decimal("0.6980")  # a 7-point home favourite
    assert fair_from_spread(-7.0, 13.5) == Decimal("0.3020")


def test_history_events_keep_the_result_out_of_pre_game_events(shared_data: Path) -> None:
    hist = load_nfl(shared_data / "nfl", in_game=False)
    games = hist.between(date(2013, 9, 5), date(2013, 9, 9))
    assert len(games) == 16
    ne = next(g for g in games if g.home == "NYJ" and g.away == "TB")
    assert ne.fair == fair_from_spread(-6.0, 13.5)  # TB favoured by 6 at the Jets (closing line)
    events = list(game_events([ne], "T-"))
    assert [e.kind for e in events] == [LIST, QUOTE, CLOSE, FINAL]
    for e in events[:-1]:
        assert not {"home_score", "away_score", "settlement_value"} & set(e.data), e
    final = events[-1]
    assert final.ts_ms > events[2].ts_ms  # the result is known only after kickoff
    assert final.data["settlement_value"] == (Decimal(1) if ne.home_score > ne.away_score else Decimal(0))
    assert events[0].ticker.startswith("KXNFLGAME-T-13SEP08TBNYJ-NYJ")


def test_history_reports_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="no NFL history here"):
        load_nfl(tmp_path)


def test_history_names_the_bad_row(tmp_path: Path, shared_data: Path) -> None:
    (tmp_path / "nfl_teams.csv").write_text((shared_data / "nfl" / "nfl_teams.csv").read_text())
    header = ("schedule_date,schedule_season,schedule_week,schedule_playoff,team_home,score_home,score_away,team_away,"
              "team_favorite_id,spread_favorite,over_under_line,stadium,stadium_neutral,weather_temperature,"
              "weather_wind_mph,weather_humidity,weather_detail\n")
    (tmp_path / "spreadspoke_scores_1966_2014.csv").write_text(
        header + "9/8/2013,2013,1,FALSE,New York Jets,18,17,Tampa Bay Buccaneers,DAL,-3,39,X,FALSE,,,,\n")
    with pytest.raises(BacktestError, match="line 2, column team_favorite_id: 'DAL' is neither"):
        load_nfl(tmp_path)
