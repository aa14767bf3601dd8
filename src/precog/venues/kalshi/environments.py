"""Where each Kalshi environment lives: `--env demo|prod|local`, overridable by `--base-url` /
`KALSHI_BASE_URL` (and `KALSHI_WS_URL` for the stream)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from precog.venues.kalshi.errors import KalshiConfigError

API_PREFIX = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"
LOCAL_DEFAULT_PORT = 8765


@dataclass(frozen=True, slots=True)
class KalshiEnvironment:
    name: str
    base_url: str  # REST base including /trade-api/v2
    ws_url: str

    @property
    def path_prefix(self) -> str:
        return urlsplit(self.base_url).path.rstrip("/")


ENVIRONMENTS: dict[str, KalshiEnvironment] = {
    "demo": KalshiEnvironment(
        "demo", "https://demo-api.kalshi.co/trade-api/v2", "wss://demo-api.kalshi.co/trade-api/ws/v2"
    ),
    "prod": KalshiEnvironment(
        "prod",
        "https://api.elections.kalshi.com/trade-api/v2",
        "wss://api.elections.kalshi.com/trade-api/ws/v2",
    ),
    "local": KalshiEnvironment(
        "local",
        f"http://127.0.0.1:{LOCAL_DEFAULT_PORT}/trade-api/v2",
        f"ws://127.0.0.1:{LOCAL_DEFAULT_PORT}/trade-api/ws/v2",
    ),
}


def ws_url_for(base_url: str) -> str:
    """The WebSocket URL served next to a REST base URL (http->ws, /trade-api/v2 -> /trade-api/ws/v2)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    path = path[: -len(API_PREFIX)] + WS_PATH if path.endswith(API_PREFIX) else path + WS_PATH
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def normalize_base_url(url: str) -> str:
    """Accept `http://host:port` or the full `.../trade-api/v2`; always return the full REST base."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise KalshiConfigError(f"Kalshi base URL {url!r} must look like https://host/trade-api/v2")
    path = parts.path.rstrip("/")
    if not path:
        path = API_PREFIX
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def resolve_environment(
    env: str | None = None,
    base_url: str | None = None,
    ws_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> KalshiEnvironment:
    """Pick the environment: explicit base URL > KALSHI_BASE_URL > the named env (default demo)."""
    environ = os.environ if environ is None else environ
    name = (env or environ.get("KALSHI_ENV") or "demo").strip().lower()
    if name not in ENVIRONMENTS:
        raise KalshiConfigError(f"unknown Kalshi environment {name!r}; use one of {', '.join(ENVIRONMENTS)}")
    chosen = ENVIRONMENTS[name]
    url = base_url or environ.get("KALSHI_BASE_URL")
    if url:
        rest = normalize_base_url(url)
        ws = ws_url or environ.get("KALSHI_WS_URL") or ws_url_for(rest)
        return KalshiEnvironment(name, rest, ws)
    ws = ws_url or environ.get("KALSHI_WS_URL") or chosen.ws_url
    return KalshiEnvironment(name, chosen.base_url, ws)
