"""Configuration files with the mistakes people make are refused naming the file, the key and the value, by
`precog config validate` as by every command that starts (docs/configuration.md, Validation).

Found by a sweep of every key of the packaged defaults, set to a value of the wrong type or out of range:
* keys the schema did not model kept any value: `trading_hours.enabled: "false"` (truthy text: hours enforced),
  `exclude_categories: politics` (a string where a list is read), `data_stale_seconds: '60'`;
* trading hours were not checked at all: an unquoted `23:00` (YAML 1.1 reads the number 1380), "9:00" and a
  reversed window silently moved or emptied the window the risk check compares texts against;
* `min_price: 0.5` with `max_price: 0.4` (no entry could ever pass) and a negative `max_spread_pct` passed;
* a typo in `exit_execution` (`order_type: limt`) passed `config validate` and `precog health` and only
  stopped `precog run` at its start;
* a key written twice in one block kept the last silently; `trading.yaml` next to `trading.yml` merged both,
  the .yml silently winning; a file that is not UTF-8 was "error: UnicodeDecodeError: ...".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


def _refused(tmp_path: Path, file: str, text: str | bytes) -> str:
    path = tmp_path / file
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    return str(err.value)


@pytest.mark.parametrize(("file", "text", "needles"), [
    # keys the schema does not model: the type of the packaged default decides
    ("trading.yaml", "circuit_breakers:\n  data_stale_seconds: '60'\n",
     ["circuit_breakers.data_stale_seconds = '60'", "must be a number, not text"]),
    ("markets.yaml", "discovery:\n  poll_seconds: true\n", ["discovery.poll_seconds = True", "must be a number"]),
    ("markets.yaml", "blacklist:\n  patterns: '.*PROP.*'\n", ["blacklist.patterns = '.*PROP.*'", "must be a list"]),
    ("position_management.yaml", "sizing_adjustments:\n  low_volume_reduction: '0.5'\n",
     ["sizing_adjustments.low_volume_reduction = '0.5'", "must be a number"]),
    # keys that had no check at all before
    ("trading.yaml", "market_filters:\n  trading_hours:\n    enabled: 'false'\n",
     ["market_filters.trading_hours.enabled = 'false'", "valid boolean"]),
    ("trading.yaml", "market_filters:\n  exclude_categories: politics\n",
     ["market_filters.exclude_categories = 'politics'", "valid list"]),
    ("probability_models.yaml", "edge_detection:\n  assume_taker: 'no'\n",
     ["edge_detection.assume_taker = 'no'", "valid boolean"]),
])
def test_a_value_of_the_wrong_type_is_refused_for_every_key(tmp_path: Path, file: str, text: str,
                                                            needles: list[str]) -> None:
    message = _refused(tmp_path, file, text)
    for needle in [str(tmp_path / file), *needles]:
        assert needle in message, message


@pytest.mark.parametrize(("window", "needle"), [
    ("[09:00, 23:00]", "weekday = ['09:00', 1380]"),  # YAML 1.1 reads an unquoted 23:00 as 23 * 60
    ('["9:00", "23:00"]', '["HH:MM", "HH:MM"]'),
    ('["09:00", "25:00"]', '["HH:MM", "HH:MM"]'),
    ('["09:00"]', '["HH:MM", "HH:MM"]'),
    ('["23:00", "09:00"]', "the start 23:00 must be before the end 09:00"),
])
def test_a_trading_hours_window_that_the_risk_check_would_misread_is_refused(tmp_path: Path, window: str,
                                                                             needle: str) -> None:
    message = _refused(tmp_path, "trading.yaml", f"market_filters:\n  trading_hours:\n    weekday: {window}\n")
    assert "market_filters.trading_hours.weekday" in message and needle in message, message


def test_whole_day_windows_are_fine(tmp_path: Path) -> None:
    (tmp_path / "trading.yaml").write_text(
        'market_filters:\n  trading_hours:\n    enabled: true\n    weekday: ["00:00", "24:00"]\n')
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    assert cfg.get("trading.market_filters.trading_hours.weekday") == ["00:00", "24:00"]


@pytest.mark.parametrize(("text", "needle"), [
    ("market_filters:\n  min_price: 0.50\n  max_price: 0.40\n", "max_price (0.40) must be above min_price (0.50)"),
    ("market_filters:\n  max_price: 1.5\n", "market_filters.max_price = 1.5 is invalid"),
    ("market_filters:\n  max_spread_pct: -0.01\n", "market_filters.max_spread_pct = -0.01 is invalid"),
    ("market_filters:\n  min_seconds_to_close: -60\n", "market_filters.min_seconds_to_close = -60 is invalid"),
])
def test_market_filters_out_of_range_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    assert needle in _refused(tmp_path, "trading.yaml", text)


def test_an_exit_execution_typo_is_refused_by_validation_not_only_at_the_engine_start(tmp_path: Path) -> None:
    message = _refused(tmp_path, "position_management.yaml", "exit_execution:\n  HIGH:\n    order_type: limt\n")
    assert "position_management.exit_execution.HIGH.order_type must be one of market, limit, got 'limt'" in message
    assert "'CRITICAL'" not in message  # the block is named, not printed whole


def test_a_key_written_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    message = _refused(tmp_path, "trading.yaml",
                       "account:\n  daily_loss_limit_dollars: 300\nedges:\n  min_edge_global: 0.06\n"
                       "account:\n  max_trades_per_day: 9\n")
    assert "line 5: key 'account' appears twice in the same block (first on line 1)" in message


def test_a_yaml_merge_key_is_not_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "markets.yaml").write_text(
        "leagues:\n  nba: &on\n    enabled: true\n  mlb:\n    <<: *on\n    enabled: false\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    assert cfg.get("markets.leagues.nba.enabled") is True and cfg.get("markets.leagues.mlb.enabled") is False


def test_two_spellings_of_one_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "trading.yaml").write_text("account:\n  daily_loss_limit_dollars: 300\n")
    message = _refused(tmp_path, "trading.yml", "account:\n  daily_loss_limit_dollars: 400\n")
    assert f"{tmp_path / 'trading.yml'}: trading.yaml is in the same directory" in message


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    message = _refused(tmp_path, "trading.yaml", b"account:\n  daily_loss_limit_dollars: 3\xff0\n")
    assert f"{tmp_path / 'trading.yaml'}: not UTF-8 text" in message


def test_a_key_whose_schema_allows_another_type_than_its_default_keeps_it(tmp_path: Path) -> None:
    """circuit_breakers.reset.rapid_loss ships as 1800 (seconds) and may also be `manual`."""
    (tmp_path / "trading.yaml").write_text("circuit_breakers:\n  reset:\n    rapid_loss: manual\n    manual: 3600\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    assert cfg.get("trading.circuit_breakers.reset.rapid_loss") == "manual"
    assert cfg.get("trading.circuit_breakers.reset.manual") == 3600
