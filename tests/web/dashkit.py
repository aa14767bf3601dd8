"""Test kit for the dashboard: realistic rows written with SQL, and a real uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import uvicorn
from psycopg.types.json import Jsonb

from precog.web.app import DashboardSettings, create_app
from precog.web.auth import DashboardToken

TOKEN = "test-dashboard-token-0123456789abcdef"
NY = ZoneInfo("America/New_York")


@dataclass
class Seeded:
    method_id: int
    model_id: int
    testing_model_id: int
    strategy_id: int
    open_position_id: int
    near_position_id: int
    closed_position_id: int
    settled_position_id: int
    alert_ids: dict[str, int]
    breaker_event_id: int
    market_ids: list[str]


def _one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _position(conn: psycopg.Connection[Any], versions: list[dict[str, Any]], base: dict[str, Any]) -> int:
    """Insert an SCD2 position history: one row per version, the last one current."""
    pid = _one(conn, "SELECT nextval('position_id_seq')")
    for i, v in enumerate(versions):
        row = {**base, **v}
        last = i == len(versions) - 1
        end = None if last else versions[i + 1]["created_at"]
        conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, event_id, sport, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, current_price, unrealized_pnl, unrealized_pnl_pct, realized_pnl,"
            " trailing_stop_state, exit_reason, exit_priority, exit_price, strategy_id, model_id, method_id,"
            " entry_time, exit_time, last_update, position_metadata, created_at, row_current_ind, row_end_ts)"
            " VALUES (%s, %s, 'local', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, %s)",
            (pid, row["market_id"], row.get("event_id"), row.get("sport", "nfl"), row["side"], row.get("mode", "paper"),
             row["entry_price"], row["quantity"], row["initial_quantity"], row.get("fees", Decimal("0")), row["status"],
             row.get("current_price"), row.get("unrealized_pnl"), row.get("unrealized_pnl_pct"),
             row.get("realized_pnl", Decimal("0")), Jsonb(row["trailing_stop_state"]) if row.get("trailing_stop_state")
             else None, row.get("exit_reason"), row.get("exit_priority"), row.get("exit_price"), row["strategy_id"],
             row["model_id"], row["method_id"], row["entry_time"], row.get("exit_time"), row["created_at"],
             Jsonb({"confidence": row.get("confidence", "medium"), "run_id": row.get("run_id")}), row["created_at"],
             last, end))
    return int(pid)


def seed(conn: psycopg.Connection[Any], now: datetime | None = None) -> Seeded:
    """A small but complete trading day: methods, markets, edges, open/closed/settled positions with their
    trades, exits and settlement, balances, alerts, an open breaker, health checks and feed status."""
    now = now or datetime.now(UTC)
    local_midnight = now.astimezone(NY).replace(hour=0, minute=0, second=0, microsecond=0)
    # Every "today" event falls between local midnight and now, whatever the time of day.
    span = now - local_midnight
    yesterday = local_midnight - timedelta(hours=6)
    this_morning = local_midnight + span * 0.3
    recent = max(local_midnight + span * 0.6, now - timedelta(minutes=10))

    strategy_id = _one(conn, "INSERT INTO strategies (strategy_name, strategy_version, config, status)"
                             " VALUES ('pre_game_entry', 'v1.0', %s, 'active') RETURNING strategy_id",
                       (Jsonb({"min_edge": "0.05"}),))
    model_id = _one(conn, "INSERT INTO probability_models (model_name, model_version, model_type, sport, config, status,"
                          " validation_brier, validation_sample_size) VALUES ('elo_nfl', 'v1.0', 'elo', 'nfl', %s,"
                          " 'active', 0.2134, 2500) RETURNING model_id", (Jsonb({"k_factor": "20"}),))
    testing_model_id = _one(conn, "INSERT INTO probability_models (model_name, model_version, model_type, sport, config,"
                                  " status, validation_sample_size) VALUES ('elo_nfl', 'v1.1', 'elo', 'nfl', %s,"
                                  " 'testing', 150) RETURNING model_id", (Jsonb({"k_factor": "24"}),))
    method_id = _one(conn, "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config,"
                           " risk_config, execution_config, sport_config, config_hash, status, capital_share,"
                           " paper_trades_count, paper_roi) VALUES ('moderate_nfl', 'v1.0', %s, %s, '{}', '{}', '{}',"
                           " '{\"nfl\": {\"enabled\": true}}', 'abc123', 'active', 0.7, 14, 0.0412) RETURNING method_id",
                     (strategy_id, model_id))

    conn.execute("INSERT INTO events (event_id, platform_id, external_id, category, title, status)"
                 " VALUES ('KXNFLGAME-25NOV30BUFKC', 'local', 'KXNFLGAME-25NOV30BUFKC', 'sports', 'Bills at Chiefs', 'live')")
    markets = ["KXNFLGAME-25NOV30BUFKC-KC", "KXNFLGAME-25NOV30BUFKC-BUF", "KXNFLGAME-25NOV30DALPHI-PHI",
               "KXNFLGAME-25NOV29NYJMIA-MIA"]
    titles = ["Chiefs beat the Bills", "Bills beat the Chiefs", "Eagles beat the Cowboys", "Dolphins beat the Jets"]
    for ticker, title, bid, ask, status in zip(markets, titles, ("0.61", "0.37", "0.55", "1.00"),
                                               ("0.63", "0.39", "0.57", "1.00"), ("open", "open", "open", "settled"),
                                               strict=True):
        conn.execute("INSERT INTO markets (market_id, platform_id, event_id, external_id, ticker, title, yes_bid, yes_ask,"
                     " status, close_time, created_at) VALUES (%s, 'local', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                     (ticker, "KXNFLGAME-25NOV30BUFKC" if "BUFKC" in ticker else None, ticker, ticker, title,
                      Decimal(bid), Decimal(ask), status, now + timedelta(hours=3), recent))

    run_uuid = uuid.uuid4()
    for i, (ticker, side, ev, p_true, p_mkt, conf, action) in enumerate((
            (markets[0], "yes", "0.0612", "0.7000", "0.6300", "high", "auto_execute"),
            (markets[1], "no", "0.0205", "0.6600", "0.6300", "medium", "alert"),
            (markets[2], "yes", "-0.0150", "0.5400", "0.5700", "low", "ignore"))):
        conn.execute("INSERT INTO edges (edge_key, market_id, side, strategy_id, model_id, method_id, expected_value,"
                     " true_win_probability, market_implied_probability, market_price, fee_per_contract,"
                     " confidence_level, recommended_action, calculation_run_id, created_at)"
                     " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0.0200, %s, %s, %s, %s)",
                     (f"{ticker}|{side}|{strategy_id}|{model_id}|{method_id}", ticker, side, strategy_id, model_id,
                      method_id, Decimal(ev), Decimal(p_true), Decimal(p_mkt), Decimal(p_mkt), conf, action, run_uuid,
                      recent - timedelta(seconds=i)))

    run_id = _one(conn, "INSERT INTO engine_runs (kind, mode, platform_id, environment, started_at)"
                        " VALUES ('run', 'paper', 'local', 'demo', %s) RETURNING run_id", (yesterday,))
    base = {"strategy_id": strategy_id, "model_id": model_id, "method_id": method_id, "run_id": run_id}

    # Open since yesterday: unrealized was -$1.00 at midnight, +$4.00 now -> today's unrealized change +$5.00.
    open_pid = _position(conn, [
        {"created_at": yesterday, "current_price": Decimal("0.5500"), "unrealized_pnl": Decimal("-1.0000"),
         "unrealized_pnl_pct": Decimal("-0.0175")},
        {"created_at": recent, "current_price": Decimal("0.6100"), "unrealized_pnl": Decimal("4.0000"),
         "unrealized_pnl_pct": Decimal("0.0702"),
         "trailing_stop_state": {"active": True, "peak_price": "0.6300", "current_stop_price": "0.5985",
                                 "current_distance": "0.05"}},
    ], {**base, "market_id": markets[0], "event_id": "KXNFLGAME-25NOV30BUFKC", "side": "yes",
        "entry_price": Decimal("0.5700"), "quantity": 100, "initial_quantity": 100, "fees": Decimal("1.7300"),
        "status": "open", "entry_time": yesterday, "confidence": "high"})
    # Opened this morning, now close to its stop loss (medium confidence: -12%).
    near_pid = _position(conn, [
        {"created_at": this_morning, "current_price": Decimal("0.4000"), "unrealized_pnl": Decimal("0"),
         "unrealized_pnl_pct": Decimal("0")},
        {"created_at": recent, "current_price": Decimal("0.3600"), "unrealized_pnl": Decimal("-2.0000"),
         "unrealized_pnl_pct": Decimal("-0.1000")},
    ], {**base, "market_id": markets[1], "side": "yes", "entry_price": Decimal("0.4000"), "quantity": 50,
        "initial_quantity": 50, "fees": Decimal("0.8500"), "status": "open", "entry_time": this_morning})
    # Closed today by the trailing stop: +$6.50 realized.
    closed_pid = _position(conn, [
        {"created_at": this_morning, "current_price": Decimal("0.5000"), "unrealized_pnl": Decimal("0")},
        {"created_at": recent, "status": "closed", "quantity": 0, "realized_pnl": Decimal("6.5000"),
         "exit_reason": "trailing_stop", "exit_priority": "HIGH", "exit_price": Decimal("0.5800"),
         "unrealized_pnl": Decimal("0"), "exit_time": recent},
    ], {**base, "market_id": markets[2], "side": "yes", "entry_price": Decimal("0.5000"), "quantity": 100,
        "initial_quantity": 100, "fees": Decimal("1.5000"), "status": "open", "entry_time": this_morning})
    # Settled yesterday: -$12.25 realized (not today's P&L).
    settled_pid = _position(conn, [
        {"created_at": yesterday - timedelta(hours=2), "current_price": Decimal("0.4500")},
        {"created_at": yesterday, "status": "settled", "quantity": 0, "realized_pnl": Decimal("-12.2500"),
         "exit_reason": "settlement", "exit_price": Decimal("0"), "unrealized_pnl": Decimal("0"),
         "exit_time": yesterday},
    ], {**base, "market_id": markets[3], "side": "no", "entry_price": Decimal("0.4500"), "quantity": 25,
        "initial_quantity": 25, "fees": Decimal("1.0000"), "status": "open",
        "entry_time": yesterday - timedelta(hours=2), "sport": "nfl"})

    for pid, ticker, side, action, price, qty, fee, at in (
            (open_pid, markets[0], "yes", "buy", "0.5700", 100, "1.7300", yesterday),
            (near_pid, markets[1], "yes", "buy", "0.4000", 50, "0.8500", this_morning),
            (closed_pid, markets[2], "yes", "buy", "0.5000", 100, "0.7500", this_morning),
            (closed_pid, markets[2], "yes", "sell", "0.5800", 100, "0.7500", recent),
            (settled_pid, markets[3], "no", "buy", "0.4500", 25, "1.0000", yesterday - timedelta(hours=2))):
        tid = _one(conn, "INSERT INTO trades (market_id, platform_id, position_id, strategy_id, model_id, method_id,"
                         " side, action, price, quantity, fees, mode, execution_time, trade_metadata, fill_id)"
                         " VALUES (%s, 'local', %s, %s, %s, %s, %s, %s, %s, %s, %s, 'paper', %s, %s, %s) RETURNING trade_id",
                   (ticker, pid, strategy_id, model_id, method_id, side, action, Decimal(price), qty, Decimal(fee), at,
                    Jsonb({"run_id": run_id, "purpose": "entry" if action == "buy" else "exit",
                           "exit_condition": "trailing_stop" if action == "sell" else None}), str(uuid.uuid4())))
        if action == "sell":
            conn.execute("INSERT INTO position_exits (position_id, exit_condition, exit_priority, quantity_exited,"
                         " exit_price, realized_pnl, exit_trade_id, created_at, exit_metadata)"
                         " VALUES (%s, 'trailing_stop', 'HIGH', 100, 0.5800, 6.5000, %s, %s, %s)",
                         (closed_pid, tid, recent, Jsonb({"run_id": run_id})))
    conn.execute("INSERT INTO settlements (market_id, platform_id, position_id, outcome, settlement_value, side, quantity,"
                 " payout, realized_pnl, mode, settlement_timestamp) VALUES (%s, 'local', %s, 'yes', 1, 'no', 25, 0,"
                 " -12.2500, 'paper', %s)", (markets[3], settled_pid, yesterday))

    for i, (bal, pv, at) in enumerate((("1000.0000", "0", yesterday - timedelta(hours=3)),
                                       ("955.0000", "33.7500", yesterday), ("963.2500", "48.5000", recent))):
        conn.execute("INSERT INTO account_balance (platform_id, mode, balance, portfolio_value, created_at,"
                     " row_current_ind, row_end_ts) VALUES ('local', 'paper', %s, %s, %s, %s, %s)",
                     (Decimal(bal), Decimal(pv), at, i == 2, None if i == 2 else
                      (yesterday if i == 0 else recent)))

    alert_ids = {}
    for key, atype, sev, comp, msg, ack in (
            ("api", "api_failure", "high", "kalshi_api", "Kalshi REST returned 503 three times", False),
            ("stale", "data_stale", "medium", "ingest", "ESPN scoreboard 95 s old", False),
            ("acked", "order_rejected", "medium", "executor", "order rejected: insufficient balance", True),
            ("crit", "circuit_breaker", "critical", "trading", "circuit breaker data_stale TRIPPED", False)):
        alert_ids[key] = _one(
            conn, "INSERT INTO alerts (alert_type, severity, component, message, triggered_at, acknowledged_at,"
                  " acknowledged_by, fingerprint, environment) VALUES (%s, %s, %s, %s, %s, %s, %s, md5(%s), 'demo')"
                  " RETURNING alert_id",
            (atype, sev, comp, msg, recent, recent + timedelta(minutes=1) if ack else None, "alice" if ack else None,
             f"{atype}:{comp}:{msg}"))
    breaker_event_id = _one(conn, "INSERT INTO circuit_breaker_events (breaker_type, triggered_at, trigger_value, action,"
                                  " environment, notes) VALUES ('data_stale', %s, %s, 'pause_entries', 'demo',"
                                  " 'ESPN data older than 60 s') RETURNING event_id",
                            (recent, Jsonb({"reason": "ESPN data 95 s old", "age_seconds": 95})))
    for comp, status in (("database", "healthy"), ("kalshi_api", "degraded"), ("trading_engine", "healthy")):
        conn.execute("INSERT INTO system_health (component, status, last_check, details) VALUES (%s, %s, %s, %s)",
                     (comp, status, now - timedelta(seconds=20), Jsonb({"latency_ms": 42})))
    conn.execute("INSERT INTO ingest_feed_status (feed, platform_id, mode, reliable_realtime, last_message_at,"
                 " last_success_at, messages) VALUES ('kalshi:ws', 'local', 'streaming', true, %s, %s, 1200),"
                 " ('espn:nfl', NULL, 'polling', false, %s, %s, 40)",
                 (now - timedelta(seconds=2), now - timedelta(seconds=2), now - timedelta(seconds=300),
                  now - timedelta(seconds=300)))
    conn.commit()
    return Seeded(method_id=method_id, model_id=model_id, testing_model_id=testing_model_id, strategy_id=strategy_id,
                  open_position_id=open_pid, near_position_id=near_pid, closed_position_id=closed_pid,
                  settled_position_id=settled_pid, alert_ids=alert_ids, breaker_event_id=breaker_event_id,
                  market_ids=markets)


def seed_approval(conn: psycopg.Connection[Any], seeded: Seeded, *, market: int = 0, side: str = "yes",
                  count: int = 10, limit: str = "0.6300", edge: str = "0.0612",
                  expires_in: timedelta = timedelta(minutes=10)) -> int:
    """A pending entry approval, written by the store the trading loop uses (precog.trading.approvals), as the
    loop holds an entry of the seeded method for a person's answer; its id."""
    from precog.trading.approvals import ApprovalStore, approval_key
    from precog.trading.executor import OrderIntent

    now = datetime.now(UTC)
    market_id = seeded.market_ids[market]
    decision = f"m{seeded.method_id}|{market_id}|{side}|buy|t={int(now.timestamp()) // 60}"
    intent = OrderIntent(market_id=market_id, side=side, action="buy", quantity=count, limit_price=Decimal(limit),
                         purpose="entry", decision_key=decision, method_id=seeded.method_id,
                         strategy_id=seeded.strategy_id, model_id=seeded.model_id, edge=Decimal(edge),
                         confidence="high", metadata={"sport": "nfl"})
    store = ApprovalStore(conn, platform_id="local", account_ref=None, mode="paper", environment="demo", run_id=None)
    row = store.add(key=approval_key("paper", None, decision), intent=intent,
                    client_order_id=f"pce-m{seeded.method_id}-{uuid.uuid4().hex}",
                    reserved_cost=Decimal(limit) * count, created_at=now, expires_at=now + expires_in)
    conn.commit()
    assert row is not None, "an outstanding approval for this method, market and side exists already"
    return row.approval_id


# ---------------------------------------------------------------- a real server on a free loopback port

@dataclass
class RunningDashboard:
    url: str
    token: str
    db_url: str
    server: uvicorn.Server


@contextmanager
def running_dashboard(db_url: str, *, token: str = TOKEN, poll_seconds: float = 0.3, mode: str | None = None,
                      settings: DashboardSettings | None = None) -> Iterator[RunningDashboard]:
    settings = settings or DashboardSettings.from_config(db_url, DashboardToken(token, "test"),
                                                         poll_seconds=poll_seconds, mode=mode)
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, access_log=False, log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield RunningDashboard(f"http://127.0.0.1:{port}", token, db_url, server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
