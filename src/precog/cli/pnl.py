"""`precog pnl`, `precog positions`, `precog trades`: attributed results from the database."""

from __future__ import annotations

from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import print_json, print_table
from precog.domain.money import fmt_money

BY_CHOICES = ("method", "strategy", "model", "sport", "day")


def register(app: typer.Typer) -> None:
    app.command("pnl")(pnl)
    app.command("positions")(positions)
    app.command("trades")(trades)


def _conn():  # type: ignore[no-untyped-def]
    from precog.db.connection import connect, database_url
    from precog.db.migrate import ensure_migrated

    url = database_url()
    ensure_migrated(url)
    return connect(url, autocommit=True)


def _require_run(conn: Any, run_id: int | None) -> None:
    """An unknown --run is a mistake, not an empty result (which read as "nothing traded yet")."""
    if run_id is None:
        return
    if conn.execute("SELECT 1 FROM engine_runs WHERE run_id = %s", (run_id,)).fetchone() is None:
        last = conn.execute("SELECT max(run_id) FROM engine_runs").fetchone()
        known = f"the latest is {last[0]}" if last and last[0] is not None else "there are none yet"
        raise UserError(f"--run {run_id}: no engine run with this id ({known}; `precog demo` and `precog run` "
                        "print their run id)")


def pnl(
    by: str = typer.Option("method", "--by", help="Group by method, strategy, model, sport or day."),
    run: int = typer.Option(None, "--run", help="Only positions opened by this engine run (see `precog demo`)."),
    mode: str = typer.Option(None, "--mode", help="Only paper, live or backtest positions."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Realized and unrealized P&L attributed to methods, strategies, models, sports or days.

    Example: precog pnl --by strategy --json
    """
    from precog.trading.attribution import pnl_by

    if by not in BY_CHOICES:
        raise UserError(f"--by must be one of {', '.join(BY_CHOICES)}, got {by!r}")
    if mode is not None and mode not in ("paper", "live", "backtest"):
        raise UserError(f"--mode must be paper, live or backtest, got {mode!r}")
    tz = "UTC"
    if by == "day":  # the calendar days of the dashboard's "today" (system.defaults.timezone)
        from precog.config.loader import load_config

        tz = str(load_config().get("system.defaults.timezone"))
    with _conn() as conn:
        _require_run(conn, run)
        rows = pnl_by(conn, by, run_id=run, mode=mode, tz=tz)
    if as_json:
        print_json({"by": by, "rows": rows})
        return
    print_table(f"P&L by {by}", [by, "positions", "closed", "winners", "realized", "unrealized", "fees"],
                [(r["key"], r["positions"], r["closed"], r["winners"], fmt_money(r["realized_pnl"]),
                  fmt_money(r["unrealized_pnl"]), fmt_money(r["fees"])) for r in rows])
    if not rows:
        typer.echo("no positions" + (f" of run {run}" if run is not None else "")
                   + (f" in {mode} mode" if mode is not None else "")
                   + (" yet (run `precog demo` to see the loop trade)" if run is None and mode is None else ""))


def positions(
    open_only: bool = typer.Option(False, "--open", help="Only open positions."),
    run: int = typer.Option(None, "--run", help="Only positions opened by this engine run."),
    limit: int = typer.Option(200, "--limit", min=1, max=10000, help="At most this many rows (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Positions with their method, strategy, model, P&L and exit reason.

    Example: precog positions --open
    """
    from precog.trading.attribution import positions as list_positions

    with _conn() as conn:
        _require_run(conn, run)
        rows = list_positions(conn, open_only=open_only, run_id=run, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table("Positions", ["id", "market", "side", "status", "qty", "entry", "price", "realized", "unrealized",
                              "exit", "method"],
                [(r["position_id"], r["market_id"], r["side"], r["status"], r["quantity"], r["entry_price"],
                  r["current_price"], fmt_money(r["realized_pnl"]),
                  fmt_money(r["unrealized_pnl"]) if r["unrealized_pnl"] is not None else "",
                  r["exit_reason"] or "", r["method_name"] or "") for r in rows])


def trades(
    run: int = typer.Option(None, "--run", help="Only trades of this engine run."),
    limit: int = typer.Option(200, "--limit", min=1, max=10000, help="At most this many rows (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Our fills (one row per venue fill) with their attribution.

    Example: precog trades --limit 20
    """
    from precog.trading.attribution import trades as list_trades

    with _conn() as conn:
        _require_run(conn, run)
        rows = list_trades(conn, run_id=run, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table("Trades", ["id", "time", "market", "side", "action", "qty", "price", "fees", "purpose", "exit",
                           "method"],
                [(r["trade_id"], r["execution_time"].strftime("%Y-%m-%d %H:%M:%S"), r["market_id"], r["side"],
                  r["action"], r["quantity"], r["price"], r["fees"], r["purpose"] or "", r["exit_condition"] or "",
                  r["method_name"] or "") for r in rows])
