"""Who did an action goes into the dashboard's log as one line, as into the audit columns: a name with line
breaks (from a token holder's script or a pasted name) cannot forge extra log lines."""

from __future__ import annotations

import logging

import httpx
import pytest

from web.dashkit import RunningDashboard, Seeded


def test_the_actors_name_is_logged_on_one_line(dashboard: RunningDashboard, seeded: Seeded,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="precog.web")
    auth = {"Authorization": f"Bearer {dashboard.token}"}
    forged = "alice\n2025-01-01 INFO precog.web: dashboard: resumed trading by root"
    r = httpx.post(f"{dashboard.url}/api/alerts/{seeded.alert_ids['api']}/acknowledge", json={"by": forged},
                   headers=auth)
    assert r.status_code == 200
    assert r.json()["alert"]["acknowledged_by"] == "alice 2025-01-01 INFO precog.web: dashboard: resumed trading by root"
    (line,) = [rec.getMessage() for rec in caplog.records if "acknowledged alert" in rec.getMessage()]
    assert "\n" not in line and "\r" not in line
    assert "by alice 2025-01-01" in line
