"""Record every raw feed message with its receive time to gzip JSON lines; read them back for replay.

One line per message: {"seq", "received_at" (ISO-8601 UTC), "recv_ns" (epoch ns), "source", "payload"}.
`payload` is the message exactly as received (WebSocket text, REST/ESPN body text or a JSON object).
Files rotate hourly (`feed-YYYYMMDDTHHMMSSZ-<pid>.jsonl.gz`, names sort by time) and are flushed with
Z_SYNC_FLUSH within `flush_seconds` of being recorded (a background thread flushes when no next message
comes), so a crash loses at most that much; the reader stops cleanly at a truncated tail.
"""

from __future__ import annotations

import asyncio
import gzip
import heapq
import io
import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from precog.domain.jsonutil import dumps

log = logging.getLogger(__name__)

SUFFIX = ".jsonl.gz"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    seq: int
    source: str  # e.g. "espn:nfl", "kalshi:ws", "kalshi:rest:markets"
    received_at: datetime
    recv_ns: int
    payload: Any

    def json_payload(self) -> Any:
        """The payload parsed as JSON when it was recorded as text (WebSocket frames, HTTP bodies)."""
        if isinstance(self.payload, str):
            return json.loads(self.payload)
        if isinstance(self.payload, dict) and isinstance(self.payload.get("body"), str):
            return json.loads(self.payload["body"])
        return self.payload


