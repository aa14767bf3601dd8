"""Strategies synced from YAML as immutable versions; methods: create, hash, lifecycle, export/import, split."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from trading_dbkit import World, create_testing_method, seed_world

from precog.config.loader import load_config
from precog.trading.methods import (
    ActivationRules,
    DeprecationRules,
    MethodError,
    auto_deprecate,
    capital_split,
    compare_methods,
    create_method,
    export_method,
    get_method,
    import_method,
    method_hash,
    set_capital_split,
    transition,
)
from precog.trading.strategies import (
    StrategyConfigChanged,
    StrategyDefinition,
    load_strategy_definitions,
    sync_strategies,
)

D = Decimal


def _defs() -> list[StrategyDefinition]:
    return load_strategy_definitions(load_config(use_env=False))


def test_strategy_sync_is_idempotent_and_immutable(conn: psycopg.Connection[Any]) -> None:
    first = sync_strategies(conn, _defs())
    assert set(first.inserted) == {"pre_game_entry@v1.0", "halftime_entry@v1.0", "live_trading@v1.0",
                                   "settlement_arbitrage@v1.0"}
    again = sync_strategies(conn, _defs())
    assert again.inserted == () and len(again.unchanged) == 4
    rows = dict(conn.execute("SELECT strategy_name, status FROM strategies").fetchall())
    assert rows["live_trading"] == "inactive" and rows["pre_game_entry"] == "active"  # enabled: false / true
    # the same numbers written differently are the same config
    same = [StrategyDefinition(d.name, d.version, d.enabled,
                               {**d.config, "min_edge": str(d.config["min_edge"]) + "0"}) for d in _defs()]
    assert sync_strategies(conn, same).inserted == ()
    changed = [StrategyDefinition(d.name, d.version, d.enabled,
                                  {**d.config, "min_edge": D("0.07")} if d.name == "pre_game_entry" else d.config)
               for d in _defs()]
    with pytest.raises(StrategyConfigChanged, match=r"bump strategies\.pre_game_entry\.version \(e\.g\. v1\.1\)") as err:
        sync_strategies(conn, changed)
    assert "min_edge: 0.08 -> 0.07" in str(err.value)
    # bumping the version stores a new row and retires the old one
    bumped = [StrategyDefinition(d.name, "v1.1", d.enabled, d.config) if d.name == "pre_game_entry" else d
              for d in changed]
    report = sync_strategies(conn, bumped)
    assert report.inserted == ("pre_game_entry@v1.1",)
    statuses = conn.execute("SELECT strategy_version, status FROM strategies WHERE strategy_name = 'pre_game_entry'"
                            " ORDER BY strategy_version").fetchall()
    assert statuses == [("v1.0", "inactive"), ("v1.1", "active")]
    # the database itself refuses a config edit
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("UPDATE strategies SET config = '{}' WHERE strategy_name = 'pre_game_entry'")
    conn.rollback()


@pytest.fixture
def w(db_url: str) -> Any:
    world = seed_world(db_url)
    sync_strategies(world.conn, _defs())
    yield world
    world.conn.close()


def _create(world: World, name: str = "nfl_a", **kw: Any) -> Any:
    args = dict(template="moderate", name=name, version="v1.0", strategy="pre_game_entry@v1.0",
                model="fixed_test@v1.0", created_by="test")
    args.update(kw)
    return create_method(world.conn, **args)


def test_create_from_template_with_overrides(w: World) -> None:
    m = _create(w, overrides=["risk.kelly_fraction=0.15", "sport.nfl.min_volume=250",
                              "position_mgmt.trailing_stop.initial_distance=0.04", "sport.mlb.enabled=true"])
    assert m.status == "draft" and m.template == "moderate"
    assert m.risk["kelly_fraction"] == "0.15" and m.risk["max_position_size_dollars"] == "750"
    assert m.sport["nfl"]["min_volume"] == 250 and m.sport["mlb"] == {"enabled": True}
    assert m.position_mgmt["trailing_stop"]["initial_distance"] == "0.04"
    assert m.config_hash == method_hash(m.strategy_id, m.model_id, m.configs())
    assert len(m.config_hash) == 32
    runtime = m.runtime()
    assert runtime.kelly_for("nfl") == D("0.20") and runtime.kelly_for("mlb") == D("0.15")
    usage = w.conn.execute("SELECT usage_count FROM method_templates WHERE template_name = 'moderate'").fetchone()
    assert usage == (1,)


@pytest.mark.parametrize(("overrides", "message"), [
    (["risk.kely_fraction=0.2"], "unknown key 'kely_fraction'"),
    (["risk.kelly_fraction=0.9"], "risk.kelly_fraction = 0.9 is outside the allowed range [0.05, 0.50]"),
    (["risk.kelly_fraction=abc"], "not a decimal number"),
    (["sport.nfl.enabled=false", "sport.ncaaf.enabled=false", "sport.nba.enabled=false"],
     "at least one sport must be enabled"),
    (["execution.algorithm=yolo"], "execution.algorithm 'yolo'"),
    (["bogus.key=1"], "unknown section 'bogus'"),
    (["risk.kelly_fraction"], "expected SECTION.KEY=VALUE"),
])
def test_invalid_methods_are_refused_with_the_field_named(w: World, overrides: list[str], message: str) -> None:
    with pytest.raises(MethodError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        _create(w, overrides=overrides)


def test_a_stop_or_target_level_the_exit_rules_do_not_read_is_refused() -> None:
    # `--set` checks keys against the template; an imported or hand-built config reaches validate_method directly,
    # where a misspelt level used to leave the stop at the global value without a word
    from precog.trading.methods import validate_method

    configs = {"position_mgmt": {"trailing_stop": {}, "stop_loss": {"hgh_confidence": "-0.10"},
                                 "profit_targets": {"high": "0.30", "low_confidence": "0.15"}},
               "risk": {"kelly_fraction": "0.20", "max_position_size_dollars": "500"},
               "sport": {"nfl": {"enabled": True}}}
    with pytest.raises(MethodError) as err:
        validate_method("nfl_x", "v1.0", configs)
    assert "position_mgmt.stop_loss.hgh_confidence is not a confidence level" in str(err.value)
    assert "position_mgmt.profit_targets.high is not a confidence level" in str(err.value)
    assert "profit_targets.low_confidence" not in str(err.value)  # a correct level is not reported


def test_names_versions_and_aggressive_rule(w: World) -> None:
    with pytest.raises(MethodError, match="must match vMAJOR.MINOR"):
        _create(w, version="1.0")
    with pytest.raises(MethodError, match="named aggressive but risk.kelly_fraction 0.15"):
        _create(w, name="aggressive_nfl", overrides=["risk.kelly_fraction=0.15"])
    with pytest.raises(MethodError, match="model nope@v1.0 not found"):
        _create(w, model="nope@v1.0")


def test_duplicate_configs_and_versions_are_refused(w: World) -> None:
    _create(w)
    with pytest.raises(MethodError, match="identical to method nfl_a@v1.0"):
        _create(w, name="nfl_b")
    with pytest.raises(MethodError, match="already exists with a different configuration.*create nfl_a@v1.1"):
        _create(w, overrides=["risk.kelly_fraction=0.10"])
    # "0.2" and "0.20" are the same setting: still a duplicate
    with pytest.raises(MethodError, match="identical to method nfl_a@v1.0"):
        _create(w, name="nfl_c", overrides=["risk.kelly_fraction=0.2"])
    assert _create(w, name="nfl_d", overrides=["risk.kelly_fraction=0.21"]).status == "draft"


def _close_positions(world: World, method_id: int, pnls: list[str], *, mode: str = "paper",
                     days_ago: float = 1) -> None:
    ended = datetime.now(UTC) - timedelta(days=days_ago)
    for i, pnl in enumerate(pnls):
        pid = world.conn.execute("SELECT nextval('position_id_seq')").fetchone()[0]  # type: ignore[index]
        world.conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, method_id, exit_time)"
            " VALUES (%s, %s, 'kalshi', 'yes', %s, 0.50, 10, 10, 0, 'closed', %s, %s, %s)",
            (pid, f"M{i}", mode, D(pnl), method_id, ended))


def test_lifecycle_activation_needs_a_paper_record(w: World) -> None:
    m = _create(w)
    with pytest.raises(MethodError, match="activation is only allowed from testing|can move to"):
        transition(w.conn, m.ref, "active", by="alice")
    transition(w.conn, m.ref, "testing", by="alice", reason="paper trading")
    _close_positions(w, m.method_id, ["1.00"] * 9)
    with pytest.raises(MethodError, match=r"9 closed paper trades \(need >= 10\)"):
        transition(w.conn, m.ref, "active", by="alice")
    _close_positions(w, m.method_id, ["-10.00"])
    with pytest.raises(MethodError, match=r"paper ROI -0.0200 \(need > 0"):
        transition(w.conn, m.ref, "active", by="alice")  # 10 trades, -$1 on $50 cost
    _close_positions(w, m.method_id, ["2.00"])
    active = transition(w.conn, m.ref, "active", by="alice", activation=ActivationRules(10, D("0")))
    assert active.status == "active" and active.activated_at is not None
    assert active.paper_trades_count == 11 and active.paper_roi == D("0.0182")
    inactive = transition(w.conn, m.ref, "inactive", by="bob")
    assert inactive.deactivated_at is not None
    gone = transition(w.conn, m.ref, "deprecated", by="bob", reason="replaced")
    with pytest.raises(MethodError, match="deprecated is final"):
        transition(w.conn, gone.ref, "active", by="bob")
    history = w.conn.execute("SELECT from_status, to_status, changed_by FROM method_status_changes"
                             " WHERE method_id = %s ORDER BY id", (m.method_id,)).fetchall()
    assert history == [(None, "draft", "test"), ("draft", "testing", "alice"), ("testing", "active", "alice"),
                       ("active", "inactive", "bob"), ("inactive", "deprecated", "bob")]
    with pytest.raises(psycopg.errors.RestrictViolation):  # configs are frozen in the database too
        w.conn.execute("UPDATE methods SET risk_config = '{}' WHERE method_id = %s", (m.method_id,))


def test_auto_deprecation_rules(w: World) -> None:
    losing = create_testing_method(w.conn, "loser")
    winning = create_testing_method(w.conn, "winner", overrides=("risk.kelly_fraction=0.15",))
    small = create_testing_method(w.conn, "small", overrides=("risk.kelly_fraction=0.16",))
    _close_positions(w, losing.method_id, ["1.00"] * 4 + ["-0.50"] * 6)  # 40% wins over 10, ROI +0.01
    _close_positions(w, winning.method_id, ["1.00"] * 6 + ["-0.50"] * 4)
    _close_positions(w, small.method_id, ["-0.20"] * 3)  # too few trades for either rule; ROI -0.04
    rules = DeprecationRules(window_days=30, min_win_rate=D("0.50"), min_roi=D("-0.10"), min_trades=10)
    preview = auto_deprecate(w.conn, rules, dry_run=True)
    assert [ref for ref, _ in preview] == ["loser@v1.0"]
    assert "win rate 0.4000" in preview[0][1]
    assert get_method(w.conn, "loser@v1.0").status == "testing"
    _close_positions(w, small.method_id, ["-5.00"])  # ROI -0.28, but over 4 trades: not judged yet (min_trades)
    assert [ref for ref, _ in auto_deprecate(w.conn, rules, dry_run=True)] == ["loser@v1.0"]
    _close_positions(w, small.method_id, ["0.05"] * 6, days_ago=40)  # 10 trades: ROI -5.30 / 50.00 < -10%
    done = auto_deprecate(w.conn, rules)
    assert sorted(ref for ref, _ in done) == ["loser@v1.0", "small@v1.0"]
    assert get_method(w.conn, "small@v1.0").status == "deprecated"
    assert get_method(w.conn, "winner@v1.0").status == "testing"
    # trades older than the window do not count toward the win rate
    old = create_testing_method(w.conn, "old", overrides=("risk.kelly_fraction=0.17",))
    _close_positions(w, old.method_id, ["-0.10"] * 10, days_ago=40)
    _close_positions(w, old.method_id, ["1.00"] * 1)
    assert auto_deprecate(w.conn, rules, dry_run=True) == []


def test_export_import_round_trip_between_databases(w: World, pg_admin_url: str, template_db_url: str) -> None:
    from precog.db.embedded import with_database

    m = _create(w, overrides=["risk.kelly_fraction=0.15"], description="halftime tuned")
    data = json.loads(json.dumps(export_method(w.conn, m.ref), default=str))
    assert data["strategy"] == {"name": "pre_game_entry", "version": "v1.0"}
    assert data["model"] == {"name": "fixed_test", "version": "v1.0"}
    name = f"precog_trading_import_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "precog_test_template"')
    other_url = with_database(pg_admin_url, name)
    try:
        other = seed_world(other_url)
        sync_strategies(other.conn, _defs())
        # ids differ between the databases; names and versions carry the reference
        other.conn.execute("INSERT INTO probability_models (model_name, model_version, model_type, config)"
                           " VALUES ('filler', 'v1.0', 'fixed', '{\"probability\": \"0.5\"}')")
        imported, created = import_method(other.conn, data, created_by="bob", source="m.json")
        assert created and imported.status == "draft" and imported.risk == m.risk and imported.sport == m.sport
        assert imported.strategy == m.strategy and imported.model == m.model
        again, created_again = import_method(other.conn, data, source="m.json")
        assert not created_again and again.method_id == imported.method_id
        edited = dict(data, risk_config={**data["risk_config"], "kelly_fraction": "0.16"})
        with pytest.raises(MethodError, match="already exists with a different configuration"):
            import_method(other.conn, edited, source="m.json")
        with pytest.raises(MethodError, match="m.json: field 'model' is missing"):
            import_method(other.conn, {k: v for k, v in data.items() if k != "model"}, source="m.json")
        other.conn.close()
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_capital_split_between_active_methods(w: World) -> None:
    refs = []
    for i, kelly in enumerate(("0.15", "0.16", "0.17")):
        m = create_testing_method(w.conn, f"ab{i}", overrides=(f"risk.kelly_fraction={kelly}",))
        _close_positions(w, m.method_id, ["1.00"] * 10)
        transition(w.conn, m.ref, "active", by="t")
        refs.append(m.ref)
        w.conn.execute("UPDATE methods SET activated_at = now() + %s * interval '1 minute' WHERE method_id = %s",
                       (i, m.method_id))
    split = capital_split(w.conn)
    assert split[refs[2]] == D("0.3000")  # the newest active method gets the new share
    assert split[refs[0]] == split[refs[1]] == D("0.3500")
    explicit = set_capital_split(w.conn, {refs[0]: D("0.5")})
    # the remaining half: the newest takes 30% of it, the other non-explicit method 70%
    assert explicit[refs[0]] == D("0.5") and explicit[refs[2]] == D("0.1500") and explicit[refs[1]] == D("0.3500")
    with pytest.raises(MethodError, match="add up to 1.2"):
        set_capital_split(w.conn, {refs[0]: D("0.6"), refs[1]: D("0.6")})
    assert set_capital_split(w.conn, None)[refs[2]] == D("0.3000")


def test_compare_two_methods(w: World) -> None:
    a = create_testing_method(w.conn, "cmp_a")
    b = create_testing_method(w.conn, "cmp_b", overrides=("risk.kelly_fraction=0.15", "sport.nfl.min_volume=300"))
    _close_positions(w, a.method_id, ["1.00"] * 30 + ["-1.00"] * 10)
    _close_positions(w, b.method_id, ["1.00"] * 10 + ["-1.00"] * 30)
    data = compare_methods(w.conn, a.ref, b.ref)
    keys = {d["key"]: (d["a"], d["b"]) for d in data["differences"]}
    assert keys == {"risk.kelly_fraction": ("0.20", "0.15"), "sport.nfl.min_volume": (150, 300)}
    assert data["performance"]["a"]["win_rate"] == D("0.7500")
    assert data["significant_at_5pct"] is True and float(data["win_rate_p_value"]) < 0.001
