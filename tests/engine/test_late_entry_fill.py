"""A fill of an entry order that arrives after its position was exited in full opens a new position."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.bookkit import fill, order
from precog.domain.order import Action, Fill
from precog.trading.orders import OrderRecord
from precog.trading.portfolio import Portfolio

T = datetime(2026, 1, 1, 18, tzinfo=UTC)
TICKER = "KXNFLGAME-LATE-NEBUF-BUF"


def _order(oid: int, action: str, position_id: int | None, qty: int) -> OrderRecord:
    return order(TICKER, oid, action, position_id, qty, mode="paper", exit_condition="edge_disappeared", exit_priority="LOW")


def _fill(fid: str, action: Action, count: int, price: str) -> Fill:
    return fill(TICKER, fid, action, count, price)


def test_late_entry_fill_after_a_full_exit_opens_a_new_position(conn):
    book = Portfolio(conn, "kalshi", "paper")
    entry = _order(1, "buy", None, 500)
    first = book.book_fill(_fill("f1", Action.BUY, 100, "0.50"), entry, T)
    assert first is not None
    closed_id = first.position.position_id
    exit_order = _order(2, "sell", closed_id, 100)
    out = book.book_fill(_fill("f2", Action.SELL, 100, "0.55"), exit_order, T)
    assert out is not None and out.position.status == "closed" and out.position.quantity == 0
    # the rest of the entry order fills later (e.g. booked by reconciliation after a restart)
    late = book.book_fill(_fill("f3", Action.BUY, 321, "0.48"), entry, T)
    assert late is not None
    assert late.position.position_id != closed_id
    assert late.position.status == "open" and late.position.quantity == 321
    rows = conn.execute("SELECT position_id, quantity, status FROM positions WHERE row_current_ind "
                        "ORDER BY position_id").fetchall()
    assert rows == [(closed_id, 0, "closed"), (late.position.position_id, 321, "open")]
