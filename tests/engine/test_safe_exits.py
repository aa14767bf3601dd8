"""Exits that are safe (issue 8): a full exit first cancels the position's resting entry remainder, the decision
layer's positions get their edge recomputed from the model that opened them, and `precog run` checks a
near-threshold position every 5 s even when its full cycle is longer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from engine.conftest import rig_config
from precog.engine.runner import run_loop


def _entry_orders(rig: Any) -> list[Any]:
    return [o for o in rig.engine.store.conn.execute(
        "SELECT id, venue_order_id, status, quantity, filled_quantity FROM orders WHERE purpose = 'entry' "
        "ORDER BY id").fetchall()]


def _reasons(rig: Any, order_id: int) -> list[tuple[str, str | None]]:
    return rig.rows("SELECT to_status, reason FROM order_events WHERE order_id = %s ORDER BY event_id", order_id)


async def _partial_entry(rig: Any) -> tuple[Any, Any]:
    """An entry limit order at 0.50 of which only 10 contracts fill; the rest rests on the book."""
    rig.quote("0.49", None)
    asks = [rig.exchange.place_order("mm", rig.ticker, "no", "buy", 10, Decimal("0.50")),  # YES ask 0.50, only 10
            rig.exchange.place_order("mm", rig.ticker, "no", "buy", 2000, Decimal("0.48"))]  # then 0.52
    rig.mm_orders[rig.ticker].extend(o.order_id for o in asks)  # the next quote() replaces them
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    (pos,) = rig.open_positions()
    (entry,) = _entry_orders(rig)
    assert pos.quantity == 10 and entry[4] == 10 and entry[3] > 10
    assert rig.exchange.get_order("us", entry[1]).status == "resting"
    return pos, entry


async def test_a_full_exit_cancels_the_resting_entry_remainder_first(make_rig: Any) -> None:
    rig = make_rig(rig_config(**{"trading.execution.limit_order_timeout_seconds": 600}))
    pos, entry = await _partial_entry(rig)
    rig.probs.p[rig.ticker] = Decimal("0.30")  # the model no longer believes in it: edge_disappeared, full
    await rig.run_until(lambda: rig.engine.exits.jobs.get(pos.position_id), max_steps=8)
    job = rig.engine.exits.jobs.get(pos.position_id)
    assert job is not None and job.condition == "edge_disappeared" and job.full
    # the remainder is canceled at the exchange, with the reason recorded as an order transition
    assert rig.exchange.get_order("us", entry[1]).status == "canceled"
    assert ("cancel_pending", "position exiting: edge_disappeared") in _reasons(rig, entry[0])
    assert rig.rows("SELECT status FROM orders WHERE id = %s", entry[0]) == [("canceled",)]
    # the maker now sells at the old entry price: nothing of ours is there to fill, no position appears
    rig.exchange.place_order("mm", rig.ticker, "no", "buy", 500, Decimal("0.50"))
    await rig.step()
    positions = rig.rows("SELECT DISTINCT position_id FROM positions")
    assert positions == [(pos.position_id,)]
    assert rig.engine.portfolio.get(pos.position_id).quantity <= 10  # type: ignore[union-attr]
    ours = sum(p.quantity if p.side == "yes" else -p.quantity for p in rig.open_positions())
    assert ours == rig.venue_position()


async def test_a_partial_exit_leaves_the_entry_resting(make_rig: Any) -> None:
    rig = make_rig(rig_config(**{"trading.execution.limit_order_timeout_seconds": 600}))
    pos, entry = await _partial_entry(rig)
    rig.probs.p[rig.ticker] = Decimal("0.95")  # the edge stays healthy
    rig.quote("0.58", "0.60")  # +16%: the first partial-exit stage (50% of the position)
    await rig.run_until(lambda: rig.engine.exits.jobs.get(pos.position_id), max_steps=8)
    job = rig.engine.exits.jobs.get(pos.position_id)
    assert job is not None and job.condition == "partial_exit_target" and not job.full
    assert rig.exchange.get_order("us", entry[1]).status == "resting"
    assert all("position exiting" not in (r or "") for _, r in _reasons(rig, entry[0]))


async def test_a_close_all_breaker_cancels_every_resting_entry(make_rig: Any) -> None:
    rig = make_rig(rig_config(**{"trading.execution.limit_order_timeout_seconds": 600}))
    pos, entry = await _partial_entry(rig)
    rig.engine.trip("daily_loss_limit", {"test": True})
    await rig.step()
    assert rig.exchange.get_order("us", entry[1]).status == "canceled"
    assert ("cancel_pending", "position exiting: circuit_breaker") in _reasons(rig, entry[0])
    await rig.run_until(lambda: not rig.open_positions(), max_steps=10)
    assert rig.rows("SELECT DISTINCT exit_condition FROM position_exits") == [("circuit_breaker",)]
    assert rig.venue_position() == 0


async def test_decision_layer_positions_exit_when_the_model_drops_below_the_exit_price(db_url: str) -> None:
    from engine.conftest import rig_config as cfg_of
    from precog.engine.core import Engine
    from precog.engine.decision_planner import DecisionPlanner, PlannerForecasts
    from precog.engine.local_venue import LocalVenue
    from trading.trading_dbkit import BUF, KC, create_testing_method, seed_world, world_exchange

    world = seed_world(db_url, probability="0.75")
    create_testing_method(world.conn)
    ex, mm = world_exchange()
    conn = psycopg.connect(db_url, autocommit=True)
    cfg = cfg_of()
    planner = DecisionPlanner(conn, cfg, lambda: psycopg.connect(db_url, autocommit=True), mode="paper")
    now = [datetime.now(UTC)]
    engine = Engine(conn, LocalVenue(ex, "us"), config=cfg, mode="paper", kind="test", methods=[],
                    probabilities=PlannerForecasts(planner), markets=[], clock=lambda: now[0],
                    initial_cash=Decimal("10000"), planner=planner)
    await engine.start()
    await engine.step()
    positions = sorted(engine.portfolio.open_positions(), key=lambda p: p.market_id != KC)
    assert [(p.market_id, p.side) for p in positions] == [(KC, "yes"), (BUF, "no")]  # P(KC) 0.75 both ways
    await engine.step()
    # the model still backs the positions: a healthy edge, no exit
    for pos in positions:
        edge = engine._recomputed_edge(pos, now[0])
        assert edge is not None and edge > Decimal("0.10"), (pos.market_id, edge)
    assert not engine.exits.jobs

    # the game moves and the model re-run on it now says Buffalo (P(KC wins) 0.30): below every exit price
    (unit,) = planner.units.units
    unit.model.model.probability = Decimal("0.3000")
    world.conn.execute("SET session_replication_role = replica")  # the stored state in place (SCD2 set-up)
    world.conn.execute("UPDATE game_states SET status = 'live', period = 2, home_score = 0, away_score = 14 "
                       "WHERE row_current_ind")
    world.conn.execute("SET session_replication_role = origin")
    kept, dropped = positions
    # a market filtered out of the scan (closed in the database) has no estimate: its position is left alone
    world.set_market(BUF, bid="0.46", ask="0.47", status="closed")
    now[0] += timedelta(seconds=16)
    await engine.step()  # the decision scan (every 15 s) re-runs the model on the new game state
    assert not engine.exits.jobs  # the positions' next check is due 30 s after the last
    p_kc = planner.position_probability(KC, "yes", model_id=world.model_id, strategy_id=kept.strategy_id,
                                        method_id=kept.method_id)
    assert p_kc is not None and p_kc < Decimal("0.35")
    planner.refresh_forecasts({KC})  # the re-run used while no scan runs gives the same belief
    assert planner.position_probability(KC, "yes", model_id=world.model_id, strategy_id=kept.strategy_id,
                                        method_id=kept.method_id) == p_kc
    now[0] += timedelta(seconds=16)
    await engine.step()
    job = engine.exits.jobs.get(kept.position_id)
    assert job is not None and job.condition in ("edge_disappeared", "early_exit") and job.priority == "LOW"
    assert engine._recomputed_edge(kept, now[0]) < 0  # type: ignore[operator]
    assert planner.position_probability(BUF, "no", model_id=world.model_id, strategy_id=dropped.strategy_id,
                                        method_id=dropped.method_id) is None
    assert engine._recomputed_edge(dropped, now[0]) is None
    assert dropped.position_id not in engine.exits.jobs and dropped.is_open
    # the maker takes our exit offer: the exit is recorded with its reason and attempt
    side = kept.side
    price = job.order.limit_price  # type: ignore[union-attr]
    ex.cancel_order("mm", mm[kept.market_id, "no" if side == "yes" else "yes"])  # its offer at the same price
    ex.place_order("mm", kept.market_id, side, "buy", kept.quantity, price)
    for _ in range(3):
        now[0] += timedelta(seconds=5)
        await engine.step()
    exits = conn.execute("SELECT exit_condition, exit_priority, quantity_exited FROM position_exits "
                         "WHERE position_id = %s", (kept.position_id,)).fetchall()
    assert exits and {e[0] for e in exits} == {job.condition} and sum(e[2] for e in exits) == kept.initial_quantity
    attempts = conn.execute("SELECT exit_condition, success FROM exit_attempts WHERE position_id = %s",
                            (kept.position_id,)).fetchall()
    assert attempts == [(job.condition, True)]
    assert engine.portfolio.get(kept.position_id).status == "closed"  # type: ignore[union-attr]
    conn.close()
    world.conn.close()


async def test_precog_run_checks_a_near_threshold_position_every_5_s_with_a_15_s_cycle(make_rig: Any) -> None:
    rig = make_rig()
    engine = await rig.engine_with_position()
    rig.quote("0.44", "0.45")  # -12%: within 2 points of the stop -> urgent (5 s)
    await rig.step(30)
    assert engine.monitor.is_urgent(rig.open_positions()[0])

    def sim_seconds() -> float:
        return rig.clock.now_ms() / 1000

    async def sim_sleep(stop: asyncio.Event, seconds: float) -> None:
        rig.clock.advance(seconds)
        rig.exchange.tick()

    checks: list[tuple[float, int]] = []
    steps: list[tuple[float, int]] = []

    def record(_elapsed: float) -> None:
        checks.append((sim_seconds(), engine.monitor.checks))
        steps.append((sim_seconds(), engine.stats.steps))

    await run_loop(engine, interval_s=15, venue_label="test", before_step=record, duration_s=61,
                   monotonic=sim_seconds, sleep=sim_sleep)
    start = checks[0][0]
    # when a check ran: the wake-ups after which the count had grown
    checked_at = [t - start for (t, n), (_, n_next) in zip(checks, checks[1:], strict=False) if n_next > n]
    stepped_at = [t - start for (t, n), (_, n_next) in zip(steps, steps[1:], strict=False) if n_next > n]
    assert len(stepped_at) in (4, 5)  # full cycles every 15 s
    assert all(abs((b - a) - 15) < 0.01 for a, b in zip(stepped_at, stepped_at[1:], strict=False))
    assert len(checked_at) >= 11  # the position every 5 s, not once a cycle
    gaps = [b - a for a, b in zip(checked_at, checked_at[1:], strict=False)]
    assert all(abs(g - 5) < 0.01 for g in gaps), gaps
    assert rig.open_positions()  # still held: near the stop, not past it


async def test_a_stop_crossed_between_full_cycles_exits_within_5_s(make_rig: Any) -> None:
    rig = make_rig()
    engine = await rig.engine_with_position()
    (pos,) = rig.open_positions()
    rig.quote("0.44", "0.45")  # near the stop: checked every 5 s
    await rig.step(30)
    start = rig.clock.now_ms() / 1000
    moved: list[float] = []
    exited: list[float] = []

    def sim_seconds() -> float:
        return rig.clock.now_ms() / 1000

    async def sim_sleep(stop: asyncio.Event, seconds: float) -> None:
        rig.clock.advance(seconds)
        rig.exchange.tick()
        if not moved and sim_seconds() - start >= 17:
            rig.quote("0.40", "0.42")  # past the stop, 2 s after a full cycle (they run at 0, 15, 30 s)
            moved.append(sim_seconds())

    def record(_elapsed: float) -> None:
        job = engine.exits.jobs.get(pos.position_id)
        if not exited and job is not None:
            exited.append(job.started_at.timestamp())

    await run_loop(engine, interval_s=15, venue_label="test", before_step=record, duration_s=40,
                   monotonic=sim_seconds, sleep=sim_sleep)
    assert moved and exited
    assert exited[0] - moved[0] <= 5 + 0.01, (moved, exited)  # not at the next full cycle, 10 s later
    assert engine.portfolio.get(pos.position_id).status == "closed"  # type: ignore[union-attr]
    assert rig.rows("SELECT DISTINCT exit_condition FROM position_exits") == [("stop_loss",)]
