"""Who decides: the decision units (methods, or strategy x model pairs) read from the database.

Methods allowed to trade in the mode (paper: testing and active; live: active) are the units, each with its
strategy version, model version and A/B capital share. With no such method, every active entry strategy is
paired with every active model in paper mode (method_id stays empty on their edges), so `precog edges scan`
works before any method exists; live trading always needs an active method. Strategies are synced from
trade_strategies.yaml first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from precog.config.loader import Config
from precog.trading.decide import DecisionUnit
from precog.trading.forecasts import ForecastError, ModelRef, ProbabilityModel, load_trading_model
from precog.trading.methods import capital_split, list_methods
from precog.trading.settings import TradingSettings
from precog.trading.strategies import (
    ENTRY_STRATEGIES,
    StrategyRef,
    SyncReport,
    build_strategy,
    load_strategy_definitions,
    sync_strategies,
)

_ALLOWED = {"paper": ("testing", "active"), "live": ("active",)}


@dataclass
class UnitSet:
    units: list[DecisionUnit]
    notes: list[str] = field(default_factory=list)
    sync: SyncReport | None = None
    models: dict[int, ProbabilityModel] = field(default_factory=dict)


def _model(conn: Any, cache: dict[int, ProbabilityModel], model_id: int, name: str, version: str,
           status: str) -> ProbabilityModel:
    found = cache.get(model_id)
    if found is None:
        found = load_trading_model(conn, model_id=model_id, name=name, version=version, status=status)
        cache[model_id] = found
    return found


def load_units(conn: Any, cfg: Config, settings: TradingSettings, *, mode: str = "paper",
               sync: bool = True) -> UnitSet:
    out = UnitSet([])
    if sync:
        out.sync = sync_strategies(conn, load_strategy_definitions(cfg))
    statuses = _ALLOWED.get(mode, ("active",))
    methods = [m for m in list_methods(conn) if m.status in statuses]
    shares = capital_split(conn, existing_share=settings.ab_existing_share, new_share=settings.ab_new_share)
    strategy_rows = {r[0]: r for r in conn.execute(
        "SELECT strategy_id, strategy_name, strategy_version, status, config FROM strategies").fetchall()}
    model_rows = {r[0]: r for r in conn.execute(
        "SELECT model_id, model_name, model_version, status FROM probability_models").fetchall()}

    def strategy_for(strategy_id: int) -> Any:
        sid, name, version, status, config = strategy_rows[strategy_id]
        return build_strategy(StrategyRef(sid, name, version, status), config)

    # methods on a strategy this layer does not implement (e.g. the demo's engine-planner methods) are not
    # decision-layer methods: noted, and they do not stand in for the strategy x model pairs below
    for m in methods:
        if strategy_rows[m.strategy_id][1] not in ENTRY_STRATEGIES:
            out.notes.append(f"method {m.ref}: strategy {m.strategy} is not an entry strategy; skipped")
    methods = [m for m in methods if strategy_rows[m.strategy_id][1] in ENTRY_STRATEGIES]
    if methods:
        for m in methods:
            mid, mname, mversion, mstatus = model_rows[m.model_id]
            try:
                model = _model(conn, out.models, mid, mname, mversion, mstatus)
            except ForecastError as exc:
                out.notes.append(f"method {m.ref}: {exc}; skipped")
                continue
            share = shares.get(m.ref) if m.status == "active" else None
            out.units.append(DecisionUnit(strategy_for(m.strategy_id), model, ModelRef(mid, mname, mversion, mstatus),
                                          m.runtime(Decimal(share) if share is not None else None)))
        return out
    if mode != "paper":
        out.notes.append(f"{mode} trading needs an active method (see `precog methods list`)")
        return out

    try:
        from precog.forecast.registry import ensure_builtin_models

        ensure_builtin_models(conn)
    except ImportError:
        pass
    model_rows = {r[0]: r for r in conn.execute(
        "SELECT model_id, model_name, model_version, status FROM probability_models").fetchall()}
    active_models = [r for r in model_rows.values() if r[3] == "active"]
    strategies = [r for r in strategy_rows.values() if r[1] in ENTRY_STRATEGIES and r[3] == "active"]
    if not active_models:
        out.notes.append("no active probability model (see `precog models list`)")
    for mid, mname, mversion, mstatus in sorted(active_models):
        try:
            model = _model(conn, out.models, mid, mname, mversion, mstatus)
        except ForecastError as exc:
            out.notes.append(f"model {mname}@{mversion}: {exc}; skipped")
            continue
        for s_row in sorted(strategies):
            out.units.append(DecisionUnit(strategy_for(s_row[0]), model, ModelRef(mid, mname, mversion, mstatus)))
    if out.units:
        out.notes.append("no testing/active method: every active strategy is paired with every active model")
    return out
