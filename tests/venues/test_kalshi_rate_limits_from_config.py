"""markets.yaml `platforms.kalshi.read/write_requests_per_second` become the REST client's token buckets.

The keys were documented ("venues ... rate limits") and validated nowhere; the client always used the Basic
tier. A zero or negative budget would stall every request, so the loader refuses it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import resolve_environment
from precog.venues.kalshi.ratelimit import RateLimits, rate_limits_from_config


def test_the_configured_budget_becomes_the_clients_buckets(tmp_path: Path) -> None:
    (tmp_path / "markets.yaml").write_text(
        "platforms:\n  kalshi:\n    read_requests_per_second: 30\n    write_requests_per_second: 12.5\n")
    limits = rate_limits_from_config(load_config(tmp_path, use_env=False, use_overrides=False, environ={}))
    assert limits == RateLimits(30.0, 12.5)
    client = AsyncKalshiClient(resolve_environment("local"), rate_limits=limits)
    assert (client.limiter.read.rate, client.limiter.write.rate) == (30.0, 12.5)


def test_the_packaged_default_is_kalshis_basic_tier() -> None:
    cfg = load_config(None, use_env=False, use_overrides=False, environ={})
    assert rate_limits_from_config(cfg) == RateLimits(20.0, 10.0)


@pytest.mark.parametrize("value", ["0", "-5", "'fast'"])
def test_a_budget_that_is_not_a_positive_number_is_refused_at_load(tmp_path: Path, value: str) -> None:
    (tmp_path / "markets.yaml").write_text(f"platforms:\n  kalshi:\n    read_requests_per_second: {value}\n")
    with pytest.raises(ConfigError, match="platforms.kalshi.read_requests_per_second"):
        load_config(tmp_path, use_env=False, use_overrides=False, environ={})
