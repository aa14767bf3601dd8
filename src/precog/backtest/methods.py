"""Which methods a backtest runs: `NAME@VERSION` rows of the methods table, mapped to backtest models."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from precog.backtest.errors import BacktestError
from precog.engine.entries import MethodSpec
from precog.ingest.scd2 import jsonb

# Positions of pre-game methods are held to settlement (the market closes at kickoff in pre-game-only
# seasons): only a deep stop loss would close one early; no hedge (spec 5.11) sells part of a winner. Same shape
# as the demo's pre-game method.
HOLD_TO_SETTLEMENT: dict[str, Any] = {
    "stop_loss": {"high_confidence": "-0.60", "medium_confidence": "-0.60", "low_confidence": "-0.60"},
    "profit_targets": {"high_confidence": "0.90", "medium_confidence": "0.90", "low_confidence": "0.90"},
    "trailing_stop": {"enabled": False}, "partial_exits": {"enabled": False, "stages": []},
    "liquidity": {"max_spread": "0.10", "min_volume": 1}, "hedge": {"enabled": False}}

CLOSING_LINE_METHOD = "nfl_closing_line@v1.0"


@dataclass(frozen=True)
class ChosenMethod:
    ref: str
    spec: MethodSpec
    model_ref: str
    strategy_ref: str


def model_key_for(model_name: str, model_type: str) -> str:
    """The backtest model that stands for a registered model."""
    name = model_name.lower()
    if model_type == "market" or name.startswith("closing_line") or name.startswith("market"):
        return "closing_line"
    if model_type == "elo" or name.startswith("elo"):
        return "elo"
    if "wp" in name or "winprob" in name or model_type == "regression":
        return "wp"
    raise BacktestError(f"model {model_name} ({model_type}) has no backtest implementation "
                        "(supported: Elo, in-game win probability, closing line)")


def phase_for(strategy_name: str) -> str:
    name = strategy_name.lower()
    return "live" if "live" in name or "in_game" in name or "ingame" in name else "pre_game"


def _dec(value: Any, default: str) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(default)


def resolve(conn: psycopg.Connection[Any], refs: list[str]) -> list[ChosenMethod]:
    from precog.trading.methods import MethodError, get_method

    out: list[ChosenMethod] = []
    for ref in refs:
        try:
            rec = get_method(conn, ref)
        except MethodError as exc:
            raise BacktestError(f"--method {ref}: {exc}") from exc
        row = conn.execute("SELECT model_name, model_type FROM probability_models WHERE model_id = %s",
                           (rec.model_id,)).fetchone()
        strat = conn.execute("SELECT strategy_name, config FROM strategies WHERE strategy_id = %s",
                             (rec.strategy_id,)).fetchone()
        assert row is not None and strat is not None
        key = model_key_for(row[0], row[1])
        scfg = strat[1] or {}
        min_edge = _dec(rec.risk.get("min_edge_threshold", scfg.get("min_edge")), "0.05")
        spec = MethodSpec(method_id=rec.method_id, strategy_id=rec.strategy_id, model_id=rec.model_id,
                          name=rec.ref, model_key=key, phase=phase_for(strat[0]), min_edge=min_edge,
                          kelly_fraction=_dec(rec.risk.get("kelly_fraction"), "0.25"),
                          position_mgmt=rec.position_mgmt or None, max_slippage_pct=rec.runtime().max_slippage_pct)
        out.append(ChosenMethod(rec.ref, spec, rec.model, rec.strategy))
    if len({c.ref for c in out}) != len(out):
        raise BacktestError("--method: the same method is named twice")
    return out


def ensure_default_methods(conn: psycopg.Connection[Any]) -> list[str]:
    """The shipped backtest methods: the demo's Elo pre-game and in-game WP methods, and a closing-line
    method (the market's own price: the honesty baseline). Returns their refs."""
    from precog.engine.demo import ensure_demo_methods

    refs = [f"{m.name}@v1.1" for m in ensure_demo_methods(conn)]
    conn.execute("INSERT INTO probability_models (model_name, model_version, model_type, sport, config, description, "
                 "status) VALUES ('closing_line_nfl', 'v1.0', 'market', 'nfl', %s, %s, 'active') "
                 "ON CONFLICT (model_name, model_version) DO NOTHING",
                 (jsonb({"sigma_points": "13.5"}), "The market's own price: Phi(closing spread / 13.5)"))
    model_id = conn.execute("SELECT model_id FROM probability_models WHERE model_name = 'closing_line_nfl' AND "
                            "model_version = 'v1.0'").fetchone()[0]  # type: ignore[index]
    from precog.engine.demo import DEMO_PRE_GAME

    strategy_id = conn.execute("SELECT strategy_id FROM strategies WHERE strategy_name = %s AND "
                               "strategy_version = 'v1.0'", (DEMO_PRE_GAME,)).fetchone()[0]  # type: ignore[index]
    conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config, "
        "execution_config, sport_config, config_hash, status) VALUES ('nfl_closing_line', 'v1.0', %s, %s, %s, %s, "
        "%s, %s, 'backtest-nfl_closing_line-v1.0', 'active') ON CONFLICT (method_name, method_version) DO NOTHING",
        (strategy_id, model_id, jsonb(HOLD_TO_SETTLEMENT), jsonb({"kelly_fraction": "0.25"}),
         jsonb({"default_order_type": "limit"}), jsonb({"nfl": {"enabled": True}})))
    return [*refs, CLOSING_LINE_METHOD]
