"""Alerts spooled during a database outage are replayed by the processes that keep running -- the manager that
spooled them once it reaches the database again, and a running notifier -- and never twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from alerts.alertkit import make_settings
from precog.alerts import AlertManager, spool


def _allow(admin: str, name: str, allow: bool) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allow else "false"}')
        if not allow:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def _count(db_url: str, alert_type: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM alerts WHERE alert_type = %s", (alert_type,)).fetchone()[0]


def _wait_for(condition, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _records(n: int, alert_type: str) -> list[dict[str, object]]:
    return [{"alert_type": alert_type, "severity": "critical", "category": "system", "component": "engine",
             "message": f"spooled {i}", "details": None, "source_table": None, "source_id": None,
             "dedup_key": f"k{i}", "tags": None, "triggered_at": "2025-03-01T11:00:00+00:00"} for i in range(n)]


def test_running_manager_replays_its_spool_once_the_database_is_back(alerting, db_url, pg_admin_url,
                                                                      tmp_path) -> None:
    """An alert raised while the database refuses connections is spooled; when the database is back the same
    (still running) manager stores it -- no restart, no `precog alerts deliver` needed -- exactly once."""
    a = alerting(make_settings())
    name = urlsplit(db_url).path.lstrip("/")
    _allow(pg_admin_url, name, False)
    try:
        lost = a.manager.raise_alert("database_error", "critical", "trading_engine", "orders table unwritable")
    finally:
        _allow(pg_admin_url, name, True)
    assert lost is None and spool.waiting(tmp_path / "spool.jsonl")
    # The next successful write wakes the background replay at once.
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "later alert")
    assert _wait_for(lambda: _count(db_url, "database_error") == 1), "the spooled alert was not replayed"
    assert _wait_for(lambda: not spool.waiting(tmp_path / "spool.jsonl"))
    with psycopg.connect(db_url) as conn:
        queued = conn.execute("SELECT count(*) FROM alert_outbox o JOIN alerts a USING (alert_id)"
                              " WHERE a.alert_type = 'database_error'").fetchone()[0]
    assert queued == 2 and _count(db_url, "database_error") == 1  # console + file, once


def test_running_notifier_replays_a_spool_left_by_another_process(alerting, db_url) -> None:
    """A process spooled alerts and exited; the notifier that keeps running (`precog alerts deliver`)
    replays them at its next scan and delivers them."""
    a = alerting(make_settings())
    path = a.notifier.spool_path
    spool.append_many(path, _records(3, "engine_step_failed"))
    a.notifier.start()
    try:
        assert _wait_for(lambda: _count(db_url, "engine_step_failed") == 3)
        assert _wait_for(lambda: "spooled 2" in a.console_text())
    finally:
        a.notifier.stop()
    assert not spool.waiting(path) and _count(db_url, "engine_step_failed") == 3


def test_concurrent_replays_in_one_process_raise_each_alert_once(db_url, clock, tmp_path: Path) -> None:
    """Two managers of one process replay the same spool at the same time (e.g. the background replay and an
    explicit replay_spool()): the file claimed by one thread is not taken by the other."""
    path = tmp_path / "shared-spool.jsonl"
    spool.append_many(path, _records(200, "replayed_once"))
    settings = make_settings(dedup_window_minutes=0)  # no dedup: a second replay would show as extra rows
    managers = [AlertManager(db_url, settings=settings, clock=clock, environ={}, spool_path=path, replay_spool=False)
                for _ in range(2)]
    start = threading.Barrier(2)

    def replay(m: AlertManager) -> None:
        start.wait()
        while spool.waiting(path):
            m.replay_spool()
            time.sleep(0.01)

    threads = [threading.Thread(target=replay, args=(m,)) for m in managers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for m in managers:
            m.close()
    assert _count(db_url, "replayed_once") == 200
