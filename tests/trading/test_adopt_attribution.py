"""An order adopted from the venue (our row was lost) keeps its attribution: method, position, exit stage.

The row of an order can be lost after the venue took it: the database server crashed right after the row was
written (`synchronous_commit = off`: the commit had not reached disk). Reconciliation then finds the order at
the venue and adopts it. It used to come back as `purpose = adopted` with no method, no position and no exit
stage: an entry's fills were no longer attributed to the method that placed it, and a partial-exit stage's
sale was not counted in the position's `stage_sold`, so the stage was sent again on what was left (sold more
than the plan). Our client_order_id now carries that attribution (`orders.derive_client_order_id` with
`OrderTags`) and `Executor.adopt` restores it, trusting a position only when it is ours in that market.

The crash is simulated for real: the moment the local exchange takes our order, another session deletes the
order's row and terminates the engine's database connection; the engine reconnects on its own and reconciles.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.engine.alert_sink import TableAlertSink
from precog.trading.orders import OrderTags, derive_client_order_id, parse_client_order_id
from precog.venues.exchange.engine import ExchangeEvent

# lowercase letters, digits and '-' (a UUID's alphabet: Kalshi documents no rule), within the column's 64
VENUE_ID = re.compile(r"[a-z0-9-]{1,64}")


# ------------------------------------------------------------------------------------------ the id format

def test_tagged_ids_round_trip_and_stay_within_the_venue_limit() -> None:
    entry = derive_client_order_id("entry", "paper|us|method=12|market=X|side=yes|buy|t=1", OrderTags(
        "entry", method_id=12))
    assert entry.startswith("pce-m12-") and VENUE_ID.fullmatch(entry)
    assert parse_client_order_id(entry) == OrderTags("entry", method_id=12)
    assert entry == derive_client_order_id("entry", "paper|us|method=12|market=X|side=yes|buy|t=1",
                                           OrderTags("entry", method_id=12))  # deterministic
    assert entry != derive_client_order_id("entry", "paper|us|method=12|market=X|side=yes|buy|t=2",
                                           OrderTags("entry", method_id=12))
    planner = OrderTags("entry", strategy_id=3, model_id=7)
    assert parse_client_order_id(derive_client_order_id("entry", "k", planner)) == planner
    stage = OrderTags("exit", position_id=345, exit_condition="partial_exit_target", stage="first_target",
                      stage_quantity=50, attempt=2)
    cid = derive_client_order_id("exit", "paper|us|pos=345|cond=partial_exit_target|stage=first_target", stage)
    assert cid.startswith("pcx-p345-sfirstxytarget-q50-a2-") and VENUE_ID.fullmatch(cid)  # '_' escaped
    assert len(cid.rsplit("-", 1)[1]) >= 24  # the digest keeps at least 96 bits
    assert parse_client_order_id(cid) == stage
    for name in ("x", "Stage_X_2", "max_exit", "xy", "ABC"):  # the escape round-trips any configured name
        tagged = OrderTags("exit", position_id=1, exit_condition="partial_exit_target", stage=name, stage_quantity=1)
        cid = derive_client_order_id("exit", "k", tagged)
        assert VENUE_ID.fullmatch(cid) and parse_client_order_id(cid) == tagged, (name, cid)


def test_large_ids_stay_within_64_characters_keeping_the_position() -> None:
    big = OrderTags("exit", position_id=9_223_372_036_854_775_807, exit_condition="partial_exit_target",
                    stage="a_long_stage_name_12345", stage_quantity=2_147_483_647, attempt=99_999)
    cid = derive_client_order_id("exit", "key", big)
    assert VENUE_ID.fullmatch(cid) and len(cid.rsplit("-", 1)[1]) >= 24
    parsed = parse_client_order_id(cid)
    assert parsed is not None and parsed.position_id == big.position_id
    assert parsed.exit_condition == "partial_exit_target"
    # a large but real position id keeps the whole stage
    real = OrderTags("exit", position_id=1_234_567_890, exit_condition="partial_exit_target",
                     stage="second_target", stage_quantity=12_500, attempt=3)
    cid = derive_client_order_id("exit", "key", real)
    parsed = parse_client_order_id(cid)
    assert VENUE_ID.fullmatch(cid) and parsed is not None
    assert (parsed.position_id, parsed.exit_condition, parsed.stage, parsed.stage_quantity) == (
        1_234_567_890, "partial_exit_target", "second_target", 12_500)
    other = OrderTags("exit", position_id=345, exit_condition="stop_loss", attempt=1)
    assert derive_client_order_id("exit", "key", other).startswith("pcx-p345-csl-a1-")
    assert parse_client_order_id(derive_client_order_id("exit", "key", other)) == other
    entry = OrderTags("entry", method_id=2_147_483_647)
    assert parse_client_order_id(derive_client_order_id("entry", "key", entry)) == entry


def test_ids_of_the_first_format_and_foreign_ids_parse_as_unknown() -> None:
    old = derive_client_order_id("exit", "paper|us|pos=1|cond=stop_loss")
    assert re.fullmatch(r"pce-[0-9a-f]{40}", old)  # unchanged: orders in flight across an upgrade
    for cid in (old, "manual-1", "pce-died-before-send", "adopted-abc", "pcx-p1-zz-" + "0" * 32, "pcx-p1",
                "pcq-m1-" + "0" * 32, "pce-m1-m2-" + "0" * 32, ""):
        assert parse_client_order_id(cid) is None, cid


# ------------------------------------------------------------------------------------------ adoption

def _lose_the_row_of_our_next(rig: Any, admin: psycopg.Connection[Any], action: str) -> list[str]:
    """When the venue takes our next `action` order: its row vanishes and the engine's connection dies."""
    engine_pid = rig.engine.conn.info.backend_pid
    lost: list[str] = []

    def crash(event: ExchangeEvent) -> None:
        o = event.data.get("order")
        if event.kind == "order" and event.data.get("user_id") == "us" and o.action == action and not lost:
            lost.append(o.client_order_id)
            # the rows never reached disk: gone without a trace (order_events' append-only trigger is not asked)
            admin.execute("SET session_replication_role = replica")
            admin.execute("DELETE FROM order_events WHERE order_id IN "
                          "(SELECT id FROM orders WHERE client_order_id = %s)", (o.client_order_id,))
            admin.execute("DELETE FROM orders WHERE client_order_id = %s", (o.client_order_id,))
            admin.execute("SELECT pg_terminate_backend(%s)", (engine_pid,))

    rig.exchange.add_listener(crash)
    return lost


