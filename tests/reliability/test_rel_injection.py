"""SQL injection strings through every CLI command that takes free text and every dashboard input: each is
stored and read back as plain data (or refused with one clear error), no SQL error escapes, and the schema and
the other tables are untouched."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from precog.cli.errors import readable_errors
from precog.cli.main import app
from precog.engine.alert_sink import TableAlertSink
from precog.reliability import tally
from precog.reliability.secrets_scan import SecretSet, scan_database
from web.dashkit import TOKEN, running_dashboard, seed

INJECTIONS = (
    "x'); DROP TABLE alerts; --",
    "' OR '1'='1",
    "\"; DELETE FROM positions; --",
    "Robert'); TRUNCATE trades CASCADE;--",
    "%s %(x)s {0} $1 \\'",
    "1; SELECT pg_sleep(5)--",
)


def _schema(conn: psycopg.Connection[Any]) -> str:
    rows = conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed table names
            for t in ("positions", "trades", "orders", "methods", "strategies", "settlements")}


@pytest.fixture
def seeded(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    seed(conn)
    conn.commit()
    yield conn


def _raise(conn: psycopg.Connection[Any], i: int) -> int:
    sink = TableAlertSink(conn, "test")
    alert_id = sink.raise_alert("rel_injection", "high", "rel", f"alert {i}", dedup_key=f"inj-{i}")
    conn.commit()
    assert alert_id is not None
    return alert_id


def test_rel_injection_strings_through_the_cli_are_plain_data(seeded: psycopg.Connection[Any]) -> None:
    conn = seeded
    schema, counts = _schema(conn), _counts(conn)
    runner = CliRunner()
    ran = 0

    def cli(*args: str) -> Any:
        nonlocal ran
        ran += 1
        result = runner.invoke(app, list(args), catch_exceptions=True)
        exc = result.exception
        ok = result.exit_code == 0 or isinstance(exc, readable_errors()) or (isinstance(exc, SystemExit)
                                                                      and result.exit_code in (1, 2))
        assert ok, f"precog {' '.join(args)} -> {type(exc).__name__}: {exc}\n{result.output}"
        return result

    for i, inj in enumerate(INJECTIONS):
        a = _raise(conn, 2 * i)
        cli("alerts", "ack", str(a), "--by", inj, "--notes", inj)
        by, notes = conn.execute("SELECT acknowledged_by, acknowledged_notes FROM alerts WHERE alert_id = %s",
                                 (a,)).fetchone()
        assert inj in by and notes == inj
        cli("alerts", "resolve", str(a), "--action", "fixed", "--by", inj, "--notes", inj)
        assert conn.execute("SELECT resolved_notes FROM alerts WHERE alert_id = %s", (a,)).fetchone()[0] == inj
        cli("alerts", "resolve", str(_raise(conn, 2 * i + 1)), "--action", inj, "--by", "op")  # refused: bad action
        cli("alerts", "silence", "add", "--match", f"component={inj}", "--for", "1h", "--comment", inj, "--by", inj)
        assert conn.execute("SELECT count(*) FROM alert_silences WHERE comment = %s", (inj,)).fetchone()[0] == 1
        cli("alerts", "list", "--component", inj, "--type", inj, "--severity", inj)
        cli("alerts", "silence", "add", "--match", inj, "--for", inj, "--comment", inj)  # refused
        cli("halt", "--reason", f"halt-reason {inj}", "--by", inj)
        cli("resume", "--by", inj)
        cli("breakers", "trip", "manual", "--reason", inj, "--by", inj)
        cli("breakers", "trip", inj, "--reason", inj)
        cli("breakers", "reset", inj, "--by", inj, "--notes", inj)
        cli("breakers", "history")
        cli("config", "set", "system.logging.level", inj, "--reason", inj, "--by", inj)  # refused: not a level
        cli("config", "set", "trading.account.daily_loss_limit_dollars", "250", "--reason", inj, "--by", inj)
        assert conn.execute("SELECT count(*) FROM config_overrides WHERE reason = %s", (inj,)).fetchone()[0] == 1
        cli("config", "get", inj)
        cli("markets", "history", inj)
        cli("edges", "list", "--market", inj, "--action", inj, "--min-edge", inj)
        cli("methods", "show", inj)
        cli("models", "show", inj)
        cli("games", "--sport", inj)
        cli("pnl", "--by", inj, "--mode", inj)
        cli("positions", "--json")
    stored = scan_database(conn, SecretSet.of({"halt reason": f"halt-reason {INJECTIONS[0]}"}))
    assert stored, "the halt reason must be stored as given"
    assert _schema(conn) == schema
    after = _counts(conn)
    assert after == counts, (counts, after)
    tally.record("security: SQL injection strings through CLI free-text inputs", ran,
                 "stored and read back verbatim or refused with one clear error; schema and data untouched")


def test_rel_injection_strings_through_the_dashboard_are_plain_data(db_url: str,
                                                                     seeded: psycopg.Connection[Any]) -> None:
    conn = seeded
    schema, counts = _schema(conn), _counts(conn)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    sent = 0
    with running_dashboard(db_url) as dash, httpx.Client(base_url=dash.url, timeout=20) as http:
        def call(method: str, path: str, **kw: Any) -> httpx.Response:
            nonlocal sent
            sent += 1
            r = http.request(method, path, **kw)
            assert r.status_code < 500, f"{method} {path} -> {r.status_code} {r.text[:300]}"
            return r

        for i, inj in enumerate(INJECTIONS):
            a = _raise(conn, 100 + i)
            assert call("POST", f"/api/alerts/{a}/acknowledge", json={"by": inj, "notes": inj},
                        headers=auth).status_code == 200
            row = conn.execute("SELECT acknowledged_by, acknowledged_notes FROM alerts WHERE alert_id = %s",
                               (a,)).fetchone()
            assert inj in row[0] and row[1] == inj
            call("POST", f"/api/alerts/{a}/silence", json={"by": inj, "comment": inj, "duration": inj},
                 headers=auth)
            call("POST", f"/api/alerts/{a}/silence", json={"by": inj, "comment": inj}, headers=auth)
            call("POST", f"/api/alerts/{a}/resolve", json={"by": inj, "action": inj, "notes": inj}, headers=auth)
            call("POST", f"/api/alerts/{a}/resolve", json={"by": inj, "action": "fixed", "notes": inj},
                 headers=auth)
            call("POST", "/api/trading/halt", json={"by": inj, "reason": inj}, headers=auth)
            call("POST", "/api/trading/resume", json={"by": inj, "notes": inj, "reset_all": True}, headers=auth)
            call("POST", f"/api/breakers/{inj}/reset", json={"by": inj, "notes": inj}, headers=auth)
            call("POST", "/api/models/1/transition", json={"by": inj, "target": inj, "reason": inj}, headers=auth)
            call("POST", "/api/methods/1/transition", json={"by": inj, "target": inj, "reason": inj}, headers=auth)
            call("GET", "/api/edges", params={"market": inj, "side": inj, "min_ev": inj})
            call("GET", "/api/alerts", params={"state": inj, "severity": inj, "limit": inj})
            call("GET", "/api/positions", params={"limit": inj})
            call("GET", f"/api/alerts/{inj}")
            # and every write without the token is refused before it reads its input
            assert call("POST", "/api/trading/halt", json={"by": inj, "reason": inj}).status_code == 401
    assert conn.execute("SELECT count(*) FROM alert_silences WHERE comment = ANY(%s)",
                        (list(INJECTIONS),)).fetchone()[0] == len(INJECTIONS)
    assert _schema(conn) == schema
    assert _counts(conn) == counts
    tally.record("security: SQL injection strings through dashboard inputs", sent,
                 "stored verbatim or refused with 4xx; no 5xx, schema and data untouched; writes need the token")
