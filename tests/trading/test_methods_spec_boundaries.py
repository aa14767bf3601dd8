"""Methods held to spec 8.1 and REQ-METH-001..015 at their boundaries, through PostgreSQL (and the CLI where the
user path is the CLI): the activation gate (9 vs 10 closed paper trades, ROI exactly 0), auto-deprecation (win
rate exactly 50% over exactly 30 days, ROI exactly -10%), validation bounds, the version regex, the config hash,
immutability and retention, the A/B significance test at its threshold and the capital split summing to 1."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from trading_dbkit import World, create_testing_method, seed_world

from precog.trading.methods import (
    DeprecationRules,
    MethodError,
    auto_deprecate,
    capital_split,
    compare_methods,
    create_method,
    export_method,
    get_method,
    import_method,
    refresh_metrics,
    set_capital_split,
    transition,
    validate_method,
)
from precog.trading.normalize import normalized_for_hash

D = Decimal
RULES = DeprecationRules(window_days=30, min_win_rate=D("0.50"), min_roi=D("-0.10"), min_trades=10)


@pytest.fixture
def w(db_url: str) -> Any:
    world = seed_world(db_url)
    yield world
    world.conn.close()


def _close(world: World, method_id: int, pnls: list[str], *, mode: str = "paper", ended: datetime | None = None,
           days_ago: float = 1) -> None:
    """Closed positions of the method, each costing $5.00 (10 contracts at 0.50, no fees)."""
    ended = ended or datetime.now(UTC) - timedelta(days=days_ago)
    for pnl in pnls:
        world.conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, method_id, exit_time)"
            " VALUES (nextval('position_id_seq'), 'KXM-B', 'kalshi', 'yes', %s, 0.50, 10, 10, 0, 'closed', %s, %s, %s)",
            (mode, D(pnl), method_id, ended))


def _bulk_close(world: World, method_id: int, n: int, pnl: str, *, days_ago: float = 1) -> None:
    world.conn.execute(
        "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
        " initial_quantity, fees, status, realized_pnl, method_id, exit_time)"
        " SELECT nextval('position_id_seq'), 'KXM-B', 'kalshi', 'yes', 'paper', 0.50, 10, 10, 0, 'closed', %s, %s,"
        " now() - %s * interval '1 day' FROM generate_series(1, %s)", (D(pnl), method_id, days_ago, n))


# ---------------------------------------------------------------- activation (REQ-METH-006)
def test_activation_needs_ten_closed_paper_trades_not_nine(w: World) -> None:
    m = create_testing_method(w.conn, "gate")
    _close(w, m.method_id, ["1.00"] * 9)
    _close(w, m.method_id, ["1.00"], mode="live")  # live and backtest trades are not a paper record
    _close(w, m.method_id, ["1.00"] * 5, mode="backtest")
    with pytest.raises(MethodError, match=r"9 closed paper trades \(need >= 10\)"):
        transition(w.conn, m.ref, "active", by="alice")
    assert get_method(w.conn, m.ref).status == "testing"
    _close(w, m.method_id, ["1.00"])
    active = transition(w.conn, m.ref, "active", by="alice")
    assert active.status == "active" and active.paper_trades_count == 10 and active.activated_at is not None


def test_activation_refuses_a_breakeven_paper_record(w: World) -> None:
    """REQ-METH-006: activation needs a positive paper ROI; spec 8.1 writes >= 0 and notes the conflict. A method
    that only broke even has shown no edge, so real money is not put behind it: exactly 0 is refused."""
    m = create_testing_method(w.conn, "flat")
    _close(w, m.method_id, ["1.00"] * 5 + ["-1.00"] * 5)
    with pytest.raises(MethodError, match=r"paper ROI 0\.0000 \(need > 0"):
        transition(w.conn, m.ref, "active", by="alice")
    assert get_method(w.conn, m.ref).status == "testing"


def test_activation_judges_the_exact_roi_not_its_rounding(w: World) -> None:
    # -$0.0001 on $50 of cost is a loss although the stored ROI rounds to 0.0000; +$0.0001 is a gain
    loser = create_testing_method(w.conn, "tiny_loss")
    _close(w, loser.method_id, ["1.00"] * 5 + ["-1.00"] * 4 + ["-1.0001"])
    with pytest.raises(MethodError, match="cannot be activated yet"):
        transition(w.conn, loser.ref, "active", by="alice")
    winner = create_testing_method(w.conn, "tiny_gain", overrides=("risk.kelly_fraction=0.15",))
    _close(w, winner.method_id, ["1.00"] * 5 + ["-1.00"] * 4 + ["-0.9999"])
    assert transition(w.conn, winner.ref, "active", by="alice").status == "active"


def test_cli_activation_at_breakeven_is_refused_with_the_rule(w: World, precog_cli: Any) -> None:
    m = create_testing_method(w.conn, "cli_flat")
    _close(w, m.method_id, ["1.00"] * 5 + ["-1.00"] * 5)
    refused = precog_cli("methods", "activate", m.ref, "--by", "bob")
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1, out
    assert "10 closed paper trades (need >= 10) with paper ROI 0.0000 (need > 0" in out and "Traceback" not in out
    _close(w, m.method_id, ["0.01"])
    done = precog_cli("methods", "activate", m.ref, "--by", "bob")
    assert done.returncode == 0, done.stdout + done.stderr
    assert get_method(w.conn, m.ref).status == "active"


# ---------------------------------------------------------------- auto-deprecation (REQ-METH-011)
def test_roi_of_exactly_minus_ten_percent_is_kept_and_just_below_is_deprecated(w: World) -> None:
    # trades older than the 30-day window: only the ROI rule judges them
    edge = create_testing_method(w.conn, "edge")
    _close(w, edge.method_id, ["1.00"] * 4 + ["-1.50"] * 6, days_ago=40)  # -5.00 on 50.00 = -0.1000
    below = create_testing_method(w.conn, "below", overrides=("risk.kelly_fraction=0.15",))
    _close(w, below.method_id, ["1.00"] * 4 + ["-1.50"] * 5 + ["-1.5001"], days_ago=40)  # -0.100002
    done = auto_deprecate(w.conn, RULES)
    assert [ref for ref, _ in done] == ["below@v1.0"]
    assert get_method(w.conn, "edge@v1.0").status == "testing"


def test_win_rate_of_exactly_half_is_kept_and_just_below_is_deprecated(w: World) -> None:
    half = create_testing_method(w.conn, "half")
    _close(w, half.method_id, ["2.00"] * 5 + ["-1.00"] * 5)
    assert auto_deprecate(w.conn, RULES, dry_run=True) == []
    # 5000 wins of 10001 trades: 0.49995 - below 50% although it rounds to 0.5000
    under = create_testing_method(w.conn, "under", overrides=("risk.kelly_fraction=0.15",))
    _bulk_close(w, under.method_id, 5000, "2.00")
    _bulk_close(w, under.method_id, 5001, "-1.00")
    done = auto_deprecate(w.conn, RULES, dry_run=True)
    assert [ref for ref, _ in done] == ["under@v1.0"] and "win rate" in done[0][1]


def test_the_win_rate_window_is_exactly_thirty_days(w: World) -> None:
    now = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
    inside = create_testing_method(w.conn, "inside")
    _close(w, inside.method_id, ["2.00"] * 4 + ["-0.50"] * 6, ended=now - timedelta(days=30))  # 40%, ROI +0.10
    outside = create_testing_method(w.conn, "outside", overrides=("risk.kelly_fraction=0.15",))
    _close(w, outside.method_id, ["2.00"] * 4 + ["-0.50"] * 6,
           ended=now - timedelta(days=30, microseconds=1))
    done = auto_deprecate(w.conn, RULES, now=now, dry_run=True)
    assert [ref for ref, _ in done] == ["inside@v1.0"]


def test_fewer_than_ten_trades_in_the_window_do_not_judge_the_win_rate(w: World) -> None:
    m = create_testing_method(w.conn, "young")
    _close(w, m.method_id, ["2.00"] * 3 + ["-0.50"] * 6)  # 33% of 9 trades, ROI +0.13
    assert auto_deprecate(w.conn, RULES, dry_run=True) == []
    _close(w, m.method_id, ["-0.50"])
    assert [ref for ref, _ in auto_deprecate(w.conn, RULES, dry_run=True)] == ["young@v1.0"]


def test_backtest_positions_neither_hide_nor_cause_a_deprecation(w: World) -> None:
    """A backtest replays the method over history (positions with mode 'backtest'): its simulated P&L is not the
    method's trading record. A paper ROI of -20% is not rescued by a profitable backtest."""
    m = create_testing_method(w.conn, "bt_masked")
    _close(w, m.method_id, ["-1.00"] * 10, days_ago=40)  # -10 on 50: -20%
    _close(w, m.method_id, ["1.00"] * 100, mode="backtest", days_ago=40)
    done = auto_deprecate(w.conn, RULES, dry_run=True)
    assert [ref for ref, _ in done] == ["bt_masked@v1.0"] and "ROI -0.2000 over 10 trades" in done[0][1]
    clean = create_testing_method(w.conn, "bt_loser", overrides=("risk.kelly_fraction=0.15",))
    _close(w, clean.method_id, ["1.00"] * 10, days_ago=40)
    _close(w, clean.method_id, ["-5.00"] * 100, mode="backtest")
    assert [ref for ref, _ in auto_deprecate(w.conn, RULES, dry_run=True)] == ["bt_masked@v1.0"]
    stored = refresh_metrics(w.conn, clean.method_id)  # REQ-METH-015 totals: paper + live trades only
    assert (stored.total_trades, stored.win_rate, stored.paper_trades_count) == (10, D("1.0000"), 10)


