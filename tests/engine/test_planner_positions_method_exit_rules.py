"""On the decision-layer path (`precog run --venue kalshi`) a method's own position_mgmt_config manages its
positions.

Spec §8.1: a method is an immutable bundle {strategy, model, position_mgmt_config, ...} whose position_mgmt
has stop_loss / trailing_stop / profit_targets / partial_exits. docs/operations.md (Exits): "A method's
position_mgmt_config (stop loss, profit targets, trailing stop, partial exits, liquidity, early exit)
overrides the global rules for its positions."

`cli/run.py` builds the Kalshi engine with `methods=[]` and a DecisionPlanner, so the engine reads the exit
rules of a position's method from the method's (immutable) row. A `conservative` method (stop loss high -0.10)
closes a -11.5 % loss at its own stop (the global high-confidence stop, -0.15, would let it ride).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal


async def test_decision_layer_position_uses_its_methods_stop_loss(db_url: str) -> None:
    from engine.conftest import planner_engine
    from trading.trading_dbkit import KC, create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")  # the fixed model says P(KC) 0.75, confidence high
    method = create_testing_method(world.conn, template="conservative")
    assert method.position_mgmt["stop_loss"]["high_confidence"] == "-0.10"
    ex, mm = world_exchange()
    now = [datetime.now(UTC)]
    # exactly how cli/run.py builds the Kalshi engine: methods=[], entries from the decision planner
    engine = planner_engine(db_url, ex, lambda: now[0])
    conn = engine.conn
    try:
        await engine.start()
        await engine.step()
        kc = next(p for p in engine.portfolio.open_positions() if p.market_id == KC)
        assert kc.method_id == method.method_id and kc.side == "yes" and kc.entry_price == Decimal("0.52")
        assert kc.metadata.get("confidence") == "high"

        # the YES bid falls to 0.46 (book stays 1 cent wide): -11.5 % at the exit price
        ex.cancel_order("mm", mm[KC, "yes"])
        ex.cancel_order("mm", mm[KC, "no"])
        ex.place_order("mm", KC, "yes", "buy", 5000, Decimal("0.46"))
        ex.place_order("mm", KC, "no", "buy", 5000, Decimal("0.53"))
        for _ in range(8):  # 40 s: well past the 5 s urgent / 30 s normal check interval
            now[0] += timedelta(seconds=5)
            await engine.step()

        rules, trailing = engine.monitor.rules_of(kc)
        exits = conn.execute("SELECT exit_condition FROM position_exits WHERE position_id = %s",
                             (kc.position_id,)).fetchall()
        # the method's stop (-0.10) and trailing distance (0.03) manage its position
        assert (rules.stop_loss["high"], trailing.initial_distance) == (Decimal("-0.10"), Decimal("0.03")), \
            f"position of method {method.ref} follows its own rules, not {rules.stop_loss}, {trailing}"
        assert kc.unrealized_pnl_pct is not None and kc.unrealized_pnl_pct < Decimal("-0.10")
        assert ("stop_loss",) in exits, f"no stop_loss exit at {kc.unrealized_pnl_pct}; position {kc.status}"
    finally:
        conn.close()
        world.conn.close()
