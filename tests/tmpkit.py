"""Where test database servers keep their data (imported by the conftests; holds no tests)."""

from __future__ import annotations

import os
import shutil


def memory_tmp_dir(min_free_bytes: int = 2 << 30) -> str | None:
    """A RAM-backed temp folder (/dev/shm) for test database servers, or None for the default temp folder.

    Measured here: on disk, each CREATE DATABASE from the template slows as the session writes (0.03 s at
    first, 0.3-0.5 s after a hundred copies, fsync on or off: the kernel's writeback of 11 MB per copy);
    in memory it stays at 0.03 s. About 1,000 tests each get a copy."""
    shm = "/dev/shm"
    try:
        if os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= min_free_bytes:
            return shm
    except OSError:
        pass
    return None
