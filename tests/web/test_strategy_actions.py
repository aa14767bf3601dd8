"""Strategy lifecycle from the dashboard: a write needs the token, the lifecycle rules hold, the change is recorded."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from web.dashkit import RunningDashboard, Seeded


def _status(conn: psycopg.Connection[Any], strategy_id: int) -> str:
    conn.rollback()
    return conn.execute("SELECT status FROM strategies WHERE strategy_id = %s", (strategy_id,)).fetchone()[0]


def test_strategy_transition_without_the_token_is_refused(dashboard: RunningDashboard, seeded: Seeded,
                                                          conn: psycopg.Connection[Any]) -> None:
    url = f"{dashboard.url}/api/strategies/{seeded.strategy_id}/transition"
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        r = httpx.post(url, json={"by": "mallory", "target": "deprecated"}, headers=headers)
        assert r.status_code in (401, 403), r.text
    assert _status(conn, seeded.strategy_id) == "active"
    assert conn.execute("SELECT count(*) FROM strategy_status_changes").fetchone() == (0,)


def test_strategy_transition_with_the_token_follows_the_rules(dashboard: RunningDashboard, seeded: Seeded,
                                                              conn: psycopg.Connection[Any]) -> None:
    auth = {"Authorization": f"Bearer {dashboard.token}"}
    url = f"{dashboard.url}/api/strategies/{seeded.strategy_id}/transition"
    r = httpx.post(url, json={"by": "erin", "target": "draft"}, headers=auth)
    assert r.status_code == 409 and "not draft" in r.json()["error"]
    r = httpx.post(url, json={"by": "erin", "target": "inactive", "reason": "pausing"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["strategy"]["status"] == "inactive"
    assert _status(conn, seeded.strategy_id) == "inactive"
    assert conn.execute("SELECT changed_by, from_status, to_status, reason FROM strategy_status_changes"
                        ).fetchall() == [("erin", "active", "inactive", "pausing")]
    r = httpx.post(f"{dashboard.url}/api/strategies/999999/transition", json={"by": "erin", "target": "active"},
                   headers=auth)
    assert r.status_code == 404


def test_strategies_table_offers_lifecycle_buttons(dashboard: RunningDashboard) -> None:
    js = httpx.get(f"{dashboard.url}/static/app.js").text
    assert 'lifecycleButtons("strategy", s.strategy_id' in js and '"strategies"' in js
