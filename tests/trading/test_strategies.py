"""The four entry strategies decide from market, game state and forecast whether an edge is a signal."""

from __future__ import annotations

from decimal import Decimal

from trading_testkit import NOW, game, market, strategy

D = Decimal


def test_pre_game_window_and_gates() -> None:
    s = strategy("pre_game_entry")
    assert s.phase_block(market(), game(start_in=3600), NOW) is None
    assert s.phase_block(market(), game(start_in=0.5 * 3600), NOW) is None  # exactly 30 min before
    assert s.phase_block(market(), game(start_in=0.5 * 3600 - 1), NOW) == "outside_pregame_window"
    assert s.phase_block(market(), game(start_in=24 * 3600 + 1), NOW) == "outside_pregame_window"
    assert s.phase_block(market(), game("live"), NOW) == "game_started"
    assert s.phase_block(market(start_in=7200), None, NOW) is None  # no state: the event's start time
    assert s.phase_block(market(market_kind="player_props"), game(), NOW) == "market_kind_not_traded"
    assert s.phase_block(market(), game(metadata={"key_injuries": 2}), NOW) == "key_injuries"
    assert s.phase_block(market(sport="nba"), game(sport="nba", metadata={"key_injuries": 2}), NOW) is None
    assert s.phase_block(market(), game(metadata={"wind_mph": 21}), NOW) == "wind"
    assert s.phase_block(market(), game(metadata={"wind_mph": 20}), NOW) is None
    assert s.phase_block(market(), game(metadata={"snow": True}), NOW) == "snow"
    assert s.phase_block(market(), game(metadata={"lineup_confirmed": False}), NOW) == "lineup_not_confirmed"
    assert s.min_edge_for("nfl") == D("0.08") and s.min_edge_for("nba") == D("0.10")


def test_halftime_window_lead_and_first_half_gates() -> None:
    s = strategy("halftime_entry", min_lead=7)
    ht = dict(period=2, clock=0, home=17, away=10)
    assert s.phase_block(market(), game("halftime", halftime_started_ago=600, **ht), NOW) is None
    assert s.phase_block(market(), game("halftime", halftime_started_ago=601, **ht), NOW) == "halftime_window_passed"
    assert s.phase_block(market(), game("live", **ht), NOW) == "not_halftime"
    assert s.phase_block(market(), game("halftime", halftime_started_ago=60, period=2, home=13, away=10),
                         NOW) == "lead_below_min"
    assert s.phase_block(market(), game("halftime", halftime_started_ago=60, metadata={"first_half_turnovers": 5},
                                        **ht), NOW) == "too_many_turnovers"
    assert s.phase_block(market(), None, NOW) == "no_game_state"
    assert s.side_block(market(bid="0.40", ask="0.48"), None, "yes", D("0.6"), NOW) is None
    assert s.side_block(market(bid="0.40", ask="0.49"), None, "yes", D("0.6"), NOW) == "spread_above_strategy_max"
    assert s.min_edge_for("nba") == D("0.07")


def test_live_trading_needs_a_fresh_trigger_event() -> None:
    s = strategy("live_trading")
    touchdown = {"last_play_type": "touchdown"}
    assert s.phase_block(market(), game("live", observed_ago=10, metadata=touchdown), NOW) is None
    assert s.phase_block(market(), game("live", observed_ago=11, metadata=touchdown), NOW) == "event_too_old"
    assert s.phase_block(market(), game("live", metadata={"last_play_type": "punt"}), NOW) == "no_trigger_event"
    assert s.phase_block(market(), game("halftime", metadata=touchdown), NOW) == "not_live"


def test_settlement_arbitrage_buys_only_a_decided_leader() -> None:
    s = strategy("settlement_arbitrage")
    decided = game("live", period=4, clock=90, home=24, away=17, possession="home", away_timeouts=0)
    kc = market(yes_team="home", bid="0.95", ask="0.96")
    assert s.phase_block(kc, decided, NOW) is None
    assert s.side_block(kc, decided, "yes", D("0.985"), NOW) is None
    assert s.side_block(kc, decided, "yes", D("0.979"), NOW) == "probability_below_min"
    assert s.side_block(kc, decided, "no", D("0.99"), NOW) == "not_the_leader"
    buf = market(ticker="KXNFLGAME-25DEC28KCBUF-BUF", yes_team="away", bid="0.03", ask="0.04")
    assert s.side_block(buf, decided, "no", D("0.985"), NOW) is None  # NO on the trailing team = the leader
    # the rule needs the opponent out of timeouts, possession, <= 90 s
    assert s.phase_block(kc, game("live", period=4, clock=90, home=24, away=17, possession="home", away_timeouts=1),
                         NOW) == "game_not_decided"
    assert s.phase_block(kc, game("live", period=4, clock=90, home=24, away=17, possession="away", away_timeouts=0),
                         NOW) == "game_not_decided"
    assert s.phase_block(kc, game("live", period=4, clock=91, home=24, away=17, possession="home", away_timeouts=0),
                         NOW) == "game_not_decided"
    assert s.phase_block(kc, game("live", period=4, clock=121, home=45, away=17), NOW) == "too_much_time_left"
    assert s.phase_block(kc, game("live", period=4, clock=120, home=45, away=17), NOW) is None  # 21+ lead rule
    assert s.phase_block(kc, game("live", period=4, clock=100, home=24, away=17, possession="home",
                                  metadata={"victory_formation": True}), NOW) is None  # the leader kneels
    nba = game("live", sport="nba", period=4, clock=120, home=100, away=85)
    assert s.phase_block(market(sport="nba"), nba, NOW) is None
    assert s.order_type == "market" and s.kelly_fraction == D("0.50") and s.max_position_dollars == D("1000.00")
