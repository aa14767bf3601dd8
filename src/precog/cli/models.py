"""`precog models ...`: the model registry (immutable versions, config hash, lifecycle of spec 8.1)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.forecast import database, user_errors, who
from precog.cli.output import console, print_json, print_table

models_app = typer.Typer(help="Model registry: list, show, create, promote, deprecate model versions.",
                         no_args_is_help=True)

NEXT_STEP = {"draft": "testing", "training": "validating", "validating": "testing", "testing": "active"}
# the sports a market (and so a model's forecast) can have: the CHECK of markets.sport / events.sport
MARKET_SPORTS = ("nfl", "ncaaf", "nba", "ncaab", "mlb", "nhl", "soccer", "tennis", "ufc")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _short(record: Any) -> dict[str, Any]:
    return {"model_id": record.model_id, "ref": record.ref, "type": record.model_type, "sport": record.sport,
            "status": record.status, "config_hash": record.config_hash,
            "validation_brier": record.validation_brier, "validation_sample_size": record.validation_sample_size,
            "activated_at": record.activated_at, "created_at": record.created_at}


@models_app.command("list")
def list_cmd(
    name: str | None = typer.Option(None, "--name", help="Only versions of this model."),
    status: str | None = typer.Option(None, "--status", help="Only this status (draft, training, validating, "
                                      "testing, active, deprecated)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """List model versions with status, config hash and validation score.

    Example: precog models list --status active
    """
    from precog.forecast.registry import list_models

    with database() as conn:
        records = list_models(conn, name=name, status=status)
    if as_json:
        print_json([_short(r) for r in records])
        return
    if not records:
        console.print("no model versions match")
        return
    print_table("probability models", ["id", "model", "type", "sport", "status", "config hash", "Brier", "n"],
                ([r.model_id, r.ref, r.model_type, r.sport or "-", r.status, (r.config_hash or "")[:12],
                  r.validation_brier if r.validation_brier is not None else "-",
                  r.validation_sample_size if r.validation_sample_size is not None else "-"] for r in records))


@models_app.command("show")
def show_cmd(
    ref: str = typer.Argument(..., help="NAME@VERSION (a bare NAME = its newest active version)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Show one version: its frozen config and hash, artifact, status history and evaluations.

    Example: precog models show wp_nfl@v1.0
    """
    from precog.forecast.registry import evaluations, get_model, status_history

    with database() as conn:
        record = get_model(conn, ref)
        history = status_history(conn, record.model_id)
        evals = evaluations(conn, record.model_id)
    if as_json:
        print_json(record.as_dict() | {"status_history": history, "evaluations": evals})
        return
    fields = {k: v for k, v in record.as_dict().items() if k not in ("config",) and v is not None}
    print_table(record.ref, ["field", "value"], fields.items())
    console.print("config (immutable):", highlight=False)
    console.print(json.dumps(record.config, indent=2, sort_keys=True), highlight=False, markup=False)
    print_table("status history", ["from", "to", "reason", "by", "at"],
                ([h["from_status"] or "-", h["to_status"], h["reason"] or "", h["changed_by"] or "", h["changed_at"]]
                 for h in history))
    if evals:
        print_table("evaluations", ["id", "file", "from season", "n", "Brier", "log loss", "accuracy", "max cal. err",
                                    "published Brier", "at"],
                    ([e["evaluation_id"], Path(e["data_file"]).name, e["from_season"] or "-", e["sample_size"], e["brier"],
                      e["log_loss"], e["accuracy"], e["max_calibration_error"], e["published_brier"] or "-",
                      e["created_at"]] for e in evals))


