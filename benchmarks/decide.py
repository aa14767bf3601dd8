"""Benchmark: one decision scan over 5,000 open markets from in-memory state (no database).

Per market: P(YES) from the model, edges on both sides net of fees/slippage after shrinkage, the four entry
strategies (pre-game, halftime, live, settlement arbitrage), and for the chosen signal: Kelly sizing with
all adjustments and caps, then every pre-trade risk check (limits are set wide so every check runs to the
end and approvals reserve exposure). Rows, in the same process:

  * edges only (floor)       - the edge arithmetic alone: shrinkage and both sides of every market
  * full scan, no fee cache  - the baseline: the fee function evaluated for every side of every market
  * full scan                - what the trading loop runs (fee table cached by price)

Last line: `decision scan: N markets/s, p99 per market N us`.
Run: .venv/bin/python benchmarks/decide.py [--quick] [--markets N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from precog.config.loader import load_config  # noqa: E402
from precog.feeds.game_state import GameState  # noqa: E402
from precog.trading.decide import DecisionEngine, DecisionUnit  # noqa: E402
from precog.trading.edges import CostTable, PriceCosts, SideCost, shrink, side_cost, side_edges  # noqa: E402
from precog.trading.forecasts import TickerProbabilityModel  # noqa: E402
from precog.trading.risk import RiskManager  # noqa: E402
from precog.trading.settings import TradingSettings  # noqa: E402
from precog.trading.strategies import StrategyRef, build_strategy, load_strategy_definitions  # noqa: E402
from precog.trading.views import GameView, MarketView  # noqa: E402

CENT = Decimal("0.01")
BIG = Decimal("1000000000")


class _Recompute(PriceCosts):
    def __getitem__(self, price: Decimal) -> SideCost:
        return side_cost(price, self.schedule, self.slippage_pct, self.reference_contracts, taker=self.taker)


class UncachedCosts(CostTable):
    """The baseline: no per-price cache, the fee function runs for every side of every market."""

    def table(self, multiplier: Decimal) -> PriceCosts:
        return _Recompute(self.schedule(multiplier), self._slip, self._n, self._taker)


def wide_settings() -> TradingSettings:
    base = TradingSettings.from_config(load_config(use_env=False))
    leagues = {sport: replace(league, min_liquidity=0) for sport, league in base.leagues.items()}
    return replace(base, leagues=leagues, min_volume_24h=0, min_open_interest=0, max_open_positions=10**9, max_positions_per_game=10**6, max_exposure_per_game=BIG,
                   max_total_exposure=BIG, max_correlated_exposure=BIG, max_position_dollars=Decimal("5000"),
                   max_exposure_by_sport={}, default_sport_share=Decimal("1"), min_volume=10, max_spread_pct=Decimal("0.5"),
                   min_balance_to_trade=Decimal("0"), confidence_min=Decimal("0.5"), max_simultaneous_markets=10**9,
                   max_markets_per_sport=10**9)


def build_world(n_markets: int, now: float, seed: int = 7) -> tuple[list[MarketView], dict[str, GameView], dict[str, Decimal]]:
    rng = random.Random(seed)
    markets: list[MarketView] = []
    games: dict[str, GameView] = {}
    probs: dict[str, Decimal] = {}
    n_games = n_markets // 4
    for g in range(n_games):
        sport = rng.choices(["nfl", "ncaaf", "nba"], [6, 2, 2])[0]
        event = f"KX{sport.upper()}GAME-26JAN{g:05d}"
        phase = rng.choices(["pre", "live", "half", "end"], [50, 25, 15, 10])[0]
        start = now + rng.uniform(3600, 20 * 3600) if phase == "pre" else now - 5000
        lead = rng.randint(0, 10)
        home_score = 14 + (lead if phase == "end" else rng.randint(0, 7))
        status = {"pre": "scheduled", "live": "live", "half": "halftime", "end": "live"}[phase]
        state = GameState(
            sport=sport, game_id=f"g{g}", start_time=datetime.fromtimestamp(start, UTC), name="", short_name="",
            home_team="HOM", away_team="AWY", home_team_id="1", away_team_id="2", home_team_name="Home",
            away_team_name="Away", status=status, status_detail="", period=4 if phase == "end" else 2,
            clock_seconds=60 if phase == "end" else 400, display_clock="", home_score=home_score, away_score=14,
            possession="home", home_timeouts=1, away_timeouts=0, metadata={})
        games[event] = GameView(state, now - 2)
        for k, (kind, yes_team) in enumerate((("game_winner", "home"), ("game_winner", "away"),
                                              ("point_spread", None), ("total_points", None))):
            ask = Decimal(rng.randint(5, 95)) * CENT
            bid = ask - Decimal(rng.randint(1, 2)) * CENT
            ticker = f"{event}-{k}"
            volume = rng.randint(20, 5000)
            markets.append(MarketView(
                ticker=ticker, event_ticker=event, sport=sport, yes_bid=bid, yes_ask=ask, volume=volume,
                close_ts=now + 6 * 3600, quote_ts=now - 5, market_kind=kind, yes_team=yes_team, start_ts=start,
                series_ticker=f"KX{sport.upper()}GAME", volume_24h=volume, open_interest=2 * volume,
                yes_bid_size=Decimal(rng.randint(10, 2000)), yes_ask_size=Decimal(rng.randint(10, 2000)),
                open_ts=now - 2 * 86400))
            p = min(Decimal("0.99"), max(Decimal("0.01"), (bid + ask) / 2 + Decimal(rng.randint(-15, 15)) * CENT))
            probs[ticker] = p
    return markets, games, probs


def make_engine(settings: TradingSettings, probs: dict[str, Decimal], costs: CostTable | None = None
                ) -> DecisionEngine:
    model = TickerProbabilityModel(probs, confidence="0.85", sample_size=600, ci_width="0.05", name="bench", model_id=1)
    units = []
    for i, d in enumerate(load_strategy_definitions(load_config(use_env=False))):
        strategy = build_strategy(StrategyRef(i + 1, d.name, d.version, "active"), d.config)
        units.append(DecisionUnit(strategy, model, model.ref))
    risk = RiskManager(settings, costs=costs)
    return DecisionEngine(settings, units, risk, costs=costs)


def run(engine: DecisionEngine, markets: list[MarketView], games: dict[str, GameView], now: float,
        rounds: int) -> tuple[float, list[int], object]:
    best = float("inf")
    timings: list[int] = []
    result = None
    for _ in range(rounds):
        t = []
        t0 = time.perf_counter()
        result = engine.scan(markets, games, positions=(), balance=Decimal("10000000"), now=now, timings=t)
        elapsed = time.perf_counter() - t0
        for approval in result.approved:  # the executor finishing the orders (outside the timing)
            engine.risk.release(approval)
        if elapsed < best:
            best, timings = elapsed, t
    return best, timings, result


def edges_only(markets: list[MarketView], probs: dict[str, Decimal], settings: TradingSettings,
               rounds: int) -> float:
    """The floor: shrinkage and both sides' edges per market, nothing else."""
    costs = CostTable(settings)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for m in markets:
            side_edges(m.yes_bid, m.yes_ask, shrink(probs[m.ticker], settings.shrinkage_factor), costs,
                       m.fee_multiplier, settings)
        best = min(best, time.perf_counter() - t0)
    return best


