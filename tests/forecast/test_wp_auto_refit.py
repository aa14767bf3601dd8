"""Automatic WP refits from ingested in-game states (spec 7.3: "auto-retrain weekly or when < 90%").

Before: the WP model was never re-fitted; the seasons Precog ingests never reached it. Now the ingestion process
trains a new `validating` version on them (after a base plays file) when enough finished games came in and a
week passed, says so with an alert, and never promotes it by itself.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from feeds.espn_testkit import RecordingAlerts
from forecast.ingested_kit import live_state, store_versions
from precog.db.connection import connect
from precog.forecast.plays import read_plays
from precog.forecast.registry import get_model
from precog.forecast.wp_refit import AUTO_CREATOR, RefitSettings, WpAutoRefit, decide


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(db_url, autocommit=True) as conn:
        yield conn


def _played(db: psycopg.Connection[Any], game_id: str, day: date, home_won: bool = True) -> None:
    """A finished game as ingestion stores it: a few live states, then the final."""
    kickoff = datetime(day.year, day.month, day.day, 18, tzinfo=UTC)
    base = live_state(game_id, kickoff)
    store_versions(
        db, base,
        dataclasses.replace(base, period=2, clock_seconds=300, possession="away", down=2, distance=6, yards_to_goal=44,
                            home_score=7),
        dataclasses.replace(base, period=4, clock_seconds=100, down=3, distance=2, yards_to_goal=20, home_score=14,
                            away_score=10),
        dataclasses.replace(base, status="final", period=4, clock_seconds=0, possession=None, down=None,
                            distance=None, yards_to_goal=None, home_score=24 if home_won else 10,
                            away_score=10 if home_won else 24))


def _season(db: psycopg.Connection[Any], first: date, n: int, prefix: str) -> None:
    for i in range(n):
        _played(db, f"{prefix}{i}", first + timedelta(days=i // 4), home_won=i % 3 != 0)


def test_the_process_trains_a_validating_version_when_a_week_and_enough_games_came_in(
        db: psycopg.Connection[Any], shared_plays_subset_file: Path, tmp_path: Path) -> None:
    settings = RefitSettings(min_new_games=16, min_training_games=60, base_plays=shared_plays_subset_file)
    now = [datetime.now(UTC)]  # the same clock as the versions' created_at
    alerts = RecordingAlerts()
    refitter = WpAutoRefit(lambda: connect(db.info.dsn, autocommit=True), settings, tmp_path / "training",
                           alerts=alerts, now=lambda: now[0])
    _season(db, date(2025, 12, 1), 10, "a")
    assert refitter.run_once() is None
    assert refitter.last_decision is not None and "10 new games < min_new_games 16" in refitter.last_decision.reason

    _season(db, date(2025, 12, 5), 8, "b")
    trained = refitter.run_once()
    assert trained is not None and trained.status == "validating" and trained.ref == "wp_nfl@v1.1"
    record = get_model(db, trained.ref)
    assert record.created_by == AUTO_CREATOR and record.training_end_date == date(2025, 12, 6)
    assert record.status == "validating"  # never promoted by itself: the shipped version stays in use
    assert get_model(db, "wp_nfl@v1.0").status == "active"
    assert "18 ingested in-game states" not in (record.description or "")
    assert "54 ingested in-game states of 18 games through 2025-12-06" in (record.description or "")
    files = list((tmp_path / "training").glob("wp_nfl-auto-20251206-*.csv.gz"))
    assert len(files) == 1 and record.config["training_file"] == files[0].name
    plays = read_plays(files[0], require_outcomes=True)
    base = read_plays(shared_plays_subset_file, require_outcomes=True)
    assert len(plays) == len(base) + 18 * 3
    [ready] = alerts.of_type("wp_refit_ready")
    assert ready["severity"] == "low" and "wp_nfl@v1.1 was trained automatically" in ready["message"]
    assert "promote" in ready["message"]

    # nothing new since: no refit; new games within the week: none either; after the week: the next version
    assert refitter.run_once() is None and "no finished game" in refitter.last_decision.reason
    _season(db, date(2025, 12, 12), 16, "c")
    now[0] += timedelta(days=3)
    assert refitter.run_once() is None and "younger than 7 days" in refitter.last_decision.reason
    now[0] += timedelta(days=5)
    second = refitter.run_once()
    assert second is not None, (refitter.last_decision, alerts.raised)
    assert second.ref == "wp_nfl@v1.2"
    assert get_model(db, second.ref).training_end_date == date(2025, 12, 15)
    assert alerts.of_type("wp_refit_failed") == []


def test_too_little_data_trains_nothing_and_alerts_once(db: psycopg.Connection[Any], tmp_path: Path) -> None:
    _season(db, date(2025, 12, 1), 20, "a")
    settings = RefitSettings(min_new_games=16, min_training_games=256)  # no base file: 20 games only
    alerts = RecordingAlerts()
    refitter = WpAutoRefit(lambda: connect(db.info.dsn, autocommit=True), settings, tmp_path, alerts=alerts)
    assert decide(db, settings, datetime.now(UTC)).due
    assert refitter.run_once() is None
    [failed] = alerts.of_type("wp_refit_failed")
    assert failed["severity"] == "medium" and failed["dedup_key"] == "wp_refit_failed:wp_nfl"
    assert "needs 256 games in its training file and has 20" in failed["message"]
    assert "base_plays" in failed["message"]
    assert [r.model_version for r in _versions(db)] == ["v1.0"]  # the shipped version only
    assert list(tmp_path.glob("*.csv.gz")) == []
    assert refitter.run_once() is None and len(alerts.raised) == 1  # not tried again on the same data
    _season(db, date(2025, 12, 20), 1, "b")
    assert refitter.run_once() is None and len(alerts.of_type("wp_refit_failed")) == 2  # a new game: tried again


def _versions(db: psycopg.Connection[Any]) -> list[Any]:
    from precog.forecast.registry import list_models

    return list_models(db, name="wp_nfl")


def test_cli_checks_and_forces_a_refit(db: psycopg.Connection[Any], precog_cli) -> None:  # type: ignore[no-untyped-def]
    _season(db, date(2025, 12, 1), 3, "a")
    check = precog_cli("forecast", "wp", "refit", "--json")
    assert check.returncode == 0, check.stderr
    out = json.loads(check.stdout)
    assert out["due"] is False and out["new_games"] == 3 and out["through"] == "2025-12-01"
    assert out["trained"] is None and "3 new games < min_new_games 16" in out["reason"]
    forced = precog_cli("forecast", "wp", "refit", "--force")
    assert forced.returncode == 1 and "needs 256 games in its training file and has 3" in forced.stderr
    assert "Traceback" not in forced.stderr


def test_the_ingestion_process_refits_by_itself(db: psycopg.Connection[Any], db_url: str,
                                                shared_plays_subset_file: Path, tmp_path: Path) -> None:
    import asyncio

    from precog.config.loader import load_config
    from precog.feeds.espn_server import LocalEspnServer
    from precog.ingest.runner import IngestOptions, run_ingest
    from precog.ingest.settings import load_ingest_settings

    _season(db, date(2025, 12, 1), 4, "a")
    alerts = RecordingAlerts()
    with LocalEspnServer() as espn:
        espn.set_scoreboard("nfl", {"events": []})
        (tmp_path / "data_sources.yaml").write_text(f"espn:\n  base_url: {espn.base_url}\n")
        (tmp_path / "probability_models.yaml").write_text(
            f"wp:\n  auto_refit:\n    min_new_games: 4\n    min_training_games: 60\n"
            f"    base_plays: {shared_plays_subset_file}\n")
        settings = load_ingest_settings(load_config(tmp_path, use_env=False, use_overrides=False, environ={}), ["nfl"])
        assert settings.wp_refit is not None and settings.wp_refit.base_plays == shared_plays_subset_file

        async def scenario() -> Any:
            stop = asyncio.Event()
            task = asyncio.create_task(run_ingest(db_url, settings, IngestOptions(venue="local", markets=False),
                                                  alerts=alerts, stop=stop))
            deadline = asyncio.get_running_loop().time() + 60
            while not alerts.of_type("wp_refit_ready") and not alerts.of_type("wp_refit_failed"):
                assert asyncio.get_running_loop().time() < deadline, "no refit within a minute"
                await asyncio.sleep(0.1)
            stop.set()
            return await task

        report = asyncio.run(scenario())
    assert alerts.of_type("wp_refit_failed") == []
    assert report.wp_refits == ["wp_nfl@v1.1"]
    assert get_model(db, "wp_nfl@v1.1").created_by == AUTO_CREATOR


def test_a_degraded_wp_version_in_use_refits_at_the_next_new_game(db: psycopg.Connection[Any], tmp_path: Path,
                                                                  shared_plays_subset_file: Path) -> None:
    """Spec 7.3 "or when < 90%": the version in use forecast worse lately (recent/historical Brier 0.64 on its
    positions held to settlement), so one new game is enough, before the week and min_new_games."""
    from forecast.health_kit import Book
    from precog.forecast.registry import ensure_builtin_models

    ensure_builtin_models(db)
    in_use = get_model(db, "wp_nfl")
    assert in_use.status == "active"
    now = datetime.now(UTC)
    book = Book(db)
    book.many(in_use.model_id, 30, p="0.70", wins=21, when=now - timedelta(days=60))  # Brier 0.21 before
    book.many(in_use.model_id, 30, p="0.70", wins=12, when=now - timedelta(days=1))  # 0.33 lately
    settings = RefitSettings(min_new_games=16, min_training_games=60, base_plays=shared_plays_subset_file)
    assert not decide(db, settings, now).due  # no new game: nothing to learn from yet
    _season(db, date(2025, 12, 1), 1, "a")
    decision = decide(db, settings, now)
    assert decision.due and decision.new_games == 1
    assert decision.reason == "degraded: wp_nfl@v1.0's recent/historical Brier ratio 0.636 < 0.9"
    healthy = dataclasses.replace(settings, min_recent_performance=0.5)  # the same record judged with a lower bar
    assert not decide(db, healthy, now).due
    trained = WpAutoRefit(lambda: connect(db.info.dsn, autocommit=True), settings, tmp_path).run_once()
    assert trained is not None and get_model(db, trained.ref).created_by == AUTO_CREATOR
    # still degraded (nobody promoted the new version): the next game waits for the day to pass
    _season(db, date(2025, 12, 2), 1, "b")
    later = decide(db, settings, datetime.now(UTC))
    assert not later.due and "younger than a day" in later.reason
    assert decide(db, settings, datetime.now(UTC) + timedelta(days=1, minutes=1)).due
