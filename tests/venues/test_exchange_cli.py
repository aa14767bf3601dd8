"""`precog exchange serve` as a user runs it: a real subprocess serving HTTP on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from precog.venues.exchange.auth import generate_key_pair
from venues.conftest import load_private_key, sign_headers


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "PRECOG_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}


def _start(home: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "precog", "exchange", "serve", "--port", "0", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(home))
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"server exited before announcing itself: {''.join(lines)} {err}")
        lines.append(line)
        if line.rstrip() == "}":
            return proc, json.loads("".join(lines))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    proc, info = _start(tmp_path, "--scenario", "nfl", "--balance", "2500")
    try:
        yield proc, info
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serve_generates_a_funded_key_and_serves_kalshi(served: tuple[subprocess.Popen[str], dict[str, Any]],
                                                        kalshi_auth: Any) -> None:
    proc, info = served
    assert info["base_url"].startswith("http://127.0.0.1:") and info["base_url"].endswith("/trade-api/v2")
    account = info["accounts"][0]
    key_path = Path(account["private_key_path"])
    assert account["generated"] is True and key_path.exists() and (key_path.stat().st_mode & 0o077) == 0
    markets = httpx.get(f"{info['base_url']}/markets", params={"series_ticker": "KXNFLGAME"}).json()["markets"]
    assert len(markets) == 6 and all(m["status"] == "active" for m in markets)
    with httpx.Client(base_url=info["base_url"], auth=kalshi_auth(account["key_id"], key_path)) as client:
        assert client.get("/portfolio/balance").json()["balance"] == 250_000
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def _ws_subscribe_ticker(ws_url: str, headers: dict[str, str] | None) -> dict[str, Any]:
    """Connect (signed when `headers`), subscribe to the public ticker channel and return the reply."""
    async def run() -> dict[str, Any]:
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"]}}))
            return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]

    return asyncio.run(run())


def test_serve_refuses_an_unsigned_websocket_unless_allowed(
        served: tuple[subprocess.Popen[str], dict[str, Any]], tmp_path: Path) -> None:
    _, info = served
    assert info["unsigned_ws"] is False
    with pytest.raises(InvalidStatus) as refused:
        _ws_subscribe_ticker(info["ws_url"], None)
    assert refused.value.response.status_code == 401
    assert "handshake must be signed" in json.loads(refused.value.response.body)["error"]["message"]
    account = info["accounts"][0]
    signed = sign_headers(load_private_key(Path(account["private_key_path"])), account["key_id"], "GET",
                          "/trade-api/ws/v2")
    assert _ws_subscribe_ticker(info["ws_url"], signed)["type"] == "subscribed"

    proc, opened = _start(tmp_path / "open", "--allow-unsigned-ws")
    try:
        assert opened["unsigned_ws"] is True
        reply = _ws_subscribe_ticker(opened["ws_url"], None)
        assert reply["type"] == "subscribed" and reply["msg"]["channel"] == "ticker"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_serve_registers_given_public_keys(tmp_path: Path, kalshi_auth: Any) -> None:
    k1, p1, pub1 = generate_key_pair(tmp_path / "k")
    k2, p2, pub2 = generate_key_pair(tmp_path / "k")
    (tmp_path / "k1.pub").write_bytes(pub1)
    (tmp_path / "k2.pub").write_bytes(pub2)
    proc, info = _start(tmp_path, "--key-id", k1, "--public-key", str(tmp_path / "k1.pub"), "--balance", "10",
                        "--key-id", k2, "--public-key", str(tmp_path / "k2.pub"), "--balance", "20.50")
    try:
        assert [a["key_id"] for a in info["accounts"]] == [k1, k2]
        for key_id, path, cents in ((k1, p1, 1000), (k2, p2, 2050)):
            with httpx.Client(base_url=info["base_url"], auth=kalshi_auth(key_id, path)) as client:
                assert client.get("/portfolio/balance").json()["balance"] == cents
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


@pytest.mark.parametrize(("args", "message"), [
    (["--key-id", "abc"], "one --public-key per --key-id"),
    (["--key-id", "abc", "--public-key", "/nonexistent/key.pem"], "/nonexistent/key.pem"),
    (["--scenario", "moonshot"], "unknown --scenario 'moonshot'"),
    (["--host", "0.0.0.0"], "not a loopback address"),
    (["--balance", "ten"], "--balance"),
    (["--state", "/proc/no-such-dir/state.json"], "cannot write"),
])
def test_serve_refuses_bad_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
                                   message: str) -> None:
    from typer.testing import CliRunner

    from precog.cli.errors import UserError
    from precog.cli.main import app

    monkeypatch.setenv("PRECOG_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["exchange", "serve", "--port", "0", *args])
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception)


def test_serve_refuses_a_key_file_that_is_not_a_public_key(tmp_path: Path) -> None:
    """Through the real entry point: one readable line on stderr, exit code 1, no traceback."""
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    result = subprocess.run([sys.executable, "-m", "precog", "exchange", "serve", "--port", "0", "--key-id", "x",
                             "--public-key", str(bad)], capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert result.returncode == 1 and "not a PEM RSA public key" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
