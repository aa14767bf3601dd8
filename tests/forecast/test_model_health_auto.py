"""Model health is checked from the positions held to settlement (spec 7.3 monitoring, validation track 1).

A version whose settled outcomes agree with its entry forecasts raises nothing; one whose outcomes contradict
them raises exactly one `model_degradation` alert (medium, trading) per metric past its threshold, naming the
version, the metric, its value, the threshold and the sample; checking again without change raises nothing
more; a metric that recovered and degraded again is a new episode with a new alert; fewer settled positions
than `min_settled_positions` are judged on nothing. The engine runs the check itself when it settles positions.
Positions are written by the real persistence functions (tests/forecast/health_kit.py) in real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.conftest import make_rig  # noqa: F401  (fixture)
from forecast.health_kit import Book, model
from precog.alerts.manager import AlertManager
from precog.engine.alert_sink import TableAlertSink
from precog.forecast.health import HealthSettings, check_models, health_report

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RECENT = NOW - timedelta(days=2)
# 40 hand-made positions are calibrated exactly, so the calibration error is judged from 30 on here
SETTINGS = HealthSettings(calibration_min_positions=30)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as c:  # as the engine's connection
        yield c


def degradation_alerts(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT severity, category, message, details, dedup_key FROM alerts "
                        "WHERE alert_type = 'model_degradation' AND NOT suppressed ORDER BY alert_id").fetchall()
    return [{"severity": r[0], "category": r[1], "message": r[2], "details": r[3], "dedup_key": r[4]} for r in rows]


def forecast_health_rows(conn: psycopg.Connection[Any]) -> list[tuple[str, bool]]:
    return conn.execute("SELECT status, alert_sent FROM system_health WHERE component = 'forecast' "
                        "ORDER BY health_id").fetchall()


def test_a_well_calibrated_version_raises_nothing(db: psycopg.Connection[Any], db_url: str) -> None:
    mid = model(db, "calibrated_nfl", validation_brier="0.19")
    book = Book(db)
    # P(side) 0.75 and 3 of 4 won, half of the forecasts stored on the edge, half on the entry order
    book.many(mid, 20, p="0.75", wins=15, when=RECENT, stored="edge")
    book.many(mid, 20, p="0.75", wins=15, when=RECENT, stored="order")
    book.settled(mid, p="0.75", won=False, when=RECENT, stored="none")  # no stored forecast: left out
    with AlertManager(db_url) as alerts:
        [h] = check_models(db, SETTINGS, alerts, NOW, {mid})
    assert (h.ref, h.n, h.without_forecast) == ("calibrated_nfl@v1.0", 40, 1)
    assert (h.accuracy, h.calibration_error, h.edge_profitability, h.brier) == (0.75, 0.0, 0.75, 0.1875)
    assert (h.historical_source, h.recent_ratio) == ("validation", round(0.19 / 0.1875, 6))
    assert h.status == "ok" and {c.status for c in h.checks.values()} == {"ok"}
    assert degradation_alerts(db) == []
    assert forecast_health_rows(db) == [("healthy", False)]


def test_contradicted_forecasts_raise_one_alert_per_metric_once(db: psycopg.Connection[Any], db_url: str) -> None:
    mid = model(db, "wrong_nfl", validation_brier="0.20")
    book = Book(db)
    book.many(mid, 40, p="0.80", wins=8, when=RECENT)  # said 80 %, won 20 %
    with AlertManager(db_url) as alerts:
        [h] = check_models(db, SETTINGS, alerts, NOW, {mid})
    assert h.status == "degraded"
    assert (h.accuracy, h.calibration_error, h.edge_profitability, h.brier) == (0.2, 0.6, 0.2, 0.52)
    found = degradation_alerts(db)
    assert [a["details"]["metric"] for a in found] == ["accuracy", "calibration_error", "edge_profitability",
                                                       "recent_performance"]
    expected = {"accuracy": (0.2, "0.52"), "calibration_error": (0.6, "0.08"), "edge_profitability": (0.2, "0.50"),
                "recent_performance": (round(0.20 / 0.52, 6), "0.85")}
    for a in found:
        d = a["details"]
        assert (a["severity"], a["category"]) == ("medium", "trading")
        assert (d["model"], d["settled_positions"], d["sample_size"]) == ("wrong_nfl@v1.0", 40, 40)
        assert (d["value"], d["threshold"]) == expected[d["metric"]]
        assert "wrong_nfl@v1.0" in a["message"] and str(d["value"]) in a["message"]
        assert d["threshold"] in a["message"] and "40 positions" in a["message"]
        assert f"probability_models.health.{'max' if d['metric'] == 'calibration_error' else 'min'}_" in a["message"]

    # the same numbers again (a second settlement pass, a restarted engine): no second alert
    with AlertManager(db_url) as alerts:
        check_models(db, SETTINGS, alerts, NOW + timedelta(minutes=5), {mid})
    assert len(degradation_alerts(db)) == 4
    assert db.execute("SELECT count(*) FROM alerts WHERE alert_type = 'model_degradation'").fetchone() == (4,)
    assert forecast_health_rows(db) == [("degraded", True), ("degraded", False)]


def test_below_the_minimum_sample_nothing_is_judged(db: psycopg.Connection[Any]) -> None:
    mid = model(db, "young_nfl", validation_brier="0.20")
    book = Book(db)
    book.many(mid, 29, p="0.80", wins=0, when=RECENT)  # all wrong, but only 29
    sink = TableAlertSink(db, "test")
    [h] = check_models(db, SETTINGS, sink, NOW, {mid})
    assert (h.n, h.status, h.accuracy) == (29, "insufficient", 0.0)
    assert degradation_alerts(db) == []
    book.settled(mid, p="0.80", won=False, when=RECENT)  # the 30th: now it is judged
    check_models(db, SETTINGS, sink, NOW, {mid})
    assert {a["details"]["metric"] for a in degradation_alerts(db)} == {
        "accuracy", "calibration_error", "edge_profitability", "recent_performance"}


def test_a_recovered_metric_that_degrades_again_is_alerted_again(db: psycopg.Connection[Any]) -> None:
    settings = HealthSettings(min_settled_positions=10)
    mid = model(db, "swinging_nfl")
    book = Book(db)
    sink = TableAlertSink(db, "test")

    def accuracy_alerts() -> list[int]:  # their episodes
        return [a["details"]["episode"] for a in degradation_alerts(db) if a["details"]["metric"] == "accuracy"]

    book.many(mid, 10, p="0.70", wins=0, when=RECENT)
    check_models(db, settings, sink, NOW, {mid})
    assert len(accuracy_alerts()) == 1
    book.many(mid, 20, p="0.70", wins=20, when=RECENT)  # 20 of 30 right: recovered
    [h] = check_models(db, settings, sink, NOW, {mid})
    assert h.checks["accuracy"].status == "ok" and len(accuracy_alerts()) == 1
    assert forecast_health_rows(db)[-1] == ("healthy", False)
    book.many(mid, 30, p="0.70", wins=0, when=RECENT)  # 20 of 60: degraded again, a new episode
    check_models(db, settings, sink, NOW, {mid})
    assert accuracy_alerts() == [1, 2]
    check_models(db, settings, sink, NOW, {mid})
    assert accuracy_alerts() == [1, 2]


def test_historical_brier_is_the_versions_own_settled_history_before_the_window(
        db: psycopg.Connection[Any]) -> None:
    mid = model(db, "fading_nfl", validation_brier="0.10")
    book = Book(db)
    book.many(mid, 30, p="0.70", wins=21, when=NOW - timedelta(days=60))  # Brier 0.21 before the window
    book.many(mid, 30, p="0.70", wins=12, when=RECENT)  # 0.09 * 12 + 0.49 * 18 over 30 = 0.33
    [h] = health_report(db, SETTINGS, NOW, [mid])
    assert (h.historical_source, h.historical_brier, h.recent_brier, h.recent_n) == (
        "settled_before_window", 0.21, 0.33, 30)
    assert h.recent_ratio == round(0.21 / 0.33, 6)
    assert h.checks["recent_performance"].status == "degraded"
    # a window without the minimum of its own is not judged (the version's total still is)
    [h] = health_report(db, HealthSettings(min_settled_positions=30, recent_window_days=1), NOW, [mid])
    assert h.recent_n == 0 and h.checks["recent_performance"].status == "insufficient"


def test_backtest_positions_are_no_evidence(db: psycopg.Connection[Any]) -> None:
    mid = model(db, "replayed_nfl")
    Book(db, mode="backtest").many(mid, 30, p="0.80", wins=0, when=RECENT)
    assert health_report(db, SETTINGS, NOW) == []
    [h] = health_report(db, SETTINGS, NOW, [mid])
    assert (h.n, h.status) == (0, "insufficient")


async def test_the_engine_checks_health_when_it_settles(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    [method] = [m for m in rig.methods if m.phase == "live"]
    book = Book(rig.conn)  # another account's history of the same model version: 29 forecasts of 0.80 that lost
    book.many(method.model_id, 29, p="0.80", wins=0, when=rig.now() - timedelta(hours=1))
    engine = await rig.engine_with_position(p_yes="0.80")
    assert not degradation_alerts(rig.conn)
    rig.exchange.settle_market(rig.ticker, Decimal("0"))  # the 30th loses too
    await rig.run_until(lambda: not rig.open_positions(), max_steps=5)
    assert engine.stats.settled_positions == 1
    found = degradation_alerts(rig.conn)
    # no validation Brier and no history before the window: the recent ratio is not judged; calibration
    # needs 300 positions (probability_models.health defaults)
    assert sorted(a["details"]["metric"] for a in found) == ["accuracy", "edge_profitability"]
    assert all(a["details"]["settled_positions"] == 30 for a in found)
    assert [t for t, _, _ in rig.alerts.raised].count("model_degradation") == 2
    await rig.step()  # nothing new settles: nothing is raised again
    assert len(degradation_alerts(rig.conn)) == 2
