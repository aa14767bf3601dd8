"""A run against a fresh exchange session records its orders and books its fills: every fresh exchange hands
out new order and fill ids.

Fills are deduplicated by fill_id across the whole platform (Executor._booked is loaded from every trade of
the platform, Portfolio.is_booked and the unique index trades(platform_id, fill_id) likewise) and orders by
venue_order_id (unique index orders(platform_id, venue_order_id)), while everything else is scoped by venue
account. `precog exchange serve` without --state builds an exchange whose ids are unseeded (--seed drives the
scenario's prices only); repeated ids would make every cycle fail on its first order (UniqueViolation) and
skip its fills as "already booked".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from engine.conftest import CASH, EVENT, SERIES, TICKER, FixedProbabilities, Rig, rig_config
from precog.cli.exchange import fresh_exchange
from precog.engine.alert_sink import TableAlertSink
from precog.engine.demo import ensure_demo_methods
from precog.engine.local_venue import LocalVenue
from precog.venues.exchange.clock import SimClock


def _session(conn: psycopg.Connection[Any], session: str) -> Rig:
    """A fresh exchange as `precog exchange serve` builds it (no --state), and our account on it."""
    clock = SimClock(start_ms=1_764_000_000_000)
    ex = fresh_exchange(clock)
    ex.create_series(SERIES, "Pro Football Game")
    ex.create_event(EVENT, SERIES, "New England at Buffalo")
    ex.create_market(TICKER, EVENT, title="Will Buffalo win?", close_ms=clock.now_ms() + 4 * 3600 * 1000)
    ex.create_account("us", CASH)
    ex.create_account("mm", Decimal("1000000"))
    venue = LocalVenue(ex, "us", account_ref=f"local:{session}:us")
    rig = Rig(ex, clock, venue, conn, FixedProbabilities(), rig_config(), ensure_demo_methods(conn),
              TableAlertSink(conn, "test"))
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    return rig


async def test_fills_of_a_fresh_exchange_session_are_booked(db_url: str) -> None:
    conn = psycopg.connect(db_url, autocommit=True)
    try:
        first = _session(conn, "session-1")
        e1 = first.make_engine()
        await e1.start()
        await first.run_until(lambda: first.open_positions())
        await e1.stop()

        second = _session(conn, "session-2")  # the exchange restarted without --state
        e2 = second.make_engine()
        await e2.start()
        errors: list[str] = []
        for _ in range(8):
            try:
                await second.step()
            except Exception as exc:  # noqa: BLE001 - the run loop logs it (engine_step_failed) and goes on
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        venue_fills = [f.fill_id for f in await second.venue.fills()]
        ours = sum(p.quantity for p in second.open_positions())
        assert venue_fills, "precondition: the second run traded on the new exchange"
        assert (errors, ours) == ([], second.venue_position()), (
            f"second session: {len(errors)} of 8 cycles failed ({errors[:1]}); the venue holds "
            f"{second.venue_position()} contracts from fills {venue_fills}, our books hold {ours}")
    finally:
        conn.close()
