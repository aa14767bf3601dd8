"""Paper fills walk the order book: real market data from the local exchange over HTTP (the real Kalshi client,
signed requests), simulated fills level by level at each level's own price and fee."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from precog.domain.market import Market, OrderBook, PriceLevel
from precog.domain.order import Action, OrderRequest, OrderStatus, Side, TimeInForce
from precog.engine.kalshi_venue import KalshiVenue, http_venue_for_local_exchange
from precog.engine.local_venue import LocalVenue
from precog.engine.paper_venue import PaperVenue
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

TICKER = "KXNFLGAME-PAPER-NEBUF-BUF"
CASH = Decimal("1000")
D = Decimal


@dataclass
class Book:
    exchange: Exchange
    clock: SimClock
    http: KalshiVenue
    exchange_dir: Path

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, tz=UTC)

    def paper(self, cash: Decimal = CASH) -> PaperVenue:
        return PaperVenue(self.http, cash, clock=self.now)

    def ask(self, price: str, size: int) -> str:
        """A counterparty's YES ask (a NO bid at 1 - price)."""
        return self.exchange.place_order("mm", TICKER, "no", "buy", size, 1 - D(price)).order_id

    def bid(self, price: str, size: int) -> str:
        return self.exchange.place_order("mm", TICKER, "yes", "buy", size, D(price)).order_id


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[Book]:
    clock = SimClock(start_ms=1_764_000_000_000)
    ex = Exchange(clock)
    ex.create_series("KXNFLGAME", "Pro Football Game")
    ex.create_event("KXNFLGAME-PAPER-NEBUF", "KXNFLGAME", "New England at Buffalo")
    ex.create_market(TICKER, "KXNFLGAME-PAPER-NEBUF", title="Will Buffalo win?", close_ms=clock.now_ms() + 3600_000)
    ex.create_account("us", Decimal("5"))  # the data account: paper orders never reach it
    ex.create_account("mm", Decimal("100000"))
    http, close = await http_venue_for_local_exchange(ex, "us")
    b = Book(ex, clock, http, tmp_path)
    # YES asks 0.50 x10, 0.52 x20, 0.55 x30, 0.60 x50; YES bids 0.47 x15, 0.45 x25, 0.40 x40
    for price, size in (("0.50", 10), ("0.52", 20), ("0.55", 30), ("0.60", 50)):
        b.ask(price, size)
    for price, size in (("0.47", 15), ("0.45", 25), ("0.40", 40)):
        b.bid(price, size)
    try:
        yield b
    finally:
        await close()


def _req(side: str, action: str, count: int, price: str, cid: str,
         tif: TimeInForce | None = None) -> OrderRequest:
    return OrderRequest(ticker=TICKER, side=Side(side), action=Action(action), count=D(count), price=D(price),
                        client_order_id=cid, time_in_force=tif)


async def test_the_venues_return_the_book_in_depth_best_first(book: Book) -> None:
    over_http = await book.http.orderbook(TICKER)
    in_process = await LocalVenue(book.exchange, "us").orderbook(TICKER)
    assert [(lv.price, lv.quantity) for lv in over_http.yes_asks()] == [
        (D("0.50"), 10), (D("0.52"), 20), (D("0.55"), 30), (D("0.60"), 50)]
    assert [(lv.price, lv.quantity) for lv in over_http.yes_bids] == [(D("0.47"), 15), (D("0.45"), 25), (D("0.40"), 40)]
    assert in_process.yes_bids == over_http.yes_bids and in_process.no_bids == over_http.no_bids
    top = await book.http.orderbook(TICKER, depth=1)
    assert top.yes_bids == (PriceLevel(D("0.47"), D(15)),) and top.yes_ask == D("0.50")


