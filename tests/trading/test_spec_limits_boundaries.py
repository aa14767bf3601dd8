"""Spec 5.1-5.4 clause by clause at the exact boundary: just below, at and just above each threshold, on the
YES and the NO side, through the real fee schedule, decision scan, sizer, risk gate and breaker board.

Each rule here had no test pinning its boundary (the audit of spec 5.1-5.4); the last test is a defect the audit
found: a break-even close ended a method's consecutive-loss streak.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from trading_testkit import NOW, engine, game, intent, market, method, settings

from precog.domain.fees import FeeSchedule
from precog.trading.breakers import BreakerBoard
from precog.trading.method_risk import MethodHistory
from precog.trading.risk import Approval, Rejection, RejectionLog, RiskManager
from precog.trading.settings import BreakerSettings
from precog.trading.sizing import size_position
from precog.trading.views import PositionView

D = Decimal
EVENT = "KXNFLGAME-25DEC28KCBUF"
TICK = D("0.0001")


def _risk(positions: tuple[PositionView, ...] = (), balance: Decimal | None = None, **changes: object) -> RiskManager:
    risk = RiskManager(settings(**changes), recorder=RejectionLog(), clock=lambda: NOW)
    if positions or balance is not None:
        risk.sync(positions, balance)
    return risk


def _stake(**intent_kw: object) -> Decimal:
    """What the gate reserves for the order (price + slippage per contract, plus the fee of the whole order)."""
    out = _risk().approve(intent(**intent_kw))  # type: ignore[arg-type]
    assert isinstance(out, Approval), getattr(out, "reason", "")
    return out.cost


def _held(ticker: str, cost: Decimal, *, event: str | None = None, sport: str = "nfl", side: str = "yes",
          group: str | None = None) -> PositionView:
    return PositionView(ticker, event or f"EV-{ticker}", sport, side, 1, cost, correlation_group=group)


def _check(out: Approval | Rejection) -> str:
    return "approved" if isinstance(out, Approval) else out.check


# ------------------------------------------------------------------ 5.1 fees and edges

def test_the_fee_is_rounded_up_to_the_cent_only_when_it_is_not_whole_cents() -> None:
    """ceil_to_cent(0.07 x C x P x (1 - P)): 100 at 0.10 is exactly $0.63, one more contract is $0.6363 -> $0.64;
    the NO price 0.90 of the same market pays the same fee (P(1 - P) is symmetric)."""
    fees = FeeSchedule()
    assert fees.fee(100, D("0.10")) == D("0.63")
    assert fees.fee(101, D("0.10")) == D("0.64")
    assert fees.fee(100, D("0.90")) == D("0.63") and fees.fee(101, D("0.90")) == D("0.64")
    assert fees.fee(0, D("0.50")) == 0


@pytest.mark.parametrize(("side", "bid", "ask", "p_at", "p_below"), [
    # YES at the 0.52 ask costs 0.52 + 0.02 fee + 0.0026 slippage = 0.5426; the pre-game minimum is 0.08:
    # p_yes 0.6362 shrinks to 0.6226 (edge 0.0800), 0.6361 to 0.6225 (0.0799)
    ("yes", "0.50", "0.52", "0.6362", "0.6361"),
    # NO at 1 - 0.50 = 0.50 costs 0.50 + 0.02 + 0.0025 = 0.5225: p_yes 0.3861 -> P(NO) 0.6025 (edge 0.0800),
    # 0.3862 -> 0.6024 (0.0799)
    ("no", "0.50", "0.52", "0.3861", "0.3862"),
])
def test_an_edge_exactly_at_the_minimum_is_a_signal_and_one_tick_below_is_not(side: str, bid: str, ask: str,
                                                                              p_at: str, p_below: str) -> None:
    """Spec 5.2 "edge >= min" (effective min = max(global 0.05, league nfl 0.05, pre-game 0.08))."""
    m = market(bid=bid, ask=ask)
    pre_game = {EVENT: game(start_in=3 * 3600)}
    at = engine({m.ticker: p_at}).scan([m], pre_game, positions=[], balance=D("10000"), now=NOW)
    edge = next(e for e in at.edges if e.side == side)
    assert edge.edge == D("0.0800") and edge.min_edge == D("0.08")
    assert edge.signal and edge.reason is None
    assert [a.intent.side for a in at.approved] == [side]  # the risk gate agrees at the boundary
    below = engine({m.ticker: p_below}).scan([m], pre_game, positions=[], balance=D("10000"), now=NOW)
    edge = next(e for e in below.edges if e.side == side)
    assert edge.edge == D("0.0799") and edge.reason == "edge_below_min" and not below.approved


# ------------------------------------------------------------------ 5.3 Kelly sizing, whole contracts, $ caps

def test_a_no_side_entry_is_sized_by_kelly_under_the_500_dollar_cap_in_whole_contracts() -> None:
    """NO at 1 - 0.42 = 0.58: cost 0.58 + 0.02 fee + 0.0029 slippage = 0.6029; P(NO) = 1 - shrink(0.2778) = 0.70;
    f* = 0.0971 / 0.3971; Kelly 0.25 x $10,000 x f* = $611.30, capped at 5 % of $10,000 = $500.
    833 contracts commit 833 x 0.5829 + fee $14.21 = $499.7657; an 834th would commit $500.3686."""
    m = market(bid="0.42", ask="0.44")
    result = engine({m.ticker: "0.2778"}).scan([m], {EVENT: game(start_in=3 * 3600)}, positions=[],
                                               balance=D("10000"), now=NOW)
    (approval,) = result.approved
    it = approval.intent
    assert (it.side, it.price, it.fee_per_contract, it.slippage, it.edge) == (
        "no", D("0.58"), D("0.02"), D("0.0029"), D("0.0971"))
    sized = result.sized[m.ticker]
    assert sized.kelly == D("0.0971") / D("0.3971")
    assert sized.target == D("10000") * sized.kelly * D("0.25")
    assert sized.count == it.quantity == 833 and sized.limit == "max_position_pct"
    fees = FeeSchedule()
    assert fees.fee(833, D("0.58")) == D("14.21")
    assert sized.stake == approval.cost == D("0.5829") * 833 + D("14.21") == D("499.7657")
    assert D("0.5829") * 834 + fees.fee(834, D("0.58")) > D("500")
    assert it.order_type == "limit"  # edge 0.0971 < 0.15


def test_the_minimum_position_admits_exactly_the_minimum_and_refuses_a_hundredth_of_a_cent_less() -> None:
    """Spec 5.3 "min $10": an order committing exactly the minimum trades; one committing less does not."""
    fees = FeeSchedule()

    def size(min_position: Decimal):  # type: ignore[no-untyped-def]
        return size_position(p=D("0.70"), price=D("0.52"), fee_per_contract=D("0.02"), slippage=D("0.0026"),
                             fees=fees, bankroll=D("10000"), fraction=D("0.25"), caps=[("cap", D("10.30"))],
                             min_position=min_position)

    # $10.30 buys 19 contracts: 19 x 0.5226 + fee(19) 0.34 = 10.2694
    exact = size(D("10.2694"))
    assert exact.count == 19 and exact.stake == D("10.2694") and exact.limit == "cap"
    refused = size(D("10.2695"))
    assert refused.count == 0 and refused.limit == "below_min_position:cap"
    # the packaged minimum: $10.00 of room buys 18 contracts committing $9.7268 -> nothing
    tight = size_position(p=D("0.70"), price=D("0.52"), fee_per_contract=D("0.02"), slippage=D("0.0026"), fees=fees,
                          bankroll=D("10000"), fraction=D("0.25"), caps=[("cap", D("10.00"))], min_position=D("10"))
    assert tight.count == 0


@pytest.mark.parametrize(("balance", "cap"), [(D("10000"), D("500")), (D("4000"), D("200"))])
def test_the_position_cap_is_the_smaller_of_500_dollars_and_5_percent_of_the_balance(balance: Decimal,
                                                                                      cap: Decimal) -> None:
    """Adding to a held position: approved when market exposure + order == cap, refused 0.0001 above."""
    stake = _stake()
    ticker = market().ticker
    at = _risk((_held(ticker, cap - stake, event=EVENT),), balance)
    assert _check(at.approve(intent())) == "approved"
    above = _risk((_held(ticker, cap - stake + TICK, event=EVENT),), balance)
    out = above.approve(intent())
    assert _check(out) == "market_exposure" and f"> {cap}" in out.reason  # type: ignore[union-attr]


# ------------------------------------------------------------------ 5.2 / 5.3 pre-trade limits

@pytest.mark.parametrize(("side", "bid", "ask", "wider_ask"), [
    ("yes", "0.38", "0.40", "0.41"),  # YES price 0.40: 5 % = 0.02
    ("no", "0.60", "0.62", "0.63"),  # NO price 1 - 0.60 = 0.40: 5 % = 0.02
])
def test_spread_exactly_five_percent_of_the_side_s_price_passes(side: str, bid: str, ask: str,
                                                                wider_ask: str) -> None:
    """trading.yaml max_spread_pct 0.05 with spread_pct = (ask - bid) / ask, on the side bought."""
    assert _check(_risk().approve(intent(market(bid=bid, ask=ask), side=side))) == "approved"
    out = _risk().approve(intent(market(bid=bid, ask=wider_ask), side=side))
    assert _check(out) == "spread"


def test_game_exposure_exactly_1500_passes_and_a_hundredth_of_a_cent_more_does_not() -> None:
    stake = _stake()
    other = f"{EVENT}-SPREAD"  # another market of the same game, the other side: both count
    at = _risk((_held(other, D("1500") - stake, event=EVENT, side="no"),))
    assert _check(at.approve(intent())) == "approved"
    above = _risk((_held(other, D("1500") - stake + TICK, event=EVENT, side="no"),))
    assert _check(above.approve(intent())) == "game_exposure"


def test_total_correlated_and_sport_exposure_pass_exactly_at_their_caps() -> None:
    stake = _stake()
    # total $10,000 (held in another sport, so the nfl share does not bind)
    at = _risk((_held("NBA-1", D("10000") - stake, sport="nba"),))
    assert _check(at.approve(intent())) == "approved"
    assert _check(_risk((_held("NBA-1", D("10000") - stake + TICK, sport="nba"),)).approve(intent())) \
        == "total_exposure"
    # correlated group $3,000 (position_management.yaml; stricter than MR's $5,000)
    slate = replace(market(), correlation_group="slate")
    held = _held("NFL-2", D("3000") - stake, group="slate")
    assert _check(_risk((held,)).approve(intent(slate))) == "approved"
    held = _held("NFL-2", D("3000") - stake + TICK, group="slate")
    assert _check(_risk((held,)).approve(intent(slate))) == "correlated_exposure"
    # nfl share 0.60 of the $10,000 total = $6,000 (three positions in separate slates)
    spread = (_held("NFL-A", D("2000"), group="a"), _held("NFL-B", D("2000"), group="b"))
    assert _check(_risk((*spread, _held("NFL-C", D("2000") - stake, group="c"))).approve(intent())) == "approved"
    out = _risk((*spread, _held("NFL-C", D("2000") - stake + TICK, group="c"))).approve(intent())
    assert _check(out) == "sport_exposure"


def test_open_positions_and_positions_per_game_stop_at_their_maximum() -> None:
    """open positions < 10 (the 10th opens, an 11th does not); per game <= 3 positions."""
    nine = tuple(_held(f"T{i}", D("1")) for i in range(9))
    assert _check(_risk(nine).approve(intent())) == "approved"
    ten = (*nine, _held("T9", D("1")))
    assert _check(_risk(ten).approve(intent())) == "position_count"
    two = (_held(f"{EVENT}-A", D("1"), event=EVENT), _held(f"{EVENT}-B", D("1"), event=EVENT))
    assert _check(_risk(two).approve(intent())) == "approved"
    three = (*two, _held(f"{EVENT}-C", D("1"), event=EVENT))
    assert _check(_risk(three).approve(intent())) == "game_positions"


def test_the_minimum_balance_to_trade_is_inclusive() -> None:
    """Spec 5.4 "min balance < $1,000 -> stop trading": $1,000.00 trades, $999.99 does not."""
    assert _check(_risk(balance=D("1000.00")).approve(intent())) == "approved"
    assert _check(_risk(balance=D("999.99")).approve(intent())) == "balance"


# ------------------------------------------------------------------ 5.4 breaker windows

def test_edge_anomaly_and_data_quality_windows_exclude_their_first_instant() -> None:
    """"3 edges >= 0.30 in 10 min" and "3 bad points" (5 min): an event exactly a window ago is outside it."""
    board = BreakerBoard(BreakerSettings(), clock=lambda: NOW)
    board.record_edge(D("0.30"), at=NOW - 600)
    board.record_edge(D("0.30"), at=NOW - 1)
    board.record_edge(D("0.30"), at=NOW)
    assert not board.is_open("edge_anomaly")
    board.record_edge(D("0.30"), at=NOW)
    assert board.is_open("edge_anomaly")
    board = BreakerBoard(BreakerSettings(), clock=lambda: NOW)
    for at in (NOW - 300, NOW - 1, NOW):
        board.record_data_quality_failure("missing fields", at=at)
    assert not board.is_open("data_quality")
    board.record_data_quality_failure("missing fields", at=NOW)
    assert board.is_open("data_quality")


def test_weekly_loss_trips_at_exactly_1500_counting_unrealized() -> None:
    board = BreakerBoard(replace(BreakerSettings(), daily_loss_limit=D("100000")), clock=lambda: NOW)
    board.record_trade_result(D("-1000"), at=NOW - 3600)
    board.record_pnl(D("-499.99"), at=NOW)
    assert not board.is_open("weekly_loss_limit")
    board.record_pnl(D("-500.00"), at=NOW)
    assert board.is_open("weekly_loss_limit")


# ------------------------------------------------------------------ a method's own loss streak

def test_a_break_even_close_neither_counts_nor_ends_a_method_s_loss_streak() -> None:
    """docs/trading.md: "a winning close resets" the method's consecutive-loss count; the global breaker board
    treats a $0 close the same way (neither counts nor resets). The method's streak used to end at a $0 close:
    loss, scratch, loss ... five losses never stopped the method."""
    m7 = method(7, circuit_breakers={"consecutive_losses": 3})
    closes = [(NOW - 500, D("-1")), (NOW - 400, D("-1")), (NOW - 300, D("0")), (NOW - 200, D("-1"))]
    risk = RiskManager(settings(), recorder=RejectionLog(), clock=lambda: NOW)
    risk.set_method_history(MethodHistory({7: closes}))
    out = risk.approve(intent(meth=m7))
    assert _check(out) == "method_consecutive_losses", getattr(out, "reason", "")
    assert "last 3 closed positions lost" in out.reason  # type: ignore[union-attr]
    risk.set_method_history(MethodHistory({7: [*closes[:3], (NOW - 200, D("0.01"))]}))
    assert _check(risk.approve(intent(meth=m7))) == "approved"  # a winning close ends it
    board = BreakerBoard(replace(BreakerSettings(), consecutive_losses=3), clock=lambda: NOW)
    for at, pnl in closes:
        board.record_trade_result(pnl, at=at)
    assert board.is_open("consecutive_losses")  # the board agrees
