"""Email through a real SMTP server (aiosmtpd): STARTTLS + AUTH, implicit TLS, refusals, bad credentials."""

from __future__ import annotations

import json

import psycopg

from alerts.alertkit import SMTP_PASSWORD, SMTP_USER, free_port, make_settings


def _email_settings(use_tls: str = "starttls"):
    return make_settings(enabled={"email": True}, email_use_tls=use_tls, timeout_seconds=5,
                         routing_by_type={"circuit_breaker": ("email", "database"), "api_failure": ("email",)})


def test_starttls_auth_html_and_plain_text(alerting, smtp_factory, self_signed) -> None:
    server = smtp_factory("starttls")
    a = alerting(_email_settings(), environ=server.env(self_signed))
    alert_id = a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit",
                                     {"loss": "512.40", "limit": "500.00"}, dedup_key="daily_loss_limit")
    report = a.notifier.deliver_pending()
    assert report.counts() == {"email": {"sent": 1}}
    (got,) = server.handler.messages
    assert got.login == SMTP_USER  # authenticated (only allowed after STARTTLS on this server)
    assert got.mail_from == "precog@example.test"
    assert sorted(got.rcpt_tos) == ["boss@example.test", "oncall@example.test"]
    msg = got.message
    assert msg["Subject"].startswith("[PRECOG ALERT] CRITICAL circuit_breaker @ position_manager [test]")
    assert msg["X-Precog-Alert-Id"] == str(alert_id)
    plain = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "daily loss limit hit" in plain and '"loss": "512.40"' in plain
    assert "<html>" in html and "daily loss limit hit" in html and "512.40" in html
    record = a.manager.get(alert_id)
    assert record.notification_channels == {"email": True, "database": True}


def test_recipients_per_severity_fall_back_to_default(alerting, smtp_factory, self_signed) -> None:
    server = smtp_factory("starttls")
    env = server.env(self_signed, HIGH_ALERT_EMAILS="trader@example.test")
    a = alerting(_email_settings(), environ=env)
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    a.manager.raise_alert("api_failure", "medium", "kalshi_api", "y")
    a.notifier.deliver_pending()
    by_subject = {m.message["Subject"].split()[2]: m.rcpt_tos for m in server.handler.messages}
    assert by_subject == {"HIGH": ["trader@example.test"], "MEDIUM": ["team@example.test"]}


def test_implicit_tls(alerting, smtp_factory, self_signed) -> None:
    server = smtp_factory("ssl")
    a = alerting(_email_settings("ssl"), environ=server.env(self_signed))
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    assert a.notifier.deliver_pending().counts() == {"email": {"sent": 1}}
    assert server.handler.messages[0].login == SMTP_USER


def test_untrusted_certificate_is_refused(alerting, smtp_factory) -> None:
    server = smtp_factory("starttls")
    a = alerting(_email_settings(), environ=server.env(None))  # no SMTP_CA_FILE: the self-signed cert is not trusted
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert outcome.status == "retry" and "CERTIFICATE_VERIFY_FAILED" in outcome.detail
    assert server.handler.messages == []


def test_wrong_password_fails_without_leaking_it(alerting, smtp_factory, self_signed, db_url) -> None:
    server = smtp_factory("starttls")
    a = alerting(_email_settings(), environ=server.env(self_signed, SMTP_PASSWORD="wrong-password-123"))
    alert_id = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert outcome.status == "failed" and "535" in outcome.detail and "rejected the login" in outcome.detail
    with psycopg.connect(db_url) as conn:
        stored = json.dumps(conn.execute("SELECT last_error FROM alert_outbox").fetchall()) + json.dumps(
            conn.execute("SELECT notification_errors FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone())
    assert "wrong-password-123" not in stored and SMTP_PASSWORD not in stored and "535" in stored


def test_refusing_server_is_a_permanent_failure(alerting, smtp_factory, self_signed) -> None:
    server = smtp_factory("starttls", refuse_rcpt=True)
    a = alerting(_email_settings(), environ=server.env(self_signed))
    a.manager.raise_alert("circuit_breaker", "critical", "risk", "halt")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert outcome.status == "failed"
    assert "refused every recipient" in outcome.detail and "550" in outcome.detail


def test_unreachable_server_is_retried(alerting, clock, smtp_factory, self_signed) -> None:
    port = free_port()  # nothing listens here
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "ALERT_FROM_EMAIL": "precog@example.test",
           "DEFAULT_ALERT_EMAILS": "team@example.test"}
    a = alerting(make_settings(enabled={"email": True}, email_use_tls="none", timeout_seconds=2,
                               routing_by_type={"api_failure": ("email",)}), environ=env)
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert outcome.status == "retry" and f"cannot reach SMTP server 127.0.0.1:{port}" in outcome.detail
