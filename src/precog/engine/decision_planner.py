"""Entries for `precog run` from the decision layer (`precog.trading.decide`): the database snapshot (markets
and game states kept fresh by ingestion, our open positions, the balance) is scanned by the DecisionEngine;
each approved intent is an `Approval` the order path must consume (`require_approval`) right before sending.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from precog.config.loader import Config


@dataclass
class PlannedEntry:
    approval: Any  # precog.trading.risk.Approval
    ticker: str
    event_ticker: str
    sport: str
    side: str
    count: int
    price: Any
    order_type: str
    edge: Any
    confidence: str
    strategy_id: int | None
    model_id: int | None
    method_id: int | None
    p_side: Any


class DecisionPlanner:
    """Runs one decision scan per call and returns the approved entries."""

    def __init__(self, conn: Any, cfg: Config, connect: Callable[[], Any], *, mode: str,
                 alerts: Any = None) -> None:
        from precog.trading.decide import DecisionEngine
        from precog.trading.risk import RiskManager
        from precog.trading.scan import board_for
        from precog.trading.settings import TradingSettings
        from precog.trading.units import load_units

        self.conn = conn
        self.mode = mode
        self.settings = TradingSettings.from_config(cfg)
        environment = str(cfg.get("system.environment.active", "demo"))
        self.units = load_units(conn, cfg, self.settings, mode=mode)
        self.board = board_for(connect, self.settings, alerts=alerts, environment=environment)
        self.risk = RiskManager(self.settings, mode=mode, gate=self.board)
        self.engine = DecisionEngine(self.settings, self.units.units, self.risk, breakers=self.board)
        self.last_notes: list[str] = list(self.units.notes)

    @property
    def has_units(self) -> bool:
        return bool(self.units.units)

    def plan(self) -> list[PlannedEntry]:
        from precog.trading.snapshot import load_snapshot

        snap = load_snapshot(self.conn, self.settings, self.mode)
        self.risk.set_method_history(snap.method_history)  # each method's own loss limits
        result = self.engine.scan(snap.markets, snap.games, positions=snap.positions, balance=snap.balance,
                                  now=time.time())
        out = []
        for approval in result.approved:
            it = approval.intent
            out.append(PlannedEntry(
                approval=approval, ticker=it.market.ticker, event_ticker=it.market.event_ticker,
                sport=it.market.sport, side=it.side, count=it.quantity, price=it.price, order_type=it.order_type,
                edge=it.edge, confidence=it.confidence_level, strategy_id=it.strategy.ref.strategy_id,
                model_id=it.model.model_id, method_id=it.method.method_id if it.method is not None else None,
                p_side=it.p_side))
        return out

    def consume(self, entry: PlannedEntry) -> None:
        """The order path's gate: refuses an approval that is used, released or expired."""
        from precog.trading.risk import require_approval

        require_approval(entry.approval)

    def release(self, entry: PlannedEntry) -> None:
        self.risk.release(entry.approval)
