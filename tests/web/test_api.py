"""The dashboard's HTTP API against a real server and a real (seeded) PostgreSQL: what each page reads, the
token rule on every write, filters that treat hostile input as data, and live updates over SSE."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from web.dashkit import RunningDashboard, Seeded, running_dashboard

WRITES: list[tuple[str, dict[str, Any]]] = [
    ("/api/alerts/{api}/acknowledge", {}),
    ("/api/alerts/{acked}/resolve", {"action": "fixed"}),
    ("/api/alerts/{api}/silence", {"duration": "1h", "comment": "known outage"}),
    ("/api/trading/halt", {"reason": "maintenance"}),
    ("/api/trading/resume", {"notes": "done"}),
    ("/api/breakers/data_stale/reset", {"notes": "feed fixed"}),
    ("/api/models/{testing_model}/transition", {"target": "active"}),
    ("/api/methods/{method}/transition", {"target": "deprecated"}),
]


def _path(template: str, s: Seeded) -> str:
    return template.format(api=s.alert_ids["api"], acked=s.alert_ids["acked"], testing_model=s.testing_model_id,
                           method=s.method_id)


def _snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything a write endpoint could change."""
    conn.rollback()
    q = {
        "alerts": "SELECT alert_id, acknowledged_at, resolved_at FROM alerts ORDER BY alert_id",
        "silences": "SELECT count(*) FROM alert_silences",
        "breakers": "SELECT event_id, resolved_at FROM circuit_breaker_events ORDER BY event_id",
        "state": "SELECT count(*) FROM trading_state_history",
        "models": "SELECT model_id, status FROM probability_models ORDER BY model_id",
        "methods": "SELECT method_id, status FROM methods ORDER BY method_id",
    }
    out = {k: conn.execute(v).fetchall() for k, v in q.items()}
    conn.rollback()
    return out


def _dec(value: str) -> Decimal:
    return Decimal(value)


# ---------------------------------------------------------------- reading

def test_overview_shows_balance_pnl_state_breakers_freshness_and_health(shared_dashboard: RunningDashboard) -> None:
    ov = httpx.get(shared_dashboard.url + "/api/overview").json()
    assert [(b["platform_id"], b["mode"], _dec(b["balance"])) for b in ov["balances"]] == [
        ("local", "paper", Decimal("963.25"))]
    pnl = ov["pnl"]
    # realized: +6.50 (trailing stop today) - 12.25 (settled yesterday); unrealized: +4.00 - 2.00
    assert _dec(pnl["realized"]) == Decimal("-5.75") and _dec(pnl["unrealized"]) == Decimal("2")
    assert _dec(pnl["total"]) == Decimal("-3.75")
    # today: +6.50 realized + (2.00 now - (-1.00) at midnight) unrealized change
    assert _dec(pnl["today_realized"]) == Decimal("6.5") and _dec(pnl["today"]) == Decimal("9.5")
    assert isinstance(pnl["today"], str)  # money stays an exact decimal string on the wire
    # the open data_stale breaker pauses entries: REDUCING
    assert ov["trading_state"]["current"]["mode"] == "REDUCING"
    assert ov["trading_state"]["current"]["blocking"] == ["data_stale"]
    assert [b["breaker_type"] for b in ov["breakers"]] == ["data_stale"]
    feeds = {f["feed"]: f for f in ov["feeds"]}
    assert feeds["kalshi:ws"]["stale"] is False and feeds["espn:nfl"]["stale"] is True
    assert "markets:local" in feeds
    assert {h["component"]: h["status"] for h in ov["health"]} == {
        "database": "healthy", "kalshi_api": "degraded", "trading_engine": "healthy"}
    assert ov["alerts"] == {"unacknowledged": 3, "unresolved": 4, "critical": 1}


