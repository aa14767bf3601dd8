"""SMS through Twilio's REST API: a form-encoded POST with Basic auth per recipient.

Environment: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER, CRITICAL_ALERT_PHONE_NUMBERS and
HIGH_ALERT_PHONE_NUMBERS (E.164, comma/space separated; a severity without its own list uses the critical one).
The API base URL is `system.notifications.sms.twilio_base_url` (tests point it at a local server).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

from precog.alerts.channels import render
from precog.alerts.channels.base import (
    ChannelConfigError,
    DeliveryError,
    DeliveryResult,
    Notification,
    settle,
)
from precog.alerts.channels.http import new_client, post
from precog.alerts.redact import Redactor, split_urls

PHONE_VARS = {"critical": "CRITICAL_ALERT_PHONE_NUMBERS", "high": "HIGH_ALERT_PHONE_NUMBERS"}
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class TwilioSmsChannel:
    name = "sms"
    batchable = False

    def __init__(self, environ: Mapping[str, str], *, base_url: str, timeout: float, redactor: Redactor) -> None:
        self.env = {k: environ.get(k, "").strip() for k in
                    ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", *PHONE_VARS.values())}
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.redactor = redactor
        self._client: httpx.Client | None = None

    def recipients(self, severity: str) -> list[str]:
        own = split_urls(self.env.get(PHONE_VARS.get(severity, ""), ""))
        return own or split_urls(self.env["CRITICAL_ALERT_PHONE_NUMBERS"])

    def problems(self) -> list[str]:
        out = [f"{v} is not set" for v in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER") if not self.env[v]]
        if not (self.env["CRITICAL_ALERT_PHONE_NUMBERS"] or self.env["HIGH_ALERT_PHONE_NUMBERS"]):
            out.append("no recipients: set CRITICAL_ALERT_PHONE_NUMBERS (and optionally HIGH_ALERT_PHONE_NUMBERS)")
        for var in ("TWILIO_FROM_NUMBER", *PHONE_VARS.values()):
            for number in split_urls(self.env[var]):
                if not _E164.match(number):
                    out.append(f"{var}: {number!r} is not an E.164 phone number like +15551234567")
        return out

    def send(self, notification: Notification) -> DeliveryResult:
        # A mistyped recipient is refused alone below (and reported at start): it must not stop the page to
        # the valid numbers. Missing credentials or a bad From number stop every SMS.
        problems = [p for p in self.problems() if "recipients" not in p and not p.startswith(tuple(PHONE_VARS.values()))]
        if problems:
            raise ChannelConfigError("sms is not configured: " + "; ".join(problems))
        severity = notification.alert.severity
        numbers = self.recipients(severity)
        if not numbers:
            raise ChannelConfigError(f"no SMS recipients for severity {severity}: set CRITICAL_ALERT_PHONE_NUMBERS")
        if self._client is None:
            self._client = new_client(self.timeout)
        sid = self.env["TWILIO_ACCOUNT_SID"]
        url = f"{self.base_url}/2010-04-01/Accounts/{sid}/Messages.json"
        body = render.sms_text(notification.alert, notification.kind)
        # Every number is tried: one refused or unreachable phone must not keep the page from the others.
        reached: list[str] = []
        temporary: dict[str, str] = {}
        permanent: dict[str, str] = {}
        for number in numbers:
            if notification.done_with(number):
                continue
            if not _E164.match(number):
                permanent[number] = "not an E.164 phone number like +15551234567"
                continue
            try:
                post(self._client, url, "Twilio", self.redactor,
                     data={"To": number, "From": self.env["TWILIO_FROM_NUMBER"], "Body": body},
                     auth=(sid, self.env["TWILIO_AUTH_TOKEN"]))
            except DeliveryError as exc:
                (permanent if exc.permanent else temporary)[number] = str(exc).removeprefix("Twilio: ")
            else:
                reached.append(number)
        return settle(notification, "Twilio SMS", reached, temporary, permanent,
                      f"sent {len(reached)} SMS via Twilio", show=_mask_number)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _mask_number(number: str) -> str:
    return number[:-4].rstrip() + "****" if len(number) > 6 else "****"



