"""The pure exit logic: trailing stop arithmetic, the 10 conditions, the resolver, stage sizes, walk prices."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from precog.config.loader import load_config
from precog.trading import exits as ex
from precog.trading import trailing

D = Decimal
RULES = ex.ExitRules.from_config(load_config(use_env=False).section("position_management"))
CFG = trailing.TrailingConfig()


def test_trailing_stop_activates_tightens_and_triggers() -> None:
    entry = D("0.60")
    st0, changed, hit = trailing.update(None, D("0.65"), entry, CFG, "t0")
    assert not st0["active"] and not changed and not hit  # +8.3% < 10% activation
    st1, changed, hit = trailing.update(st0, D("0.66"), entry, CFG, "t1")  # +10%: activates at 5% distance
    assert st1["active"] and changed and not hit
    assert D(st1["current_stop_price"]) == D("0.6270") and D(st1["current_distance"]) == D("0.05")
    st2, _, _ = trailing.update(st1, D("0.80"), entry, CFG, "t2")  # +33%: distance at the 2% floor
    assert D(st2["current_distance"]) == D("0.02") and D(st2["current_stop_price"]) == D("0.7840")
    assert st2["peak_price"] == "0.80" and st2["config_snapshot"]["floor_distance"] == "0.02"
    st3, changed, hit = trailing.update(st2, D("0.79"), entry, CFG, "t3")
    assert st3 == st2 and not changed and not hit  # lower price: stop unchanged
    _, _, hit = trailing.update(st3, D("0.784"), entry, CFG, "t4")
    assert hit


@given(st.lists(st.integers(min_value=1, max_value=99), min_size=1, max_size=40))
def test_trailing_stop_never_moves_down(prices: list[int]) -> None:
    state = None
    stops: list[Decimal] = []
    for p in prices:
        state, _, _ = trailing.update(state, D(p) / 100, D("0.40"), CFG, "t")
        if state.get("active"):
            stops.append(D(state["current_stop_price"]))
    assert stops == sorted(stops)


def _situation(**kw: object) -> ex.ExitSituation:
    base = dict(quantity=100, initial_quantity=100, entry_price=D("0.60"), bid=D("0.60"), ask=D("0.61"),
                bid_size=500)
    base.update(kw)
    return ex.ExitSituation(**base)  # type: ignore[arg-type]


def test_each_condition_and_its_priority() -> None:
    cases = {
        "stop_loss": _situation(bid=D("0.50"), ask=D("0.51")),
        "circuit_breaker": _situation(breaker_active=True),
        "trailing_stop": _situation(trailing_triggered=True),
        "time_based_urgent": _situation(seconds_to_close=120.0),
        "liquidity_dried_up": _situation(bid=D("0.58"), ask=D("0.62")),
        "partial_exit_target": _situation(bid=D("0.70"), ask=D("0.71")),
        "early_exit": _situation(recomputed_edge=D("0.01")),
        "edge_disappeared": _situation(recomputed_edge=D("-0.01")),
        "rebalance": _situation(bid=D("0.62"), ask=D("0.63"), better_opportunity=True),
    }
    for name, s in cases.items():
        found = {t.condition: t for t in ex.evaluate(s, RULES)}
        assert name in found, name
        assert found[name].priority == ex.PRIORITY_OF[name]
    no_partial = ex.ExitRules(**{**RULES.__dict__, "partial_enabled": False})
    assert [t.condition for t in ex.evaluate(_situation(bid=D("0.73"), ask=D("0.74")), no_partial)] == ["profit_target"]
    # never sell a loser to rebalance
    assert not ex.evaluate(_situation(bid=D("0.58"), ask=D("0.59"), better_opportunity=True), RULES)


def test_resolver_takes_the_highest_priority_and_keeps_the_rest() -> None:
    s = _situation(bid=D("0.50"), ask=D("0.56"), trailing_triggered=True, recomputed_edge=D("-0.2"))
    decision = ex.resolve(ex.evaluate(s, RULES))
    assert decision is not None and decision.trigger.condition == "stop_loss"
    assert [t.condition for t in decision.conflicting] == ["trailing_stop", "liquidity_dried_up", "edge_disappeared"]
    assert ex.resolve([]) is None


def test_partial_stages_are_shares_of_the_original_quantity() -> None:
    s1 = _situation(bid=D("0.70"), ask=D("0.71"))
    (t1,) = [t for t in ex.evaluate(s1, RULES) if t.condition == "partial_exit_target"]
    assert (t1.stage, t1.quantity) == ("first_target", 50)
    s2 = _situation(quantity=50, bid=D("0.76"), ask=D("0.77"), executed_stages=frozenset({"first_target"}))
    (t2,) = [t for t in ex.evaluate(s2, RULES) if t.condition == "partial_exit_target"]
    assert (t2.stage, t2.quantity) == ("second_target", 25)
    s3 = _situation(quantity=25, bid=D("0.90"), ask=D("0.91"),
                    executed_stages=frozenset({"first_target", "second_target"}))
    assert not [t for t in ex.evaluate(s3, RULES) if t.condition == "partial_exit_target"]


def test_exit_prices_and_walks() -> None:
    assert ex.start_price("aggressive", D("0.50"), D("0.52")) == D("0.49")
    assert ex.start_price("fair", D("0.50"), D("0.53")) == D("0.52")
    assert ex.start_price("conservative", D("0.50"), D("0.52")) == D("0.52")
    assert ex.walk_step("walk_then_market", 0) == D("0.015") and ex.walk_step("walk_slowly", 2) == D("0.016")
    # walking moves a sell down, never below bid - spread
    assert ex.walked_price(D("0.52"), "walk_price", 0, D("0.50"), D("0.52")) == D("0.51")
    assert ex.walked_price(D("0.49"), "walk_price", 4, D("0.50"), D("0.52")) == D("0.48")
    assert ex.walked_price(D("0.02"), "walk_price", 4, None, None) == D("0.01")