def test_overview_risk_is_the_open_positions_value_at_risk_and_the_drawdown(shared_dashboard: RunningDashboard) -> None:
    risk = httpx.get(shared_dashboard.url + "/api/overview").json()["risk"]
    # two open positions in two games: 100 YES marked 0.61 (+$39 / -$61) and 50 YES marked 0.36 (+$32 / -$18);
    # both lose with probability 0.39 x 0.64 = 0.2496, more than the 5% tail: 95% VaR = $79
    assert (_dec(risk["value_at_risk"]), risk["positions"], _dec(risk["confidence"])) == (Decimal("79"), 2,
                                                                                         Decimal("0.95"))
    assert _dec(risk["equity"]) == Decimal("1011.75") and _dec(risk["var_share"]) == Decimal("0.0781")
    # equity $1,011.75 is the 30-day peak (earlier: $1,000.00, $988.75): no drawdown
    ((acct),) = risk["accounts"]
    assert (acct["platform_id"], acct["mode"], _dec(acct["peak"]), _dec(acct["drawdown"])) == (
        "local", "paper", Decimal("1011.75"), Decimal("0"))
    assert _dec(risk["max_var_pct"]) == Decimal("0.10") and risk["window_days"] == 30


def test_positions_page_shows_open_with_triggers_and_closed_with_exit_reason(shared_dashboard: RunningDashboard,
                                                                             shared_seeded: Seeded) -> None:
    data = httpx.get(shared_dashboard.url + "/api/positions").json()
    open_by_id = {p["position_id"]: p for p in data["open"]}
    assert set(open_by_id) == {shared_seeded.open_position_id, shared_seeded.near_position_id}
    near = open_by_id[shared_seeded.near_position_id]
    stop = next(t for t in near["triggers"] if t["trigger"] == "stop_loss")
    assert _dec(stop["threshold"]) == Decimal("-0.12") and _dec(stop["distance"]) == Decimal("0.02") and stop["near"]
    assert near["near_exit"] is True
    trailing = next(t for t in open_by_id[shared_seeded.open_position_id]["triggers"] if t["trigger"] == "trailing_stop")
    assert _dec(trailing["threshold"]) == Decimal("0.5985")
    assert open_by_id[shared_seeded.open_position_id]["trailing_stop_state"]["active"] is True
    closed = {p["position_id"]: p for p in data["closed"]}
    assert closed[shared_seeded.closed_position_id]["exit_reason"] == "trailing_stop"
    assert closed[shared_seeded.settled_position_id]["exit_reason"] == "settlement"
    assert _dec(closed[shared_seeded.settled_position_id]["realized_pnl"]) == Decimal("-12.25")


def test_pnl_page_has_curves_and_breakdowns_by_method_strategy_model_and_sport(shared_dashboard: RunningDashboard) -> None:
    data = httpx.get(shared_dashboard.url + "/api/pnl").json()
    assert [_dec(p["cumulative"]) for p in data["realized_curve"]] == [Decimal("-12.25"), Decimal("-5.75")]
    assert [_dec(p["equity"]) for p in data["equity_curve"]] == [Decimal("1000"), Decimal("988.75"),
                                                                 Decimal("1011.75")]
    for dim, key in (("method", "moderate_nfl v1.0"), ("strategy", "pre_game_entry v1.0"),
                     ("model", "elo_nfl v1.0"), ("sport", "nfl")):
        rows = data["by"][dim]
        assert [r["key"] for r in rows] == [key]
        assert _dec(rows[0]["total_pnl"]) == Decimal("-3.75") and rows[0]["positions"] == 4


def test_mode_filter_shows_only_that_modes_money(shared_db: tuple[str, Seeded]) -> None:
    with running_dashboard(shared_db[0], mode="live") as live:
        ov = httpx.get(live.url + "/api/overview").json()
        assert ov["balances"] == [] and _dec(ov["pnl"]["total"]) == 0 and ov["pnl"]["open_positions"] == 0
        assert _dec(ov["risk"]["value_at_risk"]) == 0 and ov["risk"]["var_share"] is None and ov["risk"]["accounts"] == []
        assert httpx.get(live.url + "/api/positions").json()["open"] == []
        assert httpx.get(live.url + "/api/trades").json()["trades"] == []
        assert httpx.get(live.url + "/api/pnl").json()["realized_curve"] == []
    with running_dashboard(shared_db[0], mode="paper") as paper:
        assert _dec(httpx.get(paper.url + "/api/overview").json()["pnl"]["total"]) == Decimal("-3.75")


