"""`precog markets ...`: stored market history (SCD2), including the market as it was at a moment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import print_json, print_mapping, print_table
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated
from precog.ingest import scd2

markets_app = typer.Typer(help="Stored market data (history written by `precog ingest run`).", no_args_is_help=True)

_SHOWN = ("market_id", "status", "yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "spread", "volume",
          "open_interest", "result", "settlement_value", "created_at", "row_end_ts")


def register(app: typer.Typer) -> None:
    app.add_typer(markets_app, name="markets")


def parse_time(text: str) -> datetime:
    """ISO-8601; a time without a zone is UTC; 'Z' accepted."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"--at: {text!r} is not an ISO-8601 time (e.g. 2025-11-30T20:15:00Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@markets_app.command("history")
def history(
    ticker: str = typer.Argument(..., help="Market ticker, e.g. KXNFLGAME-25NOV30DENWAS-DEN."),
    at: str | None = typer.Option(None, "--at", help="Show the market as it was at this ISO-8601 time."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Every stored version of a market (each a material change), or the one valid at --at.

    Example: precog markets history KXNFLGAME-25NOV30DENWAS-DEN --at 2025-11-30T21:00:00Z --json
    """
    when = parse_time(at) if at else None
    url = ensure_migrated()
    with connect(url) as conn:
        versions = scd2.history(conn, scd2.MARKETS, (ticker,))
        if not versions:
            raise UserError(f"no stored history for market {ticker!r} (is `precog ingest run` following it?)")
        if when is not None:
            row = scd2.as_of(conn, scd2.MARKETS, (ticker,), when)
            if row is None:
                first = versions[0]["created_at"].isoformat()
                raise UserError(f"market {ticker} had no stored state at {when.isoformat()} (history starts {first})")
            if as_json:
                print_json(_clean(row))
            else:
                print_mapping(f"{ticker} at {when.isoformat()}", {k: row[k] for k in _SHOWN})
            return
    if as_json:
        print_json([_clean(v) for v in versions])
        return
    print_table(f"{ticker}: {len(versions)} versions", list(_SHOWN[1:]),
                ([v[k] for k in _SHOWN[1:]] for v in versions))


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("row_current_ind",)} | {"current": row["row_current_ind"]}
