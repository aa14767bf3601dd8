"""`precog health`: is everything Precog needs in order?"""

from __future__ import annotations

import shutil

import typer

from precog.cli.output import console, print_json, print_table
from precog.paths import precog_home


def check_health() -> list[dict[str, object]]:
    from precog.config.loader import load_config
    from precog.db.connection import connect, database_url, redact_url
    from precog.db.migrate import pending, verify_checksums

    checks: list[dict[str, object]] = []
    url: str | None = None
    try:
        url = database_url()
        with connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        checks.append({"check": "database", "ok": True, "detail": f"{redact_url(url)} (PostgreSQL {version[0] if version else '?'})"})
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks.append({"check": "database", "ok": False, "detail": str(exc)})
        url = None
    if url:
        try:
            todo = pending(url)
            verify_checksums(url)
            checks.append({"check": "migrations", "ok": not todo,
                           "detail": "current" if not todo else f"pending: {', '.join(todo)} (run precog db migrate)"})
        except Exception as exc:  # noqa: BLE001
            checks.append({"check": "migrations", "ok": False, "detail": str(exc)})
    try:
        load_config(db_url=url)
        checks.append({"check": "config", "ok": True, "detail": "valid"})
    except Exception as exc:  # noqa: BLE001
        checks.append({"check": "config", "ok": False, "detail": str(exc)})
    home = precog_home()
    probe = home if home.exists() else next((p for p in home.parents if p.exists()), home)
    free_gb = shutil.disk_usage(probe).free / 1e9
    checks.append({"check": "disk", "ok": free_gb >= 5, "detail": f"{free_gb:.1f} GB free at {probe} (minimum 5 GB)"})
    return checks


def health(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Check the database, migrations, configuration and disk space. Exits 1 when a check fails.

    Example: precog health --json
    """
    checks = check_health()
    ok = all(c["ok"] for c in checks)
    if json_out:
        print_json({"ok": ok, "checks": checks})
    else:
        print_table("health", ["check", "status", "detail"],
                    [(c["check"], "ok" if c["ok"] else "FAIL", c["detail"]) for c in checks])
        console.print("healthy" if ok else "[red]unhealthy[/red]")
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("health")(health)
