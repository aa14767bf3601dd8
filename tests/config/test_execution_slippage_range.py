"""trading.yaml `execution.max_slippage_pct` (the most a market-style entry pays above the ask) is held to the same
range as a method's `execution_config.max_slippage_percent` (0-0.10): a method can only tighten it, and a global
limit above that range is refused at load time with the file, key and range."""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


def _load(tmp_path: Path, text: str) -> object:
    (tmp_path / "trading.yaml").write_text(text)
    return load_config(tmp_path, use_env=False, use_overrides=False, environ={})


@pytest.mark.parametrize(("value", "hint"), [("0.11", "less than or equal to 0.10"),
                                             ("-0.01", "greater than or equal to 0")])
def test_a_global_slippage_outside_the_range_is_refused(tmp_path: Path, value: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=rf"trading.yaml: execution.max_slippage_pct = {value} is invalid") as err:
        _load(tmp_path, f"execution:\n  max_slippage_pct: {value}\n")
    assert hint in str(err.value)


def test_the_range_ends_are_accepted(tmp_path: Path) -> None:
    for value in ("0", "0.10"):
        cfg = _load(tmp_path, f"execution:\n  max_slippage_pct: {value}\n")
        assert str(cfg.get("trading.execution.max_slippage_pct")) in (value, "0.1")  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["4", "3601", "0"])
def test_a_global_entry_timeout_outside_5_to_3600_s_is_refused(tmp_path: Path, value: str) -> None:
    """The same range as a method's execution_config order_timeout_seconds, which replaces it for the method."""
    with pytest.raises(ConfigError, match=rf"trading.yaml: execution.limit_order_timeout_seconds = {value} is invalid"):
        _load(tmp_path, f"execution:\n  limit_order_timeout_seconds: {value}\n")
    cfg = _load(tmp_path, "execution:\n  limit_order_timeout_seconds: 3600\n")
    assert cfg.get("trading.execution.limit_order_timeout_seconds") == 3600  # type: ignore[attr-defined]
