"""Checks of a `precog` command's result (from the `precog_cli` fixture or `run_precog`); holds no tests."""

from __future__ import annotations

import json
from typing import Any


def json_ok(result: Any) -> Any:
    """The command succeeded; its stdout parsed as JSON."""
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def fails_with(result: Any, *needles: str) -> None:
    """The command failed with exit code 1 and a message (no traceback) naming every needle."""
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
