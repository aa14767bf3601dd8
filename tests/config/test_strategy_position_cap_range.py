"""A strategy's `max_position_dollars` is range-checked like the global position cap, which it replaces.

Spec 4.1: "Non-customizable safety constants: ... absolute caps max position $5,000 ...  Safe ranges: ... max
position $10-$5,000". The schema enforces that range on `trading.position_sizing.kelly.max_position_dollars`,
on a method's `risk.max_position_size_dollars` and on a strategy's `max_position_dollars` (`StrategyBlock`),
because `RiskManager.caps` takes the strategy's value *instead of* the global one. A trade_strategies.yaml
edit (or an override) of settlement_arbitrage.max_position_dollars to 50000 is refused, so one position never
grows past $5,000.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading.risk import RiskManager
from precog.trading.settings import TradingSettings
from precog.trading.strategies import StrategyRef, build_strategy, load_strategy_definitions

ABSOLUTE_CAP = D("5000")


def _user_config(tmp_path: Path, dollars: str) -> Path:
    d = tmp_path / "cfg"
    d.mkdir(parents=True)
    # `strategies` is an open mapping: a user file gives the whole block (a changed block needs a new version)
    (d / "trade_strategies.yaml").write_text(
        "strategies:\n"
        "  settlement_arbitrage:\n"
        "    version: v1.1\n"
        "    enabled: true\n"
        "    min_probability: 0.98\n"
        "    max_seconds_remaining: 120\n"
        "    min_edge: 0.02\n"
        "    kelly_fraction: 0.50\n"
        f"    max_position_dollars: {dollars}\n"
        "    shrinkage_factor: 0.00\n", encoding="utf-8")
    return d


def test_global_position_cap_above_5000_is_refused(tmp_path: Path) -> None:
    """Control: the same number under the global key is refused (the documented range)."""
    d = tmp_path / "g"
    d.mkdir()
    (d / "trading.yaml").write_text("position_sizing:\n  kelly:\n    max_position_dollars: 50000.00\n",
                                    encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(d, use_env=False)


def test_strategy_position_cap_above_the_5000_absolute_cap_is_refused(tmp_path: Path) -> None:
    cfg_dir = _user_config(tmp_path, "50000.00")
    # control: the same file with the default $1,000 loads
    ok = load_config(_user_config(tmp_path / "ok", "1000.00"), use_env=False)
    assert ok.get("trade_strategies.strategies.settlement_arbitrage.max_position_dollars") == D("1000.00")
    try:
        cfg = load_config(cfg_dir, use_env=False)
    except ConfigError:
        return  # refused like the global key
    # were it loaded, the risk gate would still have to keep one position within $5,000
    settings = TradingSettings.from_config(cfg)
    block = {d.name: d.config for d in load_strategy_definitions(cfg)}["settlement_arbitrage"]
    strategy = build_strategy(StrategyRef(1, "settlement_arbitrage", "v1.0", "active"), block)
    risk = RiskManager(settings)
    risk.balance = D("1000000")
    cap = risk.position_cap(strategy, None, "nfl")
    assert cap <= ABSOLUTE_CAP, (
        f"strategies.settlement_arbitrage.max_position_dollars 50000 is refused or held to the absolute cap "
        f"{ABSOLUTE_CAP} (spec 4.1); the position cap is {cap}")
