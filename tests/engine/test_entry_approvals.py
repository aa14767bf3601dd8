"""Manual approval of entries (spec 5.2, ADR-009), on the real engine against the local exchange.

trading.manual_approval.mode `always` gates the rig's paper loop as `prod` gates a live one on Kalshi
production: an entry is kept as one pending row (never an order) until a person approves it; an approved one is
sent once, under the row's client_order_id, only if the market and every check still allow it; rejected and
expired rows send nothing and hold no exposure; exits never wait.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.conftest import TICKER2, Rig, rig_config
from precog.trading.approvals import ApprovalDecisionError, decide

ALWAYS = {"trading.manual_approval.mode": "always"}


def _rig(make_rig: Any, **changes: Any) -> Rig:
    rig: Rig = make_rig(rig_config(**{**ALWAYS, **changes}))
    return rig


def _rows(rig: Rig) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT approval_id, status, market_id, side, count, limit_price, client_order_id, "
                    "not_sent_reason, reserved_cost FROM entry_approvals ORDER BY approval_id")


def _entry_orders(rig: Rig) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT client_order_id, market_id, quantity, limit_price FROM orders WHERE purpose = 'entry' "
                    "ORDER BY id")


def _exchange_buys(rig: Rig) -> int:
    return sum(1 for o in rig.exchange.account("us").orders.values() if o.action == "buy")


async def _pending(rig: Rig, steps: int = 6) -> tuple[Any, ...]:
    """The maker quotes 0.49/0.50, the model says 0.62: an entry the loop wants, held for approval."""
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    for _ in range(steps):  # 30 simulated seconds: two decision intervals, well inside the 120 s timeout
        await rig.step()
    rows = _rows(rig)
    assert len(rows) == 1, rows
    return rows[0]


async def test_an_entry_waits_for_approval_once_then_goes_out_once_with_its_own_client_order_id(
        make_rig: Any) -> None:
    rig = _rig(make_rig)
    row = await _pending(rig)
    approval_id, status, market, side, count, limit, cid = row[:7]
    assert (status, market, side) == ("pending", rig.ticker, "yes") and count > 0 and limit == Decimal("0.50")
    assert _entry_orders(rig) == [] and _exchange_buys(rig) == 0, "an entry went out without approval"
    alerts = rig.rows("SELECT severity, source_id, message FROM alerts WHERE alert_type = 'entry_approval_pending'")
    assert len(alerts) == 1 and alerts[0][:2] == ("high", approval_id)
    assert f"precog approvals approve {approval_id}" in alerts[0][2]

    decide(rig.conn, approval_id, approve=True, by="alice")
    await rig.run_until(lambda: rig.open_positions())
    for _ in range(6):
        await rig.step()
    orders = _entry_orders(rig)
    assert len(orders) == 1 and _exchange_buys(rig) == 1, orders
    assert orders[0][0] == cid and orders[0][2] <= count and orders[0][3] <= limit
    assert rig.rows("SELECT status, decided_by, client_order_id FROM entry_approvals") == [("submitted", "alice", cid)]
    assert rig.venue_position() == orders[0][2]


async def test_a_rejected_entry_sends_nothing_frees_its_reservation_and_is_not_asked_again(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id = (await _pending(rig))[0]
    engine = rig.engine
    assert engine is not None and engine.entry_risk is not None
    risk = engine.entry_risk.risk
    assert risk.book.total > 0, "a pending entry holds its cost against the exposure limits"
    decide(rig.conn, approval_id, approve=False, by="alice", reason="injury news")
    for _ in range(8):
        await rig.step()
    assert _entry_orders(rig) == [] and _exchange_buys(rig) == 0
    assert rig.rows("SELECT status, decided_by, reason FROM entry_approvals") == [
        ("rejected", "alice", "injury news")]
    assert risk.book.total == 0 and risk.reserved_cash == 0
    assert engine.stats.entries_refused.get("approval_rejected", 0) >= 1


async def test_an_unanswered_entry_expires_and_sends_nothing(make_rig: Any) -> None:
    rig = _rig(make_rig, **{"trading.manual_approval.timeout_seconds": 30})
    approval_id = (await _pending(rig, steps=2))[0]
    for _ in range(8):  # 40 s more: past the 30 s timeout
        await rig.step()
    first = rig.rows("SELECT status, reason FROM entry_approvals WHERE approval_id = %s", approval_id)
    assert first == [("expired", "not approved before it expired")]
    assert _entry_orders(rig) == [] and _exchange_buys(rig) == 0
    with pytest.raises(ApprovalDecisionError, match="is expired"):  # an answer after the expiry is refused
        decide(rig.conn, approval_id, approve=True, by="alice")


async def test_an_approved_entry_whose_price_moved_past_the_approved_limit_is_not_sent(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id, *_rest = await _pending(rig)
    rig.quote("0.50", "0.52")  # still an edge for the model, but above the approved 0.50
    decide(rig.conn, approval_id, approve=True, by="alice")
    for _ in range(8):
        await rig.step()
    assert _entry_orders(rig) == [] and _exchange_buys(rig) == 0
    status, reason = rig.rows("SELECT status, not_sent_reason FROM entry_approvals")[0]
    assert status == "approved" and reason == "price 0.52 is above the approved limit 0.5000", reason
    rig.quote("0.49", "0.50")  # back within the approval: it goes out
    await rig.run_until(lambda: rig.open_positions())
    assert len(_entry_orders(rig)) == 1


async def test_a_breaker_tripped_after_the_approval_stops_the_entry(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id = (await _pending(rig))[0]
    decide(rig.conn, approval_id, approve=True, by="alice")
    assert rig.engine is not None
    rig.engine.trip("daily_loss_limit", {"pnl": "-600", "limit": "500"})
    for _ in range(8):
        await rig.step()
    assert _entry_orders(rig) == [] and _exchange_buys(rig) == 0
    assert rig.rows("SELECT status, not_sent_reason FROM entry_approvals") == [("approved", "trading state HALTED")]


async def test_entries_approved_together_stay_within_the_exposure_caps(make_rig: Any) -> None:
    # total exposure 1000: the NFL share (0.60) is 600 and one position may take 500, so two full-size entries
    # (one per game) would be 1,000 > 600 if a pending entry held nothing
    rig: Rig = make_rig(rig_config(**ALWAYS, **{"trading.account.max_total_exposure_dollars": Decimal("1000")}),
                        second_market=True)
    rig.quote("0.49", "0.50")
    rig.quote("0.49", "0.50", ticker=TICKER2)
    rig.probs.p[rig.ticker] = rig.probs.p[TICKER2] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    for _ in range(4):
        await rig.step()
    rows = _rows(rig)
    assert [r[1] for r in rows] == ["pending", "pending"] and {r[2] for r in rows} == {rig.ticker, TICKER2}
    assert sum(r[8] for r in rows) <= Decimal("600"), rows
    for r in rows:
        decide(rig.conn, r[0], approve=True, by="alice")
    await rig.run_until(lambda: len(rig.open_positions()) == 2)
    for _ in range(4):
        await rig.step()
    committed = sum(p.cost_basis for p in rig.open_positions())
    assert committed <= Decimal("600"), committed
    assert [r[1] for r in _rows(rig)] == ["submitted", "submitted"] and len(_entry_orders(rig)) == 2


async def test_a_stop_loss_never_waits_for_approval(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id = (await _pending(rig))[0]
    decide(rig.conn, approval_id, approve=True, by="alice")
    await rig.run_until(lambda: rig.open_positions())
    pos = rig.open_positions()[0]
    rig.probs.p[rig.ticker] = Decimal("0.50")  # no new entry wanted meanwhile
    rig.quote("0.40", "0.42")  # -20% at the bid: past the stop loss
    await rig.run_until(lambda: not rig.open_positions(), max_steps=10)
    exits = rig.rows("SELECT exit_condition FROM position_exits WHERE position_id = %s", pos.position_id)
    assert exits and {e[0] for e in exits} == {"stop_loss"}
    assert rig.venue_position() == 0
    assert [r[1] for r in _rows(rig)] == ["submitted"], "the exit asked for an approval"


async def test_a_restart_after_a_crash_between_sending_and_recording_sends_nothing_twice(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id, *_rest = await _pending(rig)
    cid = _rest[5]
    decide(rig.conn, approval_id, approve=True, by="alice")
    await rig.run_until(lambda: rig.open_positions())
    # the process died after the order went out and before the approval was marked sent
    rig.conn.execute("UPDATE entry_approvals SET status = 'approved', submitted_at = NULL WHERE approval_id = %s",
                     (approval_id,))
    engine = rig.make_engine()  # a new process on the same account
    await engine.start()
    for _ in range(8):
        await rig.step()
    assert _exchange_buys(rig) == 1 and [o[0] for o in _entry_orders(rig)] == [cid]
    assert rig.rows("SELECT status FROM entry_approvals") == [("submitted",)]
    assert len(rig.open_positions()) == 1


async def test_an_approval_given_while_the_loop_was_down_is_sent_once_after_the_restart(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id, *_rest = await _pending(rig)
    cid = _rest[5]
    decide(rig.conn, approval_id, approve=True, by="alice")
    engine = rig.make_engine()  # the first loop stopped before its next cycle; a new one takes over
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    for _ in range(6):
        await rig.step()
    assert _exchange_buys(rig) == 1 and [o[0] for o in _entry_orders(rig)] == [cid]
