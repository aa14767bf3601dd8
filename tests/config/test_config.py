"""Configuration: exact decimals, precedence, and error messages that name file, key, value and range."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.config.overrides import parse_duration, set_override


def test_packaged_defaults_are_valid_and_money_is_decimal():
    cfg = load_config(use_env=False, use_overrides=False)
    assert cfg.get("trading.account.daily_loss_limit_dollars") == Decimal("500.00")
    assert isinstance(cfg.get("trading.position_sizing.kelly.default_fraction"), Decimal)
    assert cfg.get("position_management.trailing_stop.activation_threshold") == Decimal("0.10")
    assert cfg.get("system.alert_routing.critical") == ["console", "file", "email", "sms", "database"]
    assert cfg.get("trading.circuit_breakers.consecutive_losses") == 5


def test_user_file_merges_only_changed_keys(tmp_path: Path):
    (tmp_path / "trading.yaml").write_text("account:\n  daily_loss_limit_dollars: 250.50\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    assert cfg.get("trading.account.daily_loss_limit_dollars") == Decimal("250.50")
    assert cfg.get("trading.account.weekly_loss_limit_dollars") == Decimal("1500.00")  # untouched default
    assert cfg.source_of("trading.account.daily_loss_limit_dollars") == str(tmp_path / "trading.yaml")


def test_out_of_range_value_names_file_key_value_and_range(tmp_path: Path):
    (tmp_path / "trading.yaml").write_text("position_sizing:\n  kelly:\n    default_fraction: 0.9\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    msg = str(err.value)
    assert str(tmp_path / "trading.yaml") in msg
    assert "position_sizing.kelly.default_fraction = 0.9" in msg
    assert ">= 0.05" in msg and "<= 0.50" in msg


def test_unknown_key_is_reported_as_a_typo(tmp_path: Path):
    (tmp_path / "trading.yaml").write_text("account:\n  daily_loss_limt_dollars: 100\n")
    with pytest.raises(ConfigError, match="unknown key 'account.daily_loss_limt_dollars'"):
        load_config(tmp_path, use_env=False, use_overrides=False)


def test_invalid_yaml_names_file_and_line(tmp_path: Path):
    (tmp_path / "system.yaml").write_text("environment:\n  active: [demo\n")
    with pytest.raises(ConfigError, match=r"system.yaml: line \d+"):
        load_config(tmp_path, use_env=False, use_overrides=False)


def test_unknown_file_and_wrong_enum(tmp_path: Path):
    (tmp_path / "tradng.yaml").write_text("a: 1\n")
    with pytest.raises(ConfigError, match="unknown configuration file"):
        load_config(tmp_path, use_env=False, use_overrides=False)
    (tmp_path / "tradng.yaml").unlink()
    (tmp_path / "system.yaml").write_text("environment:\n  active: staging\n")
    with pytest.raises(ConfigError, match="environment.active = 'staging'"):
        load_config(tmp_path, use_env=False, use_overrides=False)


def test_safety_constants_cannot_be_loosened(tmp_path: Path):
    (tmp_path / "trading.yaml").write_text("circuit_breakers:\n  consecutive_losses: 9\n")
    with pytest.raises(ConfigError, match="consecutive_losses"):
        load_config(tmp_path, use_env=False, use_overrides=False)


def test_precedence_override_beats_env_beats_user_file_beats_default(tmp_path: Path, db_url, conn):
    key = "trading.edges.min_edge_global"
    assert load_config(use_env=False, db_url=db_url).get(key) == Decimal("0.05")
    (tmp_path / "trading.yaml").write_text("edges:\n  min_edge_global: 0.06\n")
    env = {"PRECOG_CFG__TRADING__EDGES__MIN_EDGE_GLOBAL": "0.07"}
    assert load_config(tmp_path, environ={}, db_url=db_url).get(key) == Decimal("0.06")
    assert load_config(tmp_path, environ=env, db_url=db_url).get(key) == Decimal("0.07")
    set_override(conn, key, "0.08", reason="test", applied_by="pytest", db_url=db_url)
    cfg = load_config(tmp_path, environ=env, db_url=db_url)
    assert cfg.get(key) == Decimal("0.08") and cfg.source_of(key).startswith("database override")
    # an expired override no longer applies
    conn.execute("UPDATE config_overrides SET applied_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'")
    conn.commit()
    assert load_config(tmp_path, environ=env, db_url=db_url).get(key) == Decimal("0.07")


def test_env_alias_and_bad_env_value():
    assert load_config(environ={"TRADING_ENV": "prod"}, use_overrides=False).get("system.environment.active") == "prod"
    with pytest.raises(ConfigError, match="PRECOG_CFG__TRADING__ACCOUNT__MAX_TRADES_PER_DAY|max_trades_per_day"):
        load_config(environ={"PRECOG_CFG__TRADING__ACCOUNT__MAX_TRADES_PER_DAY": "lots"}, use_overrides=False)
    with pytest.raises(ConfigError, match="unknown configuration key"):
        load_config(environ={"PRECOG_CFG__TRADING__NOPE": "1"}, use_overrides=False)


def test_override_of_wrong_type_or_range_is_refused(db_url, conn):
    with pytest.raises(ConfigError, match="max_trades_per_day.*valid integer"):
        set_override(conn, "trading.account.max_trades_per_day", "1.5", reason="x", applied_by="t", db_url=db_url)
    with pytest.raises(ConfigError, match="<= 2000"):
        set_override(conn, "trading.account.daily_loss_limit_dollars", "5000", reason="x", applied_by="t", db_url=db_url)
    with pytest.raises(ConfigError, match="unknown configuration key"):
        set_override(conn, "trading.nope", "1", reason="x", applied_by="t", db_url=db_url)
    assert conn.execute("SELECT count(*) FROM config_overrides").fetchone()[0] == 0


def test_parse_duration():
    assert parse_duration("2h").total_seconds() == 7200
    assert parse_duration("90s").total_seconds() == 90
    with pytest.raises(ConfigError, match="invalid duration"):
        parse_duration("two hours")
