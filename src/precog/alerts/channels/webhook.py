"""Generic webhook: JSON POST to CUSTOM_WEBHOOK_URL signed with HMAC-SHA256 (PRECOG_WEBHOOK_SECRET).

Headers: `X-Precog-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, `X-Precog-Timestamp: <unix seconds>`,
`X-Precog-Delivery: <outbox id>` (stable across retries: receivers use it to drop a repeated delivery).
The body carries `sent_at` and `delivery_id` too, so they are covered by the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

from precog.alerts.channels import render
from precog.alerts.channels.base import ChannelConfigError, DeliveryResult, Notification
from precog.alerts.channels.http import new_client, post
from precog.alerts.redact import Redactor
from precog.domain.jsonutil import dumps

SIGNATURE_HEADER = "X-Precog-Signature"
TIMESTAMP_HEADER = "X-Precog-Timestamp"
DELIVERY_HEADER = "X-Precog-Delivery"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: constant-time comparison of the expected and received signature."""
    return hmac.compare_digest(sign(secret, body), signature)


class WebhookChannel:
    name = "webhook"
    batchable = False

    def __init__(self, environ: Mapping[str, str], *, timeout: float, redactor: Redactor) -> None:
        self.url = environ.get("CUSTOM_WEBHOOK_URL", "").strip()
        self.secret = environ.get("PRECOG_WEBHOOK_SECRET", "").strip()
        self.timeout = timeout
        self.redactor = redactor
        self._client: httpx.Client | None = None

    def problems(self) -> list[str]:
        out = []
        if not self.url:
            out.append("CUSTOM_WEBHOOK_URL is not set")
        elif not self.url.startswith(("https://", "http://")):
            out.append("CUSTOM_WEBHOOK_URL is not an http(s) URL")
        if not self.secret:
            out.append("PRECOG_WEBHOOK_SECRET is not set (deliveries are signed with it)")
        return out

    def send(self, notification: Notification) -> DeliveryResult:
        problems = self.problems()
        if problems:
            raise ChannelConfigError("webhook is not configured: " + "; ".join(problems))
        if self._client is None:
            self._client = new_client(self.timeout)
        doc = render.payload(notification.alert, notification.kind, notification.outbox_id)
        doc["sent_at"] = datetime.now(UTC)
        body = dumps(doc, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, body),
            TIMESTAMP_HEADER: str(int(time.time())),
            DELIVERY_HEADER: str(notification.outbox_id),
        }
        response = post(self._client, self.url, "webhook", self.redactor, content=body, headers=headers)
        return DeliveryResult(f"posted (HTTP {response.status_code})")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
