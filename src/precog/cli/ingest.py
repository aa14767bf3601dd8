"""`precog ingest ...`: run market and live-game ingestion; show feed health; replay recordings."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import typer
from psycopg.rows import dict_row

from precog.cli.errors import UserError
from precog.cli.output import print_json, print_table
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated
from precog.feeds.espn import check_date
from precog.ingest.breaker import read_data_breaker
from precog.ingest.game_link import GameLink
from precog.ingest.games import PollOutcome
from precog.ingest.recorder import read_recording
from precog.ingest.runner import IngestOptions, IngestReport, run_ingest
from precog.ingest.settings import IngestSettingsError, load_ingest_settings
from precog.venues.kalshi.errors import KalshiError

ingest_app = typer.Typer(help="Market and live-game ingestion (Kalshi / local exchange + ESPN).",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")


@ingest_app.command("run")
def run(
    venue: str = typer.Option("kalshi", "--venue", help="kalshi or local (the built-in local exchange)."),
    env: str = typer.Option("demo", "--env", help="Kalshi environment: demo or prod."),
    sports: str | None = typer.Option(None, "--sports", help="Comma list, e.g. nfl,ncaaf,nba (default: leagues "
                                      "enabled in markets.yaml)."),
    once: bool = typer.Option(False, "--once", help="One discovery + snapshot + one ESPN poll per sport, then exit."),
    record: Path | None = typer.Option(None, "--record", help="Record every raw feed message to gzip JSON lines "
                                       "in this directory (replayable)."),
    base_url: str | None = typer.Option(None, "--base-url", help="Venue REST base URL (default: the environment's;"
                                        " KALSHI_BASE_URL also works)."),
    games: bool = typer.Option(True, "--games/--no-games", help="Ingest ESPN live game data."),
    markets: bool = typer.Option(True, "--markets/--no-markets", help="Ingest venue market data."),
    date: str | None = typer.Option(None, "--date", help="ESPN scoreboard day YYYYMMDD (default: today)."),
    fallback_poll: float = typer.Option(60.0, "--fallback-poll-seconds", min=1.0,
                                        help="REST polling interval while the WebSocket is down."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Keep series -> events -> markets and live game states in sync, writing their history to PostgreSQL.

    Runs until Ctrl-C (or once with --once). Example:
      precog ingest run --venue local --sports nfl,nba --record ./recordings
    """
    if venue not in ("kalshi", "local"):
        raise UserError(f"--venue must be kalshi or local, got {venue!r}")
    if env not in ("demo", "prod"):
        raise UserError(f"--env must be demo or prod, got {env!r}")
    if not games and not markets:
        raise UserError("nothing to do: both --no-games and --no-markets were given")
    try:
        check_date(date)
    except ValueError as exc:
        raise UserError(f"--date: {exc}") from exc
    url = ensure_migrated()
    config = load_config(db_url=url)
    sport_list = [s.strip().lower() for s in sports.split(",") if s.strip()] if sports else None
    try:
        settings = load_ingest_settings(config, sport_list)
    except IngestSettingsError as exc:
        raise UserError(str(exc)) from exc
    if record is not None:
        try:
            record.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--record: cannot create {record}: {exc}") from exc
    options = IngestOptions(venue=venue, env=env, base_url=base_url, once=once, record_dir=record, games=games,
                            markets=markets, game_date=date, fallback_poll_seconds=fallback_poll)

    from precog.alerts.manager import AlertManager

    alerts = AlertManager(url)

    def show_links(links: list[GameLink]) -> None:
        if not as_json:
            for link in links:
                typer.echo(f"linked {link.event_ticker} -> ESPN {link.sport} game {link.game.game_id} "
                           f"({link.game.short_name}, by {link.method.replace('_', ' ')})")

    def show_poll(outcome: PollOutcome) -> None:
        if as_json:
            return
        state = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        links = f", linked {len(outcome.links)} events" if outcome.links else ""
        day = "" if outcome.date is None else f" {outcome.date[:4]}-{outcome.date[4:6]}-{outcome.date[6:]}"
        typer.echo(f"espn {outcome.sport}{day}: {state}; {outcome.games} games, {outcome.changed} changed, "
                   f"{outcome.versions_written} versions{links}; next poll in {outcome.next_poll_seconds:.0f}s")
        # an event is linked by whichever comes second, the poll or market discovery: show it the same either way
        show_links(outcome.links)

    async def main() -> IngestReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if not as_json:
            target = "the local exchange" if venue == "local" else f"Kalshi {env}"
            typer.echo(f"ingesting {', '.join(settings.sports)} from {target}"
                       f" (series {', '.join(settings.series)}){' once' if once else '; Ctrl-C to stop'}")
            if markets and not once and not _has_key(venue, env):
                # Kalshi (and the local exchange) refuse an unsigned WebSocket: say why prices will lag
                typer.echo(f"no API key (KALSHI_API_KEY_ID / KALSHI_PRIVATE_KEY_PATH): the venue refuses the "
                           f"WebSocket, market prices come from REST polling every {fallback_poll:g} s")
        return await run_ingest(url, settings, options, alerts=alerts, stop=stop, on_poll=show_poll,
                                on_links=show_links)

    try:
        report = asyncio.run(main())
    except KalshiError as exc:
        raise UserError(f"{venue}: {exc}") from exc
    finally:
        alerts.close()
    summary = {
        "venue": venue, "sports": list(settings.sports), "series": list(settings.series),
        "game_polls": report.game_polls, "markets": report.markets,
        "quality_issues": report.quality_issues, "data_breaker_open": report.breaker_open,
        "recorded_messages": report.recorded_messages, "recording_files": report.recording_files,
        "elo_updates": report.elo_updates, "wp_refits": report.wp_refits,
    }
    if as_json:
        print_json(summary)
        return
    m = report.markets
    if m:
        typer.echo(f"markets: {m['markets']} followed, {m['updates']} updates, {m['versions_written']} versions "
                   f"written, {m['rejected']} rejected, mode {m['mode']}")
    if report.quality_issues:
        typer.echo("data-quality issues: " + ", ".join(f"{k} {v}" for k, v in report.quality_issues.items()))
    if report.breaker_open:
        typer.echo("DATA BREAKER OPEN: trading on this data is paused")
    for elo in report.elo_updates:
        typer.echo(f"elo: {elo['model']} applied {elo['games_applied']} final {elo['sport']} results "
                   f"({len(elo['teams'])} teams)")
    for ref in report.wp_refits:
        typer.echo(f"wp: trained {ref} on the ingested in-game states (validating; docs/models.md, Automatic refits)")
    if record is not None:
        typer.echo(f"recorded {report.recorded_messages} messages to {record}")


