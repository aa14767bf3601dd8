"""Fixtures of the trading tests (builders in trading_dbkit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trading_dbkit import World, seed_world


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = seed_world(db_url)
    yield w
    w.conn.close()