def test_methods_page_lists_versions_status_and_performance(shared_dashboard: RunningDashboard) -> None:
    data = httpx.get(shared_dashboard.url + "/api/methods").json()
    (method,) = data["methods"]
    assert (method["method_name"], method["status"], method["closed_positions"], method["open_positions"]) == (
        "moderate_nfl", "active", 2, 2)
    assert _dec(method["realized_pnl"]) == Decimal("-5.75")
    assert {(m["model_version"], m["status"]) for m in data["models"]} == {("v1.0", "active"), ("v1.1", "testing")}
    assert [s["strategy_name"] for s in data["strategies"]] == ["pre_game_entry"]


@pytest.mark.parametrize(("params", "expected"), [
    ({}, 3),
    ({"side": "no"}, 1),
    ({"min_ev": "0.05"}, 1),
    ({"confidence": "low"}, 1),
    ({"action": "alert"}, 1),
    ({"market": "dalphi"}, 1),
    ({"market": "Chiefs"}, 2),
    ({"method": "moderate"}, 3),
])
def test_edge_filters(shared_dashboard: RunningDashboard, params: dict[str, str], expected: int) -> None:
    r = httpx.get(shared_dashboard.url + "/api/edges", params=params)
    assert r.status_code == 200, r.text
    assert len(r.json()["edges"]) == expected


@pytest.mark.parametrize("hostile", [
    "'; DROP TABLE alerts; --", "x' OR '1'='1", "%", "_", "\\", "KC%' UNION SELECT * FROM alerts --", "\x00",
])
def test_sql_injection_in_text_filters_is_only_data(shared_dashboard: RunningDashboard, shared_conn: psycopg.Connection[Any],
                                                    hostile: str) -> None:
    for field in ("market", "method"):
        if field == "method" and hostile == "_":
            continue  # method names do contain "_": see test_like_wildcards_are_literal
        r = httpx.get(shared_dashboard.url + "/api/edges", params={field: hostile})
        if hostile == "\x00":  # PostgreSQL refuses NUL in text: a clean error, not a crash
            assert r.status_code in (200, 422, 500) and "Traceback" not in r.text
            continue
        assert r.status_code == 200, r.text
        assert r.json()["edges"] == []  # matched literally: no ticker contains these characters
    assert shared_conn.execute("SELECT count(*) FROM alerts").fetchone() == (4,)
    assert shared_conn.execute("SELECT count(*) FROM edges").fetchone() == (3,)


def test_like_wildcards_are_literal(shared_dashboard: RunningDashboard) -> None:
    def n(**params: str) -> int:
        return len(httpx.get(shared_dashboard.url + "/api/edges", params=params).json()["edges"])

    assert n(method="e_x") == 0 and n(method="te_nfl") == 3 and n(method="moderate%") == 0 and n(market="KC%") == 0


@pytest.mark.parametrize(("params", "field"), [
    ({"min_ev": "1 OR 1=1"}, "min_ev"), ({"min_ev": "NaN"}, "min_ev"), ({"min_ev": "5"}, "min_ev"),
    ({"side": "yes' OR '1'='1"}, "side"), ({"sort": "ev; DROP TABLE edges"}, "sort"),
    ({"confidence": "high' --"}, "confidence"), ({"limit": "1; DROP TABLE edges"}, "limit"),
])
def test_bad_filter_values_get_a_422_naming_the_field(shared_dashboard: RunningDashboard, params: dict[str, str],
                                                      field: str) -> None:
    r = httpx.get(shared_dashboard.url + "/api/edges", params=params)
    assert r.status_code == 422
    assert r.json()["error"].startswith(field)


def test_alert_filters(shared_dashboard: RunningDashboard) -> None:
    def ids(**params: str) -> list[str]:
        return [a["alert_type"] for a in httpx.get(shared_dashboard.url + "/api/alerts", params=params).json()["alerts"]]

    assert len(ids()) == 4
    assert ids(state="acknowledged") == ["order_rejected"]
    assert ids(severity="critical") == ["circuit_breaker"]
    assert ids(state="resolved") == []
    r = httpx.get(shared_dashboard.url + "/api/alerts", params={"severity": "critical' OR 1=1 --"})
    assert r.status_code == 422 and r.json()["error"].startswith("severity")


