"""Fills of one venue timestamp are booked buys first: a sell is never booked before the buy it sells.

A venue promises time order only. Kalshi stamps fills with a time and a random UUID, so `KalshiVenue` lists the
fills of one timestamp in fill-id order, which puts the sell first about half the time; booking it first fails
("sells N contracts ... which holds M"), the fill is left unbooked, a critical alert goes out and the next
reconciliation halts trading on the difference. Re-reading fills after the database lost its last writes
(reconnect, restart) books such a pair together. `Executor.sync_fills` books in `booking_order`: venue time, and
at one timestamp the fills that add contracts (buys) before those that remove them (sells), each group in the
venue's order.

The venue here is the in-process local exchange with its clock stopped (every trade at one millisecond); it
lists the fills of one timestamp newest first, as a venue may.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from precog.domain.money import ZERO
from precog.domain.order import Fill
from precog.engine.alert_sink import TableAlertSink
from precog.engine.local_venue import LocalVenue
from precog.trading.executor import Executor, booking_order
from precog.trading.orders import OrderRecord, OrderState, OrderStore
from precog.trading.portfolio import Portfolio
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

TICKER = "KXNFLGAME-TIE-NEBUF-BUF"
START_MS = 1_764_000_000_000


class NewestFirstAtATie(LocalVenue):
    """The local exchange's fills, in time order, the fills of one timestamp listed newest first."""

    async def fills(self, since_ms: int | None = None) -> Sequence[Fill]:
        listed = list(reversed(await super().fills(since_ms)))
        return sorted(listed, key=lambda f: f.created_time or datetime.min.replace(tzinfo=UTC))


def _exchange() -> tuple[Exchange, SimClock]:
    clock = SimClock(start_ms=START_MS)
    ex = Exchange(clock)
    ex.create_series("KXNFLGAME", "Pro Football Game")
    ex.create_event("KXNFLGAME-TIE-NEBUF", "KXNFLGAME", "New England at Buffalo")
    ex.create_market(TICKER, "KXNFLGAME-TIE-NEBUF", title="Will Buffalo win?", close_ms=START_MS + 3_600_000)
    ex.create_account("us", Decimal("1000"))
    ex.create_account("mm", Decimal("100000"))
    return ex, clock


def _executor(conn: psycopg.Connection[Any], ex: Exchange, clock: SimClock) -> Executor:
    venue = NewestFirstAtATie(ex, "us")
    portfolio = Portfolio(conn, venue.platform_id, "paper")
    return Executor(venue, OrderStore(conn), portfolio, run_id=None, mode="paper",
                    clock=lambda: datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC),
                    alerts=TableAlertSink(conn, "test"))


def _order(store: OrderStore, cid: str, action: str, quantity: int, price: str, *, position_id: int | None = None,
           exit_condition: str | None = None) -> OrderRecord:
    return store.create(OrderRecord(
        id=0, client_order_id=cid, venue_order_id=None, run_id=None, platform_id="local", market_id=TICKER,
        position_id=position_id, purpose="exit" if action == "sell" else "entry", side="yes", action=action,
        order_type="limit", time_in_force="good_till_canceled", limit_price=Decimal(price), quantity=quantity,
        filled_quantity=0, fees=ZERO, status=OrderState.CREATED, mode="paper", exit_condition=exit_condition,
        exit_priority="CRITICAL" if exit_condition else None))


async def test_a_buy_and_the_sell_of_it_at_one_timestamp(db_url: str) -> None:
    """Nothing of ours in the database (it lost the last second): both orders are adopted, both fills booked."""
    conn = psycopg.connect(db_url, autocommit=True)
    ex, clock = _exchange()
    ex.place_order("mm", TICKER, "no", "buy", 10, Decimal("0.50"))  # offers 10 YES at 0.50
    ex.place_order("us", TICKER, "yes", "buy", 10, Decimal("0.50"), client_order_id="buy-1")
    ex.place_order("mm", TICKER, "yes", "buy", 10, Decimal("0.55"))  # then bids 0.55 for 10 YES
    ex.place_order("us", TICKER, "yes", "sell", 10, Decimal("0.55"), client_order_id="sell-1")
    executor = _executor(conn, ex, clock)
    booked = await executor.sync_fills()
    assert [(b.quantity, b.price) for b in booked] == [(10, Decimal("0.50")), (10, Decimal("0.55"))]
    assert conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'fill_not_booked'").fetchone()[0] == 0
    status, qty, realized = conn.execute("SELECT status, quantity, realized_pnl FROM positions "
                                         "WHERE row_current_ind").fetchone()
    assert (status, qty) == ("closed", 0)
    fees = conn.execute("SELECT sum(fees) FROM trades").fetchone()[0]
    assert realized == Decimal("0.50") - fees  # 10 x (0.55 - 0.50) less both fills' fees
    conn.close()


async def test_the_entry_remainder_and_the_full_exit_at_one_timestamp(db_url: str) -> None:
    """The position holds 5 of an entry order of 10; at one timestamp the other 5 fill and the exit sells all 10."""
    conn = psycopg.connect(db_url, autocommit=True)
    ex, clock = _exchange()
    executor = _executor(conn, ex, clock)
    store = executor.store
    entry = _order(store, "entry-1", "buy", 10, "0.50")
    ex.place_order("mm", TICKER, "no", "buy", 5, Decimal("0.50"))  # 5 offered at 0.50
    ex.place_order("us", TICKER, "yes", "buy", 10, Decimal("0.50"), client_order_id=entry.client_order_id)
    first = await executor.sync_fills()
    assert [b.quantity for b in first] == [5]
    position_id = first[0].position.position_id
    clock.advance(1)
    exit_rec = _order(store, "exit-1", "sell", 10, "0.40", position_id=position_id, exit_condition="stop_loss")
    ex.place_order("mm", TICKER, "no", "buy", 5, Decimal("0.50"))  # takes the entry's resting 5
    ex.place_order("mm", TICKER, "yes", "buy", 10, Decimal("0.40"))
    ex.place_order("us", TICKER, "yes", "sell", 10, Decimal("0.40"), client_order_id=exit_rec.client_order_id)
    rest = await executor.sync_fills()
    assert [(b.quantity, b.price) for b in rest] == [(5, Decimal("0.50")), (10, Decimal("0.40"))]
    assert conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'fill_not_booked'").fetchone()[0] == 0
    pos = executor.portfolio.get(position_id)
    assert pos is not None and (pos.status, pos.quantity, pos.initial_quantity) == ("closed", 0, 10)
    assert conn.execute("SELECT exit_condition, quantity_exited FROM position_exits").fetchall() == [("stop_loss", 10)]
    conn.close()


def test_booking_order_keeps_time_first() -> None:
    """A sell stamped earlier than a buy stays first; only a tie puts the buy ahead."""
    def fill(fid: str, action: str, ms: int) -> Fill:
        from precog.domain.order import Action, Side

        return Fill(fill_id=fid, trade_id=fid, order_id=fid, ticker=TICKER, side=Side.YES, action=Action(action),
                    count=Decimal(1), yes_price=Decimal("0.5"), no_price=Decimal("0.5"), is_taker=True,
                    created_time=datetime.fromtimestamp(ms / 1000, tz=UTC))

    fills = [fill("a", "sell", 1000), fill("b", "sell", 2000), fill("c", "buy", 2000), fill("d", "buy", 3000),
             fill("e", "buy", 2000)]
    assert [f.fill_id for f in booking_order(fills)] == ["a", "c", "e", "b", "d"]
