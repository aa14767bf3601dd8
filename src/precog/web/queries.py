"""Read-only SQL behind the dashboard pages. Every value is a bound parameter; money stays Decimal.

`mode` (None = every mode) restricts positions, trades and P&L to paper, live or backtest rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.domain.market import exit_deadline
from precog.domain.money import ZERO, q4
from precog.trading import attribution
from precog.trading.approvals import list_approvals
from precog.trading.breakers import SIMULATION_RUN
from precog.trading.drawdown import DrawdownRule
from precog.trading.exits import ExitRules, next_stage_of, rules_for_method, seconds_to_time_exit
from precog.trading.var import Holding, VarRule, value_at_risk

# How close an exit trigger must be before the Positions page flags it (P&L percentage points / relative
# distance of the price to the trailing stop / seconds to the market's close).
NEAR_PNL_POINTS = Decimal("0.03")
NEAR_TRAILING_RELATIVE = Decimal("0.02")
NEAR_CLOSE_FACTOR = 2

PNL_DIMENSIONS = ("method", "strategy", "model", "sport")

# When an exit realized its P&L: the fill time of its exit trade (the engine's clock, also in simulated
# time), else when the exit row was written.
EXIT_TIME = "coalesce(t.execution_time, e.created_at)"


class QueryError(ValueError):
    """A filter value that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Freshness:
    max_price_age_seconds: int = 120
    max_game_state_age_seconds: int = 60
    max_feed_age_seconds: int = 120


def _rows(conn: psycopg.Connection[Any], query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)  # type: ignore[call-overload]
        return list(cur.fetchall())


