"""Property tests of the matching engine: random order flow must never break the exchange's invariants.

After every operation: the book is not crossed; no money is created or destroyed (balances + holds + fees +
$1 x open interest + settlement rounding = deposits); YES and NO contracts outstanding are equal (= open
interest); fees are never negative; nobody trades at a price worse than their limit; balances and holds
never go negative; each price level's size is the sum of its live orders.
"""

from __future__ import annotations

import random
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import ExchangeError
from precog.venues.exchange.model import (
    FINALIZED,
    NO,
    R_COUNT,
    R_M_FEE,
    R_M_ORDER,
    R_T_FEE,
    R_T_ORDER,
    R_YES_TICK,
    RESTING,
    TICKS,
    YES,
)

MARKETS = ("KXP-25JAN01-A", "KXP-25JAN01-B")
ACCOUNTS = ("a", "b", "c", "d")

flag = st.sampled_from((False, False, False, False, True))  # mostly off
place = st.tuples(
    st.just("place"), st.sampled_from(ACCOUNTS), st.sampled_from(MARKETS), st.sampled_from(("yes", "no")),
    st.sampled_from(("buy", "buy", "sell")), st.integers(1, 40),
    st.one_of(st.integers(35, 65), st.integers(35, 65), st.integers(1, 99)),  # crosses often, edges sometimes
    st.sampled_from(("good_till_canceled", "good_till_canceled", "immediate_or_cancel", "fill_or_kill")),
    st.sampled_from(("limit", "limit", "limit", "limit", "market")), flag, flag,
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 1000))
decrease = st.tuples(st.just("decrease"), st.integers(0, 1000), st.integers(1, 20))
amend = st.tuples(st.just("amend"), st.integers(0, 1000), st.integers(30, 70), st.integers(1, 50))
settle = st.tuples(st.just("settle"), st.sampled_from(MARKETS), st.integers(0, 10000))
ops = st.lists(st.one_of(place, place, place, place, place, place, cancel, decrease, amend),
               min_size=20, max_size=80)
settle_at = st.one_of(st.none(), st.integers(5, 80))  # at most one mid-flow settlement
balances = st.lists(st.one_of(st.integers(30, 300), st.integers(30, 300), st.integers(0, 10)),
                    min_size=len(ACCOUNTS), max_size=len(ACCOUNTS))


def build(dollars: list[int]) -> Exchange:
    ex = Exchange(SimClock(1_700_000_000_000), seed=3)
    ex.create_series("KXP", "props", maker_fee_rate=D("0.0175"))
    ex.create_event("KXP-25JAN01", "KXP", "props")
    for t in MARKETS:
        ex.create_market(t, "KXP-25JAN01")
    for name, amount in zip(ACCOUNTS, dollars, strict=True):
        ex.create_account(name, D(amount) + D("0.37"))
    return ex


def resting(ex: Exchange) -> list[Any]:
    return [o for m in ex.markets.values() for o in m.resting.values()]


def apply(ex: Exchange, op: tuple[Any, ...]) -> None:
    kind = op[0]
    try:
        if kind == "place":
            _, user, ticker, side, action, count, cents, tif, otype, post_only, reduce_only = op
            price = None if otype == "market" else D(cents) / 100
            ex.place_order(user, ticker, side, action, count, price, type=otype, time_in_force=tif,
                           post_only=post_only and tif == "good_till_canceled", reduce_only=reduce_only)
        elif kind in ("cancel", "decrease", "amend"):
            live = resting(ex)
            if not live:
                return
            o = live[op[1] % len(live)]
            if kind == "cancel":
                ex.cancel_order(o.user_id, o.order_id)
            elif kind == "decrease":
                ex.decrease_order(o.user_id, o.order_id, reduce_by=op[2])
            else:
                count = o.fill_count + op[3]
                ex.amend_order(o.user_id, o.order_id, ticker=o.ticker, side=o.side, action=o.action,
                               price=D(op[2]) / 100, count=count)
        elif kind == "settle":
            ex.settle_market(op[1], D(op[2]) / 10000)
    except ExchangeError:
        pass  # refused orders must leave no trace; the invariants below check that too


def check(ex: Exchange, trades_before: int) -> None:
    audit = ex.audit()
    assert audit["imbalance"] == 0, audit
    assert ex.fees_collected >= 0 and ex.settlement_rounding >= 0
    for acct in ex.accounts.values():
        assert acct.balance >= 0, (acct.user_id, acct.balance)
    for m in ex.markets.values():
        yes_bid, no_bid = m.book[YES].best, m.book[NO].best
        assert not (yes_bid and no_bid and yes_bid + no_bid >= TICKS), f"crossed book {yes_bid}/{no_bid}"
        for side in (YES, NO):
            book = m.book[side]
            live: dict[int, int] = {}
            for o in m.resting.values():
                if o.bside == side:
                    live[o.tick] = live.get(o.tick, 0) + o.remaining
            assert {t: q for t, q in enumerate(book.qty) if q} == live
            assert book.best == max(live, default=0)
        held_yes = sum(p.held[YES] for p in m.positions.values())
        held_no = sum(p.held[NO] for p in m.positions.values())
        assert held_yes == held_no == m.open_interest
        if m.status == FINALIZED:
            assert m.open_interest == 0 and not m.resting
        for p in m.positions.values():
            assert 0 <= p.reserved[YES] <= p.held[YES] and 0 <= p.reserved[NO] <= p.held[NO]
    for o in resting(ex):
        assert o.status == RESTING and o.remaining > 0 and o.hold >= 0
        assert o.hold >= o.unit_hold * (o.remaining - o.close_reserved)
    for rec in ex.trades[trades_before:]:
        assert rec[R_T_FEE] >= 0 and rec[R_M_FEE] >= 0 and rec[R_COUNT] > 0
        for order_id in (rec[R_T_ORDER], rec[R_M_ORDER]):
            o = ex.orders[order_id]
            paid = rec[R_YES_TICK] if o.bside == YES else TICKS - rec[R_YES_TICK]
            assert paid <= o.tick, f"order {order_id} bid {o.tick} but paid {paid}"


