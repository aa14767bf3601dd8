"""A failing command's exit code reaches the shell, and bad arguments are usage errors (exit 2, named option).

`precog health` documents "Exits 1 when a check fails" and `precog demo` exits 2 when the ledger does not
match; both raise typer.Exit, which Typer returns (not raises) under standalone_mode=False, so the process
used to exit 0. Typer >= 0.22 vendors click, so usage errors also missed the ClickException branch and came
out as "error: UsageError: ... (run with --debug for the traceback)" with exit code 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _precog(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRECOG_HOME=str(tmp_path / "home"), NO_COLOR="1",
               PRECOG_DATABASE_URL="postgresql://precog:hunter2@127.0.0.1:1/precog")
    return subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_failed_health_check_exits_1(tmp_path: Path):
    result = _precog(tmp_path, "health")
    assert "unhealthy" in result.stdout
    assert result.returncode == 1


def test_unknown_command_and_option_are_usage_errors(tmp_path: Path):
    unknown = _precog(tmp_path, "alerts", "bogus")
    assert unknown.returncode == 2 and "No such command 'bogus'" in unknown.stderr
    bad_option = _precog(tmp_path, "alerts", "silence", "add", "--frm", "2h")
    assert bad_option.returncode == 2 and "--frm" in bad_option.stderr
    bad_value = _precog(tmp_path, "demo", "--games", "many")
    assert bad_value.returncode == 2 and "--games" in bad_value.stderr
    for result in (unknown, bad_option, bad_value):
        assert "Traceback" not in result.stderr and "--debug for the traceback" not in result.stderr
