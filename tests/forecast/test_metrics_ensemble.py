"""Scores, calibration, reliability diagram, ensemble combination, shrinkage and confidence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from precog.forecast.ensemble import Component, combine, confidence_of, shrink
from precog.forecast.matrices import lead_bucket, state_cell, wilson_interval
from precog.forecast.metrics import calibration, reliability_diagram, score


def test_scores_by_hand() -> None:
    s = score([0.8, 0.3, 0.5, 0.6], [1, 0, 1, 0.5])
    assert s.brier == pytest.approx((0.04 + 0.09 + 0.25 + 0.01) / 4)
    ll = -(math.log(0.8) + math.log(0.7) + math.log(0.5) + 0.5 * math.log(0.6) + 0.5 * math.log(0.4)) / 4
    assert s.log_loss == pytest.approx(ll)
    assert s.accuracy == pytest.approx((1 + 1 + 0.5) / 3)  # the tie is not counted, p=0.5 is half a hit


def test_calibration_deciles() -> None:
    p = np.array([0.05, 0.05, 0.15, 0.95, 1.0])
    y = np.array([0, 1, 0, 1, 1])
    table = calibration(p, y)
    assert [b.n for b in table] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert table[0].observed == 0.5 and table[0].mean_forecast == pytest.approx(0.05)
    assert table[0].within_target is None  # n < 500


def test_reliability_diagram_is_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(float)
    out = reliability_diagram(tmp_path / "r" / "rel.png", {"model": (p, y)}, "test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shrinkage_toward_half() -> None:
    assert shrink(0.9, 0.10) == pytest.approx(0.86)
    assert shrink(0.2, 0.10) == pytest.approx(0.23)
    assert shrink(0.5, 0.5) == 0.5


def test_combine_weights_confidence_and_shrinkage() -> None:
    out = combine({"elo": Component(0.70, 0.40, 1335), "winprob": Component(0.74, 0.45, 22000),
                   "historical": Component(0.72, 0.15, 600)}, 0.10)
    raw = (0.40 * 0.70 + 0.45 * 0.74 + 0.15 * 0.72) / 1.0
    assert out.raw_probability == pytest.approx(raw)
    assert out.probability == pytest.approx(0.5 + (raw - 0.5) * 0.9)
    assert out.confidence == "high" and out.sample_size == 600
    disagree = combine({"elo": Component(0.40, 1, 5000), "winprob": Component(0.75, 1, 5000)}, 0.0)
    assert disagree.confidence == "low" and disagree.confidence_score == 0.0
    small = combine({"historical": Component(0.8, 1, 250)}, 0.0)
    assert small.confidence == "medium"
    assert confidence_of(0.0, 100)[0] == "low"
    with pytest.raises(ValueError):
        combine({"elo": Component(0.5, 0.0, 10)}, 0.1)


def test_wilson_interval_contains_the_proportion_and_narrows_with_n() -> None:
    lo, hi = wilson_interval(80, 100)
    assert lo < 0.8 < hi
    lo2, hi2 = wilson_interval(800, 1000)
    assert hi2 - lo2 < hi - lo
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_live_states_map_to_matrix_cells_only_at_boundaries() -> None:
    assert state_cell(2, 0, "halftime", 17, 7) == ("halftime", "10-13_points", {"leader": "home"})
    assert state_cell(3, 900, "live", 3, 20) == ("halftime", "17+_points", {"leader": "away"})
    assert state_cell(4, 900, "live", 10, 10) == ("end_Q3", "tied", {})
    assert state_cell(3, 450, "live", 10, 3) is None
    assert lead_bucket(-5) == "4-6_points"
