"""`precog dashboard` as a user runs it: a real subprocess that prints its address and the token once."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _start(db_url: str, home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "PRECOG_DASHBOARD_TOKEN"}
    env.update({"PRECOG_DATABASE_URL": db_url, "PRECOG_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "100"})
    proc = subprocess.Popen([sys.executable, "-m", "precog", "dashboard", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "press Ctrl+C" in line:
            return proc, "".join(out)
    proc.kill()
    raise AssertionError("the dashboard did not start: " + "".join(out) + (proc.stderr.read() if proc.stderr else ""))


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=15)


def test_dashboard_command_serves_and_prints_a_new_token_only_once(db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, out = _start(db_url, home)
    try:
        url = re.search(r"on (http://127\.0\.0\.1:\d+/)", out)
        token = re.search(r"shown only now\): (\S+)", out)
        assert url and token, out
        token_file = home / "dashboard_token"
        assert token_file.read_text().strip() == token.group(1)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert httpx.get(url.group(1) + "api/overview").status_code == 200
        assert httpx.post(url.group(1) + "api/auth/check",
                          headers={"Authorization": f"Bearer {token.group(1)}"}).status_code == 204
        assert httpx.post(url.group(1) + "api/auth/check").status_code == 401
    finally:
        assert _stop(proc) == 0
    proc, out = _start(db_url, home)
    try:
        assert token.group(1) not in out
        assert f"write token: in {home / 'dashboard_token'}" in out
    finally:
        _stop(proc)


def test_busy_port_and_bad_options_are_one_readable_line(db_url: str, tmp_path: Path) -> None:
    import socket

    env = {**os.environ, "PRECOG_DATABASE_URL": db_url, "PRECOG_HOME": str(tmp_path), "NO_COLOR": "1"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "precog", "dashboard", "--port", str(port)], capture_output=True,
                           text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "precog", "dashboard", "--mode", "fantasy"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 1 and "--mode must be one of" in r.stderr


def test_help_has_an_example() -> None:
    r = subprocess.run([sys.executable, "-m", "precog", "dashboard", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}, timeout=60)
    assert r.returncode == 0
    assert "precog dashboard --port 9000" in r.stdout and "--host" in r.stdout
