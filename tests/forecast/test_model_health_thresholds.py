"""Each model-health threshold (probability_models.health, spec 7.3 monitoring) at its value and just past it.

Spec: "alert on calibration error > 0.08, edge profitability < 0.50, accuracy < 0.52, recent 30-day performance
< 85% of historical": a value equal to its threshold is fine, one just past it is degraded. Values are rounded
to 6 places first, so floating-point noise (0.58 - 0.5 = 0.07999999999999996) never decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from precog.forecast.health import HealthSettings, SettledForecast, assess

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SETTINGS = HealthSettings(min_settled_positions=30, calibration_min_positions=30)


def rows(p: float, n: int, wins: int, *, profitable: int | None = None, days_ago: float = 1) -> list[SettledForecast]:
    """`n` positions with forecast `p` of the side held, the first `wins` won; the first `profitable` (default:
    the winners) made money."""
    cut = wins if profitable is None else profitable
    return [SettledForecast(i, p, 1.0 if i < wins else 0.0, Decimal("1.50") if i < cut else Decimal("-1.50"),
                            NOW - timedelta(days=days_ago), "order") for i in range(n)]


def status(metric: str, data: list[SettledForecast], validation_brier: float | None = None,
           settings: HealthSettings = SETTINGS) -> tuple[float | None, str]:
    h = assess(1, "m@v1.0", data, settings, NOW, validation_brier=validation_brier)
    c = h.checks[metric]
    return c.value, c.status


@pytest.mark.parametrize(("hits", "expected"), [(52, (0.52, "ok")), (51, (0.51, "degraded"))])
def test_accuracy_threshold(hits: int, expected: tuple[float, str]) -> None:
    assert status("accuracy", rows(0.6, 100, hits, profitable=100)) == expected


@pytest.mark.parametrize(("profitable", "expected"), [(50, (0.5, "ok")), (49, (0.49, "degraded"))])
def test_edge_profitability_threshold(profitable: int, expected: tuple[float, str]) -> None:
    assert status("edge_profitability", rows(0.6, 100, 60, profitable=profitable)) == expected


@pytest.mark.parametrize(("wins", "expected"), [(58, (0.08, "ok")), (59, (0.09, "degraded"))])
def test_calibration_error_threshold(wins: int, expected: tuple[float, str]) -> None:
    # every forecast 0.50 (one decile): the calibration error is |observed - 0.50|
    assert status("calibration_error", rows(0.5, 100, wins)) == expected


def test_calibration_error_is_the_n_weighted_mean_gap_over_deciles() -> None:
    # 50 forecasts of 0.75 with 35 won (gap 0.05) and 50 of 0.35 with 25 won (gap 0.15): (50*0.05 + 50*0.15)/100
    data = rows(0.75, 50, 35) + [SettledForecast(100 + i, 0.35, 1.0 if i < 25 else 0.0, Decimal(1), NOW, "order")
                                 for i in range(50)]
    assert status("calibration_error", data) == (0.1, "degraded")


def test_calibration_error_is_judged_only_from_its_own_minimum() -> None:
    few = rows(0.5, 40, 30)  # gap 0.25, but 40 positions: the noise of a calibrated version is about 0.15 here
    assert status("calibration_error", few, settings=HealthSettings()) == (0.25, "insufficient")
    assert status("calibration_error", few, settings=HealthSettings(calibration_min_positions=40)) == (0.25, "degraded")


@pytest.mark.parametrize(("validation", "expected"), [(0.17, (0.85, "ok")), (0.169999, (0.849995, "degraded"))])
def test_recent_performance_threshold(validation: float, expected: tuple[float, str]) -> None:
    # forecasts 0.60, 40 of 50 won: Brier (40 x 0.16 + 10 x 0.36) / 50 = 0.20; ratio = historical / 0.20
    assert status("recent_performance", rows(0.6, 50, 40), validation_brier=validation) == expected


def test_minimum_sample_threshold() -> None:
    wrong = rows(0.8, 30, 0)
    h = assess(1, "m@v1.0", wrong[:29], SETTINGS, NOW, validation_brier=0.2)
    assert h.status == "insufficient" and not h.degraded
    h = assess(1, "m@v1.0", wrong, SETTINGS, NOW, validation_brier=0.2)
    assert h.status == "degraded"
    assert h.degraded == ["accuracy", "calibration_error", "edge_profitability", "recent_performance"]


def test_a_perfect_recent_window_is_no_degradation() -> None:
    h = assess(1, "m@v1.0", rows(1.0, 30, 30), SETTINGS, NOW, validation_brier=0.2)
    assert (h.recent_brier, h.recent_ratio, h.checks["recent_performance"].status) == (0.0, None, "ok")


def test_no_side_of_a_half_forecast() -> None:
    # a forecast of exactly 0.5 picks no side: half a hit whatever happened
    assert status("accuracy", rows(0.5, 40, 0, profitable=40)) == (0.5, "degraded")
