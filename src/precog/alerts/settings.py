"""The alert settings in one typed object, read from `system.yaml` (`notifications`, `alert_routing`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from precog.alerts.model import CHANNELS, SEVERITIES


@dataclass(frozen=True)
class RateLimit:
    per_hour: int
    per_day: int
    cooldown_seconds: int


@dataclass(frozen=True)
class InhibitRule:
    source_type: str
    target_types: tuple[str, ...]
    equal: tuple[str, ...] = ()
    max_age_minutes: int = 60


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_seconds: float = 2.0
    max_seconds: float = 300.0

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt: initial * 2^(attempts-1), capped."""
        return float(min(self.initial_seconds * (2 ** max(attempts - 1, 0)), self.max_seconds))


@dataclass(frozen=True)
class AlertSettings:
    environment: str = "demo"
    routing: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "critical": ("console", "file", "email", "sms", "database"),
        "high": ("console", "file", "email", "database"),
        "medium": ("console", "file", "database"),
        "low": ("file", "database"),
    })
    routing_by_type: dict[str, tuple[str, ...]] = field(default_factory=dict)
    enabled: dict[str, bool] = field(default_factory=lambda: {
        "console": True, "file": True, "database": True,
        "email": False, "sms": False, "slack": False, "webhook": False, "apprise": False,
    })
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    dedup_window_minutes: int = 60
    dedup_window_minutes_by_type: dict[str, int] = field(default_factory=dict)
    renotify_minutes: int = 30
    renotify_acknowledged: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    inhibit_rules: tuple[InhibitRule, ...] = ()
    timeout_seconds: float = 10.0
    group_commit_ms: int = 50
    worker_poll_seconds: float = 1.0
    email_use_tls: str = "starttls"
    email_subject_prefix: str = "[PRECOG ALERT]"
    twilio_base_url: str = "https://api.twilio.com"
    file_path: str = "logs/alerts.jsonl"
    file_max_bytes: int = 10 * 1024 * 1024
    file_backup_count: int = 5

    @classmethod
    def from_config(cls, config: Any) -> AlertSettings:
        """From a `precog.config.loader.Config` (already validated by the pydantic schema)."""
        notif: dict[str, Any] = config.get("system.notifications")
        routing: dict[str, Any] = config.get("system.alert_routing")
        enabled = {"console": True, "file": True, "database": True}
        for ch in ("email", "sms", "slack", "webhook", "apprise"):
            enabled[ch] = bool(notif.get(ch, {}).get("enabled", False))
        retry = notif.get("retry", {})
        return cls(
            environment=str(config.get("system.environment.active")),
            routing={sev: tuple(routing.get(sev, ())) for sev in SEVERITIES},
            routing_by_type={str(k): tuple(v) for k, v in (routing.get("by_type") or {}).items()},
            enabled=enabled,
            rate_limits={
                str(ch): RateLimit(int(v["per_hour"]), int(v["per_day"]), int(v["cooldown_seconds"]))
                for ch, v in (notif.get("rate_limits") or {}).items()
            },
            dedup_window_minutes=int(notif["dedup_window_minutes"]),
            dedup_window_minutes_by_type={str(k): int(v) for k, v in (notif.get("dedup_window_minutes_by_type") or {}).items()},
            renotify_minutes=int(notif["renotify_minutes"]),
            renotify_acknowledged=bool(notif.get("renotify_acknowledged", False)),
            retry=RetryPolicy(
                max_attempts=int(retry.get("max_attempts", 6)),
                initial_seconds=float(Decimal(str(retry.get("initial_seconds", 2)))),
                max_seconds=float(Decimal(str(retry.get("max_seconds", 300)))),
            ),
            inhibit_rules=tuple(
                InhibitRule(
                    source_type=str(r["source_type"]),
                    target_types=tuple(str(t) for t in r.get("target_types", ())),
                    equal=tuple(str(e) for e in r.get("equal", ()) or ()),
                    max_age_minutes=int(r.get("max_age_minutes", 60)),
                )
                for r in (notif.get("inhibit_rules") or [])
            ),
            timeout_seconds=float(notif.get("timeout_seconds", 10)),
            group_commit_ms=int(notif.get("group_commit_ms", 50)),
            worker_poll_seconds=float(Decimal(str(notif.get("worker_poll_seconds", 1)))),
            email_use_tls=str(notif.get("email", {}).get("use_tls", "starttls")),
            email_subject_prefix=str(notif.get("email", {}).get("subject_prefix", "[PRECOG ALERT]")),
            twilio_base_url=str(notif.get("sms", {}).get("twilio_base_url", "https://api.twilio.com")),
            file_path=str(notif.get("file", {}).get("path", "logs/alerts.jsonl")),
            file_max_bytes=int(notif.get("file", {}).get("max_bytes", 10 * 1024 * 1024)),
            file_backup_count=int(notif.get("file", {}).get("backup_count", 5)),
        )

    @classmethod
    def load(cls, db_url: str | None = None) -> AlertSettings:
        from precog.config.loader import load_config

        return cls.from_config(load_config(db_url=db_url))

    def window_minutes(self, alert_type: str) -> int:
        return self.dedup_window_minutes_by_type.get(alert_type, self.dedup_window_minutes)

    def routes(self, alert_type: str, severity: str) -> tuple[str, ...]:
        """Channels an alert goes to: the per-type override, else the severity's list; disabled ones dropped."""
        chosen = self.routing_by_type.get(alert_type) or self.routing.get(severity, ())
        seen: list[str] = []
        for ch in chosen:
            if ch in CHANNELS and self.enabled.get(ch, False) and ch not in seen:
                seen.append(ch)
        return tuple(seen)

    def routed_but_disabled(self) -> dict[str, list[str]]:
        """Channel -> the routes naming it while it is disabled (reported at start-up)."""
        out: dict[str, list[str]] = {}
        for name, chans in list(self.routing.items()) + [(f"by_type.{t}", c) for t, c in self.routing_by_type.items()]:
            for ch in chans:
                if not self.enabled.get(ch, False):
                    out.setdefault(ch, []).append(name)
        return out

    def file_location(self, home: Path | None = None) -> Path:
        path = Path(self.file_path).expanduser()
        if path.is_absolute():
            return path
        from precog.paths import precog_home

        return (home or precog_home()) / path
