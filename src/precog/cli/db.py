"""`precog db ...`: the database in use and its schema."""

from __future__ import annotations

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_table
from precog.db import embedded
from precog.db.connection import connect, database_url, is_embedded, redact_url
from precog.db.migrate import migrate, status

db_app = typer.Typer(help="Database: migrations, status, URL, reset.", no_args_is_help=True)


@db_app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending schema migrations (commands that need the schema also do this automatically).

    Example: precog db migrate
    """
    url = database_url()
    with console.status("applying migrations..."):
        applied = migrate(url)
    if applied:
        console.print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        console.print("schema is up to date")


@db_app.command("status")
def status_cmd(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show the database in use and applied/pending migrations.

    Example: precog db status --json
    """
    url = database_url()
    rows = status(url)
    data = {
        "database": redact_url(url),
        "embedded": is_embedded(),
        "migrations": [{"id": s.migration_id, "applied": s.applied, "checksum_ok": s.checksum_ok} for s in rows],
        "pending": [s.migration_id for s in rows if not s.applied],
    }
    if json_out:
        print_json(data)
        return
    console.print(f"database: {data['database']} ({'embedded' if data['embedded'] else 'external'})")
    print_table("migrations", ["id", "state", "checksum"],
                [(s.migration_id, "applied" if s.applied else "pending", "ok" if s.checksum_ok else "CHANGED")
                 for s in rows])


@db_app.command("url")
def url_cmd() -> None:
    """Print the connection URL of the database in use (password redacted).

    Example: psql "$(precog db url)"
    """
    typer.echo(redact_url(database_url()))


@db_app.command("reset")
def reset_cmd(yes: bool = typer.Option(False, "--yes", help="Confirm: this deletes all Precog data.")) -> None:
    """Drop and recreate an empty, migrated database. Needs --yes.

    Example: precog db reset --yes
    """
    if not yes:
        raise UserError("db reset deletes every table's data; run again with --yes to confirm")
    url = database_url()
    from urllib.parse import unquote, urlsplit

    from precog.db.embedded import with_database

    name = unquote(urlsplit(url).path.lstrip("/"))  # libpq decodes a URI's percent-escapes the same way
    if not name:
        raise UserError(f"cannot tell the database name from {redact_url(url)}")
    admin = with_database(url, "postgres")
    from psycopg import sql

    with connect(admin, autocommit=True) as conn:  # the name quoted as an identifier, whatever the URL holds
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    applied = migrate(url)
    console.print(f"database {name} recreated; applied {len(applied)} migration(s)")


@db_app.command("stop")
def stop_cmd() -> None:
    """Stop the embedded PostgreSQL server (it keeps running between commands otherwise).

    Example: precog db stop
    """
    if not is_embedded():
        raise UserError("PRECOG_DATABASE_URL points at an external server; Precog does not stop it")
    console.print("embedded database stopped" if embedded.stop() else "embedded database was not running")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
