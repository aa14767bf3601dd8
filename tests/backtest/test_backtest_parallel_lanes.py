"""A/B lanes replayed in parallel processes (`precog backtest --jobs N`) store the very backtest the lanes store
one after another; a lane's failure stops the run with the lane's own exception as one after another would (the
lanes before it finish, the ones after it are stopped) and leaves no process behind."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backtest.bt_testkit import FixedModel, MeanReversionModel, method_row
from clikit import fails_with
from precog.backtest.errors import BacktestError, LookAheadError
from precog.backtest.feed import Event, GuardedArchive
from precog.backtest.models import GameInfo
from precog.backtest.runner import BacktestOptions, Progress, run_backtest
from precog.backtest.walkforward import parse as walk_forward
from precog.db.connection import connect
from precog.engine.core import Estimate
from precog.ingest.recorder import Recorder

# differ between two runs of the same backtest by construction: ids, wall-clock times
_VOLATILE = {"backtest_id", "generated_at", "engine_run_id", "position_id", "replay_seconds", "replay_cpu_seconds",
             "events_per_second"}


def _recording(folder: Path, quotes: int = 1500, markets: int = 8, seed: int = 5, spacing: float = 1.0,
               malformed: int = 0) -> None:
    """Kalshi ticker frames: per market a random-walk fair value, bid/ask a cent or two around it; the first
    `malformed` frames carry a price that does not parse (the replay skips and counts them)."""
    rng = random.Random(seed)
    fair = [rng.uniform(0.3, 0.7) for _ in range(markets)]
    t0 = datetime(2025, 10, 5, 17, tzinfo=UTC)
    with Recorder(folder, rotate_seconds=1e9) as rec:
        for k in range(quotes):
            i = rng.randrange(markets)
            fair[i] = min(0.9, max(0.1, fair[i] + rng.gauss(0.0, 0.02)))
            c = round(fair[i] * 100)
            bid, ask = c - rng.randint(1, 2), c + rng.randint(1, 2)
            rec.record("kalshi:ws", {"type": "ticker", "sid": 1, "msg": {
                "market_ticker": f"KXLANES-M{i:02d}-Y", "yes_bid_dollars": "n/a" if k < malformed else f"0.{bid:02d}00",
                "yes_ask_dollars": f"0.{ask:02d}00", "yes_bid_size_fp": "300", "yes_ask_size_fp": "300"}},
                t0 + timedelta(seconds=k * spacing))


def _comparable(x: Any) -> Any:
    """A summary without what differs between two runs by construction (ids, wall-clock times); market tickers
    carry the backtest id (B<id>L<lane>W<window>-)."""
    if isinstance(x, dict):
        return {k: _comparable(v) for k, v in x.items() if k not in _VOLATILE}
    if isinstance(x, list | tuple):
        return [_comparable(v) for v in x]
    if isinstance(x, str):
        return re.sub(r"B\d+L", "L", x)
    return x


def _trades_by_lane(url: str, summary: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    """Each engine run's trades in booking order, the runs in lane order."""
    with psycopg.connect(url) as conn:
        return [[(re.sub(r"B\d+L", "L", r[0]), *r[1:]) for r in conn.execute(
            "SELECT market_id, side, action, price, quantity, fees FROM trades "
            "WHERE (trade_metadata->>'run_id')::bigint = %s ORDER BY trade_id", (w["engine_run_id"],)).fetchall()]
            for w in summary["windows"]]


