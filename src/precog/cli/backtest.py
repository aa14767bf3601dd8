"""`precog backtest` (replay data through the live engine) and `precog report --run ID` (re-render a run)."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from precog.cli.errors import UserError
from precog.cli.output import console, err_console, print_json, print_table


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
    app.command("report")(report)


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: expected a date YYYY-MM-DD") from None


def _money(text: str | None, option: str) -> Decimal | None:
    """A positive, finite amount: NaN or Infinity would reach the run (and be stored as a failed run)."""
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UserError(f"{option} {text!r}: expected a number") from None
    if not value.is_finite() or value <= 0:
        raise UserError(f"{option} {text!r}: expected a positive number")
    return value


def backtest(
    data: Path = typer.Option(..., "--data", help="A recording directory (`precog ingest run --record DIR`) or "
                              "the NFL history folder (e.g. ../shared/data/nfl)."),
    start: str = typer.Option(None, "--from", help="First day to trade (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--to", help="Last day to trade (YYYY-MM-DD)."),
    method: list[str] = typer.Option(None, "--method", help="NAME@VERSION of a method; repeat to compare methods on "
                                     "identical data (A/B). Default: the shipped Elo pre-game method where the data has "
                                     "pre-game prices, the in-game WP method where it has plays."),
    out: Path = typer.Option(None, "--out", help="Folder for the HTML and JSON report (default $PRECOG_HOME/backtests)."),
    walk_forward: str = typer.Option(None, "--walk-forward", help="Re-train on a rolling window and trade the next "
                                     "one out of sample, e.g. train=3y,test=1y,step=1y."),
    bankroll: str = typer.Option(None, "--bankroll", help="Starting cash per window (default backtesting.bankroll)."),
    half_spread: str = typer.Option(None, "--half-spread", help="Market maker's half spread around the fair value "
                                    "(default backtesting.market_half_spread)."),
    train_years: int = typer.Option(3, "--train-years", min=0, help="Without --walk-forward: years of results the "
                                    "models train on before --from (0: none, the models learn only from the "
                                    "results released during the run)."),
    no_in_game: bool = typer.Option(False, "--no-in-game", help="Ignore play-by-play (pre-game markets only)."),
    together: bool = typer.Option(False, "--together", help="Several --method trade one shared portfolio (they "
                                  "compete for markets and cash) instead of each alone on the identical data."),
    jobs: int = typer.Option(None, "--jobs", help="A/B lanes (one per --method) replayed at once, each in its own "
                             "process (default: one per lane up to the CPUs available when the run spans 90 days or more, else one "
                             "after another; 1: one after another)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay historical or recorded data through the same decision, risk, execution and position code as live
    trading, on a simulated clock, with fills from the local exchange's matching engine.

    With several --method, each method trades alone (own exchange, account and bankroll) over the identical
    event stream: an A/B comparison, its lanes replayed in parallel processes (--jobs). Every run is stored
    (see `precog report --run ID`); its positions and trades carry mode 'backtest'.

    Example: precog backtest --data ../shared/data/nfl --from 2012-09-01 --to 2014-02-15 --method nfl_elo_pregame@v1.1 --method nfl_closing_line@v1.0
    """
    from precog.backtest import walkforward
    from precog.backtest.errors import BacktestError, LookAheadError
    from precog.backtest.runner import BacktestOptions, run_backtest
    from precog.backtest.runner import Progress as Prog
    from precog.db.connection import database_url
    from precog.db.migrate import migrate

    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: expected a whole number of lanes to run at once, at least 1")
    try:
        opts = BacktestOptions(
            data=data, start=_date(start, "--from"), end=_date(end, "--to"), methods=list(method or []), out=out,
            walk_forward=walkforward.parse(walk_forward) if walk_forward else None,
            bankroll=_money(bankroll, "--bankroll"), half_spread=_money(half_spread, "--half-spread"),
            train_years=train_years, in_game=not no_in_game, together=together, jobs=jobs)
    except BacktestError as exc:
        raise UserError(str(exc)) from exc
    url = database_url()
    migrate(url)
    logging.getLogger("precog.engine.core").setLevel(logging.ERROR)  # breaker state changes are in the report
    with Progress(TextColumn("[bold]backtest[/bold] {task.description}"), BarColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=as_json,
                  disable=as_json) as bar:
        task = bar.add_task("events", total=1.0, info="")

        def on_progress(p: Prog) -> None:
            where = (f"{p.lanes} lanes in parallel, {p.events_done:,}/{p.events_total:,} events" if p.lanes > 1
                     else f"window {p.window + 1}/{p.windows}")
            bar.update(task, completed=p.fraction, info=f"{where}, {p.sim_time:%Y-%m-%d}, {p.fills} fills")

        try:
            result = asyncio.run(run_backtest(url, opts, on_progress))
        except LookAheadError as exc:
            raise UserError(f"look-ahead detected, the run is invalid: {exc}") from exc
        except BacktestError as exc:
            raise UserError(str(exc)) from exc
        bar.update(task, completed=1.0)
    s = result.summary
    for note in s.get("notes", []):
        err_console.print(f"warning: {note}", highlight=False)
    if as_json:
        print_json(s | {"report_html": str(result.html_path), "report_json": str(result.json_path)})
    else:
        _print_summary(s)
        console.print(f"report: {result.html_path}")
    t = s["totals"]
    e = s.get("engine") or {}
    (err_console if as_json else console).print(
        "path: the database-backed live engine (precog.engine.core.Engine stepped on a simulated clock, idle steps "
        "skipped: precog.backtest.stepping), not the lean replay loop of benchmarks/backtest.py", highlight=False)
    if e.get("events_per_second") is not None and not as_json:
        console.print(f"replayed {e['events']:,} events in {e['replay_seconds']:.2f} s ({e['events_per_second']:,} "
                      f"events/s; {e['steps']:,} engine steps, {e.get('scan_only_steps', 0):,} of them only the "
                      f"entry scan; {e['idle_steps_skipped']:,} idle steps skipped)",
                      highlight=False)
    # with --json stdout is the JSON document alone (pipe it to jq); the headline goes to stderr
    typer.echo(f"backtest {result.backtest_id}: {t['fills']} fills, P&L {t['pnl']}, hit rate {t['hit_rate']}, "
               f"leak guard {'FIRED' if s['leak_guard']['fired'] else 'clear'}", err=as_json)