def _has_key(venue: str, env: str) -> bool:
    from precog.venues.kalshi.auth import credentials_from_env

    try:
        return credentials_from_env("local" if venue == "local" else env) is not None
    except KalshiError:
        return True  # half configured: the run itself stops with the variable to fix


STATUS_STALE_SECONDS = 30  # `precog ingest run` writes its feeds' status every 2 s


@ingest_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Health of each ingestion feed (streaming / polling / down) and the data breaker.

    Example: precog ingest status --json
    """
    url = ensure_migrated()
    with connect(url) as conn:
        breaker = read_data_breaker(conn)
        with conn.cursor(row_factory=dict_row) as cur:
            feeds = cur.execute("SELECT *, extract(epoch FROM now() - updated_at)::float8 AS status_age_seconds "
                                "FROM ingest_feed_status ORDER BY feed").fetchall()
    for f in feeds:
        # a running ingester writes its status every few seconds: a row not written for STATUS_STALE_SECONDS is
        # the last word of a process that is gone (killed, or stopped without saying so), not a live feed
        f["reported_mode"] = f["mode"]
        if f["status_age_seconds"] is not None and f["status_age_seconds"] > STATUS_STALE_SECONDS \
                and f["mode"] != "down":
            f["mode"], f["reliable_realtime"] = "down (no status from an ingester)", False
    data = {"data_breaker": {"open": breaker.open, "event_id": breaker.event_id,
                             "triggered_at": breaker.triggered_at, "reopens_at": breaker.reopens_at},
            "feeds": feeds}
    if as_json:
        print_json(data)
        return
    print_table("Ingestion feeds", ["feed", "mode", "realtime", "last message", "versions", "issues", "updated"],
                ([f["feed"], f["mode"], f["reliable_realtime"], f["last_message_at"], f["versions_written"],
                  f["quality_issues"], f["updated_at"]] for f in feeds))
    typer.echo(f"data breaker: {'OPEN since ' + str(breaker.triggered_at) if breaker.open else 'closed'}")


@ingest_app.command("replay")
def replay(
    path: Path = typer.Argument(..., help="A recording file or directory written by --record."),
    source: list[str] = typer.Option([], "--source", help="Only these sources (prefix match, e.g. espn, kalshi:ws)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per message."),
    limit: int = typer.Option(0, "--limit", min=0, help="Stop after N messages (0 = all)."),
) -> None:
    """Print a recording in receive order (what a backtest replay sees).

    Example: precog ingest replay ./recordings --source kalshi:ws --limit 20
    """
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_dir() and not any(path.rglob("*.jsonl.gz")):
        raise UserError(f"{path}: no recording files (*.jsonl.gz) in this directory")
    counts: dict[str, int] = {}
    shown = 0
    try:
        for message in read_recording(path, sources=source or None):
            counts[message.source] = counts.get(message.source, 0) + 1
            if as_json:
                print_json({"seq": message.seq, "source": message.source,
                            "received_at": message.received_at.isoformat(), "payload": message.payload})
            shown += 1
            if limit and shown >= limit:
                break
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if not as_json:
        print_table(f"Recording {path}", ["source", "messages"], sorted(counts.items()))
