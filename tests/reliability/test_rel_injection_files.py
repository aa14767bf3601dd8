"""SQL injection strings through the file-driven commands: method exports, model configs, games and plays CSVs,
ESPN scoreboards, feed recordings and config YAML whose file names, keys and values carry injection strings.

Each run of the real `precog` entry point (a subprocess) either exits 0 with the string stored / read back
verbatim, or exits 1 with one readable error line (no traceback, no unexpected exception); afterwards every
table is still there, the schema is unchanged and the seeded tables hold the same rows."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.ingest.recorder import Recorder
from precog.reliability import tally
from reliability.test_rel_injection import _schema
from web.dashkit import seed

INJECTIONS = (
    "'; DROP TABLE markets; --",
    "Robert'); DROP TABLE alerts;--",
    "\" OR 1=1 --",
    "$$; DROP SCHEMA public CASCADE; $$",
)
# the same strings as file names (none holds a "/", the one character a file name cannot carry)
FILE_SAFE = tuple(inj.replace("/", "_") for inj in INJECTIONS)

Run = Callable[..., subprocess.CompletedProcess[str]]


def _tables(conn: psycopg.Connection[Any]) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
    return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}  # noqa: S608 - catalog names


class Guard:
    """Schema and row counts before the commands; `check` asserts both are intact afterwards."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        conn.commit()
        self.schema, self.counts = _schema(conn), _tables(conn)
        self.runs = 0

    def check(self, *, writes: tuple[str, ...] = ()) -> None:
        self.conn.rollback()
        after = _tables(self.conn)
        assert set(after) == set(self.counts), f"tables changed: {set(self.counts) ^ set(after)}"
        assert _schema(self.conn) == self.schema, "the schema changed"
        changed = {t: (n, after[t]) for t, n in self.counts.items() if after[t] != n and t not in writes}
        assert not changed, f"rows of other tables changed: {changed}"


@pytest.fixture
def guard(conn: psycopg.Connection[Any]) -> Iterator[Guard]:
    seed(conn)
    conn.commit()
    yield Guard(conn)


