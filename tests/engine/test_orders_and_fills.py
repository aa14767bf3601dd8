"""Order state machine, idempotent client order ids, unknown outcomes, partial fills, settlement, reconciliation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.conftest import CASH, rig_config
from precog.domain.money import ZERO
from precog.trading.orders import (
    IllegalTransition,
    OrderRecord,
    OrderState,
    OrderStore,
    check_transition,
    derive_client_order_id,
)

S = OrderState


def test_transitions_follow_the_machine() -> None:
    check_transition(S.CREATED, S.SUBMITTED)
    check_transition(S.SUBMITTED, S.PARTIALLY_FILLED)
    check_transition(S.PARTIALLY_FILLED, S.CANCEL_PENDING)
    check_transition(S.UNRESOLVED, S.FILLED)
    for bad in ((S.CREATED, S.FILLED), (S.FILLED, S.CANCELED), (S.CANCELED, S.RESTING), (S.REJECTED, S.SUBMITTED)):
        with pytest.raises(IllegalTransition, match=f"{bad[0]} -> {bad[1]}"):
            check_transition(*bad)


def test_client_order_id_is_derived_from_the_decision() -> None:
    a = derive_client_order_id("entry", "method=1|market=X|side=yes|buy|t=5")
    assert a == derive_client_order_id("entry", "method=1|market=X|side=yes|buy|t=5")
    assert a != derive_client_order_id("entry", "method=1|market=X|side=yes|buy|t=6")
    assert len(a) <= 64 and a.replace("-", "").isalnum()


def _rec(cid: str) -> OrderRecord:
    return OrderRecord(id=0, client_order_id=cid, venue_order_id=None, run_id=None, platform_id="local",
                       market_id="M", position_id=None, purpose="entry", side="yes", action="buy", order_type="limit",
                       time_in_force="good_till_canceled", limit_price=Decimal("0.50"), quantity=10,
                       filled_quantity=0, fees=ZERO, status=S.CREATED, mode="paper")


def test_store_is_idempotent_and_records_every_transition(conn: Any) -> None:
    conn.autocommit = True
    store = OrderStore(conn)
    rec = store.create(_rec("pce-abc"))
    again = store.create(_rec("pce-abc"))
    assert again.id == rec.id and conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    store.transition(rec, S.SUBMITTED, venue_order_id="v1")
    store.transition(rec, S.RESTING)
    store.transition(rec, S.PARTIALLY_FILLED, filled_quantity=4)
    store.transition(rec, S.PARTIALLY_FILLED, filled_quantity=7)
    store.transition(rec, S.CANCEL_PENDING)
    store.transition(rec, S.CANCELED)
    with pytest.raises(IllegalTransition):
        store.transition(rec, S.RESTING)
    assert [(e["from_status"], e["to_status"], e["filled_quantity"]) for e in store.events(rec.id)] == [
        (None, "created", 0), ("created", "submitted", 0), ("submitted", "resting", 0),
        ("resting", "partially_filled", 4), ("partially_filled", "partially_filled", 7),
        ("partially_filled", "cancel_pending", 7), ("cancel_pending", "canceled", 7)]
    with pytest.raises(Exception, match="append-only"):
        conn.execute("DELETE FROM order_events")


async def test_partial_fills_update_the_position_on_each_fill(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50", size=300)  # less than the ~881 contracts Kelly wants
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    pos = rig.open_positions()[0]
    assert pos.quantity == 300
    order = next(o for o in engine.executor.open.values() if o.purpose == "entry")
    assert order.status is S.PARTIALLY_FILLED and order.filled_quantity == 300
    rig.exchange.place_order("mm", rig.ticker, "no", "buy", 200, Decimal("0.50"))  # more size arrives
    await rig.step()
    assert rig.open_positions()[0].quantity == 500 and order.filled_quantity == 500
    await rig.run_until(lambda: order.status is S.CANCELED, max_steps=10)  # 30 s entry timeout
    events = [(e["to_status"], e["filled_quantity"]) for e in engine.store.events(order.id)]
    assert events == [("created", 0), ("submitted", 0), ("partially_filled", 300), ("partially_filled", 500),
                      ("cancel_pending", 500), ("canceled", 500)]
    assert rig.venue_position() == 500
    assert rig.rows("SELECT count(*), sum(quantity) FROM trades") == [(2, 500)]


async def test_lost_answer_is_resolved_by_client_order_id(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    rig.venue.lose_next_answer = True  # the venue processes the order, the answer never arrives
    await rig.run_until(lambda: rig.open_positions())
    (oid,) = rig.rows("SELECT id FROM orders")[0]
    events = [e["to_status"] for e in engine.store.events(oid)]
    assert events[:3] == ["created", "unresolved", "submitted"] and events[-1] == "filled"
    assert len(rig.exchange.account("us").orders) == 1  # one order at the venue, not two


async def test_a_repeated_decision_sends_nothing_twice(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    from precog.trading.executor import OrderIntent

    intent = OrderIntent(market_id=rig.ticker, side="yes", action="buy", quantity=10, limit_price=Decimal("0.45"),
                         purpose="entry", decision_key="method=1|same-decision",
                         approval=await _approval(rig, engine, 10))
    a = await engine.executor.submit(intent)
    b = await engine.executor.submit(intent)
    assert a.client_order_id == b.client_order_id
    assert len(rig.exchange.account("us").orders) == 1


async def test_a_decision_stored_under_an_earlier_id_format_is_not_sent_again(make_rig: Any) -> None:
    """A process upgraded within one decision's time bucket re-derives the decision's id in the new format; the
    order the previous version stored (and sent) under the first format is that decision's order, not a reason
    to send a second one."""
    rig = make_rig()
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()
    from precog.trading.executor import OrderIntent

    intent = OrderIntent(market_id=rig.ticker, side="yes", action="buy", quantity=10, limit_price=Decimal("0.45"),
                         purpose="entry", decision_key="method=1|upgraded-decision", method_id=None,
                         approval=await _approval(rig, engine, 10))
    first_format = derive_client_order_id("entry", f"paper|{engine.venue.account_ref}|{intent.decision_key}")
    assert engine.executor.client_order_id(intent) != first_format  # the id formats differ
    # what the previous version did: stored the order under its id and sent it
    sent = rig.exchange.place_order("us", rig.ticker, "yes", "buy", 10, Decimal("0.45"),
                                    client_order_id=first_format)
    stored = engine.store.create(OrderRecord(
        id=0, client_order_id=first_format, venue_order_id=None, run_id=None, platform_id=engine.venue.platform_id,
        market_id=rig.ticker, position_id=None, purpose="entry", side="yes", action="buy", order_type="limit",
        time_in_force="good_till_canceled", limit_price=Decimal("0.45"), quantity=10, filled_quantity=0, fees=ZERO,
        status=S.CREATED, mode="paper", decision_key=intent.decision_key))
    engine.store.transition(stored, S.RESTING, via=S.SUBMITTED, venue_order_id=sent.order_id)
    engine.conn.commit()
    rec = await engine.executor.submit(intent)
    assert (rec.client_order_id, rec.status) == (first_format, S.RESTING)
    assert len(rig.exchange.account("us").orders) == 1  # nothing sent under the new id
    assert rig.rows("SELECT count(*) FROM orders")[0][0] == 1


async def _approval(rig: Any, engine: Any, quantity: int) -> Any:
    """An Approval from the engine's RiskManager for buying `quantity` YES at the current ask."""
    from precog.engine import entries

    m = await engine.venue.market(rig.ticker)
    fee = engine.fees.fee(1, m.yes_ask)
    p = Decimal("0.70")
    plan = entries.EntryPlan("yes", quantity, m.yes_ask, "limit", "good_till_canceled",
                             entries.Edge("yes", p, m.yes_ask, fee, p - m.yes_ask - fee))
    engine.entry_risk.load_units(engine.methods)
    engine.entry_risk.sync([], Decimal("10000"))
    approval = engine.entry_risk.approve(plan, m, engine.methods[0], event_id=m.event_ticker, sport="nfl",
                                         confidence="medium", now=rig.now().timestamp())
    assert approval.approved, approval
    return approval


