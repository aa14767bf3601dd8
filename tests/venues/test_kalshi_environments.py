"""`--env demo|prod|local`, `--base-url`, KALSHI_BASE_URL / KALSHI_WS_URL / KALSHI_ENV."""

from __future__ import annotations

import pytest

from precog.venues.kalshi.environments import resolve_environment, ws_url_for
from precog.venues.kalshi.errors import KalshiConfigError
from precog.venues.kalshi.ratelimit import TokenBucket, tier_limits


def test_named_environments() -> None:
    assert resolve_environment("demo", environ={}).base_url == "https://demo-api.kalshi.co/trade-api/v2"
    prod = resolve_environment("prod", environ={})
    assert prod.base_url == "https://api.elections.kalshi.com/trade-api/v2"
    assert prod.ws_url == "wss://api.elections.kalshi.com/trade-api/ws/v2"
    local = resolve_environment("local", environ={})
    assert local.base_url == "http://127.0.0.1:8765/trade-api/v2" and local.path_prefix == "/trade-api/v2"
    assert resolve_environment(None, environ={}).name == "demo"
    assert resolve_environment(None, environ={"KALSHI_ENV": "prod"}).name == "prod"


def test_base_url_overrides_and_ws_derivation() -> None:
    env = resolve_environment("local", "http://127.0.0.1:9000", environ={})
    assert env.base_url == "http://127.0.0.1:9000/trade-api/v2"
    assert env.ws_url == "ws://127.0.0.1:9000/trade-api/ws/v2"
    env = resolve_environment("prod", environ={"KALSHI_BASE_URL": "https://proxy.example/trade-api/v2/"})
    assert env.base_url == "https://proxy.example/trade-api/v2" and env.ws_url == "wss://proxy.example/trade-api/ws/v2"
    env = resolve_environment("demo", "http://h:1/trade-api/v2", environ={"KALSHI_WS_URL": "ws://other/ws"})
    assert env.ws_url == "ws://other/ws"
    assert ws_url_for("https://a.b/trade-api/v2") == "wss://a.b/trade-api/ws/v2"


def test_bad_environment_and_url_are_clear_errors() -> None:
    with pytest.raises(KalshiConfigError, match="unknown Kalshi environment 'staging'"):
        resolve_environment("staging", environ={})
    with pytest.raises(KalshiConfigError, match="must look like"):
        resolve_environment("local", "127.0.0.1:8765", environ={})
    with pytest.raises(KalshiConfigError, match="tier"):
        tier_limits("platinum")


async def test_token_bucket_waits_for_tokens() -> None:
    import time

    bucket = TokenBucket(rate=50, capacity=5)
    started = time.monotonic()
    for _ in range(15):
        await bucket.acquire()
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.0  # 5 from the burst, 10 more at 50/s = 0.2 s
    assert tier_limits("basic").write_per_second < tier_limits("basic").read_per_second