class Recorder:
    """Append-only gzip JSON-lines writer. Thread-safe; cheap enough to call on every message.

    A message not flushed at once is flushed by a background thread (started on first need) within
    `flush_seconds`; close() stops that thread."""

    def __init__(self, directory: str | Path, *, rotate_seconds: float = 3600.0, flush_seconds: float = 1.0,
                 compresslevel: int = 6) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rotate_seconds = rotate_seconds
        self.flush_seconds = flush_seconds
        self.compresslevel = compresslevel
        self.count = 0
        self._seq = 0
        self._file: IO[str] | None = None
        self._gz: gzip.GzipFile | None = None
        self._opened_at = 0.0
        self._last_flush = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._unflushed = False  # written since the last flush
        self._flusher: threading.Thread | None = None
        self._stop_flusher = threading.Event()
        self.paths: list[Path] = []

    def record(self, source: str, payload: Any, received_at: datetime | None = None) -> None:
        now_ns = time.time_ns()
        when = received_at or datetime.fromtimestamp(now_ns / 1e9, UTC)
        recv_ns = (when - _EPOCH) // timedelta(microseconds=1) * 1000 if received_at else now_ns
        with self._lock:
            self._seq += 1
            line = dumps({"seq": self._seq, "received_at": when.isoformat(), "recv_ns": recv_ns, "source": source,
                          "payload": payload}, separators=(",", ":"))
            stream = self._stream()
            stream.write(line)
            stream.write("\n")
            self.count += 1
            if time.monotonic() - self._last_flush >= self.flush_seconds:
                self._flush_locked()
            elif not self._unflushed:
                # a quiet feed sends no next message to flush this one: the flusher thread does it on time
                self._unflushed = True
                self._start_flusher_locked()
                self._wake.notify()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        with self._lock:
            flusher, self._flusher = self._flusher, None
            self._stop_flusher.set()
            self._wake.notify_all()
            self._close_locked()
        if flusher is not None:
            flusher.join()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stream(self) -> IO[str]:
        mono = time.monotonic()
        if self._file is not None and mono - self._opened_at >= self.rotate_seconds:
            self._close_locked()
        if self._file is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = self.directory / f"feed-{stamp}-{os.getpid()}{SUFFIX}"
            self._gz = gzip.GzipFile(path, "ab", compresslevel=self.compresslevel)
            self._file = io.TextIOWrapper(self._gz, encoding="utf-8", write_through=False)  # type: ignore[arg-type]
            self._opened_at = mono
            self.paths.append(path)
        return self._file

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if self._file is not None and self._gz is not None:
            self._file.flush()
            self._gz.flush(zlib.Z_SYNC_FLUSH)
        self._unflushed = False

    def _close_locked(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._file.close()  # closes the GzipFile too (writes the gzip trailer)
        self._file = None
        self._gz = None
        self._unflushed = False

    def _start_flusher_locked(self) -> None:
        if self._flusher is None:  # one per open recorder; a record() after close() starts a new one
            self._stop_flusher = threading.Event()
            self._flusher = threading.Thread(target=self._flush_loop, args=(self._stop_flusher,),
                                             name="precog-recorder-flush", daemon=True)
            self._flusher.start()

    def _flush_loop(self, stop: threading.Event) -> None:
        with self._lock:
            while not stop.is_set():
                due = self._last_flush + self.flush_seconds - time.monotonic()
                if not self._unflushed:
                    self._wake.wait()
                elif due > 0:
                    self._wake.wait(due)
                else:
                    try:
                        self._flush_locked()
                    except OSError:  # disk full, ...: keep the thread, try again a flush interval later
                        log.exception("flushing the recording failed")
                        self._last_flush = time.monotonic()


def recording_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no recording at {p}")
    return sorted(p.rglob(f"*{SUFFIX}"))


def recorded_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of one recording file, up to a torn last line or a truncated gzip tail (a crash
    while writing: everything before it is good)."""
    try:
        with gzip.open(path, "rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    return  # a torn last line from a crash
                yield lineno, line
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return  # truncated tail (process killed before the gzip trailer was written)


def _read_file(path: Path, sources: Collection[str] | None) -> Iterator[RecordedMessage]:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic and magic != b"\x1f\x8b":
        # recorded_lines takes a bad gzip stream for a torn tail: a file that is no gzip at all read as empty
        raise ValueError(f"{path}: not a recording (a recording is gzip-compressed JSON lines, *{SUFFIX})")
    for lineno, line in recorded_lines(path):
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a JSON line ({exc})") from exc
        try:
            if sources is not None and not any(
                row["source"] == s or row["source"].startswith(s + ":") for s in sources
            ):
                continue
            message = RecordedMessage(
                seq=int(row["seq"]),
                source=row["source"],
                received_at=datetime.fromisoformat(row["received_at"]),
                recv_ns=int(row["recv_ns"]),
                payload=row["payload"],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a recorded message (needs seq, source, received_at, recv_ns, "
                             f"payload; {type(exc).__name__}: {exc})") from exc
        yield message


def read_recording(path: str | Path, *, sources: Collection[str] | None = None) -> Iterator[RecordedMessage]:
    """Every recorded message under `path` (a file or a directory), in receive-time order.

    `sources` filters by source name or prefix ("kalshi" matches "kalshi:ws" and "kalshi:rest:...").
    """
    files = recording_files(path)
    streams = [_read_file(f, sources) for f in files]
    yield from heapq.merge(*streams, key=lambda m: (m.recv_ns, m.seq))


async def replay(
    path: str | Path,
    handler: Callable[[RecordedMessage], Awaitable[None] | None],
    *,
    speed: float | None = None,
    sources: Collection[str] | None = None,
) -> int:
    """Feed recorded messages to `handler` in order. speed=None: as fast as possible; 1.0: real time."""
    count = 0
    first_recv: int | None = None
    started = time.monotonic()
    for message in read_recording(path, sources=sources):
        if speed:
            first_recv = first_recv if first_recv is not None else message.recv_ns
            due = (message.recv_ns - first_recv) / 1e9 / speed
            wait = due - (time.monotonic() - started)
            if wait > 0:
                await asyncio.sleep(wait)
        result = handler(message)
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            await result
        count += 1
    return count


class RecordingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that records every GET response body (REST discovery and polling) before use."""

    def __init__(self, recorder: Recorder, source: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.recorder = recorder
        self.source = source
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method != "GET":
            return response
        body = await response.aread()
        received = datetime.now(UTC)
        self.recorder.record(self.source, {"method": request.method, "url": str(request.url),
                                           "status": response.status_code,
                                           "body": body.decode("utf-8", errors="replace")}, received)
        # the body is already decoded: drop the headers that describe the wire encoding
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request,
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()
