"""Test models and method rows for backtests (real database rows; models are the test's own strategies)."""

from __future__ import annotations

import csv
import gzip
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from precog.backtest.feed import Event, GuardedArchive
from precog.backtest.history import PLAYS
from precog.backtest.methods import HOLD_TO_SETTLEMENT, ChosenMethod
from precog.backtest.models import GameInfo
from precog.engine.core import Estimate
from precog.engine.entries import MethodSpec
from precog.ingest.scd2 import jsonb


def method_row(conn: psycopg.Connection[Any], name: str, model_key: str, phase: str = "pre_game") -> ChosenMethod:
    """A model, strategy and method row for a test model, and the ChosenMethod that runs it."""
    conn.execute("INSERT INTO probability_models (model_name, model_version, model_type, sport, config, status) "
                 "VALUES (%s, 'v1.0', 'fixed', 'nfl', '{}', 'active') ON CONFLICT DO NOTHING", (f"{name}_model",))
    model_id = conn.execute("SELECT model_id FROM probability_models WHERE model_name = %s",
                            (f"{name}_model",)).fetchone()[0]
    conn.execute("INSERT INTO strategies (strategy_name, strategy_version, sport, config, status) "
                 "VALUES (%s, 'v1.0', 'nfl', '{}', 'active') ON CONFLICT DO NOTHING", (f"{name}_strategy",))
    strategy_id = conn.execute("SELECT strategy_id FROM strategies WHERE strategy_name = %s",
                               (f"{name}_strategy",)).fetchone()[0]
    conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config, "
        "execution_config, sport_config, config_hash, status) VALUES (%s, 'v1.0', %s, %s, %s, '{}', '{}', %s, %s, "
        "'active') ON CONFLICT DO NOTHING",
        (name, strategy_id, model_id, jsonb(HOLD_TO_SETTLEMENT), jsonb({"nfl": {"enabled": True}}), f"test-{name}"))
    method_id = conn.execute("SELECT method_id FROM methods WHERE method_name = %s", (name,)).fetchone()[0]
    spec = MethodSpec(method_id=method_id, strategy_id=strategy_id, model_id=model_id, name=f"{name}@v1.0",
                      model_key=model_key, phase=phase, min_edge=Decimal("0.05"), kelly_fraction=Decimal("0.25"),
                      position_mgmt=HOLD_TO_SETTLEMENT)
    return ChosenMethod(f"{name}@v1.0", spec, f"{name}_model@v1.0", f"{name}_strategy@v1.0")


class LeakedModel:
    """A model built from the full data file before the run: it 'knows' every result (a side-door leak the
    structural guard cannot see) and leans 0.2 toward the winner — inside every risk bound."""

    key = "leaked"

    def __init__(self, results: dict[str, Decimal]) -> None:
        self.results = results

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0

    def observe(self, event: Event, game: GameInfo) -> None:
        return None

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        if game.phase != "pre_game":
            return None
        won = self.results[game.schedule["game_id"]]
        lean = Decimal("0.2") if won == 1 else Decimal("-0.2") if won == 0 else Decimal(0)
        return Estimate(min(max(game.fair + lean, Decimal("0.01")), Decimal("0.99")), "high")


class PeekingModel:
    """A strategy that reads the result of the game it is about to trade from the archive."""

    key = "peeking"

    def __init__(self) -> None:
        self.archive: GuardedArchive | None = None

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        self.archive = archive
        return 0

    def observe(self, event: Event, game: GameInfo) -> None:
        return None

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        assert self.archive is not None
        g = self.archive.result(game.schedule["game_id"])  # the future: must raise LookAheadError
        return Estimate(Decimal("0.9") if g.home_score > g.away_score else Decimal("0.1"), "high")


class FixedModel:
    """P(home) fixed: a deliberately opinionated model for replay tests."""

    def __init__(self, key: str, p_home: Decimal) -> None:
        self.key = key
        self.p_home = p_home

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0

    def observe(self, event: Event, game: GameInfo) -> None:
        return None

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        return None if game.final else Estimate(self.p_home, "medium")


class MeanReversionModel:
    """P(yes) = the mean of the market's last 20 fair values: disagrees with a random-walk quote, so it trades."""

    key = "mean_reversion"
    reads_clock = False  # reads the game's fair values only: the world reuses its forecast while they stand

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0

    def observe(self, event: Event, game: GameInfo) -> bool:
        return False

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        recent = game.history[-20:]
        if game.final or len(recent) < 5:
            return None
        return Estimate((sum(recent, Decimal(0)) / len(recent)).quantize(Decimal("0.0001")), "medium")


SPREADSPOKE_HEADER = ("schedule_date,schedule_season,schedule_week,schedule_playoff,team_home,score_home,score_away,"
                      "team_away,team_favorite_id,spread_favorite,over_under_line,stadium,stadium_neutral,"
                      "weather_temperature,weather_wind_mph,weather_humidity,weather_detail\n")


def one_game_folder(shared_data: Path, folder: Path, *, game_id: str = "2020_01_ARI_SF", spreadspoke: str = "",
                    edit: Callable[[dict[str, str]], None] | None = None) -> Path:
    """An NFL data folder shaped as the shared one, holding one game of the plays file (each play row passed
    through `edit` first) and the given spreadspoke rows (after the header)."""
    src = shared_data / "nfl"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "nfl_teams.csv", folder / "nfl_teams.csv")
    with gzip.open(src / PLAYS, "rt", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["game_id"] == game_id]
        fields = reader.fieldnames
    assert rows and fields, f"{game_id} is not in {PLAYS}"
    for r in rows:
        if edit is not None:
            edit(r)
    with gzip.open(folder / PLAYS, "wt", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    if spreadspoke:
        (folder / "spreadspoke_scores_1966_2014.csv").write_text(SPREADSPOKE_HEADER + spreadspoke)
    return folder
