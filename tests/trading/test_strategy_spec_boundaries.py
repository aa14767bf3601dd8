"""Spec 5.10-5.11 clause by clause: each entry strategy's moment and side rules at their boundaries (just before, at,
just after; YES and NO; every sport the strategy covers), the market-order edge, and the trade_strategies.yaml
blocks (a typo is refused naming the file and the key, never left on a built-in default).

Defects this pins (each assertion marked DEFECT failed before the fix):
* settlement arbitrage called a TIED game decided on ESPN's victory formation (a kneel to reach overtime) and then
  bought NO of the YES team; it skipped its buy-the-leader rule when the market's YES team was unknown;
* pre-game / halftime traded a sport they have no rules for (pre-game MLB is off in the spec) on another sport's
  thresholds; halftime applied the NFL first-half turnover gate to NBA;
* an entry was market-style at an edge of exactly 0.15 (spec: market when the edge is above 0.15);
* trade_strategies.yaml strategy blocks were an open mapping: a misspelt key (a certainty rule's `min_led`, the
  halftime `window_minute`), an unknown strategy, a `selection_logic.method` nothing implements, were accepted.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from trading_testkit import NOW, STRATEGY_CONFIGS, engine, game, market, strategy

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading.strategies import StrategyError, StrategyRef, build_strategy

D = Decimal
EVENT = "KXNFLGAME-25DEC28KCBUF"


# ------------------------------------------------------------------ pre_game_entry: 0.5-24 h, per-sport gates
@pytest.mark.parametrize(("hours_before", "blocked"), [
    (D("0.5") - D(1) / 3600, "outside_pregame_window"), (D("0.5"), None), (D(24), None),
    (D(24) + D(1) / 3600, "outside_pregame_window")])
@pytest.mark.parametrize("sport", ["nfl", "ncaaf", "nba"])
def test_pre_game_window_is_30_min_to_24_h_inclusive_for_every_sport_it_covers(hours_before: Decimal,
                                                                                blocked: str | None,
                                                                                sport: str) -> None:
    s = strategy("pre_game_entry")
    start_in = float(hours_before * 3600)
    assert s.phase_block(market(sport=sport), game(sport=sport, start_in=start_in), NOW) == blocked
    assert s.phase_block(market(sport=sport, start_in=start_in), None, NOW) == blocked  # no state: the event's start


@pytest.mark.parametrize(("sport", "meta", "blocked"), [
    ("nfl", {"key_injuries": 1}, None), ("nfl", {"key_injuries": 2}, "key_injuries"),
    ("ncaaf", {"key_injuries": 1}, None), ("ncaaf", {"key_injuries": 2}, "key_injuries"),
    ("nba", {"key_injuries": 2}, None), ("nba", {"key_injuries": 3}, "key_injuries"),
    ("nfl", {"wind_mph": D("20.0")}, None), ("nfl", {"wind_mph": D("20.1")}, "wind"),
    ("nfl", {"precipitation": D("0.3")}, None), ("nfl", {"precipitation": D("0.31")}, "precipitation"),
    ("ncaaf", {"precipitation": D("0.31")}, "precipitation"), ("nfl", {"snow": True}, "snow"),
    ("nba", {"wind_mph": 40, "snow": True}, None),  # weather is a football gate
    ("nfl", {"lineup_confirmed": False}, "lineup_not_confirmed"), ("nfl", {"lineup_confirmed": True}, None)])
def test_pre_game_lineup_injury_and_weather_gates(sport: str, meta: dict[str, Any], blocked: str | None) -> None:
    s = strategy("pre_game_entry")
    assert s.phase_block(market(sport=sport), game(sport=sport, metadata=meta), NOW) == blocked


def test_pre_game_minimum_edges_by_sport() -> None:
    s = strategy("pre_game_entry")
    assert (s.min_edge_for("nfl"), s.min_edge_for("ncaaf"), s.min_edge_for("nba")) == (D("0.08"), D("0.08"), D("0.10"))


def test_pre_game_does_not_trade_a_sport_it_has_no_rules_for() -> None:
    """DEFECT: spec 5.11 has pre-game MLB off (0.12, pitcher confirmed); with the mlb league enabled the strategy
    traded MLB on the generic 0.08 and none of MLB's gates."""
    s = strategy("pre_game_entry")
    assert s.phase_block(market(sport="mlb"), game(sport="mlb"), NOW) == "sport_not_traded"
    assert s.phase_block(market(sport="nhl"), None, NOW) == "sport_not_traded"


