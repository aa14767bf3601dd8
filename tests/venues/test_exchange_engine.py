"""The matching engine in-process: priority, YES/NO crossing, order types, collateral, fees, settlement."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from precog.domain.fees import FeeSchedule
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import (
    Conflict,
    InsufficientBalance,
    InvalidOrder,
    InvalidRequest,
    MarketNotOpen,
    NotFound,
)
from precog.venues.exchange.model import NO, YES

T = "KXTEST-25JAN01-A"
T0 = 1_750_000_000_000


def make(maker_rate: D | None = None, **market: object) -> Exchange:
    ex = Exchange(SimClock(T0), seed=1)
    ex.create_series("KXTEST", "test", maker_fee_rate=maker_rate)
    ex.create_event("KXTEST-25JAN01", "KXTEST", "test event")
    ex.create_market(T, "KXTEST-25JAN01", title="A?", **market)  # type: ignore[arg-type]
    for name in ("alice", "bob", "carol"):
        ex.create_account(name, D("1000"))
    return ex


def test_yes_bid_and_no_bid_cross_at_the_resting_price() -> None:
    ex = make()
    resting = ex.place_order("alice", T, "no", "buy", 10, D("0.55"))  # a YES ask at 0.45
    taker = ex.place_order("bob", T, "yes", "buy", 4, D("0.50"))
    assert taker.status == "executed" and taker.fill_count == 4
    # the taker pays the maker's implied YES ask (0.45), not its own limit (0.50)
    assert taker.taker_fill_cost == D("1.80")
    assert taker.taker_fees == FeeSchedule().fee(4, D("0.45"))
    assert resting.remaining == 6 and resting.fill_count == 4 and resting.maker_fill_cost == D("2.20")
    assert ex.accounts["bob"].positions[T].net == 4
    assert ex.accounts["alice"].positions[T].net == -4
    assert ex.orderbook(T) == ([], [(55, 6)])
    assert ex.markets[T].open_interest == 4
    assert ex.audit()["imbalance"] == 0


def test_no_cross_when_prices_sum_below_one_dollar() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 10, D("0.50"))
    o = ex.place_order("bob", T, "yes", "buy", 10, D("0.49"))
    assert o.status == "resting" and o.fill_count == 0
    assert ex.orderbook(T) == ([(49, 10)], [(50, 10)])


def test_price_time_priority_within_and_across_levels() -> None:
    ex = make()
    first = ex.place_order("alice", T, "no", "buy", 5, D("0.55"))
    second = ex.place_order("carol", T, "no", "buy", 5, D("0.55"))
    better = ex.place_order("carol", T, "no", "buy", 3, D("0.57"))  # best price goes first
    assert ex.queue_position(second) == 5 and ex.queue_position(first) == 0
    ex.place_order("bob", T, "yes", "buy", 10, D("0.45"))
    assert better.fill_count == 3  # at YES 0.43
    assert first.fill_count == 5
    assert second.fill_count == 2 and second.remaining == 3
    assert ex.queue_position(second) == 0


def test_sell_yes_is_a_no_bid_and_closes_a_long_without_cash() -> None:
    ex = make()
    bob = ex.create_account("tight", D("4.20"))  # exactly 10 x (0.40 + the 1-contract fee bound 0.02)
    ex.place_order("alice", T, "no", "buy", 10, D("0.60"))
    ex.place_order("tight", T, "yes", "buy", 10, D("0.40"))  # long 10 YES at 0.40, fee 0.17
    assert bob.balance == D("0.03")
    sell = ex.place_order("tight", T, "yes", "sell", 10, D("0.70"))  # needs no cash: it closes the position
    assert sell.status == "resting" and sell.hold == 0 and sell.yes_tick == 70
    assert ex.orderbook(T)[NO] == [(30, 10)]
    ex.place_order("carol", T, "yes", "buy", 10, D("0.70"))
    assert bob.positions[T].net == 0
    # the NO side cost $3.00 and the YES+NO pairs were redeemed for $10: sold at 0.70
    assert bob.balance == D("7.03")
    assert bob.positions[T].realized_pnl == D("3.00")
    assert ex.audit()["imbalance"] == 0


def test_resting_orders_hold_cash_and_release_it_on_cancel() -> None:
    ex = make()
    alice = ex.accounts["alice"]
    o = ex.place_order("alice", T, "yes", "buy", 100, D("0.30"))
    per_contract_fee = FeeSchedule().fee(1, D("0.30"))
    assert o.hold == 100 * (D("0.30") + per_contract_fee)
    assert alice.balance == D("1000") - o.hold
    order, cancelled = ex.cancel_order("alice", o.order_id)
    assert cancelled == 100 and order.status == "canceled"
    assert alice.balance == D("1000") and order.hold == 0
    assert ex.orderbook(T) == ([], [])


def test_insufficient_balance_is_refused_without_any_change() -> None:
    ex = make()
    before = ex.audit()
    with pytest.raises(InsufficientBalance, match="available"):
        ex.place_order("alice", T, "yes", "buy", 2000, D("0.50"))
    assert ex.accounts["alice"].balance == D("1000")
    assert ex.orderbook(T) == ([], []) and not ex.accounts["alice"].orders
    assert ex.audit() == before


def test_fill_or_kill_all_or_nothing() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 5, D("0.55"))
    with pytest.raises(InvalidOrder, match="cannot be filled completely"):
        ex.place_order("bob", T, "yes", "buy", 6, D("0.50"), time_in_force="fill_or_kill")
    assert ex.orderbook(T) == ([], [(55, 5)])
    o = ex.place_order("bob", T, "yes", "buy", 5, D("0.50"), time_in_force="fill_or_kill")
    assert o.status == "executed" and o.fill_count == 5


def test_immediate_or_cancel_fills_what_it_can() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 5, D("0.55"))
    o = ex.place_order("bob", T, "yes", "buy", 8, D("0.50"), time_in_force="immediate_or_cancel")
    assert o.fill_count == 5 and o.remaining == 0 and o.status == "canceled"
    assert ex.orderbook(T) == ([], [])
    assert ex.accounts["bob"].balance == D("1000") - D("2.25") - o.taker_fees


def test_market_order_with_buy_max_cost() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 5, D("0.60"))  # YES at 0.40
    ex.place_order("alice", T, "no", "buy", 5, D("0.50"))  # YES at 0.50
    with pytest.raises(InvalidOrder, match="buy_max_cost"):
        ex.place_order("bob", T, "yes", "buy", 10, type="market", buy_max_cost=D("4.00"))
    o = ex.place_order("bob", T, "yes", "buy", 10, type="market", buy_max_cost=D("4.50"))
    assert o.fill_count == 10 and o.taker_fill_cost == D("4.50")


def test_market_order_without_price_takes_only_what_the_balance_pays() -> None:
    ex = make()
    ex.create_account("poor", D("2.00"))
    ex.place_order("alice", T, "no", "buy", 50, D("0.50"))
    o = ex.place_order("poor", T, "yes", "buy", 50, type="market")
    assert 0 < o.fill_count < 50 and o.status == "canceled"
    assert ex.accounts["poor"].balance >= 0
    assert ex.audit()["imbalance"] == 0


def test_post_only_refuses_to_cross() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 5, D("0.55"))
    with pytest.raises(InvalidOrder, match="post_only"):
        ex.place_order("bob", T, "yes", "buy", 5, D("0.45"), post_only=True)
    assert ex.place_order("bob", T, "yes", "buy", 5, D("0.44"), post_only=True).status == "resting"


def test_reduce_only_caps_at_the_position() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 3, D("0.50"))
    ex.place_order("bob", T, "yes", "buy", 3, D("0.50"))
    with pytest.raises(InvalidOrder, match="no position"):
        ex.place_order("carol", T, "yes", "sell", 5, D("0.40"), reduce_only=True)
    o = ex.place_order("bob", T, "yes", "sell", 5, D("0.60"), reduce_only=True)
    assert o.initial_count == 3 and o.close_reserved == 3


def test_self_trade_prevention() -> None:
    ex = make()
    mine = ex.place_order("alice", T, "no", "buy", 5, D("0.55"))
    o = ex.place_order("alice", T, "yes", "buy", 5, D("0.50"))  # taker_at_cross: the taker is cancelled
    assert o.status == "canceled" and o.fill_count == 0 and mine.remaining == 5
    o2 = ex.place_order("alice", T, "yes", "buy", 5, D("0.50"), self_trade_prevention_type="maker")
    assert mine.status == "canceled" and o2.status == "resting"
    assert ex.audit()["imbalance"] == 0


def test_decrease_keeps_queue_position_and_amend_price_loses_it() -> None:
    ex = make()
    a = ex.place_order("alice", T, "yes", "buy", 10, D("0.40"))
    b = ex.place_order("bob", T, "yes", "buy", 10, D("0.40"))
    ex.decrease_order("alice", a.order_id, reduce_by=4)
    assert a.remaining == 6 and ex.queue_position(a) == 0 and ex.queue_position(b) == 6
    ex.decrease_order("alice", a.order_id, reduce_to=5)
    assert a.remaining == 5
    old, new = ex.amend_order("alice", a.order_id, ticker=T, side="yes", action="buy", price=D("0.40"), count=3)
    assert old.remaining == 5 and new.remaining == 3 and ex.queue_position(new) == 0  # smaller, same place
    ex.amend_order("alice", a.order_id, ticker=T, side="yes", action="buy", price=D("0.40"), count=8)
    assert ex.queue_position(a) == 10  # bigger: back of the queue
    ex.amend_order("bob", b.order_id, ticker=T, side="yes", action="buy", price=D("0.41"))
    assert ex.orderbook(T)[YES] == [(40, 8), (41, 10)]
    assert ex.accounts["alice"].balance == D("1000") - a.hold
    assert ex.audit()["imbalance"] == 0


def test_amend_to_a_crossing_price_trades_and_keeps_the_order_id() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 4, D("0.55"))
    o = ex.place_order("bob", T, "yes", "buy", 10, D("0.40"))
    _, new = ex.amend_order("bob", o.order_id, ticker=T, side="yes", action="buy", price=D("0.45"),
                            updated_client_order_id="bob-2")
    assert new.order_id == o.order_id and new.fill_count == 4 and new.remaining == 6
    assert new.client_order_id == "bob-2" and ex.accounts["bob"].by_client_id["bob-2"] is new


def test_amend_that_cannot_be_paid_changes_nothing() -> None:
    ex = make()
    ex.create_account("small", D("10"))
    o = ex.place_order("small", T, "yes", "buy", 10, D("0.50"))
    before = (ex.accounts["small"].balance, o.hold, ex.orderbook(T))
    with pytest.raises(InsufficientBalance):
        ex.amend_order("small", o.order_id, ticker=T, side="yes", action="buy", price=D("0.90"), count=30)
    assert (ex.accounts["small"].balance, o.hold, ex.orderbook(T)) == before


def test_duplicate_client_order_id_conflicts() -> None:
    ex = make()
    ex.place_order("alice", T, "yes", "buy", 1, D("0.10"), client_order_id="abc-1")
    with pytest.raises(Conflict):
        ex.place_order("alice", T, "yes", "buy", 1, D("0.10"), client_order_id="abc-1")
    ex.place_order("bob", T, "yes", "buy", 1, D("0.10"), client_order_id="abc-1")  # per account


@pytest.mark.parametrize("price", [D("0"), D("1"), D("0.005"), D("0.425"), D("-0.1")])
def test_invalid_prices_are_refused(price: D) -> None:
    with pytest.raises(InvalidOrder, match="price"):
        make().place_order("alice", T, "yes", "buy", 1, price)


def test_unknown_market_and_order_are_not_found() -> None:
    ex = make()
    with pytest.raises(NotFound):
        ex.place_order("alice", "NOPE", "yes", "buy", 1, D("0.5"))
    with pytest.raises(NotFound):
        ex.cancel_order("alice", "no-such-order")
    o = ex.place_order("alice", T, "yes", "buy", 1, D("0.5"))
    with pytest.raises(NotFound):
        ex.cancel_order("bob", o.order_id)  # someone else's order does not exist for bob


def test_maker_fee_rate_per_series() -> None:
    ex = make(maker_rate=D("0.0175"))
    maker = ex.place_order("alice", T, "no", "buy", 100, D("0.50"))
    taker = ex.place_order("bob", T, "yes", "buy", 100, D("0.50"))
    assert maker.maker_fees == D("0.44")  # ceil(0.0175 x 100 x 0.25)
    assert taker.taker_fees == D("1.75")  # ceil(0.07 x 100 x 0.25)
    assert ex.fees_collected == D("2.19")


def test_fractional_settlement_pays_to_the_cent() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 7, D("0.60"))
    ex.place_order("bob", T, "yes", "buy", 7, D("0.40"))
    alice0, bob0 = ex.accounts["alice"].balance, ex.accounts["bob"].balance
    ex.settle_market(T, D("0.37"))
    m = ex.markets[T]
    assert m.status == "finalized" and m.result == "scalar"
    assert ex.accounts["bob"].balance - bob0 == D("2.59")  # 7 x 0.37
    assert ex.accounts["alice"].balance - alice0 == D("4.41")  # 7 x 0.63
    s = ex.accounts["bob"].settlements[0]
    assert (s.yes_count, s.no_count, s.revenue, s.value, s.market_result) == (7, 0, D("2.59"), D("0.37"), "scalar")
    assert ex.audit()["imbalance"] == 0 and m.open_interest == 0


def test_sub_cent_settlement_value_rounds_payouts_down_and_keeps_the_books() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 3, D("0.50"))
    ex.place_order("bob", T, "yes", "buy", 3, D("0.50"))
    alice0, bob0 = ex.accounts["alice"].balance, ex.accounts["bob"].balance
    ex.settle_market(T, D("0.3333"))
    assert ex.accounts["bob"].balance - bob0 == D("0.99")  # floor(3 x 0.3333 = 0.9999)
    assert ex.accounts["alice"].balance - alice0 == D("2.00")  # floor(3 x 0.6667 = 2.0001)
    assert ex.settlement_rounding == D("0.01")
    assert ex.audit()["imbalance"] == 0
    with pytest.raises(InvalidRequest):
        make().settle_market(T, D("1.01"))


def test_settlement_cancels_resting_orders_and_pays_winners() -> None:
    ex = make()
    ex.place_order("alice", T, "no", "buy", 5, D("0.70"))
    ex.place_order("bob", T, "yes", "buy", 5, D("0.30"))
    resting = ex.place_order("carol", T, "yes", "buy", 5, D("0.20"))
    ex.settle_market(T, D("1"))
    assert resting.status == "canceled" and ex.accounts["carol"].balance == D("1000")
    assert ex.accounts["bob"].positions[T].realized_pnl == D("5") - D("1.50")
    with pytest.raises(MarketNotOpen):
        ex.place_order("bob", T, "yes", "buy", 1, D("0.5"))


def test_lifecycle_follows_the_clock() -> None:
    ex = make(open_ms=T0 + 60_000, close_ms=T0 + 120_000)
    m = ex.markets[T]
    assert m.status == "initialized"
    with pytest.raises(MarketNotOpen):
        ex.place_order("alice", T, "yes", "buy", 1, D("0.5"))
    ex.clock.advance(60)
    ex.tick()
    assert m.status == "active"
    o = ex.place_order("alice", T, "yes", "buy", 1, D("0.5"))
    ex.clock.advance(60)
    ex.tick()
    assert m.status == "closed" and o.status == "canceled"


def test_lifecycle_times_added_after_a_quiet_tick_still_fall_due() -> None:
    # tick() remembers when the next open/close/finalization is due and does nothing before it; a market
    # listed later with an earlier close, or a result with a settlement timer, must still happen on time
    ex = make(close_ms=T0 + 3_600_000)
    ex.tick()  # the next lifecycle time is now an hour away
    ex.create_market("KXTEST-25JAN01-B", "KXTEST-25JAN01", title="B?", close_ms=T0 + 60_000)
    ex.create_market("KXTEST-25JAN01-C", "KXTEST-25JAN01", title="C?", close_ms=T0 + 3_600_000,
                     settlement_timer_s=30)
    ex.clock.advance(10)
    ex.tick()
    ex.determine_market("KXTEST-25JAN01-C", D("1"))  # pays out 30 s from now
    assert ex.markets["KXTEST-25JAN01-C"].status == "determined"
    ex.clock.advance(40)
    ex.tick()
    assert ex.markets["KXTEST-25JAN01-C"].status == "finalized"
    assert ex.markets["KXTEST-25JAN01-B"].status == "active"
    ex.clock.advance(11)
    ex.tick()
    assert ex.markets["KXTEST-25JAN01-B"].status == "closed"
    assert ex.markets[T].status == "active"


def test_order_expiration() -> None:
    ex = make()
    o = ex.place_order("alice", T, "yes", "buy", 2, D("0.5"), expiration_ms=T0 + 5_000)
    ex.clock.advance(4)
    ex.tick()
    assert o.status == "resting"
    ex.clock.advance(2)
    ex.tick()
    assert o.status == "canceled" and ex.accounts["alice"].balance == D("1000")


def test_pause_cancels_only_cancel_on_pause_orders() -> None:
    ex = make()
    keep = ex.place_order("alice", T, "yes", "buy", 1, D("0.5"))
    drop = ex.place_order("bob", T, "yes", "buy", 1, D("0.5"), cancel_order_on_pause=True)
    ex.set_market_status(T, "inactive")
    assert keep.status == "resting" and drop.status == "canceled"
    with pytest.raises(MarketNotOpen):
        ex.place_order("alice", T, "yes", "buy", 1, D("0.5"))


def test_events_are_emitted_for_subscribers() -> None:
    ex = make()
    seen: list[tuple[str, dict]] = []
    ex.add_listener(lambda e: seen.append((e.kind, e.data)))
    ex.place_order("alice", T, "no", "buy", 5, D("0.55"))
    ex.place_order("bob", T, "yes", "buy", 2, D("0.45"))
    kinds = [k for k, _ in seen]
    assert "orderbook_delta" in kinds and "trade" in kinds and kinds.count("fill") == 2 and "ticker" in kinds
    deltas = [d["delta"] for k, d in seen if k == "orderbook_delta"]
    assert deltas == [5, -2]


def test_an_order_filled_in_pieces_pays_the_fee_of_one_equivalent_fill() -> None:
    """Kalshi's fee accumulator (docs.kalshi.com "Fee Rounding"): ten 1-lot matches of one 10-contract order pay
    ceil(0.07 x 10 x 0.25) = $0.18 in all, not ten rounded 1-lot fees ($0.20); every fill pays whole cents and the
    order's running total never exceeds what one fill of everything filled so far would cost."""
    ex = make(maker_rate=D("0.0175"))
    for _ in range(10):
        ex.place_order("alice", T, "no", "buy", 1, D("0.50"))  # ten 1-lot YES asks at 0.50
    taker = ex.place_order("bob", T, "yes", "buy", 10, D("0.50"))
    assert taker.fill_count == 10
    fees = [rec[12] for rec in ex.accounts["bob"].fills]  # the taker fee of each fill, in order
    assert len(fees) == 10 and all(f == f.quantize(D("0.01")) and f >= 0 for f in fees)
    running = D(0)
    for i, f in enumerate(fees, start=1):
        running += f
        assert running == FeeSchedule().fee(i, D("0.50"))  # the fee of one fill of the first i contracts
    assert taker.taker_fees == sum(fees) == D("0.18")
    assert ex.accounts["bob"].balance == D("1000") - D("5.00") - D("0.18")
    # each resting 1-lot is its own order: it pays its own rounded maker fee
    assert [o.maker_fees for o in ex.orders.values() if o.user_id == "alice"] == [D("0.01")] * 10
    assert ex.fees_collected == D("0.18") + D("0.10")
