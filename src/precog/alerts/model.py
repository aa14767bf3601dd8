"""Alert vocabulary: severities, categories, resolution actions, fingerprints and the errors people see."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
# Lower rank = more severe.
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
PAGING_SEVERITIES: tuple[str, ...] = ("critical", "high")
CATEGORIES: tuple[str, ...] = ("risk", "system", "trading", "data")
RESOLUTION_ACTIONS: tuple[str, ...] = ("fixed", "false_positive", "ignored", "escalated")
CHANNELS: tuple[str, ...] = ("console", "file", "email", "sms", "slack", "webhook", "apprise", "database")
EXTERNAL_CHANNELS: tuple[str, ...] = ("email", "sms", "slack", "webhook", "apprise")


class AlertError(ValueError):
    """Bad input to the alert API (unknown severity, empty message ...); the text names the field."""


class AlertNotFound(LookupError):
    pass


class IllegalTransition(RuntimeError):
    """A lifecycle change that the current state does not allow (e.g. resolving an unacknowledged alert)."""


def fingerprint(alert_type: str, component: str, key_detail: str) -> str:
    """MD5 hex of `alert_type:component:key_detail` (spec 8.2), e.g. circuit_breaker:position_manager:daily_loss_limit."""
    return hashlib.md5(f"{alert_type}:{component}:{key_detail}".encode(), usedforsecurity=False).hexdigest()


def db_text(text: str, limit: int | None = None) -> str:
    """A string PostgreSQL can store: text and jsonb cannot hold NUL, so it is written as `\\0`; long texts
    (e.g. a receiver's error page) are cut to `limit` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "\\0")
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def db_json(value: Any) -> Any:
    """db_text applied to every string (keys too) inside a JSON-like structure."""
    if isinstance(value, str):
        return db_text(value)
    if isinstance(value, dict):
        return {db_text(k) if isinstance(k, str) else k: db_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [db_json(v) for v in value]
    return value


def check_severity(severity: str) -> str:
    if severity not in SEVERITY_RANK:
        raise AlertError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return severity


def check_text(field: str, value: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AlertError(f"{field} must be a non-empty string")
    if len(value) > max_len:
        raise AlertError(f"{field} is {len(value)} characters long (at most {max_len})")
    return value


@dataclass(frozen=True)
class AlertRecord:
    """One stored alert as read back from the database (what channels render and the CLI shows)."""

    alert_id: int
    alert_uuid: str
    alert_type: str
    severity: str
    category: str | None
    component: str
    message: str
    details: dict[str, Any] | None
    source_table: str | None
    source_id: int | None
    triggered_at: datetime
    environment: str | None
    fingerprint: str | None
    suppressed: bool
    duplicate_count: int
    last_seen_at: datetime | None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_notes: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolved_notes: str | None = None
    resolution_action: str | None = None
    notification_sent: bool = False
    notification_channels: dict[str, Any] | None = None
    notification_sent_at: datetime | None = None
    notification_attempts: int = 0
    notification_errors: list[dict[str, Any]] | None = None
    duplicate_of: int | None = None
    last_notified_at: datetime | None = None
    renotify_count: int = 0
    silence_id: int | None = None
    inhibited_by: int | None = None
    dedup_key: str | None = None
    tags: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        if self.resolved_at is not None:
            return "resolved"
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "triggered"

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["state"] = self.state
        return out
