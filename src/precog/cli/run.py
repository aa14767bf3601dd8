"""`precog run`: the trading loop as a long-running process, with a live status view."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.live import Live
from rich.table import Table

from precog.cli.errors import UserError
from precog.cli.exchange import is_loopback
from precog.cli.output import console
from precog.domain.money import fmt_money
from precog.venues.kalshi.environments import ENVIRONMENTS, resolve_environment

log = logging.getLogger(__name__)

_DEMO_HOST = urlsplit(ENVIRONMENTS["demo"].base_url).hostname


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def goes_to_prod(env: str, base_url: str | None) -> bool:
    """Whether orders would reach Kalshi production: --env prod, or a base URL on any host but Kalshi's demo or
    this machine (KALSHI_BASE_URL overrides the environment's)."""
    host = urlsplit(base_url).hostname if base_url else None
    return env == "prod" or (host is not None and host != _DEMO_HOST and not is_loopback(host))


def check_live_allowed(live: bool, env: str, confirm_live: bool, config_confirmed: bool,
                       base_url: str | None = None) -> None:
    """Live trading on prod needs an explicit confirmation (flag or config key); everything else may run.
    `base_url` is where the orders would really go (KALSHI_BASE_URL overrides the environment's): any host but
    Kalshi's demo or this machine counts as prod, whatever --env says."""
    if not live or confirm_live or config_confirmed:
        return
    host = urlsplit(base_url).hostname if base_url else None
    if goes_to_prod(env, base_url):
        where = f" ({host})" if host and env != "prod" else ""
        raise UserError(f"refusing to trade live on prod{where}: pass --confirm-live or set "
                        "trading.live_trading_confirmed: true in trading.yaml")


def check_simulated_pace(speed: float, interval: float, cfg: Any) -> None:
    """`--venue local`: the loop wakes every min(--interval, urgent check) wall seconds and the world moves
    --speed simulated seconds per wall second, so every open position is checked once per speed x wake
    simulated seconds. Past the monitor's normal cadence the simulated exits are not the live ones, and past
    two minutes every open position raises a critical `position_unmonitored` alert on each cycle."""
    normal = float(cfg.get("position_management.monitoring.normal_frequency", 30))
    urgent = float(cfg.get("position_management.monitoring.urgent_frequency", 5))
    wake = min(interval, urgent) if urgent > 0 else interval
    per_check = speed * wake
    if per_check > normal:
        raise UserError(
            f"--speed {speed:g} with --interval {interval:g} moves the simulated world {per_check:g} s between "
            f"position checks, more than position_management.monitoring.normal_frequency ({normal:g} s): use "
            f"--speed <= {normal / wake:g}, or a shorter --interval (--speed x min(--interval, {urgent:g}) "
            f"must stay <= {normal:g})")


def _table(s: Any) -> Table:
    t = Table(title=f"precog run {s.run_id} — {s.mode} on {s.venue}", show_header=False)
    t.add_column("what")
    t.add_column("value")
    for k, v in (("trading state", s.trading_state), ("cycles", s.steps), ("open positions", s.open_positions),
                 ("open orders", s.open_orders), ("orders sent", s.orders_sent), ("fills", s.fills),
                 ("P&L (realized + unrealized)", fmt_money(s.pnl)),
                 ("breakers tripped", ", ".join(s.breakers) or "none"), ("market data", s.market_data),
                 ("", s.note or "Ctrl-C to stop")):
        if k == "market data" and not v:
            continue  # the local exchange: no stream view
        t.add_row(k, str(v))
    return t


def run(
    paper: bool = typer.Option(True, "--paper/--live", help="Paper (simulated fills on real data) or live orders."),
    venue: str = typer.Option("local", "--venue", help="local (the built-in exchange) or kalshi."),
    env: str = typer.Option(None, "--env", help="Kalshi environment: demo or prod (default: trading.environment)."),
    confirm_live: bool = typer.Option(False, "--confirm-live", help="Required for --live --env prod."),
    games: int = typer.Option(4, "--games", min=1, max=16, help="--venue local: simulated NFL games."),
    speed: float = typer.Option(1.0, "--speed", min=0.01, help="--venue local: simulated seconds per real second."),
    seed: int = typer.Option(None, "--seed", help="--venue local: random seed of the simulated games."),
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="Seconds between engine cycles."),
    duration: float = typer.Option(None, "--duration", min=0, help="Stop after this many seconds."),
    quiet: bool = typer.Option(False, "--quiet", help="No live status view (one line at the end)."),
    ingest: bool = typer.Option(True, "--ingest/--no-ingest",
                                help="--venue kalshi: run market and game ingestion in this process."),
    notify: bool = typer.Option(True, "--notify/--no-notify", help="Deliver alerts (notifier) in this process."),
) -> None:
    """Run ingestion-fed decisions, execution, monitoring, exits and settlement until Ctrl-C.

    --venue local runs the built-in exchange with simulated NFL games (paced by --speed); --venue kalshi
    trades the markets ingestion keeps in the database, with the active methods. Live trading on prod
    requires --live --env prod and --confirm-live (or trading.live_trading_confirmed: true).

    Example: precog run --paper --venue local --speed 30
    """
    from precog.config.loader import load_config
    from precog.db.connection import database_url
    from precog.db.migrate import ensure_migrated
    from precog.engine.alert_sink import loop_alerts

    if venue not in ("local", "kalshi"):
        raise UserError(f"--venue must be local or kalshi, got {venue!r}")
    url = database_url()
    ensure_migrated(url)
    cfg = load_config(db_url=url)
    env = env or str(cfg.get("trading.environment", "demo"))
    if env not in ("demo", "prod"):
        raise UserError(f"--env must be demo or prod, got {env!r}")
    live = not paper
    if live and venue == "kalshi":
        target = resolve_environment(env).base_url  # where the orders would go (KALSHI_BASE_URL included)
    else:
        target = None
    check_live_allowed(live, env, confirm_live, bool(cfg.get("trading.live_trading_confirmed", False)), target)
    if venue == "local":
        check_simulated_pace(speed, interval, cfg)
    if live and venue == "kalshi" and goes_to_prod(env, target):
        from precog.trading.live_limits import capped_for_live_prod

        cfg, caps = capped_for_live_prod(cfg)  # production starts small (trading.live_prod_limits)
        typer.echo(f"live on Kalshi production: position at most {fmt_money(caps['max_position_dollars'])}, total "
                   f"exposure {fmt_money(caps['max_total_exposure_dollars'])}, daily loss "
                   f"{fmt_money(caps['daily_loss_limit_dollars'])} (trading.live_prod_limits caps the regular limits)")
    mode = "live" if live else "paper"
    runner = _run_local if venue == "local" else _run_kalshi
    # every loop raises through the AlertManager (dedup, redaction, outbox, channels); --notify delivers here
    with loop_alerts(url, notify=notify) as alerts:
        final = asyncio.run(runner(url, cfg, alerts, mode=mode, env=env, games=games, speed=speed, seed=seed,
                                   interval=interval, duration=duration, quiet=quiet, ingest=ingest))
    typer.echo(f"run {final.run_id}: {final.steps} cycles, {final.fills} fills, {final.open_positions} open positions, "
               f"P&L {fmt_money(final.pnl)}, state {final.trading_state}")


