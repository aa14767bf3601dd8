"""The in-memory decision scan: edges for every market and unit, one intent per market, risk on the way."""

from __future__ import annotations

from decimal import Decimal

from trading_testkit import NOW, engine, game, market, method, settings, strategy

from precog.trading.breakers import BreakerBoard
from precog.trading.risk import Approval

D = Decimal
EVENT = "KXNFLGAME-25DEC28KCBUF"


def test_every_market_gets_both_sides_for_every_unit() -> None:
    markets = [market(ticker=f"{EVENT}-{i}", bid="0.40", ask="0.42") for i in range(3)]
    eng = engine({m.ticker: "0.50" for m in markets},
                 strategies=(strategy("pre_game_entry"), strategy("halftime_entry", strategy_id=2)))
    result = eng.scan(markets, {}, now=NOW)
    assert result.markets == 3 and len(result.edges) == 3 * 2 * 2
    keys = {e.edge_key for e in result.edges}
    assert len(keys) == 12  # market | side | strategy | model | method
    assert {e.side for e in result.edges} == {"yes", "no"}
    assert all(e.reason is not None for e in result.edges)  # 0.50 vs 0.42: edge 0.0565 < 0.08 minimum
    assert result.signals == 0 and not result.approved


def test_a_signal_becomes_one_sized_approved_intent() -> None:
    m = market(bid="0.50", ask="0.52")
    eng = engine({m.ticker: "0.75"})  # shrunk to 0.725; YES costs 0.52 + 0.02 + 0.0026
    result = eng.scan([m], {EVENT: game(start_in=3 * 3600)}, positions=[], balance=D("10000"), now=NOW)
    yes = next(e for e in result.edges if e.side == "yes")
    assert yes.edge == D("0.1824") and yes.signal and yes.action == "auto_execute"
    assert len(result.approved) == 1
    approval = result.approved[0]
    assert isinstance(approval, Approval)
    it = approval.intent
    assert it.side == "yes" and it.price == D("0.52") and it.quantity > 0
    assert it.order_type == "market"  # edge >= 0.15: market-style entry
    # $10,000 bankroll: Kelly stake is capped at max_position_pct 5% = $500, and the $500 position cap
    assert it.stake <= D("500") and result.sized[m.ticker].limit in ("max_position_pct", "market_exposure")
    assert approval.cost == it.stake


def test_edges_below_the_minimum_and_outside_the_moment_are_not_signals() -> None:
    m = market(bid="0.50", ask="0.52")
    live = game("live", period=2, clock=300)
    result = engine({m.ticker: "0.75"}).scan([m], {EVENT: live}, now=NOW)
    yes = next(e for e in result.edges if e.side == "yes")
    assert not yes.signal and yes.reason == "game_started"
    no = next(e for e in result.edges if e.side == "no")
    assert no.reason == "edge_below_min"


def test_strategy_priority_picks_one_intent_per_market() -> None:
    """Live trading and settlement arbitrage both signal on a decided game: one intent, by priority or edge."""
    m = market(bid="0.82", ask="0.83", yes_team="home", volume=5000)
    decided = game("live", period=4, clock=60, home=28, away=17, possession="home", away_timeouts=0,
                   observed_ago=2, metadata={"last_play_type": "touchdown"})
    units = (strategy("settlement_arbitrage", strategy_id=4), strategy("live_trading", strategy_id=2))
    result = engine({m.ticker: "0.999"}, strategies=units).scan([m], {EVENT: decided}, positions=[],
                                                               balance=D("10000"), now=NOW)
    edges = {(e.strategy_id, e.side): e for e in result.edges}
    assert edges[(2, "yes")].edge == D("0.1049")  # live trading: p shrunk to 0.9491, cost 0.8442
    assert edges[(4, "yes")].edge == D("0.1548")  # settlement arbitrage: no shrinkage, p 0.999
    assert result.signals == 2 and len(result.approved) == 1
    assert result.approved[0].intent.strategy.name == "live_trading"  # priority: live before settlement
    best = engine({m.ticker: "0.999"}, strategies=units, cfg=settings(selection_method="best_edge"))
    result = best.scan([m], {EVENT: decided}, positions=[], balance=D("10000"), now=NOW)
    assert result.approved[0].intent.strategy.name == "settlement_arbitrage"  # 0.05 better than live
    assert result.approved[0].intent.order_type == "market"


