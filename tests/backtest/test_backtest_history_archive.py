"""The NFL history as a backtest loads it: every result archived once, `--no-in-game` leaves the play-by-play
out, and the results finished just before a window opens reach its models."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from precog.backtest.dataset import open_dataset
from precog.backtest.errors import BacktestError
from precog.backtest.feed import STATE, GuardedArchive, dt_to_ms
from precog.backtest.history import load_nfl
from precog.backtest.models import EloModel
from precog.backtest.runner import BacktestOptions, run_backtest


@pytest.fixture
def nfl(shared_data: Path) -> Path:
    return shared_data / "nfl"


def test_archive_holds_each_game_once_whatever_the_team_order(nfl: Path) -> None:
    """538 and spreadspoke list a neutral-site game (Super Bowl, London) with the teams in opposite order; the
    archive the models train on keeps it once (keyed by date and the unordered pair of teams)."""
    hist = load_nfl(nfl, in_game=False)
    keys = Counter((g.day, frozenset((g.home, g.away))) for g in hist.archive)
    dupes = sorted((d.isoformat(), sorted(t)) for (d, t), n in keys.items() if n > 1)
    assert dupes == [], f"games archived twice: {dupes}"


def test_elo_trains_on_a_season_with_a_super_bowl_once(nfl: Path) -> None:
    hist = load_nfl(nfl, in_game=False)
    end = max(g.final_ms for g in hist.archive)
    elo = EloModel()
    n = elo.train(GuardedArchive(hist.archive, lambda: end), dt_to_ms(datetime(2012, 9, 1, tzinfo=UTC)),
                  dt_to_ms(datetime(2013, 3, 1, tzinfo=UTC)))
    assert n == 267, f"the 2012 season has 256 regular-season and 11 playoff games; Elo trained on {n}"


def test_no_in_game_dataset_has_no_play_by_play(nfl: Path) -> None:
    """`--no-in-game` (BacktestOptions.in_game=False) opens the NFL history without the plays file."""
    with_plays = open_dataset(nfl, sigma=13.5, start=None, end=date(2021, 12, 31))
    without = open_dataset(nfl, sigma=13.5, start=None, end=date(2021, 12, 31), in_game=False)
    assert with_plays.has_in_game(date(2021, 9, 1), date(2021, 12, 31))
    assert not without.has_in_game(date(2000, 1, 1), date(2021, 12, 31))
    assert not [e for e in without.events(date(2013, 9, 1), date(2013, 9, 30), "T-") if e.kind == STATE]


async def test_no_in_game_run_replays_no_in_game_market(db_url: str, nfl: Path, tmp_path: Path) -> None:
    """2021 has play-by-play but no closing lines: without the plays there is nothing to trade, and the run says
    so instead of replaying in-game states."""
    opts = BacktestOptions(data=nfl, start=date(2021, 9, 12), end=date(2021, 9, 12), methods=["nfl_elo_pregame@v1.1"],
                           out=tmp_path / "r", train_years=1, in_game=False)
    with pytest.raises(BacktestError, match="no games to trade"):
        await run_backtest(db_url, opts)


class _LearnedElo(EloModel):
    """The shipped Elo model, remembering which results it learned (training window + released results)."""

    def __init__(self) -> None:
        super().__init__()
        self.learned: set[str] = set()

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        n = super().train(archive, start_ms, end_ms)
        self.learned |= {g.game_id for g in archive.finished_between(start_ms, end_ms)}
        return n

    def observe(self, event: Any, game: Any) -> bool:
        changed = super().observe(event, game)
        if changed:
            self.learned.add(game.schedule["game_id"])
        return changed


async def test_results_finished_the_day_before_the_window_are_trained_on(db_url: str, nfl: Path,
                                                                       tmp_path: Path) -> None:
    """Elo is trained on every result finished in the training window [from - 1y, from). With --from on a Monday,
    the Sunday games finish (21:10 UTC) after Monday's market is listed (26 h before kickoff): the window opens
    at the end of its training window, so they are trained on."""
    elo = _LearnedElo()
    opts = BacktestOptions(data=nfl, start=date(2013, 9, 9), end=date(2013, 9, 16), methods=["nfl_elo_pregame@v1.1"],
                           out=tmp_path / "r", train_years=1, extra_models={"elo": elo})
    result = await run_backtest(db_url, opts)
    hist = load_nfl(nfl, in_game=False)
    sunday = sorted(g.game_id for g in hist.games if g.day == date(2013, 9, 8))
    assert len(sunday) == 13
    missed = [g for g in sunday if g not in elo.learned]
    info = result.summary["windows"][0]["models"]["elo"]
    assert missed == [], f"{len(missed)} results of 2013-09-08 never reached the Elo model (trained {info})"
    assert info["last_game"] == "2013-09-08"
    # the Monday game (listed on Sunday) is still replayed and settled, from the window's start
    assert result.summary["windows"][0]["world"]["finals"] > 0


async def test_train_years_zero_trains_on_nothing(db_url: str, nfl: Path, tmp_path: Path) -> None:
    """`--train-years 0` is no training window: the models start untrained (Elo at the initial ratings) and learn
    only from the results released during the run, not from every result before --from."""
    elo = _LearnedElo()
    opts = BacktestOptions(data=nfl, start=date(2013, 9, 5), end=date(2013, 9, 10), methods=["nfl_elo_pregame@v1.1"],
                           out=tmp_path / "r", train_years=0, extra_models={"elo": elo})
    result = await run_backtest(db_url, opts)
    info = result.summary["windows"][0]["models"]["elo"]
    assert info["status"] == "untrained" and info["games"] == 0, info
    hist = load_nfl(nfl, in_game=False)
    in_run = {g.game_id for g in hist.games if date(2013, 9, 5) <= g.day <= date(2013, 9, 10)}
    assert elo.learned and elo.learned <= in_run, "learned results from before --from"
