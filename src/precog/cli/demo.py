"""`precog demo`: a complete paper-trading session on the local exchange, with a ledger check at the end."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_table
from precog.domain.money import fmt_money


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    games: int = typer.Option(4, "--games", min=1, max=16, help="Number of simulated NFL games."),
    speed: float = typer.Option(90.0, "--speed", help="Simulated seconds per real second (0 = as fast as possible)."),
    seed: int = typer.Option(None, "--seed", help="Random seed (same seed, same games and quotes)."),
    transport: str = typer.Option("http", "--transport",
                                  help="http: the Kalshi client over loopback HTTP (as live); inprocess: direct calls."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (the last line stays the summary)."),
    notify: bool = typer.Option(True, "--notify/--no-notify",
                                help="Deliver the run's alerts (configured channels; console and file always) "
                                     "in this process."),
) -> None:
    """Run the whole trading loop on simulated NFL games and check our books against the exchange's ledger.

    Starts the embedded database and the local exchange, plays GAMES games in accelerated time until every
    market settles (about a minute by default), then prints trades, P&L by method/strategy/model, exits by
    reason, breakers and alerts. Exits non-zero when our P&L or cash differ from the exchange's ledger.

    Example: precog demo --games 4 --speed 120 --seed 7
    """
    from precog.db.connection import database_url
    from precog.db.migrate import migrate
    from precog.engine.demo import DemoOptions, DemoProgress, run_demo

    if not math.isfinite(speed) or speed < 0:  # NaN passes `< 0` and ran a demo whose clock never moved right
        raise UserError(f"--speed must be a number >= 0 (0 = as fast as possible), got {speed}")
    if transport not in ("http", "inprocess"):
        raise UserError(f"--transport must be http or inprocess, got {transport!r}")
    url = database_url()
    migrate(url)
    options = DemoOptions(games=games, speed=speed, seed=seed, transport=transport, notify=notify)

    with Progress(TextColumn("[bold]demo[/bold] {task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=as_json, disable=as_json) as bar:
        task = bar.add_task("simulated game time", total=1.0, info="")

        def on_progress(p: DemoProgress) -> None:
            bar.update(task, completed=min(p.sim_seconds / p.total_seconds, 1.0),
                       info=f"{p.games_final}/{p.games} games final, {p.trades} fills")

        try:
            result = asyncio.run(run_demo(url, options, on_progress))
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        bar.update(task, completed=1.0)

    if as_json:
        print_json({"run_id": result.run_id, "seed": result.seed, "games": result.games, "ledger": result.ledger,
                    "report": result.report, "trades": result.trades,
                    "positions_settled": result.positions_settled, "pnl": result.pnl,
                    "ledger_match": result.ledger_match})
    else:
        _print_report(result)
    typer.echo(f"demo: {result.trades} trades, {result.positions_settled} positions settled, "
               f"P&L {_signed_money(result.pnl)}, ledger match: {'yes' if result.ledger_match else 'no'}")
    if not result.ledger_match:
        raise typer.Exit(2)


def _signed_money(value: Decimal) -> str:
    return fmt_money(value)


def _print_report(result: Any) -> None:
    console.print(f"[bold]Run {result.run_id}[/bold] (seed {result.seed})")
    print_table("Games", ["game", "final (away-home)", "overtime", "settled at"],
                [(g["game"], g["score"], "yes" if g["overtime"] else "", g["settlement_value"]) for g in result.games])
    for title, key in (("P&L by method", "by_method"), ("P&L by strategy", "by_strategy"),
                       ("P&L by model", "by_model")):
        rows = result.report[key]
        print_table(title, ["name", "positions", "winners", "realized P&L", "fees"],
                    [(r["key"], r["positions"], r["winners"], fmt_money(r["realized_pnl"]), fmt_money(r["fees"]))
                     for r in rows] or [("(no positions)", "", "", "", "")])
    exits = result.report["exits"]
    print_table("Exits by reason", ["reason", "priority", "exits", "contracts", "realized P&L"],
                [(r["reason"], r["priority"], r["exits"], r["contracts"], fmt_money(r["realized_pnl"] or Decimal(0)))
                 for r in exits] or [("(none)", "", "", "", "")])
    att = result.report["exit_attempts"] or {}
    console.print(f"exit attempts: {att.get('n', 0)} ({att.get('filled', 0)} filled completely)")
    breakers = result.report["breaker_events"]
    console.print("breakers tripped: " + (", ".join(b["breaker_type"] for b in breakers) if breakers else "none"))
    alerts = result.report["alerts"]
    console.print(f"alerts raised: {len(alerts)}" + ("" if not alerts else " — " + "; ".join(
        f"{a['severity']} {a['alert_type']}" for a in alerts[:5])))
    led = result.ledger
    print_table("Ledger check (ours vs exchange)", ["item", "ours", "exchange", "match"], [
        ("cash", fmt_money(led["our_cash"]), fmt_money(led["venue_cash"]), _yn(led["checks"]["cash"])),
        ("P&L", fmt_money(led["our_pnl"]), fmt_money(led["venue_pnl"]), _yn(led["checks"]["pnl"])),
        ("fills", led["our_trades"], led["venue_fills"], _yn(led["checks"]["fills"])),
        ("open positions", led["open_positions"], led["venue_open_positions"],
         _yn(led["checks"]["no_open_positions"])),
        ("exchange money conserved", "", "", _yn(led["checks"]["exchange_conserves_money"])),
    ])


def _yn(ok: bool) -> str:
    return "yes" if ok else "NO"
