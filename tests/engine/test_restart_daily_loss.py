"""After a restart, the loop's daily-loss breaker counts the losses of the positions it took over.

`Engine.run_pnl` sums realized + unrealized P&L of the current run's positions and of the open positions it
took over from the previous process (they keep their old run_id), so the same -$42 that trips a $20 daily loss
limit without a restart
(tests/engine/test_exit_conditions.py::test_circuit_breaker_closes_every_position_and_halts) trips it after
one too.

Spec §5.4 daily loss limit ($500/day: close all, halt); docs/operations.md: the demo and `--venue local` "use
the loop's own daily-loss and consecutive-loss breakers with the same effect"; docs/trading.md
daily_loss_limit = today's realized + unrealized loss.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)


async def test_daily_loss_counts_positions_carried_over_a_restart(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"trading.account.daily_loss_limit_dollars": Decimal("20")}))
    first = await rig.engine_with_position()  # bought at 0.50
    (pos,) = rig.open_positions()
    await first.stop()
    engine = rig.make_engine()  # the process restarts
    await engine.start()
    assert [p.position_id for p in engine.portfolio.open_positions()] == [pos.position_id]
    rig.quote("0.47", "0.48")  # about -$42 on the position: past the $20 limit (no stop loss yet: -6 %)
    for _ in range(6):
        await rig.step()
    p = engine.portfolio.get(pos.position_id)
    assert p is not None
    loss_seen = p.unrealized_pnl if p.is_open else p.realized_pnl
    assert loss_seen is not None and loss_seen < Decimal("-20")
    assert engine.stats.breakers == ["daily_loss_limit"] and engine.trading_state == "HALTED", (
        f"position at {loss_seen}, run_pnl {engine.run_pnl()}: state {engine.trading_state}, "
        f"breakers {engine.stats.breakers}")
