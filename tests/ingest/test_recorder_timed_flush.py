"""The recorder flushes every message within `flush_seconds` even when no next message comes, so a crash
loses at most that much (docs/ingestion.md, Recording and replay); close() stops its flusher thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from precog.ingest.recorder import Recorder, read_recording

_CHILD = textwrap.dedent("""
    import sys, time
    from precog.ingest.recorder import Recorder
    rec = Recorder(sys.argv[1], flush_seconds=1.0)
    rec.record("espn:nfl", {"n": 1})        # first message: flushed at once
    rec.record("espn:nfl", {"n": 2})        # the second, a few microseconds later
    print("recorded", flush=True)
    time.sleep(60)                           # the feed goes quiet (ESPN polls every 30-600 s)
""")


def _flusher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "precog-recorder-flush"]


def test_a_quiet_feed_is_flushed_before_a_crash(tmp_path: Path) -> None:
    """Two messages, then nothing for 3 s, then SIGKILL (OOM killer, power loss): the second message,
    received more than the promised second before the crash, is in the file."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "recorded"
        time.sleep(3.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = [m.payload["n"] for m in read_recording(tmp_path)]
    assert got == [1, 2], f"after a crash 3 s after the last message the recording holds {got}"


def test_pending_messages_are_flushed_on_time_and_close_stops_the_flusher(tmp_path: Path) -> None:
    before = len(_flusher_threads())
    rec = Recorder(tmp_path, flush_seconds=0.2)
    rec.record("kalshi:ws", '{"n":1}')
    rec.record("kalshi:ws", '{"n":2}')  # within flush_seconds of the first: left to the flusher
    assert len(_flusher_threads()) == before + 1
    deadline = time.monotonic() + 5
    got: list[str] = []
    while time.monotonic() < deadline and len(got) < 2:
        time.sleep(0.05)
        got = [m.payload for m in read_recording(tmp_path)]  # the file is still open: no gzip trailer
    assert got == ['{"n":1}', '{"n":2}']
    rec.close()
    assert len(_flusher_threads()) == before
    rec.record("kalshi:ws", '{"n":3}')  # usable after close: a new file
    rec.close()
    assert [m.payload for m in read_recording(tmp_path)] == ['{"n":1}', '{"n":2}', '{"n":3}']
