"""`precog forecast health` and the probability_models.health keys.

The view lists every version with paper/live positions held to settlement (or the one named) with its numbers,
thresholds and status, as JSON for scripts; it raises no alert. A threshold outside its range is refused at
load time naming the file, the key and the range, like every other key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from forecast.health_kit import Book, model
from precog.config.errors import ConfigError
from precog.config.loader import load_config


def test_health_json_lists_each_version_with_its_status(db_url: str, precog_cli: Any) -> None:
    recent = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        good, bad, young = model(conn, "good_nfl", "0.19"), model(conn, "bad_nfl", "0.20"), model(conn, "young_nfl")
        book = Book(conn)
        book.many(good, 40, p="0.75", wins=30, when=recent)
        book.many(bad, 40, p="0.80", wins=8, when=recent)
        book.many(young, 5, p="0.60", wins=3, when=recent)
    out = precog_cli("forecast", "health", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["settings"]["min_settled_positions"] == 30 and data["settings"]["min_accuracy"] == 0.52
    by_ref = {m["model"]: m for m in data["models"]}
    assert set(by_ref) == {"good_nfl@v1.0", "bad_nfl@v1.0", "young_nfl@v1.0"}
    g, b, y = by_ref["good_nfl@v1.0"], by_ref["bad_nfl@v1.0"], by_ref["young_nfl@v1.0"]
    assert (g["status"], g["n"], g["accuracy"], g["brier"], g["edge_profitability"]) == ("ok", 40, 0.75, 0.1875, 0.75)
    assert g["recent"] == {"n": 40, "brier": 0.1875, "historical_brier": 0.19, "historical_source": "validation",
                           "ratio": round(0.19 / 0.1875, 6)}
    # 40 positions: below calibration_min_positions (300), the calibration error is shown, not judged
    assert g["checks"]["calibration_error"]["status"] == "insufficient" and g["calibration_error"] == 0.0
    assert b["status"] == "degraded"
    assert {m: c["status"] for m, c in b["checks"].items()} == {
        "accuracy": "degraded", "calibration_error": "insufficient", "edge_profitability": "degraded",
        "recent_performance": "degraded"}
    assert b["checks"]["accuracy"] == {"value": 0.2, "threshold": 0.52, "status": "degraded", "n": 40,
                                       "config_key": "probability_models.health.min_accuracy"}
    assert (y["status"], y["n"]) == ("insufficient", 5)

    one = json.loads(precog_cli("forecast", "health", "--model", "bad_nfl@v1.0", "--json").stdout)
    assert [m["model"] for m in one["models"]] == ["bad_nfl@v1.0"]
    table = precog_cli("forecast", "health")
    assert table.returncode == 0, table.stderr
    assert "bad_nfl@v1.0" in table.stdout and "degraded" in table.stdout and "0.2000 !" in table.stdout
    with psycopg.connect(db_url) as conn:  # a view: nothing raised
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)


def test_health_of_an_unknown_version_is_an_error(precog_cli: Any) -> None:
    out = precog_cli("forecast", "health", "--model", "nope_nfl@v9.9")
    assert out.returncode == 1 and "nope_nfl" in out.stderr


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("min_accuracy", "1.5", ">= 0 and <= 1"),
    ("max_calibration_error", "0", "> 0 and <= 1"),
    ("min_recent_performance", "1.2", "> 0 and <= 1"),
    ("min_edge_profitability", "-0.1", ">= 0 and <= 1"),
    ("min_settled_positions", "5", ">= 10 and <= 100000"),
    ("recent_window_days", "0", ">= 1 and <= 365"),
])
def test_an_out_of_range_health_key_is_refused(tmp_path: Path, key: str, value: str, allowed: str) -> None:
    (tmp_path / "probability_models.yaml").write_text(f"health:\n  {key}: {value}\n")
    with pytest.raises(ConfigError, match=rf"probability_models.yaml: health.{key} = {value} is invalid") as err:
        load_config(tmp_path, use_env=False, use_overrides=False, environ={})
    assert f"(allowed: {allowed})" in str(err.value)


def test_calibration_sample_below_the_minimum_sample_is_refused(tmp_path: Path) -> None:
    (tmp_path / "probability_models.yaml").write_text(
        "health:\n  min_settled_positions: 50\n  calibration_min_positions: 40\n")
    with pytest.raises(ConfigError, match="health.calibration_min_positions = 40 is invalid") as err:
        load_config(tmp_path, use_env=False, use_overrides=False, environ={})
    assert "must be at least min_settled_positions (50)" in str(err.value)


def test_the_shipped_thresholds_are_the_specs(tmp_path: Path) -> None:
    h = load_config(tmp_path, use_env=False, use_overrides=False, environ={}).get("probability_models.health")
    assert {k: str(v) for k, v in h.items()} == {
        "max_calibration_error": "0.08", "min_edge_profitability": "0.50", "min_accuracy": "0.52",
        "min_recent_performance": "0.85", "min_settled_positions": "30", "recent_window_days": "30",
        "calibration_min_positions": "300"}
