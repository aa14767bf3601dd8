"""system.yaml `database.statement_timeout_ms` reaches the sessions of long-running processes (it was accepted and
never set): the server cancels a statement that runs longer, and a connection rebuilt from the session's
connection string (the engine's reconnect) keeps the limit."""

from __future__ import annotations

import psycopg
import pytest

from precog.db.connection import connect, make_pool


def test_a_statement_running_past_the_limit_is_canceled(db_url: str) -> None:
    with connect(db_url, autocommit=True, statement_timeout_ms=300) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("300ms",)
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(2)")
        conn.execute("SELECT pg_sleep(0.05)")  # the session goes on
        again = psycopg.connect(conn.info.dsn, password=conn.info.password or None, autocommit=True)
        with again:
            assert again.execute("SHOW statement_timeout").fetchone() == ("300ms",)


def test_zero_means_no_limit_and_plain_connections_keep_the_server_default(db_url: str) -> None:
    with connect(db_url, statement_timeout_ms=0) as a, connect(db_url) as b:
        assert a.execute("SHOW statement_timeout").fetchone() == ("0",)
        assert b.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_the_dashboard_pool_sessions_carry_the_limit(db_url: str) -> None:
    pool = make_pool(db_url, min_size=1, max_size=2, timeout=5, statement_timeout_ms=1234)
    try:
        with pool.connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
    finally:
        pool.close()


def test_ingestion_reads_the_configured_limit(tmp_path: object) -> None:
    from pathlib import Path

    from precog.config.loader import load_config
    from precog.ingest.settings import load_ingest_settings

    folder = Path(str(tmp_path))
    (folder / "system.yaml").write_text("database:\n  statement_timeout_ms: 1500\n")
    cfg = load_config(folder, use_env=False, use_overrides=False, environ={})
    assert load_ingest_settings(cfg).statement_timeout_ms == 1500


def test_the_dashboard_takes_its_pool_and_timeout_from_system_yaml(db_url: str, tmp_path: object,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from precog.web.app import DashboardSettings
    from precog.web.auth import DashboardToken

    folder = Path(str(tmp_path))
    (folder / "system.yaml").write_text("database:\n  pool_min_size: 2\n  pool_max_size: 3\n"
                                        "  pool_timeout_seconds: 4\n  statement_timeout_ms: 5000\n")
    monkeypatch.setenv("PRECOG_CONFIG_DIR", str(folder))
    s = DashboardSettings.from_config(db_url, DashboardToken("x" * 24, "test"))
    assert (s.pool_min, s.pool_max, s.pool_timeout, s.statement_timeout_ms) == (2, 3, 4.0, 5000)
