"""`precog breakers ...`, `precog halt`, `precog resume`: circuit breakers and the trading state."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_table
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated

breakers_app = typer.Typer(help="Circuit breakers: list, trip (drill) and reset; the trading state history.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(breakers_app, name="breakers")
    app.command("halt")(halt)
    app.command("resume")(resume)


def _board(url: str, stack: ExitStack, *, with_alerts: bool = True) -> Any:
    from precog.trading.scan import board_for
    from precog.trading.settings import TradingSettings

    cfg = load_config(db_url=url)
    alerts = None
    if with_alerts:
        from precog.alerts.manager import AlertManager

        alerts = stack.enter_context(AlertManager(url))
    connect_fn: Callable[[], Any] = lambda: connect(url)  # noqa: E731
    return board_for(connect_fn, TradingSettings.from_config(cfg), alerts=alerts,
                     environment=str(cfg.get("system.environment.active", "demo")))


def _check_name(name: str) -> str:
    from precog.trading.breakers import SPECS

    if name not in SPECS:
        raise UserError(f"unknown breaker {name!r}; one of: {', '.join(SPECS)}")
    return name


def _by(value: str) -> str:
    value = value.strip()
    if not value:
        raise UserError("--by: say who you are (a name)")
    return value[:100]


def _state_json(board: Any) -> dict[str, Any]:
    from precog.trading.breakers import SPECS

    reset = board.settings.reset_seconds
    open_now = {b.name: b for b in board.open_breakers()}
    return {
        "trading_state": board.current().as_dict(),
        "open": [b.as_dict() for b in open_now.values()],
        "breakers": [{"name": s.name, "action": s.action, "trips_when": s.trips_when,
                      "reset": (f"automatic after {reset[s.name]} s" if s.name in reset else
                                "when the condition clears" if s.recovers else "manual"),
                      "open": s.name in open_now} for s in SPECS.values()],
    }


def _print_state(board: Any) -> None:
    st = board.current()
    if st.changed_at.year == 1970:
        console.print(f"trading state: {st.mode.value} (no change recorded yet)", highlight=False)
        return
    liquidate = " (forced close-all exits allowed)" if st.liquidate else ""
    console.print(f"trading state: {st.mode.value}{liquidate} - {st.reason} "
                  f"(by {st.changed_by}, {st.changed_at.isoformat(timespec='seconds')})", highlight=False)


@breakers_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the trading state, the open breakers and every breaker with its rule (applies due automatic
    resets first).

    Example: precog breakers list --json
    """
    url = ensure_migrated()
    with ExitStack() as stack:
        board = _board(url, stack, with_alerts=False)
        data = _state_json(board)
    if as_json:
        print_json(data)
        return
    _print_state(board)
    if data["open"]:
        print_table("Open breakers", ["breaker", "action", "since", "reset", "reason"],
                    ([b["name"], b["action"], b["triggered_at"].isoformat(timespec="seconds"),
                      b["auto_reset_at"].isoformat(timespec="seconds") if b["auto_reset_at"] else "manual",
                      b["reason"]] for b in data["open"]))
    else:
        console.print("no open breakers", highlight=False)
    print_table("Breakers", ["breaker", "trips when", "action", "reset", "open"],
                ([b["name"], b["trips_when"], b["action"], b["reset"], "OPEN" if b["open"] else ""]
                 for b in data["breakers"]))


