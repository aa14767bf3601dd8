"""One trading loop per venue account: a `precog run` started while another one still trades the same account
(a restart while the old process is still alive or stopping, a second terminal, a service plus a manual start)
is refused before it touches the venue.

Found by the session 16 crash/restart audit: a run left alive beside its "restart" booked every fill of the
account into its own in-memory positions. When one loop closed a position, the other kept its stale open copy,
saved it open again and sent exits for contracts the account no longer held - the venue went short, our books
held a position the venue did not (`fill_not_booked`, books != venue). A killed process must not block the
restart: its session ends with it, and so does its claim on the account.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization

from precog.venues.exchange.auth import generate_key_pair
from precog.venues.exchange.runner import ExchangeServer


def _loop_env(db_url: str, server: Any, key_id: str, key_path: Path, cfg_dir: Path) -> dict[str, str]:
    return {"PRECOG_DATABASE_URL": db_url, "PRECOG_HOME": os.environ["PRECOG_HOME"], "NO_COLOR": "1",
            "COLUMNS": "200", "KALSHI_BASE_URL": server.base_url, "KALSHI_API_KEY_ID": key_id,
            "KALSHI_PRIVATE_KEY_PATH": str(key_path), "PRECOG_CONFIG_DIR": str(cfg_dir)}


def _start_loop(env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "precog", "run", "--venue", "kalshi", "--env", "demo", "--live",
                             "--no-ingest", "--no-notify", "--quiet", "--interval", "0.2", *extra],
                            env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_cycles(conn: psycopg.Connection[Any], proc: subprocess.Popen[str], timeout: float = 90) -> int:
    """The run id of `proc` once it has reconciled and traded (an order of its own is on the venue's books)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        row = conn.execute("SELECT o.run_id FROM orders o JOIN engine_runs r ON r.run_id = o.run_id "
                           "WHERE r.ended_at IS NULL ORDER BY o.id DESC LIMIT 1").fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.2)
    raise AssertionError("the first loop never sent an order")


@pytest.fixture
def kalshi_world(db_url: str, tmp_path: Path) -> Any:
    from trading.trading_dbkit import create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn, status="active")
    key_id, key_path, public_pem = generate_key_pair(tmp_path / "keys")
    ex, _ = world_exchange()
    server = ExchangeServer(ex)
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    # the first decision scan comes before the loop's own stream subscribed its markets: send the entry at once
    (cfg / "trading.yaml").write_text("manual_approval:\n  when_realtime_down: false\n", encoding="utf-8")
    server.start()
    try:
        yield world, ex, _loop_env(db_url, server, key_id, key_path, cfg)
    finally:
        server.stop()
        world.conn.close()


@pytest.mark.timeout(240)
def test_a_second_loop_on_an_account_in_use_is_refused(kalshi_world: Any, precog_cli: Any) -> None:
    world, _, env = kalshi_world
    first = _start_loop(env)
    try:
        running = _wait_for_cycles(world.conn, first)
        # a run killed earlier on the same account never ended its row: the refusal still names the live one
        world.conn.execute("INSERT INTO engine_runs (kind, mode, platform_id, environment, account_ref) "
                           "SELECT kind, mode, platform_id, environment, account_ref FROM engine_runs "
                           "WHERE run_id = %s", (running,))
        second = precog_cli("run", "--venue", "kalshi", "--env", "demo", "--live", "--no-ingest", "--no-notify",
                            "--quiet", "--interval", "0.2", "--duration", "3", env=env, timeout=150)
        assert second.returncode == 1, second.stdout + second.stderr
        err = " ".join(second.stderr.split())
        assert f"run {running} (started" in err and "already trading" in err, err
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the loop that was there first trades on
        # the refused loop sent nothing (an order row is written before the venue hears of it), and its run row
        # is closed, not left looking alive
        refused = world.conn.execute("SELECT run_id, ended_at IS NOT NULL, summary->>'refused' FROM engine_runs "
                                     "WHERE run_id > %s + 1 ORDER BY run_id", (running,)).fetchall()
        assert len(refused) == 1 and refused[0][1] and refused[0][2], refused
        assert world.conn.execute("SELECT count(*) FROM orders WHERE run_id = %s",
                                  (refused[0][0],)).fetchone() == (0,)
    finally:
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert re.search(r"run \d+: \d+ cycles", out), out


@pytest.mark.timeout(240)
def test_a_killed_loop_does_not_block_its_restart(kalshi_world: Any, precog_cli: Any) -> None:
    world, ex, env = kalshi_world
    first = _start_loop(env)
    _wait_for_cycles(world.conn, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    again = precog_cli("run", "--venue", "kalshi", "--env", "demo", "--live", "--no-ingest", "--no-notify",
                       "--quiet", "--interval", "0.2", "--duration", "3", env=env, timeout=150)
    assert again.returncode == 0, again.stderr
    assert re.search(r"run \d+: \d+ cycles", again.stdout), again.stdout
    # the restart reconciled: our contracts equal the venue's on every market
    for market_id, side, qty in world.conn.execute(
            "SELECT market_id, side, sum(quantity) FROM positions WHERE row_current_ind AND status = 'open' "
            "GROUP BY 1, 2").fetchall():
        assert ex.account("us").positions[market_id].net == (qty if side == "yes" else -qty)
