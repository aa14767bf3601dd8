"""Run the exchange's HTTP/WebSocket server on 127.0.0.1 in a background thread (tests, demo, backtests)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import uvicorn

from precog.venues.exchange.auth import KeyRegistry
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.faults import FaultInjector
from precog.venues.exchange.server import API_PREFIX, WS_PATH, ExchangeApp, create_app


class _QuietDenials(logging.Filter):
    """uvicorn logs an ERROR after every refused (401) WebSocket handshake; that refusal is intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDenials())


class ExchangeServer:
    """`with ExchangeServer(exchange) as srv: srv.base_url ...` — uvicorn on a free loopback port."""

    def __init__(self, exchange: Exchange, *, host: str = "127.0.0.1", port: int = 0,
                 keys: KeyRegistry | None = None, faults: FaultInjector | None = None, **app_options: Any) -> None:
        self.exchange = exchange
        self.host = host
        self.keys = keys or KeyRegistry()
        self.faults = faults or FaultInjector()
        self.app = create_app(exchange, keys=self.keys, faults=self.faults, **app_options)
        self._requested_port = port
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def core(self) -> ExchangeApp:
        return self.app.state.exchange_app  # type: ignore[attr-defined,no-any-return]

    @property
    def root_url(self) -> str:
        return f"http://{self._url_host()}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}{API_PREFIX}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._url_host()}:{self.port}{WS_PATH}"

    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def start(self, timeout: float = 10.0) -> ExchangeServer:
        config = uvicorn.Config(self.app, host=self.host, port=self._requested_port, log_level="warning",
                                lifespan="on", ws="websockets-sansio", ws_ping_interval=10.0, ws_ping_timeout=20.0,
                                # loopback: compressing every frame only burns CPU on both ends
                                ws_per_message_deflate=False,
                                access_log=False)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=self._run, name="precog-exchange", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the exchange server failed to start on {self.host}:{self._requested_port}")
            if time.monotonic() > deadline:
                raise RuntimeError("the exchange server did not start in time")
            time.sleep(0.01)
        sockets = [s for srv in server.servers for s in srv.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def _run(self) -> None:
        assert self._server is not None
        asyncio.run(self._server.serve())

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> ExchangeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
