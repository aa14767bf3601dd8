"""`precog config ...`: show, validate, get and override configuration."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_table
from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.config.overrides import list_overrides, parse_duration, set_override, unset_override
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated

config_app = typer.Typer(help="Configuration: show, validate, get, set/unset runtime overrides.", no_args_is_help=True)


def _db_url_or_none() -> str | None:
    """The migrated database for overrides; config still works (without overrides) when it is unreachable."""
    try:
        return ensure_migrated()
    except Exception:  # noqa: BLE001 - overrides are optional for read-only commands
        return None


@config_app.command("show")
def show_cmd(json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
             section: str = typer.Argument(None, help="Only this file or dotted key (e.g. trading.account).")) -> None:
    """Show the effective configuration (after files, environment and database overrides).

    Examples: precog config show trading.account ; precog config show --json
    """
    cfg = load_config(db_url=_db_url_or_none())
    data = cfg.data if not section else cfg.get(section)
    if json_out:
        print_json(data)
        return
    if not isinstance(data, dict):
        typer.echo(str(data))
        return
    prefix = section + "." if section else ""
    flat = {k: v for k, v in cfg.flat().items() if k.startswith(prefix)} if section else cfg.flat()
    print_table(None, ["key", "value", "source"], ((k, v, cfg.source_of(k)) for k, v in sorted(flat.items())))


@config_app.command("validate")
def validate_cmd(directory: Path = typer.Option(None, "--dir", help="A directory of YAML files to validate.")) -> None:
    """Validate configuration files; names the file, key, value and allowed range of every problem.

    Example: precog config validate --dir ./my-config
    """
    try:
        load_config(directory, use_overrides=False)
    except ConfigError as exc:
        raise UserError(f"invalid configuration: {exc}") from exc
    console.print(f"configuration is valid{f' ({directory})' if directory else ''}")


@config_app.command("get")
def get_cmd(key: str = typer.Argument(..., help="Dotted key, e.g. trading.account.daily_loss_limit_dollars"),
            json_out: bool = typer.Option(False, "--json")) -> None:
    """Print one effective value and where it comes from.

    Example: precog config get trading.position_sizing.kelly.default_fraction
    """
    cfg = load_config(db_url=_db_url_or_none())
    value = cfg.get(key)
    if json_out:
        print_json({"key": key, "value": value, "source": cfg.source_of(key)})
    else:
        typer.echo(f"{value}    ({cfg.source_of(key)})")


# A negative value (`... stop_loss.high_confidence -0.20`) is the value, not an unknown option.
@config_app.command("set", context_settings={"ignore_unknown_options": True})
def set_cmd(key: str, value: str,
            reason: str = typer.Option(..., "--reason", help="Why (stored with the override)."),
            expires: str = typer.Option(None, "--expires", help="Lifetime such as 30m, 2h, 1d."),
            by: str = typer.Option(None, "--by", help="Who applies it (default: current user).")) -> None:
    """Store a runtime override in the database (highest precedence). Type and range are checked.

    Example: precog config set trading.edges.min_edge_global 0.07 --reason "thin markets" --expires 2h
    """
    url = ensure_migrated()
    ttl = parse_duration(expires) if expires else None
    with connect(url) as conn:
        ov = set_override(conn, key, value, reason=reason, applied_by=by or getpass.getuser(), expires_in=ttl, db_url=url)
    until = f" until {ov.expires_at:%Y-%m-%d %H:%M:%S %Z}" if ov.expires_at else ""
    console.print(f"override #{ov.override_id}: {key} = {ov.value}{until}")


@config_app.command("unset")
def unset_cmd(key: str) -> None:
    """Deactivate the override of a key (the file/environment value applies again).

    Example: precog config unset trading.edges.min_edge_global
    """
    url = ensure_migrated()
    with connect(url) as conn:
        n = unset_override(conn, key)
    if not n:
        raise UserError(f"no active override for {key}")
    console.print(f"override of {key} removed")


@config_app.command("overrides")
def overrides_cmd(json_out: bool = typer.Option(False, "--json"),
                  all_: bool = typer.Option(False, "--all", help="Include expired and removed overrides.")) -> None:
    """List runtime overrides.

    Example: precog config overrides --json
    """
    url = ensure_migrated()
    with connect(url) as conn:
        rows = list_overrides(conn, include_inactive=all_)
    if json_out:
        print_json([r.__dict__ for r in rows])
        return
    print_table("overrides", ["id", "key", "value", "reason", "by", "applied", "expires"],
                [(r.override_id, r.config_key, r.value, r.reason, r.applied_by, r.applied_at, r.expires_at) for r in rows])


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
