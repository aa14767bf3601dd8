"""Pydantic schema of the seven configuration files: types and allowed ranges of the keys people change.

Sections not modelled here are still checked for unknown keys (against the packaged defaults) by the
loader. Money and probability values are Decimal (the YAML reader already produced exact Decimals).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator


def _exact_number(value: object) -> object:
    """A whole number is fine where a Decimal is expected; text, booleans and binary floats are not."""
    if isinstance(value, bool | str | float):
        kind = "text" if isinstance(value, str) else type(value).__name__
        raise ValueError(f"must be a number, not {kind}")
    if isinstance(value, int):
        return Decimal(value)
    return value


# Strict: a value of the wrong type ("300", true for a number, "false" for a bool) is refused, never coerced,
# because the loader keeps the YAML value itself, not pydantic's converted copy.
Dec = Annotated[Decimal, BeforeValidator(_exact_number)]
Prob = Annotated[Dec, Field(ge=Decimal("0"), le=Decimal("1"))]
Dollars = Annotated[Dec, Field(ge=Decimal("0"))]
PosInt = Annotated[int, Field(ge=1)]


def _time_zone(value: object) -> object:
    """An IANA time zone name this machine knows (America/New_York, UTC), refused at load time rather than
    when the dashboard or a backtest first reads it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str):
        raise ValueError("must be a time zone name such as America/New_York")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York or UTC)") from exc
    return value


TimeZone = Annotated[str, BeforeValidator(_time_zone)]


def _not_below(field: str, other: str, *, strictly: bool = False, scale: int = 1, units: tuple[str, str] = ("", ""),
               why: str = "") -> Any:
    """A validator of `field`: its value (x `scale`, to `other`'s unit) is at least (`strictly`: more than) the
    value of `other`, a field declared before it. The error names both keys and values."""

    def check(cls: type, value: Any, info: ValidationInfo) -> Any:
        low = info.data.get(other)
        if low is not None and (value * scale <= low if strictly else value * scale < low):
            raise ValueError(f"{field} ({value}{units[0]}) must be {'longer than' if strictly else 'at least'} "
                             f"{other} ({low}{units[1]}){why}")
        return value

    return field_validator(field)(classmethod(check))  # type: ignore[arg-type]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


# ---------------------------------------------------------------- system.yaml
class Environment(_Open):
    active: Literal["demo", "prod", "test"]


