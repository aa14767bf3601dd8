"""trading.manual_approval (ADR-009): which loops wait for a person, and the keys' allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading.approvals import ApprovalPolicy, approval_key


def _load(tmp_path: Path, body: str) -> object:
    (tmp_path / "trading.yaml").write_text(body, encoding="utf-8")
    return load_config(tmp_path, use_env=False)


def test_the_default_is_prod_with_a_two_minute_timeout() -> None:
    policy = ApprovalPolicy.from_config(load_config(use_env=False))
    assert policy == ApprovalPolicy("prod", 120)


@pytest.mark.parametrize(("mode", "trading_mode", "platform", "prod", "kind", "waits"), [
    ("prod", "live", "kalshi", True, "run", True),
    ("prod", "live", "kalshi", False, "run", False),  # live on Kalshi's demo
    ("prod", "paper", "kalshi", True, "run", False),  # paper never, unless `always`
    ("live", "live", "kalshi", False, "run", True),
    ("live", "live", "local", False, "run", False),  # the local exchange never, unless `always`
    ("live", "paper", "kalshi", False, "run", False),
    ("always", "paper", "local", False, "demo", True),
    ("always", "backtest", "local", False, "backtest", False),  # a backtest replays the past: nobody to ask
    ("off", "live", "kalshi", True, "run", False),
])
def test_which_loops_wait(mode: str, trading_mode: str, platform: str, prod: bool, kind: str, waits: bool) -> None:
    policy = ApprovalPolicy(mode, 120)
    assert policy.required(trading_mode=trading_mode, platform_id=platform, prod=prod, kind=kind) is waits


def test_an_unknown_mode_is_refused_naming_the_key_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "manual_approval:\n  mode: sometimes\n")
    text = str(err.value)
    assert "manual_approval.mode" in text and "'sometimes'" in text
    assert all(word in text for word in ("'off'", "'live'", "'prod'", "'always'")), text


@pytest.mark.parametrize("value", ["5", "3601", "\"120\"", "12.5"])
def test_a_timeout_outside_10_to_3600_whole_seconds_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"manual_approval\.timeout_seconds"):
        _load(tmp_path, f"manual_approval:\n  timeout_seconds: {value}\n")


@pytest.mark.parametrize("word", ["off", "\"off\"", "false"])
def test_off_unquoted_is_off_not_a_refused_boolean(tmp_path: Path, word: str) -> None:
    cfg = _load(tmp_path, f"manual_approval:\n  mode: {word}\n")
    policy = ApprovalPolicy.from_config(cfg)
    assert policy.mode == "off"
    assert not policy.required(trading_mode="live", platform_id="kalshi", prod=True, kind="run")


def test_a_partial_block_keeps_the_other_default(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "manual_approval:\n  mode: live\n")
    assert ApprovalPolicy.from_config(cfg) == ApprovalPolicy("live", 120)


def test_the_same_decision_on_a_later_cycle_has_the_same_key() -> None:
    early = approval_key("live", "kalshi:acct", "method=3|market=M|side=yes|buy|t=117")
    later = approval_key("live", "kalshi:acct", "method=3|market=M|side=yes|buy|t=118")
    assert early == later == "live|kalshi:acct|method=3|market=M|side=yes|buy"
    assert approval_key("live", "kalshi:acct", "method=3|market=M|side=no|buy|t=118") != early
    assert approval_key("paper", "kalshi:acct", "method=3|market=M|side=yes|buy|t=118") != early
