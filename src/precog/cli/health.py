"""`precog health`: is everything Precog needs in order?"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

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
    min_disk_gb, max_memory_pct = Decimal(5), 80  # the packaged defaults, if the configuration does not load
    try:
        cfg = load_config(db_url=url)
        checks.append({"check": "config", "ok": True, "detail": "valid"})
        min_disk_gb = Decimal(cfg.get("system.health_checks.min_free_disk_gb"))
        max_memory_pct = int(cfg.get("system.health_checks.max_memory_pct"))
    except Exception as exc:  # noqa: BLE001
        checks.append({"check": "config", "ok": False, "detail": str(exc)})
    home = precog_home()
    probe = home if home.exists() else next((p for p in home.parents if p.exists()), home)
    free_gb = Decimal(shutil.disk_usage(probe).free) / Decimal(10**9)
    checks.append({"check": "disk", "ok": free_gb >= min_disk_gb,
                   "detail": f"{free_gb:.1f} GB free at {probe} (minimum {min_disk_gb} GB: "
                             "system.health_checks.min_free_disk_gb)"})
    used = memory_used_pct()
    checks.append({"check": "memory", "ok": used is None or used <= max_memory_pct,
                   "detail": (f"{used}% of the machine's memory in use (maximum {max_memory_pct}%: "
                              "system.health_checks.max_memory_pct)") if used is not None
                   else "not measurable on this platform"})
    return checks


def memory_used_pct(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The share of the machine's memory in use (MemTotal - MemAvailable), in whole percent; None where the
    kernel does not say (no /proc/meminfo)."""
    try:
        fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
        total = int(fields["MemTotal"].split()[0])
        available = int(fields["MemAvailable"].split()[0])
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return round(100 * (total - available) / total) if total > 0 else None


def health(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Check the database, migrations, configuration, disk space and memory. Exits 1 when a check fails.

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
