"""Forward-only SQL migrations applied by yoyo-migrations, with checksum verification.

yoyo records which migrations ran; we additionally record each file's SHA-256 and refuse to run when an
applied migration's file has changed since (an edited migration would silently diverge schemas).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from precog.db.connection import connect, database_url

CHECKSUM_TABLE = "precog_migration_checksums"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class MigrationStatus:
    migration_id: str
    applied: bool
    checksum_ok: bool


def migrations_dir() -> Path:
    return Path(str(resources.files("precog.db") / "migrations"))


def _yoyo_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql+psycopg"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def _file_checksums() -> dict[str, str]:
    return {
        p.stem: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(migrations_dir().glob("*.sql"))
        if not p.name.endswith(".rollback.sql")
    }


def _recorded_checksums(url: str) -> dict[str, str]:
    with connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKSUM_TABLE} ("  # noqa: S608 - constant identifier
            " migration_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        rows = conn.execute(f"SELECT migration_id, sha256 FROM {CHECKSUM_TABLE}").fetchall()  # noqa: S608
    return {r[0]: r[1] for r in rows}


def _applied_ids(url: str) -> set[str]:
    with connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()
        if not exists or exists[0] is None:
            return set()
        return {r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()}


def verify_checksums(url: str) -> None:
    files = _file_checksums()
    recorded = _recorded_checksums(url)
    for mid, digest in recorded.items():
        if mid not in files:
            raise MigrationError(f"migration {mid} was applied to this database but its file is missing from {migrations_dir()}")
        if files[mid] != digest:
            raise MigrationError(
                f"migration {mid} was applied but its file has changed since (sha256 {digest[:12]} -> {files[mid][:12]}); "
                "migrations are forward-only: restore the file and add a new migration instead"
            )


def status(url: str | None = None) -> list[MigrationStatus]:
    target = url or database_url()
    files = _file_checksums()
    recorded = _recorded_checksums(target)
    applied = _applied_ids(target)
    return [
        MigrationStatus(mid, mid in applied, recorded.get(mid, digest) == digest)
        for mid, digest in files.items()
    ]


def pending(url: str | None = None) -> list[str]:
    return [s.migration_id for s in status(url) if not s.applied]


def migrate(url: str | None = None) -> list[str]:
    """Apply pending migrations in order. Returns the ids applied (empty when current)."""
    from yoyo import get_backend, read_migrations

    target = url or database_url()
    verify_checksums(target)
    backend = get_backend(_yoyo_url(target))
    migrations = read_migrations(str(migrations_dir()))
    applied: list[str] = []
    try:
        with backend.lock():
            todo = backend.to_apply(migrations)
            for migration in todo:
                try:
                    backend.apply_one(migration)
                except Exception as exc:
                    raise MigrationError(f"migration {migration.id} failed: {str(exc).strip().splitlines()[0]}") from exc
                applied.append(migration.id)
    finally:
        backend.connection.close()
    files = _file_checksums()
    with connect(target, autocommit=True) as conn:
        for mid in _applied_ids(target):
            if mid in files:
                conn.execute(
                    f"INSERT INTO {CHECKSUM_TABLE} (migration_id, sha256) VALUES (%s, %s) "  # noqa: S608
                    "ON CONFLICT (migration_id) DO NOTHING",
                    (mid, files[mid]),
                )
    return applied


def ensure_migrated(url: str | None = None) -> str:
    """Migrate if needed and return the URL (commands that need the schema call this)."""
    target = url or database_url()
    if pending(target):
        migrate(target)
    else:
        verify_checksums(target)
    return target
