"""Console channel: one readable line per alert on stderr, coloured by severity (NO_COLOR is honoured)."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.text import Text

from precog.alerts.channels import render
from precog.alerts.channels.base import DeliveryResult, Notification

SEVERITY_STYLES = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}


class ConsoleChannel:
    name = "console"
    batchable = True

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._lock = threading.Lock()

    def problems(self) -> list[str]:
        return []

    def send(self, notification: Notification) -> DeliveryResult:
        alert = notification.alert
        line = Text()
        line.append(alert.triggered_at.strftime("%Y-%m-%d %H:%M:%S%z") + " ", style="dim")
        line.append(f" {render.KIND_LABEL.get(notification.kind, '')}{alert.severity.upper()} ",
                    style=SEVERITY_STYLES.get(alert.severity, ""))
        line.append(f" #{alert.alert_id} {alert.alert_type} @ {alert.component}", style="bold")
        if alert.environment:
            line.append(f" [{alert.environment}]", style="dim")
        line.append(f": {alert.message}")
        if alert.duplicate_count:
            line.append(f" (repeated {alert.duplicate_count}x)", style="dim")
        with self._lock:
            self.console.print(line, soft_wrap=True, highlight=False)
        return DeliveryResult("printed")

    def close(self) -> None:
        return None
