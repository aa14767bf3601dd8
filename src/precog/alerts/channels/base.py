"""What every notification channel implements, and the errors a send can end with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from precog.alerts.model import AlertRecord


@dataclass(frozen=True)
class Notification:
    """One delivery of one alert through one channel (an alert_outbox row)."""

    outbox_id: int
    kind: str                    # initial | renotify | test
    alert: AlertRecord
    attempt: int                 # 1 for the first try
    delivered_to: tuple[str, ...] = ()  # recipients reached by an earlier, partly failed attempt


@dataclass(frozen=True)
class DeliveryResult:
    detail: str                                   # "sent to 2 recipients", shown by `precog alerts test`
    delivered_to: tuple[str, ...] = ()


class DeliveryError(Exception):
    """A send failed. `permanent` failures are not retried (bad configuration, 4xx/5xx refusals)."""

    def __init__(self, message: str, *, permanent: bool = False, delivered_to: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.delivered_to = delivered_to


class ChannelConfigError(DeliveryError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class Channel(Protocol):
    name: str
    # Local channels (console, file) are cheap and idempotent enough to deliver in batches.
    batchable: bool

    def problems(self) -> list[str]:
        """Configuration problems, each naming the missing or bad environment variable (empty = ready)."""
        ...

    def send(self, notification: Notification) -> DeliveryResult: ...

    def close(self) -> None: ...


@dataclass
class ChannelSet:
    """The channels a notifier delivers through, plus the start-up problems of the enabled ones."""

    channels: dict[str, Channel]
    problems: dict[str, list[str]] = field(default_factory=dict)

    def close(self) -> None:
        for ch in self.channels.values():
            ch.close()
