"""A fill booked into a market after the engine's settlement pass for it already ran is settled at the next cycle.

The venue's fill list can lag its market status (Kalshi's fills endpoint behind the lifecycle stream): the engine
sees the market SETTLED while our last entry fill is not listed yet, settles what it holds there (nothing) and
marks the market done. When the fill is listed and booked it opens a position in a settled market. `Engine._settle`
settles it on the next cycle; it used to wait for the periodic reconciliation (up to 5 minutes), the position
meanwhile counted as open (exposure, position limits, P&L marks of a market that no longer trades).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.domain.order import Fill
from precog.engine.local_venue import LocalVenue


class LaggingFills(LocalVenue):
    """The local exchange, its fill list showing only fills made before `listed_until_ms` (None: all)."""

    listed_until_ms: int | None = None

    async def fills(self, since_ms: int | None = None) -> Sequence[Fill]:
        listed = await super().fills(since_ms)
        cut = self.listed_until_ms
        if cut is None:
            return listed
        return [f for f in listed if f.created_time is not None and f.created_time.timestamp() * 1000 < cut]


async def test_fill_listed_after_the_settlement_pass_settles_next_cycle(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    venue = LaggingFills(rig.exchange, "us")
    rig.venue = venue
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    await engine.start()
    venue.listed_until_ms = rig.clock.now_ms()  # from now on the fill list lags
    rig.probs.p[rig.ticker] = Decimal("0.80")
    await rig.run_until(lambda: rig.venue_position() > 0)
    rig.probs.p.pop(rig.ticker)  # no more entries
    held = rig.venue_position()
    assert not rig.open_positions()  # the fill is not listed yet
    rig.exchange.settle_market(rig.ticker, Decimal("1"))
    await rig.step()
    await rig.step()
    assert rig.ticker in engine._settled_markets and engine.stats.settled_positions == 0
    venue.listed_until_ms = None  # the fill shows up
    await rig.step()
    booked = rig.rows("SELECT position_id, quantity FROM trades WHERE action = 'buy'")
    assert [q for _, q in booked] == [held]
    await rig.step()
    status, qty = rig.rows("SELECT status, quantity FROM positions WHERE row_current_ind AND position_id = %s",
                           booked[0][0])[0]
    assert (status, qty) == ("settled", 0), f"position {status} holding {qty} two cycles after its fill was booked"
    payout = rig.rows("SELECT payout FROM settlements WHERE position_id = %s", booked[0][0])
    assert payout == [(Decimal(held),)]
    assert not rig.open_positions()
    assert Decimal("10000") + engine.our_cash_delta() == rig.exchange.account("us").balance
