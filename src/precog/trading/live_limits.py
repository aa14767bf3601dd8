"""Production live caps (spec 4.2, env.template's production values: position $100, total exposure $1,000,
daily loss $50): live trading on Kalshi production starts small, and an operator raises the caps deliberately
in trading.yaml `live_prod_limits`. Applied by `precog run --live` when the orders go to production; each
is the stricter of the cap and the regular limit, so a tighter regular limit stays.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from precog.config.loader import Config

# live_prod_limits key -> the regular limits it caps (file, dotted key)
CAPS: dict[str, tuple[tuple[str, str], ...]] = {
    "max_position_dollars": (("trading", "position_sizing.kelly.max_position_dollars"),),
    "max_total_exposure_dollars": (("trading", "account.max_total_exposure_dollars"),),
    "daily_loss_limit_dollars": (("trading", "account.daily_loss_limit_dollars"),
                                 ("system", "circuit_breakers.loss_limit.daily_loss_usd")),
}


def capped_for_live_prod(cfg: Config) -> tuple[Config, dict[str, Decimal]]:
    """The configuration with every regular limit at most its live_prod_limits cap, and the limits in force."""
    data = copy.deepcopy(cfg.data)
    caps = cfg.get("trading.live_prod_limits")
    in_force: dict[str, Decimal] = {}
    for name, targets in CAPS.items():
        cap = Decimal(caps[name])
        for file, dotted in targets:
            node: dict[str, Any] = data[file]
            *path, leaf = dotted.split(".")
            for part in path:
                node = node[part]
            node[leaf] = min(Decimal(node[leaf]), cap)
        file, dotted = targets[0]
        in_force[name] = Decimal(Config(data, {}).get(f"{file}.{dotted}"))
    # a strategy's own position cap (settlement arbitrage: $1,000) replaces the global one: cap it too
    kelly = data["trading"]["position_sizing"]["kelly"]
    absolute = kelly.get("absolute_max_position_dollars")
    kelly["absolute_max_position_dollars"] = in_force["max_position_dollars"] if absolute is None \
        else min(Decimal(absolute), in_force["max_position_dollars"])
    return Config(data, dict(cfg.sources)), in_force