def random_flow(rng: random.Random, n: int) -> list[tuple[Any, ...]]:
    """Realistic flow: prices around a drifting fair value, closing sells by holders, amends, one settlement."""
    fair = rng.randint(20, 80)
    script: list[tuple[Any, ...]] = []
    settle_point = rng.randrange(n) if rng.random() < 0.4 else None
    for i in range(n):
        if i == settle_point:
            script.append(("settle", rng.choice(MARKETS), rng.choice((0, 10000, rng.randint(0, 10000)))))
        fair = min(90, max(10, fair + rng.randint(-3, 3)))
        r = rng.random()
        if r < 0.70:
            side = rng.choice(("yes", "no"))
            action = "buy" if rng.random() < 0.7 else "sell"
            yes_side = (side == "yes") == (action == "buy")  # bids on the YES book
            book_fair = fair if yes_side else 100 - fair
            bid = min(99, max(1, book_fair + rng.randint(-6, 6)))
            cents = bid if action == "buy" else 100 - bid
            tif = rng.choice(("good_till_canceled",) * 5 + ("immediate_or_cancel", "fill_or_kill"))
            otype = "market" if rng.random() < 0.05 else "limit"
            script.append(("place", rng.choice(ACCOUNTS), rng.choice(MARKETS), side, action, rng.randint(1, 30),
                           cents, tif, otype, rng.random() < 0.1, rng.random() < 0.1))
        elif r < 0.82:
            script.append(("cancel", rng.randrange(1000)))
        elif r < 0.91:
            script.append(("decrease", rng.randrange(1000), rng.randint(1, 15)))
        else:
            script.append(("amend", rng.randrange(1000), min(99, max(1, fair + rng.randint(-8, 8))),
                           rng.randint(1, 40)))
    return script


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dollars=balances, rng=st.randoms(use_true_random=False), n=st.integers(10, 150))
def test_random_order_flow_keeps_every_invariant(dollars: list[int], rng: random.Random, n: int) -> None:
    ex = build(dollars)
    for op in random_flow(rng, n):
        before = len(ex.trades)
        apply(ex, op)
        check(ex, before)
    # settling everything at the end returns every contract's collateral
    for t in MARKETS:
        if ex.markets[t].status != FINALIZED:
            ex.settle_market(t, D("0.5"))
    check(ex, len(ex.trades))
    assert all(not m.resting and m.open_interest == 0 for m in ex.markets.values())
    total = sum((a.balance for a in ex.accounts.values()), D(0))
    assert total + ex.fees_collected + ex.settlement_rounding == sum(a.deposits for a in ex.accounts.values())


@settings(max_examples=60, deadline=None)
@given(dollars=balances, script=ops, settle_point=settle_at, settle_op=settle)
def test_structured_edge_cases_keep_every_invariant(dollars: list[int], script: list[tuple[Any, ...]],
                                                    settle_point: int | None, settle_op: tuple[Any, ...]) -> None:
    ex = build(dollars)
    if settle_point is not None:
        script = [*script[:settle_point], settle_op, *script[settle_point:]]
    for op in script:
        before = len(ex.trades)
        apply(ex, op)
        check(ex, before)


@settings(max_examples=100, deadline=None)
@given(script=st.lists(place, min_size=10, max_size=40))
def test_refused_orders_change_nothing(script: list[tuple[Any, ...]]) -> None:
    """An order the exchange refuses leaves balances, books and order lists exactly as they were."""
    ex = build([5, 5, 5, 5])
    for op in script:
        snapshot = ({a.user_id: (a.balance, len(a.orders)) for a in ex.accounts.values()},
                    {t: ex.orderbook(t) for t in MARKETS}, len(ex.trades))
        try:
            _, user, ticker, side, action, count, cents, tif, otype, post_only, reduce_only = op
            ex.place_order(user, ticker, side, action, count, None if otype == "market" else D(cents) / 100,
                           type=otype, time_in_force=tif, post_only=post_only and tif == "good_till_canceled",
                           reduce_only=reduce_only)
        except ExchangeError:
            after = ({a.user_id: (a.balance, len(a.orders)) for a in ex.accounts.values()},
                     {t: ex.orderbook(t) for t in MARKETS}, len(ex.trades))
            assert after == snapshot