class Logging(_Open):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    json_file: Annotated[str, Field(min_length=1)]
    max_bytes: Annotated[int, Field(ge=1024)]
    backup_count: Annotated[int, Field(ge=0, le=1000)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ChannelRate(_Closed):
    per_hour: Annotated[int, Field(ge=0, le=100000)]
    per_day: Annotated[int, Field(ge=0, le=1000000)]
    cooldown_seconds: Annotated[int, Field(ge=0, le=86400)]


class RateLimits(_Closed):
    """One limit per external channel (console and file are never limited). Not an open mapping: a
    misspelt channel is an error, and a file changing one channel keeps the other channels' defaults."""

    sms: ChannelRate
    email: ChannelRate
    slack: ChannelRate
    webhook: ChannelRate
    apprise: ChannelRate


class NotifRetry(_Open):
    max_attempts: Annotated[int, Field(ge=1, le=50)]
    initial_seconds: Annotated[Dec, Field(gt=0, le=3600)]
    max_seconds: Annotated[Dec, Field(gt=0, le=86400)]


class ChannelToggle(_Open):
    enabled: bool


class EmailNotif(ChannelToggle):
    use_tls: Literal["starttls", "ssl", "none"]
    subject_prefix: str


class SmsNotif(ChannelToggle):
    twilio_base_url: Annotated[str, Field(pattern=r"^https?://")]


class FileNotif(_Open):
    path: str
    max_bytes: Annotated[int, Field(ge=1024)]
    backup_count: Annotated[int, Field(ge=0, le=1000)]


class InhibitRule(_Open):
    source_type: str
    target_types: list[str]
    equal: list[Literal["component", "environment", "category"]] = []
    max_age_minutes: Annotated[int, Field(ge=1, le=10080)] = 60


class Notifications(_Open):
    email: EmailNotif
    sms: SmsNotif
    slack: ChannelToggle
    webhook: ChannelToggle
    apprise: ChannelToggle
    file: FileNotif
    rate_limits: RateLimits
    dedup_window_minutes: Annotated[int, Field(ge=0, le=10080)]
    dedup_window_minutes_by_type: dict[str, Annotated[int, Field(ge=0, le=10080)]]
    renotify_minutes: Annotated[int, Field(ge=1, le=10080)]
    renotify_acknowledged: bool
    retry: NotifRetry
    inhibit_rules: list[InhibitRule]
    timeout_seconds: Annotated[int, Field(ge=1, le=300)]
    group_commit_ms: Annotated[int, Field(ge=0, le=10000)]
    worker_poll_seconds: Annotated[Dec, Field(gt=0, le=3600)]


Channel = Literal["console", "file", "email", "sms", "slack", "webhook", "apprise", "database"]


class AlertRouting(_Open):
    critical: list[Channel]
    high: list[Channel]
    medium: list[Channel]
    low: list[Channel]
    by_type: dict[str, list[Channel]]


class Backoff(_Open):
    """Retries of a failed venue request (network error, 429, 5xx): exponential backoff with jitter."""

    initial_ms: Annotated[int, Field(ge=10, le=60_000)]
    max_ms: Annotated[int, Field(ge=10, le=600_000)]
    multiplier: Annotated[Dec, Field(ge=Decimal("1"), le=Decimal("10"))]
    max_retries: Annotated[int, Field(ge=0, le=20)]

    _max_not_below_initial = _not_below("max_ms", "initial_ms")


class Timeouts(_Open):
    api_seconds: Annotated[int, Field(ge=1, le=120)]
    websocket_ping_seconds: Annotated[int, Field(ge=1, le=300)]


class SystemDefaults(_Open):
    timezone: TimeZone
    backoff: Backoff
    timeouts: Timeouts


class Database(_Open):
    pool_min_size: Annotated[int, Field(ge=1, le=100)]
    pool_max_size: Annotated[int, Field(ge=1, le=100)]
    pool_timeout_seconds: Annotated[int, Field(ge=1, le=600)]
    # 0 = no limit; otherwise a statement running longer is canceled by the server
    statement_timeout_ms: Annotated[int, Field(ge=0, le=3_600_000)]

    _max_not_below_min = _not_below("pool_max_size", "pool_min_size")


class HealthChecks(_Open):
    interval_seconds: Annotated[int, Field(ge=5, le=3600)]
    min_free_disk_gb: Annotated[Dec, Field(ge=Decimal("0"), le=Decimal("100000"))]
    max_memory_pct: Annotated[int, Field(ge=1, le=100)]
    max_api_latency_ms: Annotated[int, Field(ge=1, le=600_000)]


class SystemConfig(_Open):
    environment: Environment
    defaults: SystemDefaults
    database: Database
    health_checks: HealthChecks
    logging: Logging
    notifications: Notifications
    alert_routing: AlertRouting


# ---------------------------------------------------------------- trading.yaml
class Account(_Open):
    initial_capital: Dollars
    max_total_exposure_dollars: Dollars
    # Absolute cap: the daily loss limit may never exceed $2,000 (spec 4.1 non-customizable safety cap).
    daily_loss_limit_dollars: Annotated[Dec, Field(gt=0, le=Decimal("2000"))]
    weekly_loss_limit_dollars: Annotated[Dec, Field(gt=0, le=Decimal("10000"))]
    min_balance_to_trade_dollars: Dollars
    max_trades_per_hour: PosInt
    max_trades_per_day: PosInt


class Kelly(_Open):
    default_fraction: Annotated[Dec, Field(ge=Decimal("0.05"), le=Decimal("0.50"))]
    max_position_pct: Annotated[Dec, Field(gt=0, le=Decimal("0.25"))]
    min_position_dollars: Dollars
    # Absolute cap $5,000 per position (spec 4.1); allowed range $10-$5,000.
    max_position_dollars: Annotated[Dec, Field(ge=Decimal("10"), le=Decimal("5000"))]
    # optional: a cap over every position, also a strategy's own max_position_dollars (settlement arbitrage's
    # $1,000); a live production run sets it from live_prod_limits
    absolute_max_position_dollars: Annotated[Dec, Field(gt=0, le=Decimal("5000"))] | None = None


class SpecialEvents(_Open):
    """trading.yaml position_sizing.special_events (spec 5.3, markets.yaml special_events): playoff and championship
    markets trade a smaller stake, need a larger edge (championship) and more liquidity."""

    playoffs_multiplier: Annotated[Dec, Field(gt=0, le=1)] = Decimal("0.5")  # x the Kelly fraction / fixed stake
    championship_multiplier: Annotated[Dec, Field(gt=0, le=1)] = Decimal("0.3")
    championship_min_edge_multiplier: Annotated[Dec, Field(ge=1, le=5)] = Decimal("1.5")
    # x the liquidity minimums (volume, 24 h volume, open interest, size at the ask): never below the regular ones
    playoffs_liquidity_multiplier: Annotated[Dec, Field(ge=1, le=10)] = Decimal("2.0")
    championship_liquidity_multiplier: Annotated[Dec, Field(ge=1, le=10)] = Decimal("3.0")


class PositionSizing(_Open):
    # how an entry's stake is set before the size reductions, caps and minimum (which bind every method)
    method: Literal["kelly", "fixed", "fixed_fraction"]
    # dollars per entry (method fixed), within the absolute per-position cap
    fixed_amount_dollars: Annotated[Dec, Field(gt=0, le=Decimal("5000"))]
    # share of the bankroll per entry (method fixed_fraction), within max_position_pct's own bound
    fixed_fraction: Annotated[Dec, Field(gt=0, le=Decimal("0.25"))]
    kelly: Kelly
    sport_fractions: dict[str, Annotated[Dec, Field(ge=Decimal("0.05"), le=Decimal("0.50"))]]
    special_events: SpecialEvents = SpecialEvents()


class Edges(_Open):
    min_edge_global: Prob
    confidence_min: Prob
    market_order_edge: Prob


class TradingBreakers(_Open):
    # Non-customizable safety constants (spec 4.1).
    consecutive_losses: Literal[5]
    rapid_loss_dollars: Annotated[Dec, Field(ge=Decimal("200"), le=Decimal("200"))]
    rapid_loss_minutes: PosInt
    # seconds until automatic reset (>= 1), or "manual"
    reset: dict[str, Annotated[int, Field(ge=1)] | Literal["manual"]]


class Risk(_Open):
    approval_ttl_seconds: Annotated[int, Field(ge=1, le=3600)]


class Execution(_Open):
    # the order type of an entry whose method's execution_config names none (an edge >= market_order_edge or a
    # market-style strategy is immediate whatever this says)
    default_order_type: Literal["limit", "market"]
    # the most a market-style entry pays above the ask (a share of it); a method's execution_config
    # max_slippage_percent, within the same range, can only tighten it
    max_slippage_pct: Annotated[Dec, Field(ge=Decimal("0"), le=Decimal("0.10"))]
    # how long a limit entry rests before it is canceled (spec 5.10); a method's execution_config
    # order_timeout_seconds, within the same range, replaces it for that method's entries
    limit_order_timeout_seconds: Annotated[int, Field(ge=5, le=3600)] = 30


class TradingAlerts(_Open):
    # a position closing with realized P&L <= -loss / >= +gain raises one loss_threshold / gain_threshold alert
    on_loss_threshold_dollars: Annotated[Dec, Field(gt=0)]
    on_gain_threshold_dollars: Annotated[Dec, Field(gt=0)]
    # account equity this share below its peak (of the window's recorded balances) raises a drawdown alert
    max_drawdown_pct: Annotated[Dec, Field(gt=0, lt=1)]
    drawdown_window_days: Annotated[int, Field(ge=1, le=3650)]
    # the open positions' value at risk to settlement at var_confidence, as a share of equity, that alerts
    max_var_pct: Annotated[Dec, Field(gt=0, lt=1)]
    var_confidence: Annotated[Dec, Field(gt=Decimal("0.5"), lt=1)]


class Freshness(_Open):
    max_price_age_seconds: Annotated[int, Field(ge=1, le=3600)]
    max_game_state_age_seconds: Annotated[int, Field(ge=1, le=3600)]
    # the only behaviour there is: stale data blocks entries (risk check + data_stale breaker); another word
    # here would be silently ignored
    on_stale_data: Literal["stop_trading"]


def _hours_window(value: object) -> object:
    """["HH:MM", "HH:MM"], start before end on the 24-hour clock: the risk check compares the texts, so "9:00"
    or an unquoted 23:00 (YAML reads it as the number 1380) would silently move the window."""
    import re

    hhmm = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(t, str) and hhmm.match(t) for t in value)):
        raise ValueError('must be ["HH:MM", "HH:MM"] in quotes, 00:00 to 24:00 (e.g. ["09:00", "23:00"])')
    if value[0] >= value[1]:
        raise ValueError(f"the start {value[0]} must be before the end {value[1]} (a window cannot cross midnight)")
    return value