# ------------------------------------------------------------------ halftime_entry
@pytest.mark.parametrize("sport", ["nfl", "ncaaf", "nba"])
@pytest.mark.parametrize(("ago", "blocked"), [(599, None), (600, None), (601, "halftime_window_passed")])
def test_halftime_window_is_10_minutes_from_halftime_start(sport: str, ago: int, blocked: str | None) -> None:
    s = strategy("halftime_entry")
    ht = game("halftime", sport=sport, period=2, clock=0, home=14, away=10, halftime_started_ago=ago)
    assert s.phase_block(market(sport=sport), ht, NOW) == blocked


@pytest.mark.parametrize(("home", "blocked"), [(16, "lead_below_min"), (17, None)])
def test_halftime_min_lead_boundary(home: int, blocked: str | None) -> None:
    s = strategy("halftime_entry", min_lead=7)
    ht = game("halftime", period=2, clock=0, home=home, away=10, halftime_started_ago=60)
    assert s.phase_block(market(), ht, NOW) == blocked


@pytest.mark.parametrize("sport", ["nfl", "ncaaf"])
@pytest.mark.parametrize(("meta", "blocked"), [
    ({"first_half_turnovers": 4}, None), ({"first_half_turnovers": 5}, "too_many_turnovers"),
    ({"special_teams_tds": 1}, None), ({"special_teams_tds": 2}, "special_teams_tds")])
def test_halftime_football_skips_over_4_turnovers_or_over_1_special_teams_td(sport: str, meta: dict[str, int],
                                                                              blocked: str | None) -> None:
    s = strategy("halftime_entry")
    ht = game("halftime", sport=sport, period=2, clock=0, halftime_started_ago=60, metadata=meta)
    assert s.phase_block(market(sport=sport), ht, NOW) == blocked


def test_halftime_turnover_gate_is_football_only_and_uncovered_sports_are_not_traded() -> None:
    """DEFECT: NBA teams turn the ball over 6-10 times a half; the NFL gate (> 4) would have ruled out every NBA
    halftime. A sport without halftime rules (mlb) is not traded."""
    s = strategy("halftime_entry")
    nba = game("halftime", sport="nba", period=2, clock=0, halftime_started_ago=60,
               metadata={"first_half_turnovers": 9, "special_teams_tds": 0})
    assert s.phase_block(market(sport="nba"), nba, NOW) is None
    assert s.min_edge_for("nba") == D("0.07") and s.min_edge_for("nfl") == D("0.06")
    assert s.phase_block(market(sport="mlb"), game("halftime", sport="mlb", halftime_started_ago=60), NOW) == \
        "sport_not_traded"


@pytest.mark.parametrize(("bid", "blocked"), [("0.40", None), ("0.399", "spread_above_strategy_max")])
@pytest.mark.parametrize("side", ["yes", "no"])
def test_halftime_spread_at_most_0_08_on_either_side(bid: str, blocked: str | None, side: str) -> None:
    s = strategy("halftime_entry")
    assert s.side_block(market(bid=bid, ask="0.48"), None, side, D("0.7"), NOW) == blocked


# ------------------------------------------------------------------ live_trading
@pytest.mark.parametrize(("ago", "blocked"), [(9.999, None), (10, None), (10.001, "event_too_old")])
def test_live_trading_decides_within_10_s(ago: float, blocked: str | None) -> None:
    s = strategy("live_trading")
    assert s.phase_block(market(), game("live", observed_ago=ago, metadata={"last_play_type": "turnover"}),
                         NOW) == blocked


@pytest.mark.parametrize("event", ["touchdown", "turnover", "field_goal", "safety", "two_minute_warning",
                                   "fourth_down_conversion", "fourth_down_fail"])
def test_live_trading_trigger_events(event: str) -> None:
    s = strategy("live_trading")
    assert s.phase_block(market(), game("live", metadata={"last_play_type": event}), NOW) is None
    assert s.min_edge_for("nfl") == D("0.10")


# ------------------------------------------------------------------ settlement_arbitrage
def _final_minutes(sport: str = "nfl", *, clock: int, home: int, away: int, possession: str | None = None,
                   home_timeouts: int | None = 3, away_timeouts: int | None = 3, **kw: Any) -> Any:
    return game("live", sport=sport, period=4, clock=clock, home=home, away=away, possession=possession,
                home_timeouts=home_timeouts, away_timeouts=away_timeouts, **kw)


