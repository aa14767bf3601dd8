"""Per-channel rate limits (per hour, per day, cooldown between sends), shared by every notifier process.

The channel's alert_channel_state row is locked (FOR UPDATE) by the worker that checks and then sends, and the
send is recorded in alert_rate_events in the same transaction, so two processes never overrun a limit together.
A limit of 0 means "no limit" for that window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from precog.alerts.settings import RateLimit


def lock_channel(conn: psycopg.Connection[Any], channel: str) -> datetime | None:
    """Lock the channel's state row (creating it) and return when it last sent."""
    conn.execute("INSERT INTO alert_channel_state (channel) VALUES (%s) ON CONFLICT (channel) DO NOTHING", (channel,))
    row = conn.execute("SELECT last_sent_at FROM alert_channel_state WHERE channel = %s FOR UPDATE", (channel,)).fetchone()
    return row[0] if row else None


def limit_reason(conn: psycopg.Connection[Any], channel: str, limit: RateLimit | None, now: datetime) -> str | None:
    """Why the channel may not send now (None = it may). Call with the channel row locked."""
    if limit is None:
        return None
    last = lock_channel(conn, channel)
    if limit.cooldown_seconds and last is not None:
        elapsed = (now - last).total_seconds()
        if elapsed < limit.cooldown_seconds:
            return (f"{channel} rate limit: cooldown of {limit.cooldown_seconds} s between messages "
                    f"(last sent {int(elapsed)} s ago)")
    for window, cap, label in ((timedelta(hours=1), limit.per_hour, "hour"), (timedelta(days=1), limit.per_day, "day")):
        if not cap:
            continue
        row = conn.execute(
            "SELECT count(*) FROM alert_rate_events WHERE channel = %s AND sent_at > %s AND sent_at <= %s",
            (channel, now - window, now)).fetchone()
        if row and row[0] >= cap:
            return f"{channel} rate limit: {cap} per {label} reached"
    return None


def record_send(conn: psycopg.Connection[Any], channel: str, now: datetime, outbox_id: int | None,
                limited: bool = False) -> None:
    if limited:
        conn.execute("INSERT INTO alert_channel_state (channel, limited_total) VALUES (%s, 1) ON CONFLICT (channel)"
                     " DO UPDATE SET limited_total = alert_channel_state.limited_total + 1", (channel,))
        return
    conn.execute("INSERT INTO alert_rate_events (channel, sent_at, outbox_id) VALUES (%s, %s, %s)",
                 (channel, now, outbox_id))
    conn.execute(
        "INSERT INTO alert_channel_state (channel, last_sent_at, sent_total) VALUES (%s, %s, 1) ON CONFLICT (channel)"
        " DO UPDATE SET last_sent_at = GREATEST(alert_channel_state.last_sent_at, EXCLUDED.last_sent_at),"
        " sent_total = alert_channel_state.sent_total + 1", (channel, now))


def prune(conn: psycopg.Connection[Any], now: datetime) -> None:
    conn.execute("DELETE FROM alert_rate_events WHERE sent_at < %s", (now - timedelta(days=2),))
