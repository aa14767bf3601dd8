"""Stream test helpers: a fault injector that counts REST requests (the local exchange asks it about every
request it serves), and a wait for a condition the stream brings about."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from precog.venues.exchange.faults import FaultInjector


class CountingFaults(FaultInjector):
    """Counts REST requests by (method, path); injects whatever faults are queued as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: Counter[tuple[str, str]] = Counter()

    def take_error(self, method: str, path: str) -> Any:
        self.requests[(method, path)] += 1
        return super().take_error(method, path)

    def gets(self, path: str) -> int:
        return self.requests[("GET", path)]


async def wait_for(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)