async def test_a_buy_sweeps_the_asks_at_their_own_prices_and_fees_then_rests(book: Book) -> None:
    paper = book.paper()
    order = await paper.place_order(_req("yes", "buy", 80, "0.55", "sweep-1"))
    fills = await paper.fills()
    # fee per fill = ceil_cent(0.07 x C x P x (1 - P)): 0.175 -> 0.18, 0.34944 -> 0.35, 0.51975 -> 0.52
    assert [(f.yes_price, f.no_price, f.count, f.fee) for f in fills] == [
        (D("0.50"), D("0.50"), 10, D("0.18")), (D("0.52"), D("0.48"), 20, D("0.35")),
        (D("0.55"), D("0.45"), 30, D("0.52"))]
    assert all(f.order_id == order.order_id and f.is_taker for f in fills)
    # the 0.60 level is past the limit: 20 rest
    assert (order.status, order.fill_count, order.remaining_count, order.taker_fees) == (
        OrderStatus.RESTING, 60, 20, D("1.05"))
    assert (await paper.balance()).balance == CASH - D("31.90") - D("1.05") == D("967.05")
    assert [(p.ticker, p.position) for p in await paper.positions()] == [(TICKER, 60)]
    assert book.exchange.account("us").orders == {}  # nothing reached the exchange
    assert [(lv.price, lv.quantity) for lv in (await book.http.orderbook(TICKER)).yes_asks()][:3] == [
        (D("0.50"), 10), (D("0.52"), 20), (D("0.55"), 30)]  # and the real book is untouched


async def test_immediate_or_cancel_cancels_what_the_book_cannot_fill(book: Book) -> None:
    paper = book.paper()
    order = await paper.place_order(_req("yes", "buy", 45, "0.52", "ioc-1", TimeInForce.IMMEDIATE_OR_CANCEL))
    assert (order.status, order.fill_count, order.remaining_count) == (OrderStatus.CANCELED, 30, 15)
    assert await paper.open_orders() == []
    assert (await paper.balance()).balance == CASH - D("15.40") - D("0.53")


async def test_taken_size_is_not_filled_again_until_its_level_changes(book: Book) -> None:
    paper = book.paper()
    first = await paper.place_order(_req("yes", "buy", 80, "0.55", "first"))
    assert first.remaining_count == 20
    # a second order finds 0.50-0.55 already taken: it starts at 0.60
    second = await paper.place_order(_req("yes", "buy", 5, "0.60", "second"))
    assert [(f.yes_price, f.count) for f in await paper.fills() if f.order_id == second.order_id] == [(D("0.60"), 5)]
    for _ in range(3):  # later polls of the same book fill nothing more for the resting order
        await paper.market(TICKER)
    assert (await paper.get_order(first.order_id)).remaining_count == 20
    book.ask("0.52", 5)  # the 0.52 level changes (20 -> 25): it is new size, and the resting order crosses it
    await paper.market(TICKER)
    done = await paper.get_order(first.order_id)
    assert (done.status, done.fill_count, done.remaining_count) == (OrderStatus.EXECUTED, 80, 0)
    last = (await paper.fills())[-1]
    assert (last.order_id, last.yes_price, last.count, last.fee) == (first.order_id, D("0.52"), 20, D("0.35"))


async def test_sells_and_no_buys_walk_the_yes_bids(book: Book) -> None:
    paper = book.paper()
    await paper.place_order(_req("yes", "buy", 30, "0.52", "own"))  # 10 @ 0.50 + 20 @ 0.52
    sell = await paper.place_order(_req("yes", "sell", 30, "0.45", "sell"))
    fills = [f for f in await paper.fills() if f.order_id == sell.order_id]
    # 0.07 x 15 x 0.47 x 0.53 = 0.261555 -> 0.27; 0.07 x 15 x 0.45 x 0.55 = 0.259875 -> 0.26
    assert [(f.yes_price, f.count, f.fee) for f in fills] == [(D("0.47"), 15, D("0.27")), (D("0.45"), 15, D("0.26"))]
    assert sell.status is OrderStatus.EXECUTED
    buy_no = await paper.place_order(_req("no", "buy", 20, "0.60", "no"))
    fills = [f for f in await paper.fills() if f.order_id == buy_no.order_id]
    # NO asks are 1 - YES bids; 0.47 was taken by the sell, 10 of 0.45's 25 are left: 10 @ 0.55, 10 @ 0.60
    assert [(f.no_price, f.yes_price, f.count, f.fee) for f in fills] == [
        (D("0.55"), D("0.45"), 10, D("0.18")), (D("0.60"), D("0.40"), 10, D("0.17"))]
    spent = D("5.00") + D("10.40") + D("0.18") + D("0.35")
    received = D("7.05") + D("6.75") - D("0.27") - D("0.26")
    no_cost = D("5.50") + D("6.00") + D("0.18") + D("0.17")
    assert (await paper.balance()).balance == CASH - spent + received - no_cost
    assert [(p.ticker, p.position) for p in await paper.positions()] == [(TICKER, -20)]