@breakers_app.command("trip")
def trip(
    name: str = typer.Argument(..., help="Breaker name (see `precog breakers list`)."),
    reason: str = typer.Option("manual trip", "--reason", help="Why (stored with the event)."),
    by: str = typer.Option("operator", "--by", help="Who trips it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Trip a breaker by hand (a drill, or to act on something the system cannot see). Writes the event,
    raises a critical alert and changes the trading state.

    Example: precog breakers trip edge_anomaly --reason "prices look wrong" --by alice
    """
    url = ensure_migrated()
    name = _check_name(name)
    with ExitStack() as stack:
        board = _board(url, stack)
        # an empty --reason keeps the default: a trip is never refused, and the record says what it was
        tripped = board.trip(name, reason.strip() or "manual trip", by=_by(by), trigger_value={"manual": True})
        if tripped is None:
            raise UserError(f"breaker {name} is already open (reset it with `precog breakers reset {name} --by NAME`)")
        data = _state_json(board)
    if as_json:
        print_json(data)
        return
    console.print(f"breaker {name} tripped", highlight=False)
    _print_state(board)


@breakers_app.command("reset")
def reset(
    name: str = typer.Argument(..., help="Breaker name."),
    by: str = typer.Option(..., "--by", help="Who resets it (recorded)."),
    notes: str = typer.Option("manual reset", "--notes", help="Why it is safe to reset."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Reset an open breaker by hand (recorded with who and why); the trading state follows.

    Example: precog breakers reset daily_loss_limit --by alice --notes "reviewed the losses"
    """
    url = ensure_migrated()
    name = _check_name(name)
    with ExitStack() as stack:
        board = _board(url, stack, with_alerts=False)
        if not board.reset(name, by=_by(by), notes=notes):
            raise UserError(f"breaker {name} is not open")
        data = _state_json(board)
    if as_json:
        print_json(data)
        return
    console.print(f"breaker {name} reset by {by}", highlight=False)
    _print_state(board)


@breakers_app.command("history")
def history_cmd(
    limit: int = typer.Option(20, "--limit", min=1, help="At most this many changes."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The trading state's history: every change with who, when and why (newest first).

    Example: precog breakers history --limit 5
    """
    from precog.trading.trading_state import history

    url = ensure_migrated()
    with connect(url) as conn:
        rows = history(conn, limit)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        typer.echo("no trading state changes yet (state: ACTIVE)")
        return
    print_table("Trading state history", ["at", "state", "by", "reason", "blocking"],
                ([r.changed_at.isoformat(timespec="seconds"), r.mode.value + (" +liquidate" if r.liquidate else ""),
                  r.changed_by, r.reason, ", ".join(r.blocking)] for r in rows))


def halt(
    reason: str = typer.Option("manual halt", "--reason", help="Why trading stops (recorded)."),
    by: str = typer.Option("operator", "--by", help="Who halts it (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Halt all trading now: no new orders until `precog resume --by NAME` (a critical alert is raised).

    Example: precog halt --reason "venue incident" --by alice
    """
    url = ensure_migrated()
    with ExitStack() as stack:
        board = _board(url, stack)
        if board.trip("manual", reason.strip() or "manual halt", by=_by(by), trigger_value={"manual": True}) is None:
            raise UserError("trading is already halted by hand (`precog resume --by NAME` to resume)")
        data = _state_json(board)
    if as_json:
        print_json(data)
        return
    _print_state(board)


def resume(
    by: str = typer.Option(..., "--by", help="Who resumes trading (recorded)."),
    notes: str = typer.Option("manual resume", "--notes", help="Why it is safe to resume."),
    all_breakers: bool = typer.Option(False, "--all", help="Also reset every other open breaker."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Resume trading after `precog halt`. Refuses (changing nothing) while other breakers still block
    trading, unless --all resets them too.

    Example: precog resume --by alice --notes "incident over"
    """
    url = ensure_migrated()
    who = _by(by)
    with ExitStack() as stack:
        board = _board(url, stack, with_alerts=False)
        others = [b.name for b in board.open_breakers() if b.name != "manual" and b.action != "alert"]
        if others and not all_breakers:
            raise UserError(f"trading stays {board.current().mode.value}: open breakers {', '.join(others)}; reset "
                            f"them (`precog breakers reset NAME --by {who}`) or run `precog resume --by {who} --all`")
        names = [b.name for b in board.open_breakers()] if all_breakers else ["manual"]
        done = board.reset_many(names, by=who, notes=notes)
        if not done:
            raise UserError("trading is not halted by hand (nothing to resume); see `precog breakers list`")
        data = _state_json(board)
        data["reset"] = done
    if as_json:
        print_json(data)
        return
    console.print(f"reset: {', '.join(done)} at {datetime.now(UTC).isoformat(timespec='seconds')}", highlight=False)
    _print_state(board)
