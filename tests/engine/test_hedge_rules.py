"""Spec 5.11 hedge_strategy, the pure rules: the three triggers, when the hedge does not fire, and the
partial_lock size (the fewest contracts whose sale at the bid, after its taker fee, locks 70 % of the unrealized
profit even if the contracts kept settle worthless)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from precog.domain.fees import FeeSchedule
from precog.trading import exits as ex

D = Decimal
NO_FEE = FeeSchedule(taker_rate=D("0"))
KALSHI = FeeSchedule()  # the taker rate 0.07
ON = ex.HedgeRules(enabled=True)
# exit rules under which nothing but the hedge holds for a winner: partial exits off, a profit target out of reach,
# the edge exits only on a deep negative edge, time_based_urgent under 2 minutes
RULES = ex.ExitRules(stop_loss={"medium": D("-0.12")}, profit_target={"medium": D("0.90")},
                     time_based_urgent_seconds=120, early_exit_edge=D("-0.50"), edge_disappeared_edge=D("-0.50"),
                     partial_enabled=False, hedge=ON)


def _s(**kw: object) -> ex.ExitSituation:
    base: dict[str, object] = dict(quantity=100, initial_quantity=100, entry_price=D("0.50"), bid=D("0.60"),
                                   ask=D("0.61"), bid_size=500)
    base.update(kw)
    return ex.ExitSituation(**base)  # type: ignore[arg-type]


def _hedges(s: ex.ExitSituation, rules: ex.ExitRules = RULES, fees: FeeSchedule = NO_FEE) -> list[ex.ExitTrigger]:
    return [t for t in ex.evaluate(s, rules, fees) if t.condition == "hedge"]


def test_partial_lock_worked_numbers() -> None:
    # entry 0.40, bid 0.70, 100 held: the profit is 30.00, 70 % of it 21.00. 88 x 0.70 - 40 = 21.60 >= 21.00;
    # 87 x 0.70 - 40 = 20.90 is not enough
    assert ex.partial_lock_quantity(100, D("0.40"), D("0.70"), D("0.70"), NO_FEE) == 88
    # with the taker fee ceil(0.07 x k x 0.70 x 0.30) the sale must cover it: 88 -> 61.60 - 1.30 = 60.30 and
    # 89 -> 62.30 - 1.31 = 60.99 fall short of the 61.00 needed; 90 -> 63.00 - 1.33 = 61.67
    assert KALSHI.fee(89, D("0.70")) == D("1.31") and KALSHI.fee(90, D("0.70")) == D("1.33")
    assert ex.partial_lock_quantity(100, D("0.40"), D("0.70"), D("0.70"), KALSHI) == 90
    # half the profit: 40 + 15 = 55 -> 55 / 0.70 = 78.6 -> 79
    assert ex.partial_lock_quantity(100, D("0.40"), D("0.70"), D("0.50"), NO_FEE) == 79


def test_partial_lock_sells_everything_when_no_smaller_sale_locks_enough() -> None:
    # entry 0.40, bid 0.45, 10 held: 4.00 + 0.70 x 0.50 = 4.35 needed; 9 x 0.45 = 4.05 is short -> all 10
    assert ex.partial_lock_quantity(10, D("0.40"), D("0.45"), D("0.70"), NO_FEE) == 10
    # one contract: the fewest is the only one
    assert ex.partial_lock_quantity(1, D("0.40"), D("0.90"), D("0.70"), KALSHI) == 1


@pytest.mark.parametrize(("quantity", "entry", "bid", "lock"), [
    (100, "0.40", "0.70", "0.70"), (37, "0.12", "0.55", "0.30"), (500, "0.50", "0.60", "0.70"),
    (3, "0.20", "0.99", "0.95"), (1000, "0.05", "0.06", "0.10")])
def test_partial_lock_is_the_fewest_that_locks(quantity: int, entry: str, bid: str, lock: str) -> None:
    e, b, f = D(entry), D(bid), D(lock)
    k = ex.partial_lock_quantity(quantity, e, b, f, KALSHI)
    need = quantity * e + f * quantity * (b - e)

    def locks(n: int) -> bool:
        return n * b - KALSHI.fee(n, b) >= need

    assert 1 <= k <= quantity
    assert locks(k) or k == quantity
    assert not any(locks(n) for n in range(1, k))


def test_gain_trigger_at_40_percent() -> None:
    assert _hedges(_s(bid=D("0.69"), ask=D("0.70"))) == []  # +38 %
    [t] = _hedges(_s(bid=D("0.70"), ask=D("0.71")))  # +40 %: at the threshold it fires
    # 50 + 0.70 x 100 x 0.20 = 64.00 to lock: 92 x 0.70 = 64.40 (91 x 0.70 = 63.70 is short)
    assert (t.priority, t.stage, t.quantity, t.stage_target) == ("MEDIUM", "hedge", 92, 92)
    assert "gain 0.4000 >= 0.40" in t.detail


def test_edge_flip_trigger_needs_a_profit() -> None:
    # +20 %: under the gain trigger; the recomputed edge flipped to -0.10
    [t] = _hedges(_s(recomputed_edge=D("-0.10")))
    assert "edge -0.10 <= -0.10" in t.detail
    assert _hedges(_s(recomputed_edge=D("-0.09"))) == []
    # at a loss (and at break-even) there is nothing to lock
    assert _hedges(_s(bid=D("0.47"), ask=D("0.48"), recomputed_edge=D("-0.30"))) == []
    assert _hedges(_s(bid=D("0.50"), ask=D("0.51"), recomputed_edge=D("-0.30"))) == []


def test_minutes_left_trigger_needs_the_dollar_gain() -> None:
    # 0.10 x 500 = $50.00 gain with 5 minutes left: fires; 4:59 or 5:00 both inside
    [t] = _hedges(_s(quantity=500, initial_quantity=500, seconds_to_close=300.0))
    assert "300 s left" in t.detail
    assert _hedges(_s(quantity=500, initial_quantity=500, seconds_to_close=299.0))
    assert _hedges(_s(quantity=500, initial_quantity=500, seconds_to_close=301.0)) == []
    # $49.90 of gain is under the $50 minimum
    assert _hedges(_s(quantity=499, initial_quantity=499, seconds_to_close=200.0)) == []


def test_no_hedge_without_a_bid_or_when_off() -> None:
    assert ex.hedge_trigger(_s(bid=None, ask=D("0.80")), ON, NO_FEE) is None
    off = ex.ExitRules(**{**RULES.__dict__, "hedge": ex.HedgeRules(enabled=False)})
    assert _hedges(_s(bid=D("0.80"), ask=D("0.81")), off) == []
    # the default ExitRules (no hedge_strategy given) have no hedge
    assert not ex.ExitRules.from_config({}).hedge.enabled


def test_a_full_exit_holding_leaves_no_hedge() -> None:
    winner = _s(bid=D("0.80"), ask=D("0.81"))
    assert _hedges(winner)
    for full in (_s(bid=D("0.80"), ask=D("0.81"), trailing_triggered=True),
                 _s(bid=D("0.80"), ask=D("0.81"), seconds_to_close=60.0),
                 _s(bid=D("0.80"), ask=D("0.81"), recomputed_edge=D("-0.60")),
                 _s(bid=D("0.80"), ask=D("0.81"), better_opportunity=True)):
        triggers = ex.evaluate(full, RULES, NO_FEE)
        assert triggers and all(t.condition != "hedge" for t in triggers), triggers
    # the spec's default edge exits: a flipped edge is edge_disappeared (a full exit) before it is a hedge
    spec_edges = ex.ExitRules(**{**RULES.__dict__, "early_exit_edge": D("0.02"), "edge_disappeared_edge": D("0")})
    decision = ex.resolve(ex.evaluate(_s(recomputed_edge=D("-0.15")), spec_edges, NO_FEE))
    assert decision is not None and decision.trigger.condition == "edge_disappeared"
    assert all(t.condition != "hedge" for t in decision.conflicting)


def test_a_due_partial_stage_goes_first() -> None:
    staged = ex.ExitRules(**{**RULES.__dict__, "partial_enabled": True,
                             "stages": (ex.PartialStage("first_target", D("0.15"), 50),)})
    decision = ex.resolve(ex.evaluate(_s(bid=D("0.80"), ask=D("0.81")), staged, NO_FEE))
    assert decision is not None and decision.trigger.condition == "partial_exit_target"
    assert [t.condition for t in decision.conflicting] == ["hedge"]
    # once the stage is sold the hedge is what remains, sized on the 50 still held: 25 + 0.70 x 50 x 0.30 = 35.50
    # to lock, 45 x 0.80 = 36.00 (44 x 0.80 = 35.20 is short)
    after = _s(bid=D("0.80"), ask=D("0.81"), quantity=50, executed_stages=frozenset({"first_target"}),
               stage_sold={"first_target": 50})
    decision = ex.resolve(ex.evaluate(after, staged, NO_FEE))
    assert decision is not None and decision.trigger.condition == "hedge"
    assert decision.trigger.quantity == ex.partial_lock_quantity(50, D("0.50"), D("0.80"), D("0.70"), NO_FEE) == 45


def test_once_per_position_and_a_part_sold_hedge_sells_its_remainder() -> None:
    done = _s(bid=D("0.80"), ask=D("0.81"), quantity=20, executed_stages=frozenset({"hedge"}),
              stage_sold={"hedge": 80}, hedge_quantity=80)
    assert _hedges(done) == []
    # fired for 88, sold 30: the rest of the 88 (58), not a new size on the 70 held
    part = _s(bid=D("0.80"), ask=D("0.81"), quantity=70, stage_sold={"hedge": 30}, hedge_quantity=88)
    [t] = _hedges(part)
    assert (t.quantity, t.stage_target) == (58, 88)
    # ... and only while a trigger holds, as a partial stage's remainder
    assert _hedges(_s(bid=D("0.60"), ask=D("0.61"), quantity=70, stage_sold={"hedge": 30}, hedge_quantity=88)) == []


def test_the_hedge_stage_name_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved for the hedge"):
        ex.ExitRules.from_config({"partial_exits": {"stages": [
            {"name": "hedge", "profit_threshold": "0.15", "exit_percentage": 50}]}})


def test_a_methods_hedge_overrides_the_global_one() -> None:
    base = ex.ExitRules.from_config({}, {"enabled": True, "triggers": {"unrealized_gain_pct": D("0.40")}})
    assert base.hedge == ON
    off = ex.rules_for_method(base, {"hedge": {"enabled": False}})
    assert not off.hedge.enabled and off.hedge.unrealized_gain_pct == D("0.40")
    tuned = ex.rules_for_method(base, {"hedge": {"triggers": {"unrealized_gain_pct": "0.25"},
                                                 "sizing": {"lock_fraction": "0.50"}}})
    assert tuned.hedge == ex.HedgeRules(enabled=True, unrealized_gain_pct=D("0.25"), lock_fraction=D("0.50"))
    assert ex.rules_for_method(base, {}).hedge == ON
    with pytest.raises(ValueError, match=r"position_mgmt_config\.hedge\.sizing\.lock_fraction = 1\.5 .*\(0, 1\)"):
        ex.rules_for_method(base, {"hedge": {"sizing": {"lock_fraction": "1.5"}}})
    with pytest.raises(ValueError, match=r"position_mgmt_config\.hedge\.triggers\.gain_pct: unknown key"):
        ex.rules_for_method(base, {"hedge": {"triggers": {"gain_pct": "0.3"}}})


def test_a_hedge_orders_id_carries_its_condition_and_size() -> None:
    """An adopted hedge order (its row lost) is restored as the hedge, with the quantity fixed when it fired."""
    from precog.trading.orders import OrderTags, derive_client_order_id, parse_client_order_id

    tags = OrderTags("exit", position_id=345, exit_condition="hedge", stage="hedge", stage_quantity=88, attempt=2)
    cid = derive_client_order_id("exit", "pos=345|cond=hedge|stage=hedge|start=1|attempt=2", tags)
    assert cid.startswith("pcx-p345-chg-shedge-q88-a2-") and len(cid) <= 64
    assert parse_client_order_id(cid) == tags


def test_a_position_near_the_hedge_is_checked_every_5_seconds() -> None:
    """Spec 5.5 cadence: near a threshold the position is urgent; the hedge's gain trigger is one until taken."""
    from precog.trading import trailing
    from precog.trading.monitor import MonitorConfig, PositionMonitor
    from precog.trading.portfolio import PositionState

    high_target = ex.ExitRules(stop_loss={"medium": D("-0.12")}, profit_target={"medium": D("0.90")},
                               partial_enabled=False, hedge=ON)
    monitor = PositionMonitor(None, None, high_target, trailing.TrailingConfig(), MonitorConfig())  # type: ignore[arg-type]

    def pos(price: str, stages: list[str]) -> PositionState:
        return PositionState(position_id=1, market_id="M", platform_id="kalshi", side="yes", mode="paper",
                             entry_price=D("0.50"), quantity=100, initial_quantity=100, current_price=D(price),
                             metadata={"confidence": "medium", "executed_stages": stages})

    assert not monitor.is_urgent(pos("0.68", []))  # +36 %
    assert monitor.is_urgent(pos("0.695", []))  # +39 %: within 0.02 of the 40 % trigger
    assert not monitor.is_urgent(pos("0.695", ["hedge"]))  # taken: nothing left to watch for
    monitor.rules = ex.ExitRules(**{**high_target.__dict__, "hedge": ex.HedgeRules()})
    assert not monitor.is_urgent(pos("0.695", []))  # no hedge
