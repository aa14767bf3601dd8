"""What every notification channel implements, and the errors a send can end with."""

from __future__ import annotations

from collections.abc import Callable
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
    # Recipients reached by an earlier, partly failed attempt, plus `refused:<recipient>` for those that
    # refused permanently (a retry skips both).
    delivered_to: tuple[str, ...] = ()

    def done_with(self, recipient: str) -> bool:
        """Reached already, or refused permanently: a retry must not send to it again."""
        return recipient in self.delivered_to or refused_key(recipient) in self.delivered_to

    def refused_before(self) -> list[str]:
        return [d[len(REFUSED_PREFIX):] for d in self.delivered_to if d.startswith(REFUSED_PREFIX)]


REFUSED_PREFIX = "refused:"


def refused_key(recipient: str) -> str:
    """How a permanently refused recipient is remembered in delivered_to (so retries skip it)."""
    return REFUSED_PREFIX + recipient


@dataclass(frozen=True)
class DeliveryResult:
    detail: str                                   # "sent to 2 recipients", shown by `precog alerts test`
    delivered_to: tuple[str, ...] = ()
    # Sent, but some recipients refused permanently: recorded as the row's last_error and on the alert.
    error: str | None = None


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


def settle(notification: Notification, what: str, reached_now: list[str], temporary: dict[str, str],
           permanent: dict[str, str], detail: str, show: Callable[[str], str] = str) -> DeliveryResult:
    """The outcome of one send to several recipients (SMS numbers, email addresses).

    `temporary` / `permanent` map each refused recipient to its reason. Any temporary refusal: a retry for
    those recipients only (the reached and the permanently refused are remembered in delivered_to). Nobody
    reached and the rest refused permanently: a permanent failure. Otherwise sent, with the permanent
    refusals recorded as the delivery's error."""
    before = notification.refused_before()
    reached = [d for d in notification.delivered_to if not d.startswith(REFUSED_PREFIX)]
    reached += [r for r in reached_now if r not in reached]
    refused = before + [r for r in permanent if r not in before]
    done = tuple(reached + [refused_key(r) for r in refused])
    earlier = [show(r) for r in before if r not in permanent]
    problems = [f"{show(r)}: {why}" for r, why in {**temporary, **permanent}.items()]
    if earlier:
        problems.append(f"refused permanently before: {', '.join(earlier)}")
    if temporary:
        raise DeliveryError(f"{what}: " + "; ".join(problems), delivered_to=done)
    if refused and not reached:
        raise DeliveryError(f"{what}: " + "; ".join(problems), permanent=True, delivered_to=done)
    return DeliveryResult(detail, done, f"{what}: " + "; ".join(problems) if refused else None)
