"""Spec §5.6-§5.9 clause by clause at the exact boundaries (Decimal): just below, at and just above each
threshold of the exit conditions, the trailing stop's activation and tightening steps, partial-stage sizes
after rounding, exit prices, walk steps, walk waits and the exit_execution configuration.

The rules are the packaged position_management.yaml (medium confidence unless a case says otherwise): stop
loss -0.15/-0.12/-0.08, profit target 0.25/0.20/0.15, stages 0.15 -> 50 %, 0.25 -> 25 % of the original
quantity, time_based_urgent < 5 min, liquidity spread > 0.03 or bid size < 50, early_exit edge < 0.02,
edge_disappeared edge < 0, trailing stop 0.10 / 0.05 / 0.01 per 0.05 / 0.02 floor.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from precog.config.loader import load_config
from precog.trading import exits as ex
from precog.trading import trailing

D = Decimal
PM = load_config(use_env=False).section("position_management")
RULES = ex.ExitRules.from_config(PM)
NO_PARTIAL = replace(RULES, partial_enabled=False)
CFG = trailing.TrailingConfig.from_mapping(PM["trailing_stop"])
ENTRY = D("0.50")


def _s(bid: str | None, **kw: Any) -> ex.ExitSituation:
    base: dict[str, Any] = dict(quantity=100, initial_quantity=100, entry_price=ENTRY,
                                bid=None if bid is None else D(bid), ask=None if bid is None else D(bid) + D("0.01"),
                                bid_size=500)
    base.update(kw)
    return ex.ExitSituation(**base)


def _conds(s: ex.ExitSituation, rules: ex.ExitRules = RULES) -> set[str]:
    return {t.condition for t in ex.evaluate(s, rules)}


def test_the_packaged_rules_are_the_spec_values() -> None:
    assert RULES.stop_loss == {"high": D("-0.15"), "medium": D("-0.12"), "low": D("-0.08")}
    assert RULES.profit_target == {"high": D("0.25"), "medium": D("0.20"), "low": D("0.15")}
    assert RULES.time_based_urgent_seconds == 300
    assert (RULES.liquidity_max_spread, RULES.liquidity_min_volume) == (D("0.03"), 50)
    assert (RULES.early_exit_edge, RULES.edge_disappeared_edge) == (D("0.02"), D("0"))
    assert [(s.name, s.profit_threshold, s.exit_percentage) for s in RULES.stages] == [
        ("first_target", D("0.15"), 50), ("second_target", D("0.25"), 25)]
    assert CFG == trailing.TrailingConfig(True, D("0.10"), D("0.05"), D("0.01"), D("0.02"))


# ------------------------------------------------------------------ 1 stop_loss: pct < threshold (strict)

@pytest.mark.parametrize(("confidence", "at"), [("high", "0.425"), ("medium", "0.44"), ("low", "0.46")])
def test_stop_loss_fires_only_below_the_threshold_of_the_positions_confidence(confidence: str, at: str) -> None:
    above, below = D(at) + D("0.0001"), D(at) - D("0.0001")
    assert "stop_loss" not in _conds(_s(str(above), confidence=confidence))
    assert "stop_loss" not in _conds(_s(at, confidence=confidence))  # pct == threshold: holds
    (t,) = [t for t in ex.evaluate(_s(str(below), confidence=confidence), RULES) if t.condition == "stop_loss"]
    assert (t.priority, t.quantity) == ("CRITICAL", 100)


def test_an_unknown_confidence_uses_the_medium_stop() -> None:
    assert "stop_loss" not in _conds(_s("0.44", confidence="unknown"))
    assert "stop_loss" in _conds(_s("0.4399", confidence="unknown"))


# ------------------------------------------------------------------ 4 time_based_urgent: < 5 min to close

def test_time_based_urgent_fires_under_five_minutes_to_close() -> None:
    assert "time_based_urgent" not in _conds(_s("0.50", seconds_to_close=300.0))
    assert "time_based_urgent" not in _conds(_s("0.50", seconds_to_close=None))
    for left in (299.999, 0.0, -1.0):
        (t,) = [t for t in ex.evaluate(_s("0.50", seconds_to_close=left), RULES) if t.condition == "time_based_urgent"]
        assert (t.priority, t.quantity) == ("HIGH", 100)


# ------------------------------------------------------------------ 5 liquidity_dried_up: spread > 0.03 or size < 50

def test_liquidity_dried_up_at_its_boundaries() -> None:
    def liq(bid: str | None, ask: str | None, size: int | None) -> bool:
        s = _s(bid, ask=None if ask is None else D(ask), bid_size=size)
        return "liquidity_dried_up" in _conds(s)

    assert not liq("0.50", "0.53", 50)  # spread exactly 0.03, exactly 50 bid
    assert liq("0.50", "0.5301", 50)
    assert liq("0.50", "0.51", 49)
    assert not liq("0.50", "0.51", None)  # an unknown size is not a dried-up book
    assert not liq("0.50", None, 500)  # nobody offers: no spread to measure, the bid is there
    assert liq(None, "0.51", None)  # nobody bids: nothing to sell into


# ------------------------------------------------------------------ 6 profit_target: pct >= target (partials off)

@pytest.mark.parametrize(("confidence", "at"), [("high", "0.625"), ("medium", "0.60"), ("low", "0.575")])
def test_profit_target_fires_at_the_target(confidence: str, at: str) -> None:
    below = str(D(at) - D("0.0001"))
    assert "profit_target" not in _conds(_s(below, confidence=confidence), NO_PARTIAL)
    (t,) = [t for t in ex.evaluate(_s(at, confidence=confidence), NO_PARTIAL) if t.condition == "profit_target"]
    assert (t.priority, t.quantity) == ("MEDIUM", 100)
    # with partial exits enabled the target is handed over to the stages: never a full profit_target exit
    assert "profit_target" not in _conds(_s(at, confidence=confidence))


# ------------------------------------------------------------------ 7 partial_exit_target: stage threshold reached

def test_stage_thresholds_are_inclusive_and_stages_go_in_order() -> None:
    assert "partial_exit_target" not in _conds(_s("0.5749"))
    (t,) = [t for t in ex.evaluate(_s("0.575"), RULES) if t.condition == "partial_exit_target"]
    assert (t.stage, t.quantity, t.priority, t.stage_target) == ("first_target", 50, "MEDIUM", 50)
    # far past the second threshold: still the first stage first
    (t,) = [t for t in ex.evaluate(_s("0.80"), RULES) if t.condition == "partial_exit_target"]
    assert t.stage == "first_target"
    done = frozenset({"first_target"})
    assert "partial_exit_target" not in _conds(_s("0.6249", quantity=50, executed_stages=done))
    (t,) = [t for t in ex.evaluate(_s("0.625", quantity=50, executed_stages=done), RULES)
            if t.condition == "partial_exit_target"]
    assert (t.stage, t.quantity) == ("second_target", 25)
    both = frozenset({"first_target", "second_target"})
    assert "partial_exit_target" not in _conds(_s("0.90", quantity=25, executed_stages=both))


@pytest.mark.parametrize(("initial", "first", "second"), [
    (100, 50, 25), (101, 50, 25), (7, 3, 1), (3, 1, 0), (2, 1, 0), (1, 0, 0), (4, 2, 1)])
def test_stage_sizes_are_shares_of_the_original_quantity_rounded_down(initial: int, first: int,
                                                                        second: int) -> None:
    """Whole contracts: a stage sells floor(pct x original); what is left rides the trailing stop. A stage of
    zero contracts is skipped (a 1-contract position never partially exits)."""
    s1, s2 = RULES.stages
    assert (ex.stage_target(s1, initial), ex.stage_target(s2, initial)) == (first, second)
    found = [t for t in ex.evaluate(_s("0.80", quantity=initial, initial_quantity=initial), RULES)
             if t.condition == "partial_exit_target"]
    if first:
        assert [(t.stage, t.quantity) for t in found] == [("first_target", first)]
    elif second:
        assert [(t.stage, t.quantity) for t in found] == [("second_target", second)]
    else:
        assert not found
    # after the first stage sold, the second sells its share of the ORIGINAL quantity, never more than is held
    after = _s("0.80", quantity=initial - first, initial_quantity=initial, executed_stages=frozenset({"first_target"}),
               stage_sold={"first_target": first})
    found = [t for t in ex.evaluate(after, RULES) if t.condition == "partial_exit_target"]
    assert [(t.stage, t.quantity) for t in found] == ([("second_target", second)] if second else [])
    assert initial - first - second >= 0


# ------------------------------------------------------------------ 8/9 early_exit (< 0.02), edge_disappeared (< 0)

def test_edge_exits_at_their_boundaries() -> None:
    def edge(value: str) -> set[str]:
        return _conds(_s("0.50", recomputed_edge=D(value))) & {"early_exit", "edge_disappeared"}

    assert edge("0.02") == set()
    assert edge("0.0199") == {"early_exit"}
    assert edge("0") == {"early_exit"}  # no edge left is not a negative edge
    # a negative edge is reported as edge_disappeared alone (it implies early_exit; both are LOW, full)
    assert edge("-0.0001") == {"edge_disappeared"}
    assert _conds(_s("0.50", recomputed_edge=None)) == set()  # no estimate: no edge exit


# ------------------------------------------------------------------ 10 rebalance: better opportunity and pct > 0

def test_rebalance_only_sells_winners() -> None:
    assert "rebalance" not in _conds(_s("0.50", better_opportunity=True))  # pct == 0: not a winner
    assert "rebalance" in _conds(_s("0.5001", better_opportunity=True))
    assert "rebalance" not in _conds(_s("0.60"))  # no better opportunity


def test_resolution_is_by_priority_and_keeps_every_other_trigger() -> None:
    s = _s("0.4399", ask=D("0.48"), bid_size=10, seconds_to_close=10.0, trailing_triggered=True,
           breaker_active=True, recomputed_edge=D("-0.5"))
    decision = ex.resolve(ex.evaluate(s, RULES))
    assert decision is not None and decision.trigger.condition == "stop_loss"
    assert [t.condition for t in decision.conflicting] == [
        "circuit_breaker", "trailing_stop", "time_based_urgent", "liquidity_dried_up", "edge_disappeared"]
    assert [ex.PRIORITY_RANK[t.priority] for t in decision.conflicting] == [1, 2, 2, 2, 4]


# ------------------------------------------------------------------ §5.7 trailing stop

def test_trailing_stop_activation_is_inclusive() -> None:
    entry = D("0.60")
    st, changed, hit = trailing.update(None, D("0.6599"), entry, CFG, "t")
    assert not st["active"] and not changed and not hit
    st, changed, hit = trailing.update(st, D("0.66"), entry, CFG, "t")  # +10.00 % exactly
    assert st["active"] and changed and not hit
    assert (D(st["peak_price"]), D(st["current_distance"]), D(st["current_stop_price"])) == (
        D("0.66"), D("0.05"), D("0.6270"))


@pytest.mark.parametrize(("peak", "distance"), [
    ("0.6899", "0.05"), ("0.69", "0.04"),  # +15 %: one step of 0.01
    ("0.7199", "0.04"), ("0.72", "0.03"),  # +20 %
    ("0.7499", "0.03"), ("0.75", "0.02"),  # +25 %: the 2 % floor
    ("0.95", "0.02")])
def test_trailing_distance_tightens_per_five_points_of_gain_down_to_the_floor(peak: str, distance: str) -> None:
    """distance = max(0.05 - 0.01 x floor((gain - 0.10) / 0.05), 0.02) at each new high (spec §5.7 / §11.6)."""
    entry = D("0.60")
    st, _, _ = trailing.update(None, D("0.66"), entry, CFG, "t0")
    st, changed, hit = trailing.update(st, D(peak), entry, CFG, "t1")
    assert changed and not hit
    stop = (D(peak) * (1 - D(distance))).quantize(D("0.0001"))
    assert (D(st["current_distance"]), D(st["current_stop_price"])) == (D(distance), stop)
    # exit when price <= stop: just above holds, at the stop exits
    _, _, hit = trailing.update(st, stop + D("0.0001"), entry, CFG, "t2")
    assert not hit
    st2, changed, hit = trailing.update(st, stop, entry, CFG, "t3")
    assert hit and not changed and st2 == st


def test_trailing_stop_never_moves_down_and_never_replaces_the_stop_loss() -> None:
    entry = D("0.50")
    st, _, _ = trailing.update(None, D("0.70"), entry, CFG, "t0")  # +40 %: active at the floor
    stop = D(st["current_stop_price"])
    assert stop == D("0.6860")
    for price in ("0.69", "0.6861", "0.695"):
        st, changed, hit = trailing.update(st, D(price), entry, CFG, "t")
        assert D(st["current_stop_price"]) == stop and not changed and not hit
    # a position far below its entry is the hard stop loss's (CRITICAL), whatever the trailing state
    s = _s("0.40", trailing_triggered=True)
    decision = ex.resolve(ex.evaluate(s, RULES))
    assert decision is not None and decision.trigger.condition == "stop_loss"


def test_a_disabled_trailing_stop_never_triggers() -> None:
    off = replace(CFG, enabled=False)
    st, changed, hit = trailing.update(None, D("0.90"), D("0.50"), off, "t")
    assert not st["active"] and not changed and not hit


# ------------------------------------------------------------------ §5.9 exit prices and walks

def test_start_prices_of_a_sell() -> None:
    bid, ask = D("0.75"), D("0.78")
    assert ex.start_price("aggressive", bid, ask) == D("0.74")  # max(bid - 0.01, bid x 0.98 = 0.735)
    assert ex.start_price("fair", bid, ask) == D("0.77")  # mid 0.765, half up
    assert ex.start_price("conservative", bid, ask) == D("0.78")
    assert ex.start_price("aggressive", D("0.01"), D("0.02")) == D("0.01")  # never below a cent
    assert ex.start_price("conservative", D("0.98"), D("0.999")) == D("0.99")  # never above 0.99


def test_walk_steps_grow_by_escalation() -> None:
    steps = {esc: [ex.walk_step(esc, n) for n in range(3)] for esc in ("walk_then_market", "walk_price", "walk_slowly")}
    assert steps == {"walk_then_market": [D("0.015"), D("0.020"), D("0.025")],
                     "walk_price": [D("0.010"), D("0.015"), D("0.020")],
                     "walk_slowly": [D("0.010"), D("0.013"), D("0.016")]}


def test_a_walk_never_goes_below_bid_minus_spread_even_on_sub_cent_quotes() -> None:
    """Spec §5.9: walking moves a sell down, never below bid - spread. With a sub-cent book (bid 0.505, ask
    0.515: floor 0.495) the walked price is rounded to the cent ABOVE that floor (0.50), not below (0.49)."""
    bid, ask = D("0.505"), D("0.515")
    for previous in ("0.52", "0.51", "0.50"):
        for n in range(5):
            price = ex.walked_price(D(previous), "walk_price", n, bid, ask)
            assert price >= bid - (ask - bid), (previous, n, price)
            assert price == price.quantize(D("0.01"))
    assert ex.walked_price(D("0.51"), "walk_price", 4, bid, ask) == D("0.50")
    # on whole cents the floor is exact
    assert ex.walked_price(D("0.49"), "walk_price", 4, D("0.50"), D("0.52")) == D("0.48")


# ------------------------------------------------------------------ §5.9 execution policy (table + walk waits)

def test_execution_policies_follow_the_spec_table() -> None:
    cfg = PM["exit_execution"]
    got = {p: ex.ExecutionPolicy.from_config(p, cfg[p]) for p in ("CRITICAL", "HIGH", "MEDIUM", "LOW")}
    table = {p: (g.order_type, g.price_style, g.timeout_seconds, g.escalation, g.max_walks) for p, g in got.items()}
    assert table == {"CRITICAL": ("market", None, 5.0, "immediate_market", 0),
                     "HIGH": ("limit", "aggressive", 10.0, "walk_then_market", 2),
                     "MEDIUM": ("limit", "fair", 30.0, "walk_price", 5),
                     "LOW": ("limit", "conservative", 60.0, "walk_slowly", 10)}
    liquidity = ex.ExecutionPolicy.from_config("HIGH", cfg["HIGH"], "liquidity_dried_up")
    assert (liquidity.timeout_seconds, liquidity.max_walks) == (15.0, 3)


def test_each_walk_waits_as_its_escalation_says() -> None:
    """Spec §5.9: the first attempt waits the priority's timeout; every walk after it waits 10 s
    (walk_then_market), 15 s (walk_price) or 30 s (walk_slowly)."""
    cfg = PM["exit_execution"]
    waits = {p: ex.ExecutionPolicy.from_config(p, cfg[p]).walk_wait_seconds for p in ("HIGH", "MEDIUM", "LOW")}
    assert waits == {"HIGH": 10.0, "MEDIUM": 15.0, "LOW": 30.0}
    assert ex.ExecutionPolicy.from_config("HIGH", cfg["HIGH"], "liquidity_dried_up").walk_wait_seconds == 10.0
    # a block that does not name it takes the spec's wait of its escalation
    block = {"order_type": "limit", "price": "fair", "timeout_seconds": 20, "escalation": "walk_slowly", "max_walks": 1}
    assert ex.ExecutionPolicy.from_config("MEDIUM", block).walk_wait_seconds == 30.0


@pytest.mark.parametrize(("block", "named"), [
    ({"order_type": "limit", "price": "fair", "timeout_seconds": 30, "escalation": "walk_prize", "max_walks": 5},
     "MEDIUM.escalation"),
    ({"order_type": "limit", "price": "fiar", "timeout_seconds": 30, "escalation": "walk_price", "max_walks": 5},
     "MEDIUM.price"),
    ({"order_type": "limit", "timeout_seconds": 30, "escalation": "walk_price", "max_walks": 5}, "MEDIUM.price"),
    ({"order_type": "stop", "price": "fair", "timeout_seconds": 30, "escalation": "walk_price", "max_walks": 5},
     "MEDIUM.order_type"),
    ({"order_type": "limit", "price": "fair", "escalation": "walk_price", "max_walks": 5}, "MEDIUM.timeout_seconds"),
    ({"order_type": "limit", "price": "fair", "timeout_seconds": 0, "escalation": "walk_price", "max_walks": 5},
     "MEDIUM.timeout_seconds"),
    ({"order_type": "limit", "price": "fair", "timeout_seconds": 30, "escalation": "walk_price", "max_walks": -1},
     "MEDIUM.max_walks"),
    ({"order_type": "limit", "price": "fair", "timeout_seconds": 30, "escalation": "walk_price"}, "MEDIUM.max_walks"),
    ({"order_type": "limit", "price": "fair", "timeout_seconds": 30, "escalation": "walk_price", "max_walks": 5,
      "walk_wait_seconds": 0}, "MEDIUM.walk_wait_seconds"),
])
def test_a_bad_exit_execution_block_is_refused_naming_the_key(block: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=rf"position_management\.exit_execution\.{named}"):
        ex.ExecutionPolicy.from_config("MEDIUM", block)


def test_the_exit_manager_checks_every_priority_when_built() -> None:
    from precog.trading.executor import ExitManager

    bad = {"LOW": {"order_type": "limit", "price": "conservative", "timeout_seconds": 60,
                   "escalation": "walk_slow", "max_walks": 10}}
    with pytest.raises(ValueError, match=r"exit_execution\.LOW\.escalation"):
        ExitManager(None, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"exit_execution\.URGENT"):
        ExitManager(None, {"URGENT": dict(PM["exit_execution"]["HIGH"])})  # type: ignore[arg-type]


# ------------------------------------------------------------------ exit_rules keys: a typo is refused, not ignored

@pytest.mark.parametrize(("change", "named"), [
    ({"early_exit_egde": D("0.05")}, r"exit_rules\.early_exit_egde"),
    ({"mandatory": {"negative_edge": D("-0.03")}}, r"exit_rules\.mandatory"),
    ({"stop_loss": {"high_confidence": D("-0.15"), "medium_confidence": D("-0.12"), "lo_confidence": D("-0.08")}},
     r"exit_rules\.stop_loss\.lo_confidence"),
    ({"profit_target": {"high_confidence": D("0.25"), "medium_confidence": D("0.20")}},
     r"exit_rules\.profit_target\.low_confidence"),
    ({"liquidity": {"max_spread": D("0.03"), "min_volum": 50}}, r"exit_rules\.liquidity\.min_volum"),
    ({"time_based_urgent_minutes": 0}, r"exit_rules\.time_based_urgent_minutes"),
])
def test_a_mistyped_exit_rule_is_refused_naming_the_key(change: dict[str, Any], named: str) -> None:
    pm = {**PM, "exit_rules": {**PM["exit_rules"], **change}}
    with pytest.raises(ValueError, match=rf"position_management\.{named}"):
        ex.ExitRules.from_config(pm)


def test_time_based_urgent_minutes_keeps_fractions() -> None:
    pm = {**PM, "exit_rules": {**PM["exit_rules"], "time_based_urgent_minutes": D("2.5")}}
    assert ex.ExitRules.from_config(pm).time_based_urgent_seconds == 150
    assert ex.ExitRules.from_config({}) == replace(RULES, stages=())  # no configuration: the spec's values
