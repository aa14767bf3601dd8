"""Shared test fixtures: a real embedded PostgreSQL, one fresh migrated database per test.

The server starts once per test session in a temporary directory; the schema is migrated once into a
template database and every test that asks for `db_url` gets its own copy (CREATE DATABASE ... TEMPLATE),
so tests are isolated and fast. Set PRECOG_TEST_ADMIN_URL to use an external server instead.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.db.embedded import with_database
from precog.db.migrate import migrate
from precog.paths import shared_data_dir
from tmpkit import memory_tmp_dir

# pytest-xdist workers start with COLUMNS=80 in their environment; a CLI console created under it keeps that
# width for good (tests widen the console per call through COLUMNS), so workers run as a single process does.
os.environ.pop("COLUMNS", None)

TEMPLATE_DB = "precog_test_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    external = os.environ.get("PRECOG_TEST_ADMIN_URL")
    if external:
        yield external
        return
    import shutil
    import tempfile

    from precog.db import embedded

    # Not under pytest's basetemp: a concurrent pytest session as root re-permissions that tree, which
    # would lock the server (running as its own system user) out of its data directory.
    home = Path(tempfile.mkdtemp(prefix="precog-test-pg-", dir=memory_tmp_dir()))
    home.chmod(0o755)
    url = embedded.server_uri(home)
    with psycopg.connect(url, autocommit=True) as conn:
        # A throwaway server: WAL kept small (it lives in memory when memory_tmp_dir found one).
        conn.execute("ALTER SYSTEM SET max_wal_size = '256MB'")
        conn.execute("SELECT pg_reload_conf()")
    yield url
    embedded.stop(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db_url(pg_admin_url: str) -> str:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    url = with_database(pg_admin_url, TEMPLATE_DB)
    migrate(url)
    return url


def create_database(pg_admin_url: str, template_db_url: str, name: str | None = None) -> str:
    """A fresh migrated database (a copy of the template); returns its URL."""
    db_name = name or f"precog_t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}" TEMPLATE "{TEMPLATE_DB}"')
    return with_database(pg_admin_url, db_name)


def drop_database(pg_admin_url: str, url: str) -> None:
    name = url.split("?")[0].rsplit("/", 1)[-1]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_admin_url: str, template_db_url: str, monkeypatch: pytest.MonkeyPatch,
           tmp_path: Path) -> Iterator[str]:
    """URL of a fresh migrated database; PRECOG_DATABASE_URL and PRECOG_HOME point at it for the test."""
    url = create_database(pg_admin_url, template_db_url)
    monkeypatch.setenv("PRECOG_DATABASE_URL", url)
    monkeypatch.setenv("PRECOG_HOME", str(tmp_path / "precog-home"))
    yield url
    drop_database(pg_admin_url, url)



@pytest.fixture
def make_database(pg_admin_url: str, template_db_url: str) -> Iterator[Any]:
    """A factory of extra fresh migrated databases (URLs), all dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(create_database(pg_admin_url, template_db_url))
        return made[-1]

    yield make
    for url in made:
        drop_database(pg_admin_url, url)

@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url) as connection:
        yield connection


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("the shared data folder (../shared/data) is not present")
    return path


def run_precog(*args: str, env: dict[str, str] | None = None, input_text: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `precog` entry point in a subprocess."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "precog", *args], capture_output=True, text=True, env=full_env,
        input=input_text, timeout=timeout, check=False,
    )


@pytest.fixture
def precog_cli(db_url: str):  # type: ignore[no-untyped-def]
    """Callable running `precog ARGS...` as a subprocess against this test's database."""

    def _run(*args: str, env: dict[str, str] | None = None, input_text: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        merged = {"PRECOG_DATABASE_URL": db_url, "PRECOG_HOME": os.environ["PRECOG_HOME"], "NO_COLOR": "1",
                  "COLUMNS": "200"}
        if env:
            merged.update(env)
        return run_precog(*args, env=merged, input_text=input_text, timeout=timeout)

    return _run
