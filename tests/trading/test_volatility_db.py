"""The volatility ratio from the markets SCD2 history (`precog edges scan`, the decision planner): one set-based
query, equal to the trading loop's in-memory estimator on the same series, and the -30% size it causes."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from trading_dbkit import BUF, EVENT, KC, World, create_testing_method, seed_world
from volatility_kit import swings, write_history

from precog.config.loader import load_config
from precog.trading.scan import run_scan
from precog.trading.settings import TradingSettings
from precog.trading.snapshot import load_markets
from precog.trading.volatility import (
    HIGH_VOLATILITY,
    VolatilityRule,
    VolatilityTracker,
    load_window_stats,
    mid_of,
    volatility_ratio,
    window_stats,
)

D = Decimal
RULE = VolatilityRule()  # the packaged defaults: 15 min recent, 120 min baseline, x2 -> -30%


def test_a_market_swinging_twice_its_normal_gets_30_pct_less_and_the_reason_is_recorded(db_url: str,
                                                                                      precog_cli: Any) -> None:
    """P(KC) 0.62 keeps the Kelly size under every cap, so the reduction shows in whole contracts."""
    world = seed_world(db_url, probability="0.62")
    try:
        method = create_testing_method(world.conn)
        cfg = load_config(use_env=False)
        now = datetime.now(UTC)

        write_history(world.conn, KC, swings(now, baseline_cents=1, recent_cents=1))
        calm = run_scan(world.conn, cfg, world.connect())
        write_history(world.conn, KC, swings(now, baseline_cents=1, recent_cents=3))
        wild = run_scan(world.conn, cfg, world.connect())

        ratio_calm = next(m.volatility_ratio for m in calm.snapshot.markets if m.ticker == KC)
        ratio_wild = next(m.volatility_ratio for m in wild.snapshot.markets if m.ticker == KC)
        assert ratio_calm is not None and D("0.8") <= ratio_calm <= D("1.2")
        assert ratio_wild is not None and ratio_wild >= D("2.5")
        # BUF has a single stored version: too few moves to know -> unknown, no reduction
        assert next(m.volatility_ratio for m in wild.snapshot.markets if m.ticker == BUF) is None

        before, after = calm.result.sized[KC], wild.result.sized[KC]
        assert HIGH_VOLATILITY not in before.adjustments and HIGH_VOLATILITY in after.adjustments
        assert before.limit == "kelly" and after.limit == "kelly"
        assert after.target == before.target * D("0.70")
        assert 0 < after.count < before.count and after.stake <= before.stake * D("0.70")
        intent = next(a.intent for a in wild.result.approved if a.intent.ticker == KC)
        assert intent.quantity == after.count and HIGH_VOLATILITY in intent.size_adjustments
        assert intent.method is not None and intent.method.method_id == method.method_id

        # what a user sees: `precog edges scan --json` names the reduction and the ratio
        out = precog_cli("edges", "scan", "--json")
        assert out.returncode == 0, out.stderr
        kc = next(i for i in json.loads(out.stdout)["intents"] if i["market"] == KC)
        assert HIGH_VOLATILITY in kc["size_adjustments"] and D(kc["volatility_ratio"]) >= D("2.5")
        assert kc["quantity"] == after.count
    finally:
        world.conn.close()


def test_too_few_moves_in_the_history_means_no_reduction(world: World) -> None:
    now = datetime.now(UTC)
    # swinging hard recently, but only 5 moves in the 2 h before: no normal to compare with
    history = [(now - timedelta(minutes=110 - 10 * i), "0.50" if i % 2 else "0.51", "0.52" if i % 2 else "0.53")
               for i in range(6)]
    history += [(now - timedelta(minutes=10 - i), "0.40" if i % 2 else "0.55", "0.42" if i % 2 else "0.57")
                for i in range(9)]
    write_history(world.conn, KC, history)
    markets, _, _ = load_markets(world.conn, TradingSettings.from_config(load_config(use_env=False)))
    kc = next(m for m in markets if m.ticker == KC)
    stats = load_window_stats(world.conn, [KC], now.timestamp(), RULE)[KC]
    assert stats.baseline_moves == 5 and stats.recent_moves >= 3
    assert kc.volatility_ratio is None


_counter = itertools.count()
# (seconds before now, quote: None = no quote, 0 = bids gone, else the bid in cents, a 1-cent spread); times
# cluster around the window edges (900 s and 8,100 s ago) and prices repeat, so anchors, unchanged
# versions and broken chains all occur
_when = st.one_of(st.integers(1, 9_000), st.integers(850, 950), st.integers(8_000, 9_000))
_quote = st.one_of(st.none(), st.just(0), st.sampled_from([40, 41, 45, 60]), st.integers(1, 98))
_versions = st.lists(st.tuples(_when, _quote), min_size=1, max_size=60)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_versions)
@example([(8_600, 40), (7_500, 45), (500, 41), (400, 60)])  # the version current at the baseline start counts
@example([(8_600, 40), (8_500, None), (7_500, 45), (905, 45), (895, 41)])
def test_the_sql_estimate_equals_the_in_memory_estimator_on_the_same_series(world: World, versions) -> None:
    ticker = f"{EVENT}-VOL{next(_counter)}"
    now = time.time()
    rows: list[tuple[datetime, str | None, str | None]] = []
    for seconds_ago, cents in sorted(versions, key=lambda v: -v[0]):
        at = datetime.fromtimestamp(now - seconds_ago - 0.25, UTC)  # never on a window edge
        if cents is None:
            rows.append((at, None, None))
        else:
            bid = D(cents) / 100
            rows.append((at, str(bid), str(bid + D("0.01"))))
    write_history(world.conn, ticker, rows)
    tracker = VolatilityTracker(RULE)
    series = []
    for at, bid, ask in rows:
        b, a = (None if bid is None else D(bid)), (None if ask is None else D(ask))
        tracker.observe(ticker, at.timestamp(), b, a)
        series.append((at.timestamp(), mid_of(b, a)))
    from_db = load_window_stats(world.conn, [ticker], now, RULE).get(ticker)
    in_memory = tracker.stats(ticker, now)
    assert from_db == in_memory == window_stats(series, now, RULE)
    assert volatility_ratio(from_db, RULE) == tracker.ratio(ticker, now)
