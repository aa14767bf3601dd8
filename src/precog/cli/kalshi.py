"""`precog kalshi ...`: read Kalshi (demo, prod or the local exchange) from the command line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_mapping, print_table
from precog.domain.market import Market
from precog.domain.money import fmt_money
from precog.venues.kalshi.client import KalshiClient, RetryPolicy
from precog.venues.kalshi.errors import KalshiError

kalshi_app = typer.Typer(
    help="Kalshi market data and account state (demo, prod or the local exchange).\n\n"
    "Keys: KALSHI_API_KEY_ID + KALSHI_PRIVATE_KEY_PATH (public market data needs none).",
    no_args_is_help=True,
)

# a person is waiting: retry briefly, then say what is wrong
CLI_RETRY = RetryPolicy(max_retries=2, backoff_base=0.5, backoff_max=4.0, retry_after_max=10.0)

MARKET_STATUSES = ("unopened", "open", "paused", "closed", "settled")

EnvOpt = typer.Option("demo", "--env", help="Kalshi environment: demo, prod or local (the local exchange).")
BaseUrlOpt = typer.Option(
    None, "--base-url", help="REST base URL, e.g. http://127.0.0.1:8765/trade-api/v2 (default $KALSHI_BASE_URL)."
)
JsonOpt = typer.Option(False, "--json", help="Print JSON (Decimals as strings).")


def register(app: typer.Typer) -> None:
    app.add_typer(kalshi_app, name="kalshi")


@contextmanager
def _client(env: str, base_url: str | None, *, auth: bool = False) -> Iterator[KalshiClient]:
    from precog.config.errors import ConfigError
    from precog.config.loader import load_config
    from precog.venues.kalshi.settings import client_options

    try:
        # the configured request budget and timeout; an interactive command retries less (CLI_RETRY)
        options = {**client_options(load_config(use_overrides=False)), "retry": CLI_RETRY}
        client = KalshiClient.from_env(env, base_url=base_url, require_auth=auth, **options)
    except (KalshiError, ConfigError) as exc:
        raise UserError(str(exc)) from exc
    try:
        yield client
    except KalshiError as exc:
        raise UserError(str(exc)) from exc
    finally:
        client.close()


def _fetch(env: str, base_url: str | None, fn: Callable[[KalshiClient], Any], *, auth: bool = False) -> Any:
    with _client(env, base_url, auth=auth) as client:
        return fn(client)


def _limit(value: int) -> int:
    if value < 1:
        raise UserError(f"--limit must be at least 1, got {value}")
    return value


def _d(value: Any) -> str:
    return "" if value is None else str(value)


def _t(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value is not None else ""


@kalshi_app.command("markets")
def markets(
    series: str | None = typer.Option(None, "--series", help="Series ticker, e.g. KXNFLGAME."),
    event: str | None = typer.Option(None, "--event", help="Event ticker."),
    status: str | None = typer.Option(None, "--status", help=f"One of: {', '.join(MARKET_STATUSES)}."),
    limit: int = typer.Option(100, "--limit", help="Maximum number of markets (pages are followed)."),
    env: str = EnvOpt,
    base_url: str | None = BaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List markets, following cursor pagination up to --limit.

    Example: precog kalshi markets --series KXNFLGAME --status open --limit 20
    """
    if status is not None and status not in MARKET_STATUSES:
        raise UserError(f"--status must be one of {', '.join(MARKET_STATUSES)}, got {status!r}")
    n = _limit(limit)
    rows: list[Market] = _fetch(
        env,
        base_url,
        lambda c: list(c.iter_markets(max_items=n, series_ticker=series, event_ticker=event, status=status)),
    )
    if as_json:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} markets",
        ["ticker", "status", "yes bid", "yes ask", "last", "volume", "closes"],
        (
            (m.ticker, m.venue_status, m.yes_bid, m.yes_ask, m.last_price, _d(m.volume),
             _t(m.close_time))
            for m in rows
        ),
    )