# ---------------------------------------------------------------- the token rule

@pytest.mark.parametrize(("template", "body"), WRITES)
def test_writes_without_the_token_get_401_and_change_nothing(shared_dashboard: RunningDashboard, shared_seeded: Seeded,
                                                             shared_conn: psycopg.Connection[Any], template: str,
                                                             body: dict[str, Any]) -> None:
    before = _snapshot(shared_conn)
    path = _path(template, shared_seeded)
    for headers in ({}, {"Authorization": "Basic " + shared_dashboard.token}, {"Authorization": "Bearer"}):
        r = httpx.post(shared_dashboard.url + path, json=body, headers=headers)
        assert r.status_code == 401, (path, headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    # a token passed as a query parameter is not a credential for writes
    r = httpx.post(shared_dashboard.url + path, json=body, params={"token": shared_dashboard.token})
    assert r.status_code == 401
    assert _snapshot(shared_conn) == before


@pytest.mark.parametrize(("template", "body"), WRITES)
def test_writes_with_a_wrong_token_get_403_and_change_nothing(shared_dashboard: RunningDashboard, shared_seeded: Seeded,
                                                              shared_conn: psycopg.Connection[Any], template: str,
                                                              body: dict[str, Any]) -> None:
    before = _snapshot(shared_conn)
    path = _path(template, shared_seeded)
    for wrong in (shared_dashboard.token[:-1] + "X", shared_dashboard.token + "x", "x", shared_dashboard.token.upper()):
        r = httpx.post(shared_dashboard.url + path, json=body, headers={"Authorization": f"Bearer {wrong}"})
        assert r.status_code == 403, (path, r.text)
    # an invalid body does not reveal anything before the token is checked
    r = httpx.post(shared_dashboard.url + path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert _snapshot(shared_conn) == before


def test_alert_lifecycle_through_the_api(dashboard: RunningDashboard, seeded: Seeded,
                                         conn: psycopg.Connection[Any]) -> None:
    auth = {"Authorization": f"Bearer {dashboard.token}"}
    api_id = seeded.alert_ids["api"]
    # resolving before acknowledging is refused by the alert lifecycle (409, one readable line)
    r = httpx.post(f"{dashboard.url}/api/alerts/{api_id}/resolve", json={"by": "bob", "action": "fixed"}, headers=auth)
    assert r.status_code == 409 and "acknowledge it first" in r.json()["error"]
    r = httpx.post(f"{dashboard.url}/api/alerts/{api_id}/acknowledge", json={"by": "bob", "notes": "looking"},
                   headers=auth)
    assert r.status_code == 200 and r.json()["alert"]["state"] == "acknowledged"
    assert conn.execute("SELECT acknowledged_by, acknowledged_notes FROM alerts WHERE alert_id = %s",
                        (api_id,)).fetchone() == ("bob", "looking")
    r = httpx.post(f"{dashboard.url}/api/alerts/{api_id}/acknowledge", json={"by": "bob"}, headers=auth)
    assert r.status_code == 409 and "already acknowledged" in r.json()["error"]
    r = httpx.post(f"{dashboard.url}/api/alerts/{api_id}/resolve",
                   json={"by": "bob", "action": "not-an-action"}, headers=auth)
    assert r.status_code == 422 and "resolution action" in r.json()["error"]
    r = httpx.post(f"{dashboard.url}/api/alerts/{api_id}/resolve", json={"by": "bob", "action": "fixed"}, headers=auth)
    assert r.status_code == 200
    conn.rollback()
    assert conn.execute("SELECT resolved_by, resolution_action FROM alerts WHERE alert_id = %s",
                        (api_id,)).fetchone() == ("bob", "fixed")
    r = httpx.post(f"{dashboard.url}/api/alerts/999999/acknowledge", json={"by": "bob"}, headers=auth)
    assert r.status_code == 404


def test_silence_from_an_alert_matches_its_type_and_component(dashboard: RunningDashboard, seeded: Seeded,
                                                              conn: psycopg.Connection[Any]) -> None:
    auth = {"Authorization": f"Bearer {dashboard.token}"}
    url = f"{dashboard.url}/api/alerts/{seeded.alert_ids['stale']}/silence"
    r = httpx.post(url, json={"by": "carol", "duration": "soon", "comment": "x"}, headers=auth)
    assert r.status_code == 422 and "duration" in r.json()["error"]
    r = httpx.post(url, json={"by": "carol", "duration": "2h", "comment": "ESPN maintenance"}, headers=auth)
    assert r.status_code == 200, r.text
    row = conn.execute("SELECT match_alert_type, match_component, created_by, ends_at - starts_at FROM alert_silences"
                       ).fetchone()
    assert row is not None and row[:3] == ("data_stale", "ingest", "carol") and row[3].total_seconds() == 7200
    silences = httpx.get(dashboard.url + "/api/alerts").json()["silences"]
    assert [s["comment"] for s in silences] == ["ESPN maintenance"]
    sid = silences[0]["silence_id"]
    r = httpx.post(f"{dashboard.url}/api/silences/{sid}/expire", json={"by": "carol"}, headers=auth)
    assert r.status_code == 200
    assert httpx.get(dashboard.url + "/api/alerts").json()["silences"] == []


def test_halt_resume_and_breaker_reset_change_the_trading_state(dashboard: RunningDashboard,
                                                                conn: psycopg.Connection[Any]) -> None:
    auth = {"Authorization": f"Bearer {dashboard.token}"}

    def mode() -> str:
        return str(httpx.get(dashboard.url + "/api/controls").json()["trading_state"]["current"]["mode"])

    assert mode() == "REDUCING"
    r = httpx.post(dashboard.url + "/api/trading/halt", json={"by": "dave", "reason": "exchange maintenance"},
                   headers=auth)
    assert r.status_code == 200, r.text
    assert mode() == "HALTED"
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM circuit_breaker_events WHERE breaker_type = 'manual'"
                        " AND resolved_at IS NULL").fetchone() == (1,)
    assert conn.execute("SELECT mode, changed_by FROM trading_state_history ORDER BY id DESC LIMIT 1"
                        ).fetchone() == ("HALTED", "dave")
    # the halt raised a critical alert through the real AlertManager
    assert conn.execute("SELECT severity FROM alerts WHERE alert_type = 'circuit_breaker' AND component = 'trading'"
                        " AND message LIKE 'circuit breaker manual TRIPPED%%'").fetchone() == ("critical",)
    r = httpx.post(dashboard.url + "/api/trading/halt", json={"by": "dave", "reason": "again"}, headers=auth)
    assert r.status_code == 409 and "already halted" in r.json()["error"]
    # like `precog resume`: refused, changing nothing, while another breaker still blocks trading
    r = httpx.post(dashboard.url + "/api/trading/resume", json={"by": "dave", "notes": "done"}, headers=auth)
    assert r.status_code == 409 and "open breakers data_stale" in r.json()["error"]
    assert mode() == "HALTED"
    r = httpx.post(dashboard.url + "/api/breakers/data_stale/reset", json={"by": "dave", "notes": "feed back"},
                   headers=auth)
    assert r.status_code == 200
    assert mode() == "HALTED"  # still halted by hand
    conn.rollback()
    assert conn.execute("SELECT resolved_by FROM circuit_breaker_events WHERE breaker_type = 'data_stale'"
                        ).fetchone() == ("dave",)
    r = httpx.post(dashboard.url + "/api/trading/resume", json={"by": "dave", "notes": "done"}, headers=auth)
    assert r.status_code == 200 and r.json()["reset"] == ["manual"]
    assert mode() == "ACTIVE"
    r = httpx.post(dashboard.url + "/api/trading/resume", json={"by": "dave", "notes": "again"}, headers=auth)
    assert r.status_code == 409 and "not halted" in r.json()["error"]
    r = httpx.post(dashboard.url + "/api/breakers/data_stale/reset", json={"by": "dave"}, headers=auth)
    assert r.status_code == 409 and "not open" in r.json()["error"]
    r = httpx.post(dashboard.url + "/api/breakers/nonsense/reset", json={"by": "dave"}, headers=auth)
    assert r.status_code == 409 and "unknown breaker" in r.json()["error"]


def test_model_and_method_lifecycle_actions_follow_their_rules(dashboard: RunningDashboard, seeded: Seeded,
                                                               conn: psycopg.Connection[Any]) -> None:
    auth = {"Authorization": f"Bearer {dashboard.token}"}
    r = httpx.post(f"{dashboard.url}/api/models/{seeded.testing_model_id}/transition",
                   json={"by": "erin", "target": "active", "reason": "evaluated"}, headers=auth)
    assert r.status_code == 200, r.text
    assert conn.execute("SELECT status FROM probability_models WHERE model_id = %s",
                        (seeded.testing_model_id,)).fetchone() == ("active",)
    r = httpx.post(f"{dashboard.url}/api/models/{seeded.model_id}/transition",
                   json={"by": "erin", "target": "draft"}, headers=auth)
    assert r.status_code == 409 and "not allowed" in r.json()["error"]
    r = httpx.post(f"{dashboard.url}/api/methods/{seeded.method_id}/transition",
                   json={"by": "erin", "target": "testing"}, headers=auth)
    assert r.status_code == 409 and "active" in r.json()["error"]
    r = httpx.post(f"{dashboard.url}/api/methods/{seeded.method_id}/transition",
                   json={"by": "erin", "target": "inactive", "reason": "pausing"}, headers=auth)
    assert r.status_code == 200, r.text
    conn.rollback()
    assert conn.execute("SELECT status FROM methods WHERE method_id = %s", (seeded.method_id,)).fetchone() == (
        "inactive",)
    assert conn.execute("SELECT changed_by, to_status FROM method_status_changes").fetchone() == ("erin", "inactive")


# ---------------------------------------------------------------- secrets, headers, hosts

def test_the_token_appears_in_no_log_page_or_error(dashboard: RunningDashboard, seeded: Seeded,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = dashboard.token
    bodies = [httpx.get(dashboard.url + "/", params={"token": token}).text,
              httpx.get(dashboard.url + "/static/app.js").text,
              httpx.get(dashboard.url + "/api/overview", params={"token": token}).text]
    auth = {"Authorization": f"Bearer {token}"}
    bodies.append(httpx.post(f"{dashboard.url}/api/alerts/{seeded.alert_ids['api']}/acknowledge", json={"by": "x"},
                             headers=auth).text)
    bodies.append(httpx.post(f"{dashboard.url}/api/alerts/{seeded.alert_ids['api']}/acknowledge",
                             json={"by": "x"}, headers={"Authorization": f"Bearer {token}x"}).text)
    bodies.append(httpx.post(dashboard.url + "/api/trading/halt", json={}, headers=auth).text)
    server_logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("precog", "uvicorn")))
    assert "GET /api/overview 200" in server_logs  # paths are logged, their query strings are not
    assert "wrong token" in server_logs
    assert token not in server_logs
    for body in bodies:
        assert token not in body


