"""The database enforces Precog's rules: immutable versions, append-only tables, CHECKs, exact decimals."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from precog.db.migrate import MigrationError, migrate, migrations_dir, status


def _model(conn, name="elo_nfl", version="v1.0"):
    return conn.execute(
        "INSERT INTO probability_models (model_name, model_version, model_type, sport, config) "
        "VALUES (%s, %s, 'elo', 'nfl', '{\"k_factor\": 20}') RETURNING model_id", (name, version)).fetchone()[0]


def test_model_config_is_immutable_but_status_may_change(conn):
    model_id = _model(conn)
    conn.execute("UPDATE probability_models SET status = 'active' WHERE model_id = %s", (model_id,))
    with pytest.raises(psycopg.errors.RestrictViolation, match="immutable version"):
        conn.execute("UPDATE probability_models SET config = '{\"k_factor\": 30}' WHERE model_id = %s", (model_id,))
    conn.rollback()
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("UPDATE probability_models SET model_version = 'v1.1' WHERE model_id = %s", (_model(conn),))
    conn.rollback()


def test_strategy_and_method_configs_are_immutable(conn):
    sid = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, config) VALUES ('halftime_entry','v1.0','{}') "
                       "RETURNING strategy_id").fetchone()[0]
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("UPDATE strategies SET config = '{\"min_lead\": 7}' WHERE strategy_id = %s", (sid,))
    conn.rollback()
    sid = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, config) VALUES ('s','v1.0','{}') "
                       "RETURNING strategy_id").fetchone()[0]
    mid = _model(conn)
    meth = conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config, "
        "execution_config, sport_config, config_hash) VALUES ('m','v1.0',%s,%s,'{}','{}','{}','{}','abc') RETURNING method_id",
        (sid, mid)).fetchone()[0]
    conn.execute("UPDATE methods SET status = 'testing', paper_trades_count = 3 WHERE method_id = %s", (meth,))
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("UPDATE methods SET risk_config = '{\"kelly_fraction\": \"0.5\"}' WHERE method_id = %s", (meth,))
    conn.rollback()


def test_deprecated_is_final_and_no_version_returns_to_draft(conn):
    """The registries refuse these lifecycle moves; so does the database, for a hand-written UPDATE too."""
    model_id = _model(conn, "elo_final")
    sid = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, config) VALUES ('s_final','v1.0','{}') "
                       "RETURNING strategy_id").fetchone()[0]
    meth = conn.execute(
        "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, risk_config, "
        "execution_config, sport_config, config_hash) VALUES ('m_final','v1.0',%s,%s,'{}','{}','{}','{}','final') "
        "RETURNING method_id", (sid, model_id)).fetchone()[0]
    for table, key, row in (("methods", "method_id", meth), ("strategies", "strategy_id", sid),
                            ("probability_models", "model_id", model_id)):
        move = sql.SQL("UPDATE {} SET status = %s WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(key))
        conn.execute(move, ("testing", row))  # draft -> testing: fine
        with pytest.raises(psycopg.errors.RestrictViolation, match="never returns to draft"), conn.transaction():
            conn.execute(move, ("draft", row))
        conn.execute(move, ("deprecated", row))
        with pytest.raises(psycopg.errors.RestrictViolation, match="deprecated is final"), conn.transaction():
            conn.execute(move, ("active", row))
        read = sql.SQL("SELECT status FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(key))
        assert conn.execute(read, (row,)).fetchone() == ("deprecated",)


@pytest.mark.parametrize("table,insert", [
    ("trades", "INSERT INTO trades (market_id, platform_id, side, action, price, quantity) "
               "VALUES ('M', 'kalshi', 'yes', 'buy', 0.42, 10) RETURNING trade_id"),
    ("settlements", "INSERT INTO settlements (market_id, platform_id, outcome, settlement_value, payout) "
                    "VALUES ('M', 'kalshi', 'yes', 1, 10) RETURNING settlement_id"),
    ("position_exits", "INSERT INTO position_exits (position_id, exit_condition, exit_priority, quantity_exited, exit_price) "
                       "VALUES (1, 'stop_loss', 'CRITICAL', 5, 0.30) RETURNING exit_id"),
    ("exit_attempts", "INSERT INTO exit_attempts (position_id, order_type, quantity, attempt_number) "
                      "VALUES (1, 'limit', 5, 1) RETURNING attempt_id"),
])
def test_append_only_tables_reject_update_and_delete(conn, table, insert):
    row_id = conn.execute(insert).fetchone()[0]
    conn.commit()
    pk = {"trades": "trade_id", "settlements": "settlement_id", "position_exits": "exit_id",
          "exit_attempts": "attempt_id"}[table]
    for stmt in (f"UPDATE {table} SET created_at = now() WHERE {pk} = %s",  # noqa: S608 - test constants
                 f"DELETE FROM {table} WHERE {pk} = %s"):  # noqa: S608
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            conn.execute(stmt, (row_id,))
        conn.rollback()


def test_elo_history_is_append_only(conn):
    team = conn.execute("SELECT team_id FROM teams WHERE team_code = 'KC'").fetchone()[0]
    hid = conn.execute("INSERT INTO elo_rating_history (team_id, rating_before, rating_after, game_result, k_factor) "
                       "VALUES (%s, 1660, 1670, 'win', 20) RETURNING history_id", (team,)).fetchone()[0]
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("DELETE FROM elo_rating_history WHERE history_id = %s", (hid,))
    conn.rollback()


@pytest.mark.parametrize("stmt", [
    "INSERT INTO trades (market_id, platform_id, side, action, price, quantity) VALUES ('M','kalshi','buy','buy',0.5,1)",
    "INSERT INTO trades (market_id, platform_id, side, action, price, quantity) VALUES ('M','kalshi','yes','buy',1.5,1)",
    "INSERT INTO trades (market_id, platform_id, side, action, price, quantity) VALUES ('M','kalshi','yes','buy',0.5,0)",
    "INSERT INTO alerts (alert_type, severity, component, message) VALUES ('x', 'urgent', 'c', 'm')",
    "INSERT INTO circuit_breaker_events (breaker_type) VALUES ('made_up')",
    "INSERT INTO teams (team_code, team_name, sport) VALUES ('X', 'X', 'cricket')",
    "INSERT INTO probability_models (model_name, model_version, model_type, config) VALUES ('m', '1.0', 'elo', '{}')",
])
def test_check_constraints_reject_bad_values(conn, stmt):
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(stmt)
    conn.rollback()


def test_ncaaf_and_every_breaker_type_are_allowed(conn):
    conn.execute("INSERT INTO teams (team_code, team_name, sport) VALUES ('OSU', 'Ohio State', 'ncaaf')")
    for breaker in ("daily_loss_limit", "weekly_loss_limit", "consecutive_losses", "rapid_loss", "api_failures",
                    "data_quality", "db_failures", "edge_anomaly", "unusual_activity", "position_limit",
                    "order_rejections", "min_balance"):
        conn.execute("INSERT INTO circuit_breaker_events (breaker_type) VALUES (%s)", (breaker,))
    conn.commit()


def test_sql_injection_string_round_trips_as_data(conn):
    evil = "'; DROP TABLE markets; --"
    conn.execute("INSERT INTO markets (market_id, platform_id, external_id, ticker, title, status) "
                 "VALUES (%s, 'kalshi', %s, %s, %s, 'open')", (evil, evil, evil, evil))
    conn.commit()
    assert conn.execute("SELECT title FROM markets WHERE market_id = %s", (evil,)).fetchone()[0] == evil
    assert conn.execute("SELECT to_regclass('markets')").fetchone()[0] == "markets"


prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=4, allow_nan=False, allow_infinity=False)
money = st.decimals(min_value=Decimal("-9999999999.9999"), max_value=Decimal("9999999999.9999"), places=4,
                    allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=prices, pnl=money)
def test_decimal_round_trip_is_exact(conn, price, pnl):
    row = conn.execute("SELECT %s::numeric(10,4), %s::numeric(14,4)", (price, pnl)).fetchone()
    assert isinstance(row[0], Decimal) and row[0] == price and row[1] == pnl


def test_migrations_are_current_and_recorded(db_url):
    states = status(db_url)
    assert states and all(s.applied and s.checksum_ok for s in states)
    assert migrate(db_url) == []


def test_changed_migration_file_is_refused(db_url, conn):
    first = sorted(migrations_dir().glob("*.sql"))[0].stem
    conn.execute("UPDATE precog_migration_checksums SET sha256 = 'deadbeef' WHERE migration_id = %s", (first,))
    conn.commit()
    with pytest.raises(MigrationError, match=f"migration {first} was applied but its file has changed"):
        migrate(db_url)


def test_views_exist(conn):
    for view in ("current_markets", "current_game_states", "current_edges", "open_positions", "current_balances",
                 "active_strategies", "active_models", "active_methods", "trade_attribution",
                 "complete_trade_attribution", "method_performance", "positions_urgent_monitoring",
                 "exit_performance_summary", "stale_position_alerts", "active_trailing_stops"):
        conn.execute(f"SELECT * FROM {view} LIMIT 1")  # noqa: S608 - test constants
