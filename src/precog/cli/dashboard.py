"""`precog dashboard`: the operator dashboard in the browser (live, read-only unless given the token)."""

from __future__ import annotations

import socket

import typer

from precog.cli.errors import UserError
from precog.cli.output import console

MODES = ("paper", "live", "backtest", "all")


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


def dashboard(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (127.0.0.1 = this machine only)."),
    port: int = typer.Option(8050, "--port", min=0, max=65535, help="TCP port (0 = any free port)."),
    mode: str = typer.Option("all", "--mode", help="Show positions/trades/P&L of paper, live, backtest or all."),
    poll: float = typer.Option(1.0, "--poll", min=0.2, max=10.0,
                               help="Seconds between database checks for live updates."),
) -> None:
    """Serve the operator dashboard: overview, positions, edges, P&L charts, methods, alerts and controls.

    It reads the same database as the engine and updates live. Reading needs nothing; actions (acknowledge,
    halt, resume, reset a breaker ...) need the dashboard token: PRECOG_DASHBOARD_TOKEN, or the token
    generated at first start and stored (mode 0600) in $PRECOG_HOME/dashboard_token.

    Examples:
      precog dashboard
      precog dashboard --port 9000 --mode paper
      PRECOG_DASHBOARD_TOKEN=... precog dashboard --host 0.0.0.0   (reachable from other machines)
    """
    import uvicorn

    from precog.db.connection import database_url, redact_url
    from precog.db.migrate import ensure_migrated
    from precog.web.app import DashboardSettings, create_app
    from precog.web.auth import TokenError, load_or_create_token

    if mode not in MODES:
        raise UserError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    sock = _listen(host, port)
    url = ensure_migrated(database_url())
    try:
        # After the port and the database are known to work: a token generated now is also shown now.
        token = load_or_create_token()
    except TokenError as exc:
        raise UserError(str(exc)) from exc
    settings = DashboardSettings.from_config(url, token, host=host, mode=None if mode == "all" else mode,
                                             poll_seconds=poll)
    app = create_app(settings)
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    address = f"http://{shown_host}:{bound}/"
    say(f"Precog dashboard on {address}  (database {redact_url(url)})")
    if token.generated:
        # Printed this once; afterwards it is only in the 0600 file.
        say(f"write token (saved to {token.source}, shown only now): {token.value}")
        say(f"open with the token: {address}#token={token.value}")
    elif token.source == "env":
        say("write token: from PRECOG_DASHBOARD_TOKEN")
    else:
        say(f"write token: in {token.source}")
    if host in ("0.0.0.0", "::"):  # noqa: S104
        say("warning: listening on every interface: anyone who can reach this port can read the dashboard")
    say("press Ctrl+C to stop")
    config = uvicorn.Config(app, access_log=False, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it already handled: a clean stop, exit 0
        say("stopped")


def say(text: str) -> None:
    """One line, verbatim (no markup, no wrapping: addresses and the token must stay copyable)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _listen(host: str, port: int) -> socket.socket:
    """Bind first, so a busy port is one clear error and port 0 shows the port it got."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"--host {host!r} is not an address of this machine ({exc.strerror})") from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror} (is the port in use? try --port)") from exc
    # listening now, so a browser or script that connects as soon as the address is printed waits in the backlog
    # for the server instead of being refused (uvicorn starts accepting a moment later)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
