"""BacktestPortfolio: a position's mark stays in memory between state changes; every state change writes the
full row (mark included), and the marks left in memory are written at the end of the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.bookkit import fill, order
from precog.backtest.stepping import BacktestPortfolio
from precog.domain.order import Action, Fill
from precog.trading.orders import OrderRecord
from precog.trading.portfolio import Portfolio

T = datetime(2026, 1, 1, 18, tzinfo=UTC)
TICKER = "KXNFLGAME-MARKS-NEBUF-BUF"


def _order(oid: int, action: str, position_id: int | None, qty: int) -> OrderRecord:
    return order(TICKER, oid, action, position_id, qty, mode="backtest")


def _fill(fid: str, action: Action, count: int, price: str) -> Fill:
    return fill(TICKER, fid, action, count, price)


def _rows(conn: Any, pid: int) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT quantity, status, current_price, last_check_time, trailing_stop_state, row_current_ind "
                        "FROM positions WHERE position_id = %s ORDER BY id", (pid,)).fetchall()


def _current(conn: Any, pid: int) -> dict[str, Any]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM positions WHERE position_id = %s AND row_current_ind", (pid,))
        row = cur.fetchone()
    assert row is not None
    return row


def test_marks_wait_in_memory_and_every_state_change_writes_the_whole_row(conn: Any) -> None:
    book = BacktestPortfolio(conn, "kalshi", "backtest")
    entry = _order(1, "buy", None, 100)
    booked = book.book_fill(_fill("f1", Action.BUY, 100, "0.50"), entry, T)
    assert booked is not None
    pos = booked.position
    pid = pos.position_id
    assert len(_rows(conn, pid)) == 1

    # a mark only: kept in memory, no new version; the engine sees the marked object
    book.mark(pos, Decimal("0.52"), T + timedelta(seconds=30))
    book.save(pos)
    assert len(_rows(conn, pid)) == 1 and book.marks_deferred == 1
    assert book.open_positions()[0].current_price == Decimal("0.52")

    # a state change (the trailing stop moved) writes one version carrying the latest mark
    book.mark(pos, Decimal("0.58"), T + timedelta(seconds=60))
    pos.trailing_stop_state = {**(pos.trailing_stop_state or {}), "active": True, "current_stop_price": "0.55"}
    book.save(pos)
    rows = _rows(conn, pid)
    assert len(rows) == 2 and rows[-1][2] == Decimal("0.58") and rows[-1][4]["current_stop_price"] == "0.55"
    assert [r[5] for r in rows] == [False, True]

    # another mark, then the end of the window: flush_marks writes it
    book.mark(pos, Decimal("0.60"), T + timedelta(seconds=90))
    book.save(pos)
    assert len(_rows(conn, pid)) == 2
    assert book.flush_marks() == 1
    cur = _current(conn, pid)
    assert cur["current_price"] == Decimal("0.60") and cur["last_check_time"] == T + timedelta(seconds=90)
    assert book.flush_marks() == 0

    # the exit: the closed row equals what the live Portfolio reads back for the same object
    out = book.book_fill(_fill("f2", Action.SELL, 100, "0.59"), _order(2, "sell", pid, 100), T + timedelta(seconds=95))
    assert out is not None and out.position.status == "closed"
    closed = _current(conn, pid)
    assert closed["status"] == "closed" and closed["quantity"] == 0 and closed["exit_reason"] == "stop_loss"
    assert closed["realized_pnl"] == out.position.realized_pnl
    assert closed["current_price"] == Decimal("0.60") and closed["unrealized_pnl"] == Decimal(0)
    assert conn.execute("SELECT count(*) FROM positions WHERE position_id = %s AND row_current_ind",
                        (pid,)).fetchone()[0] == 1
    assert book.open_positions() == [] and book.get(pid) is not None and book.get(pid).status == "closed"


def test_a_reload_keeps_the_marks_held_in_memory(conn: Any) -> None:
    book = BacktestPortfolio(conn, "kalshi", "backtest")
    booked = book.book_fill(_fill("g1", Action.BUY, 50, "0.40"), _order(3, "buy", None, 50), T)
    assert booked is not None
    pos = booked.position
    book.mark(pos, Decimal("0.45"), T + timedelta(seconds=30))
    book.save(pos)
    book.load_open()  # what the engine does after reconnecting to the database
    again = book.open_positions()
    assert len(again) == 1 and again[0].current_price == Decimal("0.45")
    # the live Portfolio reading the same database sees the last written version (the entry's)
    assert Portfolio(conn, "kalshi", "backtest").open_positions()[0].current_price is None
