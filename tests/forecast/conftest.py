"""Fixtures for the forecasting tests: small synthetic games/plays files and cached shared data."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from forecast.forecast_testkit import GAMES_HEADER, PLAYS_HEADER, synthetic_games, synthetic_plays, write_csv


@pytest.fixture
def games_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "games.csv", GAMES_HEADER, synthetic_games())


@pytest.fixture
def plays_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "plays.csv.gz", PLAYS_HEADER, synthetic_plays())


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[[str, list[str], list[list[object]]], Path]:
    def _make(name: str, header: list[str], rows: list[list[object]]) -> Path:
        return write_csv(tmp_path / name, header, rows)

    return _make


@pytest.fixture(scope="session")
def shared_plays_path(shared_data: Path) -> Path:
    return shared_data / "nfl" / "nflfastr_wp_plays_2020_2022.csv.gz"


@pytest.fixture(scope="session")
def shared_games_path(shared_data: Path) -> Path:
    return shared_data / "nfl" / "fivethirtyeight_nfl_games_1920_2014.csv"


@pytest.fixture(scope="session")
def shared_plays(shared_plays_path: Path):  # type: ignore[no-untyped-def]
    from precog.forecast.plays import read_plays

    return read_plays(shared_plays_path, require_outcomes=True)


@pytest.fixture(scope="session")
def shared_plays_subset_file(shared_plays_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 80 games of the shared plays file (for fast CLI training tests)."""
    out = tmp_path_factory.mktemp("plays") / "plays_subset.csv.gz"
    with gzip.open(shared_plays_path, "rt", newline="") as src, gzip.open(out, "wt", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        header = next(reader)
        writer.writerow(header)
        gi = header.index("game_id")
        seen: set[str] = set()
        for row in reader:
            if row[gi] not in seen:
                if len(seen) == 80:
                    break
                seen.add(row[gi])
            writer.writerow(row)
    return out