async def test_two_lanes_in_parallel_store_what_they_store_one_after_another(make_database: Any,
                                                                             tmp_path: Path) -> None:
    _recording(tmp_path / "rec", malformed=3)
    runs = []
    for jobs in (1, 2):
        url = make_database()
        with connect(url, autocommit=True) as conn:
            methods = [method_row(conn, "mean_reversion", "mean_reversion"), method_row(conn, "bull", "bull")]
        seen: list[Progress] = []
        opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / f"out{jobs}", jobs=jobs, extra_methods=methods,
                               extra_models={"mean_reversion": MeanReversionModel(),
                                             "bull": FixedModel("bull", Decimal("0.7"))})
        result = await run_backtest(url, opts, progress=seen.append)
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT lane, lane_methods, engine_run_id, summary FROM backtest_windows "
                                  "WHERE backtest_id = %s ORDER BY lane, window_index",
                                  (result.backtest_id,)).fetchall()
            status = conn.execute("SELECT status FROM backtest_runs WHERE backtest_id = %s",
                                  (result.backtest_id,)).fetchone()
        runs.append((result.summary, _trades_by_lane(url, result.summary), stored, status, seen))
    (seq, seq_trades, seq_rows, seq_status, _), (par, par_trades, par_rows, par_status, progress) = runs
    # both lanes traded, each on its own: the comparison means something
    assert [len(t) for t in seq_trades] == [len(t) for t in par_trades] and all(len(t) >= 3 for t in seq_trades)
    assert par_trades == seq_trades
    by = {r["method"]: r for r in par["by_method"]}
    assert by["mean_reversion@v1.0"]["positions"] > 0 and by["bull@v1.0"]["positions"] > 0
    assert _comparable(par) == _comparable(seq)
    # the frames that did not parse are counted whichever process read them
    assert par["data"]["skipped_messages"] == seq["data"]["skipped_messages"] == 3
    assert par["totals"]["pnl"] == seq["totals"]["pnl"] and par["totals"]["ledger_match"] is True
    # each lane's window stored with the engine run of its lane's process and the same window summary
    assert seq_status == par_status == ("finished",)
    assert [(lane, methods) for lane, methods, *_ in par_rows] == [(0, ["mean_reversion@v1.0"]), (1, ["bull@v1.0"])]
    assert [row[2] for row in par_rows] == [w["engine_run_id"] for w in par["windows"]]
    assert _comparable([row[3] for row in par_rows]) == _comparable([row[3] for row in seq_rows])
    # the caller's progress callback sees both lanes: the events of both, the whole run done at the end
    assert progress and all(p.lanes == 2 for p in progress)
    assert progress[-1].fraction == 1.0
    assert progress[-1].events_done == sum(w["world"]["events"] for w in par["windows"])
    assert multiprocessing.active_children() == []


class ExplodingModel:
    """A strategy that looks ahead at its first forecast (the run must stop with its exception)."""

    key = "exploding"

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0

    def observe(self, event: Event, game: GameInfo) -> None:
        return None

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        raise LookAheadError(f"peeked at the result of {game.ticker}")


class SlowModel(FixedModel):
    """A fixed forecast that takes its time: its lane is still replaying when the other lane fails."""

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        time.sleep(0.01)
        return super().estimate(game, now_ms)


async def test_a_failing_lane_stops_the_run_with_its_exception_and_no_process_is_left(db_url: str,
                                                                                      tmp_path: Path) -> None:
    _recording(tmp_path / "rec", quotes=3000, markets=4)
    with connect(db_url, autocommit=True) as conn:  # the failing lane first: the slow one after it is stopped
        methods = [method_row(conn, "exploding", "exploding"), method_row(conn, "slow", "slow")]
    opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", jobs=2, extra_methods=methods,
                           extra_models={"slow": SlowModel("slow", Decimal("0.5")), "exploding": ExplodingModel()})
    started = time.perf_counter()
    with pytest.raises(LookAheadError) as raised:
        await run_backtest(db_url, opts)
    assert re.fullmatch(r"peeked at the result of B\d+L0W0-KXLANES-M0\d-Y", str(raised.value)), str(raised.value)
    assert "exploding@v1.0" in "".join(getattr(raised.value, "__notes__", []))  # which lane, and its traceback
    assert multiprocessing.active_children() == []
    assert time.perf_counter() - started < 60
    with psycopg.connect(db_url) as conn:
        status, error = conn.execute("SELECT status, error FROM backtest_runs").fetchone()
        # the slow lane was stopped mid-replay (one after another it would never have started): no window of it
        unended = conn.execute("SELECT count(*) FROM engine_runs WHERE ended_at IS NULL").fetchone()[0]
        windows = conn.execute("SELECT count(*) FROM backtest_windows").fetchone()[0]
    assert status == "failed" and error.startswith("look-ahead detected: peeked at the result of")
    assert unended >= 1 and windows == 0


class LateExplodingModel(FixedModel):
    """A fixed forecast that peeks once the replay reaches `after_ms`: its lane fails in a later window."""

    def __init__(self, key: str, p: Decimal, after_ms: int) -> None:
        super().__init__(key, p)
        self.after_ms = after_ms

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        if now_ms >= self.after_ms:
            raise LookAheadError(f"peeked at the result of {game.ticker}")
        return super().estimate(game, now_ms)


