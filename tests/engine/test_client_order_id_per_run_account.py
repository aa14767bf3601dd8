"""Each run's entry reaches its venue, even when another run on the same database makes the same decision.

`orders.client_order_id` is unique across the whole database, so the id is derived from the decision (method,
market, side, time bucket) *and* the run's mode and venue account. Two runs on one database that trade the
same market at the same time (a paper run and a live run of the same active method on Kalshi: docs/trading.md
"Paper mode trades testing and active methods, live mode active only") get their own ids: the second run's
`Executor.submit` does not take the first run's row for its own order "already sent".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from engine.conftest import CASH, make_rig  # noqa: F401 - fixture
from precog.engine.local_venue import LocalVenue
from precog.engine.paper_venue import PaperVenue


async def test_live_run_entry_reaches_the_venue_beside_a_paper_run_on_same_database(
        make_rig: Any, db_url: str) -> None:  # noqa: F811
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    # the paper run: real market data of the venue, simulated fills
    rig.venue = PaperVenue(LocalVenue(rig.exchange, "us"), CASH, clock=rig.now)
    paper = rig.make_engine(mode="paper")
    # the live run: real orders on the same venue account's market, its own database connection
    rig.conn = psycopg.connect(db_url, autocommit=True)
    rig.venue = LocalVenue(rig.exchange, "us")
    live = rig.make_engine(mode="live")
    try:
        await paper.start()
        await live.start()
        # one cycle of each run at the same moment: both decide the same entry
        rig.clock.advance(5)
        rig.exchange.tick()
        await paper.step()
        await live.step()
        paper_orders = rig.rows("SELECT count(*) FROM orders WHERE run_id = %s", paper.run_id)[0][0]
        live_orders = rig.rows("SELECT count(*) FROM orders WHERE run_id = %s", live.run_id)[0][0]
        venue_orders = len(rig.exchange.account("us").orders)
        assert paper_orders == 1, "precondition: the paper run entered"
        assert live.stats.entries_sent == 1, (
            "precondition: the live run decided (and counted as sent) one entry")
        assert (live_orders, venue_orders) == (1, 1), (
            f"the live run's entry has its own order row and reaches the venue: {live_orders} live order "
            f"rows, {venue_orders} orders at the venue for {live.stats.entries_sent} entry sent (a "
            f"client_order_id shared with the paper run reads as 'already sent')")
    finally:
        rig.conn.close()
