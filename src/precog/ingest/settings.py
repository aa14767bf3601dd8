"""Ingestion settings from the configuration (markets.yaml, data_sources.yaml, trading.yaml, system.yaml)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from precog.feeds.espn import DEFAULT_BASE_URL, SPORT_PARAMS, SPORT_PATHS
from precog.feeds.game_state import SPORTS
from precog.forecast.wp_refit import RefitSettings
from precog.ingest.poll_schedule import PollSchedule
from precog.ingest.quality import QualityLimits
from precog.venues.kalshi.client import RetryPolicy
from precog.venues.kalshi.ratelimit import TIERS, RateLimits, rate_limits_from_config, usage_alert_from_config
from precog.venues.kalshi.settings import retry_policy_from_config, websocket_heartbeat


class IngestSettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class IngestSettings:
    sports: tuple[str, ...]
    series: dict[str, str]  # series ticker -> sport
    espn_base_url: str
    espn_timeout: float
    espn_retries: int
    espn_min_interval: float
    schedule: PollSchedule
    limits: QualityLimits
    breaker_bad_points: int
    breaker_open_seconds: float
    discovery_seconds: float
    # data_sources.yaml espn.enabled: false = no game states are polled (markets still are)
    espn_enabled: bool = True
    espn_paths: dict[str, str] = field(default_factory=lambda: dict(SPORT_PATHS))
    espn_params: dict[str, dict[str, str]] = field(default_factory=lambda: {k: dict(v) for k, v in SPORT_PARAMS.items()})
    # markets.yaml platforms.kalshi read/write_requests_per_second: the REST client's request budget
    kalshi_rate_limits: RateLimits = TIERS["basic"]
    # system.yaml defaults.backoff / timeouts: REST retries and timeout, WebSocket ping interval and pong timeout
    kalshi_retry: RetryPolicy = field(default_factory=RetryPolicy)
    kalshi_timeout: float = 10.0
    # markets.yaml platforms.kalshi.rate_limit_alert_pct: a budget this much used over a minute alerts
    kalshi_usage_alert: float = 0.8
    kalshi_heartbeat: tuple[float, float] = (10.0, 30.0)
    # system.yaml database.statement_timeout_ms: the ingestion sessions' statement timeout (0 = none)
    statement_timeout_ms: int = 60_000
    # probability_models.yaml elo.auto_update: new final results applied to the Elo ratings (precog.forecast.elo_update)
    elo_auto_update: bool = True
    elo_update_interval_seconds: float = 600.0
    # data_sources.yaml espn.backfill_days: scoreboard days a restarted ingestion catches up on (0 = none)
    espn_backfill_days: int = 7
    # probability_models.yaml wp.auto_refit: new WP versions trained on ingested in-game states (None: none)
    wp_refit: RefitSettings | None = None


def _get(config: Any, key: str, default: Any) -> Any:
    try:
        return config.get(key, default)
    except Exception:  # noqa: BLE001 - a key missing from an older config file falls back to the default
        return default


def espn_base_from(config_value: str | None) -> str:
    """Env (PRECOG_ESPN_BASE_URL / ESPN_API_BASE) > config > ESPN; `.../v2/sports` and `.../v2` both work."""
    url = os.environ.get("PRECOG_ESPN_BASE_URL") or os.environ.get("ESPN_API_BASE") or config_value or DEFAULT_BASE_URL
    url = url.rstrip("/")
    return url[: -len("/sports")] if url.endswith("/sports") else url


def load_ingest_settings(config: Any, sports: list[str] | None = None) -> IngestSettings:
    leagues: dict[str, Any] = _get(config, "markets.leagues", {}) or {}
    if sports:
        unknown = [s for s in sports if s not in SPORTS]
        if unknown:
            raise IngestSettingsError(
                f"--sports: unknown sport(s) {', '.join(unknown)}; expected some of {', '.join(SPORTS)}")
        chosen = list(dict.fromkeys(sports))
    else:
        chosen = [s for s, league in leagues.items() if s in SPORTS and league.get("enabled")]
        if not chosen:
            raise IngestSettingsError("no league is enabled in markets.yaml; pass --sports nfl,ncaaf,...")
    series: dict[str, str] = {}
    for sport in chosen:
        ticker = (leagues.get(sport) or {}).get("series_ticker") or f"KX{sport.upper()}GAME"
        series[str(ticker)] = sport
    live = float(_get(config, "data_sources.espn.poll_live_seconds", 15))
    idle = float(_get(config, "data_sources.espn.poll_idle_seconds", 300))
    per_minute = float(_get(config, "data_sources.espn.requests_per_minute", 60))
    paths = {str(k): str(v) for k, v in (_get(config, "data_sources.espn.paths", None) or SPORT_PATHS).items()}
    params = {k: dict(v) for k, v in SPORT_PARAMS.items()}
    params.setdefault("ncaaf", {})["groups"] = str(_get(config, "data_sources.espn.ncaaf_groups", 80))
    return IngestSettings(
        sports=tuple(chosen),
        series=series,
        espn_base_url=espn_base_from(_get(config, "data_sources.espn.base_url", None)),
        espn_timeout=float(_get(config, "data_sources.espn.timeout_seconds", 10)),
        espn_retries=int(_get(config, "data_sources.espn.retries", 3)),
        espn_min_interval=60.0 / per_minute if per_minute > 0 else 1.0,
        schedule=PollSchedule(live_seconds=live, idle_seconds=idle, crunch_seconds=min(5.0, live),
                              halftime_seconds=max(live, 30.0), pregame_seconds=max(live, 30.0)),
        limits=QualityLimits(
            max_game_state_age_seconds=float(_get(config, "trading.data_freshness.max_game_state_age_seconds", 60)),
            max_price_age_seconds=float(_get(config, "trading.data_freshness.max_price_age_seconds", 120)),
        ),
        breaker_bad_points=int(_get(config, "system.circuit_breakers.data_quality.bad_points", 3)),
        breaker_open_seconds=float(_get(config, "system.circuit_breakers.data_quality.open_seconds", 600)),
        discovery_seconds=float(_get(config, "markets.discovery.poll_seconds", 300)),
        espn_enabled=bool(_get(config, "data_sources.espn.enabled", True)),
        espn_paths=paths,
        espn_params=params,
        kalshi_rate_limits=rate_limits_from_config(config),
        kalshi_retry=retry_policy_from_config(config),
        kalshi_timeout=float(config.get("system.defaults.timeouts.api_seconds")),
        kalshi_usage_alert=usage_alert_from_config(config),
        kalshi_heartbeat=websocket_heartbeat(config),
        statement_timeout_ms=int(_get(config, "system.database.statement_timeout_ms", 60_000)),
        elo_auto_update=bool(_get(config, "probability_models.elo.auto_update.enabled", True)),
        elo_update_interval_seconds=float(_get(config, "probability_models.elo.auto_update.interval_minutes", 10))
        * 60.0,
        espn_backfill_days=int(_get(config, "data_sources.espn.backfill_days", 7)),
        wp_refit=RefitSettings.from_config(config),
    )