class TradingHours(_Open):
    enabled: bool
    timezone: TimeZone
    weekday: Annotated[list[str], BeforeValidator(_hours_window)]
    weekend: Annotated[list[str], BeforeValidator(_hours_window)]


class MarketFilters(_Open):
    min_volume_contracts: Annotated[int, Field(ge=0)]
    max_spread_pct: Prob
    exclude_categories: list[str]
    min_seconds_to_close: Annotated[int, Field(ge=0)]
    # price sanity of an entry; a price outside [0.01, 0.99] is no price a binary contract trades at
    min_price: Annotated[Dec, Field(ge=Decimal("0.01"), le=Decimal("0.99"))]
    max_price: Annotated[Dec, Field(ge=Decimal("0.01"), le=Decimal("0.99"))]
    trading_hours: TradingHours

    @field_validator("max_price")
    @classmethod
    def _above_min_price(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        low = info.data.get("min_price")
        if low is not None and value <= low:
            raise ValueError(f"max_price ({value}) must be above min_price ({low})")
        return value


class LiveProdLimits(_Open):
    # caps of live trading on Kalshi production (spec 4.2 env.template prod: 100 / 1000 / 50)
    max_position_dollars: Annotated[Dec, Field(gt=0)]
    max_total_exposure_dollars: Annotated[Dec, Field(gt=0)]
    daily_loss_limit_dollars: Annotated[Dec, Field(gt=0, le=Decimal("2000"))]


def _yaml_off(value: object) -> object:
    """YAML reads an unquoted `off` (and `no`, `false`) as the boolean false: that is the word off."""
    return "off" if value is False else value


class ManualApproval(_Closed):
    # ADR-009: which entries wait for a person's approval (precog approvals): off; live (every live entry on
    # Kalshi); prod (live entries on Kalshi production); always (every entry, paper and the local exchange
    # included: a rehearsal). Exits never wait.
    mode: Annotated[Literal["off", "live", "prod", "always"], BeforeValidator(_yaml_off)]
    # an entry nobody approved (or an approved one that could not be sent) within this many seconds expires
    timeout_seconds: Annotated[int, Field(ge=10, le=3600)]
    # spec 7.x: a live entry on Kalshi decided while the market stream is down (reconnecting, not started) waits
    # for approval too, whatever the mode, once the stream has been down this long (before that, and while a
    # market is only being subscribed, the entry is deferred to the next decision: nothing sent, nothing asked)
    when_realtime_down: bool
    realtime_grace_seconds: Annotated[int, Field(ge=0, le=600)]


class TradingConfig(_Open):
    environment: Literal["demo", "prod", "test"]
    market_filters: MarketFilters
    live_trading_confirmed: bool
    live_prod_limits: LiveProdLimits
    manual_approval: ManualApproval
    account: Account
    position_sizing: PositionSizing
    edges: Edges
    circuit_breakers: TradingBreakers
    data_freshness: Freshness
    risk: Risk
    execution: Execution
    alerts: TradingAlerts


# ---------------------------------------------------------------- position_management.yaml
class Monitoring(_Open):
    normal_frequency: Annotated[int, Field(ge=10, le=120)]
    urgent_frequency: Annotated[int, Field(ge=3, le=15)]
    price_cache_ttl_seconds: Annotated[int, Field(ge=0, le=300)]
    max_api_calls_per_minute: Literal[60]
    # an open position whose price is older than this raises position_price_stale (critical past 120 s)
    stale_after_seconds: Annotated[int, Field(ge=10, le=3600)]

    _stale_after_ttl = _not_below("stale_after_seconds", "price_cache_ttl_seconds", strictly=True,
                                  why=": a cached price that old is served by design")


class TrailingStop(_Open):
    enabled: bool
    activation_threshold: Annotated[Dec, Field(ge=Decimal("0.05"), le=Decimal("0.20"))]
    initial_distance: Annotated[Dec, Field(ge=Decimal("0.02"), le=Decimal("0.10"))]
    tightening_rate: Annotated[Dec, Field(ge=Decimal("0.005"), le=Decimal("0.02"))]
    floor_distance: Annotated[Dec, Field(ge=Decimal("0.01"), le=Decimal("0.05"))]


class StopLoss(_Open):
    high_confidence: Annotated[Dec, Field(ge=Decimal("-0.40"), le=Decimal("-0.05"))]
    medium_confidence: Annotated[Dec, Field(ge=Decimal("-0.40"), le=Decimal("-0.05"))]
    low_confidence: Annotated[Dec, Field(ge=Decimal("-0.40"), le=Decimal("-0.05"))]


class ProfitTarget(_Open):
    high_confidence: Annotated[Dec, Field(ge=Decimal("0.10"), le=Decimal("0.50"))]
    medium_confidence: Annotated[Dec, Field(ge=Decimal("0.05"), le=Decimal("0.50"))]
    low_confidence: Annotated[Dec, Field(ge=Decimal("0.05"), le=Decimal("0.50"))]


class ExitRules(_Open):
    stop_loss: StopLoss
    profit_target: ProfitTarget


class PartialStage(_Open):
    name: str
    profit_threshold: Prob
    exit_percentage: Annotated[int, Field(ge=1, le=100)]


class PartialExits(_Open):
    enabled: bool
    stages: list[PartialStage]


class Portfolio(_Open):
    max_open_positions: Annotated[int, Field(ge=1, le=1000)]
    max_total_capital_deployed: Dollars
    max_correlated_exposure: Dollars
    max_positions_per_game: Annotated[int, Field(ge=1, le=100)]
    max_exposure_per_game: Dollars
    max_exposure_by_sport: dict[str, Prob]


class SizingAdjustments(_Open):
    high_volatility_ratio: Annotated[Dec, Field(gt=Decimal("1"), le=Decimal("10"))]
    high_volatility_reduction: Annotated[Dec, Field(ge=Decimal("0"), lt=Decimal("1"))]
    volatility_recent_minutes: Annotated[int, Field(ge=1, le=1440)]
    volatility_baseline_minutes: Annotated[int, Field(ge=2, le=10080)]
    volatility_min_recent_moves: Annotated[int, Field(ge=1, le=10000)]
    volatility_min_baseline_moves: Annotated[int, Field(ge=1, le=100000)]

    _baseline_longer = _not_below("volatility_baseline_minutes", "volatility_recent_minutes", strictly=True)


def _exit_execution(value: object) -> object:
    """The engine's own check of the exit policies (order type, price style, escalation, waits), run here too so
    `precog config validate` and `precog health` refuse what `precog run` would refuse at its start."""
    from precog.trading.exits import execution_policies

    if not isinstance(value, dict):
        raise ValueError("must be a mapping of priorities (CRITICAL, HIGH, MEDIUM, LOW)")
    execution_policies(value)
    return value


class PositionManagementConfig(_Open):
    portfolio: Portfolio
    monitoring: Monitoring
    exit_rules: ExitRules
    trailing_stop: TrailingStop
    partial_exits: PartialExits
    sizing_adjustments: SizingAdjustments
    exit_execution: Annotated[dict[str, Any], BeforeValidator(_exit_execution)]


# ---------------------------------------------------------------- the rest
class EdgeDetection(_Open):
    assume_taker: bool
    shrinkage_factor: Annotated[Dec, Field(ge=Decimal("0"), le=Decimal("0.5"))]
    expected_slippage_pct: Annotated[Dec, Field(ge=Decimal("0"), le=Decimal("0.10"))]


class EloDefaults(_Closed):
    """A sport's parameters for new Elo model versions (`precog models create NAME VERSION --type elo`)."""

    k_factor: Annotated[Dec, Field(gt=0, le=100)]
    initial_rating: Annotated[Dec, Field(gt=0, lt=3000)]
    home_field_advantage: Annotated[Dec, Field(ge=-400, le=400)]
    scale: Annotated[Dec, Field(gt=0, le=10_000)]
    season_regression: Annotated[Dec, Field(ge=0, le=1)]


class EloAutoUpdate(_Closed):
    """New final results applied to the Elo ratings by the ingestion process (precog.forecast.elo_update)."""

    enabled: bool
    # at most one update pass this often (minutes; fractions allowed): the first follows the first poll at once
    interval_minutes: Annotated[Dec, Field(ge=Decimal("0.1"), le=1440)]


class EloSection(_Open):
    """`probability_models.elo`: `auto_update`, and per sport the parameters of new Elo versions."""

    __pydantic_extra__: dict[str, EloDefaults]  # every other key is a sport (an open mapping)
    auto_update: EloAutoUpdate


class WpAutoRefit(_Closed):
    """New WP versions trained on the in-game states ingestion stored (precog.forecast.wp_refit)."""

    enabled: bool
    interval_days: Annotated[int, Field(ge=1, le=90)]
    min_new_games: Annotated[int, Field(ge=1, le=1000)]
    # the version in use below this recent/historical Brier ratio refits as soon as there is a new game
    min_recent_performance: Annotated[Dec, Field(gt=0, le=1)]
    min_training_games: Annotated[int, Field(ge=20, le=100_000)]
    base_plays: str | None = None  # a plays file whose rows come first (the shipped nflfastR file, say)
    check_minutes: Annotated[Dec, Field(ge=1, le=1440)] = Decimal("60")


class WpSection(_Closed):
    auto_refit: WpAutoRefit


class ModelHealth(_Closed):
    """Model health from positions held to settlement (spec 7.3 monitoring; precog.forecast.health)."""

    min_settled_positions: Annotated[int, Field(ge=10, le=100_000)]
    # the calibration error of a small sample is mostly noise (a well-calibrated version shows ~0.16 at 30
    # positions), so it is judged only from this many positions on
    calibration_min_positions: Annotated[int, Field(ge=10, le=100_000)]
    recent_window_days: Annotated[int, Field(ge=1, le=365)]
    max_calibration_error: Annotated[Dec, Field(gt=0, le=1)]
    min_edge_profitability: Prob
    min_accuracy: Prob
    min_recent_performance: Annotated[Dec, Field(gt=0, le=1)]

    _calibration_sample = _not_below("calibration_min_positions", "min_settled_positions")


class ProbabilityModelsConfig(_Open):
    edge_detection: EdgeDetection
    elo: EloSection
    wp: WpSection
    # a recorded evaluation this share worse (Brier) than the version's previous validation raises model_degradation
    degradation_alert_pct: Annotated[Dec, Field(gt=0, le=1)]
    health: ModelHealth


class League(_Open):
    enabled: bool
    series_ticker: str
    kelly_fraction: Annotated[Dec, Field(ge=Decimal("0.05"), le=Decimal("0.50"))]
    min_edge: Prob
    max_spread: Prob
    # traded-volume minimum (contracts) of the league's markets; the stricter of it and
    # trading.market_filters.min_volume_contracts applies (a league without it: the global minimum alone)
    min_liquidity: Annotated[int, Field(ge=0)] = 0


def _only_open(value: object) -> object:
    if not isinstance(value, list) or not value or any(v != "open" for v in value):
        raise ValueError("must be [open]: only an open market takes orders, so `open` is the only status an "
                         "entry can be allowed in")
    return value


def _binary_true(value: object) -> object:
    if value is not True:
        raise ValueError("must be true: Precog prices and sizes binary (yes/no) contracts only")
    return value


class GlobalFilters(_Open):
    """markets.yaml global_filters: pre-trade market checks (precog.trading.risk) on top of trading.yaml
    market_filters; where both set a limit the stricter applies."""

    min_hours_to_close: Annotated[Dec, Field(ge=0, le=Decimal("8760"))]
    max_days_to_close: Annotated[Dec, Field(gt=0, le=Decimal("3650"))]
    min_volume_24h: Annotated[int, Field(ge=0)]
    min_open_interest: Annotated[int, Field(ge=0)]
    # contracts offered at the price an entry buys at (0 = off); a market of unreported size is refused while on
    min_bid_ask_size: Annotated[int, Field(ge=0, le=1_000_000)]
    # hours since the market opened (Kalshi open_time; 0 = off; up to 30 days)
    min_market_age_hours: Annotated[Dec, Field(ge=0, le=Decimal("720"))]
    statuses_allowed: Annotated[list[str], BeforeValidator(_only_open)]
    binary_only: Annotated[bool, BeforeValidator(_binary_true)]

    _window_not_empty = _not_below("max_days_to_close", "min_hours_to_close", strictly=True, scale=24,
                                   units=(" days", " h"))


class KalshiFees(_Open):
    taker_rate: Prob
    maker_rate: Prob


class KalshiPlatform(_Open):
    # client-side request budget; Kalshi's tiers run from 20/10 (Basic) to 400/400 (Prime) a second
    read_requests_per_second: Annotated[Dec, Field(gt=0, le=Decimal("1000"))]
    write_requests_per_second: Annotated[Dec, Field(gt=0, le=Decimal("1000"))]
    # a budget used this much over a minute raises rate_limit_usage (spec 8.2: alert at 80% of a rate limit)
    rate_limit_alert_pct: Annotated[Dec, Field(gt=0, le=1)]
    fees: KalshiFees


class Platforms(_Open):
    kalshi: KalshiPlatform


class CompositeWeights(_Closed):
    """markets.yaml prioritization.composite: the weights of sort_by composite (precog.trading.priority)."""

    edge: Prob
    liquidity: Prob
    confidence: Prob


class Prioritization(_Open):
    """markets.yaml prioritization: how many distinct markets we hold at once (positions and working entries),
    overall and per sport (precog.trading.risk)."""

    max_simultaneous_markets: Annotated[int, Field(ge=1, le=1000)]
    max_per_sport: Annotated[int, Field(ge=1, le=1000)]
    # the order a decision scan puts its candidate entries to risk approval: the largest edge first (spec), the
    # weighted edge / liquidity / confidence score (composite), or the markets' own order (ticker)
    sort_by: Literal["edge", "composite", "ticker"] = "edge"
    composite: CompositeWeights
    # markets held at once in one correlated group (the sport and the slate day: the group max_correlated_exposure
    # caps in dollars)
    max_correlated: Annotated[int, Field(ge=1, le=1000)] = 5

    @field_validator("composite")
    @classmethod
    def _weights_sum_to_one(cls, value: CompositeWeights) -> CompositeWeights:
        # weights are shares: summing to 1, the score stays on [0, 1] like its components
        total = value.edge + value.liquidity + value.confidence
        if total != 1:
            raise ValueError(f"the weights edge ({value.edge}) + liquidity ({value.liquidity}) + confidence "
                             f"({value.confidence}) add up to {total}; each is in [0, 1] and they must sum to 1.00")
        return value


class MarketsConfig(_Open):
    platforms: Platforms
    leagues: dict[str, League]
    global_filters: GlobalFilters
    prioritization: Prioritization


# The four entry strategies' blocks are closed (precog.trading.strategies reads exactly these keys): a misspelt
# key would otherwise leave the strategy on its built-in default (a certainty rule without `min_lead` would call
# any lead decided), so it is refused naming the file and the key.
NonNegInt = Annotated[int, Field(ge=0)]
NonNegDec = Annotated[Dec, Field(ge=Decimal("0"))]


class StrategyBlock(_Closed):
    version: Annotated[str, Field(pattern=r"^v[0-9]+\.[0-9]+$")]
    enabled: bool
    min_edge: Prob
    # replaces the global per-position cap for this strategy's entries: the same absolute bounds apply
    max_position_dollars: Annotated[Dec, Field(ge=Decimal("10"), le=Decimal("5000"))] | None = None
    kelly_fraction: Annotated[Dec, Field(gt=Decimal("0"), le=Decimal("1"))] | None = None
    max_spread: Prob | None = None
    shrinkage_factor: Prob | None = None


class StrategySport(_Closed):
    min_edge: Prob | None = None


class PreGameSport(StrategySport):
    max_key_injuries: NonNegInt | None = None
    max_wind_mph: NonNegDec | None = None
    max_precipitation: NonNegDec | None = None
    allow_snow: bool | None = None


class PreGameBlock(StrategyBlock):
    min_hours_before_start: NonNegDec
    max_hours_before_start: Annotated[Dec, Field(gt=Decimal("0"))]
    markets: list[str] = []
    sports: dict[str, PreGameSport] = {}


class HalftimeBlock(StrategyBlock):
    window_minutes: Annotated[Dec, Field(gt=Decimal("0"))]
    min_lead: NonNegInt
    max_first_half_turnovers: NonNegInt | None = None
    max_special_teams_tds: NonNegInt | None = None
    sports: dict[str, StrategySport] = {}


class LiveBlock(StrategyBlock):
    decision_seconds: Annotated[Dec, Field(gt=Decimal("0"))]
    trigger_events: list[str] = []
    sports: dict[str, StrategySport] = {}


class CertaintyRule(_Closed):
    min_lead: PosInt
    max_seconds: PosInt
    leader_has_possession: bool = False
    opponent_max_timeouts: NonNegInt | None = None


class SettlementBlock(StrategyBlock):
    min_probability: Prob
    max_seconds_remaining: PosInt
    certainty_rules: dict[str, list[CertaintyRule]]
    sports: dict[str, StrategySport] = {}


class EntryStrategies(_Closed):
    pre_game_entry: PreGameBlock
    halftime_entry: HalftimeBlock
    live_trading: LiveBlock
    settlement_arbitrage: SettlementBlock


class MethodActivation(_Open):
    min_paper_trades: Annotated[int, Field(ge=0)]
    min_paper_roi: Dec


class MethodAutoDeprecation(_Open):
    window_days: Annotated[int, Field(ge=1, le=3650)]
    min_win_rate: Prob
    min_roi: Annotated[Dec, Field(ge=Decimal("-1"), le=Decimal("1"))]
    min_trades: Annotated[int, Field(ge=1)]  # the fewest closed trades either rule judges
    # how often a running trading loop applies the rules, in minutes of its clock (also at start and after a close)
    check_interval_minutes: Annotated[int, Field(ge=1, le=1440)]


class MethodRules(_Open):
    activation: MethodActivation
    auto_deprecation: MethodAutoDeprecation


class StrategyActivation(_Open):
    min_testing_days: Annotated[int, Field(ge=0, le=3650)]
    min_testing_trades: Annotated[int, Field(ge=0)]


class StrategyLifecycle(_Open):
    activation: StrategyActivation


EntryStrategyName = Literal["pre_game_entry", "halftime_entry", "live_trading", "settlement_arbitrage"]


class SelectionLogic(_Closed):
    # spec 4.3: priority, best_edge (within min_edge_difference: priority), or best_sharpe (the strategy version with
    # the better Sharpe ratio of its closed paper and live positions; below min_sharpe_positions: priority)
    method: Literal["priority", "best_edge", "best_sharpe"]
    min_edge_difference: Prob
    min_sharpe_positions: Annotated[int, Field(ge=2, le=100_000)] = 20


# spec 5.11 hedge_strategy: a winning position sells part of itself once (precog.trading.exits.HedgeRules, which
# checks a method's `hedge` override against the same ranges)
class HedgeTriggers(_Closed):
    unrealized_gain_pct: Annotated[Dec, Field(gt=Decimal("0"), le=Decimal("10"))]
    edge_flip: Annotated[Dec, Field(gt=Decimal("0"), le=Decimal("1"))]
    minutes_left: Annotated[Dec, Field(ge=Decimal("0"), le=Decimal("1440"))]
    min_gain_dollars: Annotated[Dec, Field(ge=Decimal("0"), le=Decimal("1000000"))]


class HedgeSizing(_Closed):
    method: Literal["partial_lock"]
    lock_fraction: Annotated[Dec, Field(gt=Decimal("0"), lt=Decimal("1"))]


class HedgeStrategy(_Closed):
    enabled: bool
    triggers: HedgeTriggers
    sizing: HedgeSizing


class AbTesting(_Open):
    # the capital split of active methods without explicit shares: the others share existing_share, the newest
    # gets new_share (read as proportions: they need not add up to 1, but cannot both be 0)
    existing_share: Prob
    new_share: Prob

    @field_validator("new_share")
    @classmethod
    def _not_both_zero(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if value == 0 and info.data.get("existing_share") == 0:
            raise ValueError("existing_share and new_share cannot both be 0 (no method would get capital)")
        return value


class TradeStrategiesConfig(_Open):
    strategies: EntryStrategies
    ab_testing: AbTesting
    hedge_strategy: HedgeStrategy
    # the order one market's competing signals are chosen in: every entry strategy, once
    strategy_priority: list[EntryStrategyName]
    selection_logic: SelectionLogic

    @field_validator("strategy_priority")
    @classmethod
    def _every_strategy_once(cls, value: list[str]) -> list[str]:
        missing = [n for n in EntryStrategies.model_fields if n not in value]
        if len(set(value)) != len(value) or missing:
            raise ValueError("must list each entry strategy exactly once"
                             + (f" (missing {', '.join(missing)})" if missing else " (a name is repeated)"))
        return value
    methods: MethodRules
    strategy_lifecycle: StrategyLifecycle


class Espn(_Open):
    enabled: bool
    base_url: str
    # ESPN's path of each sport's API below base_url (football/nfl ...); only sports Precog parses
    paths: dict[Literal["nfl", "ncaaf", "nba", "mlb"], Annotated[str, Field(pattern=r"^[a-z0-9-]+/[a-z0-9-]+$")]]
    # ESPN's NCAAF scoreboard `groups` (80 = all FBS games; without it ESPN returns a small featured set)
    ncaaf_groups: Annotated[int, Field(ge=1, le=1000)]
    poll_live_seconds: Annotated[int, Field(ge=1, le=600)]
    poll_idle_seconds: Annotated[int, Field(ge=1, le=86400)]
    timeout_seconds: Annotated[int, Field(ge=1, le=120)]
    # scoreboard days a restarted `precog ingest run` catches up on (docs/ingestion.md; 0 = none)
    backfill_days: Annotated[int, Field(ge=0, le=60)] = 7


class DataSourcesConfig(_Open):
    espn: Espn


FILE_MODELS: dict[str, type[BaseModel]] = {
    "system": SystemConfig,
    "trading": TradingConfig,
    "trade_strategies": TradeStrategiesConfig,
    "position_management": PositionManagementConfig,
    "probability_models": ProbabilityModelsConfig,
    "markets": MarketsConfig,
    "data_sources": DataSourcesConfig,
}

CONFIG_FILES: tuple[str, ...] = tuple(FILE_MODELS)

# Keys the spec lists (spec 4.3) that have no effect in this system. A file, environment variable or override
# that sets one is refused with the reason below rather than silently ignored; they are absent from the
# packaged defaults. A dotted key covers everything under it. docs/configuration.md lists them.
# Re-sending a failed order would risk sending one decision twice; what is retried, and where, is this:
_ORDER_RETRY = (
    "no order is ever sent twice: a failed Kalshi request (network error, 429, 5xx) is retried by the client "
    "(system.defaults.backoff.*) and an order whose answer was lost is looked up by its client_order_id; an entry "
    "the venue refuses is decided again at the engine's next decision (fresh quote, fresh risk approval, its own "
    "client_order_id), and a refused exit attempt is followed by the exit's next attempt "
    "(position_management.exit_execution)")

RETIRED_KEYS: dict[str, str] = {
    "system.defaults.currency":
        "Kalshi lists, trades and settles in US dollars: every amount Precog stores and shows is USD",
    "probability_models.calibration":
        "calibration is measured by decile in `precog forecast evaluate` and `precog backtest` reports, against "
        "|observed - forecast| <= 0.03 where a decile holds >= 500 forecasts (docs/models.md); nothing reads a "
        "bin count or error bound from configuration",
    "system.defaults.rate_limits":
        "request budgets are per source: markets.platforms.kalshi.read_requests_per_second / "
        "write_requests_per_second (Kalshi), data_sources.espn.requests_per_minute (ESPN)",
    "system.defaults.timeouts.db_query_seconds":
        "set system.database.statement_timeout_ms (the one statement timeout of Precog's database sessions)",
    "markets.platforms.kalshi.enabled":
        "Kalshi is the only venue; to stop new entries use `precog halt` (or `precog breakers trip manual`), "
        "to stop trading stop `precog run`",
    "markets.platforms.kalshi.active_environment":
        "the venue environment is system.environment.active (env TRADING_ENV) or `--env`",
    "markets.platforms.kalshi.urls":
        "the Kalshi REST URL of each environment is built in (spec 6.1); point elsewhere with KALSHI_BASE_URL or "
        "`--base-url`",
    "markets.platforms.kalshi.websocket_urls":
        "the Kalshi WebSocket URL of each environment is built in (spec 6.1); point elsewhere with KALSHI_WS_URL",
    "markets.platforms.kalshi.rate_limit_per_minute":
        "Kalshi budgets requests per second, reads and writes apart: set "
        "markets.platforms.kalshi.read_requests_per_second / write_requests_per_second",
    "markets.platforms.kalshi.rate_limit_buffer":
        "set markets.platforms.kalshi.read_requests_per_second / write_requests_per_second to the budget you want "
        "to use (already below your tier's limit if you want headroom)",
    "data_sources.data_quality.max_game_state_age_seconds":
        "set trading.data_freshness.max_game_state_age_seconds (the one limit ingestion, entries and the "
        "dashboard use)",
    "data_sources.data_quality.max_price_age_seconds":
        "set trading.data_freshness.max_price_age_seconds (the one limit ingestion, entries and the dashboard use)",
    "data_sources.data_quality.breaker_bad_points":
        "set system.circuit_breakers.data_quality.bad_points",
    "data_sources.data_quality.failover_after_seconds":
        "ESPN is the only live game source, so there is nothing to fail over to; a stale feed pauses entries "
        "(trading.circuit_breakers.data_stale_seconds)",
    "data_sources.data_quality.max_data_age_minutes":
        "set trading.data_freshness.max_game_state_age_seconds / max_price_age_seconds",
    "probability_models.architecture":
        "each method names its own model (precog methods create ... --model NAME@VERSION); there is no primary "
        "model",
    "probability_models.ensemble.enabled":
        "an ensemble is used exactly when a method names an ensemble model version; "
        "probability_models.ensemble.weights are the defaults of `precog models create --type ensemble`",
    "trading.position_sizing.kelly.min_edge_threshold":
        "the minimum edge is trading.edges.min_edge_global (with the league's and the strategy's minimum, the "
        "largest wins; a method's risk.min_edge_threshold replaces them)",
    "trade_strategies.backtesting.start_date":
        "pass `precog backtest --from`; without it the backtest starts where the data starts",
    "trade_strategies.backtesting.end_date":
        "pass `precog backtest --to`; without it the backtest ends where the data ends",
    "trade_strategies.backtesting.transaction_cost_pct":
        "backtests charge the real fee schedule (markets.platforms.kalshi.fees) on every fill",
    "trade_strategies.backtesting.average_slippage_pct":
        "backtests fill against the simulated book (backtesting.market_half_spread) and size with "
        "probability_models.edge_detection.expected_slippage_pct",
    "markets.global_filters.max_implied_volatility":
        "the spec gives no way to compute a binary contract's implied volatility (no pricing model, horizon or "
        "annualization); price volatility cuts the size (position_management.sizing_adjustments."
        "high_volatility_ratio / high_volatility_reduction; docs/trading.md, Risk)",
    "markets.prioritization.composite_weights":
        "the weights of sort_by: composite are markets.prioritization.composite.edge / liquidity / confidence "
        "(0.50 / 0.25 / 0.25; docs/trading.md, Risk)",
    "probability_models.edge_detection.market_efficiency":
        "not implemented: the spec gives efficiency levels (NFL game_winner 0.75, player_props 0.60, live 0.55, ...) "
        "and a slope (+0.01 required edge per +0.10 efficiency) but not the efficiency at which no extra edge is "
        "required, so the adjustment cannot be computed; raise the minimum edge instead (markets.leagues.<sport>."
        "min_edge, a strategy's min_edge, a method's risk.min_edge_threshold)",
    "trading.execution.retry_on_failure": _ORDER_RETRY,
    "trading.execution.max_retries": _ORDER_RETRY,
    "trading.execution.retry_backoff_seconds": _ORDER_RETRY,
}


def retired_reason(key: str) -> str | None:
    """Why a dotted key (file.section.key) is refused, or None if it is not a retired key."""
    parts = key.split(".")
    for i in range(len(parts), 1, -1):
        reason = RETIRED_KEYS.get(".".join(parts[:i]))
        if reason is not None:
            return reason
    return None


# Mappings whose keys are the user's to choose (sports, alert types, strategy names ...): new keys there are
# not typos.
OPEN_MAPPINGS: frozenset[str] = frozenset({
    "system.notifications.dedup_window_minutes_by_type",
    "system.alert_routing.by_type",
    "trading.position_sizing.sport_fractions",
    "position_management.portfolio.max_exposure_by_sport",
    "trade_strategies.strategies",
    "trade_strategies.strategies.*.sports",
    "trade_strategies.strategies.*.certainty_rules",
    "trading.circuit_breakers.reset",
    "probability_models.elo",
    "probability_models.ensemble.weights",
    "markets.leagues",
    "data_sources.espn.paths",
})
