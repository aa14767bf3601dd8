"""The backtest market maker's deferred quotes (`QuoteMaker` with `lazy`) read and trade exactly like quotes
placed at once: a snapshot shows the book the quote would make, and an order trades against that book."""

from __future__ import annotations

import random
from decimal import Decimal

from precog.backtest.stepping import BacktestVenue
from precog.backtest.world import MM_USER, MakerConfig, QuoteMaker
from precog.domain.order import OrderRequest
from precog.engine.local_venue import convert_market
from precog.venues.exchange import model as xm
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

T = "KXREPLAY-25OCT05-A"
USER = "precog-backtest"


def _exchange() -> Exchange:
    ex = Exchange(SimClock(1_750_000_000_000), seed=3)
    ex.create_series("KXREPLAY", "replay")
    ex.create_event("KXREPLAY-25OCT05", "KXREPLAY", "replay")
    ex.create_market(T, "KXREPLAY-25OCT05", title="A?")
    ex.create_account(MM_USER, Decimal("1000000"))
    ex.create_account(USER, Decimal("1000"))
    return ex


def _quotes(n: int, seed: int) -> list[tuple[Decimal, Decimal, int | None, int | None]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        bid = rng.randint(1, 97)
        ask = rng.randint(bid + 1, min(99, bid + 4))
        sizes = (rng.choice([None, rng.randint(1, 900)]), rng.choice([None, rng.randint(1, 900)]))
        out.append((Decimal(bid) / 100, Decimal(ask) / 100, *sizes))
    return out


async def test_a_deferred_quote_reads_as_the_book_it_would_place() -> None:
    lazy_ex, eager_ex = _exchange(), _exchange()
    lazy = QuoteMaker(lazy_ex, MakerConfig(lazy=True))
    eager = QuoteMaker(eager_ex, MakerConfig(lazy=False))
    venue = BacktestVenue(lazy_ex, USER, maker=lazy)
    for bid, ask, bsz, asz in _quotes(300, seed=11):
        lazy.quote_exact(T, bid, ask, bsz, asz)
        eager.quote_exact(T, bid, ask, bsz, asz)
        assert lazy.pending[T] == (bid, ask, bsz, asz)  # nothing placed: only the maker's orders rest
        assert await venue.market(T) == convert_market(eager_ex.markets[T])
    assert lazy.deferred == 300 and venue.take_quoted() == {T} and venue.take_quoted() == set()
    lazy.sync(T)  # placed now: the exchange's own book shows the same top
    assert lazy.pending == {} and convert_market(lazy_ex.markets[T]) == convert_market(eager_ex.markets[T])


async def test_an_order_trades_against_the_deferred_quote_at_its_prices() -> None:
    ex = _exchange()
    maker = QuoteMaker(ex, MakerConfig(lazy=True, level_size=50))
    venue = BacktestVenue(ex, USER, maker=maker)
    maker.quote_exact(T, Decimal("0.40"), Decimal("0.43"), 30, 20)
    maker.quote_exact(T, Decimal("0.41"), Decimal("0.44"), 25, 15)  # the one that counts
    assert ex.markets[T].resting == {}
    # buy 40 YES up to 0.45: 15 at the quoted 0.44, the next level (2 x 50 at 0.45) for the rest; nothing at 0.43
    order = await venue.place_order(OrderRequest(T, "yes", "buy", Decimal(40), Decimal("0.45"), "entry-1",
                                                 time_in_force="immediate_or_cancel"))
    assert order.fill_count == Decimal(40)
    fills = sorted((f.yes_price, f.count) for f in await venue.fills())
    assert fills == [(Decimal("0.44"), Decimal(15)), (Decimal("0.45"), Decimal(25))]
    snap = await venue.market(T)
    assert (snap.yes_bid, snap.yes_ask, snap.yes_ask_size) == (Decimal("0.41"), Decimal("0.45"), Decimal(75))


async def test_quotes_are_placed_at_once_where_they_could_trade_or_fail() -> None:
    ex = _exchange()
    maker = QuoteMaker(ex, MakerConfig(lazy=True))
    venue = BacktestVenue(ex, USER, maker=maker)
    maker.quote_exact(T, Decimal("0.455"), Decimal("0.47"))  # not whole cents: placed (and refused) now
    assert T not in maker.pending
    maker.quote_exact(T, Decimal("0.40"), Decimal("0.45"), 100, 100)
    resting = await venue.place_order(OrderRequest(T, "yes", "buy", Decimal(5), Decimal("0.42"), "entry-2"))
    assert resting.remaining_count == Decimal(5)  # our bid rests inside the spread
    # our order rests: the next quote goes to the book at once, and its ask of 0.42 trades with our bid
    maker.quote_exact(T, Decimal("0.38"), Decimal("0.42"), 100, 100)
    assert T not in maker.pending
    ours = [o for o in ex.orders.values() if o.user_id == USER]
    assert ours[0].status == xm.EXECUTED and ours[0].fill_count == 5


async def test_a_polled_order_reads_as_the_exchange_holds_it_after_every_change() -> None:
    """The backtest venue keeps an order's last conversion while it rests unchanged; a partial fill and the
    cancel must still show at once, equal to a fresh conversion."""
    from precog.engine.local_venue import convert_order

    ex = _exchange()
    maker = QuoteMaker(ex, MakerConfig(lazy=True))
    venue = BacktestVenue(ex, USER, maker=maker)
    maker.quote_exact(T, Decimal("0.40"), Decimal("0.45"), 100, 100)
    placed = await venue.place_order(OrderRequest(T, "yes", "buy", Decimal(8), Decimal("0.42"), "entry-3"))
    first = await venue.get_order(placed.order_id)
    assert await venue.get_order(placed.order_id) is first  # unchanged: the same object
    maker.quote_exact(T, Decimal("0.38"), Decimal("0.42"), 100, 3)  # an ask of 3 at 0.42 fills 3 of our 8
    partly = await venue.get_order(placed.order_id)
    assert (partly.fill_count, partly.remaining_count) == (Decimal(3), Decimal(5))
    assert partly == convert_order(ex.get_order(USER, placed.order_id))
    canceled = await venue.cancel_order(placed.order_id)
    assert canceled is not None
    final = await venue.get_order(placed.order_id)
    assert final.status.value == "canceled" and final == convert_order(ex.get_order(USER, placed.order_id))
