"""After a partial exit the stored unrealized P&L covers only the contracts still held.

`Portfolio.book_fill` (sell) lowers quantity and cost basis, adds the realized P&L and re-marks the contracts
left, so the sold contracts' gain counts once (in realized_pnl), even while the quote is unchanged and
`PositionMonitor.check` writes no new version (it does so only on a "material" change). The dashboard
(`/api/pnl` summary), `precog pnl` and the engine's own daily-loss figure (`Engine.run_pnl`) all read that
row.

Spec §2.3 positions.unrealized_pnl, §5.5 `unrealized_pnl = (price - entry) * qty` of the position held,
§5.8 "a new position version with reduced quantity; realized P&L accumulates".
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.web import queries


async def test_unrealized_after_partial_exit_is_for_the_remaining_contracts(
        make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    engine = await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    rig.probs.p[rig.ticker] = Decimal("0.95")
    rig.quote("0.58", "0.59")  # +16 %: first_target sells half
    await rig.run_until(lambda: "first_target" in rig.engine.portfolio.get(pos.position_id).executed_stages)
    for _ in range(20):  # 100 s of unchanged quotes: the position is checked many times
        await rig.step(5)
    p = rig.engine.portfolio.get(pos.position_id)
    assert p is not None and p.is_open and p.quantity < p.initial_quantity
    bid = Decimal("0.58")
    expected_unrealized = bid * p.quantity - p.cost_basis
    qty, realized, stored_unrealized = rig.rows(
        "SELECT quantity, realized_pnl, unrealized_pnl FROM positions WHERE row_current_ind AND position_id = %s",
        p.position_id)[0]
    # the true P&L: cash moved + what the open contracts are worth at the exit price
    true_total = engine.our_cash_delta() + bid * p.quantity
    summary = queries.pnl_summary(rig.conn, mode="paper", day_start=datetime(2020, 1, 1, tzinfo=UTC))
    assert realized + expected_unrealized == true_total  # the books are right once the mark is right
    assert (qty, stored_unrealized) == (p.quantity, expected_unrealized), (
        f"stored unrealized {stored_unrealized} for {qty} contracts; {expected_unrealized} expected")
    assert summary["total"] == true_total, f"dashboard total P&L {summary['total']}, true {true_total}"