def _read_config(config_file: Path | None, config_json: str | None, model_type: str,
                 sport: str = "nfl") -> dict[str, Any]:
    if config_file is not None and config_json is not None:
        raise UserError("give --config or --config-json, not both")
    text: str | None = None
    source = "--config-json"
    if config_file is not None:
        source = str(config_file)
        try:
            text = sys.stdin.read() if str(config_file) == "-" else config_file.read_text()
        except OSError as exc:
            raise UserError(f"{config_file}: cannot read ({exc})") from exc
    elif config_json is not None:
        text = config_json
    from precog.forecast.configs import MODEL_TYPES

    if model_type not in MODEL_TYPES:  # before "a bogus model needs --config FILE"
        raise UserError(f"--type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    if sport not in MARKET_SPORTS:
        raise UserError(f"--sport {sport!r} is not one of {', '.join(MARKET_SPORTS)}")
    if text is None:
        if model_type == "elo" and not _elo_defaults_exist(sport):
            # a typo'd or unlisted sport would silently get generic Elo parameters
            raise UserError(f"no probability_models.elo.{sport} parameters in probability_models.yaml: add them, "
                            "or give --config-json '{...}'")
        if model_type in ("elo", "regression", "ensemble", "historical"):
            return _default_config(model_type, sport)
        raise UserError(f"a {model_type} model needs --config FILE or --config-json '{{...}}'")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{source}: the config must be a JSON object")
    return data


def _elo_defaults_exist(sport: str) -> bool:
    from precog.config.loader import load_config

    return bool(load_config(use_overrides=False).get(f"probability_models.elo.{sport}", None))


def _default_config(model_type: str, sport: str = "nfl") -> dict[str, Any]:
    """Defaults of a type from probability_models.yaml: an Elo version's parameters (`elo.<sport>`), an ensemble's
    weights and shrinkage. The version row keeps them (a version never changes after)."""
    if model_type not in ("ensemble", "elo"):
        return {}
    from precog.config.loader import load_config

    cfg = load_config(use_overrides=False)
    if model_type == "elo":
        params = cfg.get(f"probability_models.elo.{sport}", None) or {}
        # model configs are JSON numbers (floats are the Elo arithmetic's own type; not money)
        return {"sport": sport, **{k: float(v) for k, v in params.items()}}
    weights = cfg.get("probability_models.ensemble.weights", None) or {}
    shrinkage = cfg.get("probability_models.edge_detection.shrinkage_factor", None)
    out: dict[str, Any] = {"weights": {k: float(v) for k, v in weights.items()}}
    if shrinkage is not None:
        out["shrinkage"] = float(shrinkage)
    return out


@models_app.command("create")
def create_cmd(
    name: str = typer.Argument(..., help="Model name, e.g. elo_nfl."),
    version: str = typer.Argument(..., help="Semantic version vMAJOR.MINOR (minor: tuning, major: new logic)."),
    model_type: str = typer.Option(..., "--type", help="elo, regression, ensemble, historical, fixed, ml or market."),
    config_file: Path | None = typer.Option(None, "--config", help="JSON config file ('-' = stdin)."),
    config_json: str | None = typer.Option(None, "--config-json", help="JSON config inline."),
    sport: str = typer.Option("nfl", "--sport"),
    description: str | None = typer.Option(None, "--description"),
    notes: str | None = typer.Option(None, "--notes"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Register a new immutable version (status draft). Its config can never change afterwards.

    Without a config the type's defaults are used (an ensemble takes its weights and shrinkage from
    probability_models.yaml). The same config under the same name twice is refused.

    Example: precog models create elo_nfl v1.1 --type elo --config-json '{"k_factor": 18, "home_field_advantage": 55}'
    """
    from precog.forecast.registry import create_model

    config = _read_config(config_file, config_json, model_type, sport)
    with database() as conn:
        record = create_model(conn, name, version, model_type, config, sport=sport, description=description,
                              notes=notes, created_by=who())
    if as_json:
        print_json(record.as_dict())
        return
    console.print(f"created {record.ref} ({record.model_type}, status {record.status}, config hash "
                  f"{record.config_hash})", highlight=False)


@models_app.command("promote")
def promote_cmd(
    ref: str = typer.Argument(..., help="NAME@VERSION."),
    to: str | None = typer.Option(None, "--to", help="Target status (default: the next step: draft -> testing, "
                                  "training -> validating, validating -> testing, testing -> active)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the status history)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Move a version forward in its lifecycle; illegal transitions are refused with the allowed ones.

    Activation needs a recorded evaluation of at least 100 predictions (precog forecast evaluate --record).

    Example: precog models promote wp_nfl@v1.1 --to active --reason "beats v1.0 on 2022"
    """
    from precog.forecast.registry import get_model, transition

    with database() as conn:
        current = get_model(conn, ref)
        target = to or NEXT_STEP.get(current.status)
        if target is None:
            raise UserError(f"{current.ref} is {current.status}: there is no next step (use --to or deprecate)")
        with user_errors():
            record = transition(conn, current.ref, target, reason=reason, changed_by=who())
    if as_json:
        print_json(_short(record))
        return
    console.print(f"{record.ref}: {current.status} -> {record.status}", highlight=False)


@models_app.command("deprecate")
def deprecate_cmd(
    ref: str = typer.Argument(..., help="NAME@VERSION."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the status history)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Retire a version for good (deprecated is final: it can never be reactivated).

    Example: precog models deprecate elo_nfl@v1.0 --reason "replaced by v1.1"
    """
    from precog.forecast.registry import get_model, transition

    with database() as conn:
        current = get_model(conn, ref)
        record = transition(conn, current.ref, "deprecated", reason=reason, changed_by=who())
    if as_json:
        print_json(_short(record))
        return
    console.print(f"{record.ref}: {current.status} -> deprecated", highlight=False)
