"""Money-path audit: what an approved entry may commit, fills, partial exits and settlement to the cent.

The defect this file was written for: a market-style entry of the trading loop (`precog demo`, `precog run
--venue local`, backtests) may fill up to its limit, above the ask, and on the cheap side of the book (below 0.50)
the fee per contract grows with the price. The risk gate priced the order's fee at the ask and the bridge's cut to
the room left counted the one-contract fee at the ask, so an order could be approved whose fills at its limit
commit more than the cap it was approved under (trading.yaml execution.max_slippage_pct may be up to 0.10).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from trading_testkit import NOW, intent, market, settings

from engine.bookkit import fill, order
from precog.config.loader import load_config
from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.domain.order import Action, Side
from precog.engine.demo import ensure_demo_methods
from precog.engine.entries import Edge, EngineRisk, EntryPlan
from precog.trading.portfolio import Portfolio
from precog.trading.risk import Approval, Rejection, RiskManager
from precog.trading.settings import TradingSettings
from precog.trading.settlement import settle_market
from precog.trading.sizing import contracts_for
from precog.trading.views import PositionView

D = Decimal
EVENT = "KXNFLGAME-T"
FEES = FeeSchedule()


def _worst_commit(quantity: int, limit: Decimal) -> Decimal:
    """The most an IoC buy of `quantity` at `limit` can cost: every contract at the limit with its fee (price plus
    fee per contract rises with the price, so no fill at or below the limit costs more)."""
    return limit * quantity + FEES.fee(quantity, limit)


def _market(bid: str, ask: str) -> Market:
    b, a = D(bid), D(ask)
    return Market(ticker=f"{EVENT}-BUF", event_ticker=EVENT, status=MarketStatus.OPEN, venue_status="active",
                  yes_bid=b, yes_ask=a, no_bid=1 - a, no_ask=1 - b, last_price=b, volume=D("1000"),
                  volume_24h=D("1000"), open_interest=D("1000"), yes_bid_size=D("1000"), yes_ask_size=D("1000"),
                  open_time=datetime.fromtimestamp(NOW, UTC) - timedelta(days=1),
                  close_time=datetime.fromtimestamp(NOW, UTC) + timedelta(hours=2))


def _bridge(conn: psycopg.Connection[Any], held_in_game: Decimal) -> tuple[EngineRisk, Any]:
    specs = ensure_demo_methods(conn)
    bridge = EngineRisk(conn, TradingSettings.from_config(load_config(use_env=False)), mode="paper", record=False)
    bridge.load_units(specs)
    bridge.sync([PositionView(f"{EVENT}-SPREAD", EVENT, "nfl", "yes", 100, held_in_game)], D("10000"), now=NOW)
    return bridge, specs[0]


def test_a_market_style_entry_never_commits_more_than_the_room_it_was_approved_in(db_url: str) -> None:
    """$100 left in the game ($1,400 of $1,500 held). An immediate-or-cancel buy at the 0.17 ask with its limit at
    0.18 (max_slippage_pct 0.10 allows 0.187 -> 0.18). Before the fix: 526 contracts approved for $99.88 (the fee
    priced at 0.17: $5.20), while 526 filled at 0.18 cost 94.68 + fee $5.44 = $100.12 — 12 cents over the cap."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        bridge, spec = _bridge(conn, D("1400"))
        edge = Edge("yes", D("0.40"), D("0.17"), D("0.01"), D("0.22"))
        plan = EntryPlan("yes", 526, D("0.18"), "market", "immediate_or_cancel", edge)
        out = bridge.approve(plan, _market("0.1650", "0.17"), spec, event_id=EVENT, sport="nfl", confidence="high",
                             now=NOW)
        assert isinstance(out, Approval), out.reason
        worst = _worst_commit(out.intent.quantity, plan.limit_price)
        assert worst <= D("100"), f"{out.intent.quantity} contracts can commit ${worst} in $100 of room"
        assert out.cost >= worst, f"reserved ${out.cost}, the order can commit ${worst}"
        assert out.intent.quantity == 500  # 100 / (0.18 + 0.02): the most whole contracts the bridge can prove


def test_the_gate_prices_the_fee_at_the_limit_an_order_may_fill_at() -> None:
    """The gate alone: market cap $100; 526 at the 0.17 ask with slippage up to a 0.18 limit."""
    risk = RiskManager(settings(max_position_dollars=D("100")), clock=lambda: NOW)
    m = market(bid="0.1650", ask="0.17")
    base = intent(m, count=526, p="0.40")
    over = base._replace(slippage=D("0.01"), limit_price=D("0.18"))
    out = risk.approve(over)
    assert isinstance(out, Rejection) and out.check == "market_exposure", getattr(out, "cost", None)
    fits = base._replace(quantity=500, slippage=D("0.01"), limit_price=D("0.18"))
    ok = risk.approve(fits)
    assert isinstance(ok, Approval), ok.reason
    assert ok.cost == _worst_commit(500, D("0.18")) == D("95.17")


