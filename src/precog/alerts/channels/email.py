"""Email over SMTP (stdlib smtplib): STARTTLS, implicit TLS or plain; optional AUTH; HTML + plain text.

Environment: SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, ALERT_FROM_EMAIL, SMTP_CA_FILE (extra CA to
trust, e.g. a company relay's private CA), and recipients per severity: CRITICAL_ALERT_EMAILS, HIGH_ALERT_EMAILS,
MEDIUM_ALERT_EMAILS, falling back to DEFAULT_ALERT_EMAILS (comma/space separated).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from precog.alerts.channels import render
from precog.alerts.channels.base import (
    ChannelConfigError,
    DeliveryError,
    DeliveryResult,
    Notification,
    settle,
)
from precog.alerts.redact import Redactor, split_urls

RECIPIENT_VARS = {
    "critical": "CRITICAL_ALERT_EMAILS",
    "high": "HIGH_ALERT_EMAILS",
    "medium": "MEDIUM_ALERT_EMAILS",
    "low": "DEFAULT_ALERT_EMAILS",
}
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
SUBJECT_MAX = 200


class EmailChannel:
    name = "email"
    batchable = False

    def __init__(self, environ: Mapping[str, str], *, use_tls: str, subject_prefix: str, timeout: float,
                 redactor: Redactor) -> None:
        self.env = {k: v for k, v in environ.items() if k.startswith(("SMTP_", "ALERT_FROM_EMAIL")) or k.endswith("_ALERT_EMAILS")}
        self.use_tls = use_tls
        self.subject_prefix = subject_prefix
        self.timeout = timeout
        self.redactor = redactor

    def _get(self, var: str) -> str:
        return self.env.get(var, "").strip()

    def recipients(self, severity: str) -> list[str]:
        specific = split_urls(self._get(RECIPIENT_VARS.get(severity, "DEFAULT_ALERT_EMAILS")))
        return specific or split_urls(self._get("DEFAULT_ALERT_EMAILS"))

    def problems(self) -> list[str]:
        out = []
        if self.use_tls not in DEFAULT_PORTS:
            out.append(f"system.notifications.email.use_tls is {self.use_tls!r} (expected starttls, ssl or none)")
        for var in ("SMTP_HOST", "ALERT_FROM_EMAIL"):
            if not self._get(var):
                out.append(f"{var} is not set")
        port = self._get("SMTP_PORT")
        if port and not port.isdigit():
            out.append(f"SMTP_PORT is not a port number: {port!r}")
        if self._get("SMTP_USERNAME") and not self._get("SMTP_PASSWORD"):
            out.append("SMTP_PASSWORD is not set (SMTP_USERNAME is)")
        if not any(self._get(v) for v in (*RECIPIENT_VARS.values(), "DEFAULT_ALERT_EMAILS")):
            out.append("no recipients: set DEFAULT_ALERT_EMAILS (or CRITICAL_/HIGH_/MEDIUM_ALERT_EMAILS)")
        ca = self._get("SMTP_CA_FILE")
        if ca:
            import os

            if not os.path.isfile(ca):
                out.append(f"SMTP_CA_FILE {ca} does not exist")
        return out

    def build_message(self, notification: Notification, to: list[str]) -> EmailMessage:
        alert = notification.alert
        msg = EmailMessage()
        msg["Subject"] = subject_line(f"{self.subject_prefix} {render.title(alert, notification.kind)}: {alert.message}")
        msg["From"] = self._get("ALERT_FROM_EMAIL")
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=f"precog-{notification.outbox_id}")
        msg["X-Precog-Alert-Id"] = str(alert.alert_id)
        msg["X-Precog-Delivery"] = str(notification.outbox_id)
        msg["X-Precog-Severity"] = alert.severity
        msg.set_content(render.plain_text(alert, notification.kind))
        msg.add_alternative(render.html_text(alert, notification.kind), subtype="html")
        return msg

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ca = self._get("SMTP_CA_FILE")
        if ca:
            ctx.load_verify_locations(cafile=ca)
        return ctx

    def send(self, notification: Notification) -> DeliveryResult:
        problems = [p for p in self.problems() if "recipients" not in p]
        if problems:
            raise ChannelConfigError("email is not configured: " + "; ".join(problems))
        to = [r for r in self.recipients(notification.alert.severity) if not notification.done_with(r)]
        if not to:
            if notification.delivered_to:
                return settle(notification, "email", [], {}, {}, "all recipients already reached")
            raise ChannelConfigError(
                f"no email recipients for severity {notification.alert.severity}: set "
                f"{RECIPIENT_VARS.get(notification.alert.severity, 'DEFAULT_ALERT_EMAILS')} or DEFAULT_ALERT_EMAILS"
            )
        host = self._get("SMTP_HOST")
        port = int(self._get("SMTP_PORT") or DEFAULT_PORTS[self.use_tls])
        msg = self.build_message(notification, to)
        every = False
        try:
            smtp: smtplib.SMTP
            if self.use_tls == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=self._tls_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=self.timeout)
            with smtp:
                if self.use_tls == "starttls":
                    smtp.starttls(context=self._tls_context())
                username = self._get("SMTP_USERNAME")
                if username:
                    smtp.login(username, self._get("SMTP_PASSWORD"))
                refused = smtp.send_message(msg, to_addrs=to)
        except smtplib.SMTPRecipientsRefused as exc:
            refused, every = exc.recipients, True  # sorted into temporary/permanent below
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(self.redactor.redact(
                f"SMTP server {host}:{port} rejected the login of SMTP_USERNAME: {exc.smtp_code} {_text(exc.smtp_error)}"),
                permanent=True, delivered_to=notification.delivered_to) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(self.redactor.redact(f"SMTP server {host}:{port}: {exc}"), permanent=True,
                                delivered_to=notification.delivered_to) from None
        except smtplib.SMTPResponseException as exc:
            permanent = exc.smtp_code >= 500
            raise DeliveryError(self.redactor.redact(
                f"SMTP server {host}:{port} answered {exc.smtp_code} {_text(exc.smtp_error)}"),
                permanent=permanent, delivered_to=notification.delivered_to) from None
        except ssl.SSLError as exc:
            raise DeliveryError(self.redactor.redact(f"TLS with SMTP server {host}:{port} failed: {exc}"),
                                delivered_to=notification.delivered_to) from None
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            reason = str(exc) or type(exc).__name__
            raise DeliveryError(self.redactor.redact(f"cannot reach SMTP server {host}:{port}: {reason}"),
                                delivered_to=notification.delivered_to) from None
        # Only a 5xx refusal is final; a 4xx (greylisting, mailbox busy) is retried for that recipient alone.
        temporary = {r: f"{c} {_text(m)}" for r, (c, m) in refused.items() if c < 500}
        for_good = {r: f"{c} {_text(m)}" for r, (c, m) in refused.items() if c >= 500}
        detail = f"sent to {len(to) - len(refused)} recipient(s) via {host}:{port}"
        if refused:
            detail += "; refused: " + ", ".join(sorted(refused))
        try:
            result = settle(notification, f"SMTP server {host}:{port} refused{' every recipient' if every else ''}",
                            [r for r in to if r not in refused], temporary, for_good, detail)
        except DeliveryError as exc:
            raise DeliveryError(self.redactor.redact(str(exc)), permanent=exc.permanent,
                                delivered_to=exc.delivered_to) from None
        return DeliveryResult(self.redactor.redact(result.detail), result.delivered_to,
                              self.redactor.redact(result.error) if result.error else None)

    def close(self) -> None:
        return None


def subject_line(text: str) -> str:
    """A Subject header is one line (EmailMessage refuses line breaks): whitespace collapsed, length capped.
    The full message is in the body."""
    line = " ".join(text.split())
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 3] + "..."


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
