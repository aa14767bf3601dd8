"""Entry approvals (ADR-009) answered from the dashboard: the same store and rules as `precog approvals`, the
token rule of every write, one audit line per answer, and live notices when an entry starts waiting."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import psycopg
import pytest

from web.dashkit import RunningDashboard, Seeded, seed_approval


def _row(conn: psycopg.Connection[Any], approval_id: int) -> tuple[Any, ...]:
    conn.rollback()  # a fresh snapshot: the server committed in its own session
    row = conn.execute("SELECT status, decided_by, reason, decided_at IS NOT NULL FROM entry_approvals"
                       " WHERE approval_id = %s", (approval_id,)).fetchone()
    assert row is not None
    return tuple(row)


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "precog.web" and "entry approval" in r.getMessage()]


def test_list_approve_once_and_the_history(dashboard: RunningDashboard, seeded: Seeded,
                                           conn: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="precog.web")
    auth = {"Authorization": f"Bearer {dashboard.token}"}
    first = seed_approval(conn, seeded, market=0, side="yes", count=10, limit="0.6300", edge="0.0612")
    second = seed_approval(conn, seeded, market=1, side="no", count=4, limit="0.3900", edge="0.0205")

    listed = httpx.get(dashboard.url + "/api/approvals").json()["approvals"]
    assert [(a["approval_id"], a["status"], a["market_id"], a["side"], a["count"], a["limit_price"], a["edge"])
            for a in listed] == [
        (first, "pending", seeded.market_ids[0], "yes", 10, "0.6300", "0.0612"),
        (second, "pending", seeded.market_ids[1], "no", 4, "0.3900", "0.0205")]
    assert {(a["method_name"], a["method_version"]) for a in listed} == {("moderate_nfl", "v1.0")}
    assert all(a["expires_at"] and a["decided_by"] is None for a in listed)
    overview = httpx.get(dashboard.url + "/api/overview").json()
    assert overview["approvals"] == {"pending": 2, "approved": 0}

    r = httpx.post(f"{dashboard.url}/api/approvals/{first}/approve", json={"by": "alice"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["approval"]["status"] == "approved" and r.json()["approval"]["decided_by"] == "alice"
    assert _row(conn, first) == ("approved", "alice", None, True)
    (line,) = _audit_lines(caplog)
    assert line.startswith(f"dashboard: approved entry approval {first} (buy 10 yes on {seeded.market_ids[0]}"
                           " at <= 0.6300) by alice (127.0.0.1)"), line

    # an answer is given once: the store's own message, nothing changes, no second audit line
    for verb, who in (("approve", "alice"), ("reject", "bob")):
        r = httpx.post(f"{dashboard.url}/api/approvals/{first}/{verb}", json={"by": who, "reason": "late"},
                       headers=auth)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == (f"entry approval {first} is approved by alice: only a pending one can be "
                                     "approved or rejected")
    assert _row(conn, first) == ("approved", "alice", None, True)
    assert len(_audit_lines(caplog)) == 1

    # the approved row is still outstanding (the loop has not sent it); the overview counts it apart
    assert [a["status"] for a in httpx.get(dashboard.url + "/api/approvals").json()["approvals"]] == [
        "approved", "pending"]
    assert httpx.get(dashboard.url + "/api/overview").json()["approvals"] == {"pending": 1, "approved": 1}
    # ?all=1: every recent row, newest first, bounded by limit
    everything = httpx.get(dashboard.url + "/api/approvals", params={"all": "1"}).json()["approvals"]
    assert [a["approval_id"] for a in everything] == [second, first]
    assert len(httpx.get(dashboard.url + "/api/approvals", params={"all": "1", "limit": "1"}).json()["approvals"]) == 1
    r = httpx.get(dashboard.url + "/api/approvals", params={"all": "sometimes"})
    assert r.status_code == 422 and r.json()["error"].startswith("all:"), r.text


def test_reject_records_who_and_why_and_bad_answers_change_nothing(
        dashboard: RunningDashboard, seeded: Seeded, conn: psycopg.Connection[Any],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="precog.web")
    auth = {"Authorization": f"Bearer {dashboard.token}"}
    approval_id = seed_approval(conn, seeded)
    url = f"{dashboard.url}/api/approvals/{approval_id}"
    untouched = ("pending", None, None, False)

    # who answers is required, as `--by` is for the CLI (422 naming the field, as every dashboard body error)
    for body in ({"by": "   \n "}, {"reason": "no name"}, {"by": ""}):
        r = httpx.post(url + "/reject", json=body, headers=auth)
        assert r.status_code == 422 and r.json()["error"].startswith("by"), (body, r.text)
    r = httpx.post(url + "/reject", content=b"{\"by\": \"bob\", ", headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"].startswith("request body is not valid JSON"), r.text
    # the token rule: none -> 401, a wrong one -> 403, checked before the body
    r = httpx.post(url + "/approve", json={"by": "mallory"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.post(url + "/approve", json={"by": "mallory"}, headers={"Authorization": "Bearer " + "x" * 40})
    assert r.status_code == 403, r.text
    r = httpx.post(url + "/approve", json={"by": "mallory"}, params={"token": dashboard.token})
    assert r.status_code == 401  # a token in the query string is not a credential for a write
    # an unknown id is a 404 with the store's message
    r = httpx.post(f"{dashboard.url}/api/approvals/999999/approve", json={"by": "bob"}, headers=auth)
    assert r.status_code == 404 and r.json()["error"].startswith("no entry approval 999999"), r.text
    r = httpx.post(f"{dashboard.url}/api/approvals/{2**63}/approve", json={"by": "bob"}, headers=auth)
    assert r.status_code == 422 and r.json()["error"].startswith("approval_id"), r.text  # not a database error
    assert _row(conn, approval_id) == untouched
    assert _audit_lines(caplog) == []

    r = httpx.post(url + "/reject", json={"by": " bob ", "reason": "  injury news "}, headers=auth)
    assert r.status_code == 200, r.text
    assert _row(conn, approval_id) == ("rejected", "bob", "injury news", True)
    (line,) = _audit_lines(caplog)
    assert line.startswith(f"dashboard: rejected entry approval {approval_id} (buy 10 yes on ") and " by bob (" in line
    # nothing outstanding any more; the rejection stays in the history with its reason
    assert httpx.get(dashboard.url + "/api/approvals").json()["approvals"] == []
    assert httpx.get(dashboard.url + "/api/overview").json()["approvals"] == {"pending": 0, "approved": 0}
    (rejected,) = httpx.get(dashboard.url + "/api/approvals?all=1").json()["approvals"]
    assert (rejected["status"], rejected["decided_by"], rejected["reason"]) == ("rejected", "bob", "injury news")
    r = httpx.post(url + "/approve", json={"by": "alice"}, headers=auth)
    assert r.status_code == 409 and "is rejected by bob" in r.json()["error"]


def test_an_entry_held_by_another_process_is_announced_live(dashboard: RunningDashboard, seeded: Seeded,
                                                             conn: psycopg.Connection[Any]) -> None:
    with httpx.stream("GET", dashboard.url + "/api/events", timeout=10) as r:
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("event: hello"):
                break
        time.sleep(0.6)  # let the poller take its first reading
        seed_approval(conn, seeded)  # as a trading loop holding an entry would
        deadline = time.monotonic() + 8
        for line in lines:
            assert time.monotonic() < deadline, "no change event within 8 s after an entry started waiting"
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event.get("type") == "change":
                    assert {"approvals", "overview"} <= set(event["topics"]), event
                    break
