"""`precog methods ...`: create, inspect, promote, retire, export/import and compare trading methods."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_mapping, print_table
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated
from precog.domain.jsonutil import dumps
from precog.domain.money import MoneyError, to_decimal

methods_app = typer.Typer(help="Trading methods: strategy + model + position/risk/execution/sport configs.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(methods_app, name="methods")


class _Session:
    """A connection with strategies synced from trade_strategies.yaml, method errors as UserError."""

    def __init__(self, sync: bool = True) -> None:
        self.url = ensure_migrated()
        self.cfg = load_config(db_url=self.url)
        self.sync = sync

    def __enter__(self) -> Any:
        from precog.trading.strategies import StrategyError, load_strategy_definitions, sync_strategies

        self.conn = connect(self.url, autocommit=True)
        if self.sync:
            from precog.forecast.registry import ensure_builtin_models

            try:
                sync_strategies(self.conn, load_strategy_definitions(self.cfg))
            except StrategyError as exc:
                self.conn.close()
                raise UserError(str(exc)) from exc
            # the shipped models (elo_nfl@v1.0 ...) that `precog models list` shows exist on a fresh database too
            ensure_builtin_models(self.conn)
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.conn.close()
        from precog.trading.methods import MethodError

        if isinstance(exc, MethodError):
            raise UserError(str(exc)) from exc


def _summary(m: Any, share: Decimal | None = None) -> list[Any]:
    return [m.ref, m.status, m.strategy, m.model, m.template or "", m.paper_trades_count,
            m.paper_roi if m.paper_roi is not None else "", share if share is not None else "", m.config_hash[:12]]


@methods_app.command("list")
def list_cmd(
    status: str | None = typer.Option(None, "--status", help="Only this status (draft/testing/active/inactive/deprecated)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """List methods with their strategy, model, status, paper record and capital share.

    Example: precog methods list --status active
    """
    from precog.trading.methods import capital_split, list_methods
    from precog.trading.settings import TradingSettings

    session = _Session()
    settings = TradingSettings.from_config(session.cfg)
    with session as conn:
        rows = list_methods(conn, status)
        # the split the engine trades with (trade_strategies.yaml ab_testing), not the built-in 70/30
        shares = capital_split(conn, existing_share=settings.ab_existing_share, new_share=settings.ab_new_share)
    if as_json:
        print_json([m.as_dict() | {"effective_capital_share": shares.get(m.ref)} for m in rows])
        return
    if not rows:
        typer.echo("no methods yet (create one: precog methods create --template moderate --name NAME ...)")
        return
    print_table(f"Methods ({len(rows)})", ["method", "status", "strategy", "model", "template", "paper trades",
                                           "paper ROI", "capital", "hash"],
                (_summary(m, shares.get(m.ref)) for m in rows))


@methods_app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@vX.Y (or NAME for the newest version)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Show one method: its configs, metrics and lifecycle history.

    Example: precog methods show nfl_moderate@v1.0 --json
    """
    from precog.trading.methods import get_method, status_history

    with _Session(sync=False) as conn:
        m = get_method(conn, ref)
        history = status_history(conn, m.ref)
    data = m.as_dict() | {"status_history": history}
    if as_json:
        print_json(data)
        return
    print_mapping(f"Method {m.ref}", {k: v for k, v in data.items()
                                     if not isinstance(v, dict | list) and v is not None})
    for key in ("position_mgmt_config", "risk_config", "execution_config", "sport_config"):
        console.print(f"[bold]{key}[/bold]: {dumps(data[key], sort_keys=True)}", highlight=False)
    print_table("Lifecycle", ["at", "from", "to", "by", "reason"],
                ([h["changed_at"].isoformat(timespec="seconds"), h["from_status"] or "", h["to_status"],
                  h["changed_by"] or "", h["reason"] or ""] for h in history))


