"""Each method is judged by its own limits, though the trading loop rebuilds its unit objects every decision
interval.

`RiskManager.caps` and `min_edge_for` key their caches on `(id(strategy), id(method), ...)`.
`EngineRisk.load_units` (called by `Engine._sync_entry_risk` once per decision interval) builds fresh
`_Planned` strategy and `MethodRuntime` objects from the database rows each time, and CPython hands freed
objects' addresses to later ones. A cached entry serves only the very objects it was computed for, so a
method's own `max_position_size_dollars` ("A method can only tighten a global limit", docs/trading.md) is
never replaced by another method's looser cap.

The test reloads two methods the way `load_units` does (rows in either order) and asks the gate for each
method's position cap after every reload: always the method's own cap.
"""

from __future__ import annotations

import gc
from decimal import Decimal as D

from precog.config.loader import load_config
from precog.engine.entries import PlannedStrategy
from precog.trading.method_config import MethodRuntime
from precog.trading.risk import RiskManager
from precog.trading.settings import TradingSettings
from precog.trading.strategies import StrategyRef, load_strategy_definitions

CAPS = {1: D("100"), 2: D("750")}  # method 1 allows $100 a position, method 2 $750 (global $500)


def _load_units(config: dict[str, object], order: list[int]) -> dict[int, tuple[object, MethodRuntime]]:
    """What EngineRisk.load_units builds per row: MethodRuntime.from_configs + PlannedStrategy.build."""
    units: dict[int, tuple[object, MethodRuntime]] = {}
    for mid in order:
        method = MethodRuntime.from_configs(
            method_id=mid, name=f"m{mid}", version="v1.0", status="active",
            risk_config={"kelly_fraction": "0.25", "max_position_size_dollars": str(CAPS[mid])},
            sport_config={"nfl": {"enabled": True}})
        strategy = PlannedStrategy.build(StrategyRef(10 + mid, "pre_game_entry", "v1.0", "active"), dict(config))
        units[mid] = (strategy, method)
    return units


def test_each_reloaded_method_is_capped_by_its_own_max_position_size_dollars() -> None:
    cfg = load_config(use_env=False)
    settings = TradingSettings.from_config(cfg)
    config = {d.name: d.config for d in load_strategy_definitions(cfg)}["pre_game_entry"]
    risk = RiskManager(settings)
    risk.balance = D("100000")  # 5% of balance = $5,000: not the binding cap
    wrong: list[tuple[int, int, D, D]] = []
    units: dict[int, tuple[object, MethodRuntime]] = {}
    for reload in range(300):  # 300 decision intervals = 75 minutes of the loop at 15 s
        units = _load_units(config, [1, 2] if reload % 2 == 0 else [2, 1])
        if reload % 3 == 0:
            gc.collect()
        for mid, (strategy, method) in units.items():
            expected = min(CAPS[mid], settings.max_position_dollars)
            got = risk.position_cap(strategy, method, "nfl")  # type: ignore[arg-type]
            if got != expected:
                wrong.append((reload, mid, expected, got))
    assert not wrong, (f"each method gets its own cap; {len(wrong)} of 600 look-ups got another method's; "
                       f"first (reload, method, expected, got): {wrong[:3]}")
