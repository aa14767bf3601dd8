"""Every trading-decision knob, read once from the configuration into exact, typed values.

The decision hot path must not walk YAML mappings, so the scan, sizing, risk checks and breakers all take
a `TradingSettings` built here (`TradingSettings.from_config(load_config())`). Each field names the key it
comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from precog.config.loader import Config
from precog.domain.money import to_decimal
from precog.trading.priority import CompositeWeights


def _d(value: Any, key: str) -> Decimal:
    return to_decimal(value, field=key)


def _opt_d(value: Any, key: str) -> Decimal | None:
    return None if value is None else _d(value, key)


def _composite_weights(block: Any) -> CompositeWeights:
    """markets.yaml prioritization.composite (the schema has checked the range and the sum); a missing weight keeps
    the spec's."""
    spec = CompositeWeights()
    return CompositeWeights(
        *(_d(block.get(name, getattr(spec, name)), f"markets.prioritization.composite.{name}")
          for name in ("edge", "liquidity", "confidence")))


@dataclass(frozen=True, slots=True)
class LeagueSettings:
    """markets.yaml `leagues.<sport>`."""

    sport: str
    enabled: bool
    series_ticker: str
    min_edge: Decimal
    kelly_fraction: Decimal
    max_spread: Decimal
    min_liquidity: int


KELLY = "kelly"
FIXED = "fixed"
FIXED_FRACTION = "fixed_fraction"
SIZING_METHODS = (KELLY, FIXED, FIXED_FRACTION)


@dataclass(frozen=True, slots=True)
class SizingMethod:
    """trading.yaml `position_sizing.method` and its amounts: how an entry's stake is set before the size
    adjustments, caps and minimum, which bind every method alike (precog.trading.sizing.method_stake)."""

    name: str = KELLY
    fixed_amount: Decimal = Decimal("50")  # position_sizing.fixed_amount_dollars (method fixed)
    fixed_fraction: Decimal = Decimal("0.02")  # position_sizing.fixed_fraction (method fixed_fraction)

    def __post_init__(self) -> None:
        if self.name not in SIZING_METHODS:
            raise ValueError(f"trading.position_sizing.method must be one of {', '.join(SIZING_METHODS)}, "
                             f"got {self.name!r}")
        if self.fixed_amount <= 0:
            raise ValueError(f"trading.position_sizing.fixed_amount_dollars must be > 0, got {self.fixed_amount}")
        if not (0 < self.fixed_fraction <= 1):
            raise ValueError(f"trading.position_sizing.fixed_fraction must be in (0, 1], got {self.fixed_fraction}")

    @classmethod
    def from_trading(cls, position_sizing: dict[str, Any]) -> SizingMethod:
        """From trading.yaml `position_sizing` (the merged, validated mapping)."""
        return cls(name=str(position_sizing.get("method", KELLY)),
                   fixed_amount=_d(position_sizing.get("fixed_amount_dollars", "50"),
                                   "trading.position_sizing.fixed_amount_dollars"),
                   fixed_fraction=_d(position_sizing.get("fixed_fraction", "0.02"),
                                     "trading.position_sizing.fixed_fraction"))


