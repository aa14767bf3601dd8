"""`precog forecast ...`: Elo, in-game win probability, historical matrices, evaluation, single forecasts."""

from __future__ import annotations

import csv
import getpass
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import typer

from precog.cli.errors import UserError
from precog.cli.output import console, err_console, print_json, print_table
from precog.forecast.errors import ForecastError

forecast_app = typer.Typer(help="Forecasting: Elo, in-game win probability, matrices, evaluation.",
                           no_args_is_help=True)
elo_app = typer.Typer(help="Pre-game Elo ratings: train, update, predict, tune.", no_args_is_help=True)
wp_app = typer.Typer(help="In-game win probability (NFL): train, predict, export ingested states, refit.",
                     no_args_is_help=True)
matrix_app = typer.Typer(help="Historical probability matrices (spec 7.2): build, show.", no_args_is_help=True)
forecast_app.add_typer(elo_app, name="elo")
forecast_app.add_typer(wp_app, name="wp")
forecast_app.add_typer(matrix_app, name="matrix")

JSON_HELP = "Print JSON (Decimals as strings)."
INITIAL_HELP = ("Starting ratings (538's initial_elos.csv format: team,elo). Default: the shared data's "
                "nfl/initial_elos.csv when present, else every current NFL team starts at the config's initial rating.")


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")


# ------------------------------------------------------------------------------------------------ helpers
@contextmanager
def user_errors() -> Iterator[None]:
    """Forecasting errors are phrased for people: show them as one line (exit code 1)."""
    try:
        yield
    except ForecastError as exc:
        raise UserError(str(exc)) from exc


@contextmanager
def database() -> Iterator[psycopg.Connection[Any]]:
    """A connection to the migrated database with the shipped models registered; commits on success."""
    from precog.db.connection import connect
    from precog.db.migrate import ensure_migrated
    from precog.forecast.registry import ensure_builtin_models

    url = ensure_migrated()
    with connect(url) as conn:
        with user_errors():
            ensure_builtin_models(conn)
            yield conn


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def fmt(x: float | None, places: int = 4) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:.{places}f}"


def _default_initial_elos() -> Path | None:
    from precog.paths import shared_data_dir

    data = shared_data_dir()
    if data is None:
        return None
    path = data / "nfl" / "initial_elos.csv"
    return path if path.is_file() else None


def _initial_ratings(path: Path | None, *, quiet: bool) -> dict[str, float] | None:
    from precog.forecast.gamesfile import read_initial_ratings

    chosen = path or _default_initial_elos()
    if chosen is None:
        return None
    if not quiet:
        err_console.print(f"starting ratings: {chosen}", highlight=False)
    return read_initial_ratings(chosen)


def _seasons(text: str, option: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = text.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a season range like 1990-2009") from None
    if lo > hi:
        raise UserError(f"{option}: {text!r} starts after it ends")
    return lo, hi


def _floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a comma-separated list of numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"{option}: {text!r} holds a value that is not a finite number")
    return values


def _check_grid(base: Any, grid: dict[str, list[float]]) -> None:
    """Every value of the tuning grid is a valid Elo parameter (before the games are read), named by its option."""
    from pydantic import ValidationError

    from precog.forecast.elo import EloConfig

    options = {"k_factor": "--k", "home_field_advantage": "--hfa", "season_regression": "--regression",
               "playoff_multiplier": "--playoff"}
    for name, values in grid.items():
        for value in values:
            try:
                EloConfig.model_validate(base.model_dump() | {name: value})
            except ValidationError as exc:
                raise UserError(f"{options[name]} {value:g}: {exc.errors()[0]['msg']}") from None


def _elo_config_from(ref: str | None) -> tuple[Any, str, int | None]:
    """(EloConfig, model ref, model id): from the registry when named, else the shipped elo_nfl v1.0 (no DB)."""
    from precog.forecast.elo import TUNED_NFL_CONFIG, EloConfig
    from precog.forecast.registry import get_model

    if ref is None:
        return TUNED_NFL_CONFIG, "elo_nfl@v1.0 (shipped)", None
    with database() as conn:
        record = get_model(conn, ref)
    if record.model_type != "elo":
        raise UserError(f"{record.ref} is a {record.model_type} model, not an Elo model")
    return EloConfig.model_validate(record.config), record.ref, record.model_id


