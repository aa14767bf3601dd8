"""Last-resort spool: alerts raised while the database is unreachable are appended to a JSON-lines file and
raised again (through the normal dedup path) once the database is back, so an outage loses no alert."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from precog.domain.jsonutil import dumps

log = logging.getLogger(__name__)
_lock = threading.Lock()


def default_spool_path() -> Path:
    from precog.paths import precog_home

    return precog_home() / "alerts-spool.jsonl"


def append(path: Path, record: dict[str, Any]) -> None:
    append_many(path, [record])


def append_many(path: Path, records: list[dict[str, Any]]) -> None:
    """Append and fsync: once this returns the records survive a crash."""
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(dumps(r, sort_keys=True) + "\n" for r in records))
            fh.flush()
            os.fsync(fh.fileno())


def _claim_files(path: Path) -> list[Path]:
    """Atomically take the spool (rename) so two processes never replay the same lines concurrently."""
    taken: list[Path] = []
    if path.exists():
        target = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.replaying")
        try:
            os.replace(path, target)
            taken.append(target)
        except FileNotFoundError:
            pass
    # Files left by a process (or thread) that died while replaying. One still replaying keeps its file:
    # taking it too would raise those alerts twice.
    live_threads = {str(t.ident) for t in threading.enumerate()} - {str(threading.get_ident())}
    for leftover in path.parent.glob(f"{path.name}.*.replaying"):
        if leftover not in taken:
            parts = leftover.name.split(".")
            pid, tid = (parts[-3], parts[-2]) if len(parts) >= 4 else ("", "")
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            if pid.isdigit() and int(pid) == os.getpid() and tid in live_threads:
                continue
            taken.append(leftover)
    return taken


def waiting(path: Path) -> bool:
    """Whether anything is spooled (or being replayed) at `path`."""
    return path.exists() or any(path.parent.glob(f"{path.name}.*.replaying"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _records(file: Path) -> Iterator[dict[str, Any]]:
    with open(file, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.error("alert spool %s line %d is not JSON; skipped", file, n)


def replay(path: Path, raise_one: Callable[[dict[str, Any]], object]) -> int:
    """Raise every spooled alert again; a file is deleted only after all its lines went through."""
    count = 0
    for file in _claim_files(path):
        done = 0
        records = list(_records(file))
        try:
            for rec in records:
                if isinstance(rec.get("triggered_at"), str):
                    rec["triggered_at"] = datetime.fromisoformat(rec["triggered_at"])
                raise_one(rec)
                done += 1
        except Exception:
            # Put the rest back so nothing is lost; the next replay continues from there.
            for rec in records[done:]:
                append(path, rec)
            file.unlink(missing_ok=True)
            raise
        file.unlink(missing_ok=True)
        count += done
    return count
