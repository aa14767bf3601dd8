"""A partial-exit stage counts as executed only once its whole quantity has been sold (spec §5.8).

The stage's exit attempt can give up having sold part of it (a MEDIUM exit walks `max_walks` times, then the
position stays open). The stage is not done: while its threshold still holds, the next check sells what is
left of it — and only that (the contracts already sold count). What was sold of a stage is in the position's
metadata (`stage_sold`), so a restarted engine finishes the stage the same way.

Here the MEDIUM policy opens at the aggressive price and may not walk, so one attempt sells what the bid
holds (60 contracts) and the rest of its order rests until the timeout cancels it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)

MEDIUM_NO_WALK = {"order_type": "limit", "price": "aggressive", "timeout_seconds": 30, "escalation": "walk_price",
                  "max_walks": 0}


def _stage_sold(rig: Any, position_id: int, stage: str) -> int:
    rows = rig.rows("SELECT coalesce(sum(quantity_exited), 0) FROM position_exits WHERE position_id = %s "
                    "AND partial_stage = %s", position_id, stage)
    return int(rows[0][0])


async def _first_stage_gives_up_part_sold(rig: Any) -> tuple[Any, int]:
    """Enter, then let first_target sell 60 of its contracts and give up on the rest."""
    await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    qty = pos.quantity
    assert qty * 50 // 100 > 60
    rig.probs.p[rig.ticker] = Decimal("0.95")  # the edge stays: no early exit
    rig.quote("0.58", "0.59", size=60)  # +16 %: first_target; the bid holds 60 contracts
    await rig.run_until(lambda: rig.venue_position() < qty)
    assert rig.venue_position() == qty - 60
    # the bid is gone; a lower one (12 %, under the stage threshold) keeps the book liquid while the
    # remainder of the attempt rests at 0.57 until its 30 s timeout; then the attempt gives up
    rig.quote("0.56", "0.59")
    await rig.run_until(lambda: not rig.engine.exits.jobs, max_steps=12)
    assert rig.rows("SELECT count(*) FROM alerts WHERE alert_type = 'exit_failed'")[0][0] == 1
    assert _stage_sold(rig, pos.position_id, "first_target") == 60
    return pos, qty


async def test_part_sold_stage_sells_its_remainder_once(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"position_management.exit_execution.MEDIUM": MEDIUM_NO_WALK}))
    pos, qty = await _first_stage_gives_up_part_sold(rig)
    stage_qty = qty * 50 // 100
    rig.quote("0.58", "0.59")  # the threshold holds again, with a deep bid
    for _ in range(12):
        await rig.step()
    assert _stage_sold(rig, pos.position_id, "first_target") == stage_qty, (
        f"first_target sold {_stage_sold(rig, pos.position_id, 'first_target')} of its {stage_qty} contracts")
    p = rig.engine.portfolio.get(pos.position_id)
    assert p.quantity == qty - stage_qty and "first_target" in p.executed_stages
    assert "second_target" not in p.executed_stages  # +16 % is under the second stage's 25 %
    assert _stage_sold(rig, pos.position_id, "second_target") == 0
    assert rig.venue_position() == p.quantity


async def test_part_sold_stage_survives_a_restart(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"position_management.exit_execution.MEDIUM": MEDIUM_NO_WALK}))
    pos, qty = await _first_stage_gives_up_part_sold(rig)
    stage_qty = qty * 50 // 100
    stored = rig.rows("SELECT position_metadata FROM positions WHERE row_current_ind AND position_id = %s",
                      pos.position_id)[0][0]
    assert stored.get("stage_sold") == {"first_target": 60}, stored
    engine = rig.make_engine()  # a new process on the same database and account
    await engine.start()
    rig.quote("0.58", "0.59")
    for _ in range(12):
        await rig.step()
    assert _stage_sold(rig, pos.position_id, "first_target") == stage_qty
    p = engine.portfolio.get(pos.position_id)
    assert p.quantity == qty - stage_qty and p.executed_stages == frozenset({"first_target"})
    assert rig.venue_position() == p.quantity


def test_stage_trigger_is_what_the_stage_has_left() -> None:
    """Pure rules: 100 contracts, first_target (50) sold 30 so far -> the trigger sells 20, and names the stage's
    whole 50; once it sold 50 the next stage is the second."""
    from precog.trading import exits as ex

    rules = ex.ExitRules(stop_loss={"medium": Decimal("-0.12")}, profit_target={"medium": Decimal("0.20")},
                         stages=(ex.PartialStage("first_target", Decimal("0.15"), 50),
                                 ex.PartialStage("second_target", Decimal("0.25"), 25)))

    def partial(sold: dict[str, int], held: int) -> list[ex.ExitTrigger]:
        s = ex.ExitSituation(quantity=held, initial_quantity=100, entry_price=Decimal("0.50"), bid=Decimal("0.64"),
                             ask=Decimal("0.65"), bid_size=500, stage_sold=sold)
        return [t for t in ex.evaluate(s, rules) if t.condition == "partial_exit_target"]

    assert [(t.stage, t.quantity, t.stage_target) for t in partial({"first_target": 30}, 70)] == [
        ("first_target", 20, 50)]
    assert [(t.stage, t.quantity, t.stage_target) for t in partial({"first_target": 50}, 50)] == [
        ("second_target", 25, 25)]
