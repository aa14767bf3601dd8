"""Time-zone keys name a zone this machine knows; a misspelt one is refused when the configuration loads (naming
file, key and value), not when the dashboard, the trading-hours check or a backtest first reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


@pytest.mark.parametrize(("name", "text", "key"), [
    ("system.yaml", "defaults:\n  timezone: America/New_Yrok\n", "defaults.timezone"),
    ("system.yaml", "defaults:\n  timezone: 5\n", "defaults.timezone"),
    ("trading.yaml", "market_filters:\n  trading_hours:\n    timezone: Mars/Olympus\n",
     "market_filters.trading_hours.timezone"),
])
def test_unknown_time_zone_is_refused(tmp_path: Path, name: str, text: str, key: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    assert str(tmp_path / name) in str(err.value) and key in str(err.value)


def test_known_time_zone_is_kept(tmp_path: Path) -> None:
    (tmp_path / "system.yaml").write_text("defaults:\n  timezone: Europe/London\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    assert cfg.get("system.defaults.timezone") == "Europe/London"
