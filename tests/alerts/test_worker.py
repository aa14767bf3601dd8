"""The long-running notifier (thread and asyncio task) and several notifiers sharing one outbox."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

from alerts.alertkit import make_settings
from precog.alerts import AlertManager, Notifier
from precog.alerts.clock import SystemClock


def _webhook(url: str) -> dict[str, str]:
    return {"CUSTOM_WEBHOOK_URL": url, "PRECOG_WEBHOOK_SECRET": "worker-secret-1"}


def _settings():
    return make_settings(enabled={"webhook": True}, routing_by_type={"fill": ("webhook",)}, worker_poll_seconds=5)


def _wait_for(predicate, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_background_notifier_is_woken_by_notify(db_url, http_server, tmp_path, home) -> None:
    env = _webhook(http_server.url)
    notifier = Notifier(db_url, settings=_settings(), environ=env, home=home)
    notifier.start()
    try:
        time.sleep(0.5)  # let it LISTEN
        with AlertManager(db_url, settings=_settings(), environ=env, spool_path=tmp_path / "s") as manager:
            start = time.monotonic()
            manager.raise_alert("fill", "low", "executor", "filled 10 @ 0.55")
            # Delivered well before the 5 s poll: the commit's NOTIFY woke the worker.
            assert _wait_for(lambda: len(http_server.requests) == 1)
            assert time.monotonic() - start < 4
    finally:
        notifier.stop()
    assert len(http_server.requests) == 1


async def test_notifier_as_asyncio_task(db_url, http_server, tmp_path, home) -> None:
    env = _webhook(http_server.url)
    notifier = Notifier(db_url, settings=_settings(), environ=env, home=home)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run_async(stop))
    await asyncio.sleep(0.5)
    with AlertManager(db_url, settings=_settings(), environ=env, spool_path=tmp_path / "s") as manager:
        manager.raise_alert("fill", "low", "executor", "filled")
    for _ in range(500):
        if http_server.requests:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert len(http_server.requests) == 1


def test_two_notifiers_never_send_the_same_row_twice(alerting, db_url, http_server, home) -> None:
    env = _webhook(http_server.url)
    a = alerting(_settings(), environ=env, )
    for i in range(40):
        a.manager.raise_alert("fill", "low", "executor", f"fill {i}")
    second = Notifier(db_url, settings=_settings(), environ=env, home=home, clock=SystemClock())
    reports = []
    threads = [threading.Thread(target=lambda n=n: reports.append(n.deliver_pending())) for n in (a.notifier, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second.close()
    ids = Counter(r.headers["x-precog-delivery"] for r in http_server.requests)
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert sum(r.counts().get("webhook", {}).get("sent", 0) for r in reports) == 40


def test_deliver_command_stops_cleanly_on_sigterm(db_url) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "PRECOG_DATABASE_URL": db_url, "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "precog", "alerts", "deliver"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "notifier running" in line, line + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "notifier stopped" in err
