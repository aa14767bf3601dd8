"""One decision scan from the database (what `precog edges scan` runs).

Loads the units, the open markets in scope and their games, positions and balance; runs the in-memory
`DecisionEngine` with the persisted breakers and trading state; stores the edges (SCD2) and every risk
rejection. No order is placed: the approvals it produced are released again and reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from precog.alerts.api import AlertRaiser
from precog.config.loader import Config
from precog.trading.breakers import BreakerBoard, PgBreakerStore
from precog.trading.decide import DecisionEngine, ScanResult
from precog.trading.edge_store import StoredEdges, store_edges, store_rejections
from precog.trading.risk import RiskManager
from precog.trading.settings import TradingSettings
from precog.trading.snapshot import Snapshot, load_snapshot
from precog.trading.trading_state import PgTradingStateStore, TradingState, TradingStateSnapshot
from precog.trading.units import UnitSet, load_units


class ScanError(RuntimeError):
    """A scan that cannot run (nothing to decide with); the message says what to set up."""


@dataclass
class ScanReport:
    result: ScanResult
    snapshot: Snapshot
    units: UnitSet
    state: TradingStateSnapshot
    stored: StoredEdges | None = None
    rejections_stored: int = 0
    notes: list[str] = field(default_factory=list)


def board_for(connect: Callable[[], Any], settings: TradingSettings, *, alerts: AlertRaiser | None = None,
              environment: str | None = None) -> BreakerBoard:
    """The breaker board backed by the database (open breakers, counters, trading-state history)."""
    state = TradingState(PgTradingStateStore(connect, environment))
    return BreakerBoard(settings.breakers, store=PgBreakerStore(connect, environment), state=state, alerts=alerts)


def run_scan(conn: Any, cfg: Config, connect: Callable[[], Any], *, mode: str = "paper", store: bool = True,
             alerts: AlertRaiser | None = None, now: float | None = None, platform_id: str = "kalshi") -> ScanReport:
    """`platform_id`: the venue whose account balance sizes the intents (the scanned markets are Kalshi's)."""
    settings = TradingSettings.from_config(cfg)
    environment = str(cfg.get("system.environment.active", "demo"))
    units = load_units(conn, cfg, settings, mode=mode)
    if not units.units:
        raise ScanError("nothing to decide with: " + ("; ".join(units.notes) or
                        "no testing/active method and no active strategy+model pair"))
    snapshot = load_snapshot(conn, settings, mode, platform_id=platform_id)
    board = board_for(connect, settings, alerts=alerts, environment=environment)
    risk = RiskManager(settings, mode=mode, gate=board)
    risk.set_method_history(snapshot.method_history)  # each method's own loss limits
    engine = DecisionEngine(settings, units.units, risk, breakers=board)
    engine.set_strategy_sharpe(snapshot.strategy_sharpe)  # selection_logic best_sharpe
    result = engine.scan(snapshot.markets, snapshot.games, positions=snapshot.positions, balance=snapshot.balance,
                         now=time.time() if now is None else now)
    for approval in result.approved:  # a scan places no orders
        risk.release(approval)
    report = ScanReport(result, snapshot, units, board.current(), notes=list(units.notes))
    for model in units.models.values():
        error = getattr(model, "last_error", None)
        if error:
            report.notes.append(f"{getattr(model, 'errors', 1)} forecast error(s), last: {error}")
    if store:
        report.stored = store_edges(conn, result, units.units)
        report.rejections_stored = store_rejections(conn, result.rejections, mode=mode)
    return report
