"""Shared HTTP posting for the Twilio, Slack and webhook channels: status codes -> retry or give up."""

from __future__ import annotations

from typing import Any

import httpx

from precog.alerts.channels.base import DeliveryError
from precog.alerts.redact import Redactor

RETRYABLE_STATUS = {408, 425, 429}


def new_client(timeout: float) -> httpx.Client:
    # No redirects: a webhook that redirects is misconfigured, and following it could leak the signature.
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                        headers={"User-Agent": "precog-alerts/1"})


def post(client: httpx.Client, url: str, what: str, redactor: Redactor, *,
         delivered_to: tuple[str, ...] = (), **kwargs: Any) -> httpx.Response:
    """POST and return the 2xx response; otherwise raise DeliveryError (permanent for 4xx except 408/425/429)."""
    try:
        response = client.post(url, **kwargs)
    except httpx.TimeoutException as exc:
        raise DeliveryError(redactor.redact(f"{what}: timed out ({type(exc).__name__})"),
                            delivered_to=delivered_to) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(redactor.redact(f"{what}: {type(exc).__name__}: {exc}"), delivered_to=delivered_to) from None
    if 200 <= response.status_code < 300:
        return response
    body = response.text.strip().replace("\n", " ")[:300]
    permanent = 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_STATUS
    raise DeliveryError(redactor.redact(f"{what}: HTTP {response.status_code} {body}"), permanent=permanent,
                        delivered_to=delivered_to)
