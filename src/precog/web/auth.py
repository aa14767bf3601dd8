"""The dashboard's write token: where it comes from and how a request proves it has it.

Reading is open to whoever can reach the (loopback-bound) server; every write needs
`Authorization: Bearer <token>`. The token is PRECOG_DASHBOARD_TOKEN, else the content of
$PRECOG_HOME/dashboard_token (created 0600 at first start). It is compared in constant time and never
written to a log, a page or an error message.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from precog.paths import precog_home

TOKEN_ENV = "PRECOG_DASHBOARD_TOKEN"
TOKEN_FILE_NAME = "dashboard_token"
MIN_TOKEN_LENGTH = 16


class TokenError(ValueError):
    """The configured token is unusable (too short, unreadable file, unsafe permissions)."""


@dataclass(frozen=True)
class DashboardToken:
    value: str = ""
    source: str = ""  # "env" | path of the token file
    generated: bool = False  # created just now: the CLI prints it this once

    def __repr__(self) -> str:  # keep the secret out of tracebacks and debug logs
        return f"DashboardToken(source={self.source!r}, generated={self.generated})"

    __str__ = __repr__

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.value.encode(), presented.encode())


def token_file() -> Path:
    return precog_home() / TOKEN_FILE_NAME


def _check(value: str, where: str) -> str:
    value = value.strip()
    if len(value) < MIN_TOKEN_LENGTH:
        raise TokenError(f"the dashboard token from {where} is shorter than {MIN_TOKEN_LENGTH} characters")
    if any(c.isspace() for c in value):
        raise TokenError(f"the dashboard token from {where} contains whitespace")
    return value


def load_or_create_token(path: Path | None = None) -> DashboardToken:
    """PRECOG_DASHBOARD_TOKEN, else the token file, else a new random token stored in the file (0600)."""
    env = os.environ.get(TOKEN_ENV, "")
    if env.strip():
        return DashboardToken(_check(env, TOKEN_ENV), "env")
    path = path or token_file()
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise TokenError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenError(f"cannot read the dashboard token file {path}: {exc.strerror}") from exc
        return DashboardToken(_check(text, str(path)), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    # O_EXCL: two dashboards starting at once never overwrite each other's token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_token(path)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)
    return DashboardToken(value, str(path), generated=True)


def bearer_of(header: str | None) -> str | None:
    """The token in an `Authorization: Bearer ...` header, or None when there is none."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not rest.strip():
        return None
    return rest.strip()
