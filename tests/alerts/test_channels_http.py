"""HTTP channels against real local servers: Twilio's form + Basic auth, Slack blocks, signed webhook, Apprise."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import psycopg

from alerts.alertkit import make_settings
from precog.alerts.channels.registry import build_channels, describe_problems
from precog.alerts.settings import AlertSettings

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-token-0123456789"  # noqa: S105 - test credential
SECRET = "webhook-signing-secret-42"  # noqa: S105 - test credential


def _twilio_env() -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": "+15550001111",
            "CRITICAL_ALERT_PHONE_NUMBERS": "+15550002222, +15550003333", "HIGH_ALERT_PHONE_NUMBERS": "+15550004444"}


def _rows(db_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_twilio_sms_form_fields_and_basic_auth(alerting, http_server) -> None:
    def twilio(req):
        if req.basic_auth() != (SID, TOKEN):
            return 401, {}, b'{"code": 20003, "message": "Authenticate"}'
        return 201, {"Content-Type": "application/json"}, json.dumps({"sid": "SM1", "status": "queued"}).encode()

    http_server.responder = twilio
    a = alerting(make_settings(enabled={"sms": True}, twilio_base_url=http_server.url,
                               routing_by_type={"circuit_breaker": ("sms", "database")}), environ=_twilio_env())
    alert_id = a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit")
    report = a.notifier.deliver_pending()
    assert [(o.channel, o.status) for o in report.outcomes] == [("sms", "sent")]
    assert len(http_server.requests) == 2
    for req, to in zip(http_server.requests, ["+15550002222", "+15550003333"], strict=True):
        assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
        assert req.headers["content-type"] == "application/x-www-form-urlencoded"
        form = req.form()
        assert form["To"] == to and form["From"] == "+15550001111"
        assert "CRITICAL" in form["Body"] and "daily loss limit hit" in form["Body"] and f"#{alert_id}" in form["Body"]
    record = a.manager.get(alert_id)
    assert record.notification_sent and record.notification_channels == {"sms": True, "database": True}
    assert record.notification_attempts == 1


def test_twilio_partial_failure_retries_only_the_failed_number(alerting, http_server, clock) -> None:
    fail_once = {"+15550003333": 1}

    def twilio(req):
        to = req.form()["To"]
        if fail_once.get(to):
            fail_once[to] -= 1
            return 503, {}, b"busy"
        return 201, {}, b"{}"

    http_server.responder = twilio
    a = alerting(make_settings(enabled={"sms": True}, twilio_base_url=http_server.url,
                               routing_by_type={"circuit_breaker": ("sms",)}), environ=_twilio_env())
    a.manager.raise_alert("circuit_breaker", "critical", "risk", "halt")
    first = a.notifier.deliver_pending()
    assert first.outcomes[0].status == "retry"
    clock.advance(seconds=5)
    second = a.notifier.deliver_pending()
    assert second.outcomes[0].status == "sent"
    sent_to = [r.form()["To"] for r in http_server.requests]
    assert sent_to == ["+15550002222", "+15550003333", "+15550003333"]  # the first number got exactly one SMS


def test_slack_payload_has_readable_blocks(alerting, http_server) -> None:
    hook = f"{http_server.url}/services/T000/B000/XXXXXXXXXXXXXXXX"
    a = alerting(make_settings(enabled={"slack": True}, routing_by_type={"api_failure": ("slack",)}),
                 environ={"SLACK_WEBHOOK_URL": hook, "SLACK_ALERT_CHANNEL": "#trading-alerts"})
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "orders endpoint timing out", {"latency_ms": 5400})
    assert a.notifier.deliver_pending().counts() == {"slack": {"sent": 1}}
    (req,) = http_server.requests
    assert req.path == "/services/T000/B000/XXXXXXXXXXXXXXXX"
    doc = req.json()
    assert doc["channel"] == "#trading-alerts"
    assert "orders endpoint timing out" in doc["text"]
    kinds = [b["type"] for b in doc["blocks"]]
    assert kinds[0] == "header" and "section" in kinds and kinds[-1] == "context"
    assert "HIGH api_failure @ kalshi_api" in doc["blocks"][0]["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in doc["blocks"][2]["fields"]}
    assert fields["*Severity*"] == "high" and fields["*Component*"] == "kalshi_api"
    assert any("latency_ms" in b.get("text", {}).get("text", "") for b in doc["blocks"])


def test_webhook_is_signed_with_hmac_sha256(alerting, http_server) -> None:
    a = alerting(make_settings(enabled={"webhook": True}, routing_by_type={"fill": ("webhook",)}),
                 environ={"CUSTOM_WEBHOOK_URL": f"{http_server.url}/precog", "PRECOG_WEBHOOK_SECRET": SECRET})
    alert_id = a.manager.raise_alert("fill", "low", "executor", "filled 10 @ 0.55", {"price": "0.55"})
    before = int(time.time())
    assert a.notifier.deliver_pending().counts() == {"webhook": {"sent": 1}}
    (req,) = http_server.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-precog-signature"] == expected
    assert abs(int(req.headers["x-precog-timestamp"]) - before) <= 5
    doc = req.json()
    assert doc["alert_id"] == alert_id and doc["details"] == {"price": "0.55"} and doc["kind"] == "initial"
    assert req.headers["x-precog-delivery"] == str(doc["delivery_id"])
    # A tampered body no longer matches.
    tampered = req.body.replace(b"0.55", b"0.56")
    assert "sha256=" + hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest() != expected


def test_apprise_json_url_to_local_server(alerting, http_server) -> None:
    port = http_server.url.rsplit(":", 1)[1]
    a = alerting(make_settings(enabled={"apprise": True}, routing_by_type={"venue_down": ("apprise",)}),
                 environ={"PRECOG_APPRISE_URLS": f"json://127.0.0.1:{port}/apprise"})
    a.manager.raise_alert("venue_down", "critical", "kalshi", "venue unreachable for 60 s")
    assert a.notifier.deliver_pending().counts() == {"apprise": {"sent": 1}}
    (req,) = http_server.requests
    assert req.path == "/apprise"
    doc = req.json()
    assert "CRITICAL venue_down @ kalshi" in doc["title"]
    assert "venue unreachable for 60 s" in doc["message"]
    assert doc["type"] == "failure"


def test_failing_channel_never_stops_the_others_and_secrets_stay_out(alerting, http_server, db_url) -> None:
    http_server.responder = lambda req: (404, {}, b"no_team")
    hook = f"{http_server.url}/services/T999/B999/SECRETSECRETSECRET"
    a = alerting(make_settings(enabled={"slack": True}, routing_by_type={"api_failure": ("slack", "file", "console")}),
                 environ={"SLACK_WEBHOOK_URL": hook})
    alert_id = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    report = a.notifier.deliver_pending()
    assert report.counts() == {"slack": {"failed": 1}, "file": {"sent": 1}, "console": {"sent": 1}}
    slack = next(o for o in report.outcomes if o.channel == "slack")
    assert "HTTP 404 no_team" in slack.detail  # 4xx is permanent: no retry
    everything = json.dumps(_rows(db_url, "SELECT last_error FROM alert_outbox")) + json.dumps(
        _rows(db_url, "SELECT notification_errors::text FROM alerts WHERE alert_id = %s", (alert_id,)))
    assert "SECRETSECRETSECRET" not in everything and "HTTP 404" in everything
    assert "SECRETSECRETSECRET" not in slack.detail


def test_misconfigured_enabled_channels_are_named_at_startup(home) -> None:
    settings = make_settings(enabled={"email": True, "sms": True, "slack": True, "webhook": True, "apprise": True})
    problems = describe_problems(build_channels(settings, {"TWILIO_ACCOUNT_SID": SID}, home=home).problems)
    text = "\n".join(problems)
    for var in ("SMTP_HOST", "ALERT_FROM_EMAIL", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "SLACK_WEBHOOK_URL",
                "CUSTOM_WEBHOOK_URL", "PRECOG_WEBHOOK_SECRET", "PRECOG_APPRISE_URLS", "DEFAULT_ALERT_EMAILS"):
        assert re.search(rf"\b{var}\b", text), var
    assert all(line.split()[1:3] == ["is", "enabled"] for line in problems)
    # Disabled channels are not reported.
    assert build_channels(AlertSettings(), {}, home=home).problems == {}


def test_misconfigured_channel_fails_its_delivery_with_the_variable_named(alerting) -> None:
    a = alerting(make_settings(enabled={"webhook": True}, routing_by_type={"fill": ("webhook", "file")}),
                 environ={"CUSTOM_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    assert any("PRECOG_WEBHOOK_SECRET is not set" in p for p in a.notifier.problems)
    a.manager.raise_alert("fill", "low", "executor", "x")
    report = a.notifier.deliver_pending()
    webhook = next(o for o in report.outcomes if o.channel == "webhook")
    assert webhook.status == "failed" and "PRECOG_WEBHOOK_SECRET" in webhook.detail
    assert next(o for o in report.outcomes if o.channel == "file").status == "sent"


def test_console_is_coloured_by_severity_and_file_is_json_lines(alerting, home) -> None:
    a = alerting()
    a.manager.raise_alert("circuit_breaker", "critical", "risk", "halted")
    a.manager.raise_alert("model_degradation", "medium", "forecast", "drift")
    a.notifier.deliver_pending()
    text = a.console_text()
    crit_line = next(line for line in text.splitlines() if "halted" in line)
    medium_line = next(line for line in text.splitlines() if "drift" in line)
    assert "\x1b[1;37;41m" in crit_line  # bold white on red
    assert "\x1b[33m" in medium_line  # yellow
    lines = (home / "logs" / "alerts.jsonl").read_text().splitlines()
    docs = [json.loads(line) for line in lines]
    assert {d["message"] for d in docs} == {"halted", "drift"}
    assert {d["severity"] for d in docs} == {"critical", "medium"}


def test_file_channel_rotates(alerting, home) -> None:
    a = alerting(make_settings(file_max_bytes=1500, file_backup_count=2, dedup_window_minutes=0))
    for i in range(12):
        a.manager.raise_alert("informational", "low", "engine", f"message number {i}")
    a.notifier.deliver_pending()
    folder = home / "logs"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2"]
    assert all(p.stat().st_size <= 1500 for p in folder.iterdir())
    newest = [json.loads(line)["message"] for line in (folder / "alerts.jsonl").read_text().splitlines()]
    assert newest[-1] == "message number 11"
