"""A method version's configs (spec 8.1) parsed into the values decisions use.

Method configs are JSON with Decimals as strings; `MethodRuntime.from_configs` reads them once so the scan
and the risk checks never parse JSON. A sport missing from `sport_config` (or `enabled: false`) is not
traded by the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from precog.domain.money import to_decimal


def _opt(config: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = config.get(key)
    return None if value is None else to_decimal(value, field=f"{where}.{key}")


def _opt_int(config: Mapping[str, Any], key: str, where: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ValueError(f"{where}.{key} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{where}.{key} must be >= 1, got {number}")
    return number


@dataclass(frozen=True, slots=True)
class SportRule:
    enabled: bool
    kelly_fraction_override: Decimal | None = None
    min_volume: int | None = None
    max_spread: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MethodRuntime:
    method_id: int | None
    name: str
    version: str
    status: str
    kelly_fraction: Decimal | None = None
    max_position_dollars: Decimal | None = None
    max_total_exposure: Decimal | None = None
    max_correlated_exposure: Decimal | None = None
    min_edge: Decimal | None = None
    # execution_config max_slippage_percent: the trading loop's planner caps the method's market-style entries
    # with it (engine.entries.MethodSpec.max_slippage_pct, when tighter than the global)
    max_slippage_pct: Decimal | None = None
    order_type: str = "limit"
    capital_share: Decimal | None = None
    sports: dict[str, SportRule] = field(default_factory=dict)
    # the method's own loss limits (risk_config daily_loss_limit_dollars and circuit_breakers), enforced on its
    # entries by the risk manager from its closed positions (precog.trading.method_risk)
    daily_loss_limit: Decimal | None = None
    consecutive_losses: int | None = None
    rapid_loss_dollars: Decimal | None = None
    rapid_loss_minutes: int | None = None

    @property
    def has_loss_limits(self) -> bool:
        return self.daily_loss_limit is not None or self.consecutive_losses is not None \
            or (self.rapid_loss_dollars is not None and self.rapid_loss_minutes is not None)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def sport_enabled(self, sport: str) -> bool:
        rule = self.sports.get(sport)
        return rule is not None and rule.enabled

    def kelly_for(self, sport: str) -> Decimal | None:
        rule = self.sports.get(sport)
        if rule is not None and rule.kelly_fraction_override is not None:
            return rule.kelly_fraction_override
        return self.kelly_fraction

    @classmethod
    def from_configs(cls, *, method_id: int | None, name: str, version: str, status: str,
                     risk_config: Mapping[str, Any], sport_config: Mapping[str, Any],
                     execution_config: Mapping[str, Any] | None = None,
                     capital_share: Decimal | None = None) -> MethodRuntime:
        where = f"method {name}@{version}"
        sports = {}
        for sport, rule in (sport_config or {}).items():
            rule = rule or {}
            sports[str(sport)] = SportRule(
                enabled=bool(rule.get("enabled", True)),
                kelly_fraction_override=_opt(rule, "kelly_fraction_override", f"{where} sport_config.{sport}"),
                min_volume=int(rule["min_volume"]) if rule.get("min_volume") is not None else None,
                max_spread=_opt(rule, "max_spread", f"{where} sport_config.{sport}"),
            )
        execution = execution_config or {}
        breakers = risk_config.get("circuit_breakers") or {}
        if not isinstance(breakers, Mapping):
            raise ValueError(f"{where} risk_config.circuit_breakers must be a mapping, got {breakers!r}")
        return cls(
            method_id=method_id, name=name, version=version, status=status,
            kelly_fraction=_opt(risk_config, "kelly_fraction", f"{where} risk_config"),
            max_position_dollars=_opt(risk_config, "max_position_size_dollars", f"{where} risk_config"),
            max_total_exposure=_opt(risk_config, "max_total_exposure_dollars", f"{where} risk_config"),
            max_correlated_exposure=_opt(risk_config, "max_correlated_exposure_dollars", f"{where} risk_config"),
            min_edge=_opt(risk_config, "min_edge_threshold", f"{where} risk_config"),
            max_slippage_pct=_opt(execution, "max_slippage_percent", f"{where} execution_config"),
            order_type=str(execution.get("default_order_type", "limit")),
            capital_share=capital_share,
            sports=sports,
            daily_loss_limit=_opt(risk_config, "daily_loss_limit_dollars", f"{where} risk_config"),
            consecutive_losses=_opt_int(breakers, "consecutive_losses", f"{where} risk_config.circuit_breakers"),
            rapid_loss_dollars=_opt(breakers, "rapid_loss_dollars", f"{where} risk_config.circuit_breakers"),
            rapid_loss_minutes=_opt_int(breakers, "rapid_loss_minutes", f"{where} risk_config.circuit_breakers"),
        )
