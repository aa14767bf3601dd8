"""Inputs a new operator gets wrong, found by walking through the README and docs/operations.md.

* `precog backtest --bankroll NaN` (or Infinity) ended in "InvalidOperation: [<class ...>]"; Infinity even
  started a run that was stored as failed.
* `precog pnl|positions|trades --run 999` (no such engine run) printed an empty table and "no positions yet
  (run `precog demo` ...)", as if nothing had traded.
* `precog run --venue local --speed 200` moved the simulated world 200 s between position checks: every open
  position raised a critical `position_unmonitored` alert on each cycle and exits were checked at a cadence
  live trading never has.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.cli.errors import UserError
from precog.cli.run import check_simulated_pace
from precog.config.loader import load_config


def _offline(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with a database that does not answer: the argument checks come first."""
    env = dict(os.environ, PRECOG_HOME=str(tmp_path / "home"), NO_COLOR="1", COLUMNS="200",
               PRECOG_DATABASE_URL="postgresql://precog:x@127.0.0.1:1/precog")
    return subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN", "0", "-5"])
def test_a_bankroll_that_is_not_a_positive_finite_number_is_refused_naming_the_option(tmp_path: Path,
                                                                                     value: str) -> None:
    r = _offline(tmp_path, "backtest", "--data", str(tmp_path), "--from", "2021-09-09", "--to", "2021-09-20",
                 "--bankroll", value)
    assert r.returncode == 1, r.stderr
    assert f"--bankroll {value!r}: expected a positive number" in r.stderr, r.stderr
    assert "InvalidOperation" not in r.stderr and "Traceback" not in r.stderr


def test_a_half_spread_that_is_not_finite_is_refused_naming_the_option(tmp_path: Path) -> None:
    r = _offline(tmp_path, "backtest", "--data", str(tmp_path), "--half-spread", "NaN")
    assert r.returncode == 1 and "--half-spread 'NaN'" in r.stderr, r.stderr


@pytest.mark.parametrize("command", [["pnl"], ["pnl", "--by", "day"], ["positions"], ["trades"]])
def test_an_unknown_engine_run_is_an_error_not_an_empty_report(precog_cli: Any, command: list[str]) -> None:
    r = precog_cli(*command, "--run", "999")
    assert r.returncode == 1, r.stdout
    assert "--run 999: no engine run with this id (there are none yet" in r.stderr, r.stderr
    assert "no positions yet" not in r.stdout


def test_a_known_run_without_positions_says_so_without_sending_the_user_to_the_demo(
        precog_cli: Any, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        run_id = conn.execute("INSERT INTO engine_runs (kind, mode, platform_id, environment) "
                              "VALUES ('run', 'paper', 'local', 'demo') RETURNING run_id").fetchone()[0]  # type: ignore[index]
    r = precog_cli("pnl", "--run", str(run_id))
    assert r.returncode == 0, r.stderr
    assert f"no positions of run {run_id}" in r.stdout and "precog demo" not in r.stdout
    other = precog_cli("pnl", "--run", str(run_id + 1))
    assert other.returncode == 1 and f"the latest is {run_id}" in other.stderr, other.stderr


def test_a_local_run_paced_past_the_monitor_cadence_is_refused_before_it_starts(precog_cli: Any,
                                                                                 db_url: str) -> None:
    r = precog_cli("run", "--venue", "local", "--paper", "--speed", "200", "--duration", "3", "--quiet",
                   "--games", "1", "--no-notify")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "--speed 200 with --interval 1" in r.stderr and "normal_frequency (30 s)" in r.stderr, r.stderr
    assert "use --speed <= 30" in r.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM engine_runs").fetchone() == (0,)


def test_the_documented_paces_are_accepted() -> None:
    cfg = load_config(use_env=False, use_overrides=False)
    check_simulated_pace(30, 1.0, cfg)  # docs/operations.md: precog run --paper --venue local --speed 30
    check_simulated_pace(1, 1.0, cfg)  # the default
    check_simulated_pace(300, 0.05, cfg)  # fast tests: 15 simulated seconds between checks
    check_simulated_pace(5, 60.0, cfg)  # a long --interval: the loop still wakes for checks every 5 s
    with pytest.raises(UserError, match="--speed <= 30"):
        check_simulated_pace(31, 1.0, cfg)
    with pytest.raises(UserError, match="--speed <= 6"):
        check_simulated_pace(7, 60.0, cfg)
