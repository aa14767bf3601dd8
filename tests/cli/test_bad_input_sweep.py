"""Bad input a user really types, and commands run before `precog db migrate`: each gets one clear line naming
what is wrong and exit code 1 (or simply does its job), never a raw exception, a silently ignored value or a
half-applied change.

Found by a sweep of every `precog` command:
* `precog forecast health` on a database without the schema read the configuration overrides before migrating:
  "error: UndefinedTable: relation "config_overrides" does not exist ... (run with --debug for the traceback)".
* `precog config set KEY V --expires 0m` stored an override born expired, which only deactivated the key's
  current override; a negative value (`stop_loss.high_confidence -0.20`) was "No such option: -0.20".
* `precog config set` validated the new value against the files alone: two overrides that are each in range
  but not together (volatility_recent_minutes 100, then volatility_baseline_minutes 50) were stored, and every
  command that reads the configuration then refused to start. `config unset` could break it the same way.
* `precog methods create ... --model elo_nfl@v1.0` on a fresh database: "model elo_nfl@v1.0 not found (see
  `precog models list`)", and `precog models list` then showed it (it registers the shipped models).
* `precog methods export REF --out missing/dir/x.json`: "error: FileNotFoundError: [Errno 2] ... (run with
  --debug for the traceback)".
* `precog models create NAME v1.0 --type elo --sport nlf` created a model of sport 'nlf' with generic Elo
  parameters; a sport without `probability_models.elo.<sport>` parameters silently got them too; `--type elox`
  was "a elox model needs --config FILE or --config-json".
* `precog forecast predict KC BUF --clock 2:00 --home-score 20` (no --period) printed the pre-game forecast,
  the game state silently ignored; `forecast predict KC KC` forecast a team against itself.
* `precog ingest replay FILE` of a file that is not a recording printed an empty table (exit 0); a JSON line
  without the recorder's keys was "error: KeyError: 'seq'"; a directory without recordings, an empty table.
* `precog demo --speed NaN` ran a demo; `precog exchange serve --speed NaN` or `--max-skew -5` started serving.
* `precog forecast elo tune --k NaN` (or --k 500, --hfa 9999) ended in "error: ValidationError: 1 validation error
  for EloConfig ... For further information visit https://errors.pydantic.dev/..." after reading the games.
* `precog halt --reason ""` recorded "manual tripped:  (by ...)", an empty reason in the trading-state history.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from clikit import fails_with, json_ok
from precog.db.embedded import with_database


def _precog(db: str, home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRECOG_DATABASE_URL=db, PRECOG_HOME=str(home), NO_COLOR="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


@pytest.fixture
def empty_db(pg_admin_url: str) -> Iterator[str]:
    """A database without any schema: what a user has before `precog db migrate`."""
    name = f"precog_empty_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_forecast_health_before_migrate_migrates_and_reports(empty_db: str, tmp_path: Path) -> None:
    r = _precog(empty_db, tmp_path / "home", "forecast", "health")
    assert r.returncode == 0, r.stderr
    assert "no model version has paper or live positions held to settlement yet" in r.stdout


def test_methods_create_on_a_fresh_database_finds_the_shipped_model(empty_db: str, tmp_path: Path) -> None:
    r = _precog(empty_db, tmp_path / "home", "methods", "create", "--template", "moderate", "--name", "first",
                "--strategy", "pre_game_entry@v1.0", "--model", "elo_nfl@v1.0")
    assert r.returncode == 0, r.stderr
    assert "created first@v1.0" in r.stdout and "model elo_nfl@v1.0" in r.stdout


# ---------------------------------------------------------------- config set / unset
def _overrides(precog_cli: Any) -> dict[str, str]:
    return {o["config_key"]: str(o["value"]) for o in json_ok(precog_cli("config", "overrides", "--json"))}


def test_an_override_born_expired_is_refused_and_the_current_one_kept(precog_cli: Any) -> None:
    key = "trading.edges.min_edge_global"
    json_ok(precog_cli("config", "overrides", "--json"))
    assert precog_cli("config", "set", key, "0.07", "--reason", "thin").returncode == 0
    fails_with(precog_cli("config", "set", key, "0.06", "--reason", "t", "--expires", "0m"),
               "invalid duration '0m'", "longer than zero")
    assert _overrides(precog_cli) == {key: "0.07"}


def test_a_negative_value_is_the_value_not_an_option(precog_cli: Any) -> None:
    key = "position_management.exit_rules.stop_loss.high_confidence"
    r = precog_cli("config", "set", key, "-0.20", "--reason", "tighter")
    assert r.returncode == 0, r.stderr
    assert _overrides(precog_cli) == {key: "-0.20"}
    fails_with(precog_cli("config", "set", key, "-0.90", "--reason", "t"), key, "-0.90", ">= -0.40")


def test_overrides_that_only_together_break_the_configuration_are_refused(precog_cli: Any) -> None:
    recent = "position_management.sizing_adjustments.volatility_recent_minutes"
    baseline = "position_management.sizing_adjustments.volatility_baseline_minutes"
    assert precog_cli("config", "set", recent, "100", "--reason", "t").returncode == 0
    fails_with(precog_cli("config", "set", baseline, "50", "--reason", "t"),
               f"override of {baseline}", "volatility_baseline_minutes (50) must be longer than "
               "volatility_recent_minutes (100)")
    assert _overrides(precog_cli) == {recent: "100"}
    # and removing an override the other one relies on is refused too, nothing changed
    assert precog_cli("config", "set", baseline, "300", "--reason", "t").returncode == 0
    assert precog_cli("config", "set", recent, "200", "--reason", "t").returncode == 0
    fails_with(precog_cli("config", "unset", baseline), f"removing the override of {baseline}",
               "volatility_baseline_minutes (120) must be longer than volatility_recent_minutes (200)")
    assert _overrides(precog_cli) == {recent: "200", baseline: "300"}
    assert precog_cli("config", "show", "position_management.sizing_adjustments").returncode == 0


def test_validate_names_a_file_given_as_the_directory(tmp_path: Path) -> None:
    (tmp_path / "trading.yaml").write_text("account: {}\n")
    r = subprocess.run([sys.executable, "-m", "precog", "config", "validate", "--dir", str(tmp_path / "trading.yaml")],
                       capture_output=True, text=True, timeout=60, check=False,
                       env=dict(os.environ, PRECOG_HOME=str(tmp_path / "home"), NO_COLOR="1"))
    fails_with(r, f"configuration directory {tmp_path / 'trading.yaml'} is not a directory")


# ---------------------------------------------------------------- files the user names
def test_export_into_a_missing_directory_names_the_path(precog_cli: Any, tmp_path: Path) -> None:
    assert precog_cli("methods", "create", "--template", "moderate", "--name", "m", "--strategy",
                      "pre_game_entry@v1.0", "--model", "elo_nfl@v1.0").returncode == 0
    target = tmp_path / "missing" / "m.json"
    r = precog_cli("methods", "export", "m@v1.0", "--out", str(target))
    fails_with(r, f"{target}: No such file or directory")
    assert "FileNotFoundError" not in r.stderr and "--debug" not in r.stderr
    fails_with(precog_cli("methods", "export", "m@v1.0", "--out", str(tmp_path)), f"{tmp_path}: Is a directory")


def test_replay_refuses_what_is_not_a_recording(precog_cli: Any, tmp_path: Path) -> None:
    plain = tmp_path / "scoreboard.json"
    plain.write_text('{"events": []}\n')
    fails_with(precog_cli("ingest", "replay", str(plain)), f"{plain}: not a recording")
    foreign = tmp_path / "other.jsonl.gz"
    foreign.write_bytes(gzip.compress(b'{"a": 1}\n'))
    r = precog_cli("ingest", "replay", str(foreign))
    fails_with(r, f"{foreign}:1: not a recorded message", "seq")
    assert "KeyError: 'seq'  (run with --debug" not in r.stderr
    empty = tmp_path / "nothing"
    empty.mkdir()
    fails_with(precog_cli("ingest", "replay", str(empty)), f"{empty}: no recording files")


# ---------------------------------------------------------------- values silently ignored or accepted
def test_models_create_refuses_an_unknown_sport_and_elo_without_parameters(precog_cli: Any) -> None:
    fails_with(precog_cli("models", "create", "elo_x", "v1.0", "--type", "elox"), "--type 'elox' is not one of elo,")
    fails_with(precog_cli("models", "create", "elo_x", "v1.0", "--type", "elo", "--sport", "nlf"),
               "--sport 'nlf' is not one of nfl, ncaaf")
    fails_with(precog_cli("models", "create", "elo_x", "v1.0", "--type", "elo", "--sport", "mlb"),
               "no probability_models.elo.mlb parameters", "--config-json")
    json_ok(precog_cli("models", "create", "elo_x", "v1.0", "--type", "elo", "--sport", "mlb", "--json",
                       "--config-json", '{"k_factor": 4}'))
    assert not [m for m in json_ok(precog_cli("models", "list", "--json")) if m.get("sport") == "nlf"]


def test_forecast_predict_refuses_a_game_state_without_a_period_and_a_team_against_itself(precog_cli: Any) -> None:
    fails_with(precog_cli("forecast", "predict", "KC", "BUF", "--clock", "2:00", "--home-score", "20"),
               "--clock, --home-score describe a game in progress", "--period")
    fails_with(precog_cli("forecast", "predict", "KC", "kc"), "home and away are the same team (KC)")
    assert precog_cli("forecast", "predict", "KC", "BUF", "--period", "4", "--clock", "2:00",
                      "--home-score", "20").returncode == 0


@pytest.mark.parametrize("args", [
    ("demo", "--speed", "NaN"),
    ("demo", "--speed", "inf"),
    ("exchange", "serve", "--speed", "NaN"),
    ("exchange", "serve", "--max-skew", "-5"),
])
def test_a_speed_or_skew_that_is_not_a_positive_number_is_refused_before_starting(tmp_path: Path,
                                                                                  args: tuple[str, ...]) -> None:
    r = _precog("postgresql://precog:x@127.0.0.1:1/precog", tmp_path / "home", *args, timeout=60)
    fails_with(r, args[-2], "must be a number")


def test_an_empty_halt_reason_still_halts_and_records_the_default(precog_cli: Any) -> None:
    r = precog_cli("halt", "--reason", " ", "--by", "alice")
    assert r.returncode == 0, r.stderr
    assert "manual tripped: manual halt (by alice" in r.stdout
    history = json_ok(precog_cli("breakers", "history", "--json"))
    assert history and all(not row["reason"].rstrip().endswith(":") for row in history), history


@pytest.mark.parametrize(("option", "value", "needle"), [
    ("--k", "NaN", "--k: 'NaN' holds a value that is not a finite number"),
    ("--k", "10,500", "--k 500: Input should be less than or equal to 100"),
    ("--hfa", "9999", "--hfa 9999: Input should be less than or equal to 400"),
])
def test_an_elo_tuning_grid_value_out_of_range_names_the_option(tmp_path: Path, option: str, value: str,
                                                                 needle: str) -> None:
    games = tmp_path / "games.csv"
    games.write_text("date,season,neutral,playoff,team1,team2,score1,score2\n2000-09-03,2000,0,,KC,IND,14,27\n")
    r = _precog("postgresql://precog:x@127.0.0.1:1/precog", tmp_path / "home", "forecast", "elo", "tune",
                "--games", str(games), option, value)
    fails_with(r, needle)
    assert "ValidationError" not in r.stderr and "pydantic" not in r.stderr
