"""An approved entry whose order never reached the venue is not silently lost (ADR-009, manual approval).

Real engine, the embedded PostgreSQL and the local exchange (trading.manual_approval.mode `always` gates the
rig's paper loop as `prod` gates a live one on Kalshi production). The crash is real for the process: the venue
the sending loop talks to stops it at the order create (a BaseException, as a kill: nothing after it runs), either
before the exchange hears of the order or right after it accepted it; or the order endpoints are unreachable, so
the send fails before the exchange saw it. A new engine then starts on the same database and account, as after a
restart. Whatever the window, the exchange ends with at most one order for the approved entry, and an approval
whose order never got there is never left reading `submitted`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.conftest import Rig, rig_config
from precog.domain.order import Order, OrderRequest
from precog.engine.local_venue import LocalVenue
from precog.trading.approvals import decide, list_approvals

NOT_SENT = "entry_approval_not_sent"


class ProcessDied(BaseException):
    """The process stopped here (a kill): not an Exception, so no handler of ours sees it."""


class DyingVenue:
    """The rig's venue, except that the process dies at the next order create: before the exchange hears of it
    (`reaches=False`) or right after the exchange accepted it (`reaches=True`)."""

    def __init__(self, inner: LocalVenue, *, reaches: bool) -> None:
        self.inner = inner
        self.reaches = reaches

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def place_order(self, req: OrderRequest) -> Order:
        if self.reaches:
            await self.inner.place_order(req)
        raise ProcessDied(f"killed while sending {req.client_order_id}")


class OrdersUnreachable:
    """The rig's venue with its order endpoints unreachable: a create and a lookup fail before the exchange sees
    them (a connection refused), market data still answers."""

    def __init__(self, inner: LocalVenue) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def place_order(self, req: OrderRequest) -> Order:
        raise ConnectionRefusedError(f"order endpoint unreachable ({req.client_order_id})")

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        raise ConnectionRefusedError(f"order endpoint unreachable ({client_order_id})")


def _rig(make_rig: Any, **changes: Any) -> Rig:
    rig: Rig = make_rig(rig_config(**{"trading.manual_approval.mode": "always", **changes}))
    return rig


async def _pending(rig: Rig) -> tuple[int, str]:
    """The maker quotes 0.49/0.50, the model says 0.62: an entry the loop wants, held for approval. Returns the
    approval's id and client_order_id."""
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    for _ in range(6):
        await rig.step()
    rows = rig.rows("SELECT approval_id, status, client_order_id FROM entry_approvals")
    assert len(rows) == 1 and rows[0][1] == "pending", rows
    return rows[0][0], rows[0][2]


def _buys(rig: Rig) -> list[str]:
    """The client_order_ids of our account's buy orders at the exchange."""
    return [o.client_order_id for o in rig.exchange.account("us").orders.values() if o.action == "buy"]


def _entry_orders(rig: Rig) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT client_order_id, status, reject_reason FROM orders WHERE purpose = 'entry' ORDER BY id")


def _approval(rig: Rig, approval_id: int) -> tuple[Any, ...]:
    return rig.rows("SELECT status, client_order_id, not_sent_reason, reason FROM entry_approvals "
                    "WHERE approval_id = %s", approval_id)[0]


def _not_sent_alerts(rig: Rig) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT severity, source_id, duplicate_count, message, details FROM alerts "
                    "WHERE alert_type = %s", NOT_SENT)


async def _approved_then_killed(rig: Rig, *, reaches: bool) -> tuple[int, str]:
    """A pending entry approved by alice; the loop sending it dies at the order create. Returns the approval's id
    and the client_order_id its order was written under."""
    real = rig.venue
    rig.venue = DyingVenue(real, reaches=reaches)  # type: ignore[assignment]
    approval_id, cid = await _pending(rig)
    decide(rig.conn, approval_id, approve=True, by="alice")
    died = False
    for _ in range(8):
        try:
            await rig.step()
        except ProcessDied:
            died = True
            break
    assert died, "the approved entry was never sent"
    rig.venue = real
    return approval_id, cid


async def _restart(rig: Rig, steps: int) -> None:
    """A new process on the same database and venue account: startup reconciliation, then `steps` cycles."""
    engine = rig.make_engine()
    await engine.start()
    for _ in range(steps):
        await rig.step()


