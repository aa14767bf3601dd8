"""Spec keys that have no effect in Precog are refused with the reason, never silently accepted.

The traceability audit (s9) found keys that the packaged defaults carried and the loader accepted while no
code read them: markets.yaml's Kalshi URLs, `enabled` and per-minute rate limit, data_sources.yaml's
data_quality block (a second copy of trading.data_freshness), probability_models.yaml's primary model and
ensemble switch, trading.yaml's kelly.min_edge_threshold (a second min-edge key) and the backtest dates and
flat costs. A trader who set `markets.platforms.kalshi.enabled: false` or
`data_sources.data_quality.max_price_age_seconds: 30` got no error and no effect.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(("name", "text", "key", "hint"), [
    ("markets.yaml", "platforms:\n  kalshi:\n    enabled: false\n", "platforms.kalshi.enabled", "precog halt"),
    ("markets.yaml", "platforms:\n  kalshi:\n    urls:\n      prod: https://example.invalid/trade-api/v2\n",
     "platforms.kalshi.urls", "KALSHI_BASE_URL"),
    ("markets.yaml", "platforms:\n  kalshi:\n    rate_limit_per_minute: 50\n", "platforms.kalshi.rate_limit_per_minute",
     "read_requests_per_second"),
    ("data_sources.yaml", "data_quality:\n  max_price_age_seconds: 30\n", "data_quality.max_price_age_seconds",
     "trading.data_freshness.max_price_age_seconds"),
    ("data_sources.yaml", "data_quality:\n  failover_after_seconds: 10\n", "data_quality.failover_after_seconds",
     "only live game source"),
    ("probability_models.yaml", "architecture:\n  primary_model: ensemble\n", "architecture", "names its own model"),
    ("probability_models.yaml", "ensemble:\n  enabled: false\n", "ensemble.enabled", "ensemble model version"),
    ("trading.yaml", "position_sizing:\n  kelly:\n    min_edge_threshold: 0.08\n",
     "position_sizing.kelly.min_edge_threshold", "trading.edges.min_edge_global"),
    ("trade_strategies.yaml", "backtesting:\n  start_date: '2020-01-01'\n", "backtesting.start_date", "--from"),
    ("system.yaml", "defaults:\n  currency: EUR\n", "defaults.currency", "US dollars"),
])
def test_a_user_file_setting_a_retired_key_is_refused_with_the_reason(tmp_path: Path, name: str, text: str,
                                                                        key: str, hint: str) -> None:
    _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    message = str(err.value)
    assert name in message and repr(key) in message
    assert "not used by Precog" in message and hint in message


def test_an_environment_variable_setting_a_retired_key_is_refused() -> None:
    env = {"PRECOG_CFG__DATA_SOURCES__DATA_QUALITY__MAX_PRICE_AGE_SECONDS": "30"}
    with pytest.raises(ConfigError, match="DATA_QUALITY__MAX_PRICE_AGE_SECONDS.*not used by Precog.*"
                                          "trading.data_freshness.max_price_age_seconds"):
        load_config(None, use_env=True, use_overrides=False, environ=env)


def test_reading_a_retired_key_names_the_replacement() -> None:
    cfg = load_config(None, use_env=False, use_overrides=False, environ={})
    with pytest.raises(ConfigError, match="not used by Precog.*max_game_state_age_seconds"):
        cfg.get("data_sources.data_quality.max_game_state_age_seconds")


def test_no_retired_key_is_left_in_the_packaged_defaults() -> None:
    """`precog config show` must not list a key that does nothing."""
    from precog.config.schema import RETIRED_KEYS

    flat = load_config(None, use_env=False, use_overrides=False, environ={}).flat()
    left = sorted(k for k in flat if any(k == r or k.startswith(r + ".") for r in RETIRED_KEYS))
    assert left == []