async def test_the_executor_refuses_an_entry_without_a_valid_approval(make_rig: Any) -> None:
    """Spec 5.2: no entry order reaches the venue without the RiskManager's approval, used once, unexpired,
    for that market, side, size and price."""
    from precog.trading.executor import OrderIntent
    from precog.trading.risk import ApprovalError

    rig = make_rig()
    rig.quote("0.49", "0.50")
    engine = rig.make_engine()

    def entry(key: str, approval: Any, quantity: int = 10, side: str = "yes") -> OrderIntent:
        return OrderIntent(market_id=rig.ticker, side=side, action="buy", quantity=quantity,
                           limit_price=Decimal("0.45"), purpose="entry", decision_key=key, approval=approval)

    with pytest.raises(ApprovalError, match="needs an Approval"):
        await engine.executor.submit(entry("k1", None))
    approval = await _approval(rig, engine, 10)
    with pytest.raises(ApprovalError, match="covers 10"):
        await engine.executor.submit(entry("k2", approval, quantity=11))
    with pytest.raises(ApprovalError, match="not buy no"):
        await engine.executor.submit(entry("k3", approval, side="no"))
    assert (await engine.executor.submit(entry("k4", approval))).venue_order_id is not None
    with pytest.raises(ApprovalError, match="already used"):  # single use: a second decision needs a new one
        await engine.executor.submit(entry("k5", approval))
    expired = await _approval(rig, engine, 5)
    rig.clock.advance(engine.entry_risk.risk.settings.approval_ttl_seconds + 1)
    with pytest.raises(ApprovalError, match="expired"):
        await engine.executor.submit(entry("k6", expired, quantity=5))
    assert len(rig.exchange.account("us").orders) == 1  # only the approved order reached the venue
    statuses = dict(rig.rows("SELECT decision_key, status FROM orders WHERE purpose = 'entry'"))
    assert statuses == {"k4": statuses["k4"], "k5": "rejected", "k6": "rejected"}


