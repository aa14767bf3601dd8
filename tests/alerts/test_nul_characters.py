"""NUL characters (which PostgreSQL text and jsonb cannot hold) in a receiver's error text or in details are
stored escaped, so they never lose an alert or wedge the outbox."""

from __future__ import annotations

import psycopg

from alerts.alertkit import make_settings
from precog.alerts.model import db_json, db_text
from precog.alerts.outbox import MAX_ERROR_CHARS


def test_db_text_and_db_json_escape_nul_and_cap_length() -> None:
    assert db_text("a\x00b") == "a\\0b"
    assert len(db_text("x" * 5000, 100)) == 100
    assert db_json({"k\x00": ["v\x00", 1, {"n": None}]}) == {"k\\0": ["v\\0", 1, {"n": None}]}


def test_nul_in_receiver_error_body_is_retried_and_does_not_block_the_channel(alerting, http_server, clock,
                                                                              db_url) -> None:
    """A webhook receiver answers 500 with a NUL in its body: the failure is recorded (a retry with back-off,
    error text without NUL) and the next alert of the channel is still delivered."""
    http_server.responder = lambda req: ((500, {}, b"upstream \x00 error" + b"x" * 5000)
                                         if req.json()["message"] == "first" else (200, {}, b"ok"))
    a = alerting(make_settings(enabled={"webhook": True}, routing_by_type={"api_failure": ("webhook",)}),
                 environ={"CUSTOM_WEBHOOK_URL": f"{http_server.url}/hook", "PRECOG_WEBHOOK_SECRET": "s3cr3t-value"})
    first = a.manager.raise_alert("api_failure", "high", "kalshi_api", "first", dedup_key="a")
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "second", dedup_key="b")
    statuses = sorted(o.status for o in a.notifier.deliver_pending().outcomes)
    assert statuses == ["retry", "sent"]
    with psycopg.connect(db_url) as conn:
        attempts, last_error = conn.execute(
            "SELECT attempts, last_error FROM alert_outbox WHERE alert_id = %s", (first,)).fetchone()
        errors = conn.execute("SELECT notification_errors FROM alerts WHERE alert_id = %s", (first,)).fetchone()[0]
    assert attempts == 1 and "upstream \\0 error" in last_error and len(last_error) <= MAX_ERROR_CHARS
    assert "\\0" in errors[0]["error"]
    assert [r.json()["message"] for r in http_server.requests].count("second") == 1


def test_nul_in_details_is_stored_escaped(alerting, db_url) -> None:
    """A details value (or key, or tag) with a NUL -- e.g. an exchange's raw response body -- is stored with
    the NUL escaped, and the alert is queued for delivery as usual."""
    a = alerting()
    alert_id = a.manager.raise_alert("venue_schema_error", "critical", "kalshi_client", "bad reply from venue",
                                     {"body": "garbage\x00bytes", "nested": [{"k\x00": "v"}]}, tags={"t": "\x00"})
    assert alert_id is not None
    with psycopg.connect(db_url) as conn:
        details, tags = conn.execute("SELECT details, tags FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
        queued = conn.execute("SELECT count(*) FROM alert_outbox WHERE alert_id = %s", (alert_id,)).fetchone()[0]
    assert details == {"body": "garbage\\0bytes", "nested": [{"k\\0": "v"}]} and tags == {"t": "\\0"}
    assert queued > 0


def test_nul_in_details_of_a_suppressed_repeat_is_stored_escaped(alerting, db_url) -> None:
    a = alerting()
    original = a.manager.raise_alert("venue_schema_error", "high", "kalshi_client", "bad reply", dedup_key="k")
    repeat = a.manager.raise_alert("venue_schema_error", "high", "kalshi_client", "bad reply", {"body": "\x00"},
                                   dedup_key="k")
    a.manager.flush()
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT duplicate_of, details FROM alerts WHERE alert_id = %s", (repeat,)).fetchone()
    assert row == (original, {"body": "\\0"})
