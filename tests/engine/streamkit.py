"""A fault injector that counts REST requests: the local exchange asks it about every request it serves."""

from __future__ import annotations

from collections import Counter
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