async def _loop(engine: Any, label: str, *, interval: float, duration: float | None, quiet: bool,
                before_step: Any = None, until: Any = None, stop: asyncio.Event | None = None) -> Any:
    from precog.engine.runner import run_loop

    if quiet:
        return await run_loop(engine, interval_s=interval, venue_label=label, before_step=before_step, until=until,
                              duration_s=duration, stop=stop)
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        return await run_loop(engine, interval_s=interval, venue_label=label,
                              on_status=lambda s: live.update(_table(s)), before_step=before_step, until=until,
                              duration_s=duration, stop=stop)


async def _run_local(url: str, cfg: Any, alerts: Any, *, mode: str, env: str, games: int, speed: float,
                     seed: int | None, interval: float, duration: float | None, quiet: bool, ingest: bool) -> Any:
    from precog.db.connection import connect
    from precog.engine.core import Engine
    from precog.engine.demo import (
        DemoWorld,
        demo_teams,
        ensure_demo_methods,
        simulated_clock,
        simulated_market_settings,
        simulation_board,
    )
    from precog.engine.kalshi_venue import http_venue_for_local_exchange
    from precog.engine.paper_venue import PaperVenue
    from precog.engine.simulated_runs import end_abandoned_runs, end_simulated_run, hold_run_lock
    from precog.venues.exchange.engine import Exchange

    conn = connect(url, autocommit=True, statement_timeout_ms=int(cfg.get("system.database.statement_timeout_ms")))
    for ended in end_abandoned_runs(conn):  # simulated worlds of processes that died: their positions close
        typer.echo(f"run {ended.run_id} (a simulated world whose process is gone): {ended.positions_closed} open "
            f"position(s) closed at their last marks ({fmt_money(ended.realized_pnl)}), {ended.orders_closed} "
            "order(s) closed")
    rng = random.Random(seed)
    clock = simulated_clock(games, speed)
    exchange = Exchange(clock)
    tag_row = conn.execute("SELECT coalesce(max(run_id), 0) + 1 FROM engine_runs").fetchone()
    world = DemoWorld(exchange, clock, demo_teams(conn), games, rng, f"R{tag_row[0] if tag_row else 1}")
    cash = Decimal(str(cfg.get("trading.account.initial_capital", "10000")))
    exchange.create_account("precog", cash)
    http, close = await http_venue_for_local_exchange(exchange, "precog")
    venue: Any = http

    def now() -> datetime:
        return datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)

    if mode == "paper":
        venue = PaperVenue(http, cash, clock=now)
    board = None
    engine: Any = None
    lock: list[Any] = []  # the session holding this run's lock while the process lives (simulated_runs)
    try:
        # the simulated world's breakers, plus every breaker open in the database (`precog halt` stops this loop)
        board = simulation_board(url, cfg, alerts, env)
        engine = Engine(conn, venue, config=cfg, mode=mode, kind="run", methods=ensure_demo_methods(conn),
                        probabilities=world, markets=world.tracked, clock=now, alerts=alerts, environment=env,
                        initial_cash=cash, reconcile_cash=True, risk_settings=simulated_market_settings(cfg),
                        breakers=board)
        lock.append(hold_run_lock(url, engine.run_id))  # while this process lives, nobody ends its world
        board.attach(engine)
        pending = [0.0]

        def advance(elapsed: float) -> None:
            pending[0] += elapsed * speed
            while pending[0] >= 1.0:  # the world moves in whole simulated seconds
                step = min(pending[0], 5.0)
                world.advance(step)
                pending[0] -= step

        final = await _loop(engine, f"local exchange ({len(world.games)} simulated NFL games)", interval=interval,
                            duration=duration, quiet=quiet, before_step=advance,
                            until=lambda: world.all_settled() and not engine.portfolio.open_positions())
    finally:
        await close()
        if board is not None:
            board.end()
        world_end = None
        if engine is not None and not conn.closed:
            try:
                world_end = end_simulated_run(conn, engine.run_id, why="the run stopped before its simulated games ended")
            except Exception as exc:  # noqa: BLE001 - the next simulated run ends it (never mask the stop's error)
                log.warning("could not end the simulated world of run %s: %s", engine.run_id, exc)
        for held in lock:
            held.close()
        conn.close()
    if world_end is not None and (world_end.positions_closed or world_end.orders_closed):
        typer.echo(f"the simulated world ends with this run: {world_end.positions_closed} position(s) still open closed "
                   f"at their last marks (exit reason simulation_ended, {fmt_money(world_end.realized_pnl)} realized), "
                   f"{world_end.orders_closed} order(s) canceled")
        final = dataclasses.replace(final, open_positions=max(0, final.open_positions - world_end.positions_closed),
                                    open_orders=max(0, final.open_orders - world_end.orders_closed))
    return final


