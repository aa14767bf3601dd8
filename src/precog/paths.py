"""Where Precog keeps its files."""

from __future__ import annotations

import os
from pathlib import Path


def precog_home() -> Path:
    """`$PRECOG_HOME`, else `~/.local/share/precog`.

    As root the embedded PostgreSQL widens permissions on every parent of its data directory and runs
    as a dedicated system user, so root defaults to /var/lib/precog instead of somewhere under /root.
    """
    env = os.environ.get("PRECOG_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/precog")
    return Path.home() / ".local" / "share" / "precog"


def shared_data_dir() -> Path | None:
    """The project's shared public data (`../shared/data` next to the checkout), or `$PRECOG_SHARED_DATA`."""
    env = os.environ.get("PRECOG_SHARED_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if (parent / "pyproject.toml").exists() and candidate.is_dir():
            return candidate
    return None
