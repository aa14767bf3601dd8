"""Apprise URLs whose host part is the token (pover://USER@TOKEN, prowl://KEY, pbul://TOKEN) never show that
token: errors name such a URL by its scheme only, and the redactor masks the host in any text."""

from __future__ import annotations

import json
import logging

import psycopg
import pytest

from alerts.alertkit import make_settings
from precog.alerts.redact import Redactor, safe_url

USER_KEY = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
APP_TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"  # noqa: S105 - Pushover-style application token (test value)


def test_safe_url_shows_only_the_scheme_of_non_http_urls() -> None:
    assert safe_url(f"pover://{USER_KEY}@{APP_TOKEN}") == "pover://***"
    assert safe_url("prowl://apikey1234567890/providerkey") == "prowl://***"
    assert safe_url("json://my-host:8080/alerts") == "json://***"
    assert safe_url("https://hooks.slack.com/services/T000/B000/XXXX") == "https://hooks.slack.com/***"


def test_redactor_masks_the_token_host_as_written_and_lower_cased() -> None:
    r = Redactor(urls=[f"pover://{USER_KEY}@{APP_TOKEN}", "pbul://o.TokenTokenToken42"])
    text = r.redact(f"failed {APP_TOKEN} / {APP_TOKEN.lower()} / pover://{USER_KEY}@{APP_TOKEN} / "
                    "o.tokentokentoken42")
    assert APP_TOKEN.lower() not in text.lower() and USER_KEY not in text and "tokentoken" not in text.lower()


def test_token_in_apprise_host_is_never_stored_or_logged(alerting, db_url, monkeypatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A failing Pushover send: the error written to alert_outbox.last_error, alerts.notification_errors, the
    log and the outcome names the URL as `pover://***`."""
    # Make the Pushover call fail locally and at once (no traffic leaves the machine).
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    env = {"PRECOG_APPRISE_URLS": f"pover://{USER_KEY}@{APP_TOKEN}"}
    a = alerting(make_settings(enabled={"apprise": True}, routing_by_type={"venue_down": ("apprise",)}), environ=env)
    alert_id = a.manager.raise_alert("venue_down", "critical", "kalshi", "venue unreachable")
    with caplog.at_level(logging.WARNING):
        report = a.notifier.deliver_pending()
    (outcome,) = report.outcomes
    assert outcome.status in ("retry", "failed")
    assert "pover://***" in outcome.detail
    with psycopg.connect(db_url) as conn:
        stored = json.dumps(conn.execute("SELECT last_error FROM alert_outbox").fetchall()) + json.dumps(
            conn.execute("SELECT notification_errors FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone())
    leaks = {where: text for where, text in (("outbox/alert rows", stored), ("log", caplog.text),
                                              ("outcome", outcome.detail)) if APP_TOKEN.lower() in text.lower()}
    assert not leaks, leaks