# ------------------------------------------------------------------------------------------------ elo
@elo_app.command("predict")
def elo_predict(
    games: Path = typer.Option(..., "--games", help="Games file in the 538 column format (date, season, team1, team2, ...)."),
    out: Path = typer.Option(..., "--out", help="Where to write date,team1,team2,p_team1 (CSV)."),
    model: str | None = typer.Option(None, "--model", help="Elo version from the registry, e.g. elo_nfl@v1.0 "
                                     "(default: the shipped elo_nfl v1.0 config, no database needed)."),
    initial_elos: Path | None = typer.Option(None, "--initial-elos", help=INITIAL_HELP),
    allow_new_teams: bool = typer.Option(False, "--allow-new-teams",
                                         help="Start teams without a starting rating at the config's initial rating."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Replay a games file online: forecast every game from the games before it, then update ratings.

    Writes `date,team1,team2,p_team1` for every game (future games without scores are forecast too).

    Example: precog forecast elo predict --games ../shared/data/nfl/fivethirtyeight_nfl_games_1920_2014.csv --out pred.csv
    """
    from precog.forecast.elo import EloRatings, replay
    from precog.forecast.gamesfile import read_games
    from precog.forecast.metrics import score

    with user_errors():
        config, ref, _ = _elo_config_from(model)
        game_list = read_games(games)
        initial = _initial_ratings(initial_elos, quiet=as_json)
        forecasts = replay(game_list, EloRatings(config, initial, allow_new_teams=allow_new_teams), path=str(games))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["date", "team1", "team2", "p_team1"])
        for f in forecasts:
            writer.writerow([f.game.date.isoformat(), f.game.team1, f.game.team2, f"{f.p_team1:.6f}"])
    tmp.replace(out)
    played = [f for f in forecasts if f.game.result1 is not None]
    s = score([f.p_team1 for f in played], [float(f.game.result1 or 0.0) for f in played]) if played else None
    summary = {"model": ref, "games": len(forecasts), "played": len(played), "out": str(out),
               "brier": None if s is None else round(s.brier, 6)}
    if as_json:
        print_json(summary)
        return
    console.print(f"{ref}: forecast {len(forecasts)} games ({len(played)} with results"
                  + (f", Brier {s.brier:.4f}" if s else "") + f") -> {out}", highlight=False)


@elo_app.command("train")
def elo_train(
    games: Path = typer.Option(..., "--games", help="Games file in the 538 column format, with scores."),
    model: str = typer.Option("elo_nfl", "--model", help="Elo version whose config to use (name = newest active)."),
    initial_elos: Path | None = typer.Option(None, "--initial-elos", help=INITIAL_HELP),
    allow_new_teams: bool = typer.Option(False, "--allow-new-teams",
                                         help="Start teams without a starting rating at the config's initial rating."),
    create_teams: bool = typer.Option(False, "--create-teams",
                                      help="Add teams that are not in the teams table (e.g. historic franchises) "
                                           "so they get history too. Default: report them."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Replay history with a registered Elo version and store the ratings.

    Writes teams.current_elo_rating and appends elo_rating_history (one row per team per game, for teams in
    the teams table; 538 codes are mapped: WSH -> WAS, OAK -> LV). Re-running adds only new games.

    Example: precog forecast elo train --games ../shared/data/nfl/fivethirtyeight_nfl_games_1920_2014.csv
    """
    from precog.forecast.elo import EloConfig, EloRatings, replay
    from precog.forecast.elo_store import store_replay
    from precog.forecast.gamesfile import read_games
    from precog.forecast.registry import get_model

    with user_errors():
        game_list = read_games(games, require_results=False)
        if not any(g.played for g in game_list):
            raise UserError(f"{games}: no game has a final score; nothing to train on")
        initial = _initial_ratings(initial_elos, quiet=as_json)
    with database() as conn:
        record = get_model(conn, model)
        if record.model_type != "elo":
            raise UserError(f"{record.ref} is a {record.model_type} model, not an Elo model")
        if record.status == "deprecated":
            raise UserError(f"{record.ref} is deprecated; train a current version")
        config = EloConfig.model_validate(record.config)
        forecasts = replay(game_list, EloRatings(config, initial, allow_new_teams=allow_new_teams), path=str(games))
        summary = store_replay(conn, forecasts, model_id=record.model_id, model_ref=record.ref,
                               k_factor=config.k_factor, sport=config.sport, create_missing_teams=create_teams,
                               source=str(games))
    result = {
        "model": record.ref, "games": summary.games, "rated_games": summary.rated_games,
        "history_rows_added": summary.history_rows_added, "teams_updated": summary.teams_updated,
        "teams_created": summary.teams_created, "teams_without_history": summary.teams_without_history,
        "ratings": {c: summary.final_ratings[c] for c in summary.teams_updated},
    }
    if as_json:
        print_json(result)
        return
    console.print(f"{record.ref}: replayed {summary.games} games ({summary.rated_games} with results); "
                  f"added {summary.history_rows_added} elo_rating_history rows; "
                  f"updated {len(summary.teams_updated)} teams", highlight=False)
    if summary.teams_created:
        console.print(f"created {len(summary.teams_created)} teams: {', '.join(summary.teams_created)}", highlight=False)
    if summary.teams_without_history:
        codes = ", ".join(sorted(summary.teams_without_history))
        console.print(f"{len(summary.teams_without_history)} teams in the file are not in the teams table (rated "
                      f"during the replay, no history written; --create-teams adds them): {codes}", highlight=False)
    ranked = sorted(((summary.final_ratings[c], c) for c in summary.teams_updated), reverse=True)
    print_table("current ratings", ["team", "elo"], ((c, f"{r:.2f}") for r, c in ranked))


@elo_app.command("update")
def elo_update(
    sport: str = typer.Option("nfl", "--sport", help="Sport whose final results to apply."),
    model: str | None = typer.Option(None, "--model", help="Elo version to update, NAME or NAME@VERSION "
                                     "(default: the sport's active Elo version)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be applied; write nothing."),
    rebuild_from: str | None = typer.Option(
        None, "--rebuild-from", metavar="YYYY-MM-DD",
        help="First take back the ratings of the games rated from this day on, then play every final result from "
             "it again in order (results stored late, corrected scores)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Apply the final results ingested from ESPN (game_states) that the Elo version has not rated yet.

    Updates teams.current_elo_rating and appends elo_rating_history (game key espn:<sport>:<ESPN id>); a game is
    applied once. The ingestion process does this by itself (probability_models.elo.auto_update). A result stored
    after a later game of its team was rated, or a corrected final score, needs --rebuild-from its day.

    Example: precog forecast elo update --dry-run
    """
    from precog.forecast.elo_update import rated_later_since, update_from_results

    since = _day(rebuild_from, "--rebuild-from")
    with database() as conn:
        summary = update_from_results(conn, sport=sport.strip().lower(), model=model, dry_run=dry_run,
                                      rebuild_from=since)
    if as_json:
        print_json(summary.as_dict())
        return
    verb = "would apply" if dry_run else "applied"
    skipped = summary.skipped_by_reason()
    if summary.rebuilt_from is not None:
        console.print(f"{summary.model}: {'would take' if dry_run else 'took'} back "
                      f"{summary.history_rows_removed} elo_rating_history rows from "
                      f"{summary.rebuilt_from.isoformat()} on", highlight=False)
    console.print(f"{summary.model}: {verb} {len(summary.applied)} final {summary.sport} results; "
                  f"{summary.already_applied} already applied"
                  + (f"; skipped {len(summary.skipped)} ({', '.join(f'{k} {v}' for k, v in sorted(skipped.items()))})"
                     if skipped else "")
                  + ("" if dry_run else f"; added {summary.history_rows_added} elo_rating_history rows"),
                  highlight=False)
    if summary.applied:
        print_table(f"games {verb.split()[-1]}", ["date", "game", "score", "P(home)"],
                    ((g.date.isoformat(), f"{g.away} @ {g.home}" + (" (neutral)" if g.neutral else "")
                      + (" (playoff)" if g.playoff else ""), f"{g.away_score}-{g.home_score}", fmt(g.p_home))
                     for g in summary.applied))
        print_table("ratings", ["team", "before", "after"],
                    ((code, fmt(before, 2), fmt(after, 2)) for code, (before, after) in sorted(summary.teams.items())))
    for s in summary.skipped:
        console.print(f"skipped {s.game_key}: {s.detail}", highlight=False)
    late = rated_later_since(summary)
    if late is not None:
        console.print(f"results older than games already rated are skipped; if they are not games the ratings "
                      f"already include (a training file), `precog forecast elo update --sport {summary.sport} "
                      f"--rebuild-from {late.isoformat()}` plays them in order", highlight=False)


@elo_app.command("tune")
def elo_tune(
    games: Path = typer.Option(..., "--games", help="Games file in the 538 column format, with scores."),
    train_seasons: str = typer.Option("1990-2009", "--train-seasons", help="Seasons whose Brier ranks the configs."),
    test_seasons: str | None = typer.Option("2010-2014", "--test-seasons",
                                            help="Seasons scored for reporting only (never used to choose)."),
    k: str | None = typer.Option("19,20,21", "--k", help="K factors to try (comma-separated)."),
    hfa: str | None = typer.Option("60,65,70", "--hfa", help="Home-field advantages to try."),
    regression: str | None = typer.Option("0.3333,0.4,0.45,0.5,0.55", "--regression",
                                          help="Season regression fractions to try."),
    playoff: str | None = typer.Option("1.0,1.2,1.3,1.4,1.5", "--playoff", help="Playoff rating-difference multipliers."),
    initial_elos: Path | None = typer.Option(None, "--initial-elos", help=INITIAL_HELP),
    top: int = typer.Option(5, "--top", min=1, help="How many configs to show."),
    save_config: Path | None = typer.Option(None, "--save-config",
                                            help="Write the best config as JSON (for `precog models create`)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Grid-search Elo hyper-parameters on training seasons; report held-out seasons next to 538's forecast.

    Example: precog forecast elo tune --games ../shared/data/nfl/fivethirtyeight_nfl_games_1920_2014.csv --save-config elo.json
    """
    from precog.forecast.elo import FIVETHIRTYEIGHT_CONFIG, tune
    from precog.forecast.gamesfile import read_games

    train_range = _seasons(train_seasons, "--train-seasons")
    test_range = _seasons(test_seasons, "--test-seasons") if test_seasons else None
    grid = {name: values for name, values in (
        ("k_factor", _floats(k, "--k")), ("home_field_advantage", _floats(hfa, "--hfa")),
        ("season_regression", _floats(regression, "--regression")), ("playoff_multiplier", _floats(playoff, "--playoff")),
    ) if values}
    _check_grid(FIVETHIRTYEIGHT_CONFIG, grid)
    with user_errors():
        game_list = read_games(games, require_results=True)
        initial = _initial_ratings(initial_elos, quiet=as_json)
        results = tune(game_list, initial, base=FIVETHIRTYEIGHT_CONFIG, train_seasons=train_range,
                       test_seasons=test_range, grid=grid)
    published: float | None = None
    if test_range:
        pub = [(g.published_prob1, g.result1) for g in game_list
               if test_range[0] <= g.season <= test_range[1] and g.published_prob1 is not None and g.result1 is not None]
        if pub:
            published = sum((p - y) ** 2 for p, y in pub) / len(pub)  # type: ignore[operator]
    best = results[0]
    if save_config:
        save_config.write_text(json.dumps(best.config.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    rows = [{"rank": i + 1, **{n: getattr(r.config, n) for n in grid}, "train_brier": round(r.train_brier, 6),
             "test_brier": None if r.test_brier is None else round(r.test_brier, 6)} for i, r in enumerate(results[:top])]
    if as_json:
        print_json({"train_seasons": train_range, "test_seasons": test_range, "configs_tried": len(results),
                    "top": rows, "published_test_brier": None if published is None else round(published, 6),
                    "best_config": best.config.model_dump(mode="json")})
        return
    print_table(f"{len(results)} configs ranked by Brier on seasons {train_range[0]}-{train_range[1]}",
                ["rank", *grid, "train Brier", "test Brier"],
                ([r["rank"], *(r[n] for n in grid), fmt(r["train_brier"], 6), fmt(r["test_brier"], 6)] for r in rows))
    if published is not None and test_range:
        console.print(f"538's published elo_prob1 on seasons {test_range[0]}-{test_range[1]}: Brier {published:.6f}; "
                      f"best config (chosen on training seasons only): {fmt(best.test_brier, 6)}", highlight=False)
    if save_config:
        console.print(f"best config written to {save_config}", highlight=False)


# ------------------------------------------------------------------------------------------------ wp
@wp_app.command("train")
def wp_train(
    plays: Path = typer.Option(..., "--plays", help="Plays file in the shared data's nflfastR format (.csv or .csv.gz)."),
    name: str = typer.Option("wp_nfl", "--name", help="Model name to add a version to."),
    version: str | None = typer.Option(None, "--version", help="Version to create (default: next minor, e.g. v1.1)."),
    config_file: Path | None = typer.Option(None, "--config", help="JSON training config (see docs/models.md)."),
    holdout: float | None = typer.Option(None, "--holdout", help="Share of games held out for validation (default 0.2)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train a new in-game WP model version, store its artifact and register it (status validating).

    Games are held out by game id (no play of a held-out game is trained on); the held-out score is recorded
    as the version's first evaluation. Nothing is registered if anything fails.

    Example: precog forecast wp train --plays ../shared/data/nfl/nflfastr_wp_plays_2020_2022.csv.gz
    """
    from precog.forecast.wp_versions import train_version

    base: dict[str, Any] = {}
    if config_file is not None:
        try:
            base = json.loads(config_file.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{config_file}: not a readable JSON config ({exc})") from exc
        if not isinstance(base, dict):
            raise UserError(f"{config_file}: the config must be a JSON object")
    if holdout is not None:
        if holdout <= 0:
            raise UserError("--holdout must be > 0: a version needs held-out games to be validated")
        base["holdout_fraction"] = holdout
    with database() as conn:
        trained = train_version(conn, plays, name=name, version=version, base_config=base, created_by=who())
    if as_json:
        print_json(trained.as_dict())
        return
    console.print(f"trained {trained.ref} on {trained.train_plays} plays of {trained.train_games} games; "
                  f"held out {trained.test_games} games ({trained.test_plays} plays)", highlight=False)
    console.print(f"held-out Brier {fmt(trained.test_brier)} (file's wp: {fmt(trained.published_test_brier)}); "
                  f"artifact {trained.artifact} sha256 {trained.artifact_sha256}; status {trained.status}",
                  highlight=False)


def _wp_model(ref: str | None) -> tuple[Any, str]:
    """The WpModel for `--model`: 'builtin' = the packaged default (no DB); a registry ref otherwise."""
    from precog.forecast.builtin import load_builtin_wp, resolve_artifact
    from precog.forecast.registry import get_model
    from precog.forecast.winprob import WpModel

    if ref == "builtin":
        return load_builtin_wp(), "wp_nfl@v1.0 (shipped)"
    from precog.db.connection import DatabaseUnavailable

    try:
        with database() as conn:
            record = get_model(conn, ref or "wp_nfl")
    except DatabaseUnavailable as exc:
        if ref is not None:
            raise
        err_console.print(f"note: {exc}; using the shipped wp_nfl v1.0", highlight=False)
        return load_builtin_wp(), "wp_nfl@v1.0 (shipped)"
    if record.model_type != "regression" or not record.artifact_path or not record.artifact_sha256:
        raise UserError(f"{record.ref} is not a trained WP model (type {record.model_type})")
    return WpModel.load(resolve_artifact(record.artifact_path), record.artifact_sha256), record.ref


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{option} must be a date YYYY-MM-DD, got {text!r}") from None


@wp_app.command("export")
def wp_export(
    out: Path = typer.Option(..., "--out", help="Plays file to write (.csv or .csv.gz)."),
    base: Path | None = typer.Option(None, "--base", help="A plays file whose rows come first (e.g. the shipped "
                                     "nflfastR file), so one file trains on both."),
    start: str | None = typer.Option(None, "--from", metavar="YYYY-MM-DD", help="First game day (Eastern)."),
    end: str | None = typer.Option(None, "--to", metavar="YYYY-MM-DD", help="Last game day (Eastern)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write the in-game states ESPN ingestion stored for finished NFL games as a WP training plays file.

    Each usable live state (possession, down and distance, yards to the goal, timeouts, clock, score) becomes a
    row in the nflfastR plays format with the game's final score as its outcome; train on it with
    `precog forecast wp train --plays FILE` (docs/models.md, Keeping the WP model current).

    Example: precog forecast wp export --base ../shared/data/nfl/nflfastr_wp_plays_2020_2022.csv.gz --out plays.csv.gz
    """
    from precog.forecast.state_plays import export_plays

    first, last = _day(start, "--from"), _day(end, "--to")
    if first is not None and last is not None and first > last:
        raise UserError(f"--from {first} is after --to {last}")
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name (.csv or .csv.gz)")
    with database() as conn:
        summary = export_plays(conn, out, start=first, end=last, base=base)
    if as_json:
        print_json(summary.as_dict())
        return
    left = ", ".join(f"{k} {v}" for k, v in sorted(summary.left_out.items()))
    console.print(f"wrote {summary.rows} in-game states of {summary.games} finished NFL games"
                  + (f" (seasons {', '.join(map(str, summary.seasons))})" if summary.seasons else "")
                  + (f" after {summary.base_rows} plays of {base}" if base is not None else "")
                  + f" to {out}" + (f"; states left out: {left}" if left else "")
                  + (f"; {summary.games_left_out} finished games had no usable state" if summary.games_left_out
                     else ""), highlight=False)


@wp_app.command("refit")
def wp_refit(
    force: bool = typer.Option(False, "--force", help="Train now even when no refit is due (needs a finished game "
                               "with in-game states)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train a new WP version on the ingested in-game states when one is due (probability_models.wp.auto_refit).

    The ingestion process does this by itself; this runs the same check (and the refit) once. The new version is
    validating: evaluate it and promote it by hand (docs/models.md, Keeping the WP model current).

    Example: precog forecast wp refit --force
    """
    from datetime import UTC, datetime

    from precog.config.loader import load_config
    from precog.forecast.wp_refit import RefitDecision, RefitSettings, decide, refit
    from precog.paths import precog_home

    settings = RefitSettings.from_config(load_config())
    with database() as conn:
        decision = decide(conn, settings, datetime.now(UTC))
        if force and not decision.due:
            if decision.through is None:
                raise UserError("no finished NFL game with in-game states is stored: nothing to train on")
            decision = RefitDecision(True, f"forced ({decision.reason})", decision.new_games, decision.since,
                                     decision.through)
        trained = refit(conn, settings, decision, precog_home() / "training") if decision.due else None
    out = {"due": decision.due, "reason": decision.reason, "new_games": decision.new_games,
           "since": None if decision.since is None else decision.since.isoformat(),
           "through": None if decision.through is None else decision.through.isoformat(),
           "trained": None if trained is None else trained.as_dict()}
    if as_json:
        print_json(out)
        return
    if trained is None:
        console.print(f"no refit: {decision.reason}", highlight=False)
        return
    console.print(f"trained {trained.ref} ({decision.reason}) on {trained.train_plays} plays of "
                  f"{trained.train_games} games; held-out Brier {fmt(trained.test_brier)} on {trained.test_games} "
                  f"games; status {trained.status}", highlight=False)


@wp_app.command("predict")
def wp_predict(
    plays: Path = typer.Option(..., "--plays", help="Plays file in the shared data's nflfastR format."),
    out: Path = typer.Option(..., "--out", help="Where to write row,p_posteam (CSV; row = 0-based play index)."),
    model: str | None = typer.Option(None, "--model", help="WP version, e.g. wp_nfl@v1.1; 'builtin' = the shipped "
                                     "model without a database (default: the newest active wp_nfl)."),
    no_strength: bool = typer.Option(False, "--no-strength",
                                     help="Ignore pre-game strength (otherwise an Elo replay of the file's games)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Score every play of a file: P(team with the ball wins).

    Pre-game strength comes from an Elo replay of the file's own earlier games (when it has final scores).

    Example: precog forecast wp predict --plays ../shared/data/nfl/nflfastr_wp_plays_2020_2022.csv.gz --out wp.csv
    """
    from precog.forecast.metrics import score
    from precog.forecast.plays import read_plays
    from precog.forecast.winprob import model_inputs

    with user_errors():
        data = read_plays(plays)
        wp_model, ref = _wp_model(model)
        cfg = wp_model.config.model_copy(update={"use_strength": wp_model.config.use_strength and not no_strength})
        p = wp_model.predict(model_inputs(data, cfg))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        fh.write("row,p_posteam\n")
        fh.writelines(f"{i},{v:.6f}\n" for i, v in enumerate(p))
    tmp.replace(out)
    summary: dict[str, Any] = {"model": ref, "plays": len(data), "out": str(out)}
    if data.has_outcomes:
        s = score(p, data.outcome())
        summary["brier_all_plays"] = round(s.brier, 6)
        seen = sum(1 for g in data.game_id if str(g) in wp_model.train_games)
        summary["plays_of_training_games"] = seen
    if as_json:
        print_json(summary)
        return
    console.print(f"{ref}: scored {len(data)} plays -> {out}", highlight=False)
    if "brier_all_plays" in summary:
        console.print(f"Brier on all plays {summary['brier_all_plays']:.4f} ({summary['plays_of_training_games']} plays "
                      "are from games the model was trained on: use `precog forecast evaluate` for honest scores)",
                      highlight=False)


# ------------------------------------------------------------------------------------------------ matrices
@matrix_app.command("build")
def matrix_build(
    plays: Path = typer.Option(..., "--plays", help="Plays file (nflfastR format) with final scores."),
    scores: Path | None = typer.Option(None, "--scores", help="Optional spreadspoke scores file with closing "
                                       "spreads, for the pre-game favourite matrix."),
    teams_file: Path | None = typer.Option(None, "--teams", help="nfl_teams.csv (team names -> codes) for --scores "
                                           "(default: next to the scores file)."),
    version: str = typer.Option("v1.0", "--version", help="Matrix version (vMAJOR.MINOR)."),
    replace: bool = typer.Option(False, "--replace", help="Rebuild an existing version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Build the historical matrices (score at each quarter boundary -> P(leader wins)) and store them.

    Example: precog forecast matrix build --plays ../shared/data/nfl/nflfastr_wp_plays_2020_2022.csv.gz --scores ../shared/data/nfl/spreadspoke_scores_1966_2014.csv
    """
    from precog.forecast import matrices
    from precog.forecast.plays import read_plays
    from precog.forecast.registry import parse_version

    with user_errors():
        parse_version(version)
        data = read_plays(plays, require_outcomes=True)
        cells = matrices.build_game_state_cells(data)
        skipped = 0
        if scores is not None:
            teams_path = teams_file or scores.with_name("nfl_teams.csv")
            spread_cells, skipped = matrices.build_spread_cells(scores, teams_path if teams_path.exists() else None)
            cells += spread_cells
    with database() as conn, user_errors():
        n = matrices.store(conn, cells, version, replace=replace)
        entries = matrices.load(conn, version=version)
    rows = matrices.compare_benchmarks(entries)
    if as_json:
        print_json({"version": version, "cells": n, "spread_rows_skipped": skipped,
                    "benchmarks": [_bench_json(r) for r in rows]})
        return
    console.print(f"stored {n} matrix cells (version {version})"
                  + (f"; {skipped} scores rows without a usable spread were skipped" if scores else ""), highlight=False)
    _print_benchmarks(rows)


def _bench_json(r: Any) -> dict[str, Any]:
    return {"situation": r.benchmark.label, "published": r.benchmark.expected, "published_n": r.benchmark.published_n,
            "ours": None if r.ours is None else round(r.ours, 4), "n": r.n,
            "ci95": None if r.ci is None else [round(r.ci[0], 4), round(r.ci[1], 4)],
            "state_descriptor": r.benchmark.state_descriptor, "value_bucket": r.benchmark.value_bucket}


def _print_benchmarks(rows: list[Any]) -> None:
    def cell(r: Any) -> list[str]:
        if r.ours is None:
            return [r.benchmark.label, r.benchmark.expected + (f" (n={r.benchmark.published_n})" if r.benchmark.published_n else ""),
                    "not built", "", ""]
        return [r.benchmark.label, r.benchmark.expected + (f" (n={r.benchmark.published_n})" if r.benchmark.published_n else ""),
                f"{r.ours:.1%}", f"{r.ci[0]:.1%}-{r.ci[1]:.1%}", str(r.n)]

    print_table("spec 7.2 benchmarks vs our data", ["situation", "published", "ours", "95% CI", "n"], (cell(r) for r in rows))


@matrix_app.command("show")
def matrix_show(
    state: str | None = typer.Option(None, "--state", help="State descriptor: end_Q1, halftime, end_Q3, pregame."),
    bucket: str | None = typer.Option(None, "--bucket", help="Value bucket, e.g. 10-13_points, favorite_7_points."),
    leader: str | None = typer.Option(None, "--leader", help="Situational factor: home or away leads."),
    version: str = typer.Option("v1.0", "--version", help="Matrix version."),
    benchmarks: bool = typer.Option(True, "--benchmarks/--no-benchmarks", help="Also show the spec's benchmarks."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Query stored matrices: state descriptor + value bucket -> probability, 95% CI, sample size.

    Example: precog forecast matrix show --state halftime --bucket 10-13_points --leader home
    """
    from precog.forecast import matrices

    if leader not in (None, "home", "away"):
        raise UserError("--leader must be home or away")
    with database() as conn:
        entries = matrices.load(conn, version=version, state_descriptor=state, value_bucket=bucket)
        all_entries = matrices.load(conn, version=version) if benchmarks else []
    if leader is not None:
        entries = [e for e in entries if e.situational_factors.get("leader") == leader]
    if not entries:
        raise UserError(f"no matrix cells for version {version}" + (f", state {state}" if state else "")
                        + (f", bucket {bucket}" if bucket else "") + " (build them with `precog forecast matrix build`)")
    rows = matrices.compare_benchmarks(all_entries) if benchmarks else []
    if as_json:
        print_json({"cells": [e.as_dict() for e in entries], "benchmarks": [_bench_json(r) for r in rows]})
        return
    print_table(f"probability matrices {version}", ["state", "bucket", "factors", "P(win)", "95% CI", "n", "matrix"],
                ([e.state_descriptor, e.value_bucket,
                  ", ".join(f"{k}={v}" for k, v in sorted(e.situational_factors.items())) or "-",
                  str(e.win_probability), f"{e.ci_lower}-{e.ci_upper}", str(e.sample_size), e.matrix_name]
                 for e in entries))
    if rows:
        _print_benchmarks(rows)


# ------------------------------------------------------------------------------------------------ evaluate
@forecast_app.command("evaluate")
def evaluate_cmd(
    model: str = typer.Option(..., "--model", help="NAME@VERSION from the registry (a bare NAME = newest active)."),
    games: Path | None = typer.Option(None, "--games", help="Games file (538 format) for pre-game models."),
    plays: Path | None = typer.Option(None, "--plays", help="Plays file (nflfastR format) for in-game models."),
    from_season: int | None = typer.Option(None, "--from-season", help="Score seasons >= this; for plays: walk "
                                           "forward (re-fit on earlier seasons for every season scored)."),
    folds: int | None = typer.Option(None, "--folds", help="Plays only: K-fold cross-validation grouped by game id."),
    initial_elos: Path | None = typer.Option(None, "--initial-elos", help=INITIAL_HELP),
    allow_new_teams: bool = typer.Option(False, "--allow-new-teams", help="Games: start unknown teams at the initial rating."),
    png: Path | None = typer.Option(None, "--png", help="Reliability diagram path (default reliability-NAME-VERSION.png)."),
    record: bool = typer.Option(False, "--record", help="Store the result as the version's evaluation "
                                "(validation_* columns; needed before promotion to active)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Brier, log loss, accuracy, calibration by decile and a reliability diagram, next to the file's own forecast.

    Examples:
      precog forecast evaluate --model elo_nfl@v1.0 --games ../shared/data/nfl/fivethirtyeight_nfl_games_1920_2014.csv --from-season 2010
      precog forecast evaluate --model wp_nfl@v1.0 --plays ../shared/data/nfl/nflfastr_wp_plays_2020_2022.csv.gz --folds 5
    """
    from precog.forecast.builtin import resolve_artifact
    from precog.forecast.configs import EnsembleConfig
    from precog.forecast.elo import EloConfig
    from precog.forecast.evaluate import evaluate_games, evaluate_plays
    from precog.forecast.gamesfile import read_games
    from precog.forecast.metrics import CALIBRATION_MIN_N, max_calibration_error
    from precog.forecast.plays import read_plays
    from precog.forecast.registry import get_model, record_evaluation
    from precog.forecast.winprob import WpConfig, WpModel, sha256_file

    if (games is None) == (plays is None):
        raise UserError("give exactly one of --games (pre-game models) or --plays (in-game models)")
    if folds is not None and games is not None:
        raise UserError("--folds applies to --plays only (games are always scored walk-forward)")
    with database() as conn:
        rec = get_model(conn, model)
        with user_errors():
            elo_cfg = None
            if rec.model_type == "ensemble":
                ens = EnsembleConfig.model_validate(rec.config)
                elo_cfg = EloConfig.model_validate(get_model(conn, ens.elo_model).config)
            if games is not None:
                game_list = read_games(games, require_results=True)
                initial = _initial_ratings(initial_elos, quiet=as_json) if rec.model_type in ("elo", "ensemble") else None
                report = evaluate_games(game_list, model_ref=rec.ref, model_type=rec.model_type, config=rec.config,
                                        data_file=str(games), initial=initial, from_season=from_season,
                                        allow_new_teams=allow_new_teams, elo_config=elo_cfg)
            else:
                assert plays is not None
                data = read_plays(plays, require_outcomes=True)
                wp_rec = rec
                if rec.model_type == "ensemble":
                    wp_rec = get_model(conn, EnsembleConfig.model_validate(rec.config).winprob_model)
                if wp_rec.model_type != "regression":
                    raise UserError(f"{rec.ref} is a {rec.model_type} model: evaluate it on a games file (--games)")
                artifact = None
                if wp_rec.artifact_path and wp_rec.artifact_sha256:
                    artifact = WpModel.load(resolve_artifact(wp_rec.artifact_path), wp_rec.artifact_sha256)
                report = evaluate_plays(data, model_ref=rec.ref, model_type=rec.model_type, config=rec.config,
                                        data_file=str(plays), model=artifact, from_season=from_season, folds=folds,
                                        ensemble_wp_config=WpConfig.model_validate(wp_rec.config), elo_config=elo_cfg)
        degraded: str | None = None
        png_path = png or Path(f"reliability-{rec.model_name}-{rec.model_version}.png")
        report.reliability_png(png_path)
        s = report.scores
        if record:
            data_path = games or plays
            assert data_path is not None
            pub = report.published_scores
            previous = record_evaluation(
                conn, rec, data_file=str(data_path), data_sha256=sha256_file(data_path), from_season=from_season,
                sample_size=s.n, brier=s.brier, log_loss=s.log_loss, accuracy=s.accuracy,
                max_calibration_error=max_calibration_error(report.calibration, CALIBRATION_MIN_N),
                published_brier=None if pub is None else pub.brier, metrics=report.to_json() | {"folds": folds},
                created_by=who())
            degraded = _alert_if_degraded(rec.ref, previous, s.brier, s.n, str(data_path))
    result = report.to_json() | {"png": str(png_path), "recorded": record}
    if degraded:
        result["model_degradation"] = degraded
        err_console.print(f"warning: {degraded}")
    if as_json:
        print_json(result)
        return
    _print_report(report, png_path, record)


def _alert_if_degraded(ref: str, previous: Any, brier: float, n: int, data_file: str) -> str | None:
    """Spec 8.2's model degradation source: a recorded evaluation whose Brier is at least
    probability_models.degradation_alert_pct worse than the version's previous validation Brier raises
    `model_degradation` (medium). Returns the alert's message, None when the model held up."""
    from decimal import Decimal

    from precog.alerts.manager import AlertManager
    from precog.config.loader import load_config
    from precog.db.connection import database_url
    from precog.forecast.registry import degradation

    url = database_url()
    pct = Decimal(str(load_config(db_url=url).get("probability_models.degradation_alert_pct")))
    worse = degradation(previous, brier, pct)
    if worse is None:
        return None
    new = Decimal(str(round(brier, 6)))
    message = (f"{ref}: Brier {new} on {Path(data_file).name} ({n} forecasts) is {worse * 100:.1f}% worse than its "
               f"previous validation Brier {previous} (alert at {pct * 100:.0f}%: "
               "probability_models.degradation_alert_pct)")
    with AlertManager(url) as manager:
        manager.raise_alert("model_degradation", "medium", "forecasting", message,
                            {"model": ref, "brier": str(new), "previous_brier": str(previous),
                             "worse_by": str(worse.quantize(Decimal("0.0001"))), "sample_size": n,
                             "data_file": data_file, "alert_pct": str(pct)},
                            dedup_key=f"model_degradation:{ref}", category="trading")
    return message


def _print_report(report: Any, png_path: Path, recorded: bool) -> None:
    s, pub = report.scores, report.published_scores
    label = "538 elo_prob1" if report.kind == "games" else "nflfastR wp"
    rows = [[report.model_ref, str(s.n), fmt(s.brier), fmt(s.log_loss), fmt(s.accuracy)]]
    if pub is not None:
        rows.append([f"{label} (same rows)", str(pub.n), fmt(pub.brier), fmt(pub.log_loss), fmt(pub.accuracy)])
    print_table(f"{report.model_ref} on {Path(report.data_file).name}"
                + (f", seasons >= {report.from_season}" if report.from_season else ""),
                ["forecast", "n", "Brier", "log loss", "accuracy"], rows)
    seasons = report.by_season()
    if len(seasons) > 1:
        print_table("by season" + (" (walk-forward: re-fitted before each season)" if report.from_season and report.kind == "plays"
                                   else " (online replay: each game forecast before its result)" if report.kind == "games"
                                   else ""), ["season", "n", "Brier", "log loss", "accuracy", f"{label} Brier"],
                    ([str(r.season), str(r.scores.n), fmt(r.scores.brier), fmt(r.scores.log_loss),
                      fmt(r.scores.accuracy), fmt(r.published.brier) if r.published else "-"] for r in seasons))
    pub_cal = report.published_calibration

    def status(b: Any) -> str:
        if b.within_target is None:
            return "n<500"
        return "ok" if b.within_target else "OFF"

    print_table("calibration by decile (target: |observed - forecast| <= 0.03 where n >= 500)",
                ["decile", "n", "mean forecast", "observed", "gap", "target"]
                + ([f"{label} gap"] if pub_cal else []),
                ([f"{b.lower:.1f}-{b.upper:.1f}", str(b.n), fmt(b.mean_forecast), fmt(b.observed),
                  f"{b.gap:+.4f}" if b.n else "-", status(b)]
                 + ([f"{c.gap:+.4f}" if c.n else "-"] if pub_cal else [])
                 for i, (b, c) in enumerate(zip(report.calibration, pub_cal or report.calibration, strict=True))))
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"reliability diagram: {png_path}" + ("; recorded as the version's evaluation" if recorded else ""),
                  highlight=False)


# ------------------------------------------------------------------------------------------------ health
@forecast_app.command("health")
def health_cmd(
    model: str | None = typer.Option(None, "--model", help="NAME@VERSION (a bare NAME = newest active); "
                                     "default: every version with positions held to settlement."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Model health from the paper/live positions held to settlement (spec 7.3 monitoring): accuracy, Brier,
    calibration error, edge profitability and recent/historical Brier per version, each against its
    probability_models.health threshold; status ok, degraded or insufficient (too few positions to judge).

    The engine runs the same check after every settlement and raises model_degradation; this view raises nothing.

    Example: precog forecast health --model elo_nfl@v1.0
    """
    from datetime import UTC, datetime

    from precog.config.loader import load_config
    from precog.db.migrate import ensure_migrated
    from precog.forecast.health import HealthSettings, health_report
    from precog.forecast.registry import get_model

    # Migrated first: the overrides the configuration reads live in a table of the schema.
    settings = HealthSettings.from_config(load_config(db_url=ensure_migrated()))
    now = datetime.now(UTC)
    with database() as conn:
        ids = None if model is None else [get_model(conn, model).model_id]
        report = health_report(conn, settings, now, ids)
    if as_json:
        print_json({"as_of": now.isoformat(), "settings": settings.as_dict(),
                    "models": [h.as_dict() for h in report]})
        return
    if not report:
        console.print("no model version has paper or live positions held to settlement yet", highlight=False)
        return

    def cell(h: Any, metric: str, value: float | None) -> str:
        c = h.checks[metric]
        return fmt(value) + (" !" if c.status == "degraded" else "")

    print_table(f"model health: positions held to settlement (recent = last {settings.recent_window_days} days; "
                "! = past its threshold)",
                ["model", "n", "accuracy", "Brier", "calibration error", "edge profitability", "recent/historical",
                 "status"],
                ([h.ref, str(h.n), cell(h, "accuracy", h.accuracy), fmt(h.brier),
                  cell(h, "calibration_error", h.calibration_error),
                  cell(h, "edge_profitability", h.edge_profitability),
                  cell(h, "recent_performance", h.recent_ratio) + f" (n {h.recent_n})", h.status] for h in report))
    console.print(f"thresholds: accuracy >= {settings.min_accuracy}, calibration error <= "
                  f"{settings.max_calibration_error} (judged from {settings.calibration_min_positions} positions), "
                  f"edge profitability >= {settings.min_edge_profitability}, recent/historical >= "
                  f"{settings.min_recent_performance}; judged from {settings.min_settled_positions} positions "
                  "(probability_models.health)", highlight=False)
    for h in report:
        if h.without_forecast:
            console.print(f"note: {h.ref}: {h.without_forecast} settled positions have no stored entry forecast "
                          "and are left out", highlight=False)


# ------------------------------------------------------------------------------------------------ one forecast
def _clock(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        if ":" in text:
            m, s = text.split(":", 1)
            return int(m) * 60 + int(s)
        return int(text)
    except ValueError:
        raise UserError(f"--clock: {text!r} is not MM:SS or seconds") from None


@forecast_app.command("predict")
def predict_cmd(
    home: str = typer.Argument(..., help="Home team code (e.g. KC)."),
    away: str = typer.Argument(..., help="Away team code (e.g. BUF)."),
    model: str = typer.Option("ensemble_nfl", "--model", help="Registry model (name = newest active, or NAME@VERSION)."),
    period: int | None = typer.Option(None, "--period", help="Quarter 1-4 (5+ overtime); omit for a pre-game forecast."),
    clock: str | None = typer.Option(None, "--clock", help="Clock left in the period, MM:SS."),
    home_score: int = typer.Option(0, "--home-score"),
    away_score: int = typer.Option(0, "--away-score"),
    possession: str | None = typer.Option(None, "--possession", help="home or away."),
    down: int | None = typer.Option(None, "--down"),
    distance: int | None = typer.Option(None, "--distance", help="Yards to go for a first down."),
    yards_to_goal: int | None = typer.Option(None, "--yards-to-goal", help="Distance of the ball from the goal line "
                                             "the team with the ball attacks."),
    home_timeouts: int | None = typer.Option(None, "--home-timeouts"),
    away_timeouts: int | None = typer.Option(None, "--away-timeouts"),
    halftime: bool = typer.Option(False, "--halftime", help="The game is at halftime."),
    neutral: bool = typer.Option(False, "--neutral", help="Pre-game: neutral site."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One forecast, pre-game or for a game state: P(home wins) as a Decimal with its confidence.

    Examples: precog forecast predict KC BUF ; precog forecast predict KC BUF --period 4 --clock 2:00 --home-score 20 --away-score 17 --possession away --down 1 --distance 10 --yards-to-goal 60
    """
    from precog.forecast.interface import load_model
    from precog.forecast.state import SimpleState

    if home.upper() == away.upper():
        raise UserError(f"home and away are the same team ({home.upper()})")
    in_game = {"--clock": clock, "--home-score": home_score or None, "--away-score": away_score or None,
               "--possession": possession, "--down": down, "--distance": distance, "--yards-to-goal": yards_to_goal,
               "--home-timeouts": home_timeouts, "--away-timeouts": away_timeouts}
    given = [name for name, value in in_game.items() if value is not None]
    if period is None and not halftime and given:
        # without a period the forecast is pre-game: the state the user typed would be silently ignored
        raise UserError(f"{', '.join(given)} {'describes' if len(given) == 1 else 'describe'} a game in progress: give --period (or --halftime) too")
    with database() as conn:
        forecaster = load_model(conn, model)
    with user_errors():
        if period is None and not halftime:
            result = forecaster.predict_pregame(home, away, neutral=neutral)
        else:
            state = SimpleState(home.upper(), away.upper(), home_score, away_score, period if period is not None else 2,
                                _clock(clock) if not halftime else 0, "halftime" if halftime else "live", possession,
                                down, distance, yards_to_goal, home_timeouts, away_timeouts)
            result = forecaster.predict_state(state, neutral=neutral)
    if as_json:
        print_json(result.as_dict() | {"home": home.upper(), "away": away.upper()})
        return
    console.print(f"{result.model_ref}: P({home.upper()} beats {away.upper()}) = {result.probability} "
                  f"(confidence {result.confidence}, score {result.confidence_score})", highlight=False)
    if result.components:
        console.print("components: " + ", ".join(f"{k} {v}" for k, v in result.components.items()), highlight=False)
