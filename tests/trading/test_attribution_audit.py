"""Versioning and attribution audit: the A/B capital split stays within the bankroll whatever ab_testing says,
non-draft versions cannot be edited, and every trade of a method carries that method's strategy and model."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from trading_dbkit import World, create_testing_method

from precog.trading.methods import MethodError, capital_split, transition

D = Decimal


def _two_active(w: World) -> list[str]:
    refs = []
    for i, kelly in enumerate(("0.15", "0.16")):
        m = create_testing_method(w.conn, f"ab_audit{i}", overrides=(f"risk.kelly_fraction={kelly}",), status="active")
        refs.append(m.ref)
    return refs


@pytest.mark.parametrize(("existing", "new"), [("-0.5", "1.5"), ("1.5", "-0.5"), ("0", "0")])
def test_a_capital_split_from_invalid_ab_shares_is_refused(world: World, existing: str, new: str) -> None:
    _two_active(world)
    # before: -0.5 / 1.5 gave the newest method 150 % of the bankroll (and the other -50 %); 0 / 0 crashed
    with pytest.raises(MethodError, match="ab_testing: existing_share .* must be >= 0 and not both 0"):
        capital_split(world.conn, existing_share=D(existing), new_share=D(new))


def test_the_documented_split_still_sums_to_one(world: World) -> None:
    older, newest = _two_active(world)
    shares = capital_split(world.conn)
    assert shares == {older: D("0.7000"), newest: D("0.3000")} and sum(shares.values()) == 1
    # shares that do not add up to 1 are proportions: still the whole bankroll, never more
    shares = capital_split(world.conn, existing_share=D("0.6"), new_share=D("0.6"))
    assert shares[older] == D("0.5000") and sum(shares.values()) == 1


def test_cli_split_with_a_negative_ab_share_is_refused(world: World, precog_cli: Any, tmp_path: Path) -> None:
    _two_active(world)
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "trade_strategies.yaml").write_text("ab_testing:\n  existing_share: -0.5\n  new_share: 1.5\n")
    done = precog_cli("methods", "split", "--json", env={"PRECOG_CONFIG_DIR": str(cfg)})
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out and "1.5000" not in done.stdout, out
    assert "ab_testing" in out


def test_non_draft_versions_are_frozen_in_the_database(world: World) -> None:
    m = create_testing_method(world.conn, "frozen_audit")
    assert m.status == "testing"
    for table, column, key in (("methods", "risk_config", "method_id"), ("strategies", "config", "strategy_id"),
                               ("probability_models", "config", "model_id")):
        ident = {"methods": m.method_id, "strategies": m.strategy_id, "probability_models": m.model_id}[table]
        with pytest.raises(psycopg.errors.RestrictViolation, match=f"{table}.{column} cannot be changed"):
            world.conn.execute(f"UPDATE {table} SET {column} = '{{}}'::jsonb WHERE {key} = %s", (ident,))  # noqa: S608
    # the lifecycle: deprecated is final through the registry
    transition(world.conn, m.ref, "deprecated", by="audit")
    for target in ("testing", "active", "draft"):
        with pytest.raises(MethodError, match="deprecated"):
            transition(world.conn, m.ref, target, by="audit")


@pytest.mark.parametrize(("text", "needle"), [
    ("ab_testing:\n  existing_share: -0.5\n  new_share: 1.5\n", "ab_testing.existing_share = -0.5 is invalid"),
    ("ab_testing:\n  existing_share: 0\n  new_share: 0\n", "cannot both be 0"),
])
def test_a_bad_ab_testing_block_is_refused_when_the_configuration_loads(tmp_path: Any, text: str,
                                                                        needle: str) -> None:
    """The same shares are refused at load, naming the file and the key, before any split is worked out."""
    from precog.config.errors import ConfigError
    from precog.config.loader import load_config

    (tmp_path / "trade_strategies.yaml").write_text(text)
    with pytest.raises(ConfigError, match="trade_strategies.yaml") as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    assert needle in str(err.value)