def _one(conn: psycopg.Connection[Any], query: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


def _mode_clause(alias: str, mode: str | None) -> tuple[str, list[Any]]:
    if mode is None:
        return "", []
    return f" AND {alias}.mode = %s", [mode]


def _age(ts: datetime | None, now: datetime) -> float | None:
    return None if ts is None else max((now - ts).total_seconds(), 0.0)


# ---------------------------------------------------------------- trading state and breakers

def latest_run(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    return _one(conn, "SELECT run_id, kind, mode, platform_id, environment, trading_state, state_reason, started_at,"
                      " ended_at FROM engine_runs ORDER BY run_id DESC LIMIT 1")


def breakers(conn: psycopg.Connection[Any], *, open_only: bool, limit: int = 200) -> list[dict[str, Any]]:
    """Breaker events, newest first. The open ones are the account's: a simulated world's own trips (`precog demo`,
    `precog run --venue local`, tagged SIMULATION_RUN) halt only that simulation and are left out, as every
    breaker board leaves them out; the history shows them with their tag."""
    where = "WHERE resolved_at IS NULL AND NOT coalesce(trigger_value ? %s, false)" if open_only else ""
    params = (SIMULATION_RUN, limit) if open_only else (limit,)
    return _rows(conn, "SELECT event_id, breaker_type, triggered_at, resolved_at, trigger_value, action, auto_reset_at,"  # noqa: S608
                       " resolution_action, resolved_by, environment, notes FROM circuit_breaker_events "
                       f"{where} ORDER BY triggered_at DESC, event_id DESC LIMIT %s", params)


# ---------------------------------------------------------------- overview

def pnl_summary(conn: psycopg.Connection[Any], *, mode: str | None, day_start: datetime) -> dict[str, Any]:
    """Realized + unrealized P&L in total and since `day_start` (exact, from the SCD2 position history).

    Today's P&L = P&L realized since day_start (exits and settlements) + the change in unrealized P&L since
    day_start (now, minus what the positions open at day_start carried then)."""
    where, params = _mode_clause("p", mode)
    totals = _one(conn, "SELECT coalesce(sum(p.realized_pnl), 0) AS realized,"  # noqa: S608
                        " coalesce(sum(p.unrealized_pnl) FILTER (WHERE p.status = 'open'), 0) AS unrealized,"
                        " count(*) FILTER (WHERE p.status = 'open') AS open_positions,"
                        " count(*) FILTER (WHERE p.status <> 'open') AS closed_positions,"
                        " coalesce(sum(p.fees), 0) AS fees"
                        f" FROM positions p WHERE p.row_current_ind{where}", params)
    assert totals is not None
    exits = _one(conn, "SELECT coalesce(sum(e.realized_pnl), 0) AS v FROM position_exits e"  # noqa: S608
                       " JOIN positions p ON p.position_id = e.position_id AND p.row_current_ind"
                       " LEFT JOIN trades t ON t.trade_id = e.exit_trade_id"
                       f" WHERE {EXIT_TIME} >= %s{where}", [day_start, *params])
    settled = _one(conn, "SELECT coalesce(sum(s.realized_pnl), 0) AS v FROM settlements s"  # noqa: S608
                         f" WHERE s.settlement_timestamp >= %s{_mode_clause('s', mode)[0]}",
                   [day_start, *params])
    at_start = _one(conn, "SELECT coalesce(sum(p.unrealized_pnl), 0) AS v FROM positions p"  # noqa: S608
                          " WHERE p.status = 'open' AND p.created_at <= %s"
                          f" AND (p.row_end_ts IS NULL OR p.row_end_ts > %s){where}",
                    [day_start, day_start, *params])
    realized_today = (exits["v"] if exits else ZERO) + (settled["v"] if settled else ZERO)
    unrealized_change = totals["unrealized"] - (at_start["v"] if at_start else ZERO)
    return {
        "total": totals["realized"] + totals["unrealized"],
        "realized": totals["realized"],
        "unrealized": totals["unrealized"],
        "fees": totals["fees"],
        "today": realized_today + unrealized_change,
        "today_realized": realized_today,
        "today_unrealized_change": unrealized_change,
        "day_start": day_start,
        "open_positions": totals["open_positions"],
        "closed_positions": totals["closed_positions"],
    }


def balances(conn: psycopg.Connection[Any], *, mode: str | None) -> list[dict[str, Any]]:
    where, params = _mode_clause("b", mode)
    return _rows(conn, "SELECT b.platform_id, b.mode, b.balance, b.portfolio_value, b.currency, b.created_at AS as_of"  # noqa: S608
                       f" FROM current_balances b WHERE TRUE{where} ORDER BY b.platform_id, b.mode", params)


def risk(conn: psycopg.Connection[Any], *, mode: str | None, var_rule: VarRule, drawdown_rule: DrawdownRule,
         now: datetime) -> dict[str, Any]:
    """The open positions' value at risk to settlement (`precog.trading.var`, as the engine's alert computes it)
    against equity, and each account's drawdown from its peak over the alert's window."""
    where, params = _mode_clause("p", mode)
    rows = _rows(conn, "SELECT p.market_id, p.event_id, p.side, p.quantity,"  # noqa: S608
                       " coalesce(p.current_price, p.entry_price) AS mark FROM positions p"
                       f" WHERE p.row_current_ind AND p.status = 'open' AND p.mode <> 'backtest'{where}", params)
    holdings = [Holding(r["event_id"] or r["market_id"], r["market_id"], r["side"], int(r["quantity"]), r["mark"])
                for r in rows if r["quantity"] > 0]
    var = value_at_risk(holdings, var_rule.confidence)
    accounts: list[dict[str, Any]] = []
    total = ZERO
    for b in balances(conn, mode=mode):
        if b["mode"] == "backtest":
            continue
        equity = b["balance"] + (b["portfolio_value"] or ZERO)
        total += equity
        peak_row = _rows(conn, "SELECT max(balance + coalesce(portfolio_value, 0)) AS peak FROM account_balance"
                               " WHERE platform_id = %s AND mode = %s AND created_at >= %s",
                         [b["platform_id"], b["mode"], now - drawdown_rule.window])
        peak = max(peak_row[0]["peak"] or equity, equity)
        accounts.append({"platform_id": b["platform_id"], "mode": b["mode"], "equity": equity, "peak": peak,
                         "drawdown": q4((peak - equity) / peak) if peak > 0 else ZERO})
    return {"value_at_risk": var, "confidence": var_rule.confidence, "positions": len(holdings),
            "equity": total, "var_share": q4(var / total) if total > 0 else None,
            "max_var_pct": var_rule.max_share, "max_drawdown_pct": drawdown_rule.max_drawdown,
            "window_days": drawdown_rule.window.days, "accounts": accounts}


def feeds(conn: psycopg.Connection[Any], now: datetime, fresh: Freshness) -> list[dict[str, Any]]:
    """Freshness of every data source: ingestion feeds, market quotes per platform, game states per sport."""
    out: list[dict[str, Any]] = []
    for r in _rows(conn, "SELECT feed, platform_id, mode, reliable_realtime, last_message_at, last_success_at,"
                         " messages, quality_issues, updated_at FROM ingest_feed_status ORDER BY feed"):
        last = r["last_message_at"] or r["last_success_at"]
        age = _age(last, now)
        out.append({"feed": r["feed"], "kind": "ingest", "mode": r["mode"], "last_update": last, "age_seconds": age,
                    "messages": r["messages"], "quality_issues": r["quality_issues"],
                    "stale": r["mode"] == "down" or age is None or age > fresh.max_feed_age_seconds})
    for r in _rows(conn, "SELECT platform_id, max(created_at) AS last, count(*) FILTER (WHERE status = 'open') AS open"
                         " FROM markets WHERE row_current_ind GROUP BY platform_id ORDER BY platform_id"):
        age = _age(r["last"], now)
        out.append({"feed": f"markets:{r['platform_id']}", "kind": "markets", "mode": None, "last_update": r["last"],
                    "age_seconds": age, "messages": None, "quality_issues": None, "open_markets": r["open"],
                    "stale": r["open"] > 0 and (age is None or age > fresh.max_price_age_seconds)})
    for r in _rows(conn, "SELECT sport, max(coalesce(source_updated_at, created_at)) AS last,"
                         " count(*) FILTER (WHERE status IN ('live', 'halftime')) AS live"
                         " FROM game_states WHERE row_current_ind GROUP BY sport ORDER BY sport"):
        age = _age(r["last"], now)
        out.append({"feed": f"games:{r['sport']}", "kind": "games", "mode": None, "last_update": r["last"],
                    "age_seconds": age, "messages": None, "quality_issues": None, "live_games": r["live"],
                    "stale": r["live"] > 0 and (age is None or age > fresh.max_game_state_age_seconds)})
    return out


def health(conn: psycopg.Connection[Any], now: datetime) -> list[dict[str, Any]]:
    rows = _rows(conn, "SELECT DISTINCT ON (component) component, status, last_check, details FROM system_health"
                       " ORDER BY component, last_check DESC")
    for r in rows:
        r["age_seconds"] = _age(r["last_check"], now)
    return rows


def alert_counts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = _one(conn, "SELECT count(*) FILTER (WHERE acknowledged_at IS NULL) AS unacknowledged, count(*) AS unresolved,"
                     " count(*) FILTER (WHERE severity = 'critical') AS critical"
                     " FROM alerts WHERE resolved_at IS NULL AND NOT suppressed")
    return row or {"unacknowledged": 0, "unresolved": 0, "critical": 0}


# ---------------------------------------------------------------- positions

_POSITION_COLUMNS = (
    "p.position_id, p.market_id, mk.title AS market_title, p.side, p.status, p.mode, p.platform_id, p.sport,"
    " p.event_id, p.entry_price, p.current_price, p.quantity, p.initial_quantity, p.fees, p.unrealized_pnl,"
    " p.unrealized_pnl_pct, p.realized_pnl, p.trailing_stop_state, p.exit_reason, p.exit_priority, p.exit_price,"
    " p.entry_time, p.exit_time, p.last_update, p.position_metadata->>'confidence' AS confidence,"
    " coalesce(p.position_metadata->'executed_stages' @> '[\"hedge\"]'::jsonb, false) AS hedged,"
    " p.position_metadata->'executed_stages' AS executed_stages, p.position_metadata->'stage_sold' AS stage_sold,"
    " mk.close_time, mk.metadata->>'expected_expiration_time' AS expected_expiration_time, mk.yes_bid, mk.yes_ask,"
    " mk.status AS market_status,"
    " p.method_id, me.method_name, me.method_version, p.strategy_id, s.strategy_name, s.strategy_version,"
    " p.model_id, mo.model_name, mo.model_version"
)
_POSITION_JOINS = (
    " LEFT JOIN current_markets mk ON mk.market_id = p.market_id"
    " LEFT JOIN methods me ON me.method_id = p.method_id"
    " LEFT JOIN strategies s ON s.strategy_id = p.strategy_id"
    " LEFT JOIN probability_models mo ON mo.model_id = p.model_id"
)


def _exit_deadline(pos: dict[str, Any]) -> datetime | None:
    """The time_based_urgent deadline as the engine's monitor counts it (`Market.exit_deadline`), from the row:
    Kalshi's expected_expiration_time is kept in the market's metadata as ISO text."""
    text = pos.get("expected_expiration_time")
    try:
        settles = datetime.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        settles = None
    if settles is not None and settles.tzinfo is None:
        settles = None  # not a time the ingest wrote: fall back to the close
    return exit_deadline(settles, pos.get("close_time"))


def exit_triggers(pos: dict[str, Any], rules: ExitRules, now: datetime) -> list[dict[str, Any]]:
    """Distance of an open position to each price/time exit trigger, flagged `near` when close."""
    out: list[dict[str, Any]] = []
    entry: Decimal = pos["entry_price"]
    price: Decimal | None = pos["current_price"]
    confidence = pos.get("confidence") or "medium"
    pnl_pct = (price - entry) / entry if price is not None and entry > 0 else None
    stop = rules.stop_loss.get(confidence)
    if stop is not None:
        dist = None if pnl_pct is None else pnl_pct - stop
        out.append({"trigger": "stop_loss", "threshold": stop, "distance": dist,
                    "near": dist is not None and dist <= NEAR_PNL_POINTS})
    if rules.partial_enabled:  # the engine then takes profit by the partial stages, never by the profit target
        executed = frozenset(str(n) for n in pos.get("executed_stages") or ())
        sold = {str(k): int(v) for k, v in (pos.get("stage_sold") or {}).items()}
        stage = next_stage_of(rules, int(pos.get("initial_quantity") or pos.get("quantity") or 0), executed, sold)
        if stage is not None:
            dist = None if pnl_pct is None else stage.profit_threshold - pnl_pct
            out.append({"trigger": "partial_exit_target", "stage": stage.name, "threshold": stage.profit_threshold,
                        "distance": dist, "near": dist is not None and dist <= NEAR_PNL_POINTS})
    else:
        target = rules.profit_target.get(confidence)
        if target is not None:
            dist = None if pnl_pct is None else target - pnl_pct
            out.append({"trigger": "profit_target", "threshold": target, "distance": dist,
                        "near": dist is not None and dist <= NEAR_PNL_POINTS})
    ts = pos.get("trailing_stop_state") or {}
    if ts.get("active") and ts.get("current_stop_price") is not None and price is not None and price > 0:
        stop_px = Decimal(str(ts["current_stop_price"]))
        dist = (price - stop_px) / price
        out.append({"trigger": "trailing_stop", "threshold": stop_px, "distance": dist,
                    "near": dist <= NEAR_TRAILING_RELATIVE})
    hedge = rules.hedge
    if hedge.enabled and not pos.get("hedged"):  # spec 5.11: once per position, on the gain at the bid
        dist = None if pnl_pct is None else hedge.unrealized_gain_pct - pnl_pct
        out.append({"trigger": "hedge", "threshold": hedge.unrealized_gain_pct, "distance": dist,
                    "near": dist is not None and dist <= NEAR_PNL_POINTS})
    secs = seconds_to_time_exit(_exit_deadline(pos), pos.get("entry_time"), now, rules)
    if secs is not None:
        out.append({"trigger": "time_based_urgent", "threshold": rules.time_based_urgent_seconds,
                    "distance": Decimal(int(secs)),
                    "near": secs <= rules.time_based_urgent_seconds * NEAR_CLOSE_FACTOR})
    return out


def open_positions(conn: psycopg.Connection[Any], *, mode: str | None, rules: ExitRules,
                   now: datetime) -> list[dict[str, Any]]:
    where, params = _mode_clause("p", mode)
    rows = _rows(conn, f"SELECT {_POSITION_COLUMNS} FROM positions p{_POSITION_JOINS}"  # noqa: S608
                       f" WHERE p.row_current_ind AND p.status = 'open'{where} ORDER BY p.entry_time DESC", params)
    # each position against its own method's exit rules, as the engine manages it (the global ones otherwise)
    own: dict[int, ExitRules] = {}
    method_ids = sorted({r["method_id"] for r in rows if r["method_id"] is not None})
    if method_ids:
        for method_id, pm in conn.execute("SELECT method_id, position_mgmt_config FROM methods "
                                          "WHERE method_id = ANY(%s)", (method_ids,)).fetchall():
            if pm:
                own[method_id] = rules_for_method(rules, dict(pm))
    for r in rows:
        r["triggers"] = exit_triggers(r, own.get(r["method_id"], rules), now)
        r["near_exit"] = any(t["near"] for t in r["triggers"])
    return rows


def closed_positions(conn: psycopg.Connection[Any], *, mode: str | None, limit: int = 200) -> list[dict[str, Any]]:
    where, params = _mode_clause("p", mode)
    return _rows(conn, f"SELECT {_POSITION_COLUMNS} FROM positions p{_POSITION_JOINS}"  # noqa: S608
                       f" WHERE p.row_current_ind AND p.status <> 'open'{where}"
                       " ORDER BY p.exit_time DESC NULLS LAST, p.position_id DESC LIMIT %s", [*params, limit])


# ---------------------------------------------------------------- edges

EDGE_SORTS = {"ev": "e.expected_value DESC", "newest": "e.created_at DESC", "market": "e.market_id ASC"}
CONFIDENCES = ("high", "medium", "low")
ACTIONS = ("auto_execute", "alert", "ignore")


def _decimal_filter(name: str, text: str | None, low: Decimal, high: Decimal) -> Decimal | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = Decimal(text.strip())
    except ArithmeticError as exc:
        raise QueryError(f"{name} must be a number between {low} and {high}, got {text[:40]!r}") from exc
    if not value.is_finite() or not low <= value <= high:
        raise QueryError(f"{name} must be a number between {low} and {high}, got {text[:40]!r}")
    return value


def edges(conn: psycopg.Connection[Any], *, market: str | None = None, side: str | None = None,
          min_ev: str | None = None, confidence: str | None = None, action: str | None = None,
          method: str | None = None, sort: str = "ev", limit: int = 300) -> list[dict[str, Any]]:
    """The current scan (current_edges), filtered. Text filters are matched as literal substrings."""
    where: list[str] = []
    params: list[Any] = []
    if market and market.strip():
        where.append("(e.market_id ILIKE %s ESCAPE '\\' OR mk.title ILIKE %s ESCAPE '\\')")
        pattern = "%" + _like_escape(market.strip()[:150]) + "%"
        params += [pattern, pattern]
    if side:
        if side not in ("yes", "no"):
            raise QueryError(f"side must be yes or no, got {side[:40]!r}")
        where.append("e.side = %s")
        params.append(side)
    ev = _decimal_filter("min_ev", min_ev, Decimal(-1), Decimal(1))
    if ev is not None:
        where.append("e.expected_value >= %s")
        params.append(ev)
    if confidence:
        if confidence not in CONFIDENCES:
            raise QueryError(f"confidence must be one of {', '.join(CONFIDENCES)}, got {confidence[:40]!r}")
        where.append("e.confidence_level = %s")
        params.append(confidence)
    if action:
        if action not in ACTIONS:
            raise QueryError(f"action must be one of {', '.join(ACTIONS)}, got {action[:40]!r}")
        where.append("e.recommended_action = %s")
        params.append(action)
    if method and method.strip():
        where.append("(me.method_name || ' ' || me.method_version) ILIKE %s ESCAPE '\\'")
        params.append("%" + _like_escape(method.strip()[:120]) + "%")
    if sort not in EDGE_SORTS:
        raise QueryError(f"sort must be one of {', '.join(EDGE_SORTS)}, got {sort[:40]!r}")
    clause = (" AND " + " AND ".join(where)) if where else ""
    params.append(max(1, min(limit, 2000)))
    return _rows(conn, "SELECT e.id, e.market_id, mk.title AS market_title, e.side, e.expected_value, e.ev_pct,"  # noqa: S608
                       " e.true_win_probability, e.market_implied_probability, e.market_price, e.fee_per_contract,"
                       " e.slippage, e.confidence_level, e.recommended_action, e.created_at,"
                       " me.method_name, me.method_version, s.strategy_name, s.strategy_version,"
                       " mo.model_name, mo.model_version"
                       " FROM current_edges e LEFT JOIN current_markets mk ON mk.market_id = e.market_id"
                       " LEFT JOIN methods me ON me.method_id = e.method_id"
                       " LEFT JOIN strategies s ON s.strategy_id = e.strategy_id"
                       " LEFT JOIN probability_models mo ON mo.model_id = e.model_id"
                       f" WHERE TRUE{clause} ORDER BY {EDGE_SORTS[sort]}, e.id DESC LIMIT %s", params)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------- trades and P&L

def trades(conn: psycopg.Connection[Any], *, mode: str | None, limit: int = 200) -> list[dict[str, Any]]:
    where, params = _mode_clause("t", mode)
    return _rows(conn, "SELECT t.trade_id, t.execution_time, t.market_id, t.side, t.action, t.quantity, t.price,"  # noqa: S608
                       " t.fees, t.is_taker, t.mode, t.position_id, t.edge_at_execution,"
                       " t.trade_metadata->>'purpose' AS purpose, t.trade_metadata->>'exit_condition' AS exit_condition,"
                       " me.method_name, me.method_version, s.strategy_name, mo.model_name, p.sport"
                       " FROM trades t LEFT JOIN methods me ON me.method_id = t.method_id"
                       " LEFT JOIN strategies s ON s.strategy_id = t.strategy_id"
                       " LEFT JOIN probability_models mo ON mo.model_id = t.model_id"
                       " LEFT JOIN positions p ON p.position_id = t.position_id AND p.row_current_ind"
                       f" WHERE TRUE{where} ORDER BY t.execution_time DESC, t.trade_id DESC LIMIT %s",
                 [*params, max(1, min(limit, 2000))])


def realized_curve(conn: psycopg.Connection[Any], *, mode: str | None, limit: int = 5000) -> list[dict[str, Any]]:
    """Cumulative realized P&L after each exit or settlement, oldest first, one point per instant: the latest
    `limit` results, each point still counting every result before it."""
    where, params = _mode_clause("p", mode)
    s_where, s_params = _mode_clause("s", mode)
    results = ("SELECT at, pnl FROM ("  # noqa: S608
               f" SELECT {EXIT_TIME} AS at, e.realized_pnl AS pnl FROM position_exits e"
               " JOIN positions p ON p.position_id = e.position_id AND p.row_current_ind"
               " LEFT JOIN trades t ON t.trade_id = e.exit_trade_id"
               f" WHERE e.realized_pnl IS NOT NULL{where}"
               " UNION ALL SELECT s.settlement_timestamp, s.realized_pnl FROM settlements s"
               f" WHERE s.realized_pnl IS NOT NULL{s_where}) x")
    rows = _rows(conn, "SELECT at, pnl, sum(pnl) OVER (ORDER BY at) AS cumulative"  # noqa: S608
                       f" FROM ({results}) r ORDER BY at DESC LIMIT %s", [*params, *s_params, limit])
    out: list[dict[str, Any]] = []
    for r in reversed(rows):
        if out and out[-1]["at"] == r["at"]:  # one point per instant: the window already counts all its results
            out[-1]["cumulative"] = r["cumulative"]
        else:
            out.append({"at": r["at"], "cumulative": r["cumulative"]})
    return out


def equity_curve(conn: psycopg.Connection[Any], *, mode: str | None, limit: int = 5000) -> list[dict[str, Any]]:
    """Account equity (cash + portfolio value, summed over accounts) at each of the latest `limit`
    account_balance versions (every account counted with its version as of that point)."""
    where, params = _mode_clause("b", mode)
    rows = _rows(conn, "SELECT b.id, b.platform_id, b.mode, b.balance, b.portfolio_value, b.created_at"  # noqa: S608
                       f" FROM account_balance b WHERE TRUE{where} ORDER BY b.created_at DESC, b.id DESC LIMIT %s",
                 [*params, limit])
    rows.reverse()
    latest: dict[tuple[str, str], Decimal] = {}
    if rows:  # the accounts' versions in force when the shown stretch begins
        first = rows[0]
        for r in _rows(conn, "SELECT DISTINCT ON (b.platform_id, b.mode) b.platform_id, b.mode, b.balance,"  # noqa: S608
                             " b.portfolio_value FROM account_balance b"
                             f" WHERE (b.created_at, b.id) < (%s, %s){where}"
                             " ORDER BY b.platform_id, b.mode, b.created_at DESC, b.id DESC",
                       [first["created_at"], first["id"], *params]):
            latest[(r["platform_id"], r["mode"])] = r["balance"] + (r["portfolio_value"] or ZERO)
    out: list[dict[str, Any]] = []
    for r in rows:
        latest[(r["platform_id"], r["mode"])] = r["balance"] + (r["portfolio_value"] or ZERO)
        point = {"at": r["created_at"], "equity": sum(latest.values(), ZERO)}
        if out and out[-1]["at"] == point["at"]:
            out[-1] = point
        else:
            out.append(point)
    return out


def pnl_breakdown(conn: psycopg.Connection[Any], *, mode: str | None) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for dim in PNL_DIMENSIONS:
        rows = attribution.pnl_by(conn, dim, mode=mode)
        for r in rows:
            r["total_pnl"] = r["realized_pnl"] + r["unrealized_pnl"]
        out[dim] = rows
    return out


# ---------------------------------------------------------------- methods, strategies, models

def methods(conn: psycopg.Connection[Any], *, mode: str | None = None) -> list[dict[str, Any]]:
    """Methods with their versions and, like every money figure of the dashboard, the positions and realized P&L
    of the dashboard's mode only (method_performance would add up every mode, backtests included). Realized P&L
    counts every position's, partial exits of open ones included: the figure of `precog pnl --by method`."""
    where, params = _mode_clause("p", mode)
    return _rows(conn, "SELECT me.method_id, me.method_name, me.method_version, me.status, me.capital_share,"  # noqa: S608
                       " me.activated_at, me.deactivated_at, me.paper_trades_count, me.live_trades_count, me.paper_roi,"
                       " me.live_roi, me.win_rate, me.total_trades, me.config_hash, me.description,"
                       " s.strategy_name, s.strategy_version, mo.model_name, mo.model_version,"
                       " count(p.position_id) FILTER (WHERE p.status IN ('closed', 'settled')) AS closed_positions,"
                       " coalesce(sum(p.realized_pnl), 0) AS realized_pnl,"
                       " count(p.position_id) FILTER (WHERE p.status IN ('closed', 'settled') AND p.realized_pnl > 0)"
                       " AS winning_positions,"
                       " count(p.position_id) FILTER (WHERE p.status = 'open') AS open_positions"
                       " FROM methods me JOIN strategies s ON s.strategy_id = me.strategy_id"
                       " JOIN probability_models mo ON mo.model_id = me.model_id"
                       f" LEFT JOIN positions p ON p.method_id = me.method_id AND p.row_current_ind{where}"
                       " GROUP BY me.method_id, s.strategy_id, mo.model_id"
                       " ORDER BY me.method_name, me.method_version", params)


def strategies(conn: psycopg.Connection[Any], *, mode: str | None = None) -> list[dict[str, Any]]:
    where, params = _mode_clause("p", mode)
    return _rows(conn, "SELECT s.strategy_id, s.strategy_name, s.strategy_version, s.strategy_type, s.sport, s.status,"  # noqa: S608
                       " s.paper_roi, s.live_roi, s.paper_trades_count, s.live_trades_count, s.activated_at,"
                       " s.description, coalesce(sum(p.realized_pnl), 0) AS realized_pnl,"
                       " count(p.position_id) FILTER (WHERE p.status <> 'open') AS closed_positions"
                       " FROM strategies s LEFT JOIN positions p ON p.strategy_id = s.strategy_id AND p.row_current_ind"
                       f"{where} GROUP BY s.strategy_id ORDER BY s.strategy_name, s.strategy_version", params)


def models(conn: psycopg.Connection[Any], *, mode: str | None = None) -> list[dict[str, Any]]:
    where, params = _mode_clause("p", mode)
    return _rows(conn, "SELECT mo.model_id, mo.model_name, mo.model_version, mo.model_type, mo.sport, mo.status,"  # noqa: S608
                       " mo.validation_brier, mo.validation_accuracy, mo.validation_sample_size, mo.activated_at,"
                       " mo.description, coalesce(sum(p.realized_pnl), 0) AS realized_pnl,"
                       " count(p.position_id) FILTER (WHERE p.status <> 'open') AS closed_positions"
                       " FROM probability_models mo LEFT JOIN positions p ON p.model_id = mo.model_id"
                       f" AND p.row_current_ind{where} GROUP BY mo.model_id ORDER BY mo.model_name, mo.model_version",
                 params)


# ---------------------------------------------------------------- alerts

ALERT_STATES = ("open", "triggered", "acknowledged", "resolved", "all")
SEVERITIES = ("critical", "high", "medium", "low")


def alerts(conn: psycopg.Connection[Any], *, state: str = "open", severity: str | None = None,
           limit: int = 300) -> list[dict[str, Any]]:
    where = ["NOT a.suppressed"]
    params: list[Any] = []
    if state not in ALERT_STATES:
        raise QueryError(f"state must be one of {', '.join(ALERT_STATES)}, got {state[:40]!r}")
    where.append({"open": "a.resolved_at IS NULL",
                  "triggered": "a.resolved_at IS NULL AND a.acknowledged_at IS NULL",
                  "acknowledged": "a.resolved_at IS NULL AND a.acknowledged_at IS NOT NULL",
                  "resolved": "a.resolved_at IS NOT NULL", "all": "TRUE"}[state])
    if severity:
        if severity not in SEVERITIES:
            raise QueryError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity[:40]!r}")
        where.append("a.severity = %s")
        params.append(severity)
    params.append(max(1, min(limit, 2000)))
    rows = _rows(conn, "SELECT a.alert_id, a.alert_type, a.severity, a.category, a.component, a.message, a.triggered_at,"  # noqa: S608
                       " a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.resolved_by, a.resolution_action,"
                       " a.duplicate_count, a.last_seen_at, a.silence_id, si.ends_at AS silenced_until"
                       " FROM alerts a LEFT JOIN alert_silences si ON si.silence_id = a.silence_id"
                       f" WHERE {' AND '.join(where)} ORDER BY a.triggered_at DESC, a.alert_id DESC LIMIT %s",
                 params)
    for r in rows:
        r["state"] = ("resolved" if r["resolved_at"] else "acknowledged" if r["acknowledged_at"] else "triggered")
    return rows


def silences(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return _rows(conn, "SELECT silence_id, match_alert_type, match_component, match_severity, starts_at, ends_at,"
                       " created_by, comment FROM alert_silences WHERE expired_at IS NULL AND ends_at > now()"
                       " ORDER BY ends_at DESC")


# ---------------------------------------------------------------- entry approvals (ADR-009)

def approval_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Entries waiting for a person (pending) and approved ones the loop has not sent yet; every mode (an entry
    waiting for an answer is never hidden by the dashboard's --mode)."""
    row = _one(conn, "SELECT count(*) FILTER (WHERE status = 'pending') AS pending,"
                     " count(*) FILTER (WHERE status = 'approved') AS approved"
                     " FROM entry_approvals WHERE status IN ('pending', 'approved')")
    return {"pending": int(row["pending"]), "approved": int(row["approved"])} if row else {"pending": 0, "approved": 0}


def approvals(conn: psycopg.Connection[Any], *, everything: bool, limit: int = 200) -> list[dict[str, Any]]:
    """The rows `precog approvals list [--all]` shows (the store's own read), with the method's name."""
    rows = list_approvals(conn, everything=everything, limit=max(1, min(limit, 500)))
    ids = sorted({r["method_id"] for r in rows if r["method_id"] is not None})
    names = {m["method_id"]: m for m in _rows(conn, "SELECT method_id, method_name, method_version FROM methods"
                                                    " WHERE method_id = ANY(%s)", (ids,))} if ids else {}
    for r in rows:
        method = names.get(r["method_id"]) or {}
        r["method_name"], r["method_version"] = method.get("method_name"), method.get("method_version")
    return rows


# ---------------------------------------------------------------- change detection for live updates

# Every marker is read through an index (primary keys, partial indexes of open rows) or from a small table,
# so the poll stays cheap however long the history grows. Acknowledging/resolving an alert changes the
# counts of open / unacknowledged originals. Entry approvals: the outstanding rows only (the partial index of
# pending/approved), and the loop's note on why an approved one is not sent yet.
CHANGE_SQL = """
SELECT
  (SELECT coalesce(max(id), 0) FROM positions) AS positions,
  (SELECT coalesce(max(trade_id), 0) FROM trades) AS trades,
  (SELECT coalesce(max(exit_id), 0) FROM position_exits) AS exits,
  (SELECT coalesce(max(settlement_id), 0) FROM settlements) AS settlements,
  (SELECT coalesce(max(id), 0) FROM edges) AS edges,
  (SELECT count(*) FROM edges WHERE row_current_ind) AS edges_current,
  (SELECT coalesce(max(id), 0) FROM account_balance) AS balances,
  (SELECT coalesce(max(alert_id), 0) FROM alerts) AS alerts,
  (SELECT count(*) || ':' || count(*) FILTER (WHERE acknowledged_at IS NULL) FROM alerts
     WHERE resolved_at IS NULL AND NOT suppressed) AS alerts_open,
  (SELECT coalesce(max(silence_id), 0) || ':' || count(*) FILTER (WHERE expired_at IS NULL AND ends_at > now())
     FROM alert_silences) AS silences,
  (SELECT coalesce(max(event_id), 0) || ':' || count(*) FILTER (WHERE resolved_at IS NULL)
     FROM circuit_breaker_events) AS breakers,
  (SELECT coalesce(max(run_id), 0) || ':' || coalesce(string_agg(trading_state || coalesce(ended_at::text, ''), ','), '')
     FROM (SELECT run_id, trading_state, ended_at FROM engine_runs ORDER BY run_id DESC LIMIT 5) r) AS runs,
  (SELECT coalesce(max(id), 0) FROM trading_state_history) AS trading_state,
  (SELECT coalesce(max(health_id), 0) FROM system_health) AS health,
  (SELECT coalesce(max(updated_at)::text, '') FROM ingest_feed_status) AS feeds,
  (SELECT coalesce(max(id), 0) FROM markets) AS markets,
  (SELECT coalesce(max(id), 0) FROM game_states) AS games,
  (SELECT coalesce(max(updated_at)::text, '') || (SELECT coalesce(max(updated_at)::text, '') FROM strategies)
     || (SELECT coalesce(max(updated_at)::text, '') FROM probability_models) || count(*) FROM methods) AS lifecycle,
  (SELECT coalesce(max(approval_id), 0) FROM entry_approvals)
     || (SELECT ':' || count(*) FILTER (WHERE status = 'pending') || ':' || count(*) FILTER (WHERE status = 'approved')
         || ':' || coalesce(md5(string_agg(coalesce(not_sent_reason, ''), ',' ORDER BY approval_id)), '')
         FROM entry_approvals WHERE status IN ('pending', 'approved')) AS approvals
"""

# Which page topics each change-detection column touches.
TOPICS_OF: dict[str, tuple[str, ...]] = {
    "positions": ("positions", "overview", "pnl", "methods"),
    "trades": ("trades", "pnl"),
    "exits": ("positions", "pnl", "overview"),
    "settlements": ("positions", "pnl", "overview"),
    "edges": ("edges",),
    "edges_current": ("edges",),
    "balances": ("overview", "pnl"),
    "alerts": ("alerts", "overview"),
    "alerts_open": ("alerts", "overview"),
    "silences": ("alerts",),
    "breakers": ("overview", "controls"),
    "runs": ("overview", "controls"),
    "trading_state": ("overview", "controls"),
    "health": ("overview",),
    "feeds": ("overview",),
    "markets": ("overview", "positions"),
    "games": ("overview",),
    "lifecycle": ("methods",),
    "approvals": ("approvals", "overview"),
}


def change_markers(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = _one(conn, CHANGE_SQL)
    assert row is not None
    return {k: str(v) for k, v in row.items()}


def day_start(now: datetime, tz: Any) -> datetime:
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start if start <= local else start - timedelta(days=1)