async def test_lost_entry_row_is_adopted_with_its_method(make_rig: Any, db_url: str) -> None:  # noqa: F811
    rig = make_rig()
    admin = psycopg.connect(db_url, autocommit=True)
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    await engine.start()
    lost = _lose_the_row_of_our_next(rig, admin, "buy")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    with pytest.raises(psycopg.OperationalError):
        await rig.run_until(lambda: False, max_steps=10)
    assert len(lost) == 1
    tags = parse_client_order_id(lost[0])
    assert tags is not None and tags.purpose == "entry" and tags.method_id is not None
    await rig.run_until(lambda: rig.open_positions())  # reconnect, reconcile: the order adopted, its fill booked
    method = admin.execute("SELECT strategy_id, model_id FROM methods WHERE method_id = %s",
                           (tags.method_id,)).fetchone()
    order = admin.execute("SELECT purpose, method_id, strategy_id, model_id, position_id FROM orders "
                          "WHERE client_order_id = %s", (lost[0],)).fetchone()
    assert order[:4] == ("entry", tags.method_id, *method), order
    position = admin.execute("SELECT method_id, strategy_id, model_id FROM positions WHERE row_current_ind "
                             "AND position_id = %s", (order[4],)).fetchone()
    assert position == (tags.method_id, *method)
    assert admin.execute("SELECT DISTINCT method_id FROM trades WHERE client_order_id = %s",
                         (lost[0],)).fetchall() == [(tags.method_id,)]
    details = admin.execute("SELECT details FROM alerts WHERE alert_type = 'order_adopted'").fetchone()[0]
    assert details["restored"]["method_id"] == tags.method_id and details["warnings"] == []
    assert rig.venue_position() == sum(p.quantity for p in rig.open_positions())
    admin.close()


def _our_sells(rig: Any) -> list[Any]:
    return [o for o in rig.exchange.account("us").orders.values() if o.action == "sell"]


