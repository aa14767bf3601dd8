"""The user's commands: `precog demo` end to end, `precog run` (local and the prod-live guard), and
`precog pnl | positions | trades` on what they produced."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from precog.cli.errors import UserError
from precog.cli.run import check_live_allowed

LAST_LINE = re.compile(r"^demo: (\d+) trades, (\d+) positions settled, P&L -?\$[\d,]+\.\d\d, ledger match: (yes|no)$")


@pytest.mark.timeout(300)
def test_demo_runs_to_settlement_and_the_ledger_matches(precog_cli: Any, db_url: str) -> None:
    r = precog_cli("demo", "--games", "2", "--speed", "0", "--seed", "4", timeout=280)
    assert r.returncode == 0, r.stderr + r.stdout
    last = r.stdout.strip().splitlines()[-1]
    m = LAST_LINE.match(last)
    assert m, last
    assert int(m.group(1)) > 0 and m.group(3) == "yes"
    for section in ("P&L by method", "P&L by strategy", "P&L by model", "Exits by reason", "Ledger check",
                    "breakers tripped:", "alerts raised:"):
        assert section in r.stdout
    # what the demo traded is visible to the attribution commands
    pnl = precog_cli("pnl", "--by", "method", "--json")
    assert pnl.returncode == 0, pnl.stderr
    rows = json.loads(pnl.stdout)["rows"]
    assert {row["key"] for row in rows} <= {"nfl_elo_pregame v1.1", "nfl_live_wp v1.1"} and rows
    for by in ("strategy", "model", "sport", "day"):
        out = precog_cli("pnl", "--by", by, "--json")
        assert out.returncode == 0 and json.loads(out.stdout)["rows"], out.stderr
    trades = precog_cli("trades", "--json", "--limit", "5")
    assert trades.returncode == 0 and len(json.loads(trades.stdout)) == 5
    assert all(t["method_name"] and t["strategy_name"] and t["model_name"] for t in json.loads(trades.stdout))
    positions = precog_cli("positions", "--json")
    assert positions.returncode == 0
    assert all(p["status"] in ("closed", "settled") for p in json.loads(positions.stdout))
    open_only = precog_cli("positions", "--open", "--json")
    assert json.loads(open_only.stdout) == []
    # the simulated world is placed so that it ends by the time it was run: no trade or position is dated after
    # the moment it was booked (a future time on the dashboard's P&L curve or in `pnl --by day`)
    _no_simulated_time_after_booking(db_url)


def _no_simulated_time_after_booking(db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url) as conn:
        late = conn.execute("SELECT count(*) FILTER (WHERE execution_time > created_at), count(*) FROM trades"
                            ).fetchone()
        assert late is not None and late[1] > 0 and late[0] == 0, late
        late = conn.execute("SELECT count(*) FROM positions WHERE entry_time > created_at OR exit_time > now()"
                            ).fetchone()
        assert late == (0,)


def test_pnl_rejects_an_unknown_grouping(precog_cli: Any) -> None:
    r = precog_cli("pnl", "--by", "weather")
    assert r.returncode == 1 and "--by must be one of method, strategy, model, sport, day" in r.stderr


def test_live_on_prod_needs_an_explicit_confirmation(precog_cli: Any) -> None:
    r = precog_cli("run", "--live", "--env", "prod", "--venue", "kalshi")
    assert r.returncode == 1 and "refusing to trade live on prod" in r.stderr
    with pytest.raises(UserError):
        check_live_allowed(True, "prod", False, False)
    check_live_allowed(True, "prod", True, False)  # --confirm-live
    check_live_allowed(True, "prod", False, True)  # trading.live_trading_confirmed: true
    check_live_allowed(True, "demo", False, False)
    check_live_allowed(False, "prod", False, False)  # paper on prod data is always allowed


@pytest.mark.timeout(200)
def test_run_on_the_local_exchange_trades_and_stops_cleanly(precog_cli: Any, db_url: str) -> None:
    r = precog_cli("run", "--venue", "local", "--paper", "--speed", "300", "--interval", "0.05", "--duration", "12",
                   "--quiet", "--seed", "2", "--games", "1", timeout=180)
    assert r.returncode == 0, r.stderr
    m = re.search(r"run (\d+): (\d+) cycles, (\d+) fills, (\d+) open positions", r.stdout)
    assert m and int(m.group(2)) > 10, r.stdout
    # the simulated world ends with the run: nothing stays open (closed at its last marks if it was)
    assert int(m.group(4)) == 0, r.stdout
    _no_simulated_time_after_booking(db_url)  # at --speed 300 the world runs ahead of the wall clock 300 times


@pytest.mark.timeout(200)
def test_run_stops_cleanly_on_ctrl_c(db_url: str, precog_cli: Any) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import psycopg

    env = dict(os.environ, PRECOG_DATABASE_URL=db_url, NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "precog", "run", "--venue", "local", "--speed", "200",
                             "--interval", "0.05", "--quiet", "--seed", "3", "--games", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:  # wait until the loop has traded
            if conn.execute("SELECT count(*) FROM orders").fetchone()[0] > 0:  # type: ignore[index]
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert re.search(r"run \d+: \d+ cycles", out), out
        ended = conn.execute("SELECT ended_at IS NOT NULL FROM engine_runs WHERE kind = 'run'").fetchall()
        assert ended == [(True,)]
        # no entry order is left working at the venue side of our books
        left = conn.execute("SELECT count(*) FROM orders WHERE purpose = 'entry' AND status IN "
                            "('created', 'submitted', 'resting', 'partially_filled', 'cancel_pending')").fetchone()
        assert left == (0,)