def test_an_intent_without_a_limit_is_priced_as_before() -> None:
    """The decision layer sends at the ask (its slippage is an allowance, not a higher limit): its stake keeps the
    fee at the ask."""
    risk = RiskManager(settings(), clock=lambda: NOW)
    it = intent(count=100, p="0.70")
    out = risk.approve(it)
    assert isinstance(out, Approval), out.reason
    assert out.cost == (it.price + it.slippage) * 100 + FEES.fee(100, it.price)


def test_a_market_order_pays_the_taker_fee_even_when_limits_are_assumed_to_rest() -> None:
    """probability_models.edge_detection.assume_taker: false prices resting limit orders at the maker fee; a market
    order takes liquidity, so the gate reserves its taker fee (it was priced at the maker fee, 0 by default)."""
    risk = RiskManager(replace(settings(), assume_taker=False), clock=lambda: NOW)
    limit_order = intent(count=100, p="0.70")
    market_order = limit_order._replace(order_type="market")
    rested = risk.approve(limit_order)
    taken = risk.approve(market_order)
    assert isinstance(rested, Approval) and isinstance(taken, Approval)
    stake = (limit_order.price + limit_order.slippage) * 100
    assert rested.cost == stake + FEES.fee(100, limit_order.price, taker=False)
    assert taken.cost == stake + FEES.fee(100, limit_order.price) > rested.cost


# ------------------------------------------------------------------ sizing and fees never exceed the stake

cents = st.integers(min_value=1, max_value=99).map(lambda c: D(c) / 100)
subcents = st.integers(min_value=1, max_value=9999).map(lambda c: D(c) / 10000)


@hsettings(max_examples=400, deadline=None)
@given(stake=st.integers(min_value=0, max_value=500_000).map(lambda c: D(c) / 100), price=st.one_of(cents, subcents),
       slip=st.integers(min_value=0, max_value=50).map(lambda c: D(c) / 10000))
def test_contracts_for_is_the_most_whole_contracts_within_the_stake(stake: Decimal, price: Decimal,
                                                                    slip: Decimal) -> None:
    count, committed, fee = contracts_for(stake, price, slip, FEES)
    assert committed <= stake and fee == FEES.fee(count, price)
    assert committed == (price + slip) * count + fee
    assert (price + slip) * (count + 1) + FEES.fee(count + 1, price) > stake


@hsettings(max_examples=300, deadline=None)
@given(count=st.integers(min_value=0, max_value=100_000), price=st.one_of(cents, subcents))
def test_the_fee_is_a_whole_cent_never_below_the_formula_and_less_than_a_cent_above(count: int,
                                                                                   price: Decimal) -> None:
    fee = FEES.fee(count, price)
    raw = D("0.07") * count * price * (1 - price)
    assert fee == fee.quantize(D("0.01")) and raw <= fee < raw + D("0.01")


def test_fee_edges() -> None:
    assert FEES.fee(0, D("0.50")) == 0
    assert FEES.fee(1, D("0.01")) == D("0.01") and FEES.fee(1, D("0.99")) == D("0.01")
    assert FEES.fee(100, D("0.50")) == D("1.75")
    assert FEES.fee(1, D("0")) == 0 and FEES.fee(1, D("1")) == 0


def test_maker_fee_and_multiplier() -> None:
    maker = replace(FEES, maker_rate=D("0.0175"))
    assert maker.fee(100, D("0.50"), taker=False) == D("0.44")
    assert replace(FEES, multiplier=D("0.5")).fee(100, D("0.50")) == D("0.88")  # 0.875 rounds up


# ------------------------------------------------------------------ cost basis, partial exits, settlement

def _sells_minus_buys(conn: psycopg.Connection[Any], market_id: str) -> Decimal:
    row = conn.execute("SELECT coalesce(sum(CASE WHEN action = 'sell' THEN price * quantity ELSE -price * quantity "
                       "END - fees), 0) FROM trades WHERE market_id = %s", (market_id,)).fetchone()
    assert row is not None
    return Decimal(row[0])


