"""`precog forecast ...` and `precog models ...` end to end, as a user runs them (real subprocess, real DB)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg

from forecast.forecast_testkit import PLAYS_HEADER, synthetic_plays, write_csv

NO_DB = "postgresql://precog:x@127.0.0.1:1/nodb?connect_timeout=1"


def run_without_db(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRECOG_DATABASE_URL=NO_DB, NO_COLOR="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False, cwd=cwd)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_elo_predict_needs_no_database_and_writes_every_game(games_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    proc = run_without_db("forecast", "elo", "predict", "--games", str(games_file), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    games = list(csv.DictReader(games_file.open()))
    assert len(rows) == len(games) and list(rows[0]) == ["date", "team1", "team2", "p_team1"]
    assert all(0 < float(r["p_team1"]) < 1 for r in rows)
    assert [(r["date"], r["team1"], r["team2"]) for r in rows] == [(g["date"], g["team1"], g["team2"]) for g in games]
    assert json.loads(proc.stdout)["games"] == len(games)


def test_elo_predict_unknown_team_names_row_and_column(make_csv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from forecast.forecast_testkit import GAMES_HEADER

    games = make_csv("g.csv", GAMES_HEADER, [["2020-09-10", 2020, 0, 0, "KC", "HOU", "", "", "", 34, 20, 1],
                                             ["2020-09-13", 2020, 0, 0, "QQQ", "KC", "", "", "", 10, 20, 0]])
    out = tmp_path / "pred.csv"
    err = one_line_error(run_without_db("forecast", "elo", "predict", "--games", str(games), "--out", str(out),
                                        "--initial-elos", str(make_csv("i.csv", ["team", "elo"], [["KC", 1600], ["HOU", 1500]]))))
    assert "row 1 (line 3)" in err and "column 'team1'" in err and "QQQ" in err
    assert not out.exists()


def test_wp_predict_builtin_without_database(plays_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "wp.csv"
    proc = run_without_db("forecast", "wp", "predict", "--plays", str(plays_file), "--out", str(out), "--model", "builtin")
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "row,p_posteam" and len(lines) == len(synthetic_plays()) + 1
    assert [int(line.split(",")[0]) for line in lines[1:4]] == [0, 1, 2]
    assert all(0 <= float(line.split(",")[1]) <= 1 for line in lines[1:])


def test_wp_predict_impossible_state_is_one_clear_line(tmp_path: Path) -> None:
    rows = synthetic_plays(n_games=2)
    rows[3][PLAYS_HEADER.index("down")] = 5
    bad = write_csv(tmp_path / "bad.csv", PLAYS_HEADER, rows)
    err = one_line_error(run_without_db("forecast", "wp", "predict", "--plays", str(bad), "--out", str(tmp_path / "o.csv"),
                                        "--model", "builtin"))
    assert "row 3 (line 5)" in err and "column 'down'" in err and "down 5" in err


def test_elo_train_writes_ratings_and_history_and_is_idempotent(precog_cli, games_file: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    proc = precog_cli("forecast", "elo", "train", "--games", str(games_file), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    n_games = len(list(csv.DictReader(games_file.open())))
    assert summary["history_rows_added"] == 2 * n_games and len(summary["teams_updated"]) == 8
    with psycopg.connect(db_url) as conn:
        history = conn.execute("SELECT count(*), count(DISTINCT model_id) FROM elo_rating_history").fetchone()
        assert history == (2 * n_games, 1)
        code, rating, meta = conn.execute(
            "SELECT team_code, current_elo_rating, metadata -> 'elo' FROM teams WHERE team_code = %s",
            (summary["teams_updated"][0],)).fetchone()
        assert str(rating) == f"{summary['ratings'][code]:.2f}" and meta["model"] == "elo_nfl@v1.0"
        results = dict(conn.execute("SELECT game_result, count(*) FROM elo_rating_history GROUP BY 1").fetchall())
        assert results.get("win", 0) == results.get("loss", 0)
    again = json.loads(precog_cli("forecast", "elo", "train", "--games", str(games_file), "--json").stdout)
    assert again["history_rows_added"] == 0


def test_elo_train_on_538_maps_codes_and_reports_teams_without_rows(precog_cli, shared_games_path: Path,  # type: ignore[no-untyped-def]
                                                                    db_url: str) -> None:
    proc = precog_cli("forecast", "elo", "train", "--games", str(shared_games_path))
    assert proc.returncode == 0, proc.stderr
    assert "not in the teams table" in proc.stdout and "RII" in proc.stdout
    with psycopg.connect(db_url) as conn:
        was = conn.execute("SELECT count(*) FROM elo_rating_history h JOIN teams t USING (team_id) "
                           "WHERE t.team_code = 'WAS'").fetchone()[0]
        assert was > 1000  # 538's WSH games land on WAS
        assert conn.execute("SELECT count(*) FROM teams WHERE sport = 'nfl'").fetchone()[0] == 32


def test_wp_train_registers_a_validating_version_with_hash_and_evaluation(precog_cli, shared_plays_subset_file: Path,  # type: ignore[no-untyped-def]
                                                                          db_url: str, tmp_path: Path) -> None:
    proc = precog_cli("forecast", "wp", "train", "--plays", str(shared_plays_subset_file), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == "wp_nfl@v1.1" and out["status"] == "validating" and out["test_games"] > 10
    artifact = Path(out["artifact"])
    from precog.forecast.winprob import sha256_file

    assert artifact.is_file() and sha256_file(artifact) == out["artifact_sha256"]
    with psycopg.connect(db_url) as conn:
        sha, n = conn.execute("SELECT artifact_sha256, validation_sample_size FROM probability_models "
                              "WHERE model_name = 'wp_nfl' AND model_version = 'v1.1'").fetchone()
        assert sha == out["artifact_sha256"] and n == out["test_plays"]
    # the same recipe on the same data is not a new version
    err = one_line_error(precog_cli("forecast", "wp", "train", "--plays", str(shared_plays_subset_file)))
    assert "already trained" in err
    assert json.loads(precog_cli("models", "promote", "wp_nfl@v1.1", "--to", "active", "--json").stdout)["status"] == "active"
    pred = tmp_path / "p.csv"
    proc = precog_cli("forecast", "wp", "predict", "--plays", str(shared_plays_subset_file), "--out", str(pred), "--json")
    assert json.loads(proc.stdout)["model"] == "wp_nfl@v1.1"


def test_wp_train_on_a_bad_file_registers_nothing(precog_cli, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    rows = synthetic_plays(n_games=30)
    rows[40][PLAYS_HEADER.index("game_seconds_remaining")] = -3
    bad = write_csv(tmp_path / "bad.csv.gz", PLAYS_HEADER, rows)
    err = one_line_error(precog_cli("forecast", "wp", "train", "--plays", str(bad)))
    assert "row 40" in err and "negative time" in err
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM probability_models WHERE model_version <> 'v1.0'").fetchone()[0] == 0
    assert not (Path(os.environ["PRECOG_HOME"]) / "models" / "wp_nfl").exists()


def test_models_lifecycle_from_the_cli(precog_cli, games_file: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    created = precog_cli("models", "create", "elo_nfl", "v1.1", "--type", "elo", "--config-json",
                         '{"k_factor": 24, "home_field_advantage": 50}', "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "draft"
    err = one_line_error(precog_cli("models", "create", "elo_nfl", "v1.1", "--type", "elo", "--config-json", '{"k_factor": 30}'))
    assert "immutable" in err
    assert "draft -> testing" in precog_cli("models", "promote", "elo_nfl@v1.1").stdout
    err = one_line_error(precog_cli("models", "promote", "elo_nfl@v1.1", "--to", "active"))
    assert "needs at least 100" in err
    png = tmp_path / "rel.png"
    ev = precog_cli("forecast", "evaluate", "--model", "elo_nfl@v1.1", "--games", str(games_file), "--record",
                    "--png", str(png), "--json")
    assert ev.returncode == 0, ev.stderr
    report = json.loads(ev.stdout)
    assert report["scores"]["n"] == 140 and png.read_bytes()[:4] == b"\x89PNG" and report["recorded"]
    assert len(report["calibration"]) == 10 and len(report["by_season"]) == 5
    assert "testing -> active" in precog_cli("models", "promote", "elo_nfl@v1.1").stdout
    listed = json.loads(precog_cli("models", "list", "--name", "elo_nfl", "--json").stdout)
    assert [m["status"] for m in listed] == ["active", "active"]
    shown = json.loads(precog_cli("models", "show", "elo_nfl@v1.1", "--json").stdout)
    assert shown["config"]["k_factor"] == 24.0 and len(shown["evaluations"]) == 1
    assert [h["to_status"] for h in shown["status_history"]] == ["draft", "testing", "active"]
    assert "-> deprecated" in precog_cli("models", "deprecate", "elo_nfl@v1.1", "--reason", "test").stdout
    err = one_line_error(precog_cli("models", "promote", "elo_nfl@v1.1", "--to", "active"))
    assert "deprecated" in err


def test_evaluate_plays_with_cross_validation_compares_with_published_wp(precog_cli, shared_plays_subset_file: Path,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path) -> None:
    proc = precog_cli("forecast", "evaluate", "--model", "wp_nfl@v1.0", "--plays", str(shared_plays_subset_file),
                      "--folds", "2", "--png", str(tmp_path / "r.png"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["scores"]["n"] == report["published_scores"]["n"] > 5000
    assert report["scores"]["brier"] < 0.25 and report["published_scores"]["brier"] < 0.25
    text = precog_cli("forecast", "evaluate", "--model", "wp_nfl@v1.0", "--plays", str(shared_plays_subset_file),
                      "--png", str(tmp_path / "r2.png"))
    assert "excluded" in text.stdout and "nflfastR wp" in text.stdout  # training games are not scored


def test_evaluate_needs_exactly_one_file(precog_cli, games_file: Path) -> None:  # type: ignore[no-untyped-def]
    err = one_line_error(precog_cli("forecast", "evaluate", "--model", "elo_nfl@v1.0"))
    assert "exactly one of --games" in err
    err = one_line_error(precog_cli("forecast", "evaluate", "--model", "wp_nfl@v1.0", "--games", str(games_file)))
    assert "plays file" in err


def test_matrix_build_show_and_benchmarks(precog_cli, shared_plays_subset_file: Path) -> None:  # type: ignore[no-untyped-def]
    built = precog_cli("forecast", "matrix", "build", "--plays", str(shared_plays_subset_file), "--json")
    assert built.returncode == 0, built.stderr
    labels = {b["situation"] for b in json.loads(built.stdout)["benchmarks"]}
    assert "halftime leading 10+" in labels
    shown = json.loads(precog_cli("forecast", "matrix", "show", "--state", "halftime", "--bucket", "any_lead",
                                  "--json").stdout)
    cell = shown["cells"][0]
    assert cell["sample_size"] > 50 and float(cell["ci_lower"]) <= float(cell["win_probability"]) <= float(cell["ci_upper"])
    err = one_line_error(precog_cli("forecast", "matrix", "build", "--plays", str(shared_plays_subset_file)))
    assert "--replace" in err
    text = precog_cli("forecast", "matrix", "show", "--state", "halftime")
    assert "77.4%" in text.stdout  # the spec's benchmark next to our number


def test_forecast_predict_prints_a_decimal_probability(precog_cli) -> None:  # type: ignore[no-untyped-def]
    pre = json.loads(precog_cli("forecast", "predict", "KC", "CAR", "--json").stdout)
    assert pre["probability"].count(".") == 1 and len(pre["probability"].split(".")[1]) == 4
    live = precog_cli("forecast", "predict", "KC", "CAR", "--period", "4", "--clock", "1:30", "--home-score", "20",
                      "--away-score", "17", "--possession", "home", "--down", "1", "--distance", "10",
                      "--yards-to-goal", "70", "--json")
    assert live.returncode == 0, live.stderr
    assert float(json.loads(live.stdout)["probability"]) > 0.85
    err = one_line_error(precog_cli("forecast", "predict", "KC", "CAR", "--period", "2", "--down", "5"))
    assert "down" in err
    # --neutral reaches the in-game forecast too: no home advantage for the listed home team
    state = ("--period", "2", "--clock", "7:30", "--home-score", "7", "--away-score", "7")
    home = json.loads(precog_cli("forecast", "predict", "KC", "CAR", *state, "--json").stdout)["probability"]
    neutral = json.loads(precog_cli("forecast", "predict", "KC", "CAR", *state, "--neutral", "--json").stdout)
    assert Decimal(neutral["probability"]) < Decimal(home)


def test_elo_train_can_create_missing_teams(precog_cli, make_csv, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from forecast.forecast_testkit import GAMES_HEADER

    games = make_csv("g.csv", GAMES_HEADER, [["1920-10-03", 1920, 0, 0, "RII", "KC", "", "", "", 14, 0, 1],
                                             ["1920-10-10", 1920, 0, 0, "KC", "RII", "", "", "", 3, 7, 0]])
    proc = precog_cli("forecast", "elo", "train", "--games", str(games), "--allow-new-teams", "--create-teams", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["teams_created"] == ["RII"]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT count(*) FROM elo_rating_history h JOIN teams t USING (team_id) "
                            "WHERE t.team_code = 'RII'").fetchone()[0]
        assert rows == 2


def test_wp_predict_on_states_without_outcomes(tmp_path: Path) -> None:
    keep = [h for h in PLAYS_HEADER if h not in ("home_score", "away_score", "wp", "game_date")]
    rows = [[r[PLAYS_HEADER.index(h)] for h in keep] for r in synthetic_plays(n_games=3)]
    states = write_csv(tmp_path / "states.csv", keep, rows)
    out = tmp_path / "p.csv"
    proc = run_without_db("forecast", "wp", "predict", "--plays", str(states), "--out", str(out), "--model", "builtin",
                          "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["plays"] == len(rows) == len(out.read_text().splitlines()) - 1


def test_a_new_elo_version_without_a_config_takes_its_sports_defaults(precog_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """probability_models.yaml `elo.<sport>` were accepted and unread (a version without --config got the code's
    NFL defaults for every sport): they are the parameters of a new version created without a config."""
    created = precog_cli("models", "create", "elo_ncaaf", "v1.0", "--type", "elo", "--sport", "ncaaf", "--json")
    assert created.returncode == 0, created.stderr
    shown = json.loads(precog_cli("models", "show", "elo_ncaaf@v1.0", "--json").stdout)
    config = shown["config"] if "config" in shown else shown["model"]["config"]
    assert {k: config[k] for k in ("sport", "k_factor", "initial_rating", "home_field_advantage",
                                   "season_regression")} == {"sport": "ncaaf", "k_factor": 25, "initial_rating": 1500,
                                                             "home_field_advantage": 70, "season_regression": 0.4}
    (tmp_path / "probability_models.yaml").write_text("elo:\n  nfl:\n    k_factor: 500\n")
    err = one_line_error(precog_cli("models", "create", "elo_nfl", "v1.9", "--type", "elo",
                                    env={"PRECOG_CONFIG_DIR": str(tmp_path)}))
    assert "elo.nfl.k_factor = 500 is invalid" in err and "<= 100" in err


def test_a_recorded_evaluation_much_worse_than_the_last_raises_model_degradation(  # type: ignore[no-untyped-def]
        precog_cli, games_file: Path, tmp_path: Path, db_url: str) -> None:
    # spec 8.2's "model degradation" source: an evaluation recorded with a Brier >= 5% (probability_models
    # degradation_alert_pct) worse than the version's previous validation Brier raises model_degradation (medium)
    created = precog_cli("models", "create", "elo_nfl", "v1.1", "--type", "elo", "--config-json", '{"k_factor": 24}')
    assert created.returncode == 0, created.stderr
    args = ("forecast", "evaluate", "--model", "elo_nfl@v1.1", "--games", str(games_file), "--record",
            "--png", str(tmp_path / "r.png"), "--json")
    first = precog_cli(*args)  # a new version has no validation yet: nothing to compare with
    assert first.returncode == 0, first.stderr
    brier = Decimal(str(round(json.loads(first.stdout)["scores"]["brier"], 6)))
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'model_degradation'").fetchone()[0] == 0
        # the version's earlier validation was 6% better than what this data now shows
        conn.execute("UPDATE probability_models SET validation_brier = %s WHERE model_name = 'elo_nfl' AND "
                     "model_version = 'v1.1'", ((brier / Decimal("1.06")).quantize(Decimal("0.000001")),))
    second = precog_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "warning: elo_nfl@v1.1: Brier" in second.stderr and "probability_models.degradation_alert_pct" in second.stderr
    assert "6.0% worse" in json.loads(second.stdout)["model_degradation"]
    third = precog_cli(*args)  # the same figures again: no degradation
    assert third.returncode == 0 and "model_degradation" not in json.loads(third.stdout)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT severity, category, component, details FROM alerts "
                            "WHERE alert_type = 'model_degradation'").fetchall()
    (severity, category, component, details), = rows
    assert (severity, category, component) == ("medium", "trading", "forecasting")
    assert details["model"] == "elo_nfl@v1.1" and Decimal(details["brier"]) == brier and details["sample_size"] == 140
