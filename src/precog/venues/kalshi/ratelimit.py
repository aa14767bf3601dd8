"""Client-side rate limiting: separate token buckets for reads and writes (Kalshi budgets them apart).

Writes are order create/amend/decrease/cancel; a batch costs one token per order (0.2 per cancel in a
batch cancel). The tier numbers are Kalshi's published per-second budgets; every one is configurable.
"""

from __future__ import annotations

import asyncio
import time
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
            return 0.0
        return (cost - self._tokens) / self.rate

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
