"""trading.yaml `execution.default_order_type` is the order type of an entry whose method's execution_config
names none (spec 4.3, 5.10); a method that names one keeps it, and an entry the edge makes market-style
(trading.edges.market_order_edge) stays market whatever the default. A market entry is immediate-or-cancel at
its approved price.

The audit found the key accepted and read by nothing: only a method's own execution_config was read (and by the
decision layer only), so `default_order_type: market` had no effect.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)
from precog.engine.entries import MethodSpec
from precog.ingest.scd2 import jsonb


def _method(rig: Any, name: str, execution: dict[str, Any]) -> MethodSpec:
    """A live method like the demo's, with its own execution_config."""
    live = next(m for m in rig.methods if m.phase == "live")
    row = rig.conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config, "
        "execution_config, sport_config, config_hash, status) VALUES (%s, 'v1.0', %s, %s, '{}', %s, %s, %s, %s, "
        "'active') RETURNING method_id",
        (name, live.strategy_id, live.model_id, jsonb({"kelly_fraction": "0.25"}), jsonb(execution),
         jsonb({"nfl": {"enabled": True}}), f"test-{name}")).fetchone()
    return MethodSpec(method_id=row[0], strategy_id=live.strategy_id, model_id=live.model_id, name=name,
                      model_key=live.model_key, phase="live", min_edge=Decimal("0.05"), kelly_fraction=Decimal("0.25"))


async def _entry_order(rig: Any, method: MethodSpec, p_yes: str = "0.62") -> tuple[str, str, Decimal]:
    rig.methods = [method]
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal(p_yes)
    engine = rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.rows("SELECT 1 FROM orders WHERE purpose = 'entry'"))
    ((order_type, tif, price),) = rig.rows("SELECT order_type, time_in_force, limit_price FROM orders "
                                          "WHERE purpose = 'entry'")
    return order_type, tif, price


async def test_a_method_naming_no_order_type_takes_the_configured_default(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"trading.execution.default_order_type": "market"}))
    order = await _entry_order(rig, _method(rig, "silent_on_order_type", {}))
    assert order == ("market", "immediate_or_cancel", Decimal("0.50"))  # at the approved ask, never above it
    assert rig.open_positions()


async def test_a_method_naming_its_order_type_keeps_it(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig(rig_config(**{"trading.execution.default_order_type": "market"}))
    order = await _entry_order(rig, _method(rig, "says_limit", {"default_order_type": "limit"}))
    assert order[:2] == ("limit", "good_till_canceled")


async def test_the_packaged_default_is_limit(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    order = await _entry_order(rig, _method(rig, "silent_default", {}))
    assert order[:2] == ("limit", "good_till_canceled")


async def test_a_large_edge_is_market_style_even_with_a_limit_default(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    order = await _entry_order(rig, _method(rig, "big_edge", {"default_order_type": "limit"}), p_yes="0.70")
    assert order[:2] == ("market", "immediate_or_cancel")
