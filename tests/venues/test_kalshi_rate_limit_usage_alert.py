"""Spec 8.2: "alert at 80% of a rate limit". A budget (reads or writes apart) used at least
`markets.platforms.kalshi.rate_limit_alert_pct` over the last minute raises one `rate_limit_usage` alert
(medium) per episode, through the client's alert raiser (ingestion's, and `precog run --venue kalshi`'s loop
manager, which before this change gave the REST client none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.alerts.manager import AlertManager
from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import resolve_environment
from precog.venues.kalshi.ratelimit import RateLimits
from precog.venues.kalshi.settings import client_options
from venues.conftest import LocalExchange


def _usage_alerts(db_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT severity, category, component, message, details, suppressed FROM alerts "
                            "WHERE alert_type = 'rate_limit_usage' ORDER BY alert_id").fetchall()


async def test_a_budget_used_to_80_percent_in_a_minute_raises_one_alert(local_exchange: LocalExchange,
                                                                        db_url: str) -> None:
    manager = AlertManager(db_url)
    # one read a second with a minute's burst: 60 reads may go at once, 48 of them are 80% of the minute's budget
    limits = RateLimits(read_per_second=1, write_per_second=1, burst_seconds=60)
    client = AsyncKalshiClient(resolve_environment("local", local_exchange.base_url),
                               signer=KalshiSigner.from_files(local_exchange.key_id, local_exchange.private_key_path),
                               rate_limits=limits, alerts=manager, usage_alert=0.8)
    try:
        for _ in range(47):
            await client.get_balance()
        manager.flush()
        assert _usage_alerts(db_url) == []  # 47 of 60: under 80%
        await client.get_balance()  # the 48th: 80%
        for _ in range(8):  # still over: the same episode
            await client.get_balance()
        manager.flush()
    finally:
        await client.aclose()
        manager.close()
    (alert,) = _usage_alerts(db_url)
    severity, category, component, message, details, suppressed = alert
    assert (severity, category, component, suppressed) == ("medium", "system", "kalshi_api", False)
    assert details["kind"] == "read" and 0.8 <= details["usage"] < 0.82 and details["per_second"] == 1.0
    assert "markets.platforms.kalshi.read_requests_per_second" in message
    assert "markets.platforms.kalshi.rate_limit_alert_pct" in message
    assert client.limiter.write.usage() == 0.0  # writes have their own budget, untouched


def test_the_alert_share_comes_from_markets_yaml_and_is_range_checked(tmp_path: Path) -> None:
    (tmp_path / "markets.yaml").write_text("platforms:\n  kalshi:\n    rate_limit_alert_pct: 0.5\n")
    assert client_options(load_config(tmp_path, use_env=False, use_overrides=False, environ={}))[
        "usage_alert"] == 0.5
    assert client_options(load_config(None, use_env=False, use_overrides=False, environ={}))["usage_alert"] == 0.8
    (tmp_path / "markets.yaml").write_text("platforms:\n  kalshi:\n    rate_limit_alert_pct: 1.5\n")
    with pytest.raises(ConfigError, match="platforms.kalshi.rate_limit_alert_pct"):
        load_config(tmp_path, use_env=False, use_overrides=False, environ={})
