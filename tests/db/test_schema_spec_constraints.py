"""Guards of spec section 2 added by migration 0014 (schema audited clause by clause against the spec).

Each guard rejects a bad row in the real database and lets the rows the application writes through; the upgrade
of a database at 0013 holding such rows succeeds.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from precog.db.embedded import with_database
from precog.db.migrate import migrate, migrations_dir
from trading.trading_dbkit import World, create_testing_method, seed_world

D = Decimal
EXIT_CONDITIONS = ("stop_loss", "circuit_breaker", "trailing_stop", "time_based_urgent", "liquidity_dried_up",
                   "profit_target", "partial_exit_target", "early_exit", "edge_disappeared", "rebalance",
                   "settlement", "manual", "reconciliation", "simulation_ended")
MIGRATION = "0014_spec_constraints"
# later migrations that change what 0014 added: they run after it on upgrade
AFTER = ("0020_hedge_exit_condition",)


def _exit_attempt(conn: psycopg.Connection[Any], condition: str | None) -> None:
    conn.execute("INSERT INTO exit_attempts (position_id, exit_condition, priority_level, order_type, quantity,"
                 " attempt_number) VALUES (1, %s, 'HIGH', 'limit', 5, 1)", (condition,))


def _order(conn: psycopg.Connection[Any], client_id: str, *, exit_condition: str | None = None,
           avg_fill_price: Decimal | None = None) -> None:
    conn.execute("INSERT INTO orders (client_order_id, platform_id, market_id, purpose, exit_condition, side, action,"
                 " order_type, limit_price, quantity, status, avg_fill_price)"
                 " VALUES (%s, 'kalshi', 'M', 'exit', %s, 'yes', 'sell', 'limit', 0.40, 5, 'created', %s)",
                 (client_id, exit_condition, avg_fill_price))


def _position(conn: psycopg.Connection[Any], pnl_pct: Decimal | None) -> None:
    conn.execute("INSERT INTO positions (position_id, market_id, platform_id, side, entry_price, quantity,"
                 " initial_quantity, current_price, unrealized_pnl_pct)"
                 " VALUES (nextval('position_id_seq'), 'M', 'kalshi', 'yes', 0.50, 10, 10, 0, %s)", (pnl_pct,))


def _strategy_and_model(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    sid = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, sport, config)"
                       " VALUES ('halftime_entry', 'v1.0', 'nfl', '{}') RETURNING strategy_id").fetchone()
    mid = conn.execute("INSERT INTO probability_models (model_name, model_version, model_type, sport, config,"
                       " training_sample_size) VALUES ('elo_test', 'v1.0', 'elo', 'nfl', '{}', 500)"
                       " RETURNING model_id").fetchone()
    assert sid is not None and mid is not None
    return sid[0], mid[0]


def _method(conn: psycopg.Connection[Any]) -> int:
    sid, mid = _strategy_and_model(conn)
    row = conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config,"
        " execution_config, sport_config, config_hash) VALUES ('m', 'v1.0', %s, %s, '{}', '{}', '{}', '{}', 'h')"
        " RETURNING method_id", (sid, mid)).fetchone()
    assert row is not None
    return int(row[0])


def _rejected(conn: psycopg.Connection[Any], error: type[Exception], stmt: str, params: tuple[Any, ...] = ()) -> None:
    with pytest.raises(error):
        conn.execute(stmt, params)
    conn.rollback()


# ---------------------------------------------------------------- exit conditions


def test_exit_attempts_and_exit_orders_name_a_known_exit_condition(conn: psycopg.Connection[Any]) -> None:
    for condition in (*EXIT_CONDITIONS, None):
        _exit_attempt(conn, condition)
    for i, condition in enumerate((*EXIT_CONDITIONS, None)):
        _order(conn, f"ok-{i}", exit_condition=condition)
    conn.commit()
    with pytest.raises(psycopg.errors.CheckViolation, match="exit_attempts_exit_condition_check"):
        _exit_attempt(conn, "partial_exit_first_target")  # spec 11.3: a stage name is not a condition
    conn.rollback()
    with pytest.raises(psycopg.errors.CheckViolation, match="orders_exit_condition_check"):
        _order(conn, "bad", exit_condition="stoploss")
    conn.rollback()


# ---------------------------------------------------------------- prices, rates, metrics


def test_order_average_fill_price_is_a_price(conn: psycopg.Connection[Any]) -> None:
    _order(conn, "ok-0", avg_fill_price=D("0"))
    _order(conn, "ok-1", avg_fill_price=D("1"))
    _order(conn, "ok-2")
    conn.commit()
    with pytest.raises(psycopg.errors.CheckViolation, match="orders_avg_fill_price_check"):
        _order(conn, "bad", avg_fill_price=D("1.7"))
    conn.rollback()


@pytest.mark.parametrize("column", ["win_rate", "paper_win_rate", "live_win_rate"])
def test_method_win_rates_are_shares(conn: psycopg.Connection[Any], column: str) -> None:
    method_id = _method(conn)
    conn.execute(f"UPDATE methods SET {column} = 1, paper_roi = -0.5 WHERE method_id = %s",  # noqa: S608 - test constant
                 (method_id,))
    conn.commit()
    for bad in (D("1.0001"), D("-0.1")):
        _rejected(conn, psycopg.errors.CheckViolation,
                  f"UPDATE methods SET {column} = %s WHERE method_id = %s", (bad, method_id))  # noqa: S608


@pytest.mark.parametrize(("column", "bad"), [("validation_accuracy", D("1.5")), ("validation_calibration", D("-0.01")),
                                             ("validation_brier", D("2")), ("validation_sample_size", -1)])
def test_model_validation_metrics_are_on_the_probability_scale(conn: psycopg.Connection[Any], column: str,
                                                               bad: Any) -> None:
    _, model_id = _strategy_and_model(conn)
    conn.execute("UPDATE probability_models SET validation_accuracy = 0.6441, validation_calibration = 0.0989,"
                 " validation_brier = 0.216924, validation_sample_size = 1335 WHERE model_id = %s", (model_id,))
    conn.commit()
    _rejected(conn, psycopg.errors.CheckViolation,
              f"UPDATE probability_models SET {column} = %s WHERE model_id = %s", (bad, model_id))  # noqa: S608


def test_unrealized_pnl_pct_cannot_lose_more_than_everything(conn: psycopg.Connection[Any]) -> None:
    for pct in (D("-1"), D("-0.1200"), D("99.0000"), None):
        _position(conn, pct)
    conn.commit()
    with pytest.raises(psycopg.errors.CheckViolation, match="positions_unrealized_pnl_pct_check"):
        _position(conn, D("-1.0001"))
    conn.rollback()


# ---------------------------------------------------------------- lifecycle windows


def _close_positions(world: World, method_id: int, pnls: list[str]) -> None:
    ended = datetime.now(UTC) - timedelta(days=1)
    for i, pnl in enumerate(pnls):
        world.conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, method_id, exit_time)"
            " VALUES (nextval('position_id_seq'), %s, 'kalshi', 'yes', 'paper', 0.50, 10, 10, 0, 'closed', %s, %s, %s)",
            (f"M{i}", D(pnl), method_id, ended))


def test_a_deactivated_method_can_be_activated_again(db_url: str) -> None:
    # methods.TRANSITIONS allow active -> inactive -> testing -> active; 0001's CHECK deactivated_at >= activated_at
    # refused the second activation with a raw CheckViolation.
    from precog.trading.methods import ActivationRules, transition

    world = seed_world(db_url)
    try:
        m = create_testing_method(world.conn)
        _close_positions(world, m.method_id, ["1.00"] * 10)
        rules = ActivationRules(10, D("0"))
        transition(world.conn, m.ref, "active", by="alice", activation=rules)
        transition(world.conn, m.ref, "inactive", by="bob")
        transition(world.conn, m.ref, "testing", by="bob", reason="retest")
        again = transition(world.conn, m.ref, "active", by="alice", activation=rules)
        assert again.status == "active"
        assert again.activated_at is not None and again.deactivated_at is not None
        assert again.activated_at > again.deactivated_at
        off = transition(world.conn, m.ref, "inactive", by="bob")
        assert off.deactivated_at is not None and off.deactivated_at >= off.activated_at
    finally:
        world.conn.close()


@pytest.mark.parametrize("table", ["methods", "strategies"])
def test_a_version_that_is_not_active_has_an_ordered_activation_window(conn: psycopg.Connection[Any],
                                                                       table: str) -> None:
    method_id = _method(conn)
    key, row_id = ("method_id", method_id) if table == "methods" else ("strategy_id", conn.execute(
        "SELECT strategy_id FROM methods WHERE method_id = %s", (method_id,)).fetchone()[0])  # type: ignore[index]
    reactivated = (f"UPDATE {table} SET status = 'active', activated_at = now(),"  # noqa: S608 - test constants
                   f" deactivated_at = now() - interval '1 day' WHERE {key} = %s")
    conn.execute(reactivated, (row_id,))
    conn.commit()
    _rejected(conn, psycopg.errors.CheckViolation,
              f"UPDATE {table} SET status = 'inactive' WHERE {key} = %s", (row_id,))  # noqa: S608


# ---------------------------------------------------------------- immutable versions


@pytest.mark.parametrize(("table", "key", "assignment"), [
    ("strategies", "strategy_id", "sport = 'nba'"),
    ("strategies", "strategy_id", "category = 'politics'"),
    ("strategies", "strategy_id", "subcategory = 'nfl'"),
    ("probability_models", "model_id", "sport = 'nba'"),
    ("probability_models", "model_id", "subcategory = 'nfl'"),
    ("probability_models", "model_id", "training_sample_size = 900"),
    ("probability_models", "model_id", "training_end_date = '2024-01-01'"),
])
def test_what_a_version_applies_to_is_frozen(conn: psycopg.Connection[Any], table: str, key: str,
                                             assignment: str) -> None:
    sid, mid = _strategy_and_model(conn)
    row_id = sid if table == "strategies" else mid
    conn.execute(f"UPDATE {table} SET status = 'testing' WHERE {key} = %s", (row_id,))  # noqa: S608
    conn.commit()
    with pytest.raises(psycopg.errors.RestrictViolation, match="immutable version"):
        conn.execute(f"UPDATE {table} SET {assignment} WHERE {key} = %s", (row_id,))  # noqa: S608
    conn.rollback()


# ---------------------------------------------------------------- index behind ON DELETE SET NULL


def test_deleting_matrix_cells_finds_their_edges_through_an_index(conn: psycopg.Connection[Any]) -> None:
    # The query PostgreSQL runs for edges.probability_matrix_id ON DELETE SET NULL, as a generic plan.
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN (GENERIC_PLAN) UPDATE ONLY edges SET probability_matrix_id = NULL"
        " WHERE $1 OPERATOR(pg_catalog.=) probability_matrix_id").fetchall())
    assert "idx_edges_probability_matrix" in plan, plan


# ---------------------------------------------------------------- seed data (spec 2.5) and the upgrade


def test_seed_data_is_the_spec(conn: psycopg.Connection[Any]) -> None:
    kalshi = conn.execute("SELECT platform_type, display_name, base_url, websocket_url, api_version, auth_method,"
                          " status FROM platforms WHERE platform_id = 'kalshi'").fetchone()
    assert kalshi == ("trading", "Kalshi", "https://demo-api.kalshi.co", "wss://demo-api.kalshi.co/trade-api/ws/v2",
                      "v2", "rsa_pss", "active")
    n, low, high, mean, conferences = conn.execute(
        "SELECT count(*), min(current_elo_rating), max(current_elo_rating), avg(current_elo_rating),"
        " array_agg(DISTINCT conference ORDER BY conference) FROM teams WHERE sport = 'nfl'").fetchone()  # type: ignore[misc]
    assert (n, low, high, mean, conferences) == (32, D("1370"), D("1660"), D("1503.125"), ["AFC", "NFC"])
    ratings = dict(conn.execute("SELECT team_code, current_elo_rating FROM teams WHERE sport = 'nfl'").fetchall())
    assert (ratings["KC"], ratings["BUF"], ratings["SF"], ratings["CAR"]) == (1660, 1620, 1630, 1370)


def test_upgrade_of_a_database_holding_application_rows(pg_admin_url: str) -> None:
    from yoyo import get_backend, read_migrations
    from yoyo.migrations import MigrationList

    from precog.db.migrate import _yoyo_url
    from precog.forecast.registry import ensure_builtin_models

    name = f"precog_upgrade_0014_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(pg_admin_url, name)
    try:
        backend = get_backend(_yoyo_url(url))
        try:
            before = MigrationList([m for m in read_migrations(str(migrations_dir())) if m.id not in (MIGRATION, *AFTER)])
            with backend.lock():
                for migration in backend.to_apply(before):
                    backend.apply_one(migration)
        finally:
            backend.connection.close()
        with psycopg.connect(url) as conn:
            ensure_builtin_models(conn)  # shipped validation metrics
            for condition in EXIT_CONDITIONS:
                _exit_attempt(conn, condition)
            _order(conn, "exit-1", exit_condition="trailing_stop")
            _position(conn, D("-1"))
            method_id = _method(conn)
            conn.execute("UPDATE methods SET status = 'inactive', activated_at = now() - interval '2 days',"
                         " deactivated_at = now() - interval '1 day', win_rate = 0.5 WHERE method_id = %s",
                         (method_id,))
            conn.commit()
        assert migrate(url) == [MIGRATION, *AFTER]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM exit_attempts").fetchone() == (len(EXIT_CONDITIONS),)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