@methods_app.command("templates")
def templates_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the method templates (conservative, moderate, aggressive) with their settings.

    Example: precog methods templates --json
    """
    from precog.trading.methods import templates

    with _Session(sync=False) as conn:
        rows = templates(conn)
    if as_json:
        print_json(rows)
        return
    print_table("Method templates", ["template", "kelly", "max position $", "min edge", "used", "description"],
                ([t["template_name"], t["risk_config"].get("kelly_fraction"),
                  t["risk_config"].get("max_position_size_dollars"), t["risk_config"].get("min_edge_threshold"),
                  t["usage_count"], t["description"]] for t in rows))


@methods_app.command("create")
def create(
    template: str = typer.Option(..., "--template", help="conservative, moderate or aggressive."),
    name: str = typer.Option(..., "--name", help="Method name (letters, digits, _ . -)."),
    version: str = typer.Option("v1.0", "--version", help="vMAJOR.MINOR."),
    strategy: str = typer.Option(..., "--strategy", help="Strategy NAME@vX.Y (or NAME for the newest)."),
    model: str = typer.Option(..., "--model", help="Model NAME@vX.Y (or NAME for the newest)."),
    overrides: list[str] = typer.Option([], "--set", help="SECTION.KEY=VALUE, repeatable; sections: position_mgmt, "
                                        "risk, execution, sport (e.g. risk.kelly_fraction=0.20)."),
    description: str | None = typer.Option(None, "--description", help="Free text."),
    by: str = typer.Option("operator", "--by", help="Who creates it (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a draft method from a template with overrides; validated, hashed, duplicates refused.

    Example: precog methods create --template moderate --name nfl_halftime --version v1.0
             --strategy halftime_entry@v1.0 --model ensemble_nfl@v1.0 --set risk.kelly_fraction=0.15
    """
    from precog.trading.methods import create_method

    with _Session() as conn:
        m = create_method(conn, template=template, name=name, version=version, strategy=strategy, model=model,
                          overrides=overrides, description=description, created_by=by)
    if as_json:
        print_json(m.as_dict())
        return
    console.print(f"created {m.ref} (draft) from template {template}: strategy {m.strategy}, model {m.model}, "
                  f"config hash {m.config_hash}", highlight=False)


def _move(ref: str, target: str, by: str, reason: str | None, as_json: bool) -> None:
    from precog.trading.methods import rules_from_config, transition

    session = _Session(sync=False)
    activation, _ = rules_from_config(session.cfg)
    with session as conn:
        m = transition(conn, ref, target, by=by, reason=reason, activation=activation)
    if as_json:
        print_json(m.as_dict())
        return
    console.print(f"{m.ref} is now {m.status}", highlight=False)