def p99_us(timings: list[int]) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else 15
    now = time.time()
    settings = wide_settings()
    markets, games, probs = build_world(args.markets, now)
    n = len(markets)

    floor = edges_only(markets, probs, settings, rounds)
    base_s, base_t, _ = run(make_engine(settings, probs, UncachedCosts(settings)), markets, games, now, rounds)
    engine = make_engine(settings, probs)
    run(engine, markets, games, now, 1)  # warm the fee table, as a running loop would be
    full_s, full_t, result = run(engine, markets, games, now, rounds)
    assert result is not None

    rows = [
        ("edges only, both sides (floor)", floor, None),
        ("full scan, no fee cache (baseline)", base_s, base_t),
        ("full scan", full_s, full_t),
    ]
    print(f"{'case':<38}{'markets/s':>12}{'scan ms':>10}{'p50 us':>9}{'p99 us':>9}")
    for name, secs, t in rows:
        p50 = f"{statistics.median(t) / 1000:.1f}" if t else "-"
        p99 = f"{p99_us(t):.1f}" if t else "-"
        print(f"{name:<38}{n / secs:>12,.0f}{secs * 1000:>10.1f}{p50:>9}{p99:>9}")
    r = result
    print(f"edges stored: {len(r.edges)}, signals: {r.signals}, approved: {len(r.approved)}, "
          f"rejected: {len(r.rejections)} ({', '.join(sorted({x.check for x in r.rejections})) or 'none'})")
    print(f"full scan vs baseline: {base_s / full_s:.2f}x faster; vs floor: {full_s / floor:.2f}x the edge arithmetic")
    print(f"decision scan: {n / full_s:,.0f} markets/s, p99 per market {p99_us(full_t):.0f} us")


if __name__ == "__main__":
    main()
