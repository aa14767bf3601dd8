"""Spec 5.11 hedge_strategy on the real engine and the local exchange: a position whose bid rises 40 % above its
entry sells the partial_lock quantity once (exit reason `hedge`, MEDIUM's exit execution) and keeps the rest; a
method with `hedge: {enabled: false}` keeps all of it.

Partial exits are off and the profit target out of reach here, so the hedge is the only exit that holds.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)
from precog.domain.fees import FeeSchedule
from precog.trading import exits as ex

D = Decimal
ONLY_THE_HEDGE = {
    "position_management.partial_exits.enabled": False,
    "position_management.exit_rules.profit_target": {"high_confidence": D("0.90"), "medium_confidence": D("0.90"),
                                                      "low_confidence": D("0.90")},
}


def _hedge_exits(rig: Any, position_id: int) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT exit_condition, exit_priority, quantity_exited, partial_stage FROM position_exits "
                    "WHERE position_id = %s ORDER BY exit_id", position_id)


async def test_winning_position_is_hedged_once_and_keeps_the_rest(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**ONLY_THE_HEDGE))
    await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    qty, entry = pos.quantity, pos.entry_price
    assert entry == D("0.50") and qty > 1
    k = ex.partial_lock_quantity(qty, entry, D("0.70"), D("0.70"), FeeSchedule())
    assert 1 <= k < qty, (k, qty)
    rig.probs.p[rig.ticker] = D("0.95")  # the edge stays positive: no edge exit
    rig.quote("0.70", "0.71")  # +40 % at the bid
    await rig.run_until(lambda: rig.venue_position() < qty)
    await rig.run_until(lambda: not rig.engine.exits.jobs)
    assert rig.venue_position() == qty - k
    assert [r[:2] for r in _hedge_exits(rig, pos.position_id)] == [("hedge", "MEDIUM")] * len(
        _hedge_exits(rig, pos.position_id))
    assert sum(r[2] for r in _hedge_exits(rig, pos.position_id)) == k
    assert {r[3] for r in _hedge_exits(rig, pos.position_id)} == {"hedge"}
    p = rig.engine.portfolio.get(pos.position_id)
    assert p.is_open and p.quantity == qty - k and p.exit_reason == "hedge" and p.exit_priority == "MEDIUM"
    assert "hedge" in p.executed_stages and p.stage_sold == {"hedge": k} and p.hedge_quantity == k
    # the lock: what the sale brought in, after its fee, covers 70 % of the profit even if the rest is worth 0
    sold = rig.rows("SELECT sum(price * quantity), sum(fees) FROM trades WHERE position_id = %s AND action = 'sell'",
                    pos.position_id)[0]
    assert sold[0] - sold[1] - qty * entry >= D("0.70") * qty * (D("0.70") - entry)
    assert {r[0] for r in rig.rows("SELECT exit_condition FROM orders WHERE position_id = %s AND purpose = 'exit'",
                                   pos.position_id)} == {"hedge"}
    assert {r[0] for r in rig.rows("SELECT exit_condition FROM exit_attempts WHERE position_id = %s",
                                   pos.position_id)} == {"hedge"}
    # the trigger still holds (+40 %, then +50 %) on the next cycles: nothing more is sold
    for bid, ask in (("0.70", "0.71"), ("0.75", "0.76")):
        rig.quote(bid, ask)
        for _ in range(8):
            await rig.step()
    assert rig.venue_position() == qty - k
    assert sum(r[2] for r in _hedge_exits(rig, pos.position_id)) == k
    assert rig.engine.portfolio.get(pos.position_id).quantity == qty - k
    # the dashboard no longer shows a hedge trigger for it
    from precog.web.queries import open_positions

    [row] = [r for r in open_positions(rig.conn, mode=None, rules=rig.engine.rules, now=rig.now())
             if r["position_id"] == pos.position_id]
    assert row["hedged"] and "hedge" not in {t["trigger"] for t in row["triggers"]}


async def test_a_method_with_the_hedge_off_keeps_the_whole_position(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**ONLY_THE_HEDGE))
    rig.methods = [dataclasses.replace(m, position_mgmt={**(m.position_mgmt or {}), "hedge": {"enabled": False}})
                   for m in rig.methods]
    await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    qty = pos.quantity
    rig.probs.p[rig.ticker] = D("0.95")
    rig.quote("0.70", "0.71")
    for _ in range(20):
        await rig.step()
    assert rig.venue_position() == qty
    assert _hedge_exits(rig, pos.position_id) == []
    assert rig.engine.portfolio.get(pos.position_id).quantity == qty


MEDIUM_NO_WALK = {"order_type": "limit", "price": "aggressive", "timeout_seconds": 30, "escalation": "walk_price",
                  "max_walks": 0}


async def test_a_part_sold_hedge_sells_the_rest_of_its_first_size(make_rig: Any) -> None:  # noqa: F811
    """The hedge's attempt sells what the bid holds (60) and gives up on the rest; the next check where a trigger
    holds sells the rest of the quantity fixed when it fired, not a new partial_lock size of what is left."""
    # no trailing stop: the bid falls back to +20 % below
    rig = make_rig(rig_config(**ONLY_THE_HEDGE, **{"position_management.exit_execution.MEDIUM": MEDIUM_NO_WALK,
                                                   "position_management.trailing_stop.enabled": False}))
    await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    qty, entry = pos.quantity, pos.entry_price
    k = ex.partial_lock_quantity(qty, entry, D("0.70"), D("0.70"), FeeSchedule())
    resized = ex.partial_lock_quantity(qty - 60, entry, D("0.70"), D("0.70"), FeeSchedule())
    assert k > 60 and resized != k - 60, (qty, k, resized)
    rig.probs.p[rig.ticker] = D("0.95")
    rig.quote("0.70", "0.71", size=60)
    await rig.run_until(lambda: rig.venue_position() < qty)
    assert rig.venue_position() == qty - 60
    rig.quote("0.60", "0.61")  # +20 %: no trigger while the rest of the attempt rests at 0.69 and times out
    await rig.run_until(lambda: not rig.engine.exits.jobs, max_steps=12)
    assert rig.rows("SELECT count(*) FROM alerts WHERE alert_type = 'exit_failed'")[0][0] == 1
    p = rig.engine.portfolio.get(pos.position_id)
    assert p.stage_sold == {"hedge": 60} and p.hedge_quantity == k and "hedge" not in p.executed_stages
    rig.quote("0.70", "0.71")  # the trigger holds again, with a deep bid
    for _ in range(12):
        await rig.step()
    assert sum(r[2] for r in _hedge_exits(rig, pos.position_id)) == k
    p = rig.engine.portfolio.get(pos.position_id)
    assert p.quantity == qty - k and "hedge" in p.executed_stages
    assert rig.venue_position() == qty - k
