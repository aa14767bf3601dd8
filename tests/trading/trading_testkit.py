"""Builders shared by the trading tests: settings, markets, games, strategies, units."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from precog.config.loader import load_config
from precog.domain.market import Market, MarketStatus
from precog.feeds.game_state import GameState
from precog.trading.decide import DecisionEngine, DecisionUnit
from precog.trading.forecasts import TickerProbabilityModel
from precog.trading.method_config import MethodRuntime
from precog.trading.risk import OrderIntent, RiskManager
from precog.trading.settings import TradingSettings
from precog.trading.strategies import EntryStrategy, StrategyRef, build_strategy, load_strategy_definitions
from precog.trading.views import GameView, MarketView

D = Decimal
NOW = 1_767_000_000.0  # a fixed clock (2025-12-29)

_CFG = load_config(use_env=False)
DEFAULTS = TradingSettings.from_config(_CFG)
STRATEGY_CONFIGS = {d.name: d.config for d in load_strategy_definitions(_CFG)}


def settings(**changes: Any) -> TradingSettings:
    return replace(DEFAULTS, **changes)


def strategy(name: str, *, strategy_id: int = 1, status: str = "active", **config: Any) -> EntryStrategy:
    return build_strategy(StrategyRef(strategy_id, name, "v1.0", status), {**STRATEGY_CONFIGS[name], **config})


def market(ticker: str = "KXNFLGAME-25DEC28KCBUF-KC", *, event: str = "KXNFLGAME-25DEC28KCBUF", sport: str = "nfl",
           bid: str = "0.50", ask: str = "0.52", volume: int = 1000, start_in: float = 2 * 3600,
           close_in: float = 2 * 3600, volume_24h: int | None = 1000, open_interest: int | None = 1000,
           bid_size: str | None = "1000", ask_size: str | None = "1000", opened_ago: float | None = 24 * 3600,
           **kw: Any) -> MarketView:
    """A Kalshi market as the venue reports it (24-hour volume, open interest, top-of-book sizes and open time
    included: the packaged markets.yaml global_filters refuse a market without them)."""
    return MarketView(ticker=ticker, event_ticker=event, sport=sport, yes_bid=D(bid), yes_ask=D(ask), volume=volume,
                      close_ts=NOW + close_in, quote_ts=NOW - 5, start_ts=NOW + start_in, volume_24h=volume_24h,
                      open_interest=open_interest, yes_bid_size=None if bid_size is None else D(bid_size),
                      yes_ask_size=None if ask_size is None else D(ask_size),
                      open_ts=None if opened_ago is None else NOW - opened_ago, **kw)


def game(status: str = "scheduled", *, sport: str = "nfl", period: int = 1, clock: int | None = 900,
         home: int = 0, away: int = 0, possession: str | None = None, start_in: float = 2 * 3600,
         observed_ago: float = 5, home_timeouts: int | None = 3, away_timeouts: int | None = 3,
         metadata: dict[str, Any] | None = None, halftime_started_ago: float | None = None) -> GameView:
    state = GameState(
        sport=sport, game_id="401", start_time=datetime.fromtimestamp(NOW + start_in, UTC), name="", short_name="",
        home_team="KC", away_team="BUF", home_team_id="12", away_team_id="2", home_team_name="Kansas City Chiefs",
        away_team_name="Buffalo Bills", status=status, status_detail="", period=period, clock_seconds=clock,
        display_clock="", home_score=home, away_score=away, possession=possession, home_timeouts=home_timeouts,
        away_timeouts=away_timeouts, metadata=metadata or {})
    return GameView(state, NOW - observed_ago,
                    NOW - halftime_started_ago if halftime_started_ago is not None else None)


def method(method_id: int = 7, *, status: str = "active", sports: tuple[str, ...] = ("nfl", "ncaaf", "nba"),
           **risk: Any) -> MethodRuntime:
    risk_config = {"kelly_fraction": "0.20", "max_position_size_dollars": "750", **risk}
    return MethodRuntime.from_configs(method_id=method_id, name="m", version="v1.0", status=status,
                                      risk_config=risk_config, sport_config={s: {"enabled": True} for s in sports})


def engine(probs: dict[str, str], *, strategies: tuple[EntryStrategy, ...] | None = None,
           cfg: TradingSettings | None = None, methods: tuple[MethodRuntime | None, ...] = (None,),
           **model_kw: Any) -> DecisionEngine:
    cfg = cfg or DEFAULTS
    model = TickerProbabilityModel({k: D(v) for k, v in probs.items()}, model_id=3, **model_kw)
    strategies = strategies or (strategy("pre_game_entry"),)
    units = [DecisionUnit(s, model, model.ref, m) for s in strategies for m in methods]
    return DecisionEngine(cfg, units, RiskManager(cfg, clock=lambda: NOW), clock=lambda: NOW)


def intent(m: MarketView | None = None, *, side: str = "yes", count: int = 10, p: str = "0.70",
           strat: EntryStrategy | None = None, meth: MethodRuntime | None = None, confidence: str = "0.85",
           game_view: GameView | None = None, cfg: TradingSettings | None = None, **kw: Any) -> OrderIntent:
    """An entry intent priced like the decision engine prices it (fee and slippage from the schedule)."""
    from precog.trading.edges import CostTable

    cfg = cfg or DEFAULTS
    m = m or market()
    sc = CostTable(cfg).get(m.price_of(side), m.fee_multiplier)
    from precog.trading.forecasts import ModelRef

    return OrderIntent(
        intent_id="i", market=m, side=side, quantity=count, price=sc.price, p_side=D(p), fee_per_contract=sc.fee,
        slippage=sc.slippage, edge=D(p) - sc.cost, ev_pct=D("0"), confidence=D(confidence), confidence_level="high",
        strategy=strat or strategy("pre_game_entry"), model=ModelRef(3, "fixed", "v1.0", "active"), method=meth,
        game=game_view, created_ts=NOW, **kw)


def venue_market(**kw: Any) -> Market:
    """A venue `Market` (what the trading loop's own planner reads) that every market filter passes: an hour-old
    quote book 1,000 deep, opened a day before NOW, closing two hours after it; `kw` replaces fields."""
    base: dict[str, Any] = dict(
        ticker="KXNFLGAME-T-BUF", event_ticker="KXNFLGAME-T", status=MarketStatus.OPEN, venue_status="active",
        yes_bid=Decimal("0.50"), yes_ask=Decimal("0.52"), no_bid=Decimal("0.48"), no_ask=Decimal("0.50"),
        last_price=Decimal("0.50"), volume=Decimal("1000"), volume_24h=Decimal("1000"), open_interest=Decimal("1000"),
        yes_bid_size=Decimal("1000"), yes_ask_size=Decimal("1000"),
        open_time=datetime.fromtimestamp(NOW, UTC) - timedelta(days=1),
        close_time=datetime.fromtimestamp(NOW, UTC) + timedelta(hours=2))
    base.update(kw)
    return Market(**base)
