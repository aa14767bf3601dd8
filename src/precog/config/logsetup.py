"""Process logging from system.yaml `logging` (spec REQ-SYS-006 structured logging).

- `system.logging.level` (env `LOG_LEVEL`): the level of the structured log file, and of the root logger.
- `system.logging.json_file`: one JSON object per line (time, level, logger, message, thread, and the
  context fields trade_id / market_id / position_id / order_id when a log call passes them in `extra`);
  relative paths are under PRECOG_HOME, like the alert file. Rotates at `max_bytes`, keeps `backup_count`.
- The console (stderr) shows WARNING and above, everything with `--debug`: commands print their own output.
- Both handlers mask secrets (the values of the secret environment variables, credentials in URLs:
  `precog.alerts.redact`), whatever logger wrote the record; HTTP client libraries log below WARNING only
  with `--debug` (httpx logs every request URL at INFO, and webhook URLs carry their token).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from precog.config.errors import ConfigError

CONTEXT_FIELDS = ("trade_id", "market_id", "position_id", "order_id", "method_id")
_OURS = "_precog_handler"  # marks the handlers this module installed, so a second call replaces them


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread_id": record.thread,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = str(value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def log_file_location(config: Any, home: Path | None = None) -> Path:
    path = Path(str(config.get("system.logging.json_file"))).expanduser()
    if path.is_absolute():
        return path
    from precog.paths import precog_home

    return (home or precog_home()) / path


def configure_logging(config: Any, *, debug: bool = False, home: Path | None = None,
                      console: IO[str] | None = None) -> Path:
    """Install the console and JSON-file handlers on the root logger; returns the log file's path.

    Raises ConfigError naming `system.logging.json_file` when the file cannot be opened."""
    level = logging.DEBUG if debug else logging.getLevelName(str(config.get("system.logging.level")))
    path = log_file_location(config, home)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=int(config.get("system.logging.max_bytes")),
            backupCount=int(config.get("system.logging.backup_count")), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"system.logging.json_file: cannot open {path}: {exc.strerror}") from exc
    file_handler.setLevel(level)
    file_handler.setFormatter(JsonLineFormatter())
    console_handler = logging.StreamHandler(console if console is not None else sys.stderr)
    console_handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    console_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    from precog.alerts.redact import RedactingFilter, Redactor

    redacting = RedactingFilter(Redactor.from_env())
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
    for handler in (file_handler, console_handler):
        setattr(handler, _OURS, True)
        handler.addFilter(redacting)
        root.addHandler(handler)
    root.setLevel(min(level, console_handler.level))
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(logging.DEBUG if debug else logging.WARNING)
    return path


# third-party loggers that write a line per request or frame at INFO/DEBUG
_CHATTY = ("httpx", "httpcore", "websockets", "asyncio", "uvicorn.access", "apprise")
