"""Paper runs record their account's balance (account_balance, SCD2 per platform and mode): the decision layer
sizes on the venue's own account and the dashboard's balance card shows it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from precog.engine.paper_venue import PaperVenue
from precog.trading.settings import TradingSettings
from precog.trading.snapshot import load_balance, load_snapshot
from web.dashkit import running_dashboard

CASH = Decimal("10000")  # the rig's account (tests/engine/conftest.py)


async def test_a_paper_run_records_the_paper_accounts_balance_for_sizing_and_the_dashboard(
        make_rig: Any, db_url: str) -> None:
    rig = make_rig()
    rig.venue = PaperVenue(rig.venue, CASH, clock=rig.now)
    rig.quote("0.49", "0.50", size=400)
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=20)
    await engine.start()
    assert rig.rows("SELECT balance, portfolio_value FROM current_balances") == [(CASH, Decimal(0))]
    await rig.run_until(lambda: rig.open_positions())
    for _ in range(5):  # a periodic reconciliation records the new balance
        await rig.step()
    # 400 YES at 0.50: $200 + fee ceil_cent(0.07 x 400 x 0.25) = $7.00; marked at the mid 0.495: $198.00
    assert rig.open_positions()[0].quantity == 400
    cash = (await rig.venue.balance()).balance
    assert cash == CASH - Decimal("207.00")
    assert rig.rows("SELECT platform_id, mode, balance, portfolio_value FROM current_balances") == [
        ("local", "paper", cash, Decimal("198.00"))]
    await engine.stop()
    assert [r[0] for r in rig.rows("SELECT balance FROM account_balance ORDER BY id")] == [CASH, cash]

    settings = TradingSettings.from_config(rig.config)
    assert load_balance(rig.conn, "paper", settings, platform_id="local") == cash
    # another platform's paper account (a Kalshi paper run) is not sized on the local exchange's cash
    assert load_balance(rig.conn, "paper", settings, platform_id="kalshi") == settings.initial_capital
    assert load_balance(rig.conn, "live", settings, platform_id="local") == settings.initial_capital
    assert load_snapshot(rig.conn, settings, "paper", platform_id="local").balance == cash
    # exposure is the platform's too: the local exchange's paper position is no exposure of a Kalshi paper run
    assert [p.ticker for p in load_snapshot(rig.conn, settings, "paper", platform_id="local").positions] == [
        rig.ticker]
    assert load_snapshot(rig.conn, settings, "paper", platform_id="kalshi").positions == []

    with running_dashboard(db_url) as dash:
        overview = httpx.get(dash.url + "/api/overview").json()
    assert [(b["platform_id"], b["mode"], Decimal(b["balance"]), Decimal(b["portfolio_value"]))
            for b in overview["balances"]] == [("local", "paper", cash, Decimal("198.00"))]
