"""`precog strategies ...`: list, inspect and move entry-strategy versions along their lifecycle (spec 8.1)."""

from __future__ import annotations

from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_mapping, print_table
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated
from precog.domain.jsonutil import dumps

strategies_app = typer.Typer(help="Entry strategy versions: list, show, test, activate, deactivate, deprecate.",
                             no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(strategies_app, name="strategies")


class _Session:
    """A connection (strategies synced from trade_strategies.yaml when asked), strategy errors as UserError."""

    def __init__(self, sync: bool) -> None:
        self.url = ensure_migrated()
        self.sync = sync

    def __enter__(self) -> Any:
        from precog.trading.strategies import StrategyError, load_strategy_definitions, sync_strategies

        self.conn = connect(self.url, autocommit=True)
        if self.sync:
            try:
                sync_strategies(self.conn, load_strategy_definitions(load_config(db_url=self.url)))
            except StrategyError as exc:
                self.conn.close()
                raise UserError(str(exc)) from exc
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.conn.close()
        from precog.trading.strategies import StrategyError

        if isinstance(exc, StrategyError):
            raise UserError(str(exc)) from exc


@strategies_app.command("list")
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="Only this status (draft/testing/active/inactive/deprecated)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """List stored strategy versions (synced from trade_strategies.yaml first) with their status and their
    closed paper/live trades and ROI (recomputed from the positions first).

    Example: precog strategies list --status active --json
    """
    from precog.trading.strategies import list_strategy_rows, refresh_all_strategy_metrics

    with _Session(sync=True) as conn:
        refresh_all_strategy_metrics(conn)
        rows = list_strategy_rows(conn, status)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no strategies" + (f" with status {status}" if status else ""))
        return
    print_table(f"Strategies ({len(rows)})", ["strategy", "type", "status", "paper trades", "paper ROI",
                                              "live trades", "live ROI", "activated", "hash"],
                ([f"{r['strategy_name']}@{r['strategy_version']}", r["strategy_type"], r["status"],
                  r["paper_trades_count"], r["paper_roi"] if r["paper_roi"] is not None else "",
                  r["live_trades_count"], r["live_roi"] if r["live_roi"] is not None else "",
                  r["activated_at"].isoformat(timespec="seconds") if r["activated_at"] else "",
                  (r["config_hash"] or "")[:12]] for r in rows))


@strategies_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@vX.Y (or NAME for the newest version)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Show one strategy version: its config, status and lifecycle history.

    Example: precog strategies show halftime_entry@v1.0 --json
    """
    from precog.trading.strategies import get_strategy_row, refresh_strategy_metrics, strategy_status_history

    with _Session(sync=True) as conn:
        refresh_strategy_metrics(conn, get_strategy_row(conn, ref)["strategy_id"])
        row = get_strategy_row(conn, ref)
        history = strategy_status_history(conn, row["strategy_id"])
    data = row | {"status_history": history}
    if as_json:
        print_json(data)
        return
    print_mapping(f"Strategy {row['strategy_name']}@{row['strategy_version']}",
                  {k: v for k, v in row.items() if not isinstance(v, dict | list) and v is not None})
    console.print(f"[bold]config[/bold]: {dumps(row['config'], sort_keys=True)}", highlight=False)
    print_table("Lifecycle", ["at", "from", "to", "by", "reason"],
                ([h["changed_at"].isoformat(timespec="seconds"), h["from_status"] or "", h["to_status"],
                  h["changed_by"] or "", h["reason"] or ""] for h in history))


def _move(ref: str, target: str, by: str, reason: str | None, as_json: bool) -> None:
    from precog.trading.strategies import StrategyActivationRules, transition

    with _Session(sync=False) as conn:
        rules = StrategyActivationRules.from_config(load_config(db_url=ensure_migrated()))
        row = transition(conn, ref, target, by=by, reason=reason, activation=rules)
    if as_json:
        print_json(row)
        return
    console.print(f"{row['strategy_name']}@{row['strategy_version']} is now {row['status']}", highlight=False)


_BY = typer.Option(..., "--by", help="Who is making the change (recorded).")
_REASON = typer.Option(None, "--reason", help="Why (recorded).")
_JSON = typer.Option(False, "--json", help="Print JSON.")
_REF = typer.Argument(..., help="NAME@vX.Y (or NAME for the newest version).")


@strategies_app.command("test")
def test_cmd(ref: str = _REF, by: str = _BY, reason: str | None = _REASON, as_json: bool = _JSON) -> None:
    """Start testing a strategy version (draft/inactive -> testing).

    Example: precog strategies test halftime_entry@v1.1 --by alice --reason "new lead rule"
    """
    _move(ref, "testing", by, reason, as_json)


@strategies_app.command("activate")
def activate(ref: str = _REF, by: str = _BY, reason: str | None = _REASON, as_json: bool = _JSON) -> None:
    """Activate a strategy version (testing/inactive -> active); another active version of it becomes inactive.

    From testing it needs >= 60 days in testing and >= 50 closed paper trades (spec 8.1); an inactive version
    goes back to active only if it was active before (a version never active is tested first).

    Example: precog strategies activate halftime_entry@v1.1 --by alice
    """
    _move(ref, "active", by, reason, as_json)


@strategies_app.command("deactivate")
def deactivate(ref: str = _REF, by: str = _BY, reason: str | None = _REASON, as_json: bool = _JSON) -> None:
    """Deactivate an active strategy version (active -> inactive); it can be activated again.

    Example: precog strategies deactivate live_trading@v1.0 --by alice --reason "too noisy"
    """
    _move(ref, "inactive", by, reason, as_json)


@strategies_app.command("deprecate")
def deprecate(ref: str = _REF, by: str = _BY, reason: str | None = _REASON, as_json: bool = _JSON) -> None:
    """Retire a strategy version for good (-> deprecated; final, it can never be activated again).

    Example: precog strategies deprecate pre_game_entry@v1.0 --by alice --reason "replaced by v1.1"
    """
    _move(ref, "deprecated", by, reason, as_json)
