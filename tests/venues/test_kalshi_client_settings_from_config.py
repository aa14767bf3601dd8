"""system.yaml `defaults.backoff` and `defaults.timeouts` drive the Kalshi clients (they were accepted and unread:
the REST timeout, retries and WebSocket ping were fixed in code), and keys with no meaning are refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.ingest.settings import load_ingest_settings
from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy
from precog.venues.kalshi.environments import KalshiEnvironment
from precog.venues.kalshi.errors import KalshiTransportError
from precog.venues.kalshi.settings import client_options, retry_policy_from_config, websocket_heartbeat

SLOW = """\
defaults:
  backoff: {initial_ms: 20, max_ms: 40, multiplier: 3, max_retries: 2}
  timeouts: {api_seconds: 1, websocket_ping_seconds: 7}
"""


def _cfg(tmp_path: Path, text: str) -> object:
    (tmp_path / "system.yaml").write_text(text)
    return load_config(tmp_path, use_env=False, use_overrides=False, environ={})


async def test_a_venue_that_never_answers_times_out_and_is_retried_as_configured(tmp_path: Path) -> None:
    """A server that accepts and never answers: each attempt ends after `api_seconds`, and the request is tried
    1 + max_retries times (counted by the server) before the client gives up with a clear error."""
    attempts = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        await reader.read(65536)  # the request; no answer
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/trade-api/v2"
    client = AsyncKalshiClient(KalshiEnvironment("local", url, url.replace("http", "ws")),
                               **client_options(_cfg(tmp_path, SLOW)))
    started = time.monotonic()
    try:
        with pytest.raises(KalshiTransportError, match="gave up after 3 attempts"):
            await client.get_markets(limit=1)
    finally:
        await client.aclose()
        server.close()
    took = time.monotonic() - started
    assert attempts == 3
    assert 3.0 <= took < 10.0  # three 1 s timeouts (not the old fixed 10 s each) plus short backoffs


def test_backoff_grows_by_the_configured_multiplier_up_to_the_cap(tmp_path: Path) -> None:
    policy = retry_policy_from_config(_cfg(tmp_path, SLOW))
    assert (policy.max_retries, policy.backoff_base, policy.backoff_max, policy.backoff_multiplier) == (
        2, 0.02, 0.04, 3.0)
    for attempt, cap in ((0, 0.02), (1, 0.04), (5, 0.04)):  # 20 ms, 60 ms capped at 40 ms
        assert all(cap / 2 <= policy.backoff(attempt) <= cap for _ in range(50))


def test_ingestion_takes_the_timeouts_retries_and_ping(tmp_path: Path) -> None:
    settings = load_ingest_settings(_cfg(tmp_path, SLOW))
    assert settings.kalshi_timeout == 1.0 and settings.kalshi_retry.max_retries == 2
    assert settings.kalshi_heartbeat == (7.0, 21.0) == websocket_heartbeat(_cfg(tmp_path, SLOW))


def test_the_packaged_defaults_keep_the_clients_previous_behaviour() -> None:
    cfg = load_config(None, use_env=False, use_overrides=False, environ={})
    options = client_options(cfg)
    assert options["timeout"] == 10.0 and options["retry"] == RetryPolicy()
    assert websocket_heartbeat(cfg) == (10.0, 30.0)


@pytest.mark.parametrize(("text", "key"), [
    ("defaults:\n  backoff: {initial_ms: 5000, max_ms: 1000}\n", "max_ms"),
    ("defaults:\n  backoff: {multiplier: 0.5}\n", "multiplier"),
    ("defaults:\n  timeouts: {api_seconds: 0}\n", "api_seconds"),
    ("database:\n  pool_min_size: 5\n  pool_max_size: 2\n", "pool_max_size"),
    ("health_checks:\n  max_memory_pct: 150\n", "max_memory_pct"),
])
def test_out_of_range_values_are_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        _cfg(tmp_path, text)


@pytest.mark.parametrize(("text", "hint"), [
    ("defaults:\n  rate_limits:\n    requests_per_minute: 50\n", "read_requests_per_second"),
    ("defaults:\n  timeouts:\n    db_query_seconds: 5\n", "statement_timeout_ms"),
])
def test_keys_with_no_meaning_are_refused_with_what_to_use(tmp_path: Path, text: str, hint: str) -> None:
    with pytest.raises(ConfigError, match="not used by Precog") as err:
        _cfg(tmp_path, text)
    assert hint in str(err.value)
