"""`precog alerts ...`: list, inspect, acknowledge and resolve alerts; silences; channel tests; the notifier."""

from __future__ import annotations

import getpass
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import typer

from precog.cli.errors import UserError
from precog.cli.output import console, err_console, print_json, print_table

alerts_app = typer.Typer(help="Alerts: list, show, acknowledge, resolve, silence, test channels, deliver.",
                         no_args_is_help=True)
silence_app = typer.Typer(help="Silences: time-boxed mutes by alert type / component / severity.",
                          no_args_is_help=True)
alerts_app.add_typer(silence_app, name="silence")

CHANNEL_CHOICES = ("console", "file", "database", "email", "sms", "slack", "webhook", "apprise", "all")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")


@contextmanager
def _db() -> Iterator[psycopg.Connection[Any]]:
    from precog.db.connection import connect
    from precog.db.migrate import ensure_migrated

    url = ensure_migrated()
    with connect(url, autocommit=True) as conn:
        yield conn


@contextmanager
def _readable() -> Iterator[None]:
    """Alert-layer errors are phrased for people: show them as one line."""
    from precog.alerts.model import AlertError, AlertNotFound, IllegalTransition

    try:
        yield
    except (AlertError, AlertNotFound, IllegalTransition) as exc:
        raise UserError(str(exc)) from None


def _now() -> Any:
    from precog.alerts.clock import SystemClock

    return SystemClock().now()


def _short(ts: Any) -> str:
    return ts.astimezone().strftime("%Y-%m-%d %H:%M:%S") if ts else ""  # local time


def _value(v: Any) -> str:
    from datetime import datetime

    from precog.domain.jsonutil import dumps

    if isinstance(v, datetime):
        return _short(v)
    if isinstance(v, dict | list):
        return dumps(v, sort_keys=True)
    return str(v)


