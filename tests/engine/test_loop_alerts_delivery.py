"""The simulated trading loops (`precog demo`, `precog run --venue local`) raise alerts as `precog run --venue kalshi`
does: through the AlertManager (dedup, secret redaction, the outbox) and delivered to the configured channels by a
notifier in the same process - console only when nothing is configured."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from alerts.alertkit import HttpRecorder, http_server  # noqa: F401 - the fixture
from precog.engine.alert_sink import loop_alerts

SLACK_PATH = "/services/T0PRECOG/B0LOOPS/sEcReTsLaCkToKeN42"


@pytest.mark.timeout(200)
def test_the_demo_delivers_its_alerts_to_the_configured_webhook(db_url: str, precog_cli: Any,
                                                                http_server: HttpRecorder) -> None:  # noqa: F811
    env = {
        "PRECOG_CFG__SYSTEM__NOTIFICATIONS__WEBHOOK__ENABLED": "true",
        "PRECOG_CFG__SYSTEM__ALERT_ROUTING__CRITICAL": json.dumps(["console", "webhook", "database"]),
        "CUSTOM_WEBHOOK_URL": f"{http_server.url}/hook",
        "PRECOG_WEBHOOK_SECRET": "demo-hook-secret",
        # any loss trips the daily-loss breaker: a critical alert on the simulated world's first losing mark
        "PRECOG_CFG__TRADING__ACCOUNT__DAILY_LOSS_LIMIT_DOLLARS": "0.01",
    }
    r = precog_cli("demo", "--games", "1", "--speed", "0", "--seed", "4", env=env, timeout=180)
    assert r.returncode == 0, r.stderr + r.stdout
    with psycopg.connect(db_url) as conn:
        alerts = conn.execute("SELECT alert_id FROM alerts WHERE alert_type = 'circuit_breaker' "
                              "AND severity = 'critical'").fetchall()
        deliveries = conn.execute("SELECT channel, status FROM alert_outbox ORDER BY channel").fetchall()
    assert alerts, "the demo's loss should trip a breaker (critical alert): " + r.stdout[-2000:]
    assert {d for d in deliveries} == {("console", "sent"), ("webhook", "sent")}, deliveries
    delivered = [req.json() for req in http_server.requests]
    assert [d["alert_type"] for d in delivered] == ["circuit_breaker"] * len(alerts)
    assert "CRITICAL" in r.stderr and "circuit_breaker" in r.stderr  # the console channel, always on


def test_the_loops_alerts_are_redacted_stored_and_sent_to_slack(
        db_url: str, http_server: HttpRecorder, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    hook = f"{http_server.url}{SLACK_PATH}"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", hook)
    monkeypatch.setenv("PRECOG_CFG__SYSTEM__NOTIFICATIONS__SLACK__ENABLED", "true")
    monkeypatch.setenv("PRECOG_CFG__SYSTEM__ALERT_ROUTING__HIGH", json.dumps(["slack", "database"]))
    with loop_alerts(db_url, notify=True) as alerts:  # what `precog run` and `precog demo` raise through
        alert_id = alerts.raise_alert("engine_step_failed", "high", "trading_engine",
                                      f"engine step failed: POST {hook} answered 500",
                                      {"url": hook}, dedup_key="step:HTTPError", category="system")
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT message, details::text FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
        outbox = conn.execute("SELECT channel, status FROM alert_outbox WHERE alert_id = %s", (alert_id,)).fetchall()
    assert row is not None
    assert "sEcReTsLaCkToKeN42" not in row[0] + row[1] and "***" in row[0], row
    assert outbox == [("slack", "sent")]
    (req,) = http_server.requests
    assert req.path == SLACK_PATH
    assert "engine step failed" in req.json()["text"] and "sEcReTsLaCkToKeN42" not in req.body.decode()
