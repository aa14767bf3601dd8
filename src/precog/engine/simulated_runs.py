"""Simulated worlds that end before their games do.

`precog run --venue local` and `precog demo` trade on an exchange that lives only in their process. When the
process ends first (a `--duration`, Ctrl-C, a kill), the world's markets never settle: its positions would stay
`open` (and its exit orders `resting`) in the database forever, counted in open positions, unrealized P&L and
today's P&L. So:

- a clean stop ends its own world (`end_simulated_run`): each open position of the run is closed at its last
  mark (the bid it was last valued at; its entry price if it was never marked) with exit reason
  `simulation_ended`, realizing what the mark showed, with a `position_exits` row; its open orders are canceled
  (rejected if they never reached the exchange); the run's `ended_at` is set;
- a killed process cannot, so the next simulated run or demo ends the worlds of dead processes first
  (`end_abandoned_runs`). A live process holds a PostgreSQL advisory lock on its run id for as long as it runs
  (`hold_run_lock`; the server releases it when the session ends, however the process died); a run whose lock
  can be taken has no process left. Only runs with open positions or orders are looked at, and a process takes
  its lock before its first cycle, so such a run without its lock is gone however young it is (a restart right
  after a kill ends the killed world at once).

Only simulated runs are touched: platform `local`, kind `run` or `demo`, never a backtest or a Kalshi run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from precog.domain.money import ZERO, q4
from precog.ingest.scd2 import jsonb
from precog.trading.orders import OPEN_STATES, OrderState, OrderStore
from precog.trading.portfolio import Portfolio, PositionState

SIMULATED_PLATFORM = "local"
SIMULATED_KINDS = ("run", "demo")
LOCK_NAMESPACE = 0x70726563  # "prec": the advisory-lock key space of simulated runs
EXIT_REASON = "simulation_ended"


@dataclass(frozen=True)
class EndedRun:
    run_id: int
    positions_closed: int
    realized_pnl: Decimal  # what closing them at their marks realized
    orders_closed: int


def _lock_key(run_id: int) -> tuple[int, int]:
    return LOCK_NAMESPACE, run_id % 2_147_483_647


def hold_run_lock(url: str, run_id: int) -> psycopg.Connection[Any]:
    """A session holding the run's advisory lock while the process lives; close it when the run ends."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SELECT pg_advisory_lock(%s, %s)", _lock_key(run_id))
    return conn


def _close_position(pos: PositionState, when: datetime) -> tuple[int, Decimal, Decimal, Decimal | None]:
    """Close `pos` at its mark in memory: (contracts, exit price, realized P&L, its unrealized P&L before)."""
    qty = pos.quantity
    price = pos.current_price if pos.current_price is not None else pos.entry_price
    realized = q4(price * qty - pos.cost_basis)
    before = pos.unrealized_pnl
    pos.realized_pnl += realized
    pos.cost_basis = ZERO
    pos.quantity = 0
    pos.status = "closed"
    pos.exit_reason = EXIT_REASON
    pos.exit_priority = "LOW"
    pos.exit_price = price
    pos.exit_time = when
    pos.current_price = price
    pos.unrealized_pnl = ZERO
    pos.last_update = when
    pos.metadata["ended_quantity"] = qty
    return qty, price, realized, before


def end_simulated_run(conn: psycopg.Connection[Any], run_id: int, *, why: str,
                      when: datetime | None = None) -> EndedRun:
    """Close what a simulated run left open (see the module docstring). Idempotent; refuses other runs."""
    at = when or datetime.now(UTC)
    run = conn.execute("SELECT kind, mode, platform_id, account_ref FROM engine_runs WHERE run_id = %s",
                       (run_id,)).fetchone()
    if run is None:
        raise ValueError(f"engine run {run_id} does not exist")
    kind, mode, platform_id, account_ref = run
    if platform_id != SIMULATED_PLATFORM or kind not in SIMULATED_KINDS:
        raise ValueError(f"engine run {run_id} ({kind} on {platform_id}) is not a simulated run: nothing is closed")
    portfolio = Portfolio(conn, platform_id, mode, account_ref=account_ref)
    closed, realized_total = 0, ZERO
    for pos in portfolio.open_positions():
        if int(pos.metadata.get("run_id") or 0) != run_id:
            continue
        with conn.transaction():
            qty, price, realized, before = _close_position(pos, at)
            portfolio.save(pos, at)
            conn.execute(
                "INSERT INTO position_exits (position_id, exit_condition, exit_priority, quantity_exited, exit_price, "
                "realized_pnl, unrealized_pnl_at_exit, exit_metadata) VALUES (%s, %s, 'LOW', %s, %s, %s, %s, %s)",
                (pos.position_id, EXIT_REASON, qty, price, realized, before,
                 jsonb({"run_id": run_id, "why": why, "strategy_id": pos.strategy_id, "model_id": pos.model_id,
                        "method_id": pos.method_id})))
        closed += 1
        realized_total += realized
    store = OrderStore(conn)
    orders = 0
    for rec in store.open_orders(platform_id):
        if rec.run_id != run_id:
            continue
        # an order that never reached the exchange is rejected; one the exchange held goes with the exchange
        new = OrderState.REJECTED if rec.status is OrderState.CREATED else OrderState.CANCELED
        store.transition(rec, new, reason=f"the simulated exchange ended with its run: {why}"[:500])
        orders += 1
    if closed or orders:
        conn.execute("UPDATE engine_runs SET ended_at = coalesce(ended_at, %s), "
                     "summary = coalesce(summary, '{}'::jsonb) || %s WHERE run_id = %s",
                     (at, jsonb({"simulation_ended": {"why": why, "positions_closed": closed,
                                                      "realized_pnl": str(realized_total), "orders_closed": orders}}),
                      run_id))
    else:
        conn.execute("UPDATE engine_runs SET ended_at = coalesce(ended_at, %s) WHERE run_id = %s", (at, run_id))
    return EndedRun(run_id, closed, realized_total, orders)


def end_abandoned_runs(conn: psycopg.Connection[Any], *, keep: int | None = None) -> list[EndedRun]:
    """End the simulated runs whose process is gone and which left positions or orders open (`keep`: a run of
    this process, never touched). Returns what was ended."""
    # one pass over the open positions and orders of the simulated platform, then their runs
    candidates = conn.execute(
        "WITH open_runs AS (SELECT (p.position_metadata->>'run_id')::bigint AS run_id FROM positions p "
        "  WHERE p.row_current_ind AND p.status = 'open' AND p.platform_id = %s "
        "  UNION SELECT o.run_id FROM orders o WHERE o.platform_id = %s AND o.status = ANY(%s)) "
        "SELECT r.run_id, r.ended_at IS NOT NULL FROM engine_runs r JOIN open_runs u ON u.run_id = r.run_id "
        "WHERE r.platform_id = %s AND r.kind = ANY(%s) AND r.run_id IS DISTINCT FROM %s ORDER BY r.run_id",
        (SIMULATED_PLATFORM, SIMULATED_PLATFORM, [s.value for s in OPEN_STATES], SIMULATED_PLATFORM,
         list(SIMULATED_KINDS), keep)).fetchall()
    ended: list[EndedRun] = []
    for run_id, stopped in candidates:
        if not stopped:
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", _lock_key(run_id)).fetchone()
            if not (got and got[0]):
                continue  # its process is still running
        try:
            why = "its process stopped without ending it" if not stopped else "it stopped with positions open"
            ended.append(end_simulated_run(conn, run_id, why=why))
        finally:
            if not stopped:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", _lock_key(run_id))
    return ended
