"""SIGKILL the trading process (engine + alerts + notifier) at random points, restart, repeat. Afterwards:
no order sent twice, no fill lost, every alert that was raised is stored and was notified (the webhook got
each one; a repeat after a kill carries the same delivery id), and positions equal the exchange's.

30 trials here plus the 20 of tests/engine/test_kill_restart.py: 50 over the suite.
PRECOG_KILL_TRIALS overrides the count (the report script runs more).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.alerts.notifier import Notifier
from precog.reliability import tally
from reliability.conftest import RelExchange
from reliability.relkit import MovingMarketMaker, check_books

CHILD = Path(__file__).with_name("rel_kill_child.py")
TRIALS = int(os.environ.get("PRECOG_KILL_TRIALS", "30"))
SECRET = "rel-kill-webhook-secret"


def _env(db_url: str, hook: str) -> dict[str, str]:
    return dict(os.environ, PRECOG_DATABASE_URL=db_url, PYTHONPATH=str(Path(__file__).parents[2] / "src"),
                PRECOG_CFG__SYSTEM__NOTIFICATIONS__WEBHOOK__ENABLED="true",
                PRECOG_CFG__SYSTEM__ALERT_ROUTING__LOW=json.dumps(["webhook", "database"]),
                PRECOG_CFG__SYSTEM__ALERT_ROUTING__HIGH=json.dumps(["webhook", "database"]),
                PRECOG_CFG__SYSTEM__ALERT_ROUTING__CRITICAL=json.dumps(["webhook", "database"]),
                PRECOG_CFG__SYSTEM__ENVIRONMENT__ACTIVE="test",
                # every cycle alerts: lift the webhook's hourly budget so rate limiting drops none of them
                PRECOG_CFG__SYSTEM__NOTIFICATIONS__RATE_LIMITS__WEBHOOK__PER_HOUR="100000",
                PRECOG_CFG__SYSTEM__NOTIFICATIONS__RATE_LIMITS__WEBHOOK__PER_DAY="100000",
                CUSTOM_WEBHOOK_URL=hook, PRECOG_WEBHOOK_SECRET=SECRET)


def _spawn(env: dict[str, str], rx: RelExchange, steps: int | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(CHILD), rx.base_url, rx.key_id, str(rx.key_path), ",".join(rx.tickers)]
    if steps is not None:
        args.append(str(steps))
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _alert_ids(out: str) -> list[int]:
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("alert ") and line.split()[1].isdigit()]


@pytest.mark.timeout(300)
def test_rel_sigkill_trials_lose_no_order_fill_alert_or_notification(
        db_url: str, rel_exchange: RelExchange, http_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rx = rel_exchange
    env = _env(db_url, http_server.url + "/hook")
    mm = MovingMarketMaker(rx.exchange, rx.mm, rx.tickers, seed=23)
    mm.start()
    rng = random.Random(17)
    printed: list[int] = []
    with_activity = 0
    try:
        for _ in range(TRIALS):
            before = len(rx.exchange.account(rx.user).orders)
            child = _spawn(env, rx)
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == "started", child.stderr.read() if child.stderr else line
            time.sleep(rng.uniform(0.05, 0.8))
            child.send_signal(signal.SIGKILL)
            out, _ = child.communicate(timeout=10)
            printed.extend(_alert_ids(out))
            if len(rx.exchange.account(rx.user).orders) > before:
                with_activity += 1
        mm.stop()
        final = _spawn(env, rx, steps=5)
        out, err = final.communicate(timeout=90)
        assert final.returncode == 0, err
        printed.extend(_alert_ids(out))
    finally:
        mm.stop()

    # whatever the killed notifiers left in the outbox is delivered now
    for key, value in env.items():
        if key.startswith(("PRECOG_CFG__", "CUSTOM_WEBHOOK", "PRECOG_WEBHOOK")):
            monkeypatch.setenv(key, value)
    notifier = Notifier(db_url)
    for _ in range(5):
        notifier.deliver_pending()
    notifier.close()

    books = check_books(psycopg.connect(db_url), rx.exchange, rx.user)
    assert with_activity >= TRIALS // 3, "the kills must land while orders are flowing"
    assert books.venue_orders > TRIALS // 2
    assert books.clean, books
    with psycopg.connect(db_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT alert_id FROM alerts").fetchall()}
        lost_alerts = [a for a in printed if a not in stored]
        assert not lost_alerts, f"alerts raised but not stored: {lost_alerts}"
        undelivered = conn.execute("SELECT count(*) FROM alert_outbox WHERE channel = 'webhook' AND "
                                   "status <> 'sent'").fetchone()[0]
    delivered_ids = {json.loads(r.body)["alert_id"] for r in http_server.requests}
    lost_notifications = [a for a in printed if a not in delivered_ids]
    assert undelivered == 0
    assert not lost_notifications, f"alerts never notified: {lost_notifications[:10]}"
    deliveries = [r.headers.get("x-precog-delivery") for r in http_server.requests]
    assert len(printed) > TRIALS
    tally.record("process: SIGKILL of the trading process (engine + alerts + notifier) at a random point", TRIALS,
                 f"restart reconciled with the venue; {books.venue_orders} orders, {books.venue_fills} fills, "
                 f"{len(printed)} alerts all intact; webhook repeats after a kill: "
                 f"{len(deliveries) - len(set(deliveries))} (same delivery id, dropped by the receiver)",
                 lost_orders=books.lost_orders + books.duplicate_orders, lost_fills=books.lost_fills,
                 lost_alerts=len(lost_alerts) + len(lost_notifications))