@pytest.mark.parametrize("side", ["yes", "no"])
def test_realized_pnl_over_fills_partial_exits_a_restart_and_a_fractional_settlement_is_the_cash(
        db_url: str, side: str) -> None:
    """Three buys at different prices (each with its fee), two partial sells, a restart (the book read back from
    the database), then a fractional settlement (YES pays 0.37, NO 0.63) of the 9 left: the position's realized
    P&L, the sum of its exit and settlement rows, and the cash the trades and payout moved agree to the cent
    (fees counted once)."""
    market_id = f"KXNFLGAME-26JAN04-MONEY-{side.upper()}"
    when = datetime(2026, 1, 4, 21, tzinfo=UTC)

    def f(fid: str, action: Action, count: int, price: str, fee: str) -> Any:
        # bookkit fills are YES fills at `price`; a NO fill at `price` is a YES print at 1 - price
        base = fill(market_id, f"{side}-{fid}", action, count, price if side == "yes" else str(1 - D(price)))
        return replace(base, side=Side(side), fee=D(fee))

    def o(oid: int, action: str, position_id: int | None, qty: int) -> Any:
        return replace(order(market_id, oid, action, position_id, qty, mode="paper"), side=side)

    with psycopg.connect(db_url, autocommit=True) as conn:
        book = Portfolio(conn, "kalshi", "paper")
        first = book.book_fill(f("b1", Action.BUY, 10, "0.40", "0.17"), o(1, "buy", None, 10), when)
        assert first is not None
        pid = first.position.position_id
        book.book_fill(f("b2", Action.BUY, 7, "0.43", "0.13"), o(2, "buy", pid, 7), when)
        book.book_fill(f("b3", Action.BUY, 3, "0.41", "0.06"), o(3, "buy", pid, 3), when)
        pos = book.get(pid)
        assert pos is not None and pos.quantity == 20
        assert pos.cost_basis == D("4.00") + D("3.01") + D("1.23") + D("0.36")  # 8.60, fees included once
        s1 = book.book_fill(f("s1", Action.SELL, 5, "0.60", "0.07"), o(4, "sell", pid, 5), when)
        s2 = book.book_fill(f("s2", Action.SELL, 6, "0.55", "0.09"), o(5, "sell", pid, 6), when)
        assert s1 is not None and s2 is not None
        # shares of the cost basis: 8.60 x 5/20 = 2.15, then 6.45 x 6/15 = 2.58
        assert s1.realized == D("3.00") - D("0.07") - D("2.15")
        assert s2.realized == D("3.30") - D("0.09") - D("2.58")

        reread = Portfolio(conn, "kalshi", "paper").get(pid)  # a restart reads the book back
        assert reread is not None and reread.quantity == 9 and reread.cost_basis == D("3.87")
        assert reread.realized_pnl == s1.realized + s2.realized

        done = settle_market(Portfolio(conn, "kalshi", "paper"), market_id, D("0.37"), when)
        unit = D("0.37") if side == "yes" else D("0.63")
        assert [d.payout for d in done] == [(unit * 9).quantize(D("0.01"))]  # 3.33 / 5.67: whole cents
        final = Portfolio(conn, "kalshi", "paper").get(pid)
        assert final is not None and final.status == "settled" and final.quantity == 0
        cash = _sells_minus_buys(conn, market_id) + done[0].payout
        assert final.realized_pnl == cash == done[0].position_pnl
        row = conn.execute("SELECT (SELECT sum(realized_pnl) FROM position_exits WHERE position_id = %s), "
                           "(SELECT sum(realized_pnl) FROM settlements WHERE position_id = %s)", (pid, pid)).fetchone()
        assert row is not None and row[0] + row[1] == cash


def test_a_fractional_fill_is_refused_not_truncated(db_url: str) -> None:
    """Kalshi's `*_fp` counts allow 0.01 contracts on markets with fractional trading. Our books hold whole
    contracts: `int()` booked a 2.50-contract fill as 2, silently losing half a contract of cash and P&L. Now the
    fill is refused with its id (the executor raises `fill_not_booked`) and nothing is written."""
    market_id = "KXNFLGAME-26JAN04-FRACTION-YES"
    when = datetime(2026, 1, 4, 21, tzinfo=UTC)
    half = replace(fill(market_id, "frac-1", Action.BUY, 1, "0.40"), count=D("2.50"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        book = Portfolio(conn, "kalshi", "paper")
        with pytest.raises(RuntimeError, match=r"fill frac-1 on KXNFLGAME-26JAN04-FRACTION-YES: 2.50 contracts is not a "
                                             r"whole number"):
            book.book_fill(half, replace(order(market_id, 1, "buy", None, 3, mode="paper")), when)
        assert conn.execute("SELECT count(*) FROM positions WHERE market_id = %s", (market_id,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM trades WHERE market_id = %s", (market_id,)).fetchone() == (0,)
