"""`precog halt`, `precog breakers trip` and `precog resume` reach the simulated trading loops (`precog run --venue
local`, `precog demo`) as they reach `precog run --venue kalshi`: those loops follow the database's breakers
within seconds (a close-all breaker closes their positions), while the simulated world's own trips - about money
that does not exist - never halt the real account."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.conftest import rig_config
from precog.trading.breakers import SimulationBreakerStore
from precog.trading.scan import board_for
from precog.trading.settings import TradingSettings

FOLLOW_WITHIN_S = 6.0  # the loop re-reads the breakers every 2 s; the rest is two busy shared cores


class LoopProcess:
    """`precog run --venue local` in a subprocess, its stderr lines timestamped as they arrive."""

    def __init__(self, db_url: str, *args: str) -> None:
        env = {**os.environ, "PRECOG_DATABASE_URL": db_url, "NO_COLOR": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen([sys.executable, "-m", "precog", "run", *args], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip()))

    def wait_for_line(self, text: str, since: float, timeout: float) -> float:
        """When the first line containing `text` arrived after `since` (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if at >= since and text in line:
                    return at
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} within {timeout} s; stderr:\n" + "\n".join(x for _, x in self.lines[-40:]))

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        self._reader.join(timeout=5)
        return out, "\n".join(x for _, x in self.lines)


@pytest.fixture
def local_loop(db_url: str) -> Iterator[Callable[..., LoopProcess]]:
    started: list[LoopProcess] = []

    def start(*args: str) -> LoopProcess:
        started.append(LoopProcess(db_url, *args))
        return started[-1]

    yield start
    for loop in started:
        if loop.proc.poll() is None:
            loop.proc.kill()
            loop.proc.wait(timeout=30)


