"""Walk-forward windows: each window's dates are computed from --from in one step, so with step == test the
test windows are contiguous (no day falls between them, whatever the month ends), and they never overlap."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from precog.backtest.errors import BacktestError
from precog.backtest.history import load_nfl
from precog.backtest.walkforward import parse, windows


@pytest.mark.parametrize("spec, start", [("train=2m,test=1m,step=1m", date(2011, 7, 31)),
                                         ("train=1y,test=1m,step=1m", date(2011, 1, 31)),
                                         ("train=30d,test=7d,step=7d", date(2011, 2, 27))])
def test_month_end_windows_with_step_equal_to_test_leave_no_day_untraded(spec: str, start: date) -> None:
    wins = windows(parse(spec), start, date(2012, 12, 31))
    assert len(wins) > 3
    for a, b in zip(wins, wins[1:], strict=False):
        assert b.test_from == a.test_to + timedelta(days=1), (a, b)
        assert b.train_to == b.test_from


def test_the_sunday_at_a_month_end_is_traded(shared_data: Path) -> None:
    """train=2m,test=1m,step=1m from 2011-07-31: Sunday 2011-10-30 (NFL week 8) lies inside a test window."""
    wins = windows(parse("train=2m,test=1m,step=1m"), date(2011, 7, 31), date(2011, 12, 31))
    hist = load_nfl(shared_data / "nfl", in_game=False)
    games = hist.between(wins[0].test_from, wins[-1].test_to)
    untraded = [g.game_id for g in games if not any(w.test_from <= g.day <= w.test_to for w in wins)]
    assert any(g.day == date(2011, 10, 30) for g in games)
    assert untraded == []


@pytest.mark.parametrize("spec", ["train=12m,test=3m,step=1m", "train=1y,test=14d,step=7d",
                                  "train=1y,test=1y,step=6m"])
def test_a_step_shorter_than_the_test_window_is_refused(spec: str) -> None:
    with pytest.raises(BacktestError, match=r"--walk-forward .*shorter than test=.*must not overlap"):
        parse(spec)


def test_mixed_units_that_would_overlap_are_refused() -> None:
    # 30 days of testing, stepped by a month: over a February the test windows would overlap
    with pytest.raises(BacktestError, match="must not overlap"):
        windows(parse("train=1y,test=30d,step=1m"), date(2010, 1, 31), date(2012, 1, 1))