def _check_severity(value: str | None) -> str | None:
    from precog.alerts.model import SEVERITIES

    if value is not None and value not in SEVERITIES:
        raise UserError(f"--severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return value


# ---------------------------------------------------------------------- list / show
@alerts_app.command("list")
def list_cmd(
    unresolved: bool = typer.Option(False, "--unresolved", help="Only alerts not resolved yet."),
    severity: str | None = typer.Option(None, "--severity", help="critical, high, medium or low."),
    component: str | None = typer.Option(None, "--component", help="Only this component (e.g. kalshi_api)."),
    alert_type: str | None = typer.Option(None, "--type", help="Only this alert type (e.g. api_failure)."),
    include_suppressed: bool = typer.Option(False, "--all", help="Also list suppressed repeats."),
    limit: int = typer.Option(50, "--limit", min=1, max=10000, help="At most this many (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List alerts, newest first (suppressed repeats are counted on their original).

    Example: precog alerts list --unresolved --severity critical
    """
    from precog.alerts import store

    _check_severity(severity)
    with _db() as conn, _readable():
        rows = store.list_alerts(conn, unresolved=unresolved, severity=severity, component=component,
                                 alert_type=alert_type, include_suppressed=include_suppressed, limit=limit)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        console.print("no alerts match")
        return
    from rich.table import Table

    table = Table(show_lines=False)
    for name in ("id", "severity", "state", "when"):
        table.add_column(name, no_wrap=True)
    table.add_column("type / component", overflow="fold")
    table.add_column("rep", no_wrap=True, justify="right")
    table.add_column("message", overflow="fold", ratio=1)
    for r in rows:
        state = "suppressed" if r.suppressed else ("silenced" if r.silence_id and r.state == "triggered" else r.state)
        table.add_row(str(r.alert_id), r.severity, state,
                      r.triggered_at.astimezone().strftime("%m-%d %H:%M:%S"), f"{r.alert_type}\n{r.component}",
                      str(r.duplicate_count or ""), r.message if len(r.message) <= 160 else r.message[:157] + "...")
    console.print(table)


@alerts_app.command("show")
def show_cmd(alert_id: int = typer.Argument(..., help="The alert id."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one alert: its fields, lifecycle, and every notification delivery with status and errors.

    Example: precog alerts show 42
    """
    from precog.alerts import store

    with _db() as conn, _readable():
        record = store.get_alert(conn, alert_id)
        deliveries = store.deliveries(conn, alert_id)
    if as_json:
        print_json({**record.as_dict(), "deliveries": deliveries})
        return
    data = record.as_dict()
    shown = {k: _value(v) for k, v in data.items() if v not in (None, {}, []) and k not in ("notification_errors",)}
    print_table(f"alert {alert_id}", ["field", "value"], ((k, v) for k, v in shown.items()))
    if deliveries:
        print_table("deliveries", ["id", "channel", "kind", "status", "attempts", "sent", "next attempt", "last error"],
                    [(d["outbox_id"], d["channel"], d["kind"], d["status"], d["attempts"], _short(d["sent_at"]),
                      _short(d["next_attempt_at"]) if d["status"] == "pending" else "", d["last_error"] or "")
                     for d in deliveries])
    if record.notification_errors:
        print_table("notification errors", ["at", "channel", "status/attempt", "error"],
                    [(e.get("at", ""), e.get("channel", ""), e.get("status") or e.get("attempt", ""), e.get("error", ""))
                     for e in record.notification_errors])


# ---------------------------------------------------------------------- lifecycle
@alerts_app.command("ack")
def ack_cmd(alert_id: int = typer.Argument(..., help="The alert id."),
            by: str = typer.Option(..., "--by", help="Who acknowledges (your name)."),
            notes: str | None = typer.Option(None, "--notes", help="Optional notes.")) -> None:
    """Acknowledge an alert (triggered -> acknowledged): someone is on it; reminders stop.

    Example: precog alerts ack 42 --by alice --notes "looking at the venue status page"
    """
    from precog.alerts import store

    with _db() as conn, _readable():
        record = store.acknowledge(conn, alert_id, by, notes, _now())
    console.print(f"alert {alert_id} acknowledged by {record.acknowledged_by} at {_short(record.acknowledged_at)}")


@alerts_app.command("resolve")
def resolve_cmd(alert_id: int = typer.Argument(..., help="The alert id."),
                action: str = typer.Option(..., "--action", help="fixed, false_positive, ignored or escalated."),
                by: str = typer.Option(..., "--by", help="Who resolves (your name)."),
                notes: str | None = typer.Option(None, "--notes", help="Optional notes.")) -> None:
    """Resolve an acknowledged alert (acknowledged -> resolved) with the action taken.

    Example: precog alerts resolve 42 --action fixed --by alice --notes "venue back, orders flowing"
    """
    from precog.alerts import store

    with _db() as conn, _readable():
        record = store.resolve(conn, alert_id, by, action, notes, _now())
    console.print(f"alert {alert_id} resolved ({record.resolution_action}) by {record.resolved_by} "
                  f"at {_short(record.resolved_at)}")


# ---------------------------------------------------------------------- silences
@silence_app.command("add")
def silence_add_cmd(
    match: list[str] = typer.Option(..., "--match", help="KEY=VALUE with KEY type, component or severity; "
                                    "values may use * (repeat --match to combine)."),
    duration: str = typer.Option(..., "--for", help="How long: 30m, 2h, 1d, 1h30m."),
    comment: str = typer.Option(..., "--comment", help="Why (shown to everyone)."),
    by: str | None = typer.Option(None, "--by", help="Who creates it (default: your login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Mute matching alerts for a while: they are still stored, just not delivered.

    Example: precog alerts silence add --match type=api_failure --match component=kalshi_api --for 2h --comment "Kalshi maintenance"
    """
    from precog.alerts.silences import add_silence, parse_duration, parse_matchers

    with _readable():
        matchers = parse_matchers(match)
        span = parse_duration(duration)
        with _db() as conn:
            silence = add_silence(conn, matchers, starts_at=_now(), duration=span,
                                  created_by=by or _login(), comment=comment)
    if as_json:
        print_json(silence.as_dict())
        return
    console.print(f"silence {silence.silence_id} ({silence.describe()}) active until {_short(silence.ends_at)}")


@silence_app.command("list")
def silence_list_cmd(
    include_inactive: bool = typer.Option(False, "--all", help="Also show expired and ended silences."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List active silences (with --all, also expired ones).

    Example: precog alerts silence list --json
    """
    from precog.alerts.silences import list_silences

    now = _now()
    with _db() as conn:
        rows = list_silences(conn, now, include_inactive=include_inactive)
    if as_json:
        print_json([s.as_dict(now) for s in rows])
        return
    if not rows:
        console.print("no active silences" if not include_inactive else "no silences")
        return
    print_table(None, ["id", "matches", "from", "until", "state", "by", "comment"],
                [(s.silence_id, s.describe(), _short(s.starts_at), _short(s.ends_at),
                  "active" if s.active_at(now) else ("expired" if s.expired_at else "ended"), s.created_by, s.comment)
                 for s in rows])


@silence_app.command("expire")
def silence_expire_cmd(silence_id: int = typer.Argument(..., help="The silence id."),
                       by: str | None = typer.Option(None, "--by", help="Who ends it (default: your login name).")) -> None:
    """End a silence now; matching alerts are delivered again from this moment.

    Example: precog alerts silence expire 3
    """
    from precog.alerts.silences import expire_silence

    with _db() as conn, _readable():
        silence = expire_silence(conn, silence_id, by=by or _login(), now=_now())
    console.print(f"silence {silence.silence_id} ({silence.describe()}) expired")


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return os.environ.get("USER", "unknown")


# ---------------------------------------------------------------------- channel test
@alerts_app.command("test")
def test_cmd(
    channel: str = typer.Option(..., "--channel", help="email, sms, slack, webhook, apprise, console, file, "
                                "database or all."),
    severity: str = typer.Option("critical", "--severity", help="Severity of the test alert (picks the recipients)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Send a test alert through a channel now and print the result per channel (exit 1 if one failed).

    Example: precog alerts test --channel all
    """
    from precog.alerts.model import CHANNELS
    from precog.alerts.notifier import Notifier, Outcome

    if channel not in CHANNEL_CHOICES:
        raise UserError(f"--channel {channel!r} is not one of {', '.join(CHANNEL_CHOICES)}")
    _check_severity(severity)
    from precog.db.migrate import ensure_migrated

    url = ensure_migrated()
    notifier = Notifier(url)
    wanted = list(CHANNELS) if channel == "all" else [channel]
    skipped: list[Outcome] = []
    send: list[str] = []
    for name in wanted:
        impl = notifier.channels.get(name)
        problems = impl.problems() if impl is not None else []
        if channel == "all" and problems and not notifier.settings.enabled.get(name, False):
            skipped.append(Outcome(0, 0, name, "test", "skipped", "not configured: " + "; ".join(problems), 0))
        else:
            send.append(name)
    with _readable():
        alert_id, outcomes = notifier.send_test(send, severity=severity)
    notifier.close()
    results = outcomes + skipped
    order = {name: i for i, name in enumerate(wanted)}
    results.sort(key=lambda o: order.get(o.channel, 99))
    notes = {o.channel: "" for o in results}
    for o in results:
        if o.status == "sent" and o.channel not in ("console", "file", "database") and not notifier.settings.enabled.get(o.channel, False):
            notes[o.channel] = (f" (works, but the channel is disabled: set system.notifications.{o.channel}.enabled: true "
                                "to receive alerts)")
    failed = [o for o in results if o.status not in ("sent", "skipped")]
    if as_json:
        print_json({"alert_id": alert_id, "results": [
            {"channel": o.channel, "status": o.status, "detail": o.detail + notes[o.channel]} for o in results]})
    else:
        print_table(f"test alert #{alert_id}", ["channel", "result", "detail"],
                    [(o.channel, o.status, o.detail + notes[o.channel]) for o in results])
    if failed:
        raise UserError(f"{len(failed)} channel(s) failed: " + ", ".join(o.channel for o in failed))


# ---------------------------------------------------------------------- the notifier
@alerts_app.command("deliver")
def deliver_cmd(
    once: bool = typer.Option(False, "--once", help="Deliver everything due now, print a summary and exit."),
    as_json: bool = typer.Option(False, "--json", help="With --once: print the summary as JSON."),
) -> None:
    """Run the notifier: deliver queued notifications with retries, rate limits and reminders.

    Without --once it keeps running (Ctrl-C or SIGTERM stops it after the current sends).

    Example: precog alerts deliver --once
    """
    from precog.alerts.manager import AlertManager
    from precog.alerts.notifier import Notifier, Outcome
    from precog.db.migrate import ensure_migrated

    url = ensure_migrated()
    notifier = Notifier(url)
    for line in notifier.problems:
        err_console.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
    # Alerts spooled to disk while the database was down go in first.
    with AlertManager(url, settings=notifier.settings, replay_spool=False) as manager:
        try:
            replayed = manager.replay_spool()
        except Exception as exc:  # noqa: BLE001 - the spool stays for the next run
            err_console.print(f"[yellow]warning:[/yellow] could not replay spooled alerts yet: {exc}", highlight=False)
        else:
            if replayed:
                err_console.print(f"replayed {replayed} alert(s) spooled while the database was unreachable",
                                  highlight=False)
    if once:
        report = notifier.deliver_pending()
        notifier.close()
        if as_json:
            print_json(report.as_dict())
            return
        counts = report.counts()
        if not counts and not report.renotified:
            console.print("nothing to deliver")
            return
        if report.renotified:
            console.print(f"queued reminders for {report.renotified} unresolved alert(s)")
        print_table("deliveries", ["channel", "sent", "retry", "failed", "rate limited", "silenced/inhibited", "cancelled"],
                    [(ch, c.get("sent", 0), c.get("retry", 0), c.get("failed", 0), c.get("rate_limited", 0),
                      c.get("silenced", 0) + c.get("inhibited", 0), c.get("cancelled", 0)) for ch, c in counts.items()])
        for o in report.outcomes:
            if o.status in ("retry", "failed", "rate_limited"):
                err_console.print(f"alert {o.alert_id} via {o.channel}: {o.status}: {o.detail}", highlight=False,
                                  markup=False)
        return

    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def show(o: Outcome) -> None:
        if o.channel == "console" and o.status == "sent":
            return
        err_console.print(f"alert {o.alert_id} via {o.channel} ({o.kind}): {o.status}: {o.detail}", highlight=False,
                          markup=False)

    err_console.print(f"notifier running (channels: {', '.join(notifier.channels)}); Ctrl-C to stop", highlight=False)
    notifier.run(stop, on_outcome=show)
    err_console.print("notifier stopped", highlight=False)
