"""Apprise: one URL per service (Telegram, Discord, ntfy, Pushover, json://, ...), from PRECOG_APPRISE_URLS.

Each URL is notified on its own so a retry after a partial failure only re-sends to the URLs that failed.
Apprise URLs carry tokens: they never appear in errors or rows (only a hash identifies each URL).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from precog.alerts.channels import render
from precog.alerts.channels.base import ChannelConfigError, DeliveryError, DeliveryResult, Notification
from precog.alerts.redact import Redactor, safe_url, split_urls


def url_key(url: str) -> str:
    """A non-secret identity for one Apprise URL (stored in delivered_to)."""
    return "apprise:" + hashlib.sha256(url.encode()).hexdigest()[:12]


class AppriseChannel:
    name = "apprise"
    batchable = False

    def __init__(self, environ: Mapping[str, str], *, timeout: float, redactor: Redactor) -> None:
        self.urls = split_urls(environ.get("PRECOG_APPRISE_URLS", ""))
        self.timeout = timeout
        self.redactor = redactor
        self._services: dict[str, Any] | None = None
        self._bad: list[str] = []

    def _load(self) -> dict[str, Any]:
        if self._services is None:
            import apprise

            services: dict[str, Any] = {}
            bad: list[str] = []
            for i, url in enumerate(self.urls, start=1):
                obj = apprise.Apprise()
                if obj.add(url):
                    services[url] = obj
                else:
                    bad.append(f"PRECOG_APPRISE_URLS entry {i} ({safe_url(url)}) is not a URL Apprise supports")
            self._services, self._bad = services, bad
        return self._services

    def problems(self) -> list[str]:
        if not self.urls:
            return ["PRECOG_APPRISE_URLS is not set"]
        self._load()
        return list(self._bad)

    def send(self, notification: Notification) -> DeliveryResult:
        import apprise

        services = self._load()
        if not services:
            raise ChannelConfigError("apprise is not configured: " + "; ".join(self.problems()))
        alert = notification.alert
        notify_type = {"critical": apprise.NotifyType.FAILURE, "high": apprise.NotifyType.FAILURE,
                       "medium": apprise.NotifyType.WARNING}.get(alert.severity, apprise.NotifyType.INFO)
        reached = list(notification.delivered_to)
        failures: list[str] = []
        for i, (url, obj) in enumerate(services.items(), start=1):
            key = url_key(url)
            if key in reached:
                continue
            with apprise.LogCapture(level=logging.WARNING) as logs:
                ok = obj.notify(body=render.plain_text(alert, notification.kind),
                                title=render.title(alert, notification.kind), notify_type=notify_type)
                captured = logs.getvalue().strip().splitlines()
            if ok:
                reached.append(key)
            else:
                reason = captured[-1].split(" - ", 2)[-1] if captured else "notification failed"
                failures.append(f"apprise URL {i} ({safe_url(url)}): {reason}")
        if failures:
            raise DeliveryError(self.redactor.redact("; ".join(failures)), delivered_to=tuple(reached))
        return DeliveryResult(f"notified {len(services)} Apprise service(s)", tuple(reached))

    def close(self) -> None:
        self._services = None
