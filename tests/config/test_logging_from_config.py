"""system.yaml `logging` (level, json_file, max_bytes, backup_count) and env LOG_LEVEL drive the process log.

The audit found every `system.logging` key read by nothing (the CLI hard-coded WARNING, DEBUG with --debug)
although docs/configuration.md names `LOG_LEVEL` as an override of `system.logging.level` and the spec
requires structured logging (REQ-SYS-006). `precog.config.logsetup.configure_logging` is the implementation;
the CLI's entry point calls it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _config(tmp_path: Path, system: str = "", environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir(exist_ok=True)
    (cfg_dir / "system.yaml").write_text(system)
    return load_config(cfg_dir, use_env=True, use_overrides=False, environ=environ or {})


def test_structured_file_at_the_configured_level_with_context_fields(tmp_path: Path) -> None:
    from precog.config.logsetup import configure_logging

    cfg = _config(tmp_path, "logging:\n  json_file: logs/p.jsonl\n", environ={"LOG_LEVEL": "DEBUG"})
    console = io.StringIO()
    path = configure_logging(cfg, home=tmp_path, console=console)
    assert path == tmp_path / "logs" / "p.jsonl"
    log = logging.getLogger("precog.test_logsetup")
    log.debug("quote seen", extra={"market_id": "KXNFLGAME-X-NE"})
    log.warning("order rejected", extra={"trade_id": 7})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(d["level"], d["message"]) for d in lines] == [("DEBUG", "quote seen"), ("WARNING", "order rejected")]
    assert lines[0]["market_id"] == "KXNFLGAME-X-NE" and lines[1]["trade_id"] == "7"
    assert {"timestamp", "logger", "thread_id"} <= set(lines[0])
    assert "order rejected" in console.getvalue() and "quote seen" not in console.getvalue()


def test_the_default_level_info_keeps_debug_out_and_rotation_follows_the_keys(tmp_path: Path) -> None:
    from precog.config.logsetup import configure_logging

    cfg = _config(tmp_path, "logging:\n  json_file: logs/p.jsonl\n  max_bytes: 2048\n  backup_count: 2\n")
    path = configure_logging(cfg, home=tmp_path, console=io.StringIO())
    log = logging.getLogger("precog.test_logsetup")
    log.debug("not kept")
    for i in range(60):
        log.info("line %d %s", i, "x" * 40)
    assert "not kept" not in "".join(p.read_text() for p in path.parent.iterdir())
    assert sorted(p.name for p in path.parent.iterdir()) == ["p.jsonl", "p.jsonl.1", "p.jsonl.2"]
    assert path.stat().st_size <= 2048


def test_a_log_file_that_cannot_be_opened_names_the_key(tmp_path: Path) -> None:
    from precog.config.logsetup import configure_logging

    (tmp_path / "blocker").write_text("a file, not a directory")
    cfg = _config(tmp_path, f"logging:\n  json_file: {tmp_path / 'blocker' / 'p.jsonl'}\n")
    with pytest.raises(ConfigError, match="system.logging.json_file"):
        configure_logging(cfg, home=tmp_path, console=io.StringIO())


def test_a_bad_rotation_size_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="logging.max_bytes"):
        _config(tmp_path, "logging:\n  max_bytes: 10\n")


def test_secrets_are_masked_in_the_file_and_on_the_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any logger's record (httpx logs request URLs; an error may quote a credential) is masked by both handlers."""
    from precog.config.logsetup import configure_logging

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tw-secret-0123456789")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX")
    console = io.StringIO()
    path = configure_logging(_config(tmp_path, "logging:\n  json_file: logs/p.jsonl\n"), home=tmp_path,
                             console=console)
    logging.getLogger("somewhere.else").warning("post to %s failed with token tw-secret-0123456789",
                                                "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX")
    logging.getLogger("httpx").info("HTTP Request: POST https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX")
    written = path.read_text() + console.getvalue()
    assert "tw-secret-0123456789" not in written and "XXXXSECRETXXXX" not in written
    assert "post to https://hooks.slack.com/***" in written
    assert "HTTP Request" not in written  # request lines of HTTP clients only with --debug


def test_every_command_writes_the_structured_log_and_a_broken_configuration_still_reports(
        tmp_path: Path, precog_cli: Any) -> None:
    home = tmp_path / "home"
    r = precog_cli("config", "get", "system.logging.level", env={"PRECOG_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert (home / "logs" / "precog.jsonl").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "trading.yaml").write_text("position_sizing:\n  kelly:\n    default_fraction: 0.9\n")
    r = precog_cli("config", "validate", env={"PRECOG_HOME": str(home), "PRECOG_CONFIG_DIR": str(bad)})
    assert r.returncode == 1 and "default_fraction = 0.9 is invalid" in r.stderr + r.stdout
