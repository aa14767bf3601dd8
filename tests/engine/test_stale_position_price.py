"""REQ-MON-002 / spec 5.5 (`position_management.monitoring.stale_after_seconds`): an open position whose price is
older than the limit raises `position_price_stale` (high), and critical once it has had no update for 2 minutes.
One alert per severity per episode, not one per cycle; a fresh price ends the episode, and the next staleness
alerts again. Ages are on the engine's clock (here a simulated one).

The audit found the key accepted and read by nothing: a position whose market data stopped (the venue not
answering, so every cycle failed before reaching the monitor) raised no alert at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)
from precog.engine.core import TrackedMarket

GONE = "KXNFLGAME-TEST-GONE"


def _stale_alerts(rig: Any) -> list[tuple[str, str]]:
    return [(a[0], a[1]) for a in rig.alerts.raised if a[0] == "position_price_stale"]


def _venue_stops_answering(engine: Any) -> None:
    """A market the venue does not know, read first: every cycle fails before it reads the position's price."""
    engine.markets = {GONE: TrackedMarket(GONE, "KXNFLGAME-TEST", "nfl", datetime(2030, 1, 1, tzinfo=UTC)),
                      **engine.markets}


def _venue_answers_again(engine: Any) -> None:
    del engine.markets[GONE]


async def _failing_steps(rig: Any, n: int, seconds: float = 5) -> None:
    for _ in range(n):
        with pytest.raises(Exception):  # noqa: B017 - whatever the venue raises, the cycle fails
            await rig.step(seconds)


async def test_a_position_without_fresh_prices_alerts_once_then_critical_then_rearms(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"position_management.monitoring.stale_after_seconds": 60}))
    engine = await rig.engine_with_position()
    (pos,) = rig.open_positions()
    for _ in range(30):  # prices every 5 s: never stale
        await rig.step()
    assert _stale_alerts(rig) == []
    _venue_stops_answering(engine)
    await _failing_steps(rig, 12)  # 60 s without a price: not yet past the limit
    assert _stale_alerts(rig) == []
    await _failing_steps(rig, 1)  # 65 s
    assert _stale_alerts(rig) == [("position_price_stale", "high")]
    await _failing_steps(rig, 11)  # 120 s: one alert, not one per cycle
    assert _stale_alerts(rig) == [("position_price_stale", "high")]
    await _failing_steps(rig, 1)  # 125 s: no update for 2 minutes -> critical
    assert _stale_alerts(rig) == [("position_price_stale", "high"), ("position_price_stale", "critical")]
    await _failing_steps(rig, 24)
    assert len(_stale_alerts(rig)) == 2
    row = rig.rows("SELECT severity, details, source_table, source_id, duplicate_count FROM alerts "
                   "WHERE alert_type = 'position_price_stale' ORDER BY alert_id")
    assert [(r[0], r[2], r[3], r[4]) for r in row] == [("high", "positions", pos.position_id, 0),
                                                        ("critical", "positions", pos.position_id, 0)]
    assert row[0][1]["market_id"] == rig.ticker and row[0][1]["stale_after_seconds"] == 60
    _venue_answers_again(engine)
    for _ in range(6):  # fresh prices: the episode is over
        await rig.step()
    assert len(_stale_alerts(rig)) == 2 and not engine.stale_watch.stale(pos.position_id)
    _venue_stops_answering(engine)
    await _failing_steps(rig, 13)  # a new episode alerts again
    assert _stale_alerts(rig)[2:] == [("position_price_stale", "high")]


async def test_the_limit_comes_from_configuration(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"position_management.monitoring.stale_after_seconds": 20}))
    engine = await rig.engine_with_position()
    _venue_stops_answering(engine)
    await _failing_steps(rig, 4)  # 20 s
    assert _stale_alerts(rig) == []
    await _failing_steps(rig, 1)  # 25 s > 20 s
    assert _stale_alerts(rig) == [("position_price_stale", "high")]


async def test_no_position_no_alert(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    await engine.start()
    _venue_stops_answering(engine)
    await _failing_steps(rig, 30)
    assert _stale_alerts(rig) == [] and rig.probs.p == {}
    assert Decimal(0) == sum((p.quantity for p in rig.open_positions()), Decimal(0))