# ---------------------------------------------------------------- creation and validation (REQ-METH-001, 003)
def _create(world: World, name: str, *overrides: str, version: str = "v1.0", template: str = "moderate") -> Any:
    from precog.config.loader import load_config
    from precog.trading.strategies import load_strategy_definitions, sync_strategies

    sync_strategies(world.conn, load_strategy_definitions(load_config(use_env=False)))
    return create_method(world.conn, template=template, name=name, version=version, strategy="pre_game_entry@v1.0",
                         model="fixed_test@v1.0", overrides=list(overrides), created_by="test")


@pytest.mark.parametrize(("kelly", "ok"), [("0.05", True), ("0.0499", False), ("0.50", True), ("0.5001", False)])
def test_kelly_fraction_bounds(w: World, kelly: str, ok: bool) -> None:
    if ok:
        assert _create(w, "k", f"risk.kelly_fraction={kelly}").risk["kelly_fraction"] == kelly
    else:
        with pytest.raises(MethodError, match=rf"risk\.kelly_fraction = {kelly} is outside the allowed range"):
            _create(w, "k", f"risk.kelly_fraction={kelly}")


def test_aggressive_names_need_kelly_of_at_least_a_fifth(w: World) -> None:
    assert _create(w, "aggressive_a", "risk.kelly_fraction=0.20").status == "draft"
    with pytest.raises(MethodError, match="named aggressive but risk.kelly_fraction 0.1999 < 0.20"):
        _create(w, "aggressive_b", "risk.kelly_fraction=0.1999")
    with pytest.raises(MethodError, match="named aggressive"):
        _create(w, "Aggressive_C", "risk.kelly_fraction=0.19")
    assert _create(w, "not_aggressive", "risk.kelly_fraction=0.19").status == "draft"  # only the name's start counts