@pytest.mark.parametrize("sport", ["nfl", "ncaaf"])
@pytest.mark.parametrize(("lead", "clock", "possession", "opp_timeouts", "decided"), [
    (7, 90, "leader", 0, True), (6, 90, "leader", 0, False), (7, 91, "leader", 0, False),
    (7, 90, "trailer", 0, False), (7, 90, None, 0, False), (7, 90, "leader", 1, False),
    (7, 90, "leader", None, False),  # timeouts unknown: not decided
    (21, 120, None, 3, True), (20, 120, None, 3, False), (21, 121, None, 3, False)])
@pytest.mark.parametrize("leader", ["home", "away"])
def test_settlement_football_certainty_rules(sport: str, lead: int, clock: int, possession: str | None,
                                             opp_timeouts: int | None, decided: bool, leader: str) -> None:
    s = strategy("settlement_arbitrage")
    trailer = "away" if leader == "home" else "home"
    scores = {leader: 10 + lead, trailer: 10}
    has_ball = {"leader": leader, "trailer": trailer, None: None}[possession]
    timeouts = {f"{trailer}_timeouts": opp_timeouts, f"{leader}_timeouts": 3}
    g = _final_minutes(sport, clock=clock, home=scores["home"], away=scores["away"], possession=has_ball, **timeouts)
    expected = None if decided else ("too_much_time_left" if clock > 120 else "game_not_decided")
    assert s.phase_block(market(sport=sport, yes_team=leader), g, NOW) == expected


@pytest.mark.parametrize(("lead", "clock", "expected"), [
    (15, 120, None), (14, 120, "game_not_decided"), (15, 121, "too_much_time_left"), (30, 121, "too_much_time_left")])
def test_settlement_nba_lead_15_with_at_most_120_s(lead: int, clock: int, expected: str | None) -> None:
    s = strategy("settlement_arbitrage")
    g = _final_minutes("nba", clock=clock, home=80 + lead, away=80)
    assert s.phase_block(market(sport="nba", yes_team="home"), g, NOW) == expected


@pytest.mark.parametrize(("p", "blocked"), [("0.9799", "probability_below_min"), ("0.98", None), ("0.9801", None)])
def test_settlement_buys_only_at_p_0_98_or_more_and_only_the_leader(p: str, blocked: str | None) -> None:
    s = strategy("settlement_arbitrage")
    g = _final_minutes(clock=60, home=31, away=10)
    home_yes, away_yes = market(yes_team="home"), market(ticker=f"{EVENT}-BUF", yes_team="away")
    assert s.side_block(home_yes, g, "yes", D(p), NOW) == blocked  # YES of the leader
    assert s.side_block(away_yes, g, "no", D(p), NOW) == blocked  # NO of the trailer = the leader
    assert s.side_block(home_yes, g, "no", D("0.99"), NOW) == "not_the_leader"
    assert s.side_block(away_yes, g, "yes", D("0.99"), NOW) == "not_the_leader"


def test_settlement_victory_formation_needs_a_leader_with_the_ball() -> None:
    """DEFECT: a tied game with ESPN's victory formation flag (a kneel to reach overtime) was 'decided', and the
    leader rule then let it buy NO of the YES team."""
    s = strategy("settlement_arbitrage")
    kneel = {"victory_formation": True}
    tied = _final_minutes(clock=30, home=17, away=17, possession="home", metadata=kneel)
    assert s.phase_block(market(yes_team="home"), tied, NOW) == "game_not_decided"
    assert s.side_block(market(yes_team="home"), tied, "no", D("0.99"), NOW) == "leader_unknown"
    leader_kneels = _final_minutes(clock=100, home=20, away=17, possession="home", metadata=kneel)
    assert s.phase_block(market(yes_team="home"), leader_kneels, NOW) is None
    trailer_has_ball = _final_minutes(clock=100, home=20, away=17, possession="away", metadata=kneel)
    assert s.phase_block(market(yes_team="home"), trailer_has_ball, NOW) == "game_not_decided"
    too_early = _final_minutes(clock=121, home=20, away=17, possession="home", metadata=kneel)
    assert s.phase_block(market(yes_team="home"), too_early, NOW) == "too_much_time_left"


def test_settlement_refuses_a_market_whose_yes_team_is_unknown_and_sports_without_rules() -> None:
    """DEFECT: with the YES team unknown the buy-the-leader rule was skipped: either side could be bought."""
    s = strategy("settlement_arbitrage")
    g = _final_minutes(clock=60, home=31, away=10)
    assert s.side_block(market(yes_team=None), g, "yes", D("0.99"), NOW) == "leader_unknown"
    assert s.side_block(market(yes_team=None), g, "no", D("0.99"), NOW) == "leader_unknown"
    mlb = game("live", sport="mlb", period=9, clock=None, home=9, away=0, metadata={"victory_formation": True})
    assert s.phase_block(market(sport="mlb", yes_team="home"), mlb, NOW) == "sport_not_traded"


