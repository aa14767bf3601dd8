"""How an alert reads in each medium: a title, plain text, HTML, an SMS line, a JSON payload."""

from __future__ import annotations

import html
from typing import Any

from precog.alerts.model import AlertRecord
from precog.domain.jsonutil import dumps

KIND_LABEL = {"initial": "", "renotify": "REMINDER: ", "test": "TEST: "}


def title(alert: AlertRecord, kind: str = "initial") -> str:
    env = f" [{alert.environment}]" if alert.environment else ""
    return f"{KIND_LABEL.get(kind, '')}{alert.severity.upper()} {alert.alert_type} @ {alert.component}{env}"


def summary_fields(alert: AlertRecord) -> list[tuple[str, str]]:
    fields = [
        ("Alert", f"#{alert.alert_id}"),
        ("Severity", alert.severity),
        ("Type", alert.alert_type),
        ("Component", alert.component),
        ("Environment", alert.environment or "-"),
        ("Triggered", alert.triggered_at.isoformat(timespec="seconds")),
    ]
    if alert.category:
        fields.append(("Category", alert.category))
    if alert.duplicate_count:
        fields.append(("Repeats", f"{alert.duplicate_count} (last {alert.last_seen_at.isoformat(timespec='seconds') if alert.last_seen_at else '-'})"))
    if alert.source_table:
        fields.append(("Source", f"{alert.source_table} #{alert.source_id}" if alert.source_id is not None else alert.source_table))
    if alert.acknowledged_at:
        fields.append(("Acknowledged", f"by {alert.acknowledged_by} at {alert.acknowledged_at.isoformat(timespec='seconds')}"))
    return fields


def details_text(alert: AlertRecord, limit: int = 2000) -> str:
    if not alert.details:
        return ""
    text = dumps(alert.details, indent=2, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def plain_text(alert: AlertRecord, kind: str = "initial") -> str:
    lines = [title(alert, kind), "", alert.message, ""]
    lines += [f"{k}: {v}" for k, v in summary_fields(alert)]
    details = details_text(alert)
    if details:
        lines += ["", "Details:", details]
    lines += ["", f"Acknowledge: precog alerts ack {alert.alert_id} --by NAME"]
    return "\n".join(lines) + "\n"


_SEVERITY_COLOURS = {"critical": "#b00020", "high": "#e65100", "medium": "#f9a825", "low": "#546e7a"}


def html_text(alert: AlertRecord, kind: str = "initial") -> str:
    colour = _SEVERITY_COLOURS.get(alert.severity, "#333")
    rows = "".join(
        f"<tr><th align='left' style='padding:2px 12px 2px 0'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in summary_fields(alert)
    )
    details = details_text(alert)
    details_html = f"<h4>Details</h4><pre>{html.escape(details)}</pre>" if details else ""
    return (
        "<html><body style='font-family:sans-serif'>"
        f"<h2 style='color:{colour}'>{html.escape(title(alert, kind))}</h2>"
        f"<p style='font-size:1.1em'>{html.escape(alert.message)}</p>"
        f"<table>{rows}</table>{details_html}"
        f"<p style='color:#777'>Acknowledge: <code>precog alerts ack {alert.alert_id} --by NAME</code></p>"
        "</body></html>"
    )


def sms_text(alert: AlertRecord, kind: str = "initial", limit: int = 320) -> str:
    env = f" {alert.environment}" if alert.environment else ""
    text = f"[PRECOG{env} {KIND_LABEL.get(kind, '')}{alert.severity.upper()}] {alert.alert_type}/{alert.component}: {alert.message} (#{alert.alert_id})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def payload(alert: AlertRecord, kind: str, outbox_id: int) -> dict[str, Any]:
    """The JSON document the generic webhook and the file channel carry."""
    return {
        "event": "alert",
        "kind": kind,
        "delivery_id": outbox_id,
        "alert_id": alert.alert_id,
        "alert_uuid": str(alert.alert_uuid),
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "category": alert.category,
        "component": alert.component,
        "message": alert.message,
        "details": alert.details,
        "environment": alert.environment,
        "fingerprint": alert.fingerprint,
        "source_table": alert.source_table,
        "source_id": alert.source_id,
        "triggered_at": alert.triggered_at,
        "duplicate_count": alert.duplicate_count,
        "last_seen_at": alert.last_seen_at,
        "state": alert.state,
    }
