"""A write whose body is not JSON gets a 422 that says so, not "0: JSON decode error".

FastAPI reports an unparsable body at loc ("body", <character offset>), which the error handler turned into
the field name "0"; an operator scripting the documented `curl -d ...` call could not tell what was wrong.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from web.dashkit import RunningDashboard


def test_a_body_that_is_not_json_is_named_as_such_and_changes_nothing(
        shared_dashboard: RunningDashboard, shared_conn: psycopg.Connection[Any]) -> None:
    state = "SELECT count(*) FROM trading_state_history"
    before = shared_conn.execute(state).fetchone()
    shared_conn.rollback()
    headers = {"Authorization": f"Bearer {shared_dashboard.token}", "Content-Type": "application/json"}
    for body in (b"notjson", b"{\"by\": \"alice\", \"reason\": ", b"by=alice&reason=x"):
        r = httpx.post(shared_dashboard.url + "/api/trading/halt", content=body, headers=headers)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error.startswith("request body is not valid JSON"), error
        assert not error.startswith("0:"), error
    # a well-formed body missing a field still names the field
    r = httpx.post(shared_dashboard.url + "/api/trading/halt", json={"by": "alice"}, headers=headers)
    assert r.status_code == 422 and r.json()["error"].startswith("reason"), r.text
    assert shared_conn.execute(state).fetchone() == before
