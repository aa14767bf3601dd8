"""The API key id (a secret for this project: tests/reliability/test_rel_secrets.py scans for it with
LOG_LEVEL=DEBUG / PRECOG_DEBUG=1) reaches no log line, even at DEBUG. `precog --debug` (or PRECOG_DEBUG=1)
sets the root logger to DEBUG (src/precog/cli/main.py), and the WebSocket handshake carries
KALSHI-ACCESS-KEY."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.server import serve

from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.events import ConnectionState
from precog.venues.kalshi.websocket import KalshiWebSocket

KEY_ID = "auditkeyid-5f1c2b7e-0000-4d1e-9c3a-secretsecret"


def _signer(tmp_path: Path) -> KalshiSigner:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "k.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return KalshiSigner.from_files(KEY_ID, path)


async def test_websocket_handshake_does_not_log_the_api_key_id(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    async def handler(conn: object) -> None:
        await asyncio.sleep(0.5)

    caplog.set_level(logging.DEBUG)  # what `precog --debug` does (logging.basicConfig(level=DEBUG))
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ws = KalshiWebSocket(f"ws://127.0.0.1:{port}/trade-api/ws/v2", signer=_signer(tmp_path), tickers=["T"],
                             channels=["ticker"])
        ws.start()
        try:
            await ws.wait_for_state(ConnectionState.CONNECTED, timeout=5)
        finally:
            await ws.stop()
    # websockets.server is the test server's own log, not ours
    leaked = [f"{r.name}: {r.getMessage()}" for r in caplog.records
              if KEY_ID in r.getMessage() and not r.name.startswith("websockets.server")]
    # no log line contains the key id: websockets' client logger prints every handshake header, with
    # KALSHI-ACCESS-KEY (and the signature) masked
    assert leaked == [], leaked
