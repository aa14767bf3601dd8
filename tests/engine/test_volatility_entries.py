"""The trading loop's own planner (precog demo, precog run --venue local) sizes entries 30% smaller when the
market's mid has recently moved >= 2x its normal volatility (spec 5.3), from the quotes the loop itself saw."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.conftest import CASH, rig_config
from precog.engine import entries

D = Decimal
SMALL_WINDOWS = {  # 2 min recent vs the 20 min before, so the test needs only ~25 simulated minutes
    "position_management.sizing_adjustments.volatility_recent_minutes": 2,
    "position_management.sizing_adjustments.volatility_baseline_minutes": 20,
    "position_management.sizing_adjustments.volatility_min_recent_moves": 3,
    "position_management.sizing_adjustments.volatility_min_baseline_moves": 5,
}


@pytest.mark.parametrize(("history", "reduced"), [
    ("volatile", True),  # 1-cent swings for 22 min, then 3-cent swings for the last 2 min
    ("calm", False),  # 1-cent swings throughout: ratio ~1
    ("none", False),  # no history: the ratio is unknown, so no reduction
])
async def test_entry_size_follows_the_volatility_the_loop_observed(make_rig: Any, history: str, reduced: bool) -> None:
    rig = make_rig(rig_config(**SMALL_WINDOWS))
    engine = rig.make_engine()
    await engine.start()
    if history != "none":
        for i in range(66):  # the baseline: the mid alternates 0.495 / 0.505 every 20 s
            rig.quote(*(("0.49", "0.50") if i % 2 else ("0.50", "0.51")))
            await rig.step(20)
        swing = ("0.46", "0.47") if history == "volatile" else ("0.50", "0.51")
        for i in range(5):  # the last 100 s
            rig.quote(*(("0.49", "0.50") if i % 2 else swing))
            await rig.step(20)
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = D("0.62")
    await rig.run_until(lambda: rig.open_positions())

    rows = rig.rows("SELECT quantity, metadata FROM orders WHERE purpose = 'entry' AND market_id = %s", rig.ticker)
    assert len(rows) == 1
    quantity, meta = rows[0]
    edge = entries.best_edge(D("0.62"), engine.snapshots[rig.ticker], engine.fees)
    assert edge is not None and edge.side == "yes" and edge.price == D("0.50")
    method = next(m for m in engine.methods if m.phase == "live")
    full = entries.kelly_contracts(edge, CASH, method.kelly_fraction, engine.limits)
    cut = entries.kelly_contracts(edge, CASH, method.kelly_fraction, engine.limits, D("0.70"))
    assert 0 < cut < full
    cap = min(CASH * engine.limits.max_position_pct, engine.limits.max_position_dollars)
    if reduced:
        assert meta["size_adjustments"] == ["high_volatility"]
        assert D(meta["volatility_ratio"]) >= D("2")
        assert quantity == cut
    else:
        assert meta["size_adjustments"] == []
        assert meta["volatility_ratio"] is None if history == "none" else D(meta["volatility_ratio"]) < D("2")
        assert quantity == full
    assert quantity * (edge.price + edge.fee_per_contract) <= cap
    assert rig.open_positions()[0].quantity == quantity


async def test_the_decision_planner_path_records_the_reduction_on_the_order(db_url: str) -> None:
    """`precog run --venue kalshi`'s entries (DecisionPlanner over the database): the ratio comes from the
    markets history, and the order carries the reduction the decision layer applied."""
    from datetime import UTC, datetime

    import psycopg

    from engine.conftest import FixedProbabilities
    from precog.engine.core import Engine
    from precog.engine.decision_planner import DecisionPlanner
    from precog.engine.local_venue import LocalVenue
    from precog.venues.exchange.engine import Exchange
    from trading.trading_dbkit import EVENT, KC, create_testing_method, seed_world
    from trading.volatility_kit import swings, write_history

    world = seed_world(db_url, probability="0.62")  # Kelly-bound (under every cap) on KC YES at 0.52
    create_testing_method(world.conn)
    write_history(world.conn, KC, swings(datetime.now(UTC), baseline_cents=1, recent_cents=3))
    ex = Exchange()
    ex.create_series("KXNFLGAME", "NFL game")
    ex.create_event(EVENT, "KXNFLGAME", "BUF at KC")
    ex.create_market(KC, EVENT, title="Kansas City wins")
    ex.create_account("us", CASH)
    ex.create_account("mm", D("1000000"))
    ex.place_order("mm", KC, "yes", "buy", 5000, D("0.50"))
    ex.place_order("mm", KC, "no", "buy", 5000, D("0.48"))  # YES ask 0.52, as stored
    conn = psycopg.connect(db_url, autocommit=True)
    try:
        cfg = rig_config()
        planner = DecisionPlanner(conn, cfg, lambda: psycopg.connect(db_url, autocommit=True), mode="paper")
        engine = Engine(conn, LocalVenue(ex, "us"), config=cfg, mode="paper", kind="test", methods=[],
                        probabilities=FixedProbabilities(), markets=[], clock=lambda: datetime.now(UTC),
                        initial_cash=CASH, planner=planner)
        await engine.start()
        await engine.step()
        rows = conn.execute("SELECT quantity, metadata FROM orders WHERE purpose = 'entry' AND market_id = %s",
                            (KC,)).fetchall()
        assert len(rows) == 1
        quantity, meta = rows[0]
        assert meta["size_adjustments"][-1] == "high_volatility" and D(meta["volatility_ratio"]) >= D("2.5")
        assert quantity > 0 and engine.portfolio.open_positions()[0].quantity == quantity
    finally:
        conn.close()
        world.conn.close()
