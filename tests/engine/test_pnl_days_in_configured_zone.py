"""`precog pnl --by day` groups by calendar days of system.defaults.timezone, the days of the dashboard's "today"
(it grouped by UTC day: a 21:36 New York exit was booked on the next day)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.trading.attribution import pnl_by


async def test_days_are_calendar_days_of_the_given_zone(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    engine = await rig.engine_with_position()
    rig.conn.execute("SET session_replication_role = replica")  # move the entry to a late New York evening
    rig.conn.execute("UPDATE positions SET entry_time = %s WHERE row_current_ind",
                     (datetime(2026, 11, 27, 2, 36, tzinfo=UTC),))
    rig.conn.execute("SET session_replication_role = origin")
    days = {tz: [r["key"] for r in pnl_by(rig.conn, "day", run_id=engine.run_id, tz=tz)]
            for tz in ("America/New_York", "UTC")}
    assert days == {"America/New_York": ["2026-11-26"], "UTC": ["2026-11-27"]}
