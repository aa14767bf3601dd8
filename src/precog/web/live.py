"""Live updates: one poller reads cheap change markers from the database and fans out server-sent events.

Every `interval` seconds (only while at least one browser listens) the poller reads max ids / update
times of the tables behind the pages; a marker that moved becomes the topics it touches, and each listener
gets `{"seq": n, "topics": [...]}`. Browsers then re-read only the pages those topics belong to. One query
per interval serves any number of open pages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from precog.domain.jsonutil import dumps
from precog.web.queries import TOPICS_OF

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
QUEUE_SIZE = 32


class ChangeFeed:
    def __init__(self, read_markers: Callable[[], dict[str, Any]], interval: float = 1.0) -> None:
        self._read = read_markers
        self.interval = interval
        self.seq = 0
        self.db_ok = True
        self._markers: dict[str, Any] | None = None
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="precog-dashboard-changes")

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        for q in list(self._listeners):
            self._offer(q, {"type": "bye"})
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def nudge(self) -> None:
        """Poll now (after a write through the dashboard) instead of at the next tick. Thread-safe: the
        write endpoints run in worker threads."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------ listeners
    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._listeners.add(q)
        self._wake.set()
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(q)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    @staticmethod
    def _offer(q: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
        if q.full():  # a slow browser: drop its oldest notice, it re-reads everything on the next one anyway
            try:
                q.get_nowait()
            except asyncio.QueueEmpty:
                pass
        q.put_nowait(event)

    def _broadcast(self, event: dict[str, Any]) -> None:
        for q in list(self._listeners):
            self._offer(q, event)

    # ------------------------------------------------------------ polling
    async def poll_once(self) -> list[str]:
        """Read the markers once; returns the topics that changed (and tells the listeners)."""
        try:
            markers = await asyncio.to_thread(self._read)
        except Exception as exc:  # noqa: BLE001 - the page shows the outage and the poller keeps trying
            if self.db_ok:
                log.warning("dashboard: cannot read the database: %s", str(exc).splitlines()[0] if str(exc) else exc)
                self.db_ok = False
                self._broadcast({"type": "status", "db": "down", "seq": self.seq})
            return []
        if not self.db_ok:
            self.db_ok = True
            self._broadcast({"type": "status", "db": "up", "seq": self.seq})
        previous, self._markers = self._markers, markers
        if previous is None:
            return []
        topics = sorted({t for key, value in markers.items() if previous.get(key) != value
                         for t in TOPICS_OF.get(key, ())})
        if topics:
            self.seq += 1
            self._broadcast({"type": "change", "seq": self.seq, "topics": topics})
        return topics

    async def _run(self) -> None:
        while not self._closed:
            if self._listeners:
                await self.poll_once()
            else:
                self._markers = None  # nobody saw the interim: the next listener starts from a fresh read
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval if self._listeners else None)
            except TimeoutError:
                pass

    # ------------------------------------------------------------ one browser's stream
    async def stream(self, is_disconnected: Callable[[], Any]) -> AsyncIterator[str]:
        q = self.subscribe()
        try:
            yield "retry: 2000\n\n"
            yield _event("hello", {"seq": self.seq, "db": "up" if self.db_ok else "down"})
            while not self._closed:
                try:
                    event = await asyncio.wait_for(q.get(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await is_disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                if event["type"] == "bye":
                    return
                yield _event(event["type"], event)
        finally:
            self.unsubscribe(q)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {dumps(data)}\n\n"
