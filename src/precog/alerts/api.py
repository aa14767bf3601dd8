"""The one interface every component uses to raise an alert.

Components accept any object with this shape (the AlertManager implements it), so they never import
the notification machinery and tests can pass the real manager.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

Severity = Literal["critical", "high", "medium", "low"]


class AlertRaiser(Protocol):
    def raise_alert(
        self,
        alert_type: str,
        severity: Severity,
        component: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        source_table: str | None = None,
        source_id: int | None = None,
        dedup_key: str | None = None,
        category: str | None = None,  # risk | system | trading | data (spec 8.2); others are refused
    ) -> int | None:
        """Store the alert (deduplicated) and queue its notifications; never blocks on delivery.

        Returns the alert id (None only where the sink does not store alerts)."""
        ...