def test_a_method_trades_only_its_sports_and_overrides_the_minimum_edge() -> None:
    nfl = market(bid="0.50", ask="0.52")
    nba = market(ticker="KXNBAGAME-X-A", event="KXNBAGAME-X", sport="nba", bid="0.50", ask="0.52")
    eng = engine({nfl.ticker: "0.62", nba.ticker: "0.62"}, methods=(method(sports=("nfl",), min_edge_threshold="0.05"),))
    result = eng.scan([nfl, nba], {}, positions=[], balance=D("10000"), now=NOW)
    assert {e.ticker for e in result.edges} == {nfl.ticker}  # the method does not trade nba
    yes = next(e for e in result.edges if e.side == "yes")
    assert yes.edge == D("0.0654") and yes.min_edge == D("0.05") and yes.signal  # 0.05 < 0.08 pre-game minimum
    assert yes.method_id == 7


def test_out_of_scope_markets_are_skipped() -> None:
    cfg = settings()
    markets = [market(ticker="KXNFLGAME-A-PROP", event="A"), market(ticker="B", event="B", status="closed"),
               market(ticker="C", event="C", category="politics")]
    result = engine({m.ticker: "0.9" for m in markets}, cfg=cfg).scan(markets, {}, now=NOW)
    assert result.skipped == {"blacklisted": 1, "not_open": 1, "excluded_category": 1}
    assert result.edges == []


def test_size_zero_is_recorded_as_a_rejection() -> None:
    m = market(bid="0.50", ask="0.52")
    result = engine({m.ticker: "0.75"}).scan([m], {EVENT: game(start_in=3 * 3600)}, positions=[],
                                             balance=D("150"), now=NOW)  # 5% of $150 < the $10 minimum
    assert not result.approved
    assert result.rejections[0].check == "size" and "below_min_position" in result.rejections[0].reason


def test_anomalous_edges_feed_the_edge_anomaly_breaker() -> None:
    markets = [market(ticker=f"{EVENT}-{i}", bid="0.20", ask="0.21") for i in range(3)]
    eng = engine({m.ticker: "0.95" for m in markets})
    board = BreakerBoard(settings().breakers, clock=lambda: NOW)
    eng.breakers = board
    eng.risk.gate = board
    result = eng.scan(markets, {EVENT: game(start_in=3 * 3600)}, positions=[], balance=D("10000"), now=NOW)
    assert board.is_open("edge_anomaly")  # three YES edges >= 0.30 in one scan
    assert any(r.check == "trading_state" for r in result.rejections)


def test_forecast_with_no_opinion_produces_no_edges() -> None:
    m = market()
    result = engine({}).scan([m], {}, now=NOW)
    assert result.edges == [] and result.markets == 1


def test_a_market_style_signal_is_sized_at_the_taker_fee_even_when_limits_are_assumed_to_rest() -> None:
    """edge_detection.assume_taker: false prices resting limits at the maker fee, but a market-style entry takes
    liquidity and the risk gate reserves its taker fee: sized at the maker fee up to the $500 cap, it was refused
    by the gate at the cap; sized at the taker fee it fits and is approved for what it can cost."""
    m = market(bid="0.50", ask="0.52")
    cfg = settings(assume_taker=False)
    result = engine({m.ticker: "0.75"}, cfg=cfg).scan([m], {EVENT: game(start_in=3 * 3600)}, positions=[],
                                                       balance=D("10000"), now=NOW)
    assert not result.rejections, [r.reason for r in result.rejections]
    assert len(result.approved) == 1
    approval = result.approved[0]
    assert isinstance(approval, Approval) and approval.intent.order_type == "market"
    assert approval.cost == approval.intent.stake <= D("500")
