"""Spec §5.5-§5.9 boundaries through the real engine, the local exchange and PostgreSQL, for YES and NO
positions: the stop loss holds at its threshold and fires just past it, a NO position's trailing stop follows
the NO bid (never the YES price), the first partial stage fires at exactly +15 % and sells half of the
original quantity, each walk of a MEDIUM exit waits 15 s after the first attempt's 30 s, and a position near
its next exit threshold is checked every 5 s."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.conftest import make_rig, rig_config  # noqa: F401  (fixture)
from precog.domain.order import Action, Fill, Side
from precog.trading.orders import OrderRecord, OrderState
from precog.trading.portfolio import Portfolio, PositionState

D = Decimal


async def _enter(rig: Any, bid: str, ask: str, p_yes: str, side: str, entry: str) -> PositionState:
    rig.quote(bid, ask)
    rig.probs.p[rig.ticker] = D(p_yes)
    engine = rig.engine or rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    (pos,) = rig.open_positions()
    assert (pos.side, pos.entry_price, pos.metadata.get("confidence")) == (side, D(entry), "medium")
    return pos


def _exits(rig: Any, position_id: int) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT exit_condition, exit_priority, quantity_exited, exit_price FROM position_exits "
                    "WHERE position_id = %s ORDER BY exit_id", position_id)


async def _hold(rig: Any, steps: int = 8) -> None:
    for _ in range(steps):
        await rig.step()


# ------------------------------------------------------------------ stop loss: pct < -0.12 (medium), YES and NO

async def test_yes_stop_loss_holds_at_minus_12_pct_and_fires_below(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    pos = await _enter(rig, "0.49", "0.50", "0.62", "yes", "0.50")
    rig.quote("0.44", "0.45")  # bid 0.44: exactly -12 %, the medium stop: not past it
    await _hold(rig)
    assert rig.open_positions() and not rig.engine.exits.jobs
    assert rig.engine.monitor.is_urgent(rig.open_positions()[0])  # within 2 points: checked every 5 s
    rig.quote("0.43", "0.44")  # -14 %
    await rig.run_until(lambda: not rig.open_positions(), max_steps=6)
    exits = _exits(rig, pos.position_id)
    assert {e[:2] for e in exits} == {("stop_loss", "CRITICAL")}
    assert sum(e[2] for e in exits) == pos.initial_quantity


async def test_no_stop_loss_holds_at_minus_12_pct_and_fires_below(make_rig: Any) -> None:  # noqa: F811
    """A NO position is marked at the NO bid (1 - YES ask): a YES ask of 0.56 is a NO bid of 0.44."""
    rig = make_rig()
    pos = await _enter(rig, "0.50", "0.51", "0.30", "no", "0.50")
    rig.quote("0.55", "0.56")  # NO bid 0.44: exactly -12 %
    await _hold(rig)
    (held,) = rig.open_positions()
    assert held.current_price == D("0.44") and held.unrealized_pnl_pct == D("-0.1200")
    assert not rig.engine.exits.jobs
    rig.quote("0.56", "0.57")  # NO bid 0.43: -14 %
    await rig.run_until(lambda: not rig.open_positions(), max_steps=6)
    exits = _exits(rig, pos.position_id)
    assert {e[:2] for e in exits} == {("stop_loss", "CRITICAL")}
    assert sum(e[2] for e in exits) == pos.initial_quantity
    assert rig.venue_position() == 0


# ------------------------------------------------------------------ trailing stop of a NO position

async def test_a_no_positions_trailing_stop_follows_the_no_bid(make_rig: Any) -> None:  # noqa: F811
    """Entry NO at 0.51. The NO bid rising to 0.57 (+11.8 %) arms the stop at 0.57 x 0.95; a new NO high of
    0.59 (+15.7 %: one tightening step) lifts it to 0.59 x 0.96; the YES price rising back (NO bid 0.57) leaves
    it there; the NO bid at 0.56 (<= 0.5664) is the HIGH trailing_stop exit. Partial exits are off so the
    stop is the only profit-side exit, and the 20 % profit target is never reached."""
    rig = make_rig(rig_config(**{"position_management.partial_exits.enabled": False}))
    pos = await _enter(rig, "0.49", "0.50", "0.30", "no", "0.51")

    def state() -> dict[str, Any]:
        return rig.engine.portfolio.get(pos.position_id).trailing_stop_state  # type: ignore[union-attr]

    rig.quote("0.42", "0.43")  # NO bid 0.57
    await _hold(rig)
    st = state()
    assert st["active"] is True and D(st["peak_price"]) == D("0.57")
    assert D(st["current_stop_price"]) == D("0.5415") and D(st["current_distance"]) == D("0.05")
    rig.quote("0.40", "0.41")  # NO bid 0.59: a new high
    await _hold(rig)
    st = state()
    assert D(st["peak_price"]) == D("0.59") and D(st["current_distance"]) == D("0.04")
    assert D(st["current_stop_price"]) == D("0.5664")
    rig.quote("0.42", "0.43")  # YES up, NO down to 0.57: above the stop, which does not move
    await _hold(rig)
    assert D(state()["current_stop_price"]) == D("0.5664") and rig.open_positions()
    assert not rig.engine.exits.jobs
    rig.quote("0.43", "0.44")  # NO bid 0.56 <= 0.5664
    await rig.run_until(lambda: not rig.open_positions(), max_steps=12)
    exits = _exits(rig, pos.position_id)
    assert {e[:2] for e in exits} == {("trailing_stop", "HIGH")}
    assert sum(e[2] for e in exits) == pos.initial_quantity
    closed = rig.engine.portfolio.get(pos.position_id)
    assert closed.status == "closed" and closed.exit_reason == "trailing_stop" and closed.realized_pnl > 0
    assert rig.venue_position() == 0


# ------------------------------------------------------------------ partial exits: exactly +15 %, original quantity

async def test_first_stage_fires_at_exactly_15_pct_and_sells_half_the_original(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    pos = await _enter(rig, "0.59", "0.60", "0.80", "yes", "0.60")
    qty = pos.initial_quantity
    rig.probs.p[rig.ticker] = D("0.95")  # keep the recomputed edge healthy
    rig.quote("0.68", "0.69")  # +13.3 %: under the first stage
    await _hold(rig)
    assert not rig.engine.exits.jobs and rig.open_positions()[0].quantity == qty
    rig.quote("0.69", "0.70")  # +15.00 % exactly
    await rig.run_until(lambda: "first_target" in rig.engine.portfolio.get(pos.position_id).executed_stages,
                        max_steps=30)
    p = rig.engine.portfolio.get(pos.position_id)
    assert p.quantity == qty - qty * 50 // 100 and p.initial_quantity == qty
    assert rig.rows("SELECT exit_condition, exit_priority, partial_stage, sum(quantity_exited) FROM position_exits "
                    "WHERE position_id = %s GROUP BY 1, 2, 3", pos.position_id) == [
        ("partial_exit_target", "MEDIUM", "first_target", qty * 50 // 100)]
    assert rig.venue_position() == p.quantity


# ------------------------------------------------------------------ walks wait 15 s after the first 30 s (MEDIUM)

async def test_a_medium_exit_walks_after_15_s_each(make_rig: Any) -> None:  # noqa: F811
    """Profit target (partial exits off) at +20 % with a 0.60/0.63 book: the fair start 0.62 rests 30 s, the
    first walk (0.61) rests 15 s, the second walk (0.59, under the bid) fills. Spec §5.9: walk_price waits 15 s
    per walk; the exit is done 45 s after its first attempt, not 60 s."""
    rig = make_rig(rig_config(**{"position_management.partial_exits.enabled": False}))
    pos = await _enter(rig, "0.49", "0.50", "0.62", "yes", "0.50")
    rig.probs.p[rig.ticker] = D("0.95")
    rig.quote("0.60", "0.63")
    await rig.run_until(lambda: rig.engine.exits.jobs.get(pos.position_id), max_steps=8)
    started = rig.now()
    await rig.run_until(lambda: not rig.open_positions(), max_steps=20)
    took = (rig.now() - started).total_seconds()
    attempts = rig.rows("SELECT attempt_number, limit_price, timeout_seconds, success FROM exit_attempts "
                        "WHERE position_id = %s ORDER BY attempt_id", pos.position_id)
    assert attempts == [(1, D("0.62"), D("30.000"), False), (2, D("0.61"), D("15.000"), False),
                        (3, D("0.59"), D("15.000"), True)]
    assert 45 <= took <= 50, took
    assert {e[:2] for e in _exits(rig, pos.position_id)} == {("profit_target", "MEDIUM")}


async def test_a_liquidity_exit_walks_three_times_then_goes_to_market(make_rig: Any) -> None:  # noqa: F811
    """HIGH liquidity_dried_up (bid size 10 < 50): the aggressive start (bid 0.46 -> 0.45) rests 15 s after
    selling the 10 bid, then 3 walks of 1.5, 2.0, 2.5 cents (down to the cent) wait 10 s each into an empty book, then market
    attempts (immediate-or-cancel) until a bid shows; the stop loss never triggers (-8 %)."""
    rig = make_rig()
    pos = await _enter(rig, "0.49", "0.50", "0.62", "yes", "0.50")
    qty = pos.initial_quantity
    rig.quote("0.46", "0.48", size=10)
    await rig.run_until(lambda: rig.engine.exits.jobs.get(pos.position_id), max_steps=8)
    job = rig.engine.exits.jobs[pos.position_id]
    assert (job.condition, job.priority, job.policy.max_walks) == ("liquidity_dried_up", "HIGH", 3)
    for _ in range(14):  # 70 s: 15 + 3 x 10 s of limits, then market attempts every 10 s into nobody
        await rig.step()
    rig.quote("0.44", "0.48")  # a deep bid shows: the next market attempt sells the rest
    await rig.run_until(lambda: not rig.open_positions(), max_steps=6)
    attempts = rig.rows("SELECT order_type, limit_price, timeout_seconds, filled_quantity FROM exit_attempts "
                        "WHERE position_id = %s ORDER BY attempt_id", pos.position_id)
    assert attempts[:4] == [("limit", D("0.45"), D("15.000"), 10), ("limit", D("0.43"), D("10.000"), 0),
                            ("limit", D("0.41"), D("10.000"), 0), ("limit", D("0.38"), D("10.000"), 0)]
    assert all(a[0] == "market" and a[1] == D("0.01") and a[2] == D("10.000") for a in attempts[4:])
    assert attempts[-1][3] == qty - 10 and sum(a[3] for a in attempts) == qty
    exits = _exits(rig, pos.position_id)
    assert {e[:2] for e in exits} == {("liquidity_dried_up", "HIGH")} and exits[-1][3] == D("0.44")
    assert rig.venue_position() == 0


# ------------------------------------------------------------------ §5.5 cadence: near the NEXT exit threshold

def _detached(entry: str, bid: str, rig: Any, **meta: Any) -> PositionState:
    pos = PositionState(position_id=-1, market_id=rig.ticker, platform_id="local", side="yes", mode="paper",
                        entry_price=D(entry), quantity=100, initial_quantity=100, cost_basis=D(entry) * 100,
                        metadata={"confidence": "medium", "executed_stages": [], **meta})
    rig.engine.portfolio.mark(pos, D(bid), datetime.now(UTC))
    return pos


async def test_urgency_boundaries_of_the_stop_loss_and_trailing_stop(make_rig: Any) -> None:  # noqa: F811
    rig = make_rig()
    rig.make_engine()
    urgent = rig.engine.monitor.is_urgent
    assert not urgent(_detached("0.50", "0.45", rig))  # -10 %: exactly stop (-12 %) + 2 points
    assert urgent(_detached("0.50", "0.4499", rig))
    # the mark stored on the position is rounded to 4 places: -0.10004 is stored as -0.1000 but is past -0.10
    near = _detached("0.50", "0.44998", rig)
    assert near.unrealized_pnl_pct == D("-0.1000")
    assert urgent(near)
    active = {"active": True, "current_stop_price": "0.5880", "peak_price": "0.60"}
    pos = _detached("0.55", "0.60", rig)  # +9 %: far from the targets; (0.60 - 0.588) / 0.60 = exactly 2 %
    pos.trailing_stop_state = active
    assert not urgent(pos)
    pos = _detached("0.55", "0.5999", rig)
    pos.trailing_stop_state = active
    assert urgent(pos)


async def test_a_position_near_its_next_partial_stage_is_checked_every_5_s(make_rig: Any) -> None:  # noqa: F811
    """With partial exits on, the profit taken next is the next stage's (+15 %), not the 20 % profit target:
    2 points under it the position is checked every 5 s, as it would be near the target (spec §5.5)."""
    rig = make_rig()
    rig.make_engine()
    urgent = rig.engine.monitor.is_urgent
    assert not urgent(_detached("0.50", "0.565", rig))  # +13 %: exactly 2 points under the stage
    assert urgent(_detached("0.50", "0.5651", rig))
    assert urgent(_detached("0.50", "0.57", rig))
    # the first stage done, the next is the second (+25 %): +14 % is far from it (and from the 20 % target)
    done = _detached("0.50", "0.57", rig, executed_stages=["first_target"], stage_sold={"first_target": 50})
    done.quantity = 50
    assert not urgent(done)
    assert urgent(_detached("0.50", "0.6151", rig, executed_stages=["first_target"],
                            stage_sold={"first_target": 50}))


# ------------------------------------------------------------------ §5.8 worked example, booked in PostgreSQL

def _order(oid: int, action: str, position_id: int | None, qty: int, condition: str | None = None,
           stage: str | None = None, stage_qty: int | None = None) -> OrderRecord:
    entry = action == "buy"
    return OrderRecord(
        id=oid, client_order_id=f"c{oid}", venue_order_id=f"v{oid}", run_id=None, platform_id="kalshi",
        market_id="KXNFLGAME-SPEC-NEBUF-BUF", position_id=position_id, purpose="entry" if entry else "exit",
        side="yes", action=action, order_type="limit", time_in_force="gtc", limit_price=D("0.60"), quantity=qty,
        filled_quantity=0, fees=D("0"), status=OrderState.RESTING, mode="paper", exit_condition=condition,
        exit_priority=None if entry else ("MEDIUM" if condition == "partial_exit_target" else "HIGH"),
        metadata={} if stage is None else {"stage": stage, "stage_quantity": stage_qty})


def _fill(fid: str, action: Action, count: int, price: str) -> Fill:
    p = D(price)
    return Fill(fill_id=fid, trade_id=fid, order_id="v", ticker="KXNFLGAME-SPEC-NEBUF-BUF", side=Side.YES,
                action=action, count=D(count), yes_price=p, no_price=1 - p, is_taker=False, fee=D("0"))


def test_the_spec_worked_example_of_partial_exits(conn: Any) -> None:
    """100 @ 0.60 -> 50 @ 0.69 (+$4.50) -> 25 @ 0.75 (+$3.75) -> 25 @ 0.88 (+$7.00); realized accumulates, each
    exit is a position_exits row and a new position version (fees zero, as in the example)."""
    conn.autocommit = True
    book = Portfolio(conn, "kalshi", "paper")
    t = datetime(2026, 1, 1, 18, tzinfo=UTC)
    pos = book.book_fill(_fill("f1", Action.BUY, 100, "0.60"), _order(1, "buy", None, 100), t).position  # type: ignore[union-attr]
    pid = pos.position_id
    steps = [("f2", 50, "0.69", "partial_exit_target", "first_target", 50, D("4.50")),
             ("f3", 25, "0.75", "partial_exit_target", "second_target", 25, D("3.75")),
             ("f4", 25, "0.88", "trailing_stop", None, None, D("7.00"))]
    for i, (fid, qty, price, cond, stage, stage_qty, pnl) in enumerate(steps, start=2):
        out = book.book_fill(_fill(fid, Action.SELL, qty, price), _order(i, "sell", pid, qty, cond, stage, stage_qty), t)
        assert out is not None and out.realized == pnl
    final = book.get(pid)
    assert final is not None and final.status == "closed" and final.quantity == 0
    assert final.realized_pnl == D("15.25") and final.executed_stages == frozenset({"first_target", "second_target"})
    rows = conn.execute("SELECT exit_condition, partial_stage, quantity_exited, realized_pnl FROM position_exits "
                        "WHERE position_id = %s ORDER BY exit_id", (pid,)).fetchall()
    assert rows == [("partial_exit_target", "first_target", 50, D("4.5000")),
                    ("partial_exit_target", "second_target", 25, D("3.7500")),
                    ("trailing_stop", None, 25, D("7.0000"))]
    versions = conn.execute("SELECT quantity FROM positions WHERE position_id = %s ORDER BY id",
                            (pid,)).fetchall()
    assert [v[0] for v in versions] == [100, 50, 25, 0]
