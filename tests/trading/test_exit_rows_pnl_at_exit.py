"""position_exits.unrealized_pnl_at_exit is the exited contracts' mark just before the exit, also for an exit
that closes the position.

`Portfolio.book_fill` takes the mark of the contracts sold before a full exit sets `pos.unrealized_pnl` to 0
(a partial exit records the mark of the contracts it sold, not of the whole position). So the spec view
`exit_performance_summary.avg_pnl_at_exit` ("avg P&L at exit", spec §2.4 v1.5) shows what a stop loss lost.

Spec §2.3 position_exits.unrealized_pnl_at_exit; §2.4 exit_performance_summary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.bookkit import fill, order
from precog.domain.order import Action
from precog.trading.portfolio import Portfolio

T = datetime(2026, 1, 1, 18, tzinfo=UTC)
TICKER = "KXNFLGAME-AUDIT-NEBUF-BUF"


def test_full_stop_loss_exit_records_its_pnl_at_exit(conn: Any) -> None:
    conn.autocommit = True
    book = Portfolio(conn, "kalshi", "paper")
    pos = book.book_fill(fill(TICKER, "f1", Action.BUY, 100, "0.50"), order(TICKER, 1, "buy", None, 100,
                                                                              mode="paper"), T).position
    book.mark(pos, Decimal("0.40"), T)  # the monitor's mark: -20 % at the bid
    mark = pos.unrealized_pnl
    assert mark == Decimal("-10.1000")  # 100 x 0.40 - (50 + 0.10 entry fee)
    out = book.book_fill(fill(TICKER, "f2", Action.SELL, 100, "0.40"),
                         order(TICKER, 2, "sell", pos.position_id, 100, mode="paper",
                               exit_condition="stop_loss", exit_priority="CRITICAL"), T)
    assert out is not None and out.position.status == "closed" and out.realized == Decimal("-10.20")
    at_exit = conn.execute("SELECT unrealized_pnl_at_exit FROM position_exits").fetchone()[0]
    avg = conn.execute("SELECT avg_pnl_at_exit FROM exit_performance_summary WHERE exit_condition = 'stop_loss'"
                       ).fetchone()[0]
    assert at_exit == mark, f"unrealized_pnl_at_exit {at_exit}, the position was marked {mark} when it exited"
    assert avg < 0, f"exit_performance_summary shows avg P&L {avg} for a losing stop loss"
