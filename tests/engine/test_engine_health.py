"""The engine reports its health to system_health (the dashboard's Engine health table), at most once a
minute, plus a row whenever a component's status changes (a venue failure shows up immediately)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.conftest import rig_config
from precog.engine.core import TrackedMarket


def _health(rig: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r[0], r[1], r[2]) for r in
            rig.rows("SELECT component, status, details FROM system_health ORDER BY health_id")]


async def test_engine_writes_health_once_per_interval(make_rig: Any) -> None:
    rig = make_rig(rig_config(**{"system.health_checks.interval_seconds": 60}))
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    await rig.step(5)
    rows = _health(rig)
    assert [(c, s) for c, s, _ in rows] == [("trading_engine", "healthy"), ("exchange", "healthy")]
    details = rows[0][2]
    assert details["trading_state"] == "ACTIVE" and details["run_id"] == engine.run_id
    assert details["cycle_latency_ms"] >= 0 and details["steps"] == 1 and details["last_error"] is None
    for _ in range(10):  # 50 s more: still inside the interval, no new rows
        await rig.step(5)
    assert len(_health(rig)) == 2
    await rig.step(10)  # 60 s after the first write
    rows = _health(rig)
    assert len(rows) == 4
    assert rows[-2][0] == "trading_engine" and rows[-2][2]["open_positions"] == len(rig.open_positions()) == 1


async def test_venue_failure_is_recorded_at_once_and_recovery_too(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    await engine.start()
    await rig.step(5)
    assert len(_health(rig)) == 2
    # a market the venue does not know: the venue call fails inside the cycle
    engine.markets["KXNFLGAME-TEST-GONE"] = TrackedMarket("KXNFLGAME-TEST-GONE", "KXNFLGAME-TEST", "nfl",
                                                          datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(Exception):  # noqa: B017 - whatever the venue raises, the cycle reports it
        await rig.step(5)
    rows = _health(rig)
    assert [(c, s) for c, s, _ in rows[2:]] == [("trading_engine", "degraded"), ("exchange", "down")]
    assert rows[3][2]["last_error"]
    assert rows[2][2]["consecutive_failures"] == 1
    del engine.markets["KXNFLGAME-TEST-GONE"]
    await rig.step(5)  # recovered: a status change is written without waiting for the interval
    rows = _health(rig)
    assert [(c, s) for c, s, _ in rows[4:]] == [("trading_engine", "healthy"), ("exchange", "healthy")]


async def test_halted_engine_reports_degraded(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    await engine.start()
    await rig.step(5)
    engine.set_state("HALTED", "operator halt in a test")
    await rig.step(5)
    last = _health(rig)[-2]
    assert last[0] == "trading_engine" and last[1] == "degraded" and last[2]["trading_state"] == "HALTED"
