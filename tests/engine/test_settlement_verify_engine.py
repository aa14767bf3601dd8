"""The trading loop verifies each settlement against the venue's and flags disputes (spec position_management
`settlement`: "verify settlements, log disputes"), end to end on the local exchange.

- A market the exchange settles: the settlement rows say the venue agreed (`api_response.verified`), no alert.
- A venue whose settlement disagrees with what we booked: the rows record the difference, and one
  `settlement_mismatch` alert (high) is raised by the reconciliation that follows, however many run.
- A venue that lists its settlement after we booked ours: the next reconciliation compares it
  (`settlement_verifications`).
- A disputed market: the position is held (not settled at the determined value), one `settlement_disputed`
  alert, and it settles at the venue's final result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.domain.portfolio import Settlement
from precog.engine.local_venue import LocalVenue
from precog.venues.exchange import model as xm


class MisreportingVenue(LocalVenue):
    """The local exchange, its settlement list reporting `extra` dollars more revenue than it paid."""

    extra = Decimal("1.00")

    async def settlements(self) -> Sequence[Settlement]:
        return [replace(s, revenue=s.revenue + self.extra) for s in await super().settlements()]


class LateListingVenue(LocalVenue):
    """The local exchange, its settlement list empty until `listed` (a venue listing settlements late)."""

    listed = False

    async def settlements(self) -> Sequence[Settlement]:
        return await super().settlements() if self.listed else []


def _settlement_alerts(rig: Any) -> list[tuple[str, str, str]]:
    return [a for a in rig.alerts.raised if a[0] in ("settlement_mismatch", "settlement_disputed")]


async def _holding(rig: Any, venue: LocalVenue | None = None) -> Any:
    """An engine (reconciling every 10 s) holding one YES position bought near 0.50."""
    if venue is not None:
        rig.venue = venue
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=10)
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    rig.probs.p.pop(rig.ticker)  # no more entries
    return engine


def _api(rig: Any) -> list[Any]:
    return [r[0] for r in rig.rows("SELECT api_response FROM settlements WHERE market_id = %s", rig.ticker)]


async def test_a_settlement_the_exchange_agrees_with_is_verified_and_raises_nothing(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    await _holding(rig)
    rig.exchange.settle_market(rig.ticker, Decimal("1"))
    await rig.run_until(lambda: not rig.open_positions(), max_steps=5)
    for _ in range(5):  # a few reconciliations
        await rig.step()
    (api,) = _api(rig)
    assert api["verified"] is True and api["differences"] == []
    assert _settlement_alerts(rig) == []


async def test_a_venue_settlement_that_differs_is_recorded_and_alerted_once(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    venue = MisreportingVenue(rig.exchange, "us")
    await _holding(rig, venue)
    (pos,) = rig.open_positions()
    paid = Decimal(pos.quantity)  # YES settles at 1: one dollar a contract, as booked
    rig.exchange.settle_market(rig.ticker, Decimal("1"))
    await rig.run_until(lambda: not rig.open_positions(), max_steps=5)
    for _ in range(8):  # several reconciliations
        await rig.step()
    (api,) = _api(rig)
    assert api["verified"] is False
    assert api["differences"] == [{"figure": "payout", "side": "market", "ours": f"{paid:.2f}",
                                   "venue": f"{paid + venue.extra:.2f}"}]
    ((kind, severity, message),) = _settlement_alerts(rig)
    assert (kind, severity) == ("settlement_mismatch", "high") and rig.ticker in message
    # the booking is ours, and the venue's cash agrees with it (the misreport was only in its settlement list)
    assert rig.rows("SELECT payout FROM settlements WHERE market_id = %s", rig.ticker) == [(paid,)]
    assert rig.engine.trading_state != "HALTED"


async def test_a_settlement_listed_late_is_verified_by_the_next_reconciliation(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    venue = LateListingVenue(rig.exchange, "us")
    await _holding(rig, venue)
    rig.exchange.settle_market(rig.ticker, Decimal("1"))
    await rig.run_until(lambda: not rig.open_positions(), max_steps=5)
    for _ in range(3):
        await rig.step()
    assert _api(rig) == [None]  # booked without the venue's settlement, not verified yet
    assert rig.rows("SELECT count(*) FROM settlement_verifications") == [(0,)]
    venue.listed = True
    for _ in range(3):
        await rig.step()
    ((market, verified, differences),) = rig.rows(
        "SELECT market_id, verified, differences FROM settlement_verifications")
    assert (market, verified, differences) == (rig.ticker, True, [])
    assert _settlement_alerts(rig) == []


async def test_a_disputed_market_is_held_alerted_once_and_settled_at_the_final_result(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    await _holding(rig)
    (pos,) = rig.open_positions()
    with rig.exchange.lock:  # determined, not paid out at once (the rig's markets settle on determination)
        rig.exchange.market(rig.ticker).settlement_timer_s = 3600
    rig.exchange.determine_market(rig.ticker, Decimal("1"))
    with rig.exchange.lock:  # the exchange has no dispute operation: the market's status is set as Kalshi shows it
        rig.exchange.market(rig.ticker).status = xm.DISPUTED
    for _ in range(8):  # several reconciliations while the dispute lasts
        await rig.step()
    assert [p.position_id for p in rig.open_positions()] == [pos.position_id]  # held, not settled at 1
    assert _api(rig) == []
    ((kind, severity, message),) = _settlement_alerts(rig)
    assert (kind, severity) == ("settlement_disputed", "high") and rig.ticker in message
    rig.exchange.settle_market(rig.ticker, Decimal("0"))  # the dispute amends the result to NO, final
    await rig.run_until(lambda: not rig.open_positions(), max_steps=5)
    for _ in range(3):
        await rig.step()
    assert rig.rows("SELECT settlement_value, payout FROM settlements WHERE market_id = %s", rig.ticker) == [
        (Decimal("0.0000"), Decimal("0.0000"))]
    (api,) = _api(rig)
    assert api["verified"] is True
    assert len(_settlement_alerts(rig)) == 1
