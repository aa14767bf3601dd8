"""`precog espn ...`: ESPN scoreboards, live or from a saved response, normalised to game states."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from precog.cli.errors import UserError
from precog.cli.output import print_json, print_table
from precog.feeds.espn import EspnClient, EspnFetchError, check_date, check_sport
from precog.feeds.espn_parse import EspnSchemaError, ParsedScoreboard, parse_scoreboard
from precog.feeds.game_state import SPORTS, GameState
from precog.ingest.settings import espn_base_from

espn_app = typer.Typer(help="ESPN live game data (scoreboards) normalised to game states.", no_args_is_help=True)

SPORT_HELP = f"One of: {', '.join(SPORTS)}."


def register(app: typer.Typer) -> None:
    app.add_typer(espn_app, name="espn")


def _sport(value: str) -> str:
    try:
        return check_sport(value.lower())
    except ValueError as exc:
        raise UserError(f"--sport: {exc}") from exc


@espn_app.command("scoreboard")
def scoreboard(
    sport: str = typer.Option(..., "--sport", help=SPORT_HELP),
    date: str | None = typer.Option(None, "--date", help="Day as YYYYMMDD (default: ESPN's current day)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="ESPN API base (default $PRECOG_ESPN_BASE_URL, $ESPN_API_BASE, "
        "data_sources.espn.base_url, or ESPN's own)."
    ),
) -> None:
    """Fetch today's (or --date's) live scoreboard from ESPN and show every game's state.

    Example: precog espn scoreboard --sport nfl --date 20251130 --json
    """
    sport_ok = _sport(sport)
    try:
        check_date(date)
    except ValueError as exc:
        raise UserError(f"--date: {exc}") from exc

    async def _fetch() -> ParsedScoreboard:
        async with EspnClient(base_url or _configured_base_url(), retries=1, retry_delay=1.0,
                              min_interval=0) as client:
            return await client.scoreboard(sport_ok, date)

    try:
        board = asyncio.run(_fetch())
    except EspnFetchError as exc:
        raise UserError(str(exc)) from exc
    except EspnSchemaError as exc:
        raise UserError(str(exc)) from exc
    _show(board, as_json)


@espn_app.command("parse")
def parse(
    file: Path = typer.Argument(..., help="A saved ESPN scoreboard response (JSON)."),
    sport: str = typer.Option(..., "--sport", help=SPORT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Normalise a saved ESPN scoreboard response into game states.

    Example: precog espn parse nfl_scoreboard.json --sport nfl --json
    """
    sport_ok = _sport(sport)
    if not file.is_file():
        raise UserError(f"{file}: no such file")
    try:
        board = parse_scoreboard(file.read_bytes(), sport_ok)
    except EspnSchemaError as exc:
        raise UserError(f"{file}: {exc}") from exc
    _show(board, as_json)


def _configured_base_url() -> str:
    """$PRECOG_ESPN_BASE_URL / $ESPN_API_BASE, else data_sources.espn.base_url, else ESPN's own."""
    try:
        from precog.config.loader import load_config

        configured = load_config(use_overrides=False).get("data_sources.espn.base_url", None)
    except Exception:  # noqa: BLE001 - a broken config must not stop a read-only scoreboard look-up
        configured = None
    return espn_base_from(configured)


def _show(board: ParsedScoreboard, as_json: bool) -> None:
    if as_json:
        print_json({
            "sport": board.sport,
            "games": [g.to_json() for g in board.games],
            "errors": [str(e) for e in board.errors],
            "unknown_statuses": board.unknown_statuses,
        })
        return
    print_table(
        f"ESPN {board.sport.upper()} scoreboard ({len(board.games)} games)",
        ["game", "matchup", "status", "period", "clock", "score", "poss", "situation", "ESPN P(home)"],
        (_row(g) for g in board.games),
    )
    for error in board.errors:
        typer.echo(f"skipped: {error}", err=True)


def _row(game: GameState) -> list[object]:
    prob = game.metadata.get("espn_win_probability", {}).get("home")
    odds = game.metadata.get("pregame_odds", {})
    if prob is None and odds.get("home_implied_probability") is not None:
        prob = f"{odds['home_implied_probability']} (odds)"
    situation = ""
    if game.down is not None:
        situation = f"{game.down}&{game.distance}" + (f" ytg {game.yards_to_goal}" if game.yards_to_goal else "")
    return [
        game.game_id,
        f"{game.away_team} @ {game.home_team}",
        game.status,
        game.period,
        game.display_clock,
        f"{game.away_score}-{game.home_score}",
        game.possession or "",
        situation,
        prob,
    ]