@methods_app.command("test")
def test_cmd(
    ref: str = typer.Argument(..., help="NAME@vX.Y"),
    by: str = typer.Option("operator", "--by", help="Who (recorded)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start paper testing a draft method (draft -> testing); testing methods trade in paper mode.

    Example: precog methods test nfl_halftime@v1.0 --by alice
    """
    _move(ref, "testing", by, reason, as_json)


@methods_app.command("activate")
def activate(
    ref: str = typer.Argument(..., help="NAME@vX.Y"),
    by: str = typer.Option("operator", "--by", help="Who (recorded)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Activate a testing method - only with >= 10 closed paper trades and a positive paper ROI (configurable).

    Example: precog methods activate nfl_halftime@v1.0 --by alice
    """
    _move(ref, "active", by, reason, as_json)


@methods_app.command("deactivate")
def deactivate(
    ref: str = typer.Argument(..., help="NAME@vX.Y"),
    by: str = typer.Option("operator", "--by", help="Who (recorded)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Take an active method out of trading (active -> inactive); it can be re-tested or activated later.

    Example: precog methods deactivate nfl_halftime@v1.0 --by alice
    """
    _move(ref, "inactive", by, reason, as_json)


@methods_app.command("deprecate")
def deprecate(
    ref: str = typer.Argument(..., help="NAME@vX.Y"),
    by: str = typer.Option("operator", "--by", help="Who (recorded)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Retire a method for good (deprecated is final; it is kept for attribution).

    Example: precog methods deprecate nfl_halftime@v1.0 --reason "replaced by v1.1"
    """
    _move(ref, "deprecated", by, reason, as_json)


@methods_app.command("auto-deprecate")
def auto_deprecate_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be deprecated."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Apply the automatic deprecation rules to every testing/active method: win rate < 50% over 30 days, or
    ROI < -10%, each judged from 10 closed trades (trade_strategies.yaml methods.auto_deprecation). `precog run`
    applies them to its own methods by itself.

    Example: precog methods auto-deprecate --dry-run
    """
    from precog.trading.methods import auto_deprecate, rules_from_config

    session = _Session(sync=False)
    _, rules = rules_from_config(session.cfg)
    with session as conn:
        done = auto_deprecate(conn, rules, dry_run=dry_run)
    out = [{"method": ref, "reason": reason, "deprecated": not dry_run} for ref, reason in done]
    if as_json:
        print_json(out)
        return
    if not out:
        typer.echo("no method breaks the deprecation rules")
        return
    for row in out:
        console.print(f"{'would deprecate' if dry_run else 'deprecated'} {row['method']}: {row['reason']}",
                      highlight=False)


@methods_app.command("export")
def export(
    ref: str = typer.Argument(..., help="NAME@vX.Y"),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (default: print)."),
) -> None:
    """Export a method as JSON (strategy and model named by name+version) for `precog methods import`.

    Example: precog methods export nfl_halftime@v1.0 --out nfl_halftime.json
    """
    from precog.trading.methods import export_method

    with _Session(sync=False) as conn:
        data = export_method(conn, ref)
    text = dumps(data, indent=2, sort_keys=True)
    if out is None:
        typer.echo(text)
        return
    out.write_text(text + "\n")
    console.print(f"wrote {out}", highlight=False)


@methods_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="A file written by `precog methods export`."),
    by: str = typer.Option("operator", "--by", help="Who imports it (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import an exported method (as draft); refuses a different config under an existing name+version.

    Example: precog methods import nfl_halftime.json
    """
    from precog.trading.methods import import_method

    if not file.is_file():
        raise UserError(f"{file}: no such file")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{file}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    with _Session() as conn:
        m, created = import_method(conn, data, created_by=by, source=str(file))
    if as_json:
        print_json(m.as_dict() | {"created": created})
        return
    console.print(f"{'imported' if created else 'already present:'} {m.ref} ({m.status}), strategy {m.strategy}, "
                  f"model {m.model}", highlight=False)


@methods_app.command("compare")
def compare(
    a: str = typer.Argument(..., help="First method NAME@vX.Y."),
    b: str = typer.Argument(..., help="Second method NAME@vX.Y."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare two methods: every differing setting, and their records (with a win-rate significance test).

    Example: precog methods compare nfl_halftime@v1.0 nfl_halftime@v1.1
    """
    from precog.trading.methods import compare_methods

    with _Session(sync=False) as conn:
        data = compare_methods(conn, a, b)
    if as_json:
        print_json(data)
        return
    if data["differences"]:
        print_table(f"{data['a']} vs {data['b']}: differences", ["setting", data["a"], data["b"]],
                    ([d["key"], d["a"], d["b"]] for d in data["differences"]))
    else:
        typer.echo("identical configurations")
    perf = data["performance"]
    print_table("Closed trades", ["", "trades", "wins", "P&L", "ROI", "win rate", "Sharpe"],
                ([label, p["trades"], p["wins"], p["pnl"], p["roi"], p["win_rate"], p["sharpe"]]
                 for label, p in ((data["a"], perf["a"]), (data["b"], perf["b"]))))
    if data["win_rate_p_value"] is not None:
        console.print(f"win-rate difference p-value {data['win_rate_p_value']} "
                      f"({'significant' if data['significant_at_5pct'] else 'not significant'} at 5%)", highlight=False)


@methods_app.command("split")
def split(
    shares: list[str] = typer.Option([], "--set", help="NAME@vX.Y=SHARE, repeatable (shares of the bankroll)."),
    auto: bool = typer.Option(False, "--auto", help="Drop explicit shares: newest active gets 30%, others 70%."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show or set the A/B capital split between active methods.

    Example: precog methods split --set nfl_a@v1.0=0.7 --set nfl_b@v1.0=0.3
    """
    from precog.trading.methods import capital_split, set_capital_split
    from precog.trading.settings import TradingSettings

    parsed: dict[str, Decimal] = {}
    for item in shares:
        ref, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected NAME@vX.Y=SHARE")
        try:
            parsed[ref.strip()] = to_decimal(value.strip(), field=f"--set {ref.strip()}")
        except MoneyError as exc:
            raise UserError(str(exc)) from exc
    if parsed and auto:
        raise UserError("use either --set or --auto")
    session = _Session(sync=False)
    settings = TradingSettings.from_config(session.cfg)
    with session as conn:
        if parsed or auto:
            set_capital_split(conn, parsed or None)
        result = capital_split(conn, existing_share=settings.ab_existing_share, new_share=settings.ab_new_share)
    if as_json:
        print_json(result)
        return
    if not result:
        typer.echo("no active methods")
        return
    print_table("Capital split (active methods)", ["method", "share"], result.items())
