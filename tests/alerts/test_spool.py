"""Database unreachable: raise_alert does not fail the caller; the alert is spooled and replayed later."""

from __future__ import annotations

import json

import psycopg
import pytest

from alerts.alertkit import free_port, make_settings
from precog.alerts import AlertError, AlertManager


def test_spooled_while_database_down_then_replayed(db_url, clock, tmp_path) -> None:
    spool = tmp_path / "spool.jsonl"
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/precog?connect_timeout=1"
    down = AlertManager(dead, settings=make_settings(), clock=clock, environ={}, spool_path=spool, pool_timeout=1)
    try:
        assert down.raise_alert("db_failure", "critical", "engine", "database unreachable", {"errno": 111},
                                dedup_key="db") is None
    finally:
        down.close()
    (line,) = spool.read_text().splitlines()
    record = json.loads(line)
    assert record["message"] == "database unreachable" and record["severity"] == "critical"
    raised_at = clock.now()

    clock.advance(minutes=5)
    up = AlertManager(db_url, settings=make_settings(), clock=clock, environ={}, spool_path=spool,
                      replay_spool=False)
    try:
        assert up.replay_spool() == 1
        assert not spool.exists()
        (alert,) = up.unresolved()
        assert alert.message == "database unreachable" and alert.details == {"errno": 111}
        assert alert.triggered_at == raised_at  # when it happened, not when it was replayed
        with psycopg.connect(db_url) as conn:
            queued = conn.execute("SELECT count(*) FROM alert_outbox WHERE alert_id = %s", (alert.alert_id,)).fetchone()
        assert queued == (2,)  # console + file: it still notifies
        assert up.replay_spool() == 0
    finally:
        up.close()


def test_unserializable_details_are_refused_at_raise(alerting) -> None:
    a = alerting()
    with pytest.raises(AlertError, match="JSON-serializable"):
        a.manager.raise_alert("x", "low", "c", "m", {"obj": object()})