async def test_a_buy_never_spends_more_cash_than_the_paper_account_has(book: Book) -> None:
    paper = book.paper(cash=D("5"))
    # 10 x 0.50 = $5.00 passes the order check, but with the $0.18 fee 10 would overdraw: 9 fill
    # ($4.50 + ceil_cent(0.1575) = $4.66), 1 rests
    order = await paper.place_order(_req("yes", "buy", 10, "0.50", "cash"))
    assert (order.status, order.fill_count, order.remaining_count) == (OrderStatus.RESTING, 9, 1)
    assert (await paper.balance()).balance == D("0.34")


class _QuoteOnlyVenue:
    """A data venue that shows no depth (no `orderbook`): only the market's best bid/ask and their sizes."""

    def __init__(self, inner: KalshiVenue) -> None:
        self.inner = inner
        self.platform_id = inner.platform_id
        self.account_ref = inner.account_ref

    async def market(self, ticker: str) -> Market:
        return await self.inner.market(ticker)


async def test_without_depth_only_the_top_of_the_book_fills_and_the_log_says_so(
        book: Book, caplog: Any) -> None:
    paper = PaperVenue(_QuoteOnlyVenue(book.http), CASH, clock=book.now)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="precog.engine.paper_venue"):
        order = await paper.place_order(_req("yes", "buy", 80, "0.55", "top-1"))
        again = await paper.place_order(_req("yes", "buy", 5, "0.55", "top-2"))
    assert [(f.yes_price, f.count) for f in await paper.fills()] == [(D("0.50"), 10)]
    assert (order.fill_count, again.fill_count) == (10, 0)  # the top's size once; nothing invented below it
    notes = [r.getMessage() for r in caplog.records if "no order book depth" in r.getMessage()]
    assert len(notes) == 1 and "_QuoteOnlyVenue" in notes[0]
    book_seen = await paper.orderbook(TICKER)
    assert isinstance(book_seen, OrderBook) and book_seen.yes_ask == D("0.50")


async def test_a_venue_that_refuses_its_book_is_asked_once_and_the_top_fills(book: Book, caplog: Any) -> None:
    """Kalshi's GET /markets/{ticker}/orderbook wants credentials: a 401 means no depth for this account."""
    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.exchange.runner import ExchangeServer
    from precog.venues.kalshi.auth import KalshiSigner
    from precog.venues.kalshi.client import AsyncKalshiClient
    from precog.venues.kalshi.environments import KalshiEnvironment
    from precog.venues.kalshi.ratelimit import tier_limits

    # requests are signed with the wall clock; the exchange runs on simulated time
    server = ExchangeServer(book.exchange, tick_interval=0.05, auth_clock=lambda: int(time.time() * 1000))
    key_id, key_path, public_pem = generate_key_pair(book.exchange_dir)
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    client = AsyncKalshiClient(KalshiEnvironment("local", server.base_url, server.ws_url),
                               signer=KalshiSigner.from_files(key_id, key_path), rate_limits=tier_limits("unlimited"))
    try:
        server.faults.fail(401, count=100, path_prefix=f"/trade-api/v2/markets/{TICKER}/orderbook",
                           message="orderbook needs an API key")
        paper = PaperVenue(KalshiVenue(client, platform_id="local"), CASH, clock=book.now)
        with caplog.at_level(logging.WARNING, logger="precog.engine.paper_venue"):
            first = await paper.place_order(_req("yes", "buy", 80, "0.55", "refused-1"))
            book.ask("0.50", 5)  # the top changes: 15 shown at 0.50
            second = await paper.place_order(_req("yes", "buy", 80, "0.55", "refused-2"))
        assert (first.fill_count, second.fill_count) == (10, 15)
        assert server.faults._errors[0].remaining == 99  # the book was asked for once, then never again
        notes = [r.getMessage() for r in caplog.records if "no order book depth" in r.getMessage()]
        assert len(notes) == 1 and "orderbook needs an API key" in notes[0]
    finally:
        await client.aclose()
        server.stop()
