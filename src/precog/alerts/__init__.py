"""Alerts and notifications: one raise API, dedup, lifecycle, silences, routing, a durable outbox, channels.

    from precog.alerts import AlertManager, Notifier
    alerts = AlertManager()                     # implements precog.alerts.api.AlertRaiser
    alerts.raise_alert("api_failure", "high", "kalshi_api", "orders endpoint timing out", dedup_key="orders")
    Notifier().start()                          # or: precog alerts deliver

Names are imported lazily so that `precog.alerts.api` (imported by every component) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from precog.alerts.manager import AlertManager
    from precog.alerts.model import AlertError, AlertNotFound, AlertRecord, IllegalTransition, fingerprint
    from precog.alerts.notifier import DeliveryReport, Notifier, Outcome
    from precog.alerts.settings import AlertSettings

_EXPORTS = {
    "AlertManager": "precog.alerts.manager",
    "AlertError": "precog.alerts.model",
    "AlertNotFound": "precog.alerts.model",
    "AlertRecord": "precog.alerts.model",
    "IllegalTransition": "precog.alerts.model",
    "fingerprint": "precog.alerts.model",
    "DeliveryReport": "precog.alerts.notifier",
    "Notifier": "precog.alerts.notifier",
    "Outcome": "precog.alerts.notifier",
    "AlertSettings": "precog.alerts.settings",
}

__all__ = [
    "AlertError",
    "AlertManager",
    "AlertNotFound",
    "AlertRecord",
    "AlertSettings",
    "DeliveryReport",
    "IllegalTransition",
    "Notifier",
    "Outcome",
    "fingerprint",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'precog.alerts' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
