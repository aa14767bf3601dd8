"""Fills -> trades -> positions, with exact cash and P&L accounting.

Every fill is booked once (trades.fill_id is unique per platform, so re-reading the venue's fills after a
restart books nothing twice). A position's cost basis includes its entry fees; an exit or a settlement
realizes proceeds - fees - the cost share of the contracts that left, so the sum of realized P&L over all
closed positions equals the change in cash to the cent. Positions are SCD2 versions with a stable
position_id; each fill writes a new version.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.domain.money import ZERO, q4, whole_contracts
from precog.domain.order import Fill
from precog.ingest import scd2
from precog.ingest.scd2 import jsonb
from precog.trading import trailing
from precog.trading.exits import HEDGE_STAGE
from precog.trading.orders import OrderRecord
from precog.trading.strategies import refresh_owner_metrics

log = logging.getLogger(__name__)

# the modes whose closes feed the methods' and strategies' stored paper/live metrics
METRIC_MODES = ("paper", "live")

# exit conditions whose sales count toward a stage of the position (executed_stages / stage_sold)
STAGED_CONDITIONS = ("partial_exit_target", "hedge")

# position_metadata key a close writes (in the close's own transaction) when its realized P&L owes an alert
PNL_ALERT_KEY = "pnl_alert"


@dataclass(frozen=True)
class PnlAlertRule:
    """trading.yaml `alerts`: a position that closes (exit or settlement) with realized P&L at or below -loss
    owes a `loss_threshold` alert, at or above +gain a `gain_threshold` alert (spec 4.3, 8.2)."""

    loss: Decimal
    gain: Decimal

    @classmethod
    def from_config(cls, trading: Mapping[str, Any]) -> PnlAlertRule:
        section = trading.get("alerts")
        if not isinstance(section, Mapping):
            raise ValueError("trading.alerts must be a mapping with on_loss_threshold_dollars and "
                             "on_gain_threshold_dollars")
        return cls(loss=_positive_dollars(section, "on_loss_threshold_dollars"),
                   gain=_positive_dollars(section, "on_gain_threshold_dollars"))

    def owed(self, realized: Decimal) -> tuple[str, Decimal] | None:
        """(alert type, threshold) a close with this realized P&L owes, or None."""
        if realized <= -self.loss:
            return "loss_threshold", self.loss
        if realized >= self.gain:
            return "gain_threshold", self.gain
        return None


def _positive_dollars(section: Mapping[str, Any], key: str) -> Decimal:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or not value > 0:
        raise ValueError(f"trading.alerts.{key} must be a dollar amount > 0, got {value!r}")
    return Decimal(value)


@dataclass
class PositionState:
    position_id: int
    market_id: str
    platform_id: str
    side: str
    mode: str
    entry_price: Decimal
    quantity: int
    initial_quantity: int
    fees: Decimal = ZERO
    cost_basis: Decimal = ZERO  # price x open contracts + their share of entry fees
    realized_pnl: Decimal = ZERO
    status: str = "open"
    event_id: str | None = None
    sport: str | None = None
    current_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    unrealized_pnl_pct: Decimal | None = None
    trailing_stop_state: dict[str, Any] | None = None
    exit_reason: str | None = None
    exit_priority: str | None = None
    exit_price: Decimal | None = None
    strategy_id: int | None = None
    model_id: int | None = None
    method_id: int | None = None
    initial_order_id: str | None = None
    entry_time: datetime | None = None
    exit_time: datetime | None = None
    last_update: datetime | None = None
    last_check_time: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status == "open" and self.quantity > 0

    @property
    def executed_stages(self) -> frozenset[str]:
        return frozenset(self.metadata.get("executed_stages", []))

    @property
    def stage_sold(self) -> dict[str, int]:
        """Contracts each partial-exit stage has sold (metadata `stage_sold`, kept across restarts)."""
        return {str(k): int(v) for k, v in (self.metadata.get("stage_sold") or {}).items()}

    @property
    def hedge_quantity(self) -> int | None:
        """The quantity the hedge fixed when it fired (metadata `hedge_quantity`, once it sold any of it)."""
        value = self.metadata.get("hedge_quantity")
        return int(value) if value is not None else None

    def record_stage_sale(self, stage: str, quantity: int, target: int | None) -> None:
        """Count `quantity` contracts sold by partial-exit `stage` (or the hedge, a one-off stage); the stage is
        executed once it has sold its whole `target` (a stage whose attempt gave up part way is attempted again for
        the rest). The hedge's target is kept too: its remainder is what is left of the quantity fixed when it
        fired, never sized again."""
        sold = self.stage_sold
        sold[stage] = sold.get(stage, 0) + quantity
        self.metadata["stage_sold"] = sold
        if stage == HEDGE_STAGE and target is not None and "hedge_quantity" not in self.metadata:
            self.metadata["hedge_quantity"] = target
        if target is not None and sold[stage] >= target:
            stages = list(self.metadata.get("executed_stages", []))
            if stage not in stages:
                stages.append(stage)
            self.metadata["executed_stages"] = stages

    def row(self) -> dict[str, Any]:
        meta = dict(self.metadata)
        meta["cost_basis"] = str(self.cost_basis)
        return {
            "position_id": self.position_id, "market_id": self.market_id, "market_version_id": None,
            "platform_id": self.platform_id, "event_id": self.event_id, "sport": self.sport, "side": self.side,
            "mode": self.mode, "entry_price": q4(self.entry_price), "quantity": self.quantity,
            "initial_quantity": self.initial_quantity, "fees": self.fees, "status": self.status,
            "current_price": self.current_price, "unrealized_pnl": self.unrealized_pnl,
            "unrealized_pnl_pct": self.unrealized_pnl_pct, "realized_pnl": self.realized_pnl,
            "target_price": None, "stop_loss_price": None, "trailing_stop_state": self.trailing_stop_state,
            "exit_reason": self.exit_reason, "exit_priority": self.exit_priority, "exit_price": self.exit_price,
            "strategy_id": self.strategy_id, "model_id": self.model_id, "method_id": self.method_id,
            "initial_order_id": self.initial_order_id, "entry_time": self.entry_time, "exit_time": self.exit_time,
            "last_update": self.last_update, "last_check_time": self.last_check_time, "position_metadata": meta,
        }

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> PositionState:
        meta = dict(r.get("position_metadata") or {})
        return cls(
            position_id=r["position_id"], market_id=r["market_id"], platform_id=r["platform_id"], side=r["side"],
            mode=r["mode"], entry_price=r["entry_price"], quantity=r["quantity"],
            initial_quantity=r["initial_quantity"], fees=r["fees"], cost_basis=Decimal(meta.get("cost_basis", "0")),
            realized_pnl=r["realized_pnl"], status=r["status"], event_id=r["event_id"], sport=r["sport"],
            current_price=r["current_price"], unrealized_pnl=r["unrealized_pnl"],
            unrealized_pnl_pct=r["unrealized_pnl_pct"], trailing_stop_state=r["trailing_stop_state"],
            exit_reason=r["exit_reason"], exit_priority=r["exit_priority"], exit_price=r["exit_price"],
            strategy_id=r["strategy_id"], model_id=r["model_id"], method_id=r["method_id"],
            initial_order_id=r["initial_order_id"], entry_time=r["entry_time"], exit_time=r["exit_time"],
            last_update=r["last_update"], last_check_time=r["last_check_time"], metadata=meta)


@dataclass(frozen=True)
class BookedFill:
    trade_id: int
    position: PositionState
    realized: Decimal  # P&L realized by this fill (exits only)
    quantity: int
    price: Decimal
    fee: Decimal


class Portfolio:
    """The open positions of one platform/mode, kept in memory and written through to PostgreSQL."""

    def __init__(self, conn: psycopg.Connection[Any], platform_id: str, mode: str,
                 trailing_config: trailing.TrailingConfig | None = None, account_ref: str | None = None) -> None:
        self.conn = conn
        self.platform_id = platform_id
        self.mode = mode
        self.account_ref = account_ref
        self.trailing_config = trailing_config or trailing.TrailingConfig()
        self.positions: dict[int, PositionState] = {}
        self.closes = 0  # positions this Portfolio saved closed or settled (their histories changed)
        # None: closes owe no P&L alert (no alert sink, or a backtest). Set by the engine.
        self.pnl_alerts: PnlAlertRule | None = None
        # positions closed since the owner last raised the P&L alerts they owe (`owed_pnl_alerts`)
        self.closed_unalerted: set[int] = set()
        self.load_open()

    def load_open(self) -> None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            params: list[Any] = [self.platform_id, self.mode]
            scope = self._account_scope(params)
            cur.execute("SELECT * FROM positions WHERE row_current_ind AND status = 'open' AND platform_id = %s "  # noqa: S608 - constant SQL fragments; values are parameters
                        f"AND mode = %s{scope}", params)
            self.positions = {r["position_id"]: PositionState.from_row(r) for r in cur.fetchall()}

    def _account_scope(self, params: list[Any]) -> str:
        """The SQL condition keeping positions opened from this venue account (none without an account), its
        parameter appended to `params`."""
        if self.account_ref is None:
            return ""
        params.append(self.account_ref)
        return " AND (position_metadata->>'run_id')::bigint IN (SELECT run_id FROM engine_runs WHERE account_ref = %s)"

    def open_positions(self) -> list[PositionState]:
        return [p for p in self.positions.values() if p.is_open]

    def open_in_market(self, market_id: str) -> list[PositionState]:
        return [p for p in self.positions.values() if p.is_open and p.market_id == market_id]

    def get(self, position_id: int) -> PositionState | None:
        pos = self.positions.get(position_id)
        if pos is not None:
            return pos
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT * FROM positions WHERE row_current_ind AND position_id = %s", (position_id,))
            r = cur.fetchone()
        return PositionState.from_row(r) if r else None

    def save(self, pos: PositionState, when: datetime | None = None) -> None:
        if not pos.is_open:
            self._note_pnl_alert(pos)
        scd2.write_one(self.conn, scd2.POSITIONS, pos.row(), observed_at=None)
        if pos.is_open:
            self.positions[pos.position_id] = pos
        else:
            self.positions.pop(pos.position_id, None)
            self.closes += 1
            self._refresh_owner_metrics(pos)

    def _note_pnl_alert(self, pos: PositionState) -> None:
        """A closing position whose realized P&L crosses a threshold records the alert it owes in the row the
        close writes (same transaction): a crash before the alert is raised leaves the debt on disk, and
        `owed_pnl_alerts` finds it at the next start."""
        if self.pnl_alerts is None or pos.status not in ("closed", "settled") or PNL_ALERT_KEY in pos.metadata:
            return
        owed = self.pnl_alerts.owed(pos.realized_pnl)
        if owed is None:
            return
        pos.metadata[PNL_ALERT_KEY] = {"type": owed[0], "threshold": str(owed[1])}
        self.closed_unalerted.add(pos.position_id)

    def owed_pnl_alerts(self, position_ids: Collection[int] | None = None) -> list[dict[str, Any]]:
        """Closed or settled positions of this platform/mode (and account) that owe a P&L alert no alert row
        answers yet (`alerts` with that type and source positions/position_id); only `position_ids` when given."""
        params: list[Any] = [self.platform_id, self.mode]
        scope = ""
        if position_ids is not None:
            scope += " AND p.position_id = ANY(%s)"
            params.append(list(position_ids))
        scope += self._account_scope(params)
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT p.position_id, p.market_id, p.event_id, p.sport, p.side, p.mode, p.status, p.exit_reason, "  # noqa: S608 - constant SQL fragments; values are parameters
                "p.exit_price, p.exit_time, p.initial_quantity, p.entry_price, p.realized_pnl, p.method_id, "
                "p.strategy_id, p.model_id, m.method_name, m.method_version, "
                "p.position_metadata->'pnl_alert'->>'type' AS alert_type, "
                "p.position_metadata->'pnl_alert'->>'threshold' AS threshold "
                "FROM positions p LEFT JOIN methods m ON m.method_id = p.method_id "
                "WHERE p.row_current_ind AND p.status IN ('closed', 'settled') AND p.platform_id = %s "
                "AND p.mode = %s AND p.position_metadata->'pnl_alert' IS NOT NULL"
                f"{scope} AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.source_table = 'positions' "
                "AND a.source_id = p.position_id AND a.alert_type = p.position_metadata->'pnl_alert'->>'type') "
                "ORDER BY p.position_id", params)
            return list(cur.fetchall())

    def _refresh_owner_metrics(self, pos: PositionState) -> None:
        """A paper/live position just closed or settled: its method's and strategy version's stored paper/live
        metrics change now (once per close, never per cycle; backtest positions count in neither)."""
        if pos.status not in ("closed", "settled") or pos.mode not in METRIC_MODES:
            return
        try:
            # a savepoint: statistics that fail to refresh must never undo the booking of the fill that closed it
            with self.conn.transaction():
                refresh_owner_metrics(self.conn, pos.method_id, pos.strategy_id)
        except (psycopg.Error, ArithmeticError) as exc:
            log.warning("metrics of method %s / strategy %s not refreshed after position %s closed: %s",
                        pos.method_id, pos.strategy_id, pos.position_id, exc)

    def is_booked(self, fill_id: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM trades WHERE platform_id = %s AND fill_id = %s",
                                (self.platform_id, fill_id)).fetchone()
        return row is not None

    def book_fill(self, fill: Fill, order: OrderRecord, when: datetime, *,
                  sport: str | None = None, event_id: str | None = None,
                  extra_meta: dict[str, Any] | None = None) -> BookedFill | None:
        """Book one venue fill of `order` (idempotent: None when this fill was already booked)."""
        try:
            qty = whole_contracts(fill.count, f"fill {fill.fill_id} on {fill.ticker}")
        except ValueError as exc:  # a fill we cannot place: the executor alerts (fill_not_booked), nothing is guessed
            raise RuntimeError(str(exc)) from exc
        price = fill.price
        fee = fill.fee if fill.fee is not None else ZERO
        with self.conn.transaction():
            if self.is_booked(fill.fill_id):
                return None
            realized = ZERO
            at_exit: Decimal | None = None
            if order.action == "buy":
                pos = self._position_for_entry(order, price, when, sport, event_id, extra_meta)
                if pos.quantity == 0:
                    pos.entry_price = price
                    pos.initial_quantity = qty
                else:
                    pos.entry_price = (pos.entry_price * pos.quantity + price * qty) / (pos.quantity + qty)
                    pos.initial_quantity += qty  # partial exits are shares of everything bought
                pos.quantity += qty
                pos.cost_basis += price * qty + fee
                pos.fees += fee
                if pos.trailing_stop_state is None or not pos.trailing_stop_state.get("active"):
                    pos.trailing_stop_state = trailing.initial_state(q4(pos.entry_price), self.trailing_config)
            else:
                pos = self._position_for_exit(order, fill)
                if qty > pos.quantity:
                    raise RuntimeError(f"fill {fill.fill_id} sells {qty} contracts of position {pos.position_id} "
                                       f"which holds {pos.quantity}")
                share = pos.cost_basis if qty == pos.quantity else q4(pos.cost_basis * qty / pos.quantity)
                realized = price * qty - fee - share
                # the exited contracts' mark just before the exit (the whole position's when it all goes)
                at_exit = q4(pos.current_price * qty - share) if pos.current_price is not None else None
                pos.cost_basis -= share
                pos.quantity -= qty
                pos.fees += fee
                pos.realized_pnl += realized
                if order.exit_condition:
                    pos.exit_reason = order.exit_condition
                    pos.exit_priority = order.exit_priority
                pos.exit_price = price
                if order.exit_condition in STAGED_CONDITIONS and order.metadata.get("stage"):
                    target = order.metadata.get("stage_quantity")
                    pos.record_stage_sale(str(order.metadata["stage"]), qty, int(target) if target is not None
                                          else None)
                if pos.quantity == 0:
                    pos.status = "closed"
                    pos.exit_time = when
                    pos.unrealized_pnl = ZERO
                elif pos.current_price is not None:  # the mark is of the contracts still held
                    pos.unrealized_pnl = q4(pos.current_price * pos.quantity - pos.cost_basis)
            pos.last_update = when
            trade_id = self._insert_trade(fill, order, pos, qty, price, fee, when)
            self.save(pos, when)
            if order.action == "sell":
                self._insert_exit(pos, order, qty, price, realized, at_exit, trade_id, fill)
        return BookedFill(trade_id, pos, realized, qty, price, fee)

    def _position_for_entry(self, order: OrderRecord, price: Decimal, when: datetime, sport: str | None,
                            event_id: str | None, extra_meta: dict[str, Any] | None) -> PositionState:
        if order.position_id is not None:
            pos = self.get(order.position_id)
            # A late fill of an entry order whose position has meanwhile been exited in full (e.g. a resting
            # remainder filling after the exit, or booked by reconciliation after a restart) opens a new
            # position: a closed position is history and must not silently hold contracts again.
            if pos is not None and pos.status == "open":
                return pos
        pid = self.conn.execute("SELECT nextval('position_id_seq')").fetchone()[0]  # type: ignore[index]
        meta: dict[str, Any] = {"run_id": order.run_id, "confidence": order.confidence or "medium",
                                "entry_edge": str(order.edge_at_decision) if order.edge_at_decision is not None
                                else None, "executed_stages": []}
        if extra_meta:
            meta.update(extra_meta)
        pos = PositionState(position_id=pid, market_id=order.market_id, platform_id=self.platform_id,
                            side=order.side, mode=self.mode, entry_price=price, quantity=0, initial_quantity=1,
                            strategy_id=order.strategy_id, model_id=order.model_id, method_id=order.method_id,
                            initial_order_id=order.venue_order_id or order.client_order_id, entry_time=when,
                            sport=sport, event_id=event_id, metadata=meta)
        self.conn.execute("UPDATE orders SET position_id = %s WHERE id = %s", (pid, order.id))
        order.position_id = pid
        return pos

    def _position_for_exit(self, order: OrderRecord, fill: Fill) -> PositionState:
        if order.position_id is not None:
            pos = self.get(order.position_id)
            if pos is not None:
                return pos
        for pos in self.open_in_market(order.market_id):
            if pos.side == order.side:
                return pos
        raise RuntimeError(f"fill {fill.fill_id} sells {order.side} on {order.market_id} but no open position "
                           "holds it")

    def _insert_trade(self, fill: Fill, order: OrderRecord, pos: PositionState, qty: int, price: Decimal,
                      fee: Decimal, when: datetime) -> int:
        meta = {"run_id": order.run_id, "purpose": order.purpose, "exit_condition": order.exit_condition,
                "order_db_id": order.id}
        row = self.conn.execute(
            "INSERT INTO trades (market_id, platform_id, position_id, edge_id, strategy_id, model_id, method_id, "
            "order_id, client_order_id, fill_id, side, action, price, quantity, fees, is_taker, mode, "
            "edge_at_execution, confidence_at_execution, order_type, execution_time, trade_metadata) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING trade_id",
            (order.market_id, self.platform_id, pos.position_id, order.edge_id, pos.strategy_id, pos.model_id,
             pos.method_id, fill.order_id, order.client_order_id, fill.fill_id, order.side, order.action, price,
             qty, fee, fill.is_taker, self.mode, order.edge_at_decision, order.confidence, order.order_type, when,
             jsonb(meta))).fetchone()
        assert row is not None
        return int(row[0])

    def _insert_exit(self, pos: PositionState, order: OrderRecord, qty: int, price: Decimal, realized: Decimal,
                     at_exit: Decimal | None, trade_id: int, fill: Fill) -> None:
        meta = {"order_client_id": order.client_order_id, "fill_id": fill.fill_id,
                "conflicting_triggers": order.metadata.get("conflicting_triggers", []),
                "strategy_id": pos.strategy_id, "model_id": pos.model_id, "method_id": pos.method_id,
                "run_id": order.run_id}
        self.conn.execute(
            "INSERT INTO position_exits (position_id, exit_condition, exit_priority, quantity_exited, exit_price, "
            "realized_pnl, unrealized_pnl_at_exit, exit_trade_id, partial_stage, exit_metadata) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (pos.position_id, order.exit_condition or "manual", order.exit_priority or "MEDIUM", qty, price,
             realized, at_exit, trade_id, order.metadata.get("stage"), jsonb(meta)))

    def mark(self, pos: PositionState, bid: Decimal | None, when: datetime) -> None:
        """Update the in-memory mark (unrealized P&L at the exit price); the caller decides when to persist."""
        pos.last_check_time = when
        if bid is None:
            return
        pos.current_price = bid
        value = bid * pos.quantity
        pos.unrealized_pnl = q4(value - pos.cost_basis)
        pos.unrealized_pnl_pct = q4((bid - pos.entry_price) / pos.entry_price) if pos.entry_price > 0 else None
