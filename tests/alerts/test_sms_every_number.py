"""Twilio SMS: every on-call number is tried; one refused number never keeps the page from the others."""

from __future__ import annotations

import psycopg

from alerts.alertkit import make_settings

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-token-0123456789"  # noqa: S105 - test credential
UNSUBSCRIBED = b'{"code": 21610, "message": "unsubscribed recipient"}'


def _env(numbers: str) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": "+15550001111",
            "CRITICAL_ALERT_PHONE_NUMBERS": numbers}


def _settings(url: str):
    return make_settings(enabled={"sms": True}, twilio_base_url=url,
                         routing_by_type={"circuit_breaker": ("sms", "database")})


def test_permanently_refused_number_does_not_stop_the_others(alerting, http_server, clock, db_url) -> None:
    """Twilio refuses the first number for good (400, e.g. 21610 unsubscribed): the second still gets the page,
    the delivery counts as sent, the refusal is recorded on the row and the alert, and nothing is retried."""
    def twilio(req):
        if req.form()["To"] == "+15550002222":
            return 400, {"Content-Type": "application/json"}, UNSUBSCRIBED
        return 201, {"Content-Type": "application/json"}, b'{"sid": "SM1", "status": "queued"}'

    http_server.responder = twilio
    a = alerting(_settings(http_server.url), environ=_env("+15550002222, +15550003333"))
    alert_id = a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert [r.form()["To"] for r in http_server.requests] == ["+15550002222", "+15550003333"]
    assert outcome.status == "sent", outcome.detail
    clock.advance(minutes=10)
    assert a.notifier.deliver_pending().outcomes == []
    assert len(http_server.requests) == 2
    with psycopg.connect(db_url) as conn:
        last_error, delivered_to = conn.execute("SELECT last_error, delivered_to FROM alert_outbox").fetchone()
        errors = conn.execute("SELECT notification_errors FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()[0]
    assert "+1555000****" in last_error and "21610" in last_error and "+15550002222" not in last_error
    assert "+15550003333" in delivered_to
    assert errors and "21610" in errors[-1]["error"]


def test_only_the_temporarily_failed_number_is_retried(alerting, http_server, clock) -> None:
    """Three numbers: one refused for good, one busy (503) once, one fine. The retry goes to the busy number
    alone -- the reached and the permanently refused numbers are not sent to again."""
    busy = {"+15550004444": 1}

    def twilio(req):
        to = req.form()["To"]
        if to == "+15550002222":
            return 400, {"Content-Type": "application/json"}, UNSUBSCRIBED
        if busy.get(to):
            busy[to] -= 1
            return 503, {}, b"busy"
        return 201, {}, b"{}"

    http_server.responder = twilio
    a = alerting(_settings(http_server.url), environ=_env("+15550002222 +15550003333 +15550004444"))
    a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit")
    (first,) = a.notifier.deliver_pending().outcomes
    assert first.status == "retry", first.detail
    assert len(http_server.requests) == 3
    clock.advance(minutes=10)
    (second,) = a.notifier.deliver_pending().outcomes
    assert second.status == "sent", second.detail
    assert [r.form()["To"] for r in http_server.requests[3:]] == ["+15550004444"]


def test_every_number_refused_for_good_is_a_permanent_failure(alerting, http_server) -> None:
    http_server.responder = lambda req: (400, {"Content-Type": "application/json"}, UNSUBSCRIBED)
    a = alerting(_settings(http_server.url), environ=_env("+15550002222, +15550003333"))
    a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert outcome.status == "failed" and len(http_server.requests) == 2, outcome.detail
