"""Method configuration (spec 8.1) held to the spec's safe ranges (spec 4.1) and refused where nothing would act on
it, through PostgreSQL and the CLI.

The audit found `validate_method` allowing a stop loss of -0.50, a profit target of 1.00 and a $1 maximum position
(spec 4.1: stop loss -0.05...-0.40, profit target 0.10-0.50, max position $10-$5,000), and accepting
execution_config `partial_fills`, `algorithm: dynamic_depth_walker` and sport `time_restrictions`, which nothing
reads (`order_timeout_seconds` is now the method's own entry timeout, range-checked). Every refusal names the
method, the key, the value and the allowed range (or why the key is not supported).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from trading_dbkit import World, seed_world

from precog.trading.methods import (
    MethodError,
    create_method,
    export_method,
    import_method,
    templates,
    validate_method,
)


@pytest.fixture
def w(db_url: str) -> Any:
    world = seed_world(db_url)
    yield world
    world.conn.close()


def _create(world: World, name: str, *overrides: str, template: str = "moderate") -> Any:
    from precog.config.loader import load_config
    from precog.trading.strategies import load_strategy_definitions, sync_strategies

    sync_strategies(world.conn, load_strategy_definitions(load_config(use_env=False)))
    return create_method(world.conn, template=template, name=name, version="v1.0", strategy="pre_game_entry@v1.0",
                         model="fixed_test@v1.0", overrides=list(overrides), created_by="test")


def _configs(**changes: Any) -> dict[str, dict[str, Any]]:
    """A valid bundle (the moderate template's shape); `changes` maps "section.key.sub" to a value."""
    configs: dict[str, dict[str, Any]] = {
        "position_mgmt": {
            "trailing_stop": {"enabled": True, "activation_threshold": "0.12", "initial_distance": "0.05",
                              "tightening_rate": "0.01", "floor_distance": "0.02"},
            "profit_targets": {"high_confidence": "0.25", "medium_confidence": "0.20", "low_confidence": "0.15"},
            "stop_loss": {"high_confidence": "-0.15", "medium_confidence": "-0.12", "low_confidence": "-0.08"}},
        "risk": {"kelly_fraction": "0.20", "max_position_size_dollars": "750", "daily_loss_limit_dollars": "500",
                 "circuit_breakers": {"consecutive_losses": 5, "rapid_loss_dollars": "200", "rapid_loss_minutes": 15}},
        "execution": {"algorithm": "simple_limit", "default_order_type": "limit", "max_slippage_percent": "0.020",
                      "partial_fills": True},
        "sport": {"nfl": {"enabled": True, "kelly_fraction_override": "0.20", "min_volume": 150, "max_spread": "0.08"}},
    }
    for dotted, value in changes.items():
        *path, leaf = dotted.split(".")
        node = configs
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    return configs


# (key, value just inside the range, value just outside, the allowed range as the message prints it)
BOUNDS = [
    ("risk.max_position_size_dollars", "10", "9.99", "[10, 5000]"),
    ("risk.max_position_size_dollars", "5000", "5000.01", "[10, 5000]"),
    ("position_mgmt.stop_loss.high_confidence", "-0.05", "-0.04", "[-0.40, -0.05]"),
    ("position_mgmt.stop_loss.high_confidence", "-0.40", "-0.41", "[-0.40, -0.05]"),
    ("position_mgmt.stop_loss.low_confidence", "-0.40", "-0.50", "[-0.40, -0.05]"),
    ("position_mgmt.profit_targets.high_confidence", "0.10", "0.09", "[0.10, 0.50]"),
    ("position_mgmt.profit_targets.high_confidence", "0.50", "0.51", "[0.10, 0.50]"),
    ("position_mgmt.profit_targets.medium_confidence", "0.05", "0.04", "[0.05, 0.50]"),
    ("position_mgmt.profit_targets.low_confidence", "0.50", "1.00", "[0.05, 0.50]"),
    ("position_mgmt.trailing_stop.activation_threshold", "0.20", "0.21", "[0.05, 0.20]"),
    ("risk.kelly_fraction", "0.50", "0.51", "[0.05, 0.50]"),
    ("risk.daily_loss_limit_dollars", "2000", "2000.01", "[0.01, 2000]"),
    ("risk.daily_loss_limit_dollars", "0.01", "0", "[0.01, 2000]"),
    ("risk.circuit_breakers.rapid_loss_dollars", "200", "200.01", "[0.01, 200]"),
    ("sport.nfl.kelly_fraction_override", "0.05", "0.04", "[0.05, 0.50]"),
]


@pytest.mark.parametrize(("key", "inside", "outside", "allowed"), BOUNDS)
def test_a_setting_outside_the_spec_range_is_refused_naming_method_key_value_and_range(
        key: str, inside: str, outside: str, allowed: str) -> None:
    validate_method("nfl_x", "v1.0", _configs(**{key: inside}))
    with pytest.raises(MethodError) as err:
        validate_method("nfl_x", "v1.0", _configs(**{key: outside}))
    message = str(err.value)
    assert message.startswith("method nfl_x@v1.0 is invalid: ")
    assert f"{key} = {outside} is outside the allowed range {allowed}" in message


@pytest.mark.parametrize(("count", "ok"), [(1, True), (5, True), (6, False), (0, False), ("5", False)])
def test_a_methods_consecutive_loss_breaker_can_only_be_tighter_than_five(count: Any, ok: bool) -> None:
    configs = _configs(**{"risk.circuit_breakers.consecutive_losses": count})
    if ok:
        validate_method("nfl_x", "v1.0", configs)
        return
    with pytest.raises(MethodError, match=re.escape(
            f"risk.circuit_breakers.consecutive_losses = {count!r} must be a whole number in the allowed range [1, 5]")):
        validate_method("nfl_x", "v1.0", configs)


def test_every_problem_is_listed_at_once() -> None:
    configs = _configs(**{"risk.max_position_size_dollars": "1", "position_mgmt.stop_loss.high_confidence": "-0.50",
                          "position_mgmt.profit_targets.high_confidence": "1.00"})
    with pytest.raises(MethodError) as err:
        validate_method("nfl_x", "v1.0", configs)
    assert str(err.value).count("is outside the allowed range") == 3


def test_create_with_an_override_outside_the_range_stores_nothing(w: World) -> None:
    with pytest.raises(MethodError, match=re.escape(
            "method nfl_small@v1.0 is invalid: risk.max_position_size_dollars = 5 is outside the allowed range "
            "[10, 5000]")):
        _create(w, "nfl_small", "risk.max_position_size_dollars=5")
    with pytest.raises(MethodError, match=re.escape(
            "position_mgmt.stop_loss.high_confidence = -0.45 is outside the allowed range [-0.40, -0.05]")):
        _create(w, "nfl_deep", "position_mgmt.stop_loss.high_confidence=-0.45")
    assert w.conn.execute("SELECT count(*) FROM methods").fetchone() == (0,)


def test_cli_create_outside_the_range_names_method_key_value_and_range(w: World, precog_cli: Any) -> None:
    done = precog_cli("methods", "create", "--template", "moderate", "--name", "nfl_cli", "--version", "v1.0",
                      "--strategy", "pre_game_entry@v1.0", "--model", "fixed_test@v1.0",
                      "--set", "position_mgmt.profit_targets.high_confidence=0.60")
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out, out
    assert "nfl_cli@v1.0" in out
    assert "position_mgmt.profit_targets.high_confidence = 0.60 is outside the allowed range [0.10, 0.50]" in out


# ---------------------------------------------------------------- shipped templates
def test_every_shipped_template_validates_and_carries_no_unsupported_key(w: World) -> None:
    shipped = templates(w.conn)
    assert [t["template_name"] for t in shipped] == ["conservative", "moderate", "aggressive"]
    for t in shipped:
        configs = {"position_mgmt": t["position_mgmt_config"], "risk": t["risk_config"],
                   "execution": t["execution_config"], "sport": t["sport_config"]}
        validate_method(f"{t['template_name']}_x", "v1.0", configs)
        assert "order_timeout_seconds" not in t["execution_config"]
        m = _create(w, f"{t['template_name']}_nfl", template=t["template_name"])
        assert m.status == "draft"
    # the conservative template's tighter slippage limit reaches the method's runtime
    conservative = _create(w, "cons_rt", "risk.kelly_fraction=0.14", template="conservative")
    assert str(conservative.runtime().max_slippage_pct) == "0.015"


# ---------------------------------------------------------------- keys nothing acts on
@pytest.mark.parametrize(("override", "said"), [
    ("execution.algorithm=dynamic_depth_walker", "execution.algorithm 'dynamic_depth_walker' is not supported"),
    ("execution.partial_fills=false", "execution.partial_fills = false is not supported"),
    ("sport.nfl.time_restrictions.pregame_hours=2", "--set sport.nfl.time_restrictions.pregame_hours: not supported"),
    ("sport.nba.time_restrictions.postgame_minutes=30", "not supported: when a method may enter is its strategy's"),
])
def test_a_setting_nothing_would_act_on_is_refused_with_the_reason(w: World, override: str, said: str) -> None:
    with pytest.raises(MethodError, match=re.escape(said)):
        _create(w, "nfl_unsupported", override)
    assert w.conn.execute("SELECT count(*) FROM methods").fetchone() == (0,)


def test_the_supported_execution_values_are_accepted(w: World) -> None:
    m = _create(w, "nfl_exec", "execution.algorithm=simple_limit", "execution.partial_fills=true",
                "execution.max_slippage_percent=0.01", "execution.default_order_type=market",
                "execution.order_timeout_seconds=60")
    assert m.execution == {"algorithm": "simple_limit", "default_order_type": "market",
                           "max_slippage_percent": "0.01", "partial_fills": True, "order_timeout_seconds": 60}


@pytest.mark.parametrize("value", ["4", "3601", "30.5"])
def test_a_method_order_timeout_outside_its_range_is_refused(w: World, value: str) -> None:
    with pytest.raises(MethodError, match=re.escape("execution.order_timeout_seconds = ") + ".*"
                       + re.escape("must be a whole number in the allowed range [5, 3600]")):
        _create(w, "nfl_timeout", f"execution.order_timeout_seconds={value}")


@pytest.mark.parametrize(("section", "key", "value", "said"), [
    ("execution_config", "order_timeout_seconds", 1, "execution.order_timeout_seconds = 1 must be a whole number"),
    ("execution_config", "advanced_params", {"depth": 3}, "execution.advanced_params = {'depth': 3}: not supported"),
    ("execution_config", "max_slipage_percent", "0.01", "execution.max_slipage_percent is not a method setting"),
    ("risk_config", "max_position_dolars", "100", "risk: unknown key(s) max_position_dolars"),
])
def test_an_imported_method_with_such_a_key_is_refused_naming_the_file(w: World, tmp_path: Path, section: str,
                                                                      key: str, value: Any, said: str) -> None:
    m = _create(w, "nfl_src")
    data = json.loads(json.dumps(export_method(w.conn, m.ref), default=str))
    data["method_name"] = "nfl_copy"
    data[section][key] = value
    source = str(tmp_path / "nfl_copy.json")
    with pytest.raises(MethodError) as err:
        import_method(w.conn, data, source=source)
    assert str(err.value).startswith(f"{source}: method nfl_copy@v1.0 is invalid: ")
    assert said in str(err.value)


def test_cli_import_of_an_unsupported_key_names_the_file_and_key(w: World, precog_cli: Any, tmp_path: Path) -> None:
    m = _create(w, "nfl_exp")
    data = json.loads(json.dumps(export_method(w.conn, m.ref), default=str))
    data["method_name"] = "nfl_imp"
    data["sport_config"]["nfl"]["time_restrictions"] = {"pregame_hours": 2, "postgame_minutes": 30}
    path = tmp_path / "nfl_imp.json"
    path.write_text(json.dumps(data))
    done = precog_cli("methods", "import", str(path))
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out, out
    assert str(path) in out and "sport.nfl.time_restrictions: not supported" in out
    assert w.conn.execute("SELECT count(*) FROM methods WHERE method_name = 'nfl_imp'").fetchone() == (0,)
