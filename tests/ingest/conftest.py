"""Fixtures for the ingestion tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from feeds.espn_testkit import RecordingAlerts, load_samples
from precog.db.connection import connect
from precog.feeds.espn import EspnClient
from precog.feeds.espn_server import LocalEspnServer
from precog.ingest.game_store import GameStateStore
from precog.ingest.games import GameFeed
from precog.ingest.quality import DataQualityMonitor


@pytest.fixture(scope="session")
def espn_samples(shared_data: Path) -> dict[str, bytes]:
    return load_samples(shared_data)


@pytest.fixture
def espn_server() -> Iterator[LocalEspnServer]:
    with LocalEspnServer() as server:
        yield server


@pytest.fixture
def alerts() -> RecordingAlerts:
    return RecordingAlerts()


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def make_game_feed(espn_server: LocalEspnServer, db: psycopg.Connection[Any],
                   alerts: RecordingAlerts) -> Callable[[str], GameFeed]:
    """A new GameFeed of one sport on the local ESPN server, storing into `db` (a second one: a restarted
    process)."""
    def make(sport: str) -> GameFeed:
        client = EspnClient(espn_server.base_url, retries=0, retry_delay=0, min_interval=0)
        return GameFeed(client, sports=(sport,), monitor=DataQualityMonitor(alerts=alerts),
                        store=GameStateStore(db))
    return make


@pytest.fixture
def make_nfl_feed(make_game_feed: Callable[[str], GameFeed]) -> Callable[[], GameFeed]:
    return lambda: make_game_feed("nfl")


# the venue suite's real local exchange (tests/venues/conftest.py)
from venues.conftest import exchange_key, local_exchange  # noqa: E402,F401