@pytest.mark.parametrize("value", ["1", "0", "0.5", "0.37"])
async def test_settlement_closes_positions_at_the_settlement_value(make_rig: Any, value: str) -> None:
    rig = make_rig()
    engine = await rig.engine_with_position()
    pos = rig.open_positions()[0]
    qty, cost = pos.quantity, pos.cost_basis
    rig.exchange.determine_market(rig.ticker, Decimal(value))  # the market settles (no timer: paid at once)
    await rig.run_until(lambda: not rig.open_positions(), max_steps=3)
    (payout, realized, outcome, sval, squantity) = rig.rows(
        "SELECT payout, realized_pnl, outcome, settlement_value, quantity FROM settlements")[0]
    expected = (Decimal(value) * qty).quantize(Decimal("0.01"), rounding="ROUND_FLOOR")
    assert payout == expected and squantity == qty and sval == Decimal(value)
    assert outcome == {"1": "yes", "0": "no"}.get(value, "scalar")
    assert realized == expected - cost
    final = engine.portfolio.get(pos.position_id)
    assert final.status == "settled" and final.exit_reason == "settlement" and final.realized_pnl == realized
    # cash and contracts reconcile with the exchange to the cent
    assert CASH + engine.our_cash_delta() == rig.exchange.account("us").balance
    assert rig.venue_position() == 0
    assert CASH + realized == rig.exchange.account("us").balance


