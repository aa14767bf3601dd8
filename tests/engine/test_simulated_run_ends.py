"""A simulated world that ends before its games do leaves no position open forever.

`precog run --venue local` and `precog demo` trade on an exchange living in their process. A run stopped by
`--duration` or Ctrl-C, or killed, used to leave its positions `open` and its exit orders `resting` for good:
they showed in `precog positions --open`, on the dashboard and in unrealized and today's P&L, and nothing could
ever close them (found by the operator walkthrough). Now a stop ends its world (positions closed at their last
marks, reason `simulation_ended`), and the next simulated run ends the worlds of processes that died.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.domain.money import ZERO
from precog.engine.simulated_runs import (
    end_abandoned_runs,
    end_simulated_run,
    hold_run_lock,
)
from precog.trading.attribution import pnl_by
from precog.trading.orders import OrderRecord, OrderState


async def _run_with_position_and_orders(rig: Any) -> Any:
    """A simulated run holding a position marked at 0.55, with an order resting at the exchange and one it never
    sent (the process stopped between writing the row and sending it)."""
    engine = await rig.engine_with_position(kind="run")
    rig.quote("0.55", "0.57")  # the mark moves: the position is worth more than it cost
    await rig.step()
    for cid, rests in (("pce-resting-1", True), ("pce-unsent-1", False)):
        rec = engine.store.create(OrderRecord(
            id=0, client_order_id=cid, venue_order_id=None, run_id=engine.run_id, platform_id="local",
            market_id=rig.ticker, position_id=None, purpose="entry", side="yes", action="buy", order_type="limit",
            time_in_force="good_till_canceled", limit_price=Decimal("0.30"), quantity=5, filled_quantity=0,
            fees=ZERO, status=OrderState.CREATED, mode="paper"))
        if rests:
            sent = rig.exchange.place_order("us", rig.ticker, "yes", "buy", 5, Decimal("0.30"), client_order_id=cid)
            engine.store.transition(rec, OrderState.RESTING, via=OrderState.SUBMITTED, venue_order_id=sent.order_id)
    return engine


def _once_released(conn: Any, seconds: float = 10.0) -> list[Any]:
    """`end_abandoned_runs` once the server has ended a closed session: a backend exits (releasing its advisory
    locks) shortly after its client disconnects, not at the moment `close()` returns."""
    deadline = time.monotonic() + seconds
    while True:
        ended = end_abandoned_runs(conn, keep=None)
        if ended or time.monotonic() > deadline:
            return ended
        time.sleep(0.05)


def _open_rows(conn: Any, run_id: int) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT position_id, quantity, current_price, unrealized_pnl, realized_pnl FROM positions "
                        "WHERE row_current_ind AND status = 'open' AND (position_metadata->>'run_id')::bigint = %s",
                        (run_id,)).fetchall()


async def test_ending_a_run_closes_its_positions_at_their_marks(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    engine = await _run_with_position_and_orders(rig)
    (pid, qty, mark, unrealized, realized_before), = _open_rows(rig.conn, engine.run_id)
    assert qty > 0 and mark == Decimal("0.55") and unrealized is not None
    total_before = sum(Decimal(r["realized_pnl"]) + Decimal(r["unrealized_pnl"] or 0)
                       for r in pnl_by(rig.conn, "method", run_id=engine.run_id))

    ended = end_simulated_run(rig.conn, engine.run_id, why="test stop")

    assert (ended.positions_closed, ended.realized_pnl) == (1, unrealized)
    assert _open_rows(rig.conn, engine.run_id) == []
    row = rig.rows("SELECT status, exit_reason, exit_price, quantity, realized_pnl, unrealized_pnl FROM positions "
                   "WHERE row_current_ind AND position_id = %s", pid)[0]
    assert row == ("closed", "simulation_ended", Decimal("0.5500"), 0, realized_before + unrealized, 0)
    exits = rig.rows("SELECT exit_condition, quantity_exited, exit_price, realized_pnl, exit_trade_id FROM "
                     "position_exits WHERE position_id = %s", pid)
    assert exits == [("simulation_ended", qty, Decimal("0.5500"), unrealized, None)]
    # what the run made is what it showed before the stop: the mark became realized, to the cent
    rows = pnl_by(rig.conn, "method", run_id=engine.run_id)
    assert sum(Decimal(r["realized_pnl"]) + Decimal(r["unrealized_pnl"] or 0) for r in rows) == total_before
    assert ended.orders_closed == 2
    assert rig.rows("SELECT client_order_id, status FROM orders WHERE client_order_id LIKE 'pce-%%-1' ORDER BY 1") \
        == [("pce-resting-1", "canceled"), ("pce-unsent-1", "rejected")]
    assert rig.rows("SELECT ended_at IS NOT NULL, summary->'simulation_ended'->>'positions_closed' FROM engine_runs "
                    "WHERE run_id = %s", engine.run_id) == [(True, "1")]
    again = end_simulated_run(rig.conn, engine.run_id, why="twice")
    assert (again.positions_closed, again.orders_closed) == (0, 0)  # idempotent


async def test_only_simulated_runs_are_ended(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    engine = await rig.engine_with_position()  # kind 'test': not a simulated world of precog run / demo
    with pytest.raises(ValueError, match="not a simulated run"):
        end_simulated_run(rig.conn, engine.run_id, why="no")
    rig.conn.execute("UPDATE engine_runs SET started_at = now() - interval '1 hour'")
    assert end_abandoned_runs(rig.conn) == []
    assert len(_open_rows(rig.conn, engine.run_id)) == 1


async def test_the_world_of_a_dead_process_is_ended_a_live_one_is_not(make_rig: Any, db_url: str) -> None:  # noqa: F811
    rig = make_rig()
    dead = await rig.engine_with_position(kind="run")
    dead_lock = hold_run_lock(db_url, dead.run_id)
    alive_rig = make_rig()
    alive = await alive_rig.engine_with_position(kind="run")
    alive_lock = hold_run_lock(db_url, alive.run_id)
    try:
        assert end_abandoned_runs(rig.conn) == []  # both processes hold their locks
        dead_lock.close()  # the process died: the server ends its session and releases the lock
        ended = _once_released(rig.conn)
        assert [e.run_id for e in ended] == [dead.run_id] and ended[0].positions_closed == 1
        assert _open_rows(rig.conn, dead.run_id) == []
        assert len(_open_rows(rig.conn, alive.run_id)) == 1
        # however young, a run with a position and no lock is gone: its process took the lock before trading
        alive_lock.close()
        rig.conn.execute("UPDATE engine_runs SET started_at = now() WHERE run_id = %s", (alive.run_id,))
        assert [e.run_id for e in _once_released(rig.conn)] == [alive.run_id]
        assert _open_rows(rig.conn, alive.run_id) == []
    finally:
        for c in (dead_lock, alive_lock):
            c.close()


def _precog(db_url: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PRECOG_DATABASE_URL=db_url, NO_COLOR="1")
    return subprocess.Popen([sys.executable, "-m", "precog", "run", "--venue", "local", "--paper", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(240)
def test_a_killed_run_is_ended_by_the_next_one_and_a_stopped_run_ends_itself(db_url: str) -> None:
    proc = _precog(db_url, "--speed", "200", "--interval", "0.05", "--quiet", "--seed", "4", "--games", "2")
    deadline = time.monotonic() + 120
    with psycopg.connect(db_url, autocommit=True) as conn:
        def open_positions() -> int:
            return int(conn.execute("SELECT count(*) FROM positions WHERE row_current_ind AND status = 'open'")
                       .fetchone()[0])  # type: ignore[index]

        while time.monotonic() < deadline and open_positions() == 0:
            time.sleep(0.3)
        assert open_positions() > 0, "the run never opened a position"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        killed = conn.execute("SELECT run_id FROM engine_runs WHERE kind = 'run'").fetchone()[0]  # type: ignore[index]
        assert conn.execute("SELECT ended_at FROM engine_runs WHERE run_id = %s", (killed,)).fetchone() == (None,)
        left = open_positions()  # restarted at once: the killed world is seconds old, and ended all the same
        second = _precog(db_url, "--speed", "200", "--interval", "0.05", "--quiet", "--seed", "5", "--games", "2",
                         "--duration", "6")
        out, err = second.communicate(timeout=150)
        assert second.returncode == 0, err
        m = re.search(rf"run {killed} \(a simulated world whose process is gone\): (\d+) open position", out)
        assert m and int(m.group(1)) == left, out
        # the killed world's positions are closed, and so is every one the second run left at its --duration
        assert open_positions() == 0, out
        assert conn.execute("SELECT count(*) FROM orders WHERE status IN ('created', 'submitted', 'resting', "
                            "'partially_filled', 'cancel_pending', 'unresolved')").fetchone() == (0,)
        reasons = {r[0] for r in conn.execute("SELECT exit_reason FROM positions WHERE row_current_ind AND "
                                              "(position_metadata->>'run_id')::bigint = %s", (killed,))}
        assert reasons <= {"simulation_ended", "settlement", "stop_loss", "trailing_stop", "profit_target",
                           "partial_exit_target", "early_exit", "edge_disappeared", "time_based_urgent",
                           "liquidity_dried_up", "circuit_breaker"} and "simulation_ended" in reasons
        assert conn.execute("SELECT count(*) FROM engine_runs WHERE ended_at IS NULL").fetchone() == (0,)
