"""Kalshi client settings from configuration (docs/configuration.md).

- markets.yaml `platforms.kalshi.read_requests_per_second` / `write_requests_per_second`: the request budget;
  `rate_limit_alert_pct`: the share of it used over a minute that raises `rate_limit_usage`;
- system.yaml `defaults.backoff` (initial_ms, max_ms, multiplier, max_retries): retries of a failed request
  (network errors, 429, 5xx; never a refusal) with exponential backoff and jitter;
- system.yaml `defaults.timeouts.api_seconds`: the REST request timeout; `websocket_ping_seconds`: how often
  the market-data WebSocket is pinged (no pong within three intervals reconnects it).
"""

from __future__ import annotations

from typing import Any

from precog.venues.kalshi.client import RetryPolicy
from precog.venues.kalshi.ratelimit import rate_limits_from_config, usage_alert_from_config

BACKOFF = "system.defaults.backoff"
TIMEOUTS = "system.defaults.timeouts"


def retry_policy_from_config(config: Any) -> RetryPolicy:
    backoff = config.get(BACKOFF)
    # a retry schedule in seconds, not money
    return RetryPolicy(max_retries=int(backoff["max_retries"]), backoff_base=int(backoff["initial_ms"]) / 1000,
                       backoff_max=int(backoff["max_ms"]) / 1000, backoff_multiplier=float(backoff["multiplier"]))


def client_options(config: Any) -> dict[str, Any]:
    """Keyword arguments of `AsyncKalshiClient` (and `from_env`) from the loaded configuration."""
    return {"rate_limits": rate_limits_from_config(config), "retry": retry_policy_from_config(config),
            "timeout": float(config.get(f"{TIMEOUTS}.api_seconds")), "usage_alert": usage_alert_from_config(config)}


def websocket_heartbeat(config: Any) -> tuple[float, float]:
    """(ping interval, pong timeout) of the Kalshi WebSocket: a dead connection is noticed within 3 pings."""
    interval = float(config.get(f"{TIMEOUTS}.websocket_ping_seconds"))
    return interval, 3 * interval
