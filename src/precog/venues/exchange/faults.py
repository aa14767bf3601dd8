"""Fault injection for client tests: error storms, slow responses, and an order create whose response
is lost after the exchange accepted it (the client must look the order up, never re-send blindly)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class ErrorFault:
    status: int
    remaining: int
    retry_after: float | None
    path_prefix: str
    method: str | None
    message: str


@dataclass
class DelayFault:
    seconds: float
    remaining: int
    path_prefix: str


class FaultInjector:
    """Thread-safe switches read by the HTTP layer on every REST request (never for /sim/)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[ErrorFault] = []
        self._delays: list[DelayFault] = []
        self._drop_creates = 0
        self.dropped_responses = 0

    def fail(self, status: int, count: int = 1, *, retry_after: float | None = None, path_prefix: str = "",
             method: str | None = None, message: str | None = None) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        with self._lock:
            self._errors.append(ErrorFault(status, count, retry_after, path_prefix,
                                           method.upper() if method else None,
                                           message or ("too many requests" if status == 429 else "injected fault")))

    def delay(self, seconds: float, count: int = 1, *, path_prefix: str = "") -> None:
        if seconds < 0 or count < 1:
            raise ValueError("delay needs seconds >= 0 and count >= 1")
        with self._lock:
            self._delays.append(DelayFault(seconds, count, path_prefix))

    def drop_next_order_create(self, count: int = 1) -> None:
        with self._lock:
            self._drop_creates += count

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()
            self._delays.clear()
            self._drop_creates = 0

    def take_error(self, method: str, path: str) -> ErrorFault | None:
        with self._lock:
            for fault in self._errors:
                if path.startswith(fault.path_prefix) and (fault.method is None or fault.method == method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._errors.remove(fault)
                    return fault
            return None

    def take_delay(self, path: str) -> float:
        with self._lock:
            for fault in self._delays:
                if path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._delays.remove(fault)
                    return fault.seconds
            return 0.0

    def take_drop(self, method: str, path: str) -> bool:
        if method != "POST" or not (path.endswith("/portfolio/orders") or path.endswith("/portfolio/orders/batched")):
            return False
        with self._lock:
            if self._drop_creates > 0:
                self._drop_creates -= 1
                self.dropped_responses += 1
                return True
            return False

    def state(self) -> dict[str, object]:
        with self._lock:
            return {
                "errors": [vars(f).copy() for f in self._errors],
                "delays": [vars(f).copy() for f in self._delays],
                "drop_next_order_creates": self._drop_creates,
                "dropped_responses": self.dropped_responses,
            }
