"""A named paper account (the Kalshi paper run's: one per Kalshi account) lives on over a restart of the process:
the new run takes over the open positions, the paper cash is what the books say it moved, a paper order that was
working when the process died reads as canceled with what it filled, and the carried position is exited or
settled like any other."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import CASH, make_rig  # noqa: F401 - fixture
from precog.engine.paper_venue import PaperVenue
from precog.trading.executor import OrderIntent
from precog.trading.orders import OrderState

ACCOUNT = "paper:local-test-account"


async def test_a_restarted_paper_run_takes_over_its_positions_cash_and_orders(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    data = rig.venue
    rig.venue = PaperVenue(data, CASH, clock=rig.now, account_ref=ACCOUNT)
    first = await rig.engine_with_position()
    (pos,) = rig.open_positions()
    cash_before = (await rig.venue.balance()).balance
    assert cash_before == CASH + first.our_cash_delta() < CASH
    # an order of the dying process still working: a sell of one contract far above the market
    working = await first.executor.submit(OrderIntent(
        market_id=rig.ticker, side=pos.side, action="sell", quantity=1, limit_price=Decimal("0.99"), purpose="exit",
        decision_key="dying-exit", position_id=pos.position_id, exit_condition="manual", exit_priority="LOW"))
    assert working.status is OrderState.RESTING

    # the process dies (no stop); a new one opens the same paper account
    rig.venue = PaperVenue(data, CASH, clock=rig.now, account_ref=ACCOUNT)
    second = rig.make_engine()
    rep = await second.start()
    assert rep.ok, rep
    assert [p.position_id for p in second.portfolio.open_positions()] == [pos.position_id]
    assert (await rig.venue.balance()).balance == cash_before
    assert [(p.ticker, int(p.position)) for p in await rig.venue.positions()] == [(rig.ticker, pos.quantity)]
    ((state,),) = rig.rows("SELECT status FROM orders WHERE id = %s", working.id)
    assert state == "canceled" and working.client_order_id not in second.executor.open  # it died with the process

    rig.exchange.determine_market(rig.ticker, Decimal("1"))  # YES wins: the carried position settles
    await rig.run_until(lambda: not rig.open_positions(), max_steps=3)
    ((status,),) = rig.rows("SELECT status FROM positions WHERE row_current_ind AND position_id = %s",
                            pos.position_id)
    ((payout, qty),) = rig.rows("SELECT payout, quantity FROM settlements WHERE position_id = %s", pos.position_id)
    assert status == "settled" and qty == pos.quantity and payout == Decimal(pos.quantity)
    # our books and the paper account agree to the cent, across both processes
    assert CASH + second.account_cash_delta() == (await rig.venue.balance()).balance

