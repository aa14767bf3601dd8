"""Trailing stop (spec §5.7): activates at a profit threshold, follows new highs, never moves down.

distance = max(initial - rate x floor((gain - activation) / 0.05), floor); stop = peak x (1 - distance).
State is the JSON stored in positions.trailing_stop_state (Decimals as strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from precog.domain.money import ZERO, q4, to_decimal

STEP = Decimal("0.05")


@dataclass(frozen=True)
class TrailingConfig:
    enabled: bool = True
    activation_threshold: Decimal = Decimal("0.10")
    initial_distance: Decimal = Decimal("0.05")
    tightening_rate: Decimal = Decimal("0.01")
    floor_distance: Decimal = Decimal("0.02")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> TrailingConfig:
        return cls(enabled=bool(data.get("enabled", True)),
                   activation_threshold=to_decimal(data.get("activation_threshold", "0.10"),
                                                   field="trailing_stop.activation_threshold"),
                   initial_distance=to_decimal(data.get("initial_distance", "0.05"),
                                               field="trailing_stop.initial_distance"),
                   tightening_rate=to_decimal(data.get("tightening_rate", "0.01"),
                                              field="trailing_stop.tightening_rate"),
                   floor_distance=to_decimal(data.get("floor_distance", "0.02"),
                                             field="trailing_stop.floor_distance"))

    def snapshot(self) -> dict[str, str]:
        return {"activation_threshold": str(self.activation_threshold),
                "initial_distance": str(self.initial_distance),
                "tightening_rate": str(self.tightening_rate), "floor_distance": str(self.floor_distance)}


def initial_state(entry_price: Decimal, config: TrailingConfig) -> dict[str, Any]:
    return {"active": False, "entry_price": str(entry_price), "config_snapshot": config.snapshot()}


def distance_for(gain: Decimal, config: TrailingConfig) -> Decimal:
    steps = ((gain - config.activation_threshold) / STEP).to_integral_value(rounding=ROUND_FLOOR)
    steps = max(steps, ZERO)
    return max(config.initial_distance - config.tightening_rate * steps, config.floor_distance)


def update(state: dict[str, Any] | None, price: Decimal, entry_price: Decimal, config: TrailingConfig,
           now_iso: str) -> tuple[dict[str, Any], bool, bool]:
    """Apply one price observation. Returns (new_state, changed, triggered).

    `price` is the exit price of the position's side (its bid). Triggered when active and price <= stop."""
    st = dict(state) if state else initial_state(entry_price, config)
    if not config.enabled or entry_price <= 0:
        return st, False, False
    gain = (price - entry_price) / entry_price
    changed = False
    if not st.get("active"):
        if gain >= config.activation_threshold:
            dist = distance_for(gain, config)
            st.update(active=True, activated_at=now_iso, activation_price=str(price), peak_price=str(price),
                      peak_timestamp=now_iso, current_distance=str(dist),
                      current_stop_price=str(q4(price * (1 - dist))), total_gain=str(q4(gain)))
            return st, True, False
        return st, False, False
    peak = Decimal(st["peak_price"])
    stop = Decimal(st["current_stop_price"])
    if price > peak:
        dist = distance_for(gain, config)
        new_stop = q4(price * (1 - dist))
        if new_stop < stop:  # never move the stop down
            new_stop = stop
        st.update(peak_price=str(price), peak_timestamp=now_iso, current_distance=str(dist),
                  current_stop_price=str(new_stop), total_gain=str(q4(gain)))
        changed = True
        stop = new_stop
    return st, changed, price <= stop
