"""system.yaml `notifications.rate_limits`: one typed entry per external channel, merged key by key over the
packaged defaults; an unknown channel or an out-of-range limit is a configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.alerts.settings import AlertSettings, RateLimit
from precog.config.errors import ConfigError
from precog.config.loader import load_config


def _user_system_yaml(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "system.yaml").write_text(text)
    return folder


def test_misspelt_rate_limit_channel_is_refused_naming_file_key_and_channels(tmp_path) -> None:
    folder = _user_system_yaml(tmp_path, "notifications:\n  rate_limits:\n    SMS:\n      per_hour: 1\n"
                                         "      per_day: 2\n      cooldown_seconds: 3600\n")
    with pytest.raises(ConfigError) as err:
        load_config(folder, use_env=False, use_overrides=False)
    text = str(err.value)
    assert str(folder / "system.yaml") in text and "notifications.rate_limits.SMS" in text
    assert "apprise, email, slack, sms, webhook" in text


def test_changing_one_channel_limit_keeps_the_other_defaults(tmp_path) -> None:
    """Raising only Slack's limits keeps SMS at its defaults (5/hour, 20/day, 300 s cooldown, spec 8.2)."""
    folder = _user_system_yaml(tmp_path, "notifications:\n  rate_limits:\n    slack:\n      per_hour: 100\n")
    settings = AlertSettings.from_config(load_config(folder, use_env=False, use_overrides=False))
    assert settings.rate_limits["slack"] == RateLimit(100, 500, 0)
    assert settings.rate_limits["sms"] == RateLimit(5, 20, 300)
    assert set(settings.rate_limits) == {"sms", "email", "slack", "webhook", "apprise"}


def test_out_of_range_limit_is_refused_with_the_allowed_range(tmp_path) -> None:
    folder = _user_system_yaml(tmp_path, "notifications:\n  rate_limits:\n    sms:\n      cooldown_seconds: 90000\n")
    with pytest.raises(ConfigError, match=r"rate_limits\.sms\.cooldown_seconds = 90000 .*<= 86400"):
        load_config(folder, use_env=False, use_overrides=False)


def test_unknown_limit_field_is_refused(tmp_path) -> None:
    folder = _user_system_yaml(tmp_path, "notifications:\n  rate_limits:\n    sms:\n      per_minute: 1\n")
    with pytest.raises(ConfigError, match="per_minute"):
        load_config(folder, use_env=False, use_overrides=False)


def test_environment_override_of_one_channel_limit(tmp_path) -> None:
    config = load_config(_user_system_yaml(tmp_path, "{}\n"), use_overrides=False,
                         environ={"PRECOG_CFG__SYSTEM__NOTIFICATIONS__RATE_LIMITS__SMS__PER_HOUR": "2"})
    settings = AlertSettings.from_config(config)
    assert settings.rate_limits["sms"] == RateLimit(2, 20, 300)
    assert settings.rate_limits["email"] == RateLimit(30, 200, 0)