def _wait_until(what: str, cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _scalar(db_url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


@pytest.mark.timeout(240)
def test_a_local_venue_loop_takes_halt_close_all_and_resume_from_the_database(db_url: str, precog_cli: Any,
                                                                              local_loop: Any) -> None:
    loop = local_loop("--venue", "local", "--paper", "--speed", "60", "--interval", "0.1", "--duration", "150",
                      "--quiet", "--games", "4", "--seed", "3", "--no-notify")
    open_positions = "SELECT count(*) FROM positions WHERE row_current_ind AND status = 'open'"
    _wait_until("the loop holds a position", lambda: (_scalar(db_url, open_positions) or 0) > 0, 90)

    halted = precog_cli("halt", "--reason", "venue incident drill", "--by", "alice")
    assert halted.returncode == 0, halted.stderr
    after_halt = time.monotonic()
    halt_db_time = _scalar(db_url, "SELECT now()")
    took = loop.wait_for_line("-> HALTED", after_halt - 2.0, FOLLOW_WITHIN_S) - after_halt
    assert took < FOLLOW_WITHIN_S
    time.sleep(4.0)  # halted for a while: no entry order after the halt has been taken
    late_entries = _scalar(db_url, "SELECT count(*) FROM orders WHERE purpose = 'entry' AND created_at > %s",
                           halt_db_time + timedelta(seconds=FOLLOW_WITHIN_S))
    assert late_entries == 0

    resumed = precog_cli("resume", "--by", "alice")
    assert resumed.returncode == 0, resumed.stderr
    loop.wait_for_line("HALTED -> ACTIVE", time.monotonic() - 1.0, FOLLOW_WITHIN_S)
    _wait_until("the loop holds a position again", lambda: (_scalar(db_url, open_positions) or 0) > 0, 90)

    # a close-all breaker tripped by the operator closes every position of the simulated account. The simulated
    # games go on meanwhile (60x), so the positions held when the breaker trips may also end by their own exits or
    # settlement first; the drill is repeated (up to three times) until the breaker itself closed one.
    breaker_exits = "SELECT count(*) FROM position_exits WHERE exit_condition = 'circuit_breaker'"
    for attempt in range(3):
        if attempt:
            _wait_until("the loop holds a position again", lambda: (_scalar(db_url, open_positions) or 0) > 0, 90)
        tripped = precog_cli("breakers", "trip", "daily_loss_limit", "--reason", "drill", "--by", "alice")
        assert tripped.returncode == 0, tripped.stderr
        _wait_until("every position closed", lambda: _scalar(db_url, open_positions) == 0, 30)
        resumed = precog_cli("resume", "--by", "alice", "--all")
        assert resumed.returncode == 0, resumed.stderr
        loop.wait_for_line("HALTED -> ACTIVE", time.monotonic() - 1.0, FOLLOW_WITHIN_S)
        if (_scalar(db_url, breaker_exits) or 0) > 0:
            break
    assert (_scalar(db_url, breaker_exits) or 0) > 0, "no drill saw the close-all breaker close a position"
    out, err = loop.stop()
    assert loop.proc.returncode == 0, err[-3000:]
    assert "state ACTIVE" in out.strip().splitlines()[-1], out


@pytest.mark.timeout(200)
def test_the_simulated_worlds_own_breaker_never_halts_the_account(db_url: str, precog_cli: Any) -> None:
    env = {"PRECOG_CFG__TRADING__ACCOUNT__DAILY_LOSS_LIMIT_DOLLARS": "0.01"}  # the world's first loss trips it
    r = precog_cli("demo", "--games", "1", "--speed", "0", "--seed", "4", "--no-notify", env=env, timeout=180)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "breakers tripped: daily_loss_limit" in r.stdout  # the run's report still shows its breaker
    listed = precog_cli("breakers", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    state = json.loads(listed.stdout)
    assert state["open"] == [], "a simulated loss must not halt (and close-all) the real account"
    assert state["trading_state"]["mode"] == "ACTIVE"


def test_a_simulation_never_resets_another_boards_breaker_in_its_fast_time(db_url: str) -> None:
    from precog.engine.demo import simulation_board

    cfg = rig_config()
    settings = TradingSettings.from_config(cfg)
    account = board_for(lambda: psycopg.connect(db_url, autocommit=True), settings)
    wall = time.time()
    # a real engine's rapid-loss breaker: it lifts itself 30 minutes from now, on the wall clock
    assert account.trip("rapid_loss", "lost $250 in 10 min", now=wall, reset_ts=wall + 1800) is not None
    board = simulation_board(db_url, cfg, None, "demo")
    board.simulation_store.attach(_scalar(db_url, "INSERT INTO engine_runs (kind, mode, platform_id) VALUES "
                                                  "('demo', 'paper', 'local') RETURNING run_id"))
    sim_now = wall + 4 * 3600  # the simulated clock runs hours ahead of the wall clock
    board.refresh(sim_now)
    board.entry_block(sim_now)
    assert str(board.mode) == "HALTED" and [b.name for b in board.open_breakers()] == ["rapid_loss"]
    assert _scalar(db_url, "SELECT count(*) FROM circuit_breaker_events WHERE resolved_at IS NULL") == 1

    # the world's own results count in memory only: the account's counters never see them
    board.record_trade_result(Decimal("-40"), at=sim_now)
    assert _scalar(db_url, "SELECT count(*) FROM breaker_counters") == 0

    # once the wall clock passes its reset, it no longer holds the simulation (whoever resolves the row)
    later = SimulationBreakerStore(lambda: psycopg.connect(db_url, autocommit=True), "demo",
                                   wall_clock=lambda: wall + 1801)
    assert later.load_open() == []
    later.close()
    board.end()


@pytest.mark.timeout(120)
def test_a_loop_paced_slower_than_real_time_follows_a_halt_within_seconds_of_wall_time(
        db_url: str, precog_cli: Any, local_loop: Any) -> None:
    # 0.1 simulated seconds per real second (the world moves in whole simulated seconds): the breakers are
    # re-read every 2 s of whichever clock passes first, not every 2 simulated seconds (10-20 s of an operator's
    # wall time here)
    loop = local_loop("--venue", "local", "--paper", "--speed", "0.1", "--interval", "0.1", "--duration", "30",
                      "--quiet", "--games", "1", "--seed", "5", "--no-notify")
    _wait_until("the loop is running", lambda: _scalar(db_url, "SELECT count(*) FROM engine_runs") > 0, 60)
    time.sleep(3.0)  # well into its stepping
    halted = precog_cli("halt", "--reason", "slow loop drill", "--by", "alice")
    assert halted.returncode == 0, halted.stderr
    after_halt = time.monotonic()
    took = loop.wait_for_line("-> HALTED", after_halt - 2.0, 30) - after_halt
    assert took < FOLLOW_WITHIN_S
    loop.stop()