@kalshi_app.command("market")
def market(
    ticker: str = typer.Argument(..., help="Market ticker."),
    env: str = EnvOpt,
    base_url: str | None = BaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show one market.

    Example: precog kalshi market KXNFLGAME-25OCT05-NEBUF-NE --env prod
    """
    m: Market = _fetch(env, base_url, lambda c: c.get_market(ticker))
    if as_json:
        print_json(m)
        return
    print_mapping(
        m.ticker,
        {
            "event": m.event_ticker,
            "title": m.title or m.yes_sub_title,
            "status": f"{m.status.value} ({m.venue_status})",
            "yes bid / ask": f"{m.yes_bid} / {m.yes_ask}",
            "no bid / ask": f"{m.no_bid} / {m.no_ask}",
            "spread": m.spread,
            "last price": m.last_price,
            "volume": _d(m.volume),
            "open interest": _d(m.open_interest),
            "closes": _t(m.close_time),
            "result": m.result or "-",
        },
    )


@kalshi_app.command("orderbook")
def orderbook(
    ticker: str = typer.Argument(..., help="Market ticker."),
    depth: int = typer.Option(10, "--depth", help="Price levels per side (1-100)."),
    env: str = EnvOpt,
    base_url: str | None = BaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show the order book: YES and NO bids, best first, with the implied asks and spread.

    Example: precog kalshi orderbook KXNFLGAME-25OCT05-NEBUF-NE --depth 5
    """
    if not 1 <= depth <= 100:
        raise UserError(f"--depth must be between 1 and 100, got {depth}")
    book = _fetch(env, base_url, lambda c: c.get_orderbook(ticker, depth=depth))
    if as_json:
        print_json({"ticker": book.ticker, "yes_bids": book.yes_bids, "no_bids": book.no_bids,
                    "yes_ask": book.yes_ask, "no_ask": book.no_ask, "spread": book.spread})
        return
    rows = []
    for i in range(max(len(book.yes_bids), len(book.no_bids))):
        y = book.yes_bids[i] if i < len(book.yes_bids) else None
        n = book.no_bids[i] if i < len(book.no_bids) else None
        rows.append((_d(y and y.price), _d(y and y.quantity), _d(n and n.price), _d(n and n.quantity)))
    print_table(ticker, ["YES bid", "size", "NO bid", "size"], rows)
    console.print(f"YES ask {_d(book.yes_ask) or '-'}  NO ask {_d(book.no_ask) or '-'}  spread {_d(book.spread) or '-'}")


@kalshi_app.command("balance")
def balance(env: str = EnvOpt, base_url: str | None = BaseUrlOpt, as_json: bool = JsonOpt) -> None:
    """Show available cash and portfolio value.

    Example: precog kalshi balance --env demo
    """
    bal = _fetch(env, base_url, lambda c: c.get_balance(), auth=True)
    if as_json:
        print_json(bal)
        return
    print_mapping(
        "balance",
        {
            "available": fmt_money(bal.balance),
            "portfolio value": fmt_money(bal.portfolio_value) if bal.portfolio_value is not None else "-",
            "updated": _t(bal.updated_ts),
        },
    )


@kalshi_app.command("positions")
def positions(
    ticker: str | None = typer.Option(None, "--ticker", help="Only this market."),
    event: str | None = typer.Option(None, "--event", help="Only this event."),
    limit: int = typer.Option(1000, "--limit", help="Maximum number of positions."),
    env: str = EnvOpt,
    base_url: str | None = BaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show market positions (positive = YES contracts, negative = NO).

    Example: precog kalshi positions --env local --json
    """
    n = _limit(limit)
    rows = _fetch(
        env, base_url, lambda c: list(c.iter_positions(max_items=n, ticker=ticker, event_ticker=event)), auth=True
    )
    if as_json:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} positions",
        ["ticker", "position", "exposure", "realized P&L", "fees paid", "traded"],
        ((p.ticker, p.position, fmt_money(p.market_exposure), fmt_money(p.realized_pnl), fmt_money(p.fees_paid),
          fmt_money(p.total_traded)) for p in rows),
    )


@kalshi_app.command("fills")
def fills(
    ticker: str | None = typer.Option(None, "--ticker", help="Only this market."),
    limit: int = typer.Option(100, "--limit", help="Maximum number of fills."),
    env: str = EnvOpt,
    base_url: str | None = BaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show our fills, newest first.

    Example: precog kalshi fills --ticker KXNFLGAME-25OCT05-NEBUF-NE
    """
    n = _limit(limit)
    rows = _fetch(env, base_url, lambda c: list(c.iter_fills(max_items=n, ticker=ticker)), auth=True)
    if as_json:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} fills",
        ["time", "ticker", "side", "action", "count", "price", "fee", "taker", "order"],
        ((_t(f.created_time), f.ticker, f.side.value, f.action.value, f.count, f.price, _d(f.fee),
          "yes" if f.is_taker else "no", f.order_id) for f in rows),
    )


@kalshi_app.command("orders")
def orders(
    ticker: str | None = typer.Option(None, "--ticker", help="Only this market."),
    status: str | None = typer.Option(None, "--status", help="resting, canceled or executed."),
    limit: int = typer.Option(100, "--limit", help="Maximum number of orders."),
    env: str = EnvOpt,
    base_url: str | None = BaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show our orders.

    Example: precog kalshi orders --status resting
    """
    if status is not None and status not in ("resting", "canceled", "executed"):
        raise UserError(f"--status must be resting, canceled or executed, got {status!r}")
    n = _limit(limit)
    rows = _fetch(env, base_url, lambda c: list(c.iter_orders(max_items=n, ticker=ticker, status=status)), auth=True)
    if as_json:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} orders",
        ["order", "client id", "ticker", "side", "action", "price", "filled", "remaining", "status"],
        ((o.order_id, o.client_order_id, o.ticker, o.side.value, o.action.value, o.price, o.fill_count,
          o.remaining_count, o.status.value) for o in rows),
    )


@kalshi_app.command("settlements")
def settlements(
    ticker: str | None = typer.Option(None, "--ticker", help="Only this market."),
    limit: int = typer.Option(100, "--limit", help="Maximum number of settlements."),
    env: str = EnvOpt,
    base_url: str | None = BaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show settled markets we held, with payouts.

    Example: precog kalshi settlements --env local --json
    """
    n = _limit(limit)
    rows = _fetch(env, base_url, lambda c: list(c.iter_settlements(max_items=n, ticker=ticker)), auth=True)
    if as_json:
        print_json(rows)
        return
    print_table(
        f"{len(rows)} settlements",
        ["settled", "ticker", "result", "YES", "NO", "cost", "revenue", "fees"],
        ((_t(s.settled_time), s.ticker, s.market_result, s.yes_count, s.no_count,
          fmt_money(s.yes_total_cost + s.no_total_cost), fmt_money(s.revenue), fmt_money(s.fee_cost)) for s in rows),
    )