async def _run_kalshi(url: str, cfg: Any, alerts: Any, *, mode: str, env: str, games: int, speed: float,
                      seed: int | None, interval: float, duration: float | None, quiet: bool, ingest: bool) -> Any:
    from precog.db.connection import connect
    from precog.engine.core import Engine
    from precog.engine.decision_planner import DecisionPlanner, PlannerForecasts
    from precog.engine.kalshi_venue import KalshiVenue
    from precog.engine.market_stream import MarketStream
    from precog.engine.paper_venue import PaperVenue
    from precog.venues.kalshi.client import AsyncKalshiClient
    from precog.venues.kalshi.errors import KalshiConfigError

    overlay = cfg.get("markets.discovery.cache_ttl_seconds", 60)  # the market view's REST snapshot cadence
    if isinstance(overlay, bool) or not isinstance(overlay, int | float) or overlay <= 0:
        raise UserError(f"markets.yaml discovery.cache_ttl_seconds must be a positive number of seconds, "
                        f"got {overlay!r}")
    from precog.venues.kalshi.settings import client_options, websocket_heartbeat

    try:
        # request budget (markets.yaml), retries and timeout (system.yaml defaults); malformed payloads, a refused
        # key and a budget nearly used up raise alerts through the loop's manager
        client = AsyncKalshiClient.from_env(env, require_auth=mode == "live", alerts=alerts, **client_options(cfg))
    except KalshiConfigError as exc:
        raise UserError(str(exc)) from exc
    timeout_ms = int(cfg.get("system.database.statement_timeout_ms"))
    conn = connect(url, autocommit=True, statement_timeout_ms=timeout_ms)
    # prices from the WebSocket (ingestion's connection with --ingest, its own with --no-ingest), REST as fallback
    stream = MarketStream(client, max_price_age_seconds=float(cfg.get("trading.data_freshness.max_price_age_seconds",
                                                                      120)),
                          overlay_seconds=float(overlay), alerts=alerts)
    if not ingest:
        ping, pong = websocket_heartbeat(cfg)
        stream.open_connection(heartbeat_interval=ping, heartbeat_timeout=pong)
    try:
        venue: Any = KalshiVenue(client, market_stream=stream)
        planner = DecisionPlanner(conn, cfg, lambda: connect(url, autocommit=True, statement_timeout_ms=timeout_ms),
                                  mode=mode, alerts=alerts,
                                  platform_id=venue.platform_id)
        if not planner.has_units:
            raise UserError("nothing to trade with: no active method (or active strategy + model pair); "
                            "see `precog methods` — " + "; ".join(planner.last_notes))
        cash = Decimal(str(cfg.get("trading.account.initial_capital", "10000")))
        if mode == "paper":
            # one paper account per Kalshi account, carried over restarts (positions, cash)
            venue = PaperVenue(venue, cash, account_ref=f"paper:{venue.account_ref}")

        def now() -> datetime:
            return datetime.now(UTC)

        engine = Engine(conn, venue, config=cfg, mode=mode, kind="run", methods=[], probabilities=PlannerForecasts(planner),
                        markets=[], clock=now, alerts=alerts, environment=env,
                        initial_cash=cash if mode == "paper" else None, planner=planner, market_data="poll",
                        # manual approval `prod` follows where the orders really go (KALSHI_BASE_URL included)
                        prod_target=goes_to_prod(env, client.environment.base_url))
        stop = asyncio.Event()
        if ingest:  # markets and game states flow into the database the decision scan reads
            from precog.ingest.runner import IngestOptions, run_ingest
            from precog.ingest.settings import IngestSettingsError, load_ingest_settings

            try:
                settings = load_ingest_settings(cfg)
            except IngestSettingsError as exc:
                raise UserError(str(exc)) from exc
            ingest_task = asyncio.create_task(run_ingest(url, settings, IngestOptions(venue="kalshi", env=env),
                                                         alerts=alerts, stop=stop, on_market_feed=stream.share))
        try:
            final = await _loop(engine, f"kalshi {env}", interval=interval, duration=duration, quiet=quiet,
                                stop=stop)
            st = stream.status()
            typer.echo(f"market data: {st['stream_reads']} reads from the stream ({st['source']}), "
                       f"{st['fallbacks']} over REST, {st['rejected']} stream prices rejected")
            return final
        finally:
            stop.set()
            if ingest:
                try:
                    await asyncio.wait_for(ingest_task, timeout=15)
                except Exception:  # noqa: BLE001 - ingestion problems were alerted; do not mask the run's result
                    pass
    finally:
        await stream.close()
        await client.aclose()
        conn.close()