async def test_lost_exit_stage_row_counts_the_stage_and_does_not_sell_it_again(
        make_rig: Any, db_url: str) -> None:  # noqa: F811
    rig = make_rig()
    admin = psycopg.connect(db_url, autocommit=True)
    await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    qty, stage_qty = pos.quantity, pos.quantity * 50 // 100
    rig.probs.p[rig.ticker] = Decimal("0.95")  # the edge stays: no early exit
    lost = _lose_the_row_of_our_next(rig, admin, "sell")
    rig.quote("0.58", "0.61")  # +16 %: first_target; its attempt rests at the mid, 0.60
    with pytest.raises(psycopg.OperationalError):
        await rig.run_until(lambda: False, max_steps=10)
    assert len(lost) == 1 and len(_our_sells(rig)) == 1
    tags = parse_client_order_id(lost[0])
    assert tags is not None and (tags.position_id, tags.stage) == (pos.position_id, "first_target")
    # while the database is away, a buyer takes the whole stage at 0.60
    rig.exchange.place_order("mm", rig.ticker, "yes", "buy", stage_qty, Decimal("0.60"))
    for _ in range(12):  # reconnect, reconcile (the order adopted, its fill booked), then keep checking at +16 %
        await rig.step()
    sells = _our_sells(rig)
    assert len(sells) == 1, (
        f"{len(sells)} sell orders for one stage: " + ", ".join(f"{o.initial_count} {o.status}" for o in sells))
    assert rig.venue_position() == qty - stage_qty
    p = rig.engine.portfolio.get(pos.position_id)
    assert p is not None and p.quantity == qty - stage_qty
    assert p.stage_sold == {"first_target": stage_qty} and "first_target" in p.executed_stages
    order = admin.execute("SELECT purpose, position_id, exit_condition, exit_priority, metadata->>'stage' "
                          "FROM orders WHERE client_order_id = %s", (lost[0],)).fetchone()
    assert order == ("exit", pos.position_id, "partial_exit_target", "MEDIUM", "first_target")
    assert admin.execute("SELECT partial_stage, sum(quantity_exited) FROM position_exits WHERE position_id = %s "
                         "GROUP BY partial_stage", (pos.position_id,)).fetchall() == [("first_target", stage_qty)]
    admin.close()


async def test_adopted_stage_order_left_resting_at_a_restart_is_canceled_not_doubled(
        make_rig: Any, db_url: str) -> None:  # noqa: F811
    """The process died with the stage's order resting (10 sold); the restarted one adopts it, counts the 10,
    cancels the rest like any order a dead process left, and the stage then sells only what it has left."""
    rig = make_rig()
    admin = psycopg.connect(db_url, autocommit=True)
    await rig.engine_with_position("0.80")
    pos = rig.open_positions()[0]
    qty, stage_qty = pos.quantity, pos.quantity * 50 // 100
    rig.probs.p[rig.ticker] = Decimal("0.95")
    lost = _lose_the_row_of_our_next(rig, admin, "sell")
    rig.quote("0.58", "0.61")
    with pytest.raises(psycopg.OperationalError):
        await rig.run_until(lambda: False, max_steps=10)
    assert len(lost) == 1
    rig.exchange.place_order("mm", rig.ticker, "yes", "buy", 10, Decimal("0.60"))  # 10 of the stage sell
    rig.conn = psycopg.connect(db_url, autocommit=True)  # a new process on the same database and account
    rig.alerts = TableAlertSink(rig.conn, "test")
    engine = rig.make_engine()
    rep = await engine.start()
    assert rep.ok and rep.orders_adopted == 1 and rep.stale_orders_canceled == 1
    assert engine.portfolio.get(pos.position_id).stage_sold == {"first_target": 10}
    for _ in range(4):  # the stage's rest is sent again, and only once: the adopted order no longer works beside it
        await rig.step()
        working = sum(o.remaining for o in _our_sells(rig) if o.status == "resting")
        assert working <= stage_qty - 10, f"{working} contracts offered for the {stage_qty - 10} the stage has left"
    rig.quote("0.60", "0.61")  # +20 %: still first_target only, a bid the stage's attempts reach
    await rig.run_until(lambda: "first_target" in engine.portfolio.get(pos.position_id).executed_stages)
    for _ in range(6):
        await rig.step()
    assert sum(o.fill_count for o in _our_sells(rig)) == stage_qty
    p = engine.portfolio.get(pos.position_id)
    assert p.quantity == qty - stage_qty == rig.venue_position()
    assert p.stage_sold == {"first_target": stage_qty} and "first_target" in p.executed_stages
    orphan = admin.execute("SELECT exit_condition, filled_quantity FROM exit_attempts WHERE order_id = "
                           "(SELECT venue_order_id FROM orders WHERE client_order_id = %s)", (lost[0],)).fetchall()
    assert orphan == [("partial_exit_target", 10)]
    rig.conn.close()
    admin.close()


