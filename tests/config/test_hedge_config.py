"""trade_strategies.yaml `hedge_strategy` (spec 5.11) is accepted, validated like the rest of the file (an error
names the file, the key and the allowed range), and reaches the engine's exit rules; a method's `hedge` override
is checked against the same ranges when the method is created."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading import exits as ex
from precog.trading.methods import MethodError, apply_overrides, validate_method

D = Decimal


def _user(tmp_path: Path, text: str) -> Path:
    d = tmp_path / "cfg"
    d.mkdir(parents=True)
    (d / "trade_strategies.yaml").write_text(text, encoding="utf-8")
    return d


def _rules(cfg_dir: Path | None) -> ex.ExitRules:
    cfg = load_config(cfg_dir, use_env=False)
    return ex.ExitRules.from_config(cfg.section("position_management"),
                                    cfg.section("trade_strategies").get("hedge_strategy"))


def test_the_spec_defaults_are_on(tmp_path: Path) -> None:
    assert _rules(_user(tmp_path, "selection_logic:\n  method: priority\n")).hedge == ex.HedgeRules(
        enabled=True, unrealized_gain_pct=D("0.40"), edge_flip=D("0.10"), minutes_left=D("5"),
        min_gain_dollars=D("50.00"), lock_fraction=D("0.70"))


def test_a_user_file_changes_one_key_and_keeps_the_others(tmp_path: Path) -> None:
    h = _rules(_user(tmp_path, "hedge_strategy:\n  enabled: false\n  sizing:\n    lock_fraction: 0.50\n")).hedge
    assert (h.enabled, h.lock_fraction, h.unrealized_gain_pct) == (False, D("0.50"), D("0.40"))


@pytest.mark.parametrize(("yaml", "key", "allowed"), [
    ("  sizing:\n    lock_fraction: 1.5\n", "hedge_strategy.sizing.lock_fraction = 1.5", "(allowed: > 0 and < 1)"),
    ("  sizing:\n    lock_fraction: 0\n", "hedge_strategy.sizing.lock_fraction = 0", "(allowed: > 0 and < 1)"),
    ("  triggers:\n    unrealized_gain_pct: 12\n", "hedge_strategy.triggers.unrealized_gain_pct = 12",
     "(allowed: > 0 and <= 10)"),
    ("  triggers:\n    edge_flip: 0\n", "hedge_strategy.triggers.edge_flip = 0", "(allowed: > 0 and <= 1)"),
    ("  triggers:\n    minutes_left: 2000\n", "hedge_strategy.triggers.minutes_left = 2000",
     "(allowed: >= 0 and <= 1440)"),
    ("  triggers:\n    min_gain_dollars: -1\n", "hedge_strategy.triggers.min_gain_dollars = -1",
     "(allowed: >= 0 and <= 1000000)"),
])
def test_a_value_out_of_range_names_file_key_and_range(tmp_path: Path, yaml: str, key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_user(tmp_path, "hedge_strategy:\n" + yaml), use_env=False)
    text = str(err.value)
    assert "trade_strategies.yaml" in text and key in text and allowed in text, text


def test_an_unknown_key_or_method_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_user(tmp_path, "hedge_strategy:\n  triggers:\n    gain_pct: 0.3\n"), use_env=False)
    assert "trade_strategies.yaml" in str(err.value) and "'hedge_strategy.triggers.gain_pct'" in str(err.value)
    assert "unrealized_gain_pct" in str(err.value)  # the keys known there
    with pytest.raises(ConfigError) as err:
        load_config(_user(tmp_path / "m", "hedge_strategy:\n  sizing:\n    method: full_hedge\n"), use_env=False)
    assert "hedge_strategy.sizing.method = 'full_hedge'" in str(err.value) and "partial_lock" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(_user(tmp_path / "b", "hedge_strategy:\n  enabled: 'no'\n"), use_env=False)
    assert "hedge_strategy.enabled" in str(err.value)


def _method(hedge: dict[str, object]) -> dict[str, dict[str, object]]:
    return {"position_mgmt": {"trailing_stop": {"enabled": True}, "stop_loss": {"medium_confidence": "-0.10"},
                              "profit_targets": {"medium_confidence": "0.20"}, "hedge": hedge},
            "risk": {"kelly_fraction": "0.25", "max_position_size_dollars": "500"}, "sport": {"nfl": {"enabled": True}}}


def test_a_methods_hedge_is_validated_and_can_be_set() -> None:
    validate_method("m", "v1.0", _method({"enabled": False}))
    with pytest.raises(MethodError, match=r"position_mgmt\.hedge\.sizing\.lock_fraction = 1\.5 .*\(0, 1\)"):
        validate_method("m", "v1.0", _method({"sizing": {"lock_fraction": "1.5"}}))
    with pytest.raises(MethodError, match=r"position_mgmt\.hedge\.trigger: unknown key"):
        validate_method("m", "v1.0", _method({"trigger": {"edge_flip": "0.1"}}))
    # a template without `hedge` takes it from --set
    configs = apply_overrides({"position_mgmt": {"stop_loss": {}}}, ["position_mgmt.hedge.enabled=false",
                                                                    "position_mgmt.hedge.triggers.edge_flip=0.20"])
    assert configs["position_mgmt"]["hedge"] == {"enabled": False, "triggers": {"edge_flip": "0.20"}}
    with pytest.raises(MethodError):
        apply_overrides({"position_mgmt": {}}, ["position_mgmt.hedge.triggers.flip=0.20"])
