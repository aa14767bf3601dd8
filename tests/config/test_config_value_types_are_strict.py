"""A configuration value of the wrong type is refused with file, key and value, never coerced or kept raw.

docs/configuration.md: errors name "the file, the key, the value and the allowed range"; numbers are exact
Decimals. Validation used to run in pydantic's lax mode on a copy and keep the raw YAML value: a quoted
`daily_loss_limit_dollars: "300"` stayed a string, `max_trades_per_hour: true` passed as 1, and
`live_trading_confirmed: "false"` passed as a bool while the stored (truthy) string confirmed live trading.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


@pytest.mark.parametrize(("text", "key"), [
    ("account:\n  daily_loss_limit_dollars: '300'\n", "account.daily_loss_limit_dollars = '300'"),
    ("account:\n  daily_loss_limit_dollars: 1e3\n", "account.daily_loss_limit_dollars = '1e3'"),
    ("account:\n  max_trades_per_hour: true\n", "account.max_trades_per_hour = True"),
    ("account:\n  max_trades_per_day: 5.0\n", "account.max_trades_per_day = 5.0"),
    ("account:\n  max_trades_per_day: '7'\n", "account.max_trades_per_day = '7'"),
    ("live_trading_confirmed: 'false'\n", "live_trading_confirmed = 'false'"),
    ("live_trading_confirmed: 1\n", "live_trading_confirmed = 1"),
    ("position_sizing:\n  sport_fractions:\n    nfl: '0.3'\n", "position_sizing.sport_fractions.nfl = '0.3'"),
    ("circuit_breakers:\n  reset:\n    rapid_loss: true\n", "circuit_breakers.reset.rapid_loss"),
])
def test_wrong_type_is_refused_naming_file_and_key(tmp_path: Path, text: str, key: str):
    (tmp_path / "trading.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    assert str(tmp_path / "trading.yaml") in str(err.value) and key in str(err.value)


def test_whole_numbers_are_still_fine_for_decimal_keys(tmp_path: Path):
    (tmp_path / "trading.yaml").write_text("account:\n  daily_loss_limit_dollars: 300\n  max_trades_per_day: 20\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    assert cfg.get("trading.account.daily_loss_limit_dollars") == Decimal("300")
    assert cfg.get("trading.account.max_trades_per_day") == 20


def test_a_range_error_shows_the_bound_as_the_file_writes_it(tmp_path: Path) -> None:
    """pydantic words a Decimal bound as `Decimal('0.50')`; the message shows 0.50 (as docs/configuration.md does)."""
    (tmp_path / "trading.yaml").write_text("position_sizing:\n  kelly:\n    default_fraction: 0.9\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    message = str(err.value)
    assert "less than or equal to 0.50 (allowed: >= 0.05 and <= 0.50)" in message and "Decimal(" not in message