async def test_a_lane_failing_in_a_later_window_leaves_the_windows_replayed_before_stored(
        make_database: Any, tmp_path: Path) -> None:
    """Walk-forward, one window a day: the second lane fails in its second window. The run stores every window
    that ended before the failure, then the failure: one after another that is all of the first lane's and the
    second lane's first; in parallel the same (the first lane finishes before the failure is raised)."""
    _recording(tmp_path / "rec", quotes=1300, markets=4, spacing=200.0)  # 2025-10-05 17:00 to 10-08 17:00
    day3 = int(datetime(2025, 10, 7, 12, tzinfo=UTC).timestamp() * 1000)  # inside the second test day (New York)
    stored_by_jobs = []
    for jobs in (1, 2):
        url = make_database()
        with connect(url, autocommit=True) as conn:
            methods = [method_row(conn, "bull", "bull"), method_row(conn, "late", "late")]
        opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / f"out{jobs}", jobs=jobs, extra_methods=methods,
                               walk_forward=walk_forward("train=1d,test=1d,step=1d"),
                               extra_models={"bull": FixedModel("bull", Decimal("0.7")),
                                             "late": LateExplodingModel("late", Decimal("0.7"), day3)})
        with pytest.raises(LookAheadError):
            await run_backtest(url, opts)
        with psycopg.connect(url) as conn:
            status = conn.execute("SELECT status FROM backtest_runs").fetchone()
            rows = conn.execute("SELECT lane, window_index, lane_methods FROM backtest_windows "
                                "ORDER BY lane, window_index").fetchall()
        assert status == ("failed",)
        stored_by_jobs.append(rows)
    # the first lane's three daily windows, the second lane's first (it failed in its second)
    assert stored_by_jobs[0] == [(0, 0, ["bull@v1.0"]), (0, 1, ["bull@v1.0"]), (0, 2, ["bull@v1.0"]),
                                 (1, 0, ["late@v1.0"])]
    assert stored_by_jobs[1] == stored_by_jobs[0]
    assert multiprocessing.active_children() == []


class DyingModel(ExplodingModel):
    """Its lane's process is killed at the first forecast (as the out-of-memory killer would): it says nothing."""

    key = "dying"

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        os.kill(os.getpid(), signal.SIGKILL)
        return None


async def test_a_lane_process_killed_mid_replay_fails_the_run(db_url: str, tmp_path: Path) -> None:
    _recording(tmp_path / "rec", quotes=3000, markets=4)
    with connect(db_url, autocommit=True) as conn:
        methods = [method_row(conn, "dying", "dying"), method_row(conn, "slow", "slow")]
    opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", jobs=2, extra_methods=methods,
                           extra_models={"slow": SlowModel("slow", Decimal("0.5")), "dying": DyingModel()})
    with pytest.raises(BacktestError, match=r"lane 0 \(dying@v1.0\): its process \(pid \d+\) exited with code -9 "
                                            r"before finishing"):
        await run_backtest(db_url, opts)
    assert multiprocessing.active_children() == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT status FROM backtest_runs").fetchone() == ("failed",)


async def test_options_that_cannot_cross_to_a_process_run_the_lanes_here(db_url: str, tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A model only this process can hold (a local class does not pickle): the lanes run one after another here,
    and the log says why."""

    class LocalBull(FixedModel):
        pass

    _recording(tmp_path / "rec", quotes=300, markets=2)
    with connect(db_url, autocommit=True) as conn:
        methods = [method_row(conn, "bull", "bull"), method_row(conn, "bear", "bear")]
    opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", jobs=2, extra_methods=methods,
                           extra_models={"bull": LocalBull("bull", Decimal("0.7")),
                                         "bear": FixedModel("bear", Decimal("0.3"))})
    with caplog.at_level(logging.WARNING, logger="precog.backtest.runner"):
        result = await run_backtest(db_url, opts)
    assert any("one after another in this process" in r.getMessage() and "pickle" in r.getMessage()
               for r in caplog.records), caplog.text
    assert [w["lane_methods"] for w in result.summary["windows"]] == [["bull@v1.0"], ["bear@v1.0"]]
    assert result.summary["totals"]["ledger_match"] is True


def test_jobs_below_one_is_refused(precog_cli: Any, tmp_path: Path) -> None:
    fails_with(precog_cli("backtest", "--data", str(tmp_path), "--jobs", "0"), "--jobs 0", "at least 1")


def test_by_default_only_season_scale_runs_replay_their_lanes_in_parallel(tmp_path: Path) -> None:
    """A lane process costs about 1.5 s to start: a run of a few weeks replays its lanes in-process unless --jobs
    says otherwise; a run of 90 days or more uses one process per lane, up to the CPUs."""
    from precog.backtest.runner import PARALLEL_MIN_DAYS, lane_jobs

    cpus = len(os.sched_getaffinity(0))
    default = BacktestOptions(data=tmp_path)
    assert lane_jobs(default, 2, span_days=PARALLEL_MIN_DAYS - 1) == 1
    assert lane_jobs(default, 2, span_days=PARALLEL_MIN_DAYS) == min(2, cpus)
    assert lane_jobs(default, 1, span_days=365) == 1
    assert lane_jobs(BacktestOptions(data=tmp_path, jobs=2), 3, span_days=7) == 2  # --jobs wins
    assert lane_jobs(BacktestOptions(data=tmp_path, jobs=4), 2, span_days=7) == 2  # never more than the lanes
