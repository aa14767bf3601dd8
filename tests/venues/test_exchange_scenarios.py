"""Scripted participants: the market maker around a noisy fair value and the NFL game framework."""

from __future__ import annotations

import time
from decimal import Decimal as D

import httpx

from precog.venues.exchange import Exchange, ExchangeServer, SimClock
from precog.venues.exchange.model import NO, YES
from precog.venues.exchange.scenarios import build_scenario
from precog.venues.exchange.scenarios.nfl import GameScript, NFLScenario, ScoringPlay, home_win_probability


def run(ex: Exchange, scenario: object, seconds: int) -> None:
    for _ in range(seconds):
        ex.clock.advance(1)
        ex.tick()
        scenario.step(ex.now_ms())  # type: ignore[attr-defined]


def test_market_maker_quotes_both_sides_around_the_fair_value() -> None:
    ex = Exchange(SimClock(1_700_000_000_000), seed=1)
    sc = build_scenario("market_maker", ex, seed=4)
    run(ex, sc, 120)
    m = ex.markets["KXPRECOG-DEMO-A"]
    bid, no_bid = m.book[YES].best, m.book[NO].best
    assert bid and no_bid and bid + no_bid < 100  # two-sided, not crossed
    fair_cents = sc.fair.value_bp / 100  # type: ignore[attr-defined]
    assert abs((bid + (100 - no_bid)) / 2 - fair_cents) <= 5
    assert m.volume > 0 and ex.audit()["imbalance"] == 0


def test_market_maker_is_deterministic_for_a_seed() -> None:
    books = []
    for _ in range(2):
        ex = Exchange(SimClock(1_700_000_000_000), seed=1)
        sc = build_scenario("market_maker", ex, seed=9)
        run(ex, sc, 60)
        books.append((ex.orderbook("KXPRECOG-DEMO-A"), ex.markets["KXPRECOG-DEMO-A"].volume))
    assert books[0] == books[1]


def test_nfl_slate_plays_out_and_settles_every_market() -> None:
    ex = Exchange(SimClock(1_700_000_000_000), seed=2)
    sc = NFLScenario(ex, seed=3, speed=60, stagger_s=20)
    assert len(ex.markets) == 6 and all(m.status == "active" for m in ex.markets.values())
    run(ex, sc, 200)
    assert sc.finished
    for g in sc.games:
        home, away = ex.markets[g.home_ticker], ex.markets[g.away_ticker]
        assert home.status == away.status == "finalized"
        assert home.settlement_value is not None and away.settlement_value is not None
        assert home.settlement_value + away.settlement_value == 1
        expected = D(1) if g.home_score > g.away_score else D(0) if g.home_score < g.away_score else D("0.5")
        assert home.settlement_value == expected
        assert home.volume > 0  # the noise traders traded against the maker
    assert ex.audit()["imbalance"] == 0 and not any(m.open_interest for m in ex.markets.values())


def test_scripted_game_moves_the_fair_value_and_a_tie_settles_at_half() -> None:
    ex = Exchange(SimClock(1_700_000_000_000), seed=2)
    plays = [ScoringPlay(600, "home", 7), ScoringPlay(3000, "away", 7)]
    sc = NFLScenario(ex, seed=1, speed=60, first_kickoff_in_s=0,
                     slate=(GameScript("NYJ", "MIA", home_edge_points=0.0, plays=plays),))
    g = sc.games[0]
    assert g.event_ticker == "KXNFLGAME-25OCT05-NYJMIA"
    pregame = g.home_fair_bp(ex.now_ms())
    assert pregame == 5000
    run(ex, sc, 12)  # 12 s x 60 = game second 720: home leads 7-0
    assert (g.home_score, g.away_score) == (7, 0) and g.home_fair_bp(ex.now_ms()) > 7000
    m = ex.markets[g.home_ticker]
    assert m.book[YES].best > 60  # the maker re-quoted around the new fair value
    run(ex, sc, 60)
    assert g.final and (g.home_score, g.away_score) == (7, 7)
    assert ex.markets[g.home_ticker].settlement_value == D("0.5")
    assert ex.markets[g.away_ticker].result == "scalar"


def test_win_probability_model() -> None:
    assert home_win_probability(0, 3600, 0.0) == 0.5
    assert home_win_probability(7, 60, 0.0) > 0.95
    assert home_win_probability(-3, 0, 10.0) == 0.0
    assert home_win_probability(0, 3600, 7.0) > 0.65


def test_server_drives_a_scenario_on_its_own_clock() -> None:
    ex = Exchange(seed=5)
    sc = build_scenario("market_maker", ex, seed=5, step_seconds=0.05)
    with ExchangeServer(ex, scenario=sc, tick_interval=0.02) as server:
        deadline = time.monotonic() + 5
        book: dict = {}
        while time.monotonic() < deadline:
            book = httpx.get(f"{server.base_url}/markets/KXPRECOG-DEMO-A/orderbook").json()["orderbook_fp"]
            if book["yes_dollars"] and book["no_dollars"]:
                break
            time.sleep(0.05)
        assert book["yes_dollars"] and book["no_dollars"]