async def test_an_approved_entry_whose_process_died_before_the_venue_had_it_is_sent_once_under_a_new_id(
        make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id, old = await _approved_then_killed(rig, reaches=False)
    assert _entry_orders(rig) == [(old, "created", None)] and _buys(rig) == []
    assert _approval(rig, approval_id)[:2] == ("approved", old)

    wanted = rig.probs.p.pop(rig.ticker)  # no decision on the first cycle: the row is seen between the two
    engine = rig.make_engine()
    await engine.start()  # reconciliation asks the exchange for `old`: not there, so never placed
    assert _entry_orders(rig)[0][1] == "rejected" and _buys(rig) == []
    await rig.step()
    status, new, note, _reason = _approval(rig, approval_id)
    assert status == "approved" and new != old, "an approval whose order never reached the venue reads sent"
    assert old in note and "never reached the venue" in note and new in note
    listed = {r["approval_id"]: r for r in list_approvals(rig.conn)}  # what `precog approvals list` and the API show
    assert listed[approval_id]["status"] == "approved" and listed[approval_id]["not_sent_reason"] == note

    rig.probs.p[rig.ticker] = wanted
    await rig.run_until(lambda: rig.open_positions())
    for _ in range(6):
        await rig.step()
    assert _buys(rig) == [new], "the approved entry went to the venue other than once, under its new id"
    orders = _entry_orders(rig)
    assert [o[0] for o in orders] == [old, new] and orders[0][1] == "rejected"
    assert orders[0][2].startswith("never reached the venue") and orders[1][1] != "rejected"
    assert _approval(rig, approval_id)[:3] == ("submitted", new, None)
    assert rig.venue_position() == rig.open_positions()[0].quantity > 0

    alerts = _not_sent_alerts(rig)
    assert len(alerts) == 1, alerts
    severity, source_id, repeats, message, details = alerts[0]
    assert (severity, source_id, repeats) == ("high", approval_id, 0)
    assert old in message and new in message and "approved again" in message
    assert details["outcome"] == "resent" and details["client_order_id"] == new

    await _restart(rig, 4)  # a later restart finds nothing to re-send and alerts nothing more
    assert _buys(rig) == [new] and _approval(rig, approval_id)[:2] == ("submitted", new)
    assert [a[2] for a in _not_sent_alerts(rig)] == [0]


async def test_an_approval_expired_by_the_restart_is_expired_saying_why_and_nothing_is_sent(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id, old = await _approved_then_killed(rig, reaches=False)
    expires_at: datetime = rig.rows("SELECT expires_at FROM entry_approvals WHERE approval_id = %s", approval_id)[0][0]
    rig.clock.advance((expires_at - rig.now()).total_seconds() + 60)  # the loop was down past the expiry
    await _restart(rig, 8)

    status, cid, note, reason = _approval(rig, approval_id)
    assert (status, cid) == ("expired", old)
    assert "never reached the venue" in reason and "never reached the venue" in note
    assert _buys(rig) == [], "an expired approval was sent"
    assert [(o[0], o[1]) for o in _entry_orders(rig)] == [(old, "rejected")]
    alerts = _not_sent_alerts(rig)
    assert len(alerts) == 1 and alerts[0][:3] == ("high", approval_id, 0), alerts
    assert "expired" in alerts[0][3] and alerts[0][4]["outcome"] == "expired"


async def test_a_send_that_failed_before_the_venue_saw_it_is_not_left_submitted_after_a_restart(
        make_rig: Any) -> None:
    rig = _rig(make_rig, **{"trading.manual_approval.timeout_seconds": 600})
    real = rig.venue
    rig.venue = OrdersUnreachable(real)  # type: ignore[assignment]
    approval_id, old = await _pending(rig)
    decide(rig.conn, approval_id, approve=True, by="alice")
    for _ in range(4):
        await rig.step()
        if _entry_orders(rig):
            break
    # the create failed without an answer: outcome unknown, counted as sent for now (it may be at the venue)
    assert _entry_orders(rig)[0][:2] == (old, "unresolved") and _buys(rig) == []
    assert _approval(rig, approval_id)[:2] == ("submitted", old)
    rig.venue = real  # the process dies; a new one starts with the venue reachable

    engine = rig.make_engine()
    await engine.start()
    await rig.step()
    # within the lookup grace period the outcome is still open: the approval keeps today's reading
    assert _entry_orders(rig)[0][1] == "unresolved" and _approval(rig, approval_id)[:2] == ("submitted", old)
    await rig.run_until(lambda: _entry_orders(rig)[0][1] == "rejected", max_steps=20)
    await rig.run_until(lambda: rig.open_positions())
    new = _approval(rig, approval_id)[1]
    assert new != old and _buys(rig) == [new]
    assert _approval(rig, approval_id)[0] == "submitted"
    alerts = _not_sent_alerts(rig)
    assert len(alerts) == 1 and alerts[0][4]["was_submitted"] is True, alerts


async def test_an_approved_entry_the_venue_had_before_the_crash_is_not_sent_again(make_rig: Any) -> None:
    rig = _rig(make_rig)
    approval_id, cid = await _approved_then_killed(rig, reaches=True)
    assert _buys(rig) == [cid] and _entry_orders(rig)[0][:2] == (cid, "created")
    await _restart(rig, 10)
    assert _buys(rig) == [cid], "an entry the venue already had was sent again"
    assert [o[0] for o in _entry_orders(rig)] == [cid] and _entry_orders(rig)[0][1] != "rejected"
    assert _approval(rig, approval_id)[:2] == ("submitted", cid)
    assert _not_sent_alerts(rig) == []
    assert len(rig.open_positions()) == 1
