"""Routing by severity (with per-type overrides) and re-notification of unresolved critical/high alerts."""

from __future__ import annotations

import json

import psycopg

from alerts.alertkit import make_settings
from precog.alerts import AlertSettings
from precog.config.loader import load_config


def _queued(db_url: str, alert_id: int, kind: str | None = None) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT channel FROM alert_outbox WHERE alert_id = %s AND (%s::text IS NULL OR kind = %s)"
                            " ORDER BY channel", (alert_id, kind, kind)).fetchall()
    return [r[0] for r in rows]


def test_default_routing_from_system_yaml() -> None:
    settings = AlertSettings.from_config(load_config(environ={}, use_overrides=False))
    assert settings.routing["critical"] == ("console", "file", "email", "sms", "database")
    assert settings.routing["low"] == ("file", "database")
    # email and sms are disabled by default, so critical goes to console, file and the database.
    assert settings.routes("circuit_breaker", "critical") == ("console", "file", "database")


def test_routes_follow_severity_and_enabled_channels(alerting, db_url) -> None:
    a = alerting(make_settings(enabled={"email": True, "sms": True}))
    crit = a.manager.raise_alert("circuit_breaker", "critical", "risk", "halt")
    high = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    medium = a.manager.raise_alert("model_degradation", "medium", "forecast", "x")
    low = a.manager.raise_alert("informational", "low", "engine", "x")
    assert _queued(db_url, crit) == ["console", "email", "file", "sms"]
    assert _queued(db_url, high) == ["console", "email", "file"]
    assert _queued(db_url, medium) == ["console", "file"]
    assert _queued(db_url, low) == ["file"]
    assert a.manager.get(low).notification_channels == {"file": False, "database": True}


def test_per_type_override(alerting, db_url) -> None:
    a = alerting(make_settings(enabled={"webhook": True}, routing_by_type={"fill": ("webhook", "database")}))
    fill = a.manager.raise_alert("fill", "low", "executor", "filled 10 @ 0.55")
    assert _queued(db_url, fill) == ["webhook"]


def test_routing_overrides_from_environment_config() -> None:
    env = {"PRECOG_CFG__SYSTEM__ALERT_ROUTING__HIGH": json.dumps(["webhook", "database"]),
           "PRECOG_CFG__SYSTEM__NOTIFICATIONS__WEBHOOK__ENABLED": "true"}
    settings = AlertSettings.from_config(load_config(environ=env, use_overrides=False))
    assert settings.routes("api_failure", "high") == ("webhook", "database")


def test_unresolved_critical_is_renotified_after_the_interval(alerting, clock, db_url) -> None:
    a = alerting(make_settings(renotify_minutes=30))
    crit = a.manager.raise_alert("circuit_breaker", "critical", "risk", "halted")
    medium = a.manager.raise_alert("model_degradation", "medium", "forecast", "drift")
    first = a.notifier.deliver_pending()
    assert first.renotified == 0
    clock.advance(minutes=29)
    assert a.notifier.deliver_pending().renotified == 0
    clock.advance(minutes=2)
    report = a.notifier.deliver_pending()
    assert report.renotified == 1  # the medium alert is never re-notified
    assert {(o.alert_id, o.kind, o.status) for o in report.outcomes} == {(crit, "renotify", "sent")}
    assert _queued(db_url, medium, "renotify") == []
    record = a.manager.get(crit)
    assert record.renotify_count == 1 and record.last_notified_at == clock.now()
    assert "REMINDER: CRITICAL" in a.console_text()
    # Not again before another interval has passed.
    clock.advance(minutes=10)
    assert a.notifier.deliver_pending().renotified == 0


def test_acknowledged_or_resolved_alerts_are_not_renotified(alerting, clock) -> None:
    a = alerting(make_settings(renotify_minutes=30))
    acked = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x", dedup_key="1")
    a.manager.acknowledge(acked, "alice")
    resolved = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x", dedup_key="2")
    a.manager.acknowledge(resolved, "alice")
    a.manager.resolve(resolved, "alice", "fixed")
    a.notifier.deliver_pending()
    clock.advance(minutes=45)
    assert a.notifier.deliver_pending().renotified == 0


def test_acknowledged_alerts_renotified_when_configured(alerting, clock) -> None:
    a = alerting(make_settings(renotify_minutes=30, renotify_acknowledged=True))
    acked = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    a.manager.acknowledge(acked, "alice")
    a.notifier.deliver_pending()
    clock.advance(minutes=31)
    assert a.notifier.deliver_pending().renotified == 1


def test_pending_reminder_is_cancelled_when_resolved(alerting, clock, db_url) -> None:
    a = alerting(make_settings(renotify_minutes=30))
    crit = a.manager.raise_alert("circuit_breaker", "critical", "risk", "halted")
    a.notifier.deliver_pending()
    clock.advance(minutes=31)
    assert a.notifier.schedule_renotifications() == 1
    a.manager.acknowledge(crit, "alice")
    a.manager.resolve(crit, "alice", "fixed")
    with psycopg.connect(db_url) as conn:
        statuses = {r[0] for r in conn.execute(
            "SELECT status FROM alert_outbox WHERE alert_id = %s AND kind = 'renotify'", (crit,)).fetchall()}
    assert statuses == {"cancelled"}