@pytest.mark.parametrize("version", ["v1.0\n", "v1", "1.0", "v1.0.0", "V1.0", "v\u0661.\u0660", "v1.0 "])
def test_versions_must_be_ascii_vmajor_minor(w: World, version: str) -> None:
    with pytest.raises(MethodError, match="must match vMAJOR.MINOR"):
        _create(w, "ver", version=version)


def test_a_name_with_a_trailing_newline_is_refused(w: World) -> None:
    with pytest.raises(MethodError, match="name 'nfl_x\\\\n' must start with a letter"):
        _create(w, "nfl_x\n")
    assert w.conn.execute("SELECT count(*) FROM methods").fetchone() == (0,)


@pytest.mark.parametrize("key", ["kelly_fraction", "max_position_size_dollars"])
def test_a_required_risk_key_set_to_null_is_refused(key: str) -> None:
    # an import carries its configs as JSON: `"kelly_fraction": null` would leave the method on the global fraction
    configs = {"position_mgmt": {"trailing_stop": {}, "profit_targets": {}, "stop_loss": {}},
               "risk": {"kelly_fraction": "0.20", "max_position_size_dollars": "500", key: None},
               "execution": {}, "sport": {"nfl": {"enabled": True}}}
    with pytest.raises(MethodError, match=rf"risk\.{key} is required"):
        validate_method("nfl_x", "v1.0", configs)