def test_security_headers_and_no_cdn(shared_dashboard: RunningDashboard) -> None:
    r = httpx.get(shared_dashboard.url + "/")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"
    assert "http://" not in r.text.replace("http://www.w3.org", "") and "https://" not in r.text
    for asset in ("/static/app.js", "/static/app.css", "/static/vendor/uplot/uPlot.iife.min.js",
                  "/static/vendor/uplot/uPlot.min.css", "/static/vendor/uplot/LICENSE"):
        assert httpx.get(shared_dashboard.url + asset).status_code == 200, asset


def test_unknown_paths_are_json_errors(shared_dashboard: RunningDashboard) -> None:
    r = httpx.get(shared_dashboard.url + "/api/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = httpx.get(shared_dashboard.url + "/api/trading/halt")
    assert r.status_code == 405


def test_foreign_host_headers_are_refused(shared_dashboard: RunningDashboard) -> None:
    """A page on another site that re-points its DNS name at 127.0.0.1 cannot read the dashboard."""
    r = httpx.get(shared_dashboard.url + "/api/overview", headers={"Host": "attacker.example:8050"})
    assert r.status_code == 400
    assert httpx.get(shared_dashboard.url + "/api/overview", headers={"Host": "localhost:8050"}).status_code == 200


# ---------------------------------------------------------------- live updates

def test_server_sent_events_announce_changes_made_by_other_processes(dashboard: RunningDashboard,
                                                                     conn: psycopg.Connection[Any]) -> None:
    actions = [
        ("INSERT INTO alerts (alert_type, severity, component, message)"
         " VALUES ('api_failure', 'high', 'kalshi_api', 'live update test')", {"alerts", "overview"}),
        ("UPDATE alerts SET acknowledged_at = now(), acknowledged_by = 'cli' WHERE message = 'live update test'",
         {"alerts", "overview"}),
        ("UPDATE circuit_breaker_events SET resolved_at = now(), resolved_by = 'cli'", {"controls", "overview"}),
        ("INSERT INTO trades (market_id, platform_id, side, action, price, quantity)"
         " VALUES ('KXNFLGAME-25NOV30BUFKC-KC', 'local', 'yes', 'buy', 0.61, 5)", {"trades", "pnl"}),
    ]
    with httpx.stream("GET", dashboard.url + "/api/events", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("event: hello"):
                break
        time.sleep(0.6)  # let the poller take its first reading
        for sql, topics in actions:
            conn.execute(sql)
            conn.commit()
            deadline = time.monotonic() + 8
            for line in lines:
                assert time.monotonic() < deadline, f"no change event within 8 s after: {sql}"
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event.get("type") == "change":
                        assert topics <= set(event["topics"]), (sql, event)
                        break


def test_closed_event_streams_are_released(shared_dashboard: RunningDashboard) -> None:
    feed = shared_dashboard.server.config.app.state.feed
    for _ in range(5):
        with httpx.stream("GET", shared_dashboard.url + "/api/events", timeout=5) as r:
            next(r.iter_lines())
    deadline = time.monotonic() + 5
    while feed.listeners and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.listeners == 0


def test_an_unreachable_database_is_a_503_and_a_notice_not_a_crash(pg_admin_url: str) -> None:
    from precog.db.embedded import with_database
    from precog.web.app import DashboardSettings
    from precog.web.auth import DashboardToken

    missing = with_database(pg_admin_url, "precog_no_such_database")
    settings = DashboardSettings(db_url=missing, token=DashboardToken("x" * 20, "test"), poll_seconds=0.2,
                                 pool_timeout=1.0)
    with running_dashboard(missing, settings=settings) as dash:
        r = httpx.get(dash.url + "/api/overview", timeout=10)
        assert r.status_code == 503 and "database is not reachable" in r.json()["error"]
        assert "precog_no_such_database" not in r.text
        with httpx.stream("GET", dash.url + "/api/events", timeout=10) as events:
            for line in events.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:]).get("db") == "down":
                    break


