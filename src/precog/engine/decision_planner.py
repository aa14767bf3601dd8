"""Entries for `precog run` from the decision layer (`precog.trading.decide`): the database snapshot (markets
and game states kept fresh by ingestion, our open positions, the balance) is scanned by the DecisionEngine;
each approved intent is an `Approval` the order path must consume (`require_approval`) right before sending.

The scan also re-runs every unit's model on every market it covers; the planner keeps those forecasts so the
position monitor can recompute the edge of a position it opened (early_exit / edge_disappeared, spec 5.6).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from precog.config.loader import Config
from precog.domain.money import ONE
from precog.trading.edges import edge_key_of

log = logging.getLogger(__name__)


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
    edge_id: int | None = None  # the `edges` version this entry was decided on (trades point at it)


@dataclass(frozen=True)
class UnitForecast:
    """One unit's belief about one market at the latest scan: P(YES) from its model, raw and shrunk by the
    unit's strategy like its entries were."""

    method_id: int | None
    strategy_id: int | None
    model_id: int | None
    p_yes: Decimal
    p_yes_shrunk: Decimal


class DecisionPlanner:
    """Runs one decision scan per call and returns the approved entries."""

    def __init__(self, conn: Any, cfg: Config, connect: Callable[[], Any], *, mode: str,
                 alerts: Any = None, platform_id: str = "kalshi") -> None:
        from precog.trading.decide import DecisionEngine
        from precog.trading.risk import RiskManager
        from precog.trading.scan import board_for
        from precog.trading.settings import TradingSettings
        from precog.trading.units import load_units

        self.conn = conn
        self.mode = mode
        self.platform_id = platform_id  # the venue's: its account's balance sizes the entries
        self.settings = TradingSettings.from_config(cfg)
        environment = str(cfg.get("system.environment.active", "demo"))
        self.units = load_units(conn, cfg, self.settings, mode=mode)
        self.board = board_for(connect, self.settings, alerts=alerts, environment=environment)
        self.risk = RiskManager(self.settings, mode=mode, gate=self.board)
        self.engine = DecisionEngine(self.settings, self.units.units, self.risk, breakers=self.board)
        self.last_notes: list[str] = list(self.units.notes)
        # ticker -> each unit's forecast at the latest scan; a market the scan did not cover has none
        self.forecasts: dict[str, list[UnitForecast]] = {}
        # exposure held outside the snapshot's positions: entries waiting for manual approval (set by the engine)
        self.reserved: Callable[[], list[Any]] = list

    @property
    def has_units(self) -> bool:
        return bool(self.units.units)

    @property
    def method_ids(self) -> set[int]:
        """The methods whose units this planner trades (none on the strategy x model pairing)."""
        return {u.method.method_id for u in self.units.units
                if u.method is not None and u.method.method_id is not None}

    def retire_methods(self, method_ids: set[int]) -> None:
        """No new entries for these methods (deprecated while trading); their models still price their positions.
        The A/B capital split is worked out again without them, so the active methods left trade with the capital
        the deprecated ones had (as a restart would give them)."""
        self.engine.retire(method_ids)
        self._refresh_capital_shares()

    def _refresh_capital_shares(self) -> None:
        """Each active unit's share from the current split (`precog.trading.methods.capital_split`). A method no
        longer in the split (made inactive elsewhere) keeps the share it was loaded with: never more capital."""
        from precog.trading.methods import capital_split

        shares = capital_split(self.conn, existing_share=self.settings.ab_existing_share,
                               new_share=self.settings.ab_new_share)
        now: dict[int, Decimal | None] = {}
        for unit in self.units.units:
            m = unit.method
            if m is None or m.method_id is None or m.method_id in self.engine.retired or m.capital_share is None:
                continue  # paper testing methods trade without a share; retired ones open nothing
            share = shares.get(f"{m.name}@{m.version}")
            if share is not None:
                now[m.method_id] = Decimal(share)
        if now:
            self.engine.set_capital_shares(now)
            log.info("A/B capital split after retiring methods: %s", {k: str(v) for k, v in sorted(now.items())})

    def plan(self) -> list[PlannedEntry]:
        from precog.trading.snapshot import load_snapshot

        snap = load_snapshot(self.conn, self.settings, self.mode, platform_id=self.platform_id)
        self.risk.set_method_history(snap.method_history)  # each method's own loss limits
        self.engine.set_strategy_sharpe(snap.strategy_sharpe)  # selection_logic best_sharpe
        result = self.engine.scan(snap.markets, snap.games, positions=[*snap.positions, *self.reserved()],
                                  balance=snap.balance,
                                  now=time.time())
        self._keep_forecasts(result.evaluations)
        edge_ids = self._store_edges(result)
        out = []
        for approval in result.approved:
            it = approval.intent
            strategy_id, model_id = it.strategy.ref.strategy_id, it.model.model_id
            method_id = it.method.method_id if it.method is not None else None
            out.append(PlannedEntry(
                approval=approval, ticker=it.market.ticker, event_ticker=it.market.event_ticker,
                sport=it.market.sport, side=it.side, count=it.quantity, price=it.price, order_type=it.order_type,
                edge=it.edge, confidence=it.confidence_level, strategy_id=strategy_id, model_id=model_id,
                method_id=method_id, p_side=it.p_side,
                edge_id=edge_ids.get(edge_key_of(it.market.ticker, it.side, strategy_id, model_id, method_id))))
        return out

    def _store_edges(self, result: Any) -> dict[str, int]:
        """Write the scan's edges (`edges`, SCD2: a version only where one changed) as `precog edges scan` does,
        and return the current version's id of each approved entry's edge, by edge key."""
        from precog.trading.edge_store import store_edges

        store_edges(self.conn, result, self.units.units)
        keys = [edge_key_of(a.intent.market.ticker, a.intent.side, a.intent.strategy.ref.strategy_id,
                            a.intent.model.model_id, a.intent.method.method_id if a.intent.method else None)
                for a in result.approved]
        if not keys:
            return {}
        rows = self.conn.execute("SELECT edge_key, id FROM edges WHERE row_current_ind AND edge_key = ANY(%s)",
                                 (keys,)).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def _keep_forecasts(self, evaluations: list[Any]) -> None:
        found: dict[str, list[UnitForecast]] = {}
        for ev in evaluations:  # precog.trading.decide.MarketEval: one market under one model (and shrinkage)
            if ev.yes is not None:
                shrunk = ev.yes.p_side
            elif ev.no is not None:
                shrunk = ONE - ev.no.p_side
            else:
                continue  # no offer on either side: nothing to exit at anyway
            for unit, *_ in ev.verdicts:
                found.setdefault(ev.market.ticker, []).append(UnitForecast(
                    unit.method.method_id if unit.method is not None else None, unit.strategy.ref.strategy_id,
                    ev.model_ref.model_id, ev.forecast.p_yes, shrunk))
        self.forecasts = found

    def refresh_forecasts(self, tickers: set[str]) -> None:
        """Re-run the units' models on `tickers` without a decision scan (trading is not ACTIVE, so no scan
        runs, yet open positions still need their edge): the same models, shrinkage and market snapshot."""
        from precog.trading.edges import shrink
        from precog.trading.snapshot import load_snapshot

        snap = load_snapshot(self.conn, self.settings, self.mode, platform_id=self.platform_id)
        found: dict[str, list[UnitForecast]] = {}
        for m in snap.markets:
            if m.ticker not in tickers:
                continue
            game = snap.games.get(m.event_ticker)
            by_model: dict[int, Any] = {}
            for unit in self.units.units:
                if unit.method is not None and not unit.method.sport_enabled(m.sport):
                    continue
                if id(unit.model) not in by_model:
                    by_model[id(unit.model)] = unit.model.forecast(m, game)
                f = by_model[id(unit.model)]
                if f is None:
                    continue
                factor = unit.strategy.shrinkage_factor
                factor = self.settings.shrinkage_factor if factor is None else factor
                found.setdefault(m.ticker, []).append(UnitForecast(
                    unit.method.method_id if unit.method is not None else None, unit.strategy.ref.strategy_id,
                    unit.model_ref.model_id, f.p_yes, shrink(f.p_yes, factor)))
        self.forecasts = found

    def position_probability(self, ticker: str, side: str, *, model_id: int | None, strategy_id: int | None,
                             method_id: int | None) -> Decimal | None:
        """P(side) for a position from the model that opened it (shrunk like its entry), or None when the latest
        scan has no forecast of that model for the market (filtered out, closed, the model had nothing)."""
        if model_id is None:
            return None
        same_model = [f for f in self.forecasts.get(ticker, []) if f.model_id == model_id]
        exact = [f for f in same_model if (method_id is not None and f.method_id == method_id)
                 or (method_id is None and f.method_id is None and f.strategy_id == strategy_id)]
        if exact:
            p_yes = exact[0].p_yes_shrunk
        elif len({f.p_yes_shrunk for f in same_model}) == 1:
            p_yes = same_model[0].p_yes_shrunk  # the unit is gone, but every unit of the model agrees
        else:
            return None
        return p_yes if side == "yes" else ONE - p_yes

    def consume(self, entry: PlannedEntry) -> None:
        """The order path's gate: refuses an approval that is used, released or expired."""
        from precog.trading.risk import require_approval

        require_approval(entry.approval)

    def release(self, entry: PlannedEntry) -> None:
        self.risk.release(entry.approval)


class PlannerForecasts:
    """The engine's probability source on the decision-layer path (`precog run --venue kalshi`): entries come
    from the planner's scan; open positions are re-priced from the same scan's forecasts."""

    def __init__(self, planner: DecisionPlanner) -> None:
        self.planner = planner

    def estimate(self, model_key: str, ticker: str, now: datetime) -> Any:
        """P(YES) of model `model_key` (its model_id) for `ticker` at the latest scan, unshrunk; None without one."""
        from precog.engine.core import Estimate

        values = {f.p_yes for f in self.planner.forecasts.get(ticker, []) if str(f.model_id) == model_key}
        return Estimate(values.pop()) if len(values) == 1 else None

    def phase(self, ticker: str, now: datetime) -> str:
        return "live"  # unused on this path: the decision layer's strategies judge the game phase themselves

    def position_probability(self, ticker: str, side: str, *, model_id: int | None, strategy_id: int | None,
                             method_id: int | None) -> Decimal | None:
        return self.planner.position_probability(ticker, side, model_id=model_id, strategy_id=strategy_id,
                                                 method_id=method_id)