async def test_startup_reconciliation_adopts_orders_and_books_missed_fills(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    # while we were "down", an order of ours was placed and filled at the venue (e.g. by a crashed process)
    rig.exchange.place_order("us", rig.ticker, "yes", "buy", 20, Decimal("0.50"), client_order_id="manual-1")
    rig.exchange.place_order("us", rig.ticker, "yes", "buy", 5, Decimal("0.30"), client_order_id="manual-2")
    engine = rig.make_engine()
    rep = await engine.start()
    assert rep.orders_adopted >= 1 and rep.fills_booked == 1 and rep.ok
    assert engine.trading_state == "ACTIVE"
    assert sum(p.quantity for p in rig.open_positions()) == 20 == rig.venue_position()
    adopted = rig.rows("SELECT client_order_id, purpose, status FROM orders ORDER BY client_order_id")
    assert ("manual-1", "adopted", "filled") in adopted
    assert ("manual-2", "adopted", "resting") in adopted  # adopted and managed from now on
    assert rig.rows("SELECT count(*) FROM alerts WHERE alert_type = 'order_adopted'")[0][0] == 2
    # a later fill of the adopted order is booked like any other
    rig.quote(None, "0.50")  # the market maker's bid steps aside; someone sells to our resting 0.30 bid
    rig.exchange.create_account("seller", Decimal("100"))
    rig.exchange.place_order("seller", rig.ticker, "no", "buy", 5, Decimal("0.70"))
    await rig.step()
    assert sum(p.quantity for p in rig.open_positions()) == 25 == rig.venue_position()


async def test_unexplained_mismatch_halts_trading_with_a_critical_alert(make_rig: Any) -> None:
    rig = make_rig(rig_config())
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    # the venue loses contracts we never sold (an outside transfer): nothing in our records explains it
    rig.exchange.place_order("mm", rig.ticker, "no", "buy", 1, Decimal("0.60"))
    acct = rig.exchange.account("us")
    acct.positions[rig.ticker].held[0] -= 100  # simulated venue-side discrepancy
    restarted = rig.make_engine()
    rep = await restarted.start()
    assert not rep.ok and rep.mismatches[0]["kind"] == "position"
    assert restarted.trading_state == "HALTED"
    assert rig.rows("SELECT severity FROM alerts WHERE alert_type = 'reconciliation_mismatch'") == [("critical",)]
    assert rig.rows("SELECT breaker_type FROM circuit_breaker_events") == [("reconciliation",)]


async def test_paper_mode_fills_against_the_book_without_sending_orders(make_rig: Any) -> None:
    from precog.engine.paper_venue import PaperVenue

    rig = make_rig()
    rig.venue = PaperVenue(rig.venue, CASH, clock=rig.now)  # real market data, simulated fills
    rig.quote("0.49", "0.50", size=400)
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=20)
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    assert rig.open_positions()[0].quantity == 400  # the size shown at the ask
    for _ in range(5):  # the rest rests; the same displayed size is never taken twice; books agree
        await rig.step()
    assert rig.open_positions()[0].quantity == 400 and engine.trading_state == "ACTIVE"
    rig.quote("0.49", "0.50", size=300)  # a new quote: more size to take
    await rig.step()
    assert rig.open_positions()[0].quantity == 700
    assert len(rig.exchange.account("us").orders) == 0  # nothing reached the exchange
    rig.exchange.determine_market(rig.ticker, Decimal("1"))
    await rig.run_until(lambda: not rig.open_positions(), max_steps=3)
    paper_cash = (await rig.venue.balance()).balance
    assert paper_cash == CASH + engine.our_cash_delta()
    assert rig.rows("SELECT payout FROM settlements") == [(Decimal("700.0000"),)]


async def test_periodic_reconciliation_halts_on_an_unexplained_difference(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=60)
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    for _ in range(14):  # a clean periodic reconciliation changes nothing
        await rig.step()
    assert engine.trading_state == "ACTIVE"
    rig.exchange.account("us").positions[rig.ticker].held[0] -= 7  # contracts vanish at the venue
    await rig.run_until(lambda: engine.trading_state == "HALTED", max_steps=14)
    assert rig.rows("SELECT severity FROM alerts WHERE alert_type = 'reconciliation_mismatch'") == [("critical",)]