def test_the_server_compares_tokens_in_constant_time(shared_dashboard: RunningDashboard,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from precog.web import auth

    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    r = httpx.post(shared_dashboard.url + "/api/auth/check", headers={"Authorization": "Bearer guess-0000000000"})
    assert r.status_code == 403
    assert seen == [(shared_dashboard.token.encode(), b"guess-0000000000")]


def test_a_simulated_worlds_own_breaker_is_not_the_accounts(dashboard: RunningDashboard,
                                                              conn: psycopg.Connection[Any]) -> None:
    """A running demo's own trip (tagged simulation_run) halts only that simulation: the dashboard's trading state
    and open breakers leave it out, its history shows it."""
    def state() -> tuple[str, list[str]]:
        c = httpx.get(dashboard.url + "/api/controls").json()
        return str(c["trading_state"]["current"]["mode"]), sorted(b["breaker_type"] for b in c["open_breakers"])

    before = state()
    conn.execute("INSERT INTO circuit_breaker_events (breaker_type, trigger_value, action, notes) VALUES"
                 " ('daily_loss_limit', '{\"simulation_run\": 99, \"pnl\": \"-600\"}', 'close_all_positions', 'run 99')")
    conn.commit()
    assert state() == before and "daily_loss_limit" not in before[1]
    recent = httpx.get(dashboard.url + "/api/controls").json()["recent_breakers"]
    assert any(b["breaker_type"] == "daily_loss_limit" and b["trigger_value"].get("simulation_run") == 99
               for b in recent)
