"""The volatility ratio (spec 5.3 "volatility >= 2x normal -> -30% size"): the statistic, the rolling
estimator of the trading loop, the size reduction in both planners, and its configuration."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.engine import entries
from precog.trading.settings import SizingAdjustments, TradingSettings
from precog.trading.sizing import size_adjustment, size_position
from precog.trading.volatility import (
    HIGH_VOLATILITY,
    VolatilityRule,
    VolatilityTracker,
    WindowStats,
    mid_of,
    volatility_ratio,
    window_stats,
)

D = Decimal
RULE = VolatilityRule()  # 15 min recent, 120 min baseline, >= 3 and >= 10 moves, x2 -> -30%
NOW = 1_800_000_000.0


def swinging_series(*, baseline_step: str, recent_step: str, every_s: int = 60,
                    now: float = NOW, rule: VolatilityRule = RULE) -> list[tuple[float, Decimal | None]]:
    """A mid that alternates around 0.50 by `baseline_step` in the baseline window, then by `recent_step`
    in the recent window, one observation every `every_s` seconds (quotes one cent wide)."""
    out: list[tuple[float, Decimal | None]] = []
    start = now - rule.recent_seconds - rule.baseline_seconds
    t, k = start - every_s, 0
    while t <= now:
        step = D(recent_step) if t > now - rule.recent_seconds else D(baseline_step)
        out.append((t, D("0.50") + (0 if k % 2 else step)))
        t += every_s
        k += 1
    return out


def test_mid_needs_a_two_sided_quote():
    assert mid_of(D("0.49"), D("0.52")) == D("0.505")
    assert mid_of(D("0"), D("0.10")) is None  # no bid
    assert mid_of(D("0.90"), D("1")) is None  # no offer
    assert mid_of(D("0.55"), D("0.50")) is None  # crossed
    assert mid_of(None, D("0.50")) is None


def test_recent_swings_twice_the_baseline_give_a_ratio_of_two_and_the_30_pct_reduction():
    series = swinging_series(baseline_step="0.01", recent_step="0.02")
    stats = window_stats(series, NOW, RULE)
    assert stats.recent_moves == 15 and stats.baseline_moves == 120
    assert stats.recent_sum_sq == 15 * D("0.0004") and stats.baseline_sum_sq == 120 * D("0.0001")
    ratio = volatility_ratio(stats, RULE)
    assert ratio == D("2.0000")
    assert RULE.size_factor(ratio) == (D("0.70"), (HIGH_VOLATILITY,))


def test_below_the_threshold_or_unknown_there_is_no_reduction():
    calm = volatility_ratio(window_stats(swinging_series(baseline_step="0.02", recent_step="0.02"), NOW, RULE), RULE)
    assert calm == D("1.0000")
    assert RULE.size_factor(calm) == (D("1"), ())
    assert RULE.size_factor(D("1.9999")) == (D("1"), ())
    assert RULE.size_factor(None) == (D("1"), ())


def test_too_few_moves_in_either_window_make_the_ratio_unknown():
    # a market that barely moved in its baseline: 9 moves < 10 -> no normal volatility to compare with
    few_baseline = [(NOW - 3600 - 60 * i, D("0.50") + D("0.01") * (i % 2)) for i in range(10)]
    few_baseline += [(NOW - 60 * i, D("0.40") + D("0.05") * (i % 2)) for i in range(10, 0, -1)]
    few_baseline.sort()
    stats = window_stats(few_baseline, NOW, RULE)
    assert stats.baseline_moves == 9 and stats.recent_moves >= 3
    assert volatility_ratio(stats, RULE) is None
    # only two moves recently (< 3), however large
    two_recent = [o for o in swinging_series(baseline_step="0.01", recent_step="0.00") if o[0] < NOW - 180]
    two_recent += [(NOW - 120, D("0.70")), (NOW - 60, D("0.30"))]
    two_recent.sort()
    stats = window_stats(two_recent, NOW, RULE)
    assert stats.recent_moves == 2
    assert volatility_ratio(stats, RULE) is None
    # no history at all
    assert volatility_ratio(WindowStats(), RULE) is None


def test_a_one_sided_quote_breaks_the_chain_instead_of_making_a_move():
    series = [(NOW - 300, D("0.50")), (NOW - 200, None), (NOW - 100, D("0.60"))]
    assert window_stats(series, NOW, RULE).recent_moves == 0
    tracker = VolatilityTracker(RULE)
    tracker.observe("T", NOW - 300, D("0.49"), D("0.51"))
    tracker.observe("T", NOW - 200, D("0"), D("0.51"))  # the bids vanished
    tracker.observe("T", NOW - 100, D("0.59"), D("0.61"))
    assert tracker.stats("T", NOW).recent_moves == 0


# every observation: (seconds after the window start, mid in cents, repeated how many times)
_observations = st.lists(st.tuples(st.integers(0, 9_000), st.one_of(st.none(), st.integers(1, 99)),
                                   st.integers(1, 3)), min_size=0, max_size=80)


@settings(max_examples=150, deadline=None)
@given(_observations)
def test_the_rolling_tracker_equals_the_statistic_of_the_full_series(obs):
    """Whatever the sampling (repeated snapshots of an unchanged quote, gaps, one-sided quotes), the tracker's
    pruned, de-duplicated memory gives exactly the statistic of everything it was fed."""
    start = NOW - RULE.recent_seconds - RULE.baseline_seconds - 600
    tracker = VolatilityTracker(RULE)
    full: list[tuple[float, Decimal | None]] = []
    for offset, cents, repeats in sorted(obs, key=lambda o: o[0]):
        ts = start + offset
        bid, ask = (None, None) if cents is None else (D(cents) / 100, D(cents) / 100)
        for _ in range(repeats):
            tracker.observe("T", ts, bid, ask)
            full.append((ts, mid_of(bid, ask)))
    now = max(NOW, full[-1][0]) if full else NOW  # the loop asks at (or after) its latest observation
    assert tracker.stats("T", now) == window_stats(full, now, RULE)
    assert tracker.ratio("T", now) == volatility_ratio(window_stats(full, now, RULE), RULE)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(1, 5), st.integers(30, 120))
def test_the_ratio_is_the_ratio_of_move_sizes_whatever_the_sampling(base_cents, factor, every_s):
    """Moves k times larger (at the same pace) -> ratio k; sampling the same path more often changes nothing."""
    series = swinging_series(baseline_step=str(D(base_cents) / 100 / 5), recent_step=str(D(base_cents * factor) / 500),
                             every_s=every_s)
    ratio = volatility_ratio(window_stats(series, NOW, RULE), RULE)
    # up to one move more or less per window than the pace says (the sampling grid vs the window edges)
    assert ratio is not None and abs(ratio / factor - 1) <= D(every_s) / 900 + D("0.001")
    doubled = sorted(series + [(t + 1, m) for t, m in series[:-1]])  # each quote seen again 1 s later
    assert window_stats(doubled, NOW, RULE) == window_stats(series, NOW, RULE)


# ---------------------------------------------------------------- the size reduction

@settings(max_examples=200, deadline=None)
@given(p=st.integers(30, 95), price=st.integers(5, 90), bankroll=st.integers(500, 100_000),
       ratio=st.one_of(st.none(), st.integers(0, 500)), cap=st.integers(20, 2000))
def test_decision_sizing_high_volatility_is_30_pct_smaller_never_above_a_cap(p, price, bankroll, ratio, cap):
    adj = SizingAdjustments()
    vol = None if ratio is None else D(ratio) / 100
    fees = FeeSchedule()
    price_d, p_d = D(price) / 100, D(p) / 100
    caps = [("max_position_dollars", D(cap))]
    base = size_position(p=p_d, price=price_d, fee_per_contract=fees.fee(1, price_d), slippage=D("0"), fees=fees,
                         bankroll=D(bankroll), fraction=D("0.25"), caps=caps, min_position=D("1"))
    factor, names = size_adjustment(adj, volume=1000, spread=D("0.01"), seconds_to_settlement=60.0,
                                    confidence=D("0.9"), ci_width=None, volatility_ratio=vol)
    sized = size_position(p=p_d, price=price_d, fee_per_contract=fees.fee(1, price_d), slippage=D("0"), fees=fees,
                          bankroll=D(bankroll), fraction=D("0.25"), caps=caps, min_position=D("1"),
                          adjustment=factor, adjustments=names)
    assert sized.stake <= D(cap)
    if vol is not None and vol >= D("2"):
        assert names == (HIGH_VOLATILITY,)
        assert sized.target == base.target * D("0.70")
        assert sized.count <= base.count
        if base.limit == "kelly" and base.count > 0:  # Kelly-bound: the whole-contract size follows the stake
            assert sized.count <= int(base.count * D("0.70")) + 1
    else:
        assert names == () and sized.count == base.count


def _market(bid: str, ask: str) -> Market:
    return Market(ticker="T", event_ticker="E", status=MarketStatus.OPEN, venue_status="active", yes_bid=D(bid),
                  yes_ask=D(ask), no_bid=1 - D(ask), no_ask=1 - D(bid), last_price=D(bid))


@settings(max_examples=200, deadline=None)
@given(p=st.integers(55, 90), ask=st.integers(30, 60), bankroll=st.integers(2_000, 200_000))
def test_engine_planner_high_volatility_is_30_pct_smaller_never_above_a_cap(p, ask, bankroll):
    m = _market(str(D(ask - 1) / 100), str(D(ask) / 100))
    method = entries.MethodSpec(1, 1, 1, "m", "k", "live", min_edge=D("0.01"), kelly_fraction=D("0.25"))
    limits = entries.RiskLimits(min_edge_global=D("0.01"), max_edge=D("0.99"), min_position_dollars=D("1"),
                                max_total_exposure=D("10000000"), max_exposure_per_game=D("10000000"),
                                min_balance_to_trade=D("0"))
    pv = entries.PortfolioView(balance=D(bankroll), bankroll=D(bankroll), open_positions=0, exposure=D(0),
                               markets_held=frozenset(), positions_by_game={}, exposure_by_game={})
    fees = FeeSchedule()
    base, _ = entries.plan_entry(D(p) / 100, m, method, pv, limits, fees, "E")
    factor, names = RULE.size_factor(D("2.5"))
    cut, _ = entries.plan_entry(D(p) / 100, m, method, pv, limits, fees, "E", size_factor=factor,
                                size_adjustments=names)
    if base is None:
        assert cut is None
        return
    unit = base.edge.price + base.edge.fee_per_contract
    cap = min(D(bankroll) * limits.max_position_pct, limits.max_position_dollars)
    assert base.adjustments == ()
    if cut is None:  # the reduced stake fell below the minimum position
        return
    assert cut.adjustments == (HIGH_VOLATILITY,)
    assert cut.quantity <= base.quantity and cut.quantity * unit <= cap
    c = base.edge.price + base.edge.fee_per_contract
    kelly_stake = D(bankroll) * (base.edge.p_true - c) / (1 - c) * D("0.25")
    expected = int(min(kelly_stake * D("0.70"), cap) / c)
    assert cut.quantity == expected


# ---------------------------------------------------------------- configuration

def test_the_windows_come_from_position_management_yaml(tmp_path: Path):
    (tmp_path / "position_management.yaml").write_text(
        "sizing_adjustments:\n  volatility_recent_minutes: 5\n  volatility_baseline_minutes: 60\n"
        "  volatility_min_recent_moves: 2\n  volatility_min_baseline_moves: 4\n  high_volatility_ratio: 1.5\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    rule = VolatilityRule.from_adjustments(TradingSettings.from_config(cfg).adjustments)
    assert rule == VolatilityRule(recent_seconds=300, baseline_seconds=3600, min_recent_moves=2,
                                  min_baseline_moves=4, threshold=D("1.5"), reduction=D("0.30"))
    assert VolatilityRule.from_mapping(cfg.get("position_management.sizing_adjustments")) == rule
    assert VolatilityRule.from_mapping(load_config(use_env=False, use_overrides=False)
                                       .get("position_management.sizing_adjustments")) == RULE


@pytest.mark.parametrize(("yaml", "expected"), [
    ("volatility_recent_minutes: 0", "sizing_adjustments.volatility_recent_minutes = 0 is invalid"),
    ("volatility_min_baseline_moves: 0", "(allowed: >= 1 and <= 100000)"),
    ("high_volatility_ratio: 0.8", "sizing_adjustments.high_volatility_ratio = 0.8 is invalid"),
    ("volatility_baseline_minutes: 10", "volatility_baseline_minutes (10) must be longer than "
                                        "volatility_recent_minutes (15)"),
])
def test_a_bad_volatility_setting_names_the_file_the_key_and_the_range(tmp_path: Path, yaml: str, expected: str):
    (tmp_path / "position_management.yaml").write_text(f"sizing_adjustments:\n  {yaml}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    assert str(tmp_path / "position_management.yaml") in str(err.value)
    assert expected in str(err.value)
