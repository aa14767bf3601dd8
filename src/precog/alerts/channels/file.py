"""JSON-lines file channel with size-based rotation (alerts.jsonl, alerts.jsonl.1, ...)."""

from __future__ import annotations

import logging
import logging.handlers
from datetime import UTC, datetime
from pathlib import Path

from precog.alerts.channels import render
from precog.alerts.channels.base import DeliveryError, DeliveryResult, Notification
from precog.domain.jsonutil import dumps


class JsonLinesFileChannel:
    name = "file"
    batchable = True

    def __init__(self, path: Path, max_bytes: int, backup_count: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self._handler: logging.handlers.RotatingFileHandler | None = None

    def problems(self) -> list[str]:
        parent = self.path.parent
        probe = parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        import os

        if not os.access(probe, os.W_OK):
            return [f"alert file {self.path}: directory {probe} is not writable (system.notifications.file.path)"]
        return []

    def _open(self) -> logging.handlers.RotatingFileHandler:
        if self._handler is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # RotatingFileHandler gives us size-based rotation with a lock; we feed it pre-rendered lines.
            handler = logging.handlers.RotatingFileHandler(
                self.path, maxBytes=self.max_bytes, backupCount=self.backup_count, encoding="utf-8", delay=False
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._handler = handler
        return self._handler

    def send(self, notification: Notification) -> DeliveryResult:
        doc = render.payload(notification.alert, notification.kind, notification.outbox_id)
        doc["written_at"] = datetime.now(UTC)
        line = dumps(doc, sort_keys=True)
        try:
            handler = self._open()
            record = logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "levelname": "INFO"})
            handler.acquire()
            try:
                if handler.shouldRollover(record):
                    handler.doRollover()
                assert handler.stream is not None
                handler.stream.write(line + "\n")
                handler.stream.flush()
            finally:
                handler.release()
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        return DeliveryResult(f"written to {self.path}")

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None
