"""`precog exchange serve`: run the local Kalshi-compatible exchange on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import logging
import math
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json

if TYPE_CHECKING:
    from precog.venues.exchange.engine import Exchange

DEFAULT_PORT = 8765  # what `precog kalshi --env local` expects
DEFAULT_BALANCE = Decimal("10000.00")

exchange_app = typer.Typer(name="exchange", no_args_is_help=True,
                           help="The local Kalshi-compatible exchange (paper trading, demos, client tests).")


def fresh_exchange(clock: Any = None) -> Exchange:
    """A new exchange for `serve` without --state. Its ids are unseeded: order, fill and user ids must never repeat
    across exchange sessions (our books treat a venue's ids as unique on the platform); --seed drives the
    scenario's prices only."""
    from precog.venues.exchange.engine import Exchange

    return Exchange(clock)


def register(app: typer.Typer) -> None:
    app.add_typer(exchange_app, name="exchange")


def _money(text: str, option: str) -> Decimal:
    try:
        value = Decimal(text.strip().lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise UserError(f"{option}: {text!r} is not an amount of dollars (e.g. 1000 or 250.50)") from None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise UserError(f"{option}: {text!r} must be a non-negative amount in whole cents")
    return value


@exchange_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback unless --admin-token is set)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="Port (0 = any free port)."),
    scenario: str = typer.Option(None, "--scenario", help="Scripted activity: market_maker or nfl."),
    seed: int = typer.Option(1, "--seed", help="Random seed of the scenario (same seed, same prices)."),
    speed: float = typer.Option(60.0, "--speed", help="nfl scenario: game seconds per real second."),
    key_id: list[str] = typer.Option(None, "--key-id", help="API key id to accept (repeatable)."),
    public_key: list[Path] = typer.Option(None, "--public-key",
                                          help="PEM public key for the matching --key-id (repeatable)."),
    balance: list[str] = typer.Option(None, "--balance",
                                      help="Dollars to fund the matching key's account (repeatable; one value "
                                           "applies to every key). Default 10000."),
    max_skew: float = typer.Option(30.0, "--max-skew", help="Seconds a request timestamp may differ from the clock."),
    admin_token: str = typer.Option(None, "--admin-token", envvar="PRECOG_EXCHANGE_ADMIN_TOKEN",
                                    help="Require this X-Sim-Admin-Token on /sim/ (else loopback clients only)."),
    state: Path = typer.Option(None, "--state",
                               help="JSON file keeping the exchange across restarts: loaded at start when it "
                                    "exists, saved every 30 s and at exit."),
    legacy_status: bool = typer.Option(False, "--legacy-status",
                                       help="Write market statuses the older way (settled, not finalized), as "
                                            "kalshi-python-sync 3.2.0 expects."),
    allow_unsigned_ws: bool = typer.Option(False, "--allow-unsigned-ws",
                                           help="Serve unsigned WebSocket connections (public channels only); "
                                                "Kalshi refuses them with 401, and so does the exchange by "
                                                "default."),
    as_json: bool = typer.Option(False, "--json", help="Print the connection details as JSON before serving."),
) -> None:
    """Serve Kalshi's trade API v2 (REST + WebSocket) from an in-memory exchange until Ctrl-C.

    Each --key-id/--public-key pair registers an API key and funds its account with --balance dollars.
    With no key, one is generated under $PRECOG_HOME/exchange/keys/ and its id and private key path are
    printed, ready for `precog kalshi --env local` (KALSHI_API_KEY_ID / KALSHI_PRIVATE_KEY_PATH).

    With --state FILE the markets, books, orders, balances, positions and API keys survive a restart.

    As on Kalshi, every WebSocket connection needs a signed handshake (public channels too); an unsigned one
    is refused with 401 unless --allow-unsigned-ws is given.

    Example: precog exchange serve --port 8765 --scenario nfl --speed 120
    """
    import uvicorn

    from precog.paths import precog_home
    from precog.venues.exchange.auth import KeyRegistry, generate_key_pair, load_public_key
    from precog.venues.exchange.errors import ExchangeError
    from precog.venues.exchange.scenarios import SCENARIOS, build_scenario
    from precog.venues.exchange.server import create_app
    from precog.venues.exchange.snapshot import PeriodicSaver, SnapshotError, restore, save

    key_ids = list(key_id or [])
    keys_pem = list(public_key or [])
    balances = [_money(b, "--balance") for b in (balance or [])]
    if len(key_ids) != len(keys_pem):
        raise UserError(f"give one --public-key per --key-id ({len(key_ids)} key ids, {len(keys_pem)} public keys)")
    if balances and len(balances) not in (1, max(len(key_ids), 1)):
        raise UserError(f"give one --balance for all keys or one per --key-id ({len(balances)} balances for "
                        f"{len(key_ids)} keys)")
    if scenario is not None and scenario not in SCENARIOS:
        raise UserError(f"unknown --scenario {scenario!r}; choose one of: {', '.join(sorted(SCENARIOS))}")
    if not math.isfinite(speed) or speed <= 0:  # NaN passes `<= 0`
        raise UserError(f"--speed must be a number > 0, got {speed}")
    if not math.isfinite(max_skew) or max_skew <= 0:  # no signed request would ever be accepted
        raise UserError(f"--max-skew must be a number of seconds > 0, got {max_skew}")
    if not is_loopback(host) and not admin_token:
        raise UserError(f"--host {host} is not a loopback address; set --admin-token to expose the exchange")

    registry = KeyRegistry()
    state_path = state.expanduser() if state is not None else None
    if state_path is not None and state_path.exists():
        if scenario is not None:
            raise UserError(f"--scenario cannot be combined with the existing --state file {state_path} "
                            "(its markets are already in the saved exchange)")
        try:
            exchange = restore(state_path, keys=registry)
        except SnapshotError as exc:
            raise UserError(str(exc)) from None
    else:
        exchange = fresh_exchange()
    key_dir = precog_home() / "exchange" / "keys"
    accounts: list[dict[str, Any]] = []
    for k in registry.keys():
        restored: dict[str, Any] = {"key_id": k.key_id, "balance": exchange.accounts[k.user_id].balance,
                                    "user_id": k.user_id, "restored": True}
        if (key_dir / f"{k.key_id}.pem").exists():
            restored["private_key_path"] = str(key_dir / f"{k.key_id}.pem")
        accounts.append(restored)
    for i, (kid, pem_path) in enumerate(zip(key_ids, keys_pem, strict=True)):
        try:
            pem = pem_path.expanduser().read_bytes()
        except OSError as exc:
            raise UserError(f"--public-key {pem_path}: cannot read the file ({exc.strerror})") from None
        try:
            key = load_public_key(pem, source=f"--public-key {pem_path}")
        except ExchangeError as exc:
            raise UserError(exc.message) from None
        amount = balances[i] if len(balances) > 1 else (balances[0] if balances else DEFAULT_BALANCE)
        if registry.get(kid) is not None:
            continue  # restored from --state with its account and balance
        acct = exchange.create_account(balance=amount)
        registry.register(acct.user_id, key, kid)
        accounts.append({"key_id": kid, "public_key": str(pem_path), "balance": amount, "user_id": acct.user_id})
    if not key_ids and not registry.keys():
        amount = balances[0] if balances else DEFAULT_BALANCE
        kid, private_path, public_pem = generate_key_pair(key_dir)
        acct = exchange.create_account(balance=amount)
        registry.register(acct.user_id, public_pem, kid)
        accounts.append({"key_id": kid, "private_key_path": str(private_path), "balance": amount,
                         "user_id": acct.user_id, "generated": True})

    steppers: list[Any] = []
    if scenario is not None:
        options: dict[str, Any] = {"seed": seed}
        if scenario == "nfl":
            options["speed"] = speed
        steppers.append(build_scenario(scenario, exchange, **options))
    if state_path is not None:
        try:
            save(exchange, state_path, registry)  # fail now, not at exit, if the file cannot be written
        except OSError as exc:
            raise UserError(f"--state {state_path}: cannot write the file ({exc.strerror or exc})") from None
        steppers.append(PeriodicSaver(exchange, state_path, registry))
    stepper = _Steps(steppers) if steppers else None

    app = create_app(exchange, keys=registry, max_skew_s=max_skew, admin_token=admin_token, scenario=stepper,
                     legacy_status=legacy_status, allow_unsigned_ws=allow_unsigned_ws)
    from precog.venues.exchange.gc_tuning import tune_for_matching

    tune_for_matching()  # this process only matches and serves: see gc_tuning for why
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            ws="websockets-sansio", access_log=False)
    server = uvicorn.Server(config)
    shown_host = f"[{host}]" if ":" in host else host

    def announce() -> None:
        bound = [s.getsockname()[1] for srv in server.servers for s in srv.sockets]
        real_port = bound[0] if bound else port
        base = f"http://{shown_host}:{real_port}/trade-api/v2"
        info = {"base_url": base, "ws_url": f"ws://{shown_host}:{real_port}/trade-api/ws/v2",
                "admin_url": f"http://{shown_host}:{real_port}/sim/", "scenario": scenario,
                "markets": sorted(exchange.markets), "accounts": accounts, "unsigned_ws": allow_unsigned_ws}
        if as_json:
            print_json(info)
            return
        console.print(f"[bold]precog exchange[/bold] serving Kalshi trade API v2 at {base}", soft_wrap=True)
        handshake = "unsigned connections allowed: public channels only" if allow_unsigned_ws \
            else "signed handshake required, as on Kalshi"
        console.print(f"  websocket  {info['ws_url']}  ({handshake})", soft_wrap=True)
        console.print(f"  admin      {info['admin_url']}  (create markets, move the clock, settle, faults)",
                      soft_wrap=True)
        if scenario:
            console.print(f"  scenario   {scenario} ({len(exchange.markets)} markets)")
        for a in accounts:
            console.print(f"  account    key id {a['key_id']}  balance ${a['balance']:,}", soft_wrap=True)
            if a.get("restored"):
                console.print(f"             restored from {state_path}"
                              + (f", private key {a['private_key_path']}" if a.get("private_key_path") else ""),
                              soft_wrap=True)
            if a.get("generated"):
                console.print(f"             private key {a['private_key_path']}", soft_wrap=True)
                console.print(f"  use it:    export KALSHI_API_KEY_ID={a['key_id']} "
                              f"KALSHI_PRIVATE_KEY_PATH={a['private_key_path']}", soft_wrap=True)
        console.print("Ctrl-C to stop.")

    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        if server.started:
            announce()

    server.startup = startup  # type: ignore[method-assign]
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it already handled: a clean stop, exit 0
        pass
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        if state_path is not None and server.started:
            save(exchange, state_path, registry)
    if not server.started:
        raise UserError(f"the exchange could not start on {host}:{port} (is the port already in use?)")


class _Steps:
    """Several things driven by the server's tick (a scenario and the periodic state save)."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps

    def step(self, now_ms: int) -> None:
        for s in self.steps:
            s.step(now_ms)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