async def test_old_format_id_adopts_as_before(make_rig: Any) -> None:  # noqa: F811
    """An id without tags (the first format, or an order placed by hand) is adopted as `adopted`, unattributed,
    and a restart does not cancel it (it is not known to be one of ours)."""
    rig = make_rig()
    rig.quote("0.49", "0.50")
    old = derive_client_order_id("entry", f"paper|us|method=1|market={rig.ticker}|side=yes|buy|t=1")
    rig.exchange.place_order("us", rig.ticker, "yes", "buy", 5, Decimal("0.30"), client_order_id=old)
    engine = rig.make_engine()
    rep = await engine.start()
    assert rep.ok and rep.orders_adopted == 1 and rep.stale_orders_canceled == 0
    assert rig.rows("SELECT purpose, method_id, position_id, status FROM orders WHERE client_order_id = %s",
                    old) == [("adopted", None, None, "resting")]
    details = rig.rows("SELECT details FROM alerts WHERE alert_type = 'order_adopted'")[0][0]
    assert details["restored"] == {"purpose": "adopted"} and details["warnings"] == []


async def test_position_named_by_the_id_is_checked_not_trusted(make_rig: Any) -> None:  # noqa: F811
    """A tagged exit naming a position that does not exist, or one in another market, is adopted without that
    position and stage (booked as before, against the open position of its market), with a warning."""
    rig = make_rig(second_market=True)
    engine = await rig.engine_with_position("0.62")
    pos = rig.open_positions()[0]
    rig.quote("0.55", "0.56", ticker="KXNFLGAME-TEST-MIAJET-NYJ")
    for position_id, ticker, why in ((987_654, rig.ticker, "does not exist"),
                                     (pos.position_id, "KXNFLGAME-TEST-MIAJET-NYJ", "the order sells")):
        cid = derive_client_order_id("exit", f"{position_id}|{ticker}", OrderTags(
            "exit", position_id=position_id, exit_condition="partial_exit_target", stage="first_target",
            stage_quantity=5, attempt=1))
        vo = rig.exchange.place_order("us", ticker, "yes", "sell", 1, Decimal("0.99"), client_order_id=cid) \
            if ticker == rig.ticker else rig.exchange.place_order("us", ticker, "no", "buy", 1, Decimal("0.01"),
                                                                  client_order_id=cid)
        rec = await engine.executor.adopt(vo.order_id)
        assert rec.position_id is None and "stage" not in rec.metadata, rec
        details = rig.rows("SELECT details FROM alerts WHERE alert_type = 'order_adopted' AND "
                           "details->>'client_order_id' = %s", cid)[0][0]
        assert details["warnings"], details
        if ticker == rig.ticker:
            assert why in details["warnings"][0] and rec.purpose == "exit"
            assert rec.exit_condition == "partial_exit_target" and rec.exit_priority == "MEDIUM"
        else:  # a buy under an exit's id: not restored at all
            assert rec.purpose == "adopted" and "buy" in details["warnings"][0]


async def test_an_adopted_resting_entry_of_ours_is_canceled_at_the_next_cycle(make_rig: Any,  # noqa: F811
                                                                              db_url: str) -> None:
    # a process sent this entry and lost its row before the answer (a resting limit below the market): adopted
    # while the engine runs, it must not rest at the venue indefinitely on a price nobody decided any more
    rig = make_rig()
    rig.quote("0.49", "0.51")
    engine = rig.make_engine()
    await engine.start()
    method_id = engine.methods[0].method_id
    cid = derive_client_order_id("entry", "lost|decision", OrderTags("entry", method_id=method_id))
    order = rig.exchange.place_order("us", rig.ticker, "yes", "buy", 10, Decimal("0.40"), client_order_id=cid)
    rec = await engine.executor.adopt(order.order_id)
    assert (rec.purpose, rec.method_id) == ("entry", method_id) and rec.status.value == "resting"
    await rig.step()
    assert rig.exchange.get_order("us", order.order_id).status == "canceled"
    reasons = rig.rows("SELECT e.to_status, e.reason FROM order_events e JOIN orders o ON o.id = e.order_id "
                       "WHERE o.client_order_id = %s ORDER BY e.event_id", cid)
    assert reasons[-1][0] == "canceled" and any("timed out" in (r or "") for _, r in reasons), reasons
    await engine.stop()
