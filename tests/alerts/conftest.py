"""Fixtures of the alerts tests (most are defined in alertkit.py so test modules can import its helpers too).

`db_url` is overridden here: the alerts tests share one migrated database (a copy of the session template)
and empty the alert tables before each test, which is much faster than a new database per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from alerts.alertkit import alerting, clock, home, http_server, self_signed, smtp_factory  # noqa: F401
from precog.db.embedded import with_database

ALERT_TABLES = "alert_rate_events, alert_channel_state, alert_outbox, alerts, alert_silences"


@pytest.fixture(scope="session")
def alerts_database(pg_admin_url: str, template_db_url: str) -> Iterator[str]:
    name = f"precog_alerts_t{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{urlsplit(template_db_url).path.lstrip("/")}"')
    yield with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(alerts_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    with psycopg.connect(alerts_database, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")
        conn.execute(f"TRUNCATE {ALERT_TABLES} RESTART IDENTITY CASCADE")
    monkeypatch.setenv("PRECOG_DATABASE_URL", alerts_database)
    monkeypatch.setenv("PRECOG_HOME", str(tmp_path / "precog-home"))
    return alerts_database