def test_settlement_sizing_and_order_style() -> None:
    s = strategy("settlement_arbitrage")
    assert s.order_type == "market" and s.kelly_fraction == D("0.50") and s.max_position_dollars == D("1000.00")
    assert s.shrinkage_factor == D("0") and s.min_edge_for("nfl") == D("0.02")


# ------------------------------------------------------------------ spec 5.10: market order above 0.15
@pytest.mark.parametrize(("p", "edge", "order_type"), [("0.714", "0.1500", "limit"), ("0.7141", "0.1501", "market")])
def test_decision_scan_entry_is_market_style_only_above_an_edge_of_0_15(p: str, edge: str, order_type: str) -> None:
    """DEFECT at 0.1500: spec 5.2 / 5.10 say market when the edge is above 0.15; it was market at 0.15."""
    m = market(bid="0.50", ask="0.52")
    result = engine({m.ticker: p}).scan([m], {EVENT: game(start_in=3 * 3600)}, positions=[], balance=D("10000"),
                                        now=NOW)
    yes = next(e for e in result.edges if e.side == "yes")
    assert yes.edge == D(edge) and yes.signal
    (approval,) = result.approved
    assert approval.intent.order_type == order_type


def test_engine_planner_entry_is_market_style_only_above_an_edge_of_0_15() -> None:
    """The trading loop's own planner (precog demo, --venue local, backtests), same boundary."""
    from test_engine_entry_spec_defects import EVENT as E2
    from test_engine_entry_spec_defects import METHOD, _market, _pv

    from precog.domain.fees import FeeSchedule
    from precog.engine.entries import RiskLimits, plan_entry

    got = {}
    for p in ("0.6889", "0.6890"):  # p shrunk to 0.6700 / 0.6701; cost 0.52
        plan, reason = plan_entry(D(p), _market("0.48", "0.50"), METHOD, _pv(), RiskLimits(), FeeSchedule(), E2)
        assert plan is not None, reason
        got[plan.edge.edge] = (plan.order_type, plan.limit_price)
    assert got == {D("0.1500"): ("limit", D("0.50")), D("0.1501"): ("market", D("0.51"))}


# ------------------------------------------------------------------ trade_strategies.yaml typos
def _load(tmp_path: Path, text: str) -> Any:
    d = tmp_path / "cfg"
    d.mkdir(exist_ok=True)
    (d / "trade_strategies.yaml").write_text(text, encoding="utf-8")
    return load_config(d, use_env=False)