def _per_contract(value: str | None, contracts: int | None) -> str:
    """A per-contract figure with the contracts it covers (docs/backtesting.md defines both measures)."""
    if value is None:
        return "none"
    return value if contracts is None else f"{value} ({contracts} contracts)"


def _print_summary(s: dict[str, Any]) -> None:
    from precog.backtest.report import DRIFT_KEY as _DRIFT

    t = s["totals"]
    print_table("Backtest", ["item", "value"], [
        ("P&L", t["pnl"]), ("final equity", t["final_equity"]), ("return", t["return_pct"]), ("fills", t["fills"]),
        ("positions", t["positions"]), ("hit rate", t["hit_rate"]), ("Sharpe", t["sharpe"]),
        ("max drawdown", f"{t['max_drawdown']} ({t['max_drawdown_pct']})"), ("fees paid", t["fees_paid"]),
        ("edge realization", t["edge_realization"]),
        ("CLV per contract (pre-game entries)", _per_contract(t.get("clv_per_contract"), t.get("clv_contracts"))),
        ("price drift 15 min after in-game entries", _per_contract(t.get(_DRIFT), t.get("in_game_drift_contracts"))),
        ("ledger matches the exchange", "yes" if t.get("ledger_match") else "NO")])
    # one column per method, so an A/B comparison reads across and fits a terminal
    metrics = [("positions", "positions"), ("hit rate", "hit_rate"), ("P&L", "pnl"), ("fees", "fees"),
               ("edge realization", "edge_realization"), ("CLV/contract (pre-game)", "clv_per_contract"),
               ("drift 15m/contract (in-game)", _DRIFT)]
    methods = s["by_method"]
    print_table("By method (A/B on identical data)", ["", *(r["method"] for r in methods)] if methods
                else ["", "(no positions)"],
                [[label, *(r.get(key) for r in methods)] for label, key in metrics] if methods else [])
    print_table("Windows and the model versions they traded with", ["window", "methods", "train", "test", "models"],
                [[w["index"], ", ".join(w.get("lane_methods", [])), " .. ".join(x or "-" for x in w["train"]),
                  " .. ".join(w["test"]), "; ".join(f"{k}: {m.get('version') or 'UNTRAINED'}"
                                                    for k, m in sorted((w.get("models") or {}).items()))]
                 for w in s["windows"]])
    print_table("Exits by reason", ["reason", "exits", "realized P&L"],
                [[r["reason"], r["exits"], r["realized_pnl"]] for r in s["exits_by_reason"]] or [["(none)", "", ""]])
    if s["leak_guard"]["fired"]:
        console.print("[bold red]LEAK GUARD FIRED:[/bold red] " + "; ".join(s["leak_guard"]["reasons"]))


def report(
    run: int = typer.Option(None, "--run", help="Backtest id to re-render."),
    out: Path = typer.Option(None, "--out", help="Folder for the HTML and JSON (default $PRECOG_HOME/backtests)."),
    list_runs: bool = typer.Option(False, "--list", help="List stored backtest runs."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored summary (or the list) as JSON."),
) -> None:
    """Re-render the report of a stored backtest run (HTML with charts + JSON summary), or list the runs.

    Example: precog report --run 12 --out ./reports
    """
    from precog.backtest import store
    from precog.backtest.errors import BacktestError
    from precog.backtest.report import write_reports
    from precog.db.connection import connect, database_url
    from precog.db.migrate import migrate

    url = database_url()
    migrate(url)
    with connect(url, autocommit=True) as conn:
        if list_runs or run is None:
            if run is None and not list_runs:
                raise UserError("give --run ID (or --list to see the stored runs)")
            rows = store.recent(conn)
            if as_json:
                print_json(rows)
            else:
                print_table("Backtest runs", ["id", "status", "data", "methods", "started", "trades", "P&L"],
                            [(r["backtest_id"], r["status"], r["data_kind"], ", ".join(r["methods"]),
                              f"{r['started_at']:%Y-%m-%d %H:%M}", r["trades"], r["pnl"]) for r in rows])
            return
        try:
            stored = store.get(conn, run)
        except BacktestError as exc:
            raise UserError(str(exc)) from exc
        if stored.summary is None:
            raise UserError(f"backtest {run} has no summary (status {stored.status}"
                            + (f": {stored.error}" if stored.error else "") + ")")
        html_path, json_path = write_reports(conn, run, stored.summary, out)
        store.set_report_path(conn, run, str(html_path))
    if as_json:
        print_json(stored.summary | {"report_html": str(html_path), "report_json": str(json_path)})
    else:
        _print_summary(stored.summary)
        console.print(f"report: {html_path}")
    typer.echo(f"report {run}: {html_path}", err=as_json)
