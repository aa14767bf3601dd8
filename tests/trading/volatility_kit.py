"""Builders of the volatility tests: a market's stored SCD2 history with chosen quotes and times."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from precog.trading.volatility import VolatilityRule

D = Decimal
RULE = VolatilityRule()  # the packaged defaults: 15 min recent, 120 min baseline


def write_history(conn: psycopg.Connection[Any], ticker: str, versions: list[tuple[datetime, str | None, str | None]],
                  *, event: str | None = None) -> None:
    """Replace the market's SCD2 history with `versions` (created_at, yes_bid, yes_ask), the last one current;
    the event defaults to the ticker without its last part (KXNFLGAME-25DEC28BUFKC-KC -> KXNFLGAME-25DEC28BUFKC)."""
    event = event or ticker.rsplit("-", 1)[0]
    opened = versions[0][0] - timedelta(days=1)  # listed well before its history (markets.yaml min_market_age_hours)
    with conn.transaction():
        conn.execute("DELETE FROM markets WHERE market_id = %s", (ticker,))
        for i, (at, bid, ask) in enumerate(versions):
            end = versions[i + 1][0] if i + 1 < len(versions) else None
            conn.execute(
                "INSERT INTO markets (market_id, platform_id, event_id, external_id, ticker, title, yes_bid, yes_ask,"
                " volume, volume_24h, open_interest, open_time, close_time, status, created_at, row_current_ind,"
                " row_end_ts, metadata) VALUES (%s, 'kalshi', %s, %s, %s, %s, %s, %s, 1000, 1000, 1000, %s, %s, 'open',"
                " %s, %s, %s, '{\"yes_bid_size\": \"1000\", \"yes_ask_size\": \"1000\"}'::jsonb)",
                (ticker, event, ticker, ticker, ticker, None if bid is None else D(bid),
                 None if ask is None else D(ask), opened, at + timedelta(hours=6), at, end is None, end))


def swings(now: datetime, *, baseline_cents: int, recent_cents: int, every_s: int = 60,
           last: tuple[str, str] = ("0.50", "0.52")) -> list[tuple[datetime, str | None, str | None]]:
    """A one-cent-wide quote whose mid alternates by `baseline_cents` over the 2 h baseline, by `recent_cents`
    over the last 15 min, ending (5 s ago) at `last`."""
    out: list[tuple[datetime, str | None, str | None]] = []
    start = now - timedelta(seconds=RULE.recent_seconds + RULE.baseline_seconds + 2 * every_s)
    t, k = start, 0
    while t < now - timedelta(seconds=10):
        cents = recent_cents if t > now - timedelta(seconds=RULE.recent_seconds) else baseline_cents
        bid = D("0.50") + (0 if k % 2 else D(cents) / 100)
        out.append((t, str(bid), str(bid + D("0.02"))))
        t += timedelta(seconds=every_s)
        k += 1
    out.append((now - timedelta(seconds=5), *last))
    return out
