"""Email: a multi-line message still makes a one-line Subject; SMTP 4xx refusals are retried (only for the
refused recipients), 5xx refusals are final."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from alerts.alertkit import free_port, make_settings
from precog.alerts.channels.email import SUBJECT_MAX, subject_line


class _Handler:
    """Accepts mail; RCPT answers come from `rcpt_reply(address)` (None = accept)."""

    def __init__(self, rcpt_reply: Any = None) -> None:
        self.rcpt_reply = rcpt_reply or (lambda addr: None)
        self.messages: list[tuple[list[str], Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        reply = self.rcpt_reply(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def plain_smtp() -> Iterator[Any]:
    """Factory: a plain (no TLS, no AUTH) local SMTP server whose RCPT replies the test chooses."""
    started: list[Controller] = []

    def start(rcpt_reply: Any = None) -> tuple[_Handler, dict[str, str]]:
        handler = _Handler(rcpt_reply)
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        started.append(controller)
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "ALERT_FROM_EMAIL": "precog@example.test",
               "CRITICAL_ALERT_EMAILS": "oncall@example.test, boss@example.test",
               "DEFAULT_ALERT_EMAILS": "team@example.test"}
        return handler, env

    yield start
    for c in started:
        c.stop()


def _settings():
    return make_settings(enabled={"email": True}, email_use_tls="none", timeout_seconds=5,
                         routing_by_type={"fill_not_booked": ("email", "database"), "api_failure": ("email",)})


def _reached(handler: _Handler) -> list[str]:
    return sorted(r for rcpts, _ in handler.messages for r in rcpts)


def test_subject_line_is_one_line_and_capped() -> None:
    assert subject_line("[P] CRITICAL x: first line\nDETAIL:  second\r\n\tthird") == \
        "[P] CRITICAL x: first line DETAIL: second third"
    long = subject_line("word " * 100)
    assert len(long) == SUBJECT_MAX and long.endswith("...") and "\n" not in long


def test_multiline_message_is_emailed_with_the_full_text_in_the_body(alerting, plain_smtp) -> None:
    """A message with a line break (e.g. a psycopg error with its DETAIL line) is sent: the Subject is one
    line, the body carries the message as written."""
    handler, env = plain_smtp()
    a = alerting(_settings(), environ=env)
    message = ('cannot book fill F1: duplicate key value violates unique constraint "fills_pkey"\n'
               "DETAIL:  Key (fill_id)=(F1) already exists.")
    a.manager.raise_alert("fill_not_booked", "critical", "executor", message)
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert (outcome.status, len(handler.messages)) == ("sent", 1), outcome.detail
    msg = handler.messages[0][1]
    assert "\n" not in msg["Subject"] and 'constraint "fills_pkey" DETAIL: Key' in msg["Subject"]
    assert message in msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_temporary_refusal_of_every_recipient_is_retried(alerting, plain_smtp, clock) -> None:
    """Greylisting ('451 4.7.1 try again later') for every recipient is temporary: retried, then sent."""
    state = {"greylisted": True}
    handler, env = plain_smtp(lambda addr: "451 4.7.1 Greylisted, please try again later"
                              if state["greylisted"] else None)
    a = alerting(_settings(), environ=env)
    a.manager.raise_alert("fill_not_booked", "critical", "executor", "cannot book fill F1")
    (outcome,) = a.notifier.deliver_pending().outcomes
    assert outcome.status == "retry" and "451" in outcome.detail, f"{outcome.status}: {outcome.detail}"
    state["greylisted"] = False
    clock.advance(seconds=10)
    assert [o.status for o in a.notifier.deliver_pending().outcomes] == ["sent"]
    assert _reached(handler) == ["boss@example.test", "oncall@example.test"]


def test_temporarily_refused_recipient_alone_is_retried(alerting, plain_smtp, clock, db_url) -> None:
    """One recipient answers '452 mailbox busy', the other accepts: the delivery is retried for the busy one
    only (the one reached is remembered in delivered_to and not mailed twice)."""
    state = {"busy": True}
    handler, env = plain_smtp(lambda addr: "452 4.2.2 Mailbox busy, try again later"
                              if addr == "boss@example.test" and state["busy"] else None)
    a = alerting(_settings(), environ=env)
    a.manager.raise_alert("fill_not_booked", "critical", "executor", "cannot book fill F1")
    (first,) = a.notifier.deliver_pending().outcomes
    assert first.status == "retry" and "boss@example.test" in first.detail, first.detail
    assert _reached(handler) == ["oncall@example.test"]
    state["busy"] = False
    clock.advance(minutes=10)
    assert [o.status for o in a.notifier.deliver_pending().outcomes] == ["sent"]
    assert _reached(handler) == ["boss@example.test", "oncall@example.test"]
    with psycopg.connect(db_url) as conn:
        (delivered_to,) = conn.execute("SELECT delivered_to FROM alert_outbox").fetchone()
    assert sorted(delivered_to) == ["boss@example.test", "oncall@example.test"]


def test_permanent_refusal_is_not_retried_while_a_temporary_one_is(alerting, plain_smtp, clock, db_url) -> None:
    """boss@ is refused for good (550), oncall@ temporarily (451): only oncall@ is tried again; once it is
    reached the delivery is sent, and the permanent refusal stays recorded on the alert."""
    state = {"busy": True}

    def reply(addr: str) -> str | None:
        if addr == "boss@example.test":
            return "550 5.1.1 no such mailbox"
        return "451 4.3.0 try again later" if state["busy"] else None

    handler, env = plain_smtp(reply)
    seen: list[str] = []
    a = alerting(_settings(), environ=env)
    original = handler.rcpt_reply
    handler.rcpt_reply = lambda addr: (seen.append(addr), original(addr))[1]
    alert_id = a.manager.raise_alert("fill_not_booked", "critical", "executor", "cannot book fill F1")
    (first,) = a.notifier.deliver_pending().outcomes
    assert first.status == "retry" and "550" in first.detail and "451" in first.detail, first.detail
    state["busy"] = False
    seen.clear()
    clock.advance(minutes=10)
    (second,) = a.notifier.deliver_pending().outcomes
    assert second.status == "sent" and seen == ["oncall@example.test"], (second.detail, seen)
    assert _reached(handler) == ["oncall@example.test"]
    with psycopg.connect(db_url) as conn:
        errors = conn.execute("SELECT notification_errors FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()[0]
    assert any("boss@example.test" in e["error"] and "550" in e["error"] for e in errors), errors
