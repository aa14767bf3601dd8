"""Scripted market activity for the local exchange (`precog exchange serve --scenario NAME`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.scenarios.market_maker import MarketMakerScenario
from precog.venues.exchange.scenarios.nfl import NFLScenario


class Scenario(Protocol):
    name: str

    def step(self, now_ms: int) -> None:
        """Advance to `now_ms` (exchange clock): move fair values, re-quote, trade, settle what ended."""
        ...


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "market_maker": MarketMakerScenario,
    "nfl": NFLScenario,
}


def build_scenario(name: str, exchange: Exchange, **options: Any) -> Scenario:
    factory = SCENARIOS.get(name)
    if factory is None:
        raise ValueError(f"unknown scenario {name!r}; choose one of: {', '.join(sorted(SCENARIOS))}")
    return factory(exchange, **options)


__all__ = ["SCENARIOS", "Scenario", "build_scenario", "MarketMakerScenario", "NFLScenario"]