@pytest.mark.parametrize("key", ["trailing_stop", "profit_targets", "stop_loss"])
def test_a_required_position_group_must_be_a_group(key: str) -> None:
    pm: dict[str, Any] = {"trailing_stop": {}, "profit_targets": {}, "stop_loss": {}}
    pm[key] = None
    configs = {"position_mgmt": pm, "risk": {"kelly_fraction": "0.20", "max_position_size_dollars": "500"},
               "execution": {}, "sport": {"nfl": {"enabled": True}}}
    with pytest.raises(MethodError, match=rf"position_mgmt\.{key} is required"):
        validate_method("nfl_x", "v1.0", configs)
    pm[key] = "on"
    with pytest.raises(MethodError, match=rf"position_mgmt\.{key} must be a group of settings"):
        validate_method("nfl_x", "v1.0", configs)


# ---------------------------------------------------------------- config hash (REQ-METH-004)
def test_config_hash_is_md5_of_sorted_json_with_numbers_normalised(w: World) -> None:
    m = _create(w, "hash_a", "risk.kelly_fraction=0.2")
    payload = {"strategy_id": m.strategy_id, "model_id": m.model_id,
               **normalized_for_hash({"position_mgmt": m.position_mgmt, "risk": m.risk, "execution": m.execution,
                                      "sport": m.sport})}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert m.config_hash == hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    # the same bundle with its keys in another order and its numbers written otherwise is the same method
    data = json.loads(json.dumps(export_method(w.conn, m.ref), default=str))
    data["risk_config"] = dict(reversed(list(data["risk_config"].items())), kelly_fraction="0.200")
    same, created = import_method(w.conn, data, source="a.json")
    assert not created and same.method_id == m.method_id


# ---------------------------------------------------------------- immutability and retention (REQ-METH-002, 012)
@pytest.mark.parametrize(("column", "value"), [
    ("risk_config", "'{}'::jsonb"), ("position_mgmt_config", "'{}'::jsonb"), ("execution_config", "'{}'::jsonb"),
    ("sport_config", "'{}'::jsonb"), ("config_hash", "'x'"), ("method_version", "'v9.9'"),
    ("strategy_id", "strategy_id + 1"), ("model_id", "model_id + 1")])
def test_the_database_refuses_every_edit_of_a_methods_bundle(w: World, column: str, value: str) -> None:
    m = _create(w, "frozen")
    with pytest.raises(psycopg.errors.RestrictViolation, match=f"methods.{column} cannot be changed"):
        w.conn.execute(f"UPDATE methods SET {column} = {value} WHERE method_id = %s", (m.method_id,))  # noqa: S608


def test_cli_edit_of_a_version_is_refused_naming_the_next_version(w: World, precog_cli: Any) -> None:
    _create(w, "cli_m")
    refused = precog_cli("methods", "create", "--template", "moderate", "--name", "cli_m", "--version", "v1.0",
                         "--strategy", "pre_game_entry@v1.0", "--model", "fixed_test@v1.0",
                         "--set", "risk.kelly_fraction=0.15")
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "create cli_m@v1.1 instead" in out and "Traceback" not in out, out
    assert get_method(w.conn, "cli_m@v1.0").risk["kelly_fraction"] == "0.20"


def test_a_deprecated_method_is_kept_with_its_history(w: World) -> None:
    m = create_testing_method(w.conn, "retired")
    transition(w.conn, m.ref, "deprecated", by="bob", reason="replaced")
    with pytest.raises(psycopg.errors.RestrictViolation):
        w.conn.execute("DELETE FROM methods WHERE method_id = %s", (m.method_id,))
    assert get_method(w.conn, m.ref).status == "deprecated"
    with pytest.raises(MethodError, match="deprecated is final"):
        transition(w.conn, m.ref, "testing", by="bob")


# ---------------------------------------------------------------- A/B comparison (REQ-METH-008)
def _pair(world: World, a_wins: int, a_n: int, b_wins: int, b_n: int) -> dict[str, Any]:
    a = create_testing_method(world.conn, "ab_a")
    b = create_testing_method(world.conn, "ab_b", overrides=("risk.kelly_fraction=0.15",))
    _close(world, a.method_id, ["1.00"] * a_wins + ["-1.00"] * (a_n - a_wins))
    _close(world, b.method_id, ["1.00"] * b_wins + ["-1.00"] * (b_n - b_wins))
    return compare_methods(world.conn, a.ref, b.ref)


def test_three_wins_against_three_losses_are_not_significant(w: World) -> None:
    # Fisher's exact test: p = 0.1; the normal approximation claimed p = 0.014 on six trades
    data = _pair(w, 3, 3, 0, 3)
    assert data["win_rate_p_value"] == "0.1000" and data["significant_at_5pct"] is False


