"""Crash between outbox write and delivery: after a restart the notification is delivered exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg

RAISER = textwrap.dedent("""
    import os, time
    from precog.alerts import AlertManager
    manager = AlertManager(os.environ["PRECOG_DATABASE_URL"])
    alert_id = manager.raise_alert("venue_down", "critical", "kalshi", "venue unreachable", dedup_key="crash")
    print(alert_id, flush=True)
    time.sleep(600)  # killed with SIGKILL long before this ends: no notifier ever ran in this process
""")


def _env(db_url: str, hook: str) -> dict[str, str]:
    return {
        "PRECOG_DATABASE_URL": db_url,
        "PRECOG_HOME": os.environ["PRECOG_HOME"],
        "PRECOG_CFG__SYSTEM__NOTIFICATIONS__WEBHOOK__ENABLED": "true",
        "PRECOG_CFG__SYSTEM__ALERT_ROUTING__CRITICAL": json.dumps(["webhook", "database"]),
        "PRECOG_CFG__SYSTEM__ENVIRONMENT__ACTIVE": "test",
        "CUSTOM_WEBHOOK_URL": hook,
        "PRECOG_WEBHOOK_SECRET": "crash-test-secret",
        "NO_COLOR": "1",
    }


def _outbox(db_url: str) -> list[tuple[str, int]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT status, attempts FROM alert_outbox ORDER BY outbox_id").fetchall()


def test_killed_after_raise_then_restart_delivers_exactly_once(db_url, http_server, precog_cli) -> None:
    env = _env(db_url, f"{http_server.url}/hook")
    proc = subprocess.Popen([sys.executable, "-c", RAISER], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read()
        alert_id = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # The alert and its outbox row were committed together before raise_alert returned.
    assert _outbox(db_url) == [("pending", 0)]
    assert http_server.requests == []

    first = precog_cli("alerts", "deliver", "--once", env=env)
    assert first.returncode == 0, first.stderr
    assert len(http_server.requests) == 1
    assert http_server.requests[0].json()["alert_id"] == alert_id
    assert _outbox(db_url) == [("sent", 1)]

    again = precog_cli("alerts", "deliver", "--once", env=env)
    assert again.returncode == 0, again.stderr
    assert "nothing to deliver" in again.stdout
    assert len(http_server.requests) == 1  # delivered ones are never sent again


def test_killed_during_send_is_redelivered_with_the_same_delivery_id(db_url, http_server, precog_cli) -> None:
    """The documented window: the receiver got the POST but the sender died before committing `sent`."""
    env = _env(db_url, f"{http_server.url}/hook")
    worker: dict[str, subprocess.Popen[str]] = {}
    killed = threading.Event()

    def kill_sender_before_answering(req) -> None:
        if not killed.is_set():
            os.kill(worker["proc"].pid, signal.SIGKILL)
            killed.set()
            time.sleep(0.2)

    http_server.on_request = kill_sender_before_answering
    raised = precog_cli("alerts", "test", "--channel", "console", env=env)  # migrates + proves the CLI works
    assert raised.returncode == 0, raised.stderr
    with psycopg.connect(db_url) as conn:
        conn.execute("TRUNCATE alert_outbox, alerts RESTART IDENTITY CASCADE")
    proc = subprocess.Popen([sys.executable, "-c", RAISER], env={**os.environ, **env}, stdout=subprocess.PIPE,
                            text=True)
    proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    worker["proc"] = subprocess.Popen([sys.executable, "-m", "precog", "alerts", "deliver"],
                                      env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert killed.wait(60), "the notifier never sent"
    worker["proc"].wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _outbox(db_url) != [("pending", 0)]:
        time.sleep(0.1)
    assert _outbox(db_url) == [("pending", 0)]  # the claim died with the process: still pending, not lost

    http_server.on_request = None
    result = precog_cli("alerts", "deliver", "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert _outbox(db_url) == [("sent", 1)]
    ids = {r.headers["x-precog-delivery"] for r in http_server.requests}
    assert len(http_server.requests) == 2 and len(ids) == 1  # receivers dedupe on X-Precog-Delivery
