"""Clocks for the exchange. The engine never reads the system time itself; it asks its clock.

`WallClock` follows real time plus an adjustable offset (so `/sim/clock` can move a live server forward);
`SimClock` stands still until told to move (backtests and deterministic tests).
"""

from __future__ import annotations

import functools
import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the clock forward (only ever forward)."""
        ...


class WallClock:
    """Real time plus an offset that only grows."""

    def __init__(self, offset_ms: int = 0) -> None:
        self._offset_ms = offset_ms

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self._offset_ms

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got {seconds} seconds")
        self._offset_ms += int(round(seconds * 1000))

    @property
    def offset_ms(self) -> int:
        return self._offset_ms


class SimClock:
    """A clock that moves only when told (start defaults to now, rounded to the second)."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now_ms = int(time.time()) * 1000 if start_ms is None else int(start_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got {seconds} seconds")
        with self._lock:
            self._now_ms += int(round(seconds * 1000))

    def set_ms(self, ms: int) -> None:
        with self._lock:
            if ms < self._now_ms:
                raise ValueError("the clock only moves forward")
            self._now_ms = int(ms)


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC timestamp as Kalshi writes them (`2025-10-05T17:00:00Z`, millis when present)."""
    seconds, millis = divmod(ms, 1000)
    if millis:
        return f"{_iso_second(seconds)}.{millis:03d}Z"
    return _iso_second(seconds) + "Z"


@functools.lru_cache(maxsize=256)
def _iso_second(seconds: int) -> str:
    # every message of a busy second shares this text (strftime per message was a visible cost)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_time_ms(value: object, *, field: str) -> int:
    """Accept RFC 3339 text, Unix seconds (int) or milliseconds (int > 1e11); return ms."""
    from precog.venues.exchange.errors import InvalidRequest

    if isinstance(value, bool):
        raise InvalidRequest(f"{field}: expected a timestamp, got {value!r}")
    if isinstance(value, int):
        return value if value > 100_000_000_000 else value * 1000
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_time_ms(int(text), field=field)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(f"{field}: {value!r} is not an RFC 3339 timestamp") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    raise InvalidRequest(f"{field}: expected a timestamp, got {value!r}")