def test_significance_at_exactly_five_percent_is_not_claimed(w: World) -> None:
    # 2 of 4 against 0 of 12: the exact two-sided p is exactly 1/20; significance needs p < 0.05
    data = _pair(w, 2, 4, 0, 12)
    assert data["win_rate_p_value"] == "0.0500" and data["significant_at_5pct"] is False


def test_four_wins_against_four_losses_are_significant(w: World) -> None:
    data = _pair(w, 4, 4, 0, 4)  # p = 2/70
    assert data["win_rate_p_value"] == "0.0286" and data["significant_at_5pct"] is True


def test_comparison_counts_trading_not_backtests(w: World) -> None:
    a = create_testing_method(w.conn, "cmp_a")
    b = create_testing_method(w.conn, "cmp_b", overrides=("risk.kelly_fraction=0.15",))
    _close(w, a.method_id, ["1.00"] * 3)
    _close(w, a.method_id, ["1.00"] * 50, mode="backtest")
    data = compare_methods(w.conn, a.ref, b.ref)
    assert data["performance"]["a"]["trades"] == 3 and data["performance"]["b"]["trades"] == 0


# ---------------------------------------------------------------- capital split (REQ-VER-005)
def _activate(world: World, count: int) -> list[str]:
    refs = []
    for i in range(count):
        m = create_testing_method(world.conn, f"split{i}", overrides=(f"risk.kelly_fraction={D('0.10') + i * D('0.01')}",))
        world.conn.execute("UPDATE methods SET status = 'active', activated_at = now() + %s * interval '1 minute'"
                           " WHERE method_id = %s", (i, m.method_id))
        refs.append(m.ref)
    return refs


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_the_automatic_split_sums_to_exactly_one(w: World, count: int) -> None:
    refs = _activate(w, count)
    split = capital_split(w.conn)
    assert sum(split.values(), D(0)) == 1, split
    assert split[refs[-1]] >= D("0.2999")  # the newest keeps (about) its 30%
    assert len({split[r] for r in refs[:-1]}) == 1 or count > 3  # older ones equal (up to the last 0.0001)


def test_explicit_shares_set_one_at_a_time_cannot_exceed_the_bankroll(w: World) -> None:
    a, b, _c = _activate(w, 3)
    set_capital_split(w.conn, {a: D("0.6")})
    with pytest.raises(MethodError, match=r"capital shares add up to 1\.2"):
        set_capital_split(w.conn, {b: D("0.6")})
    split = capital_split(w.conn)
    assert split[a] == D("0.6") and sum(split.values(), D(0)) == 1
    assert set_capital_split(w.conn, {a: D("0.3"), b: D("0.7")})[b] == D("0.7")  # a replacement that fits


def test_cli_list_shows_the_configured_ab_split(w: World, precog_cli: Any) -> None:
    old, new = _activate(w, 2)
    env = {"PRECOG_CFG__TRADE_STRATEGIES__AB_TESTING__NEW_SHARE": "0.50",
           "PRECOG_CFG__TRADE_STRATEGIES__AB_TESTING__EXISTING_SHARE": "0.50"}
    listed = precog_cli("methods", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    shares = {r["ref"]: r["effective_capital_share"] for r in json.loads(listed.stdout)}
    assert shares == {old: "0.5000", new: "0.5000"}


# ---------------------------------------------------------------- helper views (REQ-METH-009)
def test_method_comparison_view_lists_each_methods_record_and_bundle(w: World) -> None:
    m = create_testing_method(w.conn, "viewed")
    _close(w, m.method_id, ["1.00"] * 3 + ["-1.00"])
    _close(w, m.method_id, ["5.00"] * 4, mode="backtest")
    row = w.conn.execute(
        "SELECT method_name, method_version, status, strategy_name, strategy_version, model_name, model_version,"
        " config_hash, paper_trades, live_trades, closed_trades, winning_trades, realized_pnl"
        " FROM method_comparison WHERE method_id = %s", (m.method_id,)).fetchone()
    assert row == ("viewed", "v1.0", "testing", "pre_game_entry", "v1.0", "fixed_test", "v1.0", m.config_hash,
                   4, 0, 4, 3, D("2.0000"))
    names = {r[0] for r in w.conn.execute("SELECT table_name FROM information_schema.views").fetchall()}
    assert {"active_methods", "method_performance", "method_comparison"} <= names
