"""Fixtures for the ESPN feed tests: the real ESPN samples and a local ESPN-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from feeds.espn_testkit import RecordingAlerts, load_samples
from precog.feeds.espn_server import LocalEspnServer


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
