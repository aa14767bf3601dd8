"""trading.yaml `execution`, `alerts` and position_management.yaml `monitoring.stale_after_seconds`: the keys that
work are checked at load time, the order-retry keys (which could not be honoured without risking a decision
sent twice) are refused with the reason and what retries instead.

The audit found all of them accepted and read by nothing (`retry_on_failure: false` did nothing, nor did a
loss threshold of $50).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


def _load(tmp_path: Path, name: str, text: str) -> object:
    (tmp_path / name).write_text(text)
    return load_config(tmp_path, use_env=False, use_overrides=False, environ={})


@pytest.mark.parametrize("key", ["retry_on_failure: false", "max_retries: 5", "retry_backoff_seconds: 2"])
def test_the_order_retry_keys_are_refused_with_the_reason(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "trading.yaml", f"execution:\n  {key}\n")
    message = str(err.value)
    assert "not used by Precog" in message and "no order is ever sent twice" in message
    assert "system.defaults.backoff" in message and "client_order_id" in message


def test_the_retry_keys_are_not_in_the_packaged_defaults() -> None:
    cfg = load_config(None, use_env=False, use_overrides=False, environ={})
    assert set(cfg.get("trading.execution")) == {"default_order_type", "limit_order_timeout_seconds",
                                                 "max_slippage_pct"}


def test_default_order_type_is_limit_or_market(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="execution.default_order_type = 'stop' is invalid"):
        _load(tmp_path, "trading.yaml", "execution:\n  default_order_type: stop\n")
    cfg = _load(tmp_path, "trading.yaml", "execution:\n  default_order_type: market\n")
    assert cfg.get("trading.execution.default_order_type") == "market"  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["alerts:\n  on_loss_threshold_dollars: 0\n",
                                  "alerts:\n  on_gain_threshold_dollars: -5\n",
                                  "alerts:\n  on_loss_threshold_dollars: '100'\n"])
def test_alert_thresholds_are_positive_dollar_amounts(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="alerts.on_(loss|gain)_threshold_dollars"):
        _load(tmp_path, "trading.yaml", text)


@pytest.mark.parametrize(("value", "hint"), [(5, "greater than or equal to 10"),
                                             (10, "longer than price_cache_ttl_seconds")])
def test_stale_after_seconds_must_exceed_the_price_cache_ttl(tmp_path: Path, value: int, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        _load(tmp_path, "position_management.yaml", f"monitoring:\n  stale_after_seconds: {value}\n")
    cfg = _load(tmp_path, "position_management.yaml", "monitoring:\n  stale_after_seconds: 90\n")
    assert cfg.get("position_management.monitoring.stale_after_seconds") == 90  # type: ignore[attr-defined]