@dataclass(frozen=True, slots=True)
class SizingAdjustments:
    """position_management.yaml `sizing_adjustments` (spec 5.3): multiplicative size reductions."""

    low_volume_threshold: int = 50
    low_volume_reduction: Decimal = Decimal("0.50")
    wide_spread_threshold: Decimal = Decimal("0.04")
    wide_spread_reduction: Decimal = Decimal("0.25")
    far_from_settlement_hours: Decimal = Decimal("3")
    far_from_settlement_reduction: Decimal = Decimal("0.20")
    low_confidence_threshold: Decimal = Decimal("0.70")
    low_confidence_reduction: Decimal = Decimal("0.40")
    ci_width_reduction_per_pct: Decimal = Decimal("0.02")
    high_volatility_ratio: Decimal = Decimal("2.0")
    high_volatility_reduction: Decimal = Decimal("0.30")
    same_game_max_ratio: Decimal = Decimal("0.50")
    # the volatility ratio's windows and minimum counts of mid moves (precog.trading.volatility)
    volatility_recent_minutes: int = 15
    volatility_baseline_minutes: int = 120
    volatility_min_recent_moves: int = 3
    volatility_min_baseline_moves: int = 10

    @property
    def far_from_settlement_seconds(self) -> float:
        return float(self.far_from_settlement_hours) * 3600


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Thresholds of the circuit breakers (spec 5.4; trading.yaml + system.yaml `circuit_breakers`)."""

    daily_loss_limit: Decimal = Decimal("500")
    weekly_loss_limit: Decimal = Decimal("1500")
    consecutive_losses: int = 5
    rapid_loss_dollars: Decimal = Decimal("200")
    rapid_loss_seconds: int = 900
    api_failures_consecutive: int = 5
    api_failures_in_window: int = 5
    api_failures_window_seconds: int = 300
    api_outage_seconds: int = 300
    data_quality_bad_points: int = 3
    data_quality_window_seconds: int = 300
    data_stale_seconds: int = 60
    db_errors_per_window: int = 3  # trips when MORE than this many errors fall inside the window
    db_errors_window_seconds: int = 60
    edge_anomaly_min_edge: Decimal = Decimal("0.30")
    edge_anomaly_count: int = 3
    edge_anomaly_window_seconds: int = 600
    unusual_burst_trades: int = 20
    unusual_burst_seconds: int = 300
    max_trades_per_hour: int = 10
    max_trades_per_day: int = 50
    max_open_positions: int = 20  # trips when MORE positions are open
    order_rejections_consecutive: int = 3  # trips when MORE consecutive rejections
    min_balance: Decimal = Decimal("1000")
    timezone: str = "America/New_York"
    # breaker name -> seconds until automatic reset; absent = manual reset only
    reset_seconds: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TradingSettings:
    # fees, shrinkage, slippage (probability_models.yaml edge_detection; markets.yaml fees)
    taker_rate: Decimal = Decimal("0.07")
    maker_rate: Decimal = Decimal("0")
    assume_taker: bool = True
    shrinkage_factor: Decimal = Decimal("0.10")
    expected_slippage_pct: Decimal = Decimal("0.005")
    fee_reference_contracts: int = 1
    # edges (trading.yaml edges)
    min_edge_global: Decimal = Decimal("0.05")
    confidence_min: Decimal = Decimal("0.70")
    alert_at: Decimal = Decimal("0.08")
    auto_execute_at: Decimal = Decimal("0.15")
    market_order_edge: Decimal = Decimal("0.15")
    # sizing (trading.yaml position_sizing)
    sizing: SizingMethod = field(default_factory=SizingMethod)
    default_fraction: Decimal = Decimal("0.25")
    max_position_pct: Decimal = Decimal("0.05")
    min_position_dollars: Decimal = Decimal("10")
    max_position_dollars: Decimal = Decimal("500")
    # a cap over every position, a strategy's own max_position_dollars included (kelly.absolute_max_position_dollars)
    absolute_max_position_dollars: Decimal | None = None
    sport_fractions: dict[str, Decimal] = field(default_factory=dict)
    playoffs_multiplier: Decimal = Decimal("0.5")
    championship_multiplier: Decimal = Decimal("0.3")
    championship_min_edge_multiplier: Decimal = Decimal("1.5")
    # the liquidity minimums (traded volume, 24 h volume, open interest, size at the ask) of a playoff or
    # championship market are these times the regular ones (spec 5.3 / markets.yaml special_events: x2.0, x3.0)
    playoffs_liquidity_multiplier: Decimal = Decimal("2.0")
    championship_liquidity_multiplier: Decimal = Decimal("3.0")
    adjustments: SizingAdjustments = field(default_factory=SizingAdjustments)
    # account and portfolio limits (trading.yaml account, position_management.yaml portfolio)
    initial_capital: Decimal = Decimal("10000")
    max_total_exposure: Decimal = Decimal("10000")
    min_balance_to_trade: Decimal = Decimal("1000")
    max_open_positions: int = 10
    max_correlated_exposure: Decimal = Decimal("3000")
    max_positions_per_game: int = 3
    max_exposure_per_game: Decimal = Decimal("1500")
    max_exposure_by_sport: dict[str, Decimal] = field(default_factory=dict)
    default_sport_share: Decimal = Decimal("0.20")
    # market filters (trading.yaml market_filters, markets.yaml)
    min_volume: int = 100
    max_spread_pct: Decimal = Decimal("0.05")
    exclude_categories: tuple[str, ...] = ("politics",)
    blacklist_patterns: tuple[str, ...] = ()
    min_seconds_to_close: int = 60
    # markets.yaml global_filters (0 / None: that filter is off; the configuration always sets them). A market
    # whose 24 h volume, open interest or close time is unknown is refused while the filter needing it is on.
    global_min_seconds_to_close: int = 0  # min_hours_to_close x 3600; the stricter of this and the above applies
    max_seconds_to_close: int | None = None  # max_days_to_close x 86400
    min_volume_24h: int = 0
    min_open_interest: int = 0
    min_bid_ask_size: int = 0  # contracts offered at the price an entry buys at (unknown: refused while on)
    min_market_age_seconds: int = 0  # min_market_age_hours x 3600 (unknown open time: refused while on)
    # markets.yaml prioritization: distinct markets held (positions and working entries), overall and per sport
    max_simultaneous_markets: int = 20
    max_markets_per_sport: int = 10
    prioritize_by: str = "edge"  # markets.yaml prioritization.sort_by: edge (largest first), composite or ticker
    # markets.yaml prioritization.composite: the weights of sort_by composite (precog.trading.priority)
    composite_weights: CompositeWeights = field(default_factory=CompositeWeights)
    max_correlated_markets: int = 5  # markets.yaml prioritization.max_correlated: markets held per correlated group
    statuses_allowed: tuple[str, ...] = ("open",)
    binary_only: bool = True
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("0.99")
    trading_hours_enabled: bool = False
    trading_hours_timezone: str = "America/New_York"
    weekday_hours: tuple[str, str] = ("09:00", "23:00")
    weekend_hours: tuple[str, str] = ("12:00", "23:00")
    # freshness (trading.yaml data_freshness)
    max_price_age_seconds: int = 120
    max_game_state_age_seconds: int = 60
    # risk
    approval_ttl_seconds: int = 10
    leagues: dict[str, LeagueSettings] = field(default_factory=dict)
    # strategy selection (trade_strategies.yaml)
    strategy_priority: tuple[str, ...] = ("halftime_entry", "live_trading", "pre_game_entry", "settlement_arbitrage")
    selection_method: str = "priority"
    min_sharpe_positions: int = 20  # selection_logic.min_sharpe_positions (best_sharpe)
    min_edge_difference: Decimal = Decimal("0.02")
    ab_existing_share: Decimal = Decimal("0.70")
    ab_new_share: Decimal = Decimal("0.30")
    breakers: BreakerSettings = field(default_factory=BreakerSettings)

    def sport_share(self, sport: str) -> Decimal:
        return self.max_exposure_by_sport.get(sport, self.default_sport_share)

    def liquidity_multiplier(self, special_event: str | None) -> Decimal:
        """How many times the regular liquidity minimums a market of this special event must show (1 for none)."""
        if special_event == "playoffs":
            return self.playoffs_liquidity_multiplier
        if special_event == "championship":
            return self.championship_liquidity_multiplier
        return Decimal(1)

    def min_volume_for(self, sport: str) -> int:
        """The traded-volume minimum of a sport's markets: the stricter of trading.yaml
        market_filters.min_volume_contracts and markets.yaml leagues.<sport>.min_liquidity."""
        league = self.leagues.get(sport)
        return max(self.min_volume, league.min_liquidity) if league is not None else self.min_volume

    def league_min_edge(self, sport: str) -> Decimal:
        league = self.leagues.get(sport)
        return league.min_edge if league is not None else self.min_edge_global

    def sport_kelly_fraction(self, sport: str) -> Decimal:
        if sport in self.sport_fractions:
            return self.sport_fractions[sport]
        league = self.leagues.get(sport)
        return league.kelly_fraction if league is not None else self.default_fraction

    @classmethod
    def from_config(cls, cfg: Config) -> TradingSettings:
        g = cfg.get
        leagues = {
            sport: LeagueSettings(
                sport=sport,
                enabled=bool(block.get("enabled", False)),
                series_ticker=str(block.get("series_ticker", "")),
                min_edge=_d(block.get("min_edge", g("trading.edges.min_edge_global")), f"markets.leagues.{sport}.min_edge"),
                kelly_fraction=_d(block.get("kelly_fraction", g("trading.position_sizing.kelly.default_fraction")),
                                  f"markets.leagues.{sport}.kelly_fraction"),
                max_spread=_d(block.get("max_spread", "1"), f"markets.leagues.{sport}.max_spread"),
                min_liquidity=int(block.get("min_liquidity", 0)),
            )
            for sport, block in (g("markets.leagues", {}) or {}).items()
        }
        adj = g("position_management.sizing_adjustments", {}) or {}
        base_adj = SizingAdjustments()
        adjustment_values: dict[str, Any] = {
            name: (int(adj[name]) if isinstance(getattr(base_adj, name), int) else _d(adj[name], f"sizing_adjustments.{name}"))
            for name in SizingAdjustments.__dataclass_fields__ if name in adj
        }
        adjustments = SizingAdjustments(**adjustment_values)
        hours = g("trading.market_filters.trading_hours", {}) or {}
        system_cb = g("system.circuit_breakers", {}) or {}
        trading_cb = g("trading.circuit_breakers", {}) or {}
        reset: dict[str, int] = {}
        # system.yaml open_seconds first, then trading.yaml `reset` (which may say manual)
        for sys_name, breaker_names in (("api_failures", ("api_failures",)), ("data_quality", ("data_quality",)),
                                        ("loss_limit", ("daily_loss_limit",)),
                                        ("position_limit", ("position_limit",))):
            seconds = (system_cb.get(sys_name) or {}).get("open_seconds")
            if seconds is not None:
                for name in breaker_names:
                    reset[name] = int(seconds)
        for name, value in (trading_cb.get("reset") or {}).items():
            if value == "manual":
                reset.pop(name, None)
            else:
                reset[name] = int(value)
        api_sys = system_cb.get("api_failures") or {}
        is_prod = g("system.environment.active", "demo") == "prod"
        api_consecutive = int(api_sys.get("consecutive", 5))
        if is_prod:  # spec 5.4: production trips after 3 API failures and stays open 600 s
            api_consecutive = min(api_consecutive, int(api_sys.get("prod_consecutive", 3)))
            if "api_failures" in reset:
                reset["api_failures"] = max(reset["api_failures"], int(api_sys.get("prod_open_seconds", 600)))
        reset.setdefault("api_outage", int(trading_cb.get("api_outage_seconds", 300)))
        # data_stale has no timer: it recovers when the data is fresh, so a long outage is one trip and one alert
        daily = _d(g("trading.account.daily_loss_limit_dollars"), "trading.account.daily_loss_limit_dollars")
        sys_daily = (system_cb.get("loss_limit") or {}).get("daily_loss_usd")
        if sys_daily is not None:
            daily = min(daily, _d(sys_daily, "system.circuit_breakers.loss_limit.daily_loss_usd"))
        api_errors = trading_cb.get("api_errors") or {}
        anomaly = trading_cb.get("edge_anomaly") or {}
        unusual = trading_cb.get("unusual_activity") or {}
        breakers = BreakerSettings(
            daily_loss_limit=daily,
            weekly_loss_limit=_d(g("trading.account.weekly_loss_limit_dollars"), "weekly_loss_limit_dollars"),
            consecutive_losses=int(trading_cb.get("consecutive_losses", 5)),
            rapid_loss_dollars=_d(trading_cb.get("rapid_loss_dollars", "200"), "rapid_loss_dollars"),
            rapid_loss_seconds=int(trading_cb.get("rapid_loss_minutes", 15)) * 60,
            api_failures_consecutive=api_consecutive,
            api_failures_in_window=min(int(api_errors.get("count", 5)), api_consecutive),
            api_failures_window_seconds=int(api_errors.get("window_minutes", 5)) * 60,
            api_outage_seconds=int(trading_cb.get("api_outage_seconds", 300)),
            data_quality_bad_points=int((system_cb.get("data_quality") or {}).get("bad_points", 3)),
            data_stale_seconds=int(trading_cb.get("data_stale_seconds", 60)),
            db_errors_per_window=int((system_cb.get("db_failures") or {}).get("errors_per_minute", 3)),
            db_errors_window_seconds=int(trading_cb.get("db_errors_window_seconds", 60)),
            edge_anomaly_min_edge=_d(anomaly.get("min_edge", "0.30"), "edge_anomaly.min_edge"),
            edge_anomaly_count=int(anomaly.get("count", 3)),
            edge_anomaly_window_seconds=int(anomaly.get("window_minutes", 10)) * 60,
            unusual_burst_trades=int(unusual.get("trades", 20)),
            unusual_burst_seconds=int(unusual.get("window_minutes", 5)) * 60,
            max_trades_per_hour=int(g("trading.account.max_trades_per_hour")),
            max_trades_per_day=int(g("trading.account.max_trades_per_day")),
            max_open_positions=int((system_cb.get("position_limit") or {}).get("max_open_positions", 20)),
            order_rejections_consecutive=int(trading_cb.get("order_rejections_consecutive", 3)),
            min_balance=_d(g("trading.account.min_balance_to_trade_dollars"), "min_balance_to_trade_dollars"),
            timezone=str(hours.get("timezone", "America/New_York")),
            reset_seconds=reset,
        )
        kelly = g("trading.position_sizing.kelly")
        special = g("trading.position_sizing.special_events", {}) or {}
        portfolio = g("position_management.portfolio")
        filters = g("trading.market_filters")
        global_filters = g("markets.global_filters", {}) or {}
        prioritization = g("markets.prioritization", {}) or {}
        max_days = global_filters.get("max_days_to_close")
        fees = g("markets.platforms.kalshi.fees", {}) or {}
        combo_max = g("trade_strategies.combination_rules.max_positions_per_game", None)
        per_game = int(portfolio["max_positions_per_game"])
        if combo_max is not None:
            per_game = min(per_game, int(combo_max))
        max_total = min(_d(g("trading.account.max_total_exposure_dollars"), "max_total_exposure_dollars"),
                        _d(portfolio["max_total_capital_deployed"], "max_total_capital_deployed"))
        weekday = hours.get("weekday") or ["09:00", "23:00"]
        weekend = hours.get("weekend") or ["12:00", "23:00"]
        return cls(
            taker_rate=_d(fees.get("taker_rate", "0.07"), "markets.platforms.kalshi.fees.taker_rate"),
            maker_rate=_d(fees.get("maker_rate", "0"), "markets.platforms.kalshi.fees.maker_rate"),
            assume_taker=bool(g("probability_models.edge_detection.assume_taker", True)),
            shrinkage_factor=_d(g("probability_models.edge_detection.shrinkage_factor"), "shrinkage_factor"),
            expected_slippage_pct=_d(g("probability_models.edge_detection.expected_slippage_pct"),
                                     "expected_slippage_pct"),
            fee_reference_contracts=max(1, int(g("trading.edges.fee_reference_contracts", 1))),
            min_edge_global=_d(g("trading.edges.min_edge_global"), "trading.edges.min_edge_global"),
            confidence_min=_d(g("trading.edges.confidence_min"), "trading.edges.confidence_min"),
            alert_at=_d(g("trading.edges.recommended_action.alert_at"), "recommended_action.alert_at"),
            auto_execute_at=_d(g("trading.edges.recommended_action.auto_execute_at"),
                               "recommended_action.auto_execute_at"),
            market_order_edge=_d(g("trading.edges.market_order_edge"), "trading.edges.market_order_edge"),
            sizing=SizingMethod.from_trading(g("trading.position_sizing")),
            default_fraction=_d(kelly["default_fraction"], "kelly.default_fraction"),
            max_position_pct=_d(kelly["max_position_pct"], "kelly.max_position_pct"),
            min_position_dollars=_d(kelly["min_position_dollars"], "kelly.min_position_dollars"),
            max_position_dollars=_d(kelly["max_position_dollars"], "kelly.max_position_dollars"),
            absolute_max_position_dollars=None if kelly.get("absolute_max_position_dollars") is None else
            _d(kelly["absolute_max_position_dollars"], "kelly.absolute_max_position_dollars"),
            sport_fractions={k: _d(v, f"sport_fractions.{k}")
                             for k, v in (g("trading.position_sizing.sport_fractions", {}) or {}).items()},
            playoffs_multiplier=_d(special.get("playoffs_multiplier", "0.5"), "special_events.playoffs_multiplier"),
            championship_multiplier=_d(special.get("championship_multiplier", "0.3"),
                                       "special_events.championship_multiplier"),
            championship_min_edge_multiplier=_d(special.get("championship_min_edge_multiplier", "1.5"),
                                                "special_events.championship_min_edge_multiplier"),
            playoffs_liquidity_multiplier=_d(special.get("playoffs_liquidity_multiplier", "2.0"),
                                             "special_events.playoffs_liquidity_multiplier"),
            championship_liquidity_multiplier=_d(special.get("championship_liquidity_multiplier", "3.0"),
                                                 "special_events.championship_liquidity_multiplier"),
            adjustments=adjustments,
            initial_capital=_d(g("trading.account.initial_capital"), "trading.account.initial_capital"),
            max_total_exposure=max_total,
            min_balance_to_trade=_d(g("trading.account.min_balance_to_trade_dollars"), "min_balance_to_trade_dollars"),
            max_open_positions=int(portfolio["max_open_positions"]),
            max_correlated_exposure=_d(portfolio["max_correlated_exposure"], "max_correlated_exposure"),
            max_positions_per_game=per_game,
            max_exposure_per_game=_d(portfolio["max_exposure_per_game"], "max_exposure_per_game"),
            max_exposure_by_sport={k: _d(v, f"max_exposure_by_sport.{k}")
                                   for k, v in (portfolio.get("max_exposure_by_sport") or {}).items()},
            min_volume=int(filters.get("min_volume_contracts", 100)),
            max_spread_pct=_d(filters.get("max_spread_pct", "0.05"), "market_filters.max_spread_pct"),
            exclude_categories=tuple(str(c) for c in filters.get("exclude_categories") or ()),
            blacklist_patterns=tuple(str(p) for p in (g("markets.blacklist.patterns", []) or [])),
            min_seconds_to_close=int(filters.get("min_seconds_to_close", 60)),
            global_min_seconds_to_close=int(_d(global_filters.get("min_hours_to_close", 0),
                                               "markets.global_filters.min_hours_to_close") * 3600),
            max_seconds_to_close=None if max_days is None else
            int(_d(max_days, "markets.global_filters.max_days_to_close") * 86400),
            min_volume_24h=int(global_filters.get("min_volume_24h", 0)),
            min_open_interest=int(global_filters.get("min_open_interest", 0)),
            min_bid_ask_size=int(global_filters.get("min_bid_ask_size", 0)),
            min_market_age_seconds=int(_d(global_filters.get("min_market_age_hours", 0),
                                          "markets.global_filters.min_market_age_hours") * 3600),
            max_simultaneous_markets=int(prioritization.get("max_simultaneous_markets", 20)),
            prioritize_by=str(prioritization.get("sort_by", "edge")),
            composite_weights=_composite_weights(prioritization.get("composite") or {}),
            max_correlated_markets=int(prioritization.get("max_correlated", 5)),
            max_markets_per_sport=int(prioritization.get("max_per_sport", 10)),
            statuses_allowed=tuple(str(x) for x in global_filters.get("statuses_allowed", ["open"])),
            binary_only=bool(global_filters.get("binary_only", True)),
            min_price=_d(filters.get("min_price", "0.01"), "market_filters.min_price"),
            max_price=_d(filters.get("max_price", "0.99"), "market_filters.max_price"),
            trading_hours_enabled=bool(hours.get("enabled", False)),
            trading_hours_timezone=str(hours.get("timezone", "America/New_York")),
            weekday_hours=(str(weekday[0]), str(weekday[1])),
            weekend_hours=(str(weekend[0]), str(weekend[1])),
            max_price_age_seconds=int(g("trading.data_freshness.max_price_age_seconds")),
            max_game_state_age_seconds=int(g("trading.data_freshness.max_game_state_age_seconds")),
            approval_ttl_seconds=int(g("trading.risk.approval_ttl_seconds", 10)),
            leagues=leagues,
            strategy_priority=tuple(str(s) for s in g("trade_strategies.strategy_priority", []) or ()),
            selection_method=str(g("trade_strategies.selection_logic.method", "priority")),
            min_sharpe_positions=int(g("trade_strategies.selection_logic.min_sharpe_positions", 20)),
            min_edge_difference=_d(g("trade_strategies.selection_logic.min_edge_difference", "0.02"),
                                   "selection_logic.min_edge_difference"),
            ab_existing_share=_d(g("trade_strategies.ab_testing.existing_share", "0.70"), "ab_testing.existing_share"),
            ab_new_share=_d(g("trade_strategies.ab_testing.new_share", "0.30"), "ab_testing.new_share"),
            breakers=breakers,
        )
