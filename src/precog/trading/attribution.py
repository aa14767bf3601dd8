"""P&L attribution: every trade, position and exit carries method, strategy and model ids; these queries add
them up (by method, strategy, model, sport or day), list positions and trades, and summarise one run."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from precog.trading.breakers import SIMULATION_RUN

GROUPS: dict[str, tuple[str, str]] = {
    # by -> (label expression, join)
    "method": ("coalesce(me.method_name || ' ' || me.method_version, 'unattributed')",
               "LEFT JOIN methods me ON me.method_id = p.method_id"),
    "strategy": ("coalesce(s.strategy_name || ' ' || s.strategy_version, 'unattributed')",
                 "LEFT JOIN strategies s ON s.strategy_id = p.strategy_id"),
    "model": ("coalesce(m.model_name || ' ' || m.model_version, 'unattributed')",
              "LEFT JOIN probability_models m ON m.model_id = p.model_id"),
    "sport": ("coalesce(p.sport, 'unknown')", ""),
    # the calendar day of the exit (the entry while open) in the given time zone (the `tz` of `pnl_by`)
    "day": ("to_char(coalesce(p.exit_time, p.entry_time) AT TIME ZONE %s, 'YYYY-MM-DD')", ""),
}


def _run_filter(run_id: int | None) -> tuple[str, list[Any]]:
    if run_id is None:
        return "", []
    return " AND (p.position_metadata->>'run_id')::bigint = %s", [run_id]


def pnl_by(conn: psycopg.Connection[Any], by: str, *, run_id: int | None = None,
           mode: str | None = None, tz: str = "UTC") -> list[dict[str, Any]]:
    """P&L grouped `by` method, strategy, model, sport or day (a calendar day in time zone `tz`: the dashboard's
    "today" is a day of system.defaults.timezone)."""
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}, got {by!r}")
    label, join = GROUPS[by]
    where, params = _run_filter(run_id)
    if by == "day":
        params.insert(0, tz)
    if mode is not None:
        where += " AND p.mode = %s"
        params.append(mode)
    query = (
        f"SELECT {label} AS key, count(*) AS positions, "  # noqa: S608 - constant fragments only
        "count(*) FILTER (WHERE p.status <> 'open') AS closed, "
        "count(*) FILTER (WHERE p.status <> 'open' AND p.realized_pnl > 0) AS winners, "
        "coalesce(sum(p.realized_pnl), 0) AS realized_pnl, "
        "coalesce(sum(p.unrealized_pnl) FILTER (WHERE p.status = 'open'), 0) AS unrealized_pnl, "
        "coalesce(sum(p.fees), 0) AS fees "
        f"FROM positions p {join} WHERE p.row_current_ind{where} GROUP BY 1 ORDER BY 1")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(query), params)  # type: ignore[arg-type]
        return list(cur.fetchall())


def positions(conn: psycopg.Connection[Any], *, open_only: bool = False, run_id: int | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
    where, params = _run_filter(run_id)
    if open_only:
        where += " AND p.status = 'open'"
    query = ("SELECT p.position_id, p.market_id, p.side, p.status, p.quantity, p.initial_quantity, p.entry_price, "  # noqa: S608 - constant SQL fragments; values are parameters
             "p.current_price, p.realized_pnl, p.unrealized_pnl, p.fees, p.exit_reason, p.exit_priority, "
             "p.exit_price, p.mode, p.platform_id, p.sport, me.method_name, s.strategy_name, m.model_name, "
             "p.entry_time, p.exit_time, p.trailing_stop_state "
             "FROM positions p LEFT JOIN methods me ON me.method_id = p.method_id "
             "LEFT JOIN strategies s ON s.strategy_id = p.strategy_id "
             "LEFT JOIN probability_models m ON m.model_id = p.model_id "
             f"WHERE p.row_current_ind{where} ORDER BY p.position_id DESC LIMIT %s")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(query), [*params, limit])  # type: ignore[arg-type]
        return list(cur.fetchall())


def trades(conn: psycopg.Connection[Any], *, run_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    where = ""
    params: list[Any] = []
    if run_id is not None:
        where = " WHERE (t.trade_metadata->>'run_id')::bigint = %s"
        params.append(run_id)
    query = ("SELECT t.trade_id, t.execution_time, t.market_id, t.side, t.action, t.quantity, t.price, t.fees, "  # noqa: S608 - constant SQL fragments; values are parameters
             "t.is_taker, t.mode, t.position_id, t.trade_metadata->>'purpose' AS purpose, "
             "t.trade_metadata->>'exit_condition' AS exit_condition, me.method_name, s.strategy_name, m.model_name "
             "FROM trades t LEFT JOIN methods me ON me.method_id = t.method_id "
             "LEFT JOIN strategies s ON s.strategy_id = t.strategy_id "
             "LEFT JOIN probability_models m ON m.model_id = t.model_id"
             f"{where} ORDER BY t.trade_id DESC LIMIT %s")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(query), [*params, limit])  # type: ignore[arg-type]
        return list(cur.fetchall())


def exits_by_reason(conn: psycopg.Connection[Any], run_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT reason, priority, count(*) AS exits, sum(quantity) AS contracts, sum(realized_pnl) AS realized_pnl "
            "FROM (SELECT e.exit_condition AS reason, e.exit_priority AS priority, e.quantity_exited AS quantity, "
            "e.realized_pnl FROM position_exits e WHERE (e.exit_metadata->>'run_id')::bigint = %s "
            "UNION ALL SELECT 'settlement', '-', s.quantity, s.realized_pnl FROM settlements s "
            "JOIN positions p ON p.position_id = s.position_id AND p.row_current_ind "
            "WHERE (p.position_metadata->>'run_id')::bigint = %s AND s.quantity > 0) x "
            "GROUP BY reason, priority ORDER BY count(*) DESC, reason", (run_id, run_id))
        return list(cur.fetchall())


def run_report(conn: psycopg.Connection[Any], run_id: int) -> dict[str, Any]:
    started = conn.execute("SELECT started_at FROM engine_runs WHERE run_id = %s", (run_id,)).fetchone()
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT alert_type, severity, message FROM alerts WHERE triggered_at >= %s ORDER BY alert_id",
                    (started[0] if started else None,))
        alerts = list(cur.fetchall())
        # the run's own trips: noted `run N` by the engine, tagged by a simulated world's board
        cur.execute("SELECT breaker_type, action, trigger_value FROM circuit_breaker_events WHERE notes = %s "
                    "OR trigger_value->>%s = %s ORDER BY event_id", (f"run {run_id}", SIMULATION_RUN, str(run_id)))
        breakers = list(cur.fetchall())
        cur.execute("SELECT count(*) AS n, coalesce(sum(success::int), 0) AS filled FROM exit_attempts "
                    "WHERE (attempt_metadata->>'run_id')::bigint = %s", (run_id,))
        attempts = cur.fetchone()
    return {
        "by_method": pnl_by(conn, "method", run_id=run_id),
        "by_strategy": pnl_by(conn, "strategy", run_id=run_id),
        "by_model": pnl_by(conn, "model", run_id=run_id),
        "exits": exits_by_reason(conn, run_id),
        "exit_attempts": attempts,
        "alerts": alerts,
        "breaker_events": breakers,
    }
