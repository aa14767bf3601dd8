"""Which database Precog talks to, and connections to it.

No PRECOG_DATABASE_URL -> the embedded PostgreSQL under $PRECOG_HOME. Otherwise that server. Same SQL.
NUMERIC columns come back as Decimal (psycopg's default), so money never passes through float.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_dumps

from precog.db.embedded import embedded_url
from precog.domain.jsonutil import dumps as json_dumps

# JSONB parameters (psycopg Json/Jsonb) serialize Decimal exactly, as strings.
set_json_dumps(json_dumps)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message is one readable line without credentials."""


# user:password@ up to the last '@' (an unencoded '@' in a password must not leave its tail visible)
_PASSWORD_RE = re.compile(r"(://[^:/@\s]+:)(.*)(@)")
# password=... in a URL query or a keyword string, also single-quoted with spaces: password='a b'
_KEYWORD_PASSWORD_RE = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&\s]+)")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    url = _PASSWORD_RE.sub(r"\1***\3", url)
    return _KEYWORD_PASSWORD_RE.sub(r"\1***", url)


def _passwords(url: str) -> list[str]:
    found = [m.group(2) for m in _PASSWORD_RE.finditer(url)]
    found += [m.group(2).strip("'") for m in _KEYWORD_PASSWORD_RE.finditer(url)]
    found += [unquote(p) for p in found]
    return sorted({p for p in found if p}, key=len, reverse=True)


def _connect_failure(url: str, exc: Exception) -> str:
    """psycopg's reason, without the URL or password it may quote (libpq quotes malformed parts verbatim)."""
    secrets = _passwords(url)
    if any("@" in p for p in secrets):
        return "the password contains an unencoded '@' (write it as %40)"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = reason.replace(url, redact_url(url))
    for secret in secrets:
        reason = reason.replace(secret, "***")
    return reason


def database_url() -> str:
    """PRECOG_DATABASE_URL if set, else the embedded server's precog database (started on demand)."""
    url = os.environ.get("PRECOG_DATABASE_URL", "").strip()
    if url:
        return url
    return embedded_url()


def is_embedded() -> bool:
    return not os.environ.get("PRECOG_DATABASE_URL", "").strip()


def session_options(statement_timeout_ms: int | None) -> dict[str, Any]:
    """Connection parameters of a long-running session (system.yaml database.statement_timeout_ms; 0 = none).
    Part of the connection string, so a reconnect built from `conn.info.dsn` keeps them."""
    if not statement_timeout_ms:
        return {}
    return {"options": f"-c statement_timeout={int(statement_timeout_ms)}"}


def connect(url: str | None = None, *, autocommit: bool = False, dict_rows: bool = False,
            connect_timeout: int = 10, statement_timeout_ms: int | None = None) -> psycopg.Connection[Any]:
    """A new connection. Raises DatabaseUnavailable with a clear, password-free message on failure.
    `statement_timeout_ms`: the server cancels a statement running longer (long-running processes)."""
    target = url or database_url()
    try:
        conn: psycopg.Connection[Any] = psycopg.connect(
            target, autocommit=autocommit, connect_timeout=connect_timeout,
            row_factory=dict_row if dict_rows else psycopg.rows.tuple_row,  # type: ignore[arg-type]
            **session_options(statement_timeout_ms),
        )
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, or a malformed URL
        raise DatabaseUnavailable(
            f"cannot connect to the database at {redact_url(target)}: {_connect_failure(target, exc)}") from None
    return conn


@contextmanager
def transaction(url: str | None = None) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside one transaction: committed on success, rolled back on error, then closed."""
    conn = connect(url)
    try:
        with conn.transaction():
            yield conn
    finally:
        conn.close()


def make_pool(url: str | None = None, *, min_size: int = 1, max_size: int = 10, timeout: float = 30.0,  # type: ignore[no-untyped-def]
              statement_timeout_ms: int | None = None):
    """A psycopg_pool.ConnectionPool for long-running processes (engine, dashboard)."""
    from psycopg_pool import ConnectionPool

    return ConnectionPool(url or database_url(), min_size=min_size, max_size=max_size, timeout=timeout, open=True,
                          kwargs=session_options(statement_timeout_ms))
