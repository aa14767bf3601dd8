"""Reconciliation of our records with the venue's (startup and periodic).

1. Every order we hold as open is looked up and brought to the venue's state (unknown outcomes resolved
   by client_order_id). 2. Venue orders we have no row for are adopted. 3. Fills we never booked are booked
   (missed while we were down). 4. Positions that settled while we were away are settled (a market the venue
   disputes or voided is held and alerted instead: precog.trading.settlement); settlements booked before the
   venue listed its own are verified against it, and mismatch alerts still owed are raised. 5. Contracts held
   per market and side are compared with the venue's positions, and cash with the expected balance when
   the caller knows it. A difference that cannot be explained raises a critical alert and halts trading.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from precog.alerts.api import AlertRaiser
from precog.domain.market import MarketStatus
from precog.trading.executor import Executor
from precog.trading.orders import TERMINAL
from precog.trading.settlement import (
    DISPUTED_STATUSES,
    hold_disputed,
    raise_owed_mismatches,
    settle_market,
    unverified,
    venue_settlement_for,
    verify_stored,
)

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    orders_checked: int = 0
    orders_adopted: int = 0
    fills_booked: int = 0
    positions_settled: int = 0
    stale_orders_canceled: int = 0
    settlements_verified: int = 0  # markets settled earlier compared with the venue's settlement now
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _record_orphan_attempt(executor: Executor, rec: Any) -> None:
    """An exit attempt whose process died: stored as an attempt (the new process starts a fresh exit)."""
    from precog.ingest.scd2 import jsonb

    executor.store.conn.execute(
        "INSERT INTO exit_attempts (position_id, exit_condition, priority_level, order_type, limit_price, "
        "fill_price, quantity, filled_quantity, attempt_number, success, order_id, attempt_metadata) "
        "SELECT %s, %s, %s, %s, %s, (SELECT round(sum(price * quantity) / nullif(sum(quantity), 0), 4) FROM trades "
        "WHERE client_order_id = %s), %s, %s, %s, %s, %s, %s",
        (rec.position_id, rec.exit_condition, rec.exit_priority,
         "market" if rec.time_in_force == "immediate_or_cancel" else "limit", rec.limit_price, rec.client_order_id,
         rec.quantity, rec.filled_quantity, int(rec.metadata.get("attempt", 1) or 1),
         rec.filled_quantity == rec.quantity, rec.venue_order_id or rec.client_order_id,
         jsonb({"client_order_id": rec.client_order_id, "status": rec.status.value,
                "note": "the process that sent it stopped; canceled at restart", "run_id": executor.run_id})))


def _adopted_of_ours(rec: Any) -> bool:
    """An adopted order whose client_order_id gave back its purpose: one of our entries or exits."""
    return bool(rec.metadata.get("adopted")) and rec.purpose in ("entry", "exit")


async def reconcile(executor: Executor, *, startup: bool, alerts: AlertRaiser | None = None,
                    expected_cash: Decimal | Callable[[], Decimal] | None = None,
                    cancel_stale: bool = True) -> ReconcileReport:
    """`expected_cash`: the venue balance our books imply (or a function giving it once every fill is booked);
    compared to the cent when no buy order of ours holds cash at the venue."""
    venue = executor.venue
    portfolio = executor.portfolio
    rep = ReconcileReport()
    # 1. our open orders -> the venue's state
    for rec in list(executor.store.open_orders(venue.platform_id, venue.account_ref)):
        rep.orders_checked += 1
        live = executor.open.setdefault(rec.client_order_id, rec)
        await executor.refresh(live)
    # 2. venue orders we do not know
    for vo in await venue.open_orders():
        known = (executor.store.by_client_id(vo.client_order_id) if vo.client_order_id else None) \
            or executor.store.by_venue_id(venue.platform_id, vo.order_id)
        if known is None:
            await executor.adopt(vo.order_id)
            rep.orders_adopted += 1
    # 3. fills we never booked
    rep.fills_booked = len(await executor.sync_fills())
    # 4. a restarted process cancels what a dead one left resting: entries were priced on old data and exit
    #    jobs died with it (the monitor re-triggers exits on its next check). An order of ours adopted just now
    #    (its row was lost; its id names its entry or exit) was left by that process too, though adoption gave
    #    it this run: left resting, an exit stage's order would work beside the one the monitor sends again.
    if startup and cancel_stale:
        for rec in list(executor.open.values()):
            if rec.status not in TERMINAL and (rec.run_id != executor.run_id or _adopted_of_ours(rec)):
                await executor.cancel(rec, reason="left open by a previous process")
                rep.stale_orders_canceled += 1
                if rec.purpose == "exit" and rec.position_id is not None:
                    _record_orphan_attempt(executor, rec)
        rep.fills_booked += len(await executor.sync_fills())
    # 5. markets that settled while we were not watching; a disputed market, or one settled without a value
    #    (voided), is held and alerted. Settlement alerts go out on every pass (the periodic first pass gives no
    #    `alerts`: that is for mismatches that may yet explain themselves), once per market.
    settle_alerts = alerts if alerts is not None else executor.alerts
    settlements = None
    for pos in list(portfolio.open_positions()):
        if not pos.is_open:  # settled with an earlier position of its market
            continue
        market = await venue.market(pos.market_id)
        if market.venue_status in DISPUTED_STATUSES:
            hold_disputed(portfolio, pos.market_id, f"{market.venue_status} at the venue", settle_alerts,
                          venue_status=market.venue_status)
        elif market.status is MarketStatus.SETTLED and market.settlement_value is None:
            hold_disputed(portfolio, pos.market_id, "settled by the venue without a settlement value (voided?)",
                          settle_alerts, venue_status=market.venue_status)
        elif market.status is MarketStatus.SETTLED and market.settlement_value is not None:
            if settlements is None:
                settlements = await venue.settlements()
            done = settle_market(portfolio, pos.market_id, market.settlement_value, executor.clock(),
                                 venue_settlement=venue_settlement_for(settlements, pos.market_id),
                                 run_id=executor.run_id, market_result=market.result or None, alerts=settle_alerts)
            rep.positions_settled += len(done)
    # settlements booked before the venue listed its own (verified now, if it lists them), and mismatch
    # alerts owed by settlements booked without an alert sink (the engine's cycle) or whose alert failed
    pending = unverified(portfolio, executor.clock())
    if pending:
        if settlements is None:
            settlements = await venue.settlements()
        rep.settlements_verified = verify_stored(portfolio, pending, settlements, settle_alerts, executor.clock())
    raise_owed_mismatches(portfolio, settle_alerts, executor.clock())
    # 6. contracts per market: ours vs the venue's (positive = YES, negative = NO)
    ours: dict[str, int] = {}
    for pos in portfolio.open_positions():
        ours[pos.market_id] = ours.get(pos.market_id, 0) + (pos.quantity if pos.side == "yes" else -pos.quantity)
    # compared as given: a fractional venue position (fractional trading) is a mismatch, never truncated to match
    theirs = {p.ticker: p.position for p in await venue.positions() if p.position != 0}
    for ticker in sorted(set(ours) | set(theirs)):
        venue_count = theirs.get(ticker, 0)
        if ours.get(ticker, 0) != venue_count:
            rep.mismatches.append({"kind": "position", "market": ticker, "ours": ours.get(ticker, 0),
                                   "venue": int(venue_count) if venue_count == int(venue_count) else str(venue_count)})
    if expected_cash is not None:
        if callable(expected_cash):
            expected_cash = expected_cash()
        bal = (await venue.balance()).balance
        held = sum((o.limit_price * o.remaining for o in executor.open.values()
                    if o.action == "buy" and o.status not in TERMINAL), Decimal(0))
        if bal != expected_cash and held == 0:
            rep.mismatches.append({"kind": "cash", "ours": str(expected_cash), "venue": str(bal)})
    if rep.mismatches and alerts is not None:
        alerts.raise_alert("reconciliation_mismatch", "critical", "reconciliation",
                           f"{len(rep.mismatches)} unexplained difference(s) between our records and the venue; "
                           "trading halted", {"mismatches": rep.mismatches, "startup": startup},
                           dedup_key="reconciliation_mismatch", category="trading")
    if rep.mismatches:
        log.error("reconciliation mismatches: %s", rep.mismatches)
    return rep
