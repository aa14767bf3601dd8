"""Client-side rate limiting: separate token buckets for reads and writes (Kalshi budgets them apart).

Writes are order create/amend/decrease/cancel; a batch costs one token per order (0.2 per cancel in a
batch cancel). The tier numbers are Kalshi's published per-second budgets; every one is configurable.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from precog.venues.kalshi.errors import KalshiConfigError


@dataclass(frozen=True, slots=True)
class RateLimits:
    read_per_second: float
    write_per_second: float
    burst_seconds: float = 1.0  # bucket capacity = rate x burst_seconds


TIERS: dict[str, RateLimits] = {
    "basic": RateLimits(20, 10),
    "advanced": RateLimits(30, 30),
    "premier": RateLimits(100, 100),
    "prime": RateLimits(400, 400),
    # the local exchange on loopback: effectively unlimited, so benchmarks measure the client itself
    "unlimited": RateLimits(1_000_000, 1_000_000),
}


def tier_limits(tier: str) -> RateLimits:
    try:
        return TIERS[tier.lower()]
    except KeyError:
        raise KalshiConfigError(f"unknown Kalshi rate-limit tier {tier!r}; use one of {', '.join(TIERS)}") from None


# markets.yaml keys of the client-side budget (docs/configuration.md)
READ_KEY = "markets.platforms.kalshi.read_requests_per_second"
WRITE_KEY = "markets.platforms.kalshi.write_requests_per_second"
USAGE_ALERT_KEY = "markets.platforms.kalshi.rate_limit_alert_pct"
USAGE_WINDOW_SECONDS = 60.0  # usage = tokens taken over the last minute / the budget of a minute


def rate_limits_from_config(config: Any) -> RateLimits:
    """The request budget configured in markets.yaml (read and write requests per second).

    `config` is a loaded `precog.config.loader.Config` (anything with `get(key)`); both keys are required
    (the packaged defaults have them: Kalshi's Basic tier, 20 reads and 10 writes a second)."""
    read, write = config.get(READ_KEY), config.get(WRITE_KEY)
    for key, value in ((READ_KEY, read), (WRITE_KEY, write)):
        if isinstance(value, bool) or not isinstance(value, int | Decimal) or value <= 0:
            raise KalshiConfigError(f"{key} must be a positive number of requests per second, got {value!r}")
    # the token buckets work in float seconds; the budget is a rate, not money
    return RateLimits(float(read), float(write))


def usage_alert_from_config(config: Any) -> float:
    """The share of a budget used over a minute that raises `rate_limit_usage` (spec: alert at 80%)."""
    value = config.get(USAGE_ALERT_KEY)
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or not 0 < value <= 1:
        raise KalshiConfigError(f"{USAGE_ALERT_KEY} must be a share of the budget in (0, 1], got {value!r}")
    return float(value)


class TokenBucket:
    """Async token bucket. `acquire(cost)` waits until `cost` tokens are available, then takes them."""

    def __init__(self, rate: float, capacity: float) -> None:
        if rate <= 0 or capacity <= 0:
            raise KalshiConfigError(f"rate limit must be positive (rate={rate}, capacity={capacity})")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock: asyncio.Lock | None = None
        self._taken: deque[tuple[float, float]] = deque()  # (when, tokens) of the last minute's requests
        self._taken_sum = 0.0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self, cost: float = 1.0) -> float:
        """Take the tokens if available and return 0, else return the seconds to wait (nothing taken)."""
        now = time.monotonic()
        self._refill(now)
        cost = min(cost, self.capacity)
        if self._tokens >= cost:
            self._tokens -= cost
            self._taken.append((now, cost))
            self._taken_sum += cost
            return 0.0
        return (cost - self._tokens) / self.rate

    def usage(self) -> float:
        """Share of the budget taken over the last minute (1.0: every token the rate allowed)."""
        horizon = time.monotonic() - USAGE_WINDOW_SECONDS
        taken = self._taken
        while taken and taken[0][0] <= horizon:
            self._taken_sum -= taken.popleft()[1]
        return max(0.0, self._taken_sum) / (self.rate * USAGE_WINDOW_SECONDS)

    async def acquire(self, cost: float = 1.0) -> None:
        wait = self.try_acquire(cost)
        if wait == 0.0:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # FIFO among waiters so a big batch is not starved
            while (wait := self.try_acquire(cost)) > 0:
                await asyncio.sleep(wait)

    def penalize(self, seconds: float) -> None:
        """The venue said 429: drain the bucket so our own callers back off too."""
        self._refill(time.monotonic())
        self._tokens = min(self._tokens, -seconds * self.rate)


class RateLimiter:
    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self.read = TokenBucket(limits.read_per_second, max(1.0, limits.read_per_second * limits.burst_seconds))
        self.write = TokenBucket(
            limits.write_per_second, max(1.0, limits.write_per_second * limits.burst_seconds)
        )

    def bucket(self, write: bool) -> TokenBucket:
        return self.write if write else self.read
