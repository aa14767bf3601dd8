"""Slack incoming webhook (SLACK_WEBHOOK_URL; optional SLACK_ALERT_CHANNEL) with readable Block Kit blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from precog.alerts.channels import render
from precog.alerts.channels.base import ChannelConfigError, DeliveryResult, Notification
from precog.alerts.channels.http import new_client, post
from precog.alerts.model import AlertRecord
from precog.alerts.redact import Redactor

SEVERITY_EMOJI = {"critical": ":rotating_light:", "high": ":red_circle:", "medium": ":large_orange_diamond:",
                  "low": ":information_source:"}


def slack_payload(alert: AlertRecord, kind: str, channel: str | None = None) -> dict[str, Any]:
    head = f"{SEVERITY_EMOJI.get(alert.severity, '')} {render.title(alert, kind)}".strip()
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in render.summary_fields(alert)][:10]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": alert.message[:2900]}},
        {"type": "section", "fields": fields},
    ]
    details = render.details_text(alert, limit=2800)
    if details:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{details}```"}})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"Acknowledge with `precog alerts ack {alert.alert_id} --by NAME`"}]})
    doc: dict[str, Any] = {"text": f"{render.title(alert, kind)}: {alert.message}"[:3000], "blocks": blocks}
    if channel:
        doc["channel"] = channel
    return doc


class SlackChannel:
    name = "slack"
    batchable = False

    def __init__(self, environ: Mapping[str, str], *, timeout: float, redactor: Redactor) -> None:
        self.url = environ.get("SLACK_WEBHOOK_URL", "").strip()
        self.channel = environ.get("SLACK_ALERT_CHANNEL", "").strip() or None
        self.timeout = timeout
        self.redactor = redactor
        self._client: httpx.Client | None = None

    def problems(self) -> list[str]:
        if not self.url:
            return ["SLACK_WEBHOOK_URL is not set"]
        if not self.url.startswith(("https://", "http://")):
            return ["SLACK_WEBHOOK_URL is not an http(s) URL"]
        return []

    def send(self, notification: Notification) -> DeliveryResult:
        problems = self.problems()
        if problems:
            raise ChannelConfigError("slack is not configured: " + "; ".join(problems))
        if self._client is None:
            self._client = new_client(self.timeout)
        post(self._client, self.url, "Slack webhook", self.redactor,
             json=slack_payload(notification.alert, notification.kind, self.channel))
        return DeliveryResult("posted to Slack")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
