"""Audit of alert delivery as a user sees it (session 16): defects found by exercising the alerts end to end."""

from __future__ import annotations

import psycopg

from alerts.alertkit import make_settings


def _resolve_elsewhere(db_url: str, alert_id: int, clock) -> None:  # noqa: ANN001 - ManualClock fixture
    """What `precog alerts ack` + `precog alerts resolve` do from another process."""
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE alerts SET acknowledged_at = %s, acknowledged_by = 'bob', resolved_at = %s,"
                     " resolved_by = 'bob', resolution_action = 'fixed' WHERE alert_id = %s",
                     (clock.now(), clock.now(), alert_id))


def _queued_alerts(db_url: str) -> list[int]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT alert_id FROM alert_outbox ORDER BY alert_id")]


def test_recurrence_after_resolution_elsewhere_notifies(alerting, db_url, clock) -> None:
    """`precog run` raised a breaker alert; the operator resolved it with the CLI; ten minutes later the breaker
    trips once more. That occurrence must notify: before the fix it was counted, silently, on the resolved alert
    (the running process still had the original's window cached) and nobody was told."""
    a = alerting(make_settings(dedup_window_minutes=60))
    first = a.manager.raise_alert("circuit_breaker", "critical", "risk", "daily loss limit", dedup_key="daily")
    a.notifier.deliver_pending()
    _resolve_elsewhere(db_url, first, clock)
    clock.advance(minutes=10)
    again = a.manager.raise_alert("circuit_breaker", "critical", "risk", "daily loss limit", dedup_key="daily")
    a.manager.flush()

    row = a.manager.get(again)
    assert not row.suppressed and row.duplicate_of is None
    assert a.manager.get(first).duplicate_count == 0  # not counted on the resolved alert
    assert _queued_alerts(db_url) == [first, again]
    report = a.notifier.deliver_pending()
    assert {(o.alert_id, o.channel, o.status) for o in report.outcomes} == {
        (again, "console", "sent"), (again, "file", "sent")}
    # Later repeats count on the new alert, as usual.
    third = a.manager.raise_alert("circuit_breaker", "critical", "risk", "daily loss limit", dedup_key="daily")
    a.manager.flush()
    assert a.manager.get(third).duplicate_of == again
    assert a.manager.get(again).duplicate_count == 1


def test_recurrence_after_resolution_elsewhere_synchronous_mode(alerting, db_url, clock) -> None:
    """The same with group_commit_ms = 0 (each repeat written before raise_alert returns)."""
    a = alerting(make_settings(group_commit_ms=0))
    first = a.manager.raise_alert("venue_down", "critical", "kalshi", "venue down", dedup_key="k")
    _resolve_elsewhere(db_url, first, clock)
    clock.advance(minutes=1)
    again = a.manager.raise_alert("venue_down", "critical", "kalshi", "venue down", dedup_key="k")
    assert not a.manager.get(again).suppressed
    assert _queued_alerts(db_url) == [first, again]


def test_repeats_before_the_resolution_still_count_on_the_original(alerting, db_url, clock) -> None:
    """Repeats raised while the original was open stay repeats even when written after it was resolved."""
    a = alerting()
    first = a.manager.raise_alert("api_failure", "high", "kalshi_api", "timeouts", dedup_key="t")
    clock.advance(minutes=1)
    before = a.manager.raise_alert("api_failure", "high", "kalshi_api", "timeouts", dedup_key="t")
    clock.advance(minutes=1)
    _resolve_elsewhere(db_url, first, clock)
    a.manager.flush()
    assert a.manager.get(before).duplicate_of == first
    assert a.manager.get(first).duplicate_count == 1
    assert _queued_alerts(db_url) == [first]


# ---------------------------------------------------------------------------------------------- SMS number typo
def test_sms_number_typo_does_not_stop_the_page_to_valid_numbers(alerting, http_server, db_url) -> None:
    """One mistyped number (in the critical list, or in HIGH_ALERT_PHONE_NUMBERS which a critical alert does not
    even use) must not keep a critical page from the valid on-call numbers: before the fix every SMS failed
    permanently with `sms is not configured`. The bad number is reported at start and recorded as refused."""
    env = {"TWILIO_ACCOUNT_SID": "AC0123456789abcdef", "TWILIO_AUTH_TOKEN": "twilio-token-0123456789",
           "TWILIO_FROM_NUMBER": "+15550001111", "CRITICAL_ALERT_PHONE_NUMBERS": "+15550002222, 5550003333",
           "HIGH_ALERT_PHONE_NUMBERS": "+1555000444"}  # noqa: S105 - test credential
    http_server.responder = lambda req: (201, {"Content-Type": "application/json"}, b'{"sid": "SM1"}')
    a = alerting(make_settings(enabled={"sms": True}, twilio_base_url=http_server.url,
                               routing_by_type={"circuit_breaker": ("sms", "database")}), environ=env)
    assert any("5550003333" in p and "E.164" in p for p in a.notifier.problems)  # still reported at start
    a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert [r.form()["To"] for r in http_server.requests] == ["+15550002222"]
    assert outcome.status == "sent", outcome.detail
    with psycopg.connect(db_url) as conn:
        last_error, delivered_to = conn.execute("SELECT last_error, delivered_to FROM alert_outbox").fetchone()
    assert "E.164" in last_error and "+15550002222" in delivered_to


def test_sms_from_number_typo_still_fails_clearly(alerting, http_server, db_url) -> None:
    """A bad TWILIO_FROM_NUMBER is a channel problem (no SMS can go): a permanent failure naming it."""
    env = {"TWILIO_ACCOUNT_SID": "AC0123456789abcdef", "TWILIO_AUTH_TOKEN": "twilio-token-0123456789",
           "TWILIO_FROM_NUMBER": "5550001111", "CRITICAL_ALERT_PHONE_NUMBERS": "+15550002222"}  # noqa: S105
    a = alerting(make_settings(enabled={"sms": True}, twilio_base_url=http_server.url,
                               routing_by_type={"circuit_breaker": ("sms", "database")}), environ=env)
    a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert outcome.status == "failed" and "TWILIO_FROM_NUMBER" in outcome.detail
    assert http_server.requests == []