@pytest.mark.parametrize(("text", "key"), [
    ("strategies:\n  halftime_entry:\n    window_minute: 5\n", "strategies.halftime_entry.window_minute"),
    ("strategies:\n  pre_game_entry:\n    max_hours_befor_start: 12\n", "strategies.pre_game_entry.max_hours_befor_start"),
    ("strategies:\n  pre_game_entry:\n    sports:\n      nfl: {max_key_injury: 0}\n",
     "strategies.pre_game_entry.sports.nfl.max_key_injury"),
    ("strategies:\n  settlement_arbitrage:\n    min_probabilty: 0.99\n",
     "strategies.settlement_arbitrage.min_probabilty"),
    ("strategies:\n  settlement_arbitrage:\n    certainty_rules:\n      nfl:\n        - {min_led: 14, max_seconds: 60}\n",
     "strategies.settlement_arbitrage.certainty_rules.nfl.0.min_led"),
    ("strategies:\n  settlement_arbitrage:\n    certainty_rules:\n      nfl:\n"
     "        - {min_lead: 14, max_seconds: 60, leader_has_possession: 'no'}\n",
     "strategies.settlement_arbitrage.certainty_rules.nfl.0.leader_has_possession"),
    ("strategies:\n  halftime_entyr:\n    version: v1.0\n    enabled: true\n    min_edge: 0.06\n",
     "strategies.halftime_entyr"),
    ("selection_logic:\n  method: best_sortino\n", "selection_logic.method"),
    ("strategy_priority: [halftime_entry, live_trading, pre_game_entry]\n", "strategy_priority"),
    ("strategy_priority: [halftime_entry, live_trading, pre_game_entry, settlement_arbitrag]\n", "strategy_priority"),
])
def test_a_strategy_block_typo_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    """DEFECT: `strategies` was an open mapping whose blocks were read with built-in defaults."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert "trade_strategies.yaml" in str(err.value) and key in str(err.value)


def test_a_complete_user_block_still_loads(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "strategies:\n  halftime_entry:\n    version: v1.1\n    window_minutes: 8\n"
                          "strategy_priority: [settlement_arbitrage, halftime_entry, live_trading, pre_game_entry]\n"
                          "selection_logic:\n  method: best_edge\n")
    assert cfg.get("trade_strategies.strategies.halftime_entry.window_minutes") == 8


def test_a_stored_strategy_config_with_an_unknown_key_is_refused() -> None:
    config = {**STRATEGY_CONFIGS["settlement_arbitrage"], "certainty_rules": {"nfl": [{"min_led": 7, "max_seconds": 90}]}}
    with pytest.raises(StrategyError, match="certainty_rules.nfl.0.min_led"):
        build_strategy(StrategyRef(1, "settlement_arbitrage", "v9.9"), config)
    with pytest.raises(StrategyError, match="window_minute"):
        build_strategy(StrategyRef(2, "halftime_entry", "v9.9"), {**STRATEGY_CONFIGS["halftime_entry"],
                                                                  "window_minute": 5})


# ------------------------------------------------------------------ halftime start from the stored game history
def _halftime_history(world: Any, first_halftime_min_ago: int) -> None:
    """The seeded game: scheduled, live, then halftime since `first_halftime_min_ago` minutes, with a second
    halftime version 30 s ago (ESPN reset the timeouts) - so the current version is fresh."""
    c = world.conn
    c.execute("SET session_replication_role = replica")  # back-date the seeded version (SCD2 set-up only)
    c.execute("UPDATE game_states SET created_at = now() - interval '3 hours', row_current_ind = FALSE,"
              " row_end_ts = now() - interval '2 hours' WHERE external_game_id = '401'")
    c.execute("SET session_replication_role = origin")
    ago = f"{first_halftime_min_ago} minutes"
    versions = [("live", 1, "2 hours", ago, {}),
                ("halftime", 2, ago, "30 seconds", {"home_timeouts": 1, "away_timeouts": 2}),
                ("halftime", 2, "30 seconds", None, {"home_timeouts": 3, "away_timeouts": 3})]
    from psycopg.types.json import Jsonb

    for status, period, start, end, meta in versions:
        c.execute("INSERT INTO game_states (external_game_id, sport, event_id, home_team, away_team, status, start_time,"
                  " period, clock_seconds, home_score, away_score, sport_metadata, created_at, row_current_ind,"
                  " row_end_ts) VALUES ('401', 'nfl', %s, 'KC', 'BUF', %s, now() - interval '2 hours', %s, 0, 14, 7,"
                  " %s, now() - %s::interval, %s, now() - %s::interval)",
                  (EVENT_DB, status, period, Jsonb(meta), start, end is None, end))


EVENT_DB = "KXNFLGAME-25DEC28BUFKC"


@pytest.mark.parametrize(("first_halftime_min_ago", "reason"), [(11, "halftime_window_passed"), (9, None)])
def test_halftime_window_runs_from_the_first_stored_halftime_version_not_from_the_process_s_first_sight(
        world: Any, first_halftime_min_ago: int, reason: str | None) -> None:
    """DEFECT: the window started when the scanning process first saw the halftime (a fresh `precog run` or a
    one-shot `precog edges scan` 11 minutes into halftime saw it 'just started' and traded for 10 more minutes)."""
    import time

    from trading_dbkit import KC
    from trading_testkit import DEFAULTS

    from precog.trading.decide import DecisionEngine, DecisionUnit
    from precog.trading.forecasts import TickerProbabilityModel
    from precog.trading.risk import RiskManager
    from precog.trading.snapshot import load_snapshot

    _halftime_history(world, first_halftime_min_ago)
    now = time.time()
    snap = load_snapshot(world.conn, DEFAULTS, "paper", now)
    ht = snap.games[EVENT_DB]
    assert ht.state.status == "halftime" and ht.halftime_started_ts is not None
    assert abs((now - ht.halftime_started_ts) - first_halftime_min_ago * 60) < 5
    model = TickerProbabilityModel({KC: D("0.75")}, model_id=3)
    unit = DecisionUnit(strategy("halftime_entry"), model, model.ref)
    fresh_engine = DecisionEngine(DEFAULTS, [unit], RiskManager(DEFAULTS, clock=lambda: now), clock=lambda: now)
    result = fresh_engine.scan(snap.markets, snap.games, now=now)
    yes = next(e for e in result.edges if e.ticker == KC and e.side == "yes")
    assert yes.edge >= D("0.06") and yes.reason == reason
