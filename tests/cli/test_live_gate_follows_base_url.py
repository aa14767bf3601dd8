"""Live trading against Kalshi production needs the explicit confirmation (--confirm-live or
trading.live_trading_confirmed), whatever the environment *name* is. README: "Live trading moves real money
and needs every explicit step"; docs/operations.md: "Live trading on prod refuses to start without
--confirm-live".

`check_live_allowed` looks at where the orders would really go, not only at the --env word: KALSHI_BASE_URL
can point any environment at the prod host (docs/kalshi.md: "overrides the REST base of any environment")."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import precog.cli.run as run_cli
from precog.cli.errors import UserError
from precog.venues.kalshi.client import AsyncKalshiClient

PROD_REST = "https://api.elections.kalshi.com/trade-api/v2"


class _Cfg:
    def get(self, key: str, default: Any = None) -> Any:
        return default  # trading.live_trading_confirmed is false by default


class _ClientBuilt(Exception):
    def __init__(self, base_url: str, signed: bool) -> None:
        super().__init__(base_url)
        self.base_url = base_url
        self.signed = signed


def test_live_run_on_prod_host_needs_confirmation_even_when_env_is_demo(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "prod.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    for var in ("KALSHI_DEMO_KEY_ID", "KALSHI_DEMO_KEYFILE", "KALSHI_API_KEY", "KALSHI_WS_URL", "KALSHI_ENV"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KALSHI_BASE_URL", PROD_REST)
    monkeypatch.setenv("KALSHI_API_KEY_ID", "prod-key-id")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(pem))
    # no database needed: stop right where the live client is built
    monkeypatch.setattr("precog.db.connection.database_url", lambda: "postgresql://unused/none")
    monkeypatch.setattr("precog.db.migrate.ensure_migrated", lambda url: None)
    monkeypatch.setattr("precog.config.loader.load_config", lambda **kw: _Cfg())
    original = AsyncKalshiClient.from_env.__func__  # type: ignore[attr-defined]

    def spy(cls: type[AsyncKalshiClient], *a: Any, **kw: Any) -> AsyncKalshiClient:
        client = original(cls, *a, **kw)
        raise _ClientBuilt(client.environment.base_url, client.signer is not None)

    monkeypatch.setattr(AsyncKalshiClient, "from_env", classmethod(spy))

    outcome: str
    try:
        run_cli.run(paper=False, venue="kalshi", env="demo", confirm_live=False, games=1, speed=1.0, seed=None,
                    interval=1.0, duration=1.0, quiet=True, ingest=False, notify=False)
        outcome = "ran"
    except UserError as exc:
        outcome = f"refused: {exc}"
    except _ClientBuilt as built:
        outcome = f"live signed client built for {built.base_url} (signed={built.signed})"
    # refused like `--live --env prod` without --confirm-live, before a signed prod client is built
    assert outcome.startswith("refused"), outcome
    assert urlsplit(PROD_REST).hostname == "api.elections.kalshi.com"
