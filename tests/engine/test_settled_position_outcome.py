"""A position settled after partial exits is reported to the breakers with its whole realized P&L.

`Engine._settle` reports the position's `realized_pnl` (partial exits included), as `_on_fill` does for a
position closed by an exit, not the settled remainder's `payout - remaining cost basis` alone. A position that
made money overall (most of it sold far above entry, the rest settling at 0) counts as a winner: the
consecutive-losses count and the board's daily/rapid loss show no loss, so the loss breakers (close all +
halt) do not trip on winning trades.

Spec §5.4 (consecutive losses 5, daily loss $500, rapid loss $200), §5.8 ("realized P&L accumulates");
docs/trading.md breakers: daily_loss_limit = today's realized + unrealized loss;
BreakerBoard.record_trade_result: "A position closed or settled with realized `pnl`".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.trading.breakers import BreakerBoard
from precog.trading.settings import TradingSettings


async def test_settled_winner_after_partial_exits_is_not_a_loss(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    board = BreakerBoard(TradingSettings.from_config(rig.config).breakers, clock=lambda: rig.clock.now_ms() / 1000)
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.80")
    engine = rig.make_engine(breakers=board)
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    pos = rig.open_positions()[0]
    rig.probs.p[rig.ticker] = Decimal("0.99")
    rig.quote("0.95", "0.96")  # 0.50 -> 0.95: both partial stages sell (75 % of the contracts) near 0.95
    await rig.run_until(lambda: "second_target" in rig.engine.portfolio.get(pos.position_id).executed_stages)
    rig.exchange.settle_market(rig.ticker, Decimal("0"))  # the last 25 % settle worthless
    await rig.run_until(lambda: not rig.open_positions(), max_steps=5)
    p = rig.engine.portfolio.get(pos.position_id)
    assert p is not None and p.status == "settled"
    assert p.realized_pnl > 0  # the position made money (the report counts it as a winner)
    losses = board.losses()
    assert losses["consecutive_losses"] == 0, f"a winning position ({p.realized_pnl} realized) is no loss"
    assert losses["daily_loss_limit"] == -p.realized_pnl, (
        f"board's daily loss {losses['daily_loss_limit']}; the day's realized P&L is {p.realized_pnl}")
