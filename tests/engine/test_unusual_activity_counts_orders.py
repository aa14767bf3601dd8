"""The unusual-activity limits count trades as orders that executed: an entry that walks two price levels (two
fills, two `trades` rows) is one trade; a second order is a second one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import TICKER, TICKER2, make_rig  # noqa: F401
from precog.trading.breakers import BreakerBoard
from precog.trading.settings import BreakerSettings


async def test_an_order_filled_in_pieces_is_one_trade_for_the_hourly_limit(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(second_market=True)
    board = BreakerBoard(BreakerSettings(max_trades_per_hour=1))
    rig.quote("0.49", "0.51")
    rig.exchange.place_order("mm", TICKER, "no", "buy", 3, Decimal("0.50"))  # 3 contracts asked at 0.50 first
    rig.probs.p[TICKER] = Decimal("0.75")  # an edge past market_order_edge: immediate-or-cancel up to 0.51
    engine = rig.make_engine(breakers=board)
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    fills = rig.rows("SELECT order_id, price FROM trades WHERE market_id = %s ORDER BY trade_id", TICKER)
    assert len(fills) >= 2 and len({f[0] for f in fills}) == 1, fills  # one order, filled at two levels
    assert {f[1] for f in fills} == {Decimal("0.50"), Decimal("0.51")}
    await rig.step()
    assert not board.is_open("unusual_activity") and engine.trading_state == "ACTIVE"
    # a second order within the hour is the second trade: past the limit of one
    rig.quote("0.49", "0.50", ticker=TICKER2)
    rig.probs.p[TICKER2] = Decimal("0.62")
    await rig.run_until(lambda: len(rig.open_positions()) == 2)
    assert board.is_open("unusual_activity")
    await rig.step()
    assert engine.trading_state == "REDUCING"