async def test_an_order_that_never_left_is_closed_at_startup(make_rig: Any) -> None:
    """The process died between writing the order (created) and sending it: the lookup finds nothing."""
    rig = make_rig()
    first = rig.make_engine()
    rec = first.store.create(OrderRecord(
        id=0, client_order_id="pce-died-before-send", venue_order_id=None, run_id=first.run_id,
        platform_id="local", market_id=rig.ticker, position_id=None, purpose="entry", side="yes", action="buy",
        order_type="limit", time_in_force="good_till_canceled", limit_price=Decimal("0.45"), quantity=10,
        filled_quantity=0, fees=ZERO, status=S.CREATED, mode="paper"))
    restarted = rig.make_engine()
    await restarted.start()
    events = restarted.store.events(rec.id)
    assert [e["to_status"] for e in events] == ["created", "rejected"]
    assert "never reached the venue" in events[-1]["reason"]
    assert len(rig.exchange.account("us").orders) == 0


async def test_the_venue_balance_is_versioned_in_account_balance(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(mode="live")
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    await engine.stop()
    rows = rig.rows("SELECT balance FROM account_balance WHERE platform_id = 'local' AND mode = 'live' "
                    "ORDER BY id")
    assert rows[0][0] == CASH and rows[-1][0] == rig.exchange.account("us").balance < CASH
    assert rig.rows("SELECT count(*) FROM account_balance WHERE row_current_ind")[0][0] == 1


async def test_a_restart_cancels_a_dead_process_exit_order_and_records_the_attempt(make_rig: Any) -> None:
    rig = make_rig()
    first = await rig.engine_with_position()
    rig.probs.p[rig.ticker] = Decimal("0.50")  # early_exit: a LOW limit at the ask, resting
    await rig.run_until(lambda: any(o.purpose == "exit" and o.status is S.RESTING
                                    for o in first.executor.open.values()), max_steps=10)
    restarted = rig.make_engine()  # the first process is gone
    rep = await restarted.start()
    assert rep.stale_orders_canceled == 1
    assert [o for o in rig.exchange.account("us").orders.values() if o.status == "resting"] == []
    (note,) = rig.rows("SELECT attempt_metadata->>'note' FROM exit_attempts")[0]
    assert "canceled at restart" in note
    # the new process exits the position again on its own
    await rig.run_until(lambda: not rig.open_positions(), max_steps=60)


async def test_cash_that_our_books_cannot_explain_halts_trading(make_rig: Any) -> None:
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine(reconcile_interval_s=60)
    rep = await engine.start()
    assert rep.ok
    await rig.run_until(lambda: rig.open_positions())
    for _ in range(14):  # a periodic reconciliation: cash agrees to the cent
        await rig.step()
    assert engine.trading_state == "ACTIVE"
    rig.exchange.deposit("us", Decimal("0.01"))  # one cent nobody booked
    await rig.run_until(lambda: engine.trading_state == "HALTED", max_steps=14)
    details = rig.rows("SELECT details FROM alerts WHERE alert_type = 'reconciliation_mismatch'")[0][0]
    assert details["mismatches"][0]["kind"] == "cash"


async def test_the_loop_enters_only_through_the_risk_manager(make_rig: Any) -> None:
    """The loop's planner proposes; the shared RiskManager decides: a method that is no longer active sends
    nothing (rejection recorded with its check); reactivated, the entry goes out with its approval id."""
    rig = make_rig()
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    method_id = engine.methods[0].method_id
    rig.conn.execute("UPDATE methods SET status = 'inactive' WHERE method_id = %s", (method_id,))
    await engine.start()
    for _ in range(4):
        await rig.step(5)
    assert not rig.open_positions() and not rig.exchange.account("us").orders
    (check, reason), *_ = rig.rows("SELECT check_name, reason FROM risk_rejections WHERE method_id = %s", method_id)
    assert check == "status" and "inactive" in reason
    rig.conn.execute("UPDATE methods SET status = 'active' WHERE method_id = %s", (method_id,))
    await rig.run_until(lambda: rig.open_positions())
    (approval_id,) = rig.rows("SELECT metadata->>'approval_id' FROM orders WHERE purpose = 'entry'")[0]
    assert approval_id
