"""Per-channel rate limits over simulated time, and exponential back-off retries."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from alerts.alertkit import make_settings
from precog.alerts.settings import RateLimit, RetryPolicy

SID = "AC00000000000000000000000000000000"


def _sms_env() -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "tok-rate-limit-test", "TWILIO_FROM_NUMBER": "+15550001111",
            "CRITICAL_ALERT_PHONE_NUMBERS": "+15550002222"}


def _sms_settings(url: str, limit: RateLimit, **kw):
    return make_settings(enabled={"sms": True}, twilio_base_url=url, rate_limits={"sms": limit},
                         routing={"critical": ("sms", "database"), "high": ("file",), "medium": ("file",),
                                  "low": ("file",)}, **kw)


def test_sms_limits_per_hour_per_day_and_cooldown(alerting, clock, http_server, db_url) -> None:
    a = alerting(_sms_settings(http_server.url, RateLimit(per_hour=5, per_day=20, cooldown_seconds=300),
                               renotify_minutes=10080),
                 environ=_sms_env())
    statuses: list[str] = []

    def raise_and_deliver(i: int) -> str:
        a.manager.raise_alert("circuit_breaker", "critical", "risk", f"breaker {i}", dedup_key=str(i))
        (outcome,) = a.notifier.deliver_pending().outcomes
        return outcome.status

    # Cooldown: a second SMS 60 s after the first is held back.
    statuses.append(raise_and_deliver(0))
    clock.advance(seconds=60)
    statuses.append(raise_and_deliver(1))
    assert statuses == ["sent", "rate_limited"]
    # Per hour: with the cooldown respected (one every 301 s), only 5 fit in an hour.
    hour = []
    for i in range(2, 9):
        clock.advance(seconds=301)
        hour.append(raise_and_deliver(i))
    # 0 was sent at t=0; then t=361 .. 2167: 4 more fit the hour (5 in total), the rest are limited.
    assert hour.count("sent") == 4
    assert hour[4:] == ["rate_limited"] * 3
    # Limited notifications are recorded, not lost silently.
    with psycopg.connect(db_url) as conn:
        limited = [r[0] for r in conn.execute(
            "SELECT last_error FROM alert_outbox WHERE status = 'rate_limited' ORDER BY outbox_id").fetchall()]
        errors = conn.execute("SELECT notification_errors FROM alerts WHERE message = 'breaker 1'").fetchone()[0]
    assert len(limited) == 4
    assert "cooldown of 300 s between messages (last sent 60 s ago)" in limited[0]
    assert limited[1:] == ["sms rate limit: 5 per hour reached"] * 3
    assert errors[0]["status"] == "rate_limited" and errors[0]["channel"] == "sms"
    assert len(http_server.requests) == 5

    # Per day: keep going hour after hour; never more than 20 within 24 h of the first SMS.
    t0 = a.manager.get(1).triggered_at
    sent_today, i = 5, 9
    while clock.now() + timedelta(seconds=720) < t0 + timedelta(hours=24):
        clock.advance(seconds=720)
        sent_today += raise_and_deliver(i) == "sent"
        i += 1
    assert sent_today == 20
    assert len(http_server.requests) == 20
    # Once the first SMS leaves the 24-hour window, sending resumes.
    clock.advance(hours=1)
    assert raise_and_deliver(i) == "sent"


def test_limits_are_configurable_per_channel(alerting, clock, http_server) -> None:
    a = alerting(make_settings(enabled={"webhook": True}, rate_limits={"webhook": RateLimit(2, 0, 0)},
                               routing_by_type={"fill": ("webhook",)}),
                 environ={"CUSTOM_WEBHOOK_URL": http_server.url, "PRECOG_WEBHOOK_SECRET": "s3cr3t-value"})
    for i in range(4):
        a.manager.raise_alert("fill", "low", "executor", f"fill {i}")
    report = a.notifier.deliver_pending()
    assert report.counts() == {"webhook": {"sent": 2, "rate_limited": 2}}
    clock.advance(minutes=61)
    a.manager.raise_alert("fill", "low", "executor", "fill 5")
    assert a.notifier.deliver_pending().counts() == {"webhook": {"sent": 1}}


def test_exponential_backoff_then_give_up(alerting, clock, http_server, db_url) -> None:
    http_server.responder = lambda req: (500, {}, b"upstream down")
    settings = make_settings(enabled={"webhook": True}, routing_by_type={"api_failure": ("webhook", "file")},
                             retry=RetryPolicy(max_attempts=4, initial_seconds=2, max_seconds=5))
    a = alerting(settings, environ={"CUSTOM_WEBHOOK_URL": http_server.url, "PRECOG_WEBHOOK_SECRET": "s3cr3t-value"})
    alert_id = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")

    def next_attempt() -> tuple[str, int, object]:
        with psycopg.connect(db_url) as conn:
            return conn.execute("SELECT status, attempts, next_attempt_at FROM alert_outbox WHERE channel = 'webhook'"
                                ).fetchone()

    report = a.notifier.deliver_pending()
    assert report.counts() == {"webhook": {"retry": 1}, "file": {"sent": 1}}  # file is not held up
    status, attempts, due = next_attempt()
    assert (status, attempts, due) == ("pending", 1, clock.now() + timedelta(seconds=2))
    # Not due yet: nothing happens.
    clock.advance(seconds=1)
    assert a.notifier.deliver_pending().outcomes == []
    clock.advance(seconds=1)
    a.notifier.deliver_pending()
    assert next_attempt()[1:] == (2, clock.now() + timedelta(seconds=4))
    clock.advance(seconds=4)
    a.notifier.deliver_pending()
    assert next_attempt()[1:] == (3, clock.now() + timedelta(seconds=5))  # capped at max_seconds
    clock.advance(seconds=5)
    final = a.notifier.deliver_pending()
    assert [o.status for o in final.outcomes] == ["failed"]
    assert next_attempt()[:2] == ("failed", 4)
    assert len(http_server.requests) == 4
    record = a.manager.get(alert_id)
    assert record.notification_attempts == 5  # 4 webhook + 1 file
    assert record.notification_channels == {"webhook": False, "file": True, "database": False} or \
        record.notification_channels == {"webhook": False, "file": True}
    assert [e["attempt"] for e in record.notification_errors] == [1, 2, 3, 4]
    assert record.notification_errors[-1]["final"] is True
    assert "HTTP 500 upstream down" in record.notification_errors[-1]["error"]


def test_transient_failure_then_success(alerting, clock, http_server) -> None:
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        return (429, {}, b"slow down") if calls["n"] == 1 else (200, {}, b"ok")

    http_server.responder = flaky
    a = alerting(make_settings(enabled={"webhook": True}, routing_by_type={"api_failure": ("webhook",)}),
                 environ={"CUSTOM_WEBHOOK_URL": http_server.url, "PRECOG_WEBHOOK_SECRET": "s3cr3t-value"})
    alert_id = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    assert a.notifier.deliver_pending().outcomes[0].status == "retry"  # 429 is retried
    clock.advance(seconds=2)
    assert a.notifier.deliver_pending().outcomes[0].status == "sent"
    record = a.manager.get(alert_id)
    assert record.notification_sent and record.notification_sent_at == clock.now()
    assert record.notification_attempts == 2
    # The same delivery id both times, so the receiver can tell it is one notification.
    assert len({r.headers["x-precog-delivery"] for r in http_server.requests}) == 1
