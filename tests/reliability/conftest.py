"""Fixtures of the reliability suite: a real local exchange (HTTP + WebSocket on 127.0.0.1) with a funded,
keyed account, and the fault tally the report script reads.

    def test_x(rel_exchange):
        rel_exchange.base_url, rel_exchange.ws_url, rel_exchange.key_id, rel_exchange.key_path
        rel_exchange.admin.fail_next(5, status=503)   # /sim/ fault injection
        rel_exchange.exchange                          # the in-process engine, for direct inspection
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization

from precog.db import embedded
from precog.db.migrate import migrate
from precog.venues.exchange.admin_client import SimAdminClient
from precog.venues.exchange.auth import generate_key_pair
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.runner import ExchangeServer

SERIES = "KXNFLGAME"
EVENT = "KXNFLGAME-REL-NEBUF"
TICKERS = (f"{EVENT}-NE", f"{EVENT}-BUF")
USER = "rel-user"
MM = "rel-mm"


@dataclass
class RelExchange:
    server: ExchangeServer
    exchange: Exchange
    admin: SimAdminClient
    key_id: str
    key_path: Path
    user: str = USER
    mm: str = MM
    tickers: tuple[str, ...] = TICKERS

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    def quote(self, ticker: str, bid: str, ask: str, size: int = 500) -> None:
        """The market maker's YES bid and YES ask (a NO bid at 1 - ask)."""
        self.exchange.place_order(self.mm, ticker, "yes", "buy", size, Decimal(bid))
        self.exchange.place_order(self.mm, ticker, "no", "buy", size, 1 - Decimal(ask))


@pytest.fixture(scope="session")
def rel_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, bytes]:
    return generate_key_pair(tmp_path_factory.mktemp("rel-keys"))


@pytest.fixture
def rel_exchange(rel_key: tuple[str, Path, bytes]) -> Iterator[RelExchange]:
    key_id, key_path, public_pem = rel_key
    ex = Exchange(seed=11)
    ex.create_series(SERIES, "Pro Football Game", tags=["Football"])
    ex.create_event(EVENT, SERIES, "New England at Buffalo")
    for t in TICKERS:
        ex.create_market(t, EVENT, title=f"Will {t[-2:]} win?")
    ex.create_account(USER, Decimal("10000"))
    ex.create_account(MM, Decimal("1000000"))
    # some traded volume, as on a live market (the risk gate refuses entries into markets nobody trades)
    ex.create_account("rel-seed", Decimal("1000000"))
    for t in TICKERS:
        ex.place_order(MM, t, "yes", "buy", 300, Decimal("0.50"))
        ex.place_order("rel-seed", t, "no", "buy", 300, Decimal("0.50"))
    server = ExchangeServer(ex, tick_interval=0.05)
    server.keys.register(USER, serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    admin = SimAdminClient(server.root_url)
    try:
        yield RelExchange(server, ex, admin, key_id, key_path)
    finally:
        admin.close()
        server.stop()


# the trading rig of the engine tests (real Engine + in-process local exchange on simulated time), reused here
from alerts.alertkit import (  # noqa: E402,F401 - real aiosmtpd servers (STARTTLS)
    http_server,  # noqa: E402,F401 - a recording HTTP receiver (webhook, Slack, Twilio)
    self_signed,
    smtp_factory,
)
from engine.conftest import make_rig  # noqa: E402,F401
from tmpkit import memory_tmp_dir  # noqa: E402


@pytest.fixture
def own_server() -> Iterator[tuple[Path, str]]:
    """An embedded PostgreSQL only this test uses (so it can be stopped), with a migrated database. Its home is
    directly under the temp folder: the server's own user must reach it (pytest's folders are 0700)."""
    home = Path(tempfile.mkdtemp(prefix="precog-rel-pg-", dir=memory_tmp_dir()))
    home.chmod(0o755)
    admin = embedded.server_uri(home)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "precog_rel"')
    url = embedded.with_database(admin, "precog_rel")
    migrate(url)
    try:
        yield home, url
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def make_rig_on() -> Iterator[Any]:
    """The engine tests' rig factory (real Engine + in-process exchange) on a database URL we choose."""

    gens: list[Any] = []

    def factory(url: str) -> Any:
        gen = make_rig._get_wrapped_function()(url)  # type: ignore[attr-defined]
        gens.append(gen)
        return next(gen)()

    yield factory
    for gen in gens:
        try:
            gen.close()
        except psycopg.Error:
            pass
