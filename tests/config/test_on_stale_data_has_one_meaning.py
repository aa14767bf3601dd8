"""trading.data_freshness.on_stale_data: stale data always stops entries; another value is refused.

The audit found the key read by nothing: `on_stale_data: continue` was accepted and entries were still
blocked on stale data (the opposite of what the trader wrote).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


def test_only_stop_trading_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "trading.yaml").write_text("data_freshness:\n  on_stale_data: continue\n")
    with pytest.raises(ConfigError, match="data_freshness.on_stale_data = 'continue' is invalid"):
        load_config(tmp_path, use_env=False, use_overrides=False, environ={})
    (tmp_path / "trading.yaml").write_text("data_freshness:\n  on_stale_data: stop_trading\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False, environ={})
    assert cfg.get("trading.data_freshness.on_stale_data") == "stop_trading"