def _run(precog_cli: Run, guard: Guard, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `precog ARGS`; it must succeed or refuse with exactly one readable error line."""
    guard.runs += 1
    r = precog_cli(*args, timeout=60)
    shown = f"precog {' '.join(args)} -> {r.returncode}\nstdout: {r.stdout[-1500:]}\nstderr: {r.stderr[-1500:]}"
    assert "Traceback" not in r.stdout + r.stderr, shown
    assert "run with --debug" not in r.stderr, f"an unexpected exception escaped: {shown}"
    if r.returncode != 0:
        assert r.returncode == 1, shown
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
    return r


# ---------------------------------------------------------------------------------------------- methods import
def test_rel_injection_in_method_export_files(precog_cli: Run, conn: psycopg.Connection[Any], tmp_path: Path
                                              ) -> None:
    # seeded through the CLI itself (import syncs trade_strategies.yaml, which the dashboard seed contradicts)
    ref = "inj_base@v1.0"
    assert precog_cli("models", "list", "--json").returncode == 0  # registers the shipped models
    r = precog_cli("methods", "create", "--template", "moderate", "--name", "inj_base", "--version", "v1.0",
                   "--strategy", "pre_game_entry", "--model", "elo_nfl")
    assert r.returncode == 0, r.stderr
    guard = Guard(conn)
    base = tmp_path / "base.json"
    _run(precog_cli, guard, "methods", "export", ref, "--out", str(base))
    export = json.loads(base.read_text())
    for i, inj in enumerate(INJECTIONS):
        data = dict(export, method_name=f"inj_import_{i}", method_version="v9.0", description=inj, template=inj)
        data["position_mgmt_config"] = dict(export["position_mgmt_config"], **{inj: inj})
        path = tmp_path / f"{FILE_SAFE[i]}.json"
        path.write_text(json.dumps(data))
        r = _run(precog_cli, guard, "methods", "import", str(path), "--by", inj, "--json")
        assert r.returncode == 0
        row = conn.execute("SELECT description, created_by, position_mgmt_config, method_id FROM methods "
                           "WHERE method_name = %s AND method_version = 'v9.0'", (f"inj_import_{i}",)).fetchone()
        assert row[0] == inj and row[1] == inj and row[2][inj] == inj, row
        reason = conn.execute("SELECT reason FROM method_status_changes WHERE method_id = %s", (row[3],)
                              ).fetchone()[0]
        assert str(path) in reason
        conn.rollback()
        # injections where names are looked up: refused as invalid / unknown (one field per string)
        field = ("method_name", "method_version", "strategy", "model")[i]
        value: Any = inj if i < 2 else {"name": inj, "version": inj}
        path.write_text(json.dumps(dict(export, **{field: value})))
        assert _run(precog_cli, guard, "methods", "import", str(path)).returncode == 1
    guard.check(writes=("methods", "method_status_changes", "strategies", "method_templates"))
    tally.record("security: SQL injection strings in `precog methods import` files", guard.runs,
                 "stored verbatim (description, by, config keys/values, file name) or refused as unknown/invalid")


# ---------------------------------------------------------------------------------------------- models create
def test_rel_injection_in_model_config_files(precog_cli: Run, guard: Guard, tmp_path: Path) -> None:
    conn = guard.conn
    for i, inj in enumerate(INJECTIONS):
        path = tmp_path / f"{FILE_SAFE[i]}.json"
        path.write_text(json.dumps({"probability": "0.5" + str(i)}))
        r = _run(precog_cli, guard, "models", "create", f"inj_model_{i}", "v1.0", "--type", "fixed", "--config",
                 str(path), "--description", inj, "--notes", inj, "--json")
        assert r.returncode == 0
        row = conn.execute("SELECT config, description FROM probability_models WHERE model_name = %s",
                           (f"inj_model_{i}",)).fetchone()
        assert row[1] == inj, row
        conn.rollback()
        path.write_text(json.dumps({"probability": "0.6" + str(i), inj: inj}))  # an injected key: refused
        bad = ([inj, "v1.0", "fixed"], [f"inj_model_b{i}", inj, "fixed"], [f"inj_model_c{i}", "v1.0", inj],
               [f"inj_model_d{i}", "v1.0", "fixed"])[i]
        assert _run(precog_cli, guard, "models", "create", bad[0], bad[1], "--type", bad[2], "--config",
                    str(path)).returncode == 1
    guard.check(writes=("probability_models", "model_status_changes", "model_status_history"))
    tally.record("security: SQL injection strings in `precog models create` config files", guard.runs,
                 "config keys/values and descriptions stored verbatim; injected names, versions, types refused")


# ---------------------------------------------------------------------------------------------- forecast CSVs
def _games_csv(path: Path, teams: tuple[str, str]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "season", "neutral", "playoff", "team1", "team2", "score1", "score2"])
        w.writerow(["2014-09-07", "2014", "0", "0", teams[0], teams[1], "21", "17"])
        w.writerow(["2014-09-14", "2014", "0", "0", teams[1], teams[0], "10", "24"])
        w.writerow(["2014-09-21", "2014", "0", "0", teams[0], teams[1], "", ""])


def test_rel_injection_in_games_files(precog_cli: Run, guard: Guard, tmp_path: Path) -> None:
    conn = guard.conn
    for i, inj in enumerate(INJECTIONS):
        games = tmp_path / f"{FILE_SAFE[i]}.csv"
        _games_csv(games, (inj, f"NE{i}"))
        out = tmp_path / f"pred-{i}.csv"
        r = _run(precog_cli, guard, "forecast", "elo", "predict", "--games", str(games), "--out", str(out),
                 "--allow-new-teams", "--json")
        assert r.returncode == 0
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows[0]["team1"] == inj.upper() and rows[1]["team2"] == inj.upper(), rows
        # train stores ratings: teams not in `teams` are created (a code too long for the column is refused)
        r = _run(precog_cli, guard, "forecast", "elo", "train", "--games", str(games), "--allow-new-teams",
                 "--create-teams", "--json")
        if r.returncode == 0:
            assert conn.execute("SELECT count(*) FROM teams WHERE team_code = %s", (inj.upper(),)).fetchone()[0] == 1
            conn.rollback()
        else:
            assert "longer than 10 characters" in r.stderr, r.stderr
        if i == 0:
            _run(precog_cli, guard, "forecast", "elo", "train", "--games", str(games), "--model", inj, "--json")
    # a code short enough for teams.team_code is created and stored verbatim
    short = "X'OR'1'=1"
    _games_csv(games, (short, "NE9"))
    assert _run(precog_cli, guard, "forecast", "elo", "train", "--games", str(games), "--allow-new-teams",
                "--create-teams", "--json").returncode == 0
    assert conn.execute("SELECT team_name FROM teams WHERE team_code = %s", (short,)).fetchone() == (short,)
    conn.rollback()
    guard.check(writes=("teams", "elo_rating_history", "probability_models", "model_status_changes",
                        "model_status_history"))
    tally.record("security: SQL injection strings in `precog forecast elo predict/train` games files", guard.runs,
                 "team names read back verbatim (upper-cased as every code); stored or refused with one error line")


def test_rel_injection_in_plays_files(precog_cli: Run, guard: Guard, shared_data: Path, tmp_path: Path) -> None:
    import gzip

    with gzip.open(shared_data / "nfl" / "nflfastr_wp_plays_2020_2022.csv.gz", "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        plays = [row for _, row in zip(range(40), reader, strict=False)]
    for i, inj in enumerate(INJECTIONS):
        column = ("game_id", "posteam", "home_team", "defteam")[i]
        path = tmp_path / f"{FILE_SAFE[i]}-{column}.csv"
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, header + [inj])
            w.writeheader()
            for row in plays:
                w.writerow(dict(row, **{column: inj, inj: inj}))
        out = tmp_path / f"wp-{i}.csv"
        r = _run(precog_cli, guard, "forecast", "wp", "predict", "--plays", str(path), "--out", str(out), "--json")
        if r.returncode == 0:
            assert len(out.read_text().splitlines()) == len(plays) + 1
        else:
            assert column in r.stderr or "team" in r.stderr, r.stderr
        if i == 0:
            _run(precog_cli, guard, "forecast", "wp", "predict", "--plays", str(path), "--out", str(out), "--model",
                 inj)
    guard.check(writes=("probability_models", "model_status_changes", "model_status_history"))
    tally.record("security: SQL injection strings in `precog forecast wp predict` plays files", guard.runs,
                 "plays scored or the row/column refused with one error line; schema and data untouched")


# ---------------------------------------------------------------------------------------------- espn parse
def _replace_teams(node: Any, inj: str) -> Any:
    if isinstance(node, dict):
        return {k: (inj if k in ("abbreviation", "displayName", "shortDisplayName", "name", "location")
                    and isinstance(v, str) else _replace_teams(v, inj)) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_teams(v, inj) for v in node]
    return node


def test_rel_injection_in_espn_scoreboard_files(precog_cli: Run, guard: Guard, shared_data: Path,
                                                tmp_path: Path) -> None:
    sample = json.loads((shared_data / "espn" / "nfl_scoreboard_2025_week13_sample.json").read_text())
    for i, inj in enumerate(INJECTIONS):
        board = _replace_teams(sample, inj)
        board[inj] = inj
        path = tmp_path / f"{FILE_SAFE[i]}.json"
        path.write_text(json.dumps(board))
        r = _run(precog_cli, guard, "espn", "parse", str(path), "--sport", "nfl", "--json")
        if r.returncode == 0:
            assert inj in json.loads(r.stdout).__repr__() or json.dumps(inj)[1:-1] in r.stdout
        if i == 0:
            _run(precog_cli, guard, "espn", "parse", str(path), "--sport", inj)
    guard.check()
    tally.record("security: SQL injection strings in `precog espn parse` scoreboard files", guard.runs,
                 "team names parsed and printed verbatim, or the file refused with one error line")


# ---------------------------------------------------------------------------------------------- backtest
def test_rel_injection_in_backtest_recordings(precog_cli: Run, guard: Guard, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
    folder = tmp_path / f"rec-{FILE_SAFE[0]}"
    seq = 0
    with Recorder(folder) as rec:
        for i, inj in enumerate(INJECTIONS):
            # one ticker the exchange refuses (spaces), one it accepts that still carries quotes and ;
            accepted = f"KXNFLGAME-25NOV30DENWSH-{inj.replace(' ', '')}"
            for ticker in (inj, accepted):
                seq += 1
                rec.record("kalshi:ws", json.dumps({"type": "ticker", "sid": 1, "seq": seq, "msg": {
                    "market_ticker": ticker, "title": inj, "yes_bid_dollars": "0.40", "yes_ask_dollars": "0.42",
                    "price_dollars": "0.41", "ts": 1764550000}}), t0 + timedelta(seconds=seq))
                rec.record("kalshi:ws", json.dumps({"type": "market_lifecycle_v2", "sid": 2, "seq": seq, "msg": {
                    "market_ticker": ticker, "event_type": "determined", "result": inj}}),
                    t0 + timedelta(minutes=5, seconds=seq))
            rec.record(f"espn:{inj}", {"url": inj, "body": json.dumps({inj: inj})}, t0 + timedelta(seconds=30 + i))
    r = _run(precog_cli, guard, "backtest", "--data", str(folder), "--out", str(tmp_path / "out"), "--json")
    assert r.returncode == 0
    # every accepted ticker was listed as a market; the refused ones and the bad scoreboards skipped as bad frames
    summary, _ = json.JSONDecoder().raw_decode(r.stdout)
    assert summary["windows"][0]["world"]["markets"] == len(INJECTIONS), summary["windows"][0]["world"]
    assert summary["data"]["skipped_messages"] >= len(INJECTIONS), summary["data"]
    _run(precog_cli, guard, "backtest", "--data", str(folder), "--method", INJECTIONS[1], "--json")
    guard.check(writes=("backtest_runs", "backtest_results", "backtest_windows", "engine_runs", "probability_models",
                        "model_status_changes", "model_status_history", "strategies", "methods",
                        "method_status_changes", "method_templates"))
    tally.record("security: SQL injection strings in backtest recordings (tickers, titles, sources)", guard.runs,
                 "tickers the exchange accepts replayed under their own name, the others skipped as bad frames; "
                 "schema and data untouched")


# ---------------------------------------------------------------------------------------------- config validate
def test_rel_injection_in_config_yaml(precog_cli: Run, guard: Guard, tmp_path: Path) -> None:
    for i, inj in enumerate(INJECTIONS):
        folder = tmp_path / f"cfg-{i}"
        folder.mkdir()
        quoted = json.dumps(inj)  # a JSON string is a YAML string
        name, text = (("system.yaml", f"logging:\n  level: {quoted}\n"),
                      ("system.yaml", f"defaults:\n  timezone: {quoted}\n"),
                      ("system.yaml", f"{quoted}: {quoted}\nlogging:\n  {quoted}: 1\n"),
                      (f"{FILE_SAFE[i]}.yaml", f"{quoted}: {quoted}\n"))[i]
        (folder / name).write_text(text)
        r = _run(precog_cli, guard, "config", "validate", "--dir", str(folder))
        if r.returncode == 1:
            assert "invalid configuration" in r.stderr, r.stderr
    guard.check()
    tally.record("security: SQL injection strings in config YAML (`precog config validate --dir`)", guard.runs,
                 "validated or refused naming the file and key; schema and data untouched")
