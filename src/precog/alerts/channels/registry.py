"""Build the channel objects from settings + environment and collect start-up configuration problems."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from precog.alerts.channels.apprise_channel import AppriseChannel
from precog.alerts.channels.base import Channel, ChannelSet
from precog.alerts.channels.console import ConsoleChannel
from precog.alerts.channels.email import EmailChannel
from precog.alerts.channels.file import JsonLinesFileChannel
from precog.alerts.channels.slack import SlackChannel
from precog.alerts.channels.sms import TwilioSmsChannel
from precog.alerts.channels.webhook import WebhookChannel
from precog.alerts.redact import Redactor
from precog.alerts.settings import AlertSettings


def build_channels(settings: AlertSettings, environ: Mapping[str, str] | None = None, *,
                   redactor: Redactor | None = None, console: Console | None = None,
                   home: Path | None = None) -> ChannelSet:
    env = dict(os.environ if environ is None else environ)
    red = redactor or Redactor.from_env(env)
    timeout = settings.timeout_seconds
    channels: dict[str, Channel] = {
        "console": ConsoleChannel(console),
        "file": JsonLinesFileChannel(settings.file_location(home), settings.file_max_bytes, settings.file_backup_count),
        "email": EmailChannel(env, use_tls=settings.email_use_tls, subject_prefix=settings.email_subject_prefix,
                              timeout=timeout, redactor=red),
        "sms": TwilioSmsChannel(env, base_url=settings.twilio_base_url, timeout=timeout, redactor=red),
        "slack": SlackChannel(env, timeout=timeout, redactor=red),
        "webhook": WebhookChannel(env, timeout=timeout, redactor=red),
        "apprise": AppriseChannel(env, timeout=timeout, redactor=red),
    }
    problems: dict[str, list[str]] = {}
    for name, channel in channels.items():
        if settings.enabled.get(name, False):
            found = channel.problems()
            if found:
                problems[name] = found
    return ChannelSet(channels, problems)


def describe_problems(problems: Mapping[str, list[str]]) -> list[str]:
    """One line per misconfigured enabled channel, e.g. 'sms is enabled but TWILIO_AUTH_TOKEN is not set'."""
    return [f"{name} is enabled but {'; '.join(found)}" for name, found in problems.items()]
