"""Venue hierarchy storage: series and events updated in place, markets as SCD2 history (material changes).

Markets are keyed by the venue ticker (`market_id` = ticker). A row is the full market state; stream
updates (ticker, lifecycle) are merged into the last known row before writing, so every version is a
complete picture of the market at that moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.domain.market import Event, Market, Series
from precog.domain.money import ONE
from precog.ingest.scd2 import MARKETS, WriteResult, jsonb, write_batch

_SERIES_CATEGORIES = {"sports", "politics", "entertainment", "economics", "weather"}
_FREQUENCY = {"one_off": "single", "single": "single", "daily": "recurring", "weekly": "recurring",
              "monthly": "recurring", "annual": "recurring", "custom": "recurring", "recurring": "recurring",
              "continuous": "continuous", "hourly": "recurring"}
_RESULTS = {"yes", "no", "void", "scalar"}


def _count(value: Decimal | None) -> int | None:
    """Contract counts may be fractional at the venue; the columns hold whole contracts (floor)."""
    return int(value) if value is not None else None


def derive_prices(row: dict[str, Any]) -> dict[str, Any]:
    """yes_price (mid when both sides quote, else last), no_price and spread, from the quote columns."""
    bid, ask, last = row.get("yes_bid"), row.get("yes_ask"), row.get("last_price")
    if bid is not None and ask is not None and Decimal(0) < bid <= ask < ONE:
        yes_price = (bid + ask) / 2
    else:
        yes_price = last
    row["yes_price"] = yes_price
    row["no_price"] = ONE - yes_price if yes_price is not None else None
    row["spread"] = ask - bid if bid is not None and ask is not None and ask >= bid else None
    return row


def market_row(m: Market, platform_id: str) -> dict[str, Any]:
    """A full markets row from a venue Market (REST)."""
    meta: dict[str, Any] = {}
    for key in ("yes_sub_title", "no_sub_title", "rules_secondary"):
        value = getattr(m, key)
        if value:
            meta[key] = value
    # no column of its own: kept with the version (ISO-8601) for the decision layer's time to settlement
    for key in ("yes_bid_size", "yes_ask_size", "previous_yes_bid", "previous_yes_ask", "previous_price",
                "expected_expiration_time"):
        value = getattr(m, key)
        if value is not None:
            meta[key] = value
    row = {
        "market_id": m.ticker,
        "platform_id": platform_id,
        "event_id": m.event_ticker,
        "external_id": m.ticker,
        "ticker": m.ticker,
        "title": m.title or m.ticker,
        "subtitle": m.subtitle or None,
        "market_type": m.market_type if m.market_type in ("binary", "categorical", "scalar") else "binary",
        "yes_bid": m.yes_bid,
        "yes_ask": m.yes_ask,
        "no_bid": m.no_bid,
        "no_ask": m.no_ask,
        "last_price": m.last_price,
        "volume": _count(m.volume),
        "volume_24h": _count(m.volume_24h),
        "open_interest": _count(m.open_interest),
        "liquidity": None,
        "tick_size": m.tick_size if m.tick_size is not None and m.tick_size > 0 else Decimal("0.01"),
        "notional_value": m.notional_value,
        "open_time": m.open_time,
        "close_time": m.close_time,
        "expiration_time": m.expiration_time,
        "latest_expiration_time": m.latest_expiration_time,
        "can_close_early": m.can_close_early,
        "status": m.status.value,
        "venue_status": m.venue_status[:30] or None,
        "result": m.result.lower() if m.result and m.result.lower() in _RESULTS else None,
        "settlement_value": m.settlement_value,
        "rules_primary": m.rules_primary or None,
        "metadata": meta,
    }
    return derive_prices(row)


class MarketStore:
    """Reads and writes the venue hierarchy for one platform ('kalshi' or 'local')."""

    def __init__(self, conn: psycopg.Connection[Any], platform_id: str) -> None:
        self.conn = conn  # autocommit; write_batch opens its own transaction
        self.platform_id = platform_id

    def upsert_series(self, series: Series, sport: str | None) -> None:
        category = series.category.lower() if series.category.lower() in _SERIES_CATEGORIES else "other"
        self.conn.execute(
            "INSERT INTO series (series_id, platform_id, external_id, category, subcategory, title, frequency,"
            " fee_type, fee_multiplier, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (series_id) DO UPDATE SET title = EXCLUDED.title, category = EXCLUDED.category,"
            " subcategory = COALESCE(EXCLUDED.subcategory, series.subcategory), frequency = EXCLUDED.frequency,"
            " fee_type = EXCLUDED.fee_type, fee_multiplier = EXCLUDED.fee_multiplier,"
            " metadata = EXCLUDED.metadata, updated_at = now()",
            (series.ticker, self.platform_id, series.ticker, category, sport, series.title or series.ticker,
             _FREQUENCY.get(series.frequency.lower()), series.fee_type or None, series.fee_multiplier,
             jsonb({"tags": list(series.tags), "venue_category": series.category})),
        )

    def upsert_events(self, events: Sequence[Event], sport: str | None) -> int:
        if not events:
            return 0
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (event_id, platform_id, series_id, external_id, category, subcategory, title,"
                " description, metadata) VALUES (%s, %s, (SELECT series_id FROM series WHERE series_id = %s),"
                " %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (event_id) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description,"
                " series_id = COALESCE(EXCLUDED.series_id, events.series_id),"
                " subcategory = COALESCE(EXCLUDED.subcategory, events.subcategory),"
                " metadata = EXCLUDED.metadata, updated_at = now()",
                [(e.event_ticker, self.platform_id, e.series_ticker, e.event_ticker, (e.category or "sports").lower(),
                  sport, e.title or e.event_ticker, e.sub_title or None,
                  jsonb({"mutually_exclusive": e.mutually_exclusive,
                         "strike_date": e.strike_date.isoformat() if e.strike_date else None}))
                 for e in events],
            )
        return len(events)

    def ensure_events(self, event_tickers: Sequence[str]) -> None:
        """Markets reference events; create a bare event row for any the discovery has not stored yet."""
        self.conn.execute(
            "INSERT INTO events (event_id, platform_id, external_id, category, title)"
            " SELECT t, %s, t, 'sports', t FROM unnest(%s::text[]) AS t ON CONFLICT (event_id) DO NOTHING",
            (self.platform_id, list(dict.fromkeys(event_tickers))),
        )

    def write_markets(self, rows: Sequence[Mapping[str, Any]],
                      observed_at: datetime | Sequence[datetime] | None = None) -> WriteResult:
        return write_batch(self.conn, MARKETS, rows, observed_at)

    def mark_events_final(self) -> int:
        """Events whose markets have all settled are final (events.status is kept in place)."""
        cur = self.conn.execute(
            "UPDATE events e SET status = 'final', updated_at = now() WHERE e.platform_id = %s"
            " AND e.status <> 'final' AND EXISTS (SELECT 1 FROM markets m WHERE m.event_id = e.event_id"
            " AND m.row_current_ind) AND NOT EXISTS (SELECT 1 FROM markets m WHERE m.event_id = e.event_id"
            " AND m.row_current_ind AND m.status <> 'settled')",
            (self.platform_id,),
        )
        return cur.rowcount

    def current_rows(self) -> dict[str, dict[str, Any]]:
        """The current version of every market of this platform, keyed by ticker (for merging updates)."""
        cols = ", ".join(MARKETS.columns)
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {cols} FROM markets WHERE row_current_ind AND platform_id = %s",  # noqa: S608
                        (self.platform_id,))
            return {row["market_id"]: dict(row) for row in cur.fetchall()}
