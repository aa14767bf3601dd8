"""Fixtures for the dashboard tests: a seeded database and the real server on a free loopback port.

`dashboard` gives each test its own database (for tests that write); `shared_dashboard` serves one seeded
database to every test of a module that only reads or is refused (they assert that nothing changed).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from precog.db.embedded import with_database
from web.dashkit import RunningDashboard, Seeded, running_dashboard, seed


@pytest.fixture
def seeded(conn: psycopg.Connection[Any]) -> Seeded:
    return seed(conn)


@pytest.fixture
def dashboard(db_url: str, seeded: Seeded) -> Iterator[RunningDashboard]:
    with running_dashboard(db_url) as running:
        yield running


@pytest.fixture(scope="module")
def shared_db(pg_admin_url: str, template_db_url: str) -> Iterator[tuple[str, Seeded]]:
    template = template_db_url.split("?")[0].rsplit("/", 1)[-1]
    name = f"precog_web_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = with_database(pg_admin_url, name)
    with psycopg.connect(url) as conn:
        seeded = seed(conn)
    yield url, seeded
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shared_dashboard(shared_db: tuple[str, Seeded]) -> Iterator[RunningDashboard]:
    with running_dashboard(shared_db[0]) as running:
        yield running


@pytest.fixture
def shared_seeded(shared_db: tuple[str, Seeded]) -> Seeded:
    return shared_db[1]


@pytest.fixture
def shared_conn(shared_db: tuple[str, Seeded]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(shared_db[0]) as connection:
        yield connection
