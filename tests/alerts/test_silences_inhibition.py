"""Silences (time-boxed, stored, matched on type/component/severity) and inhibition rules."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from alerts.alertkit import make_settings
from precog.alerts import AlertError, IllegalTransition
from precog.alerts.settings import InhibitRule
from precog.alerts.silences import parse_duration, parse_matchers


def _statuses(db_url: str, alert_id: int) -> dict[str, str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT channel, status FROM alert_outbox WHERE alert_id = %s", (alert_id,)).fetchall()
    return dict(rows)


def test_silenced_alert_is_stored_but_not_delivered(alerting, clock, db_url) -> None:
    a = alerting()
    silence = a.manager.silence(["type=api_failure", "component=kalshi*"], "2h", by="alice", comment="Kalshi maintenance")
    assert silence.ends_at - silence.starts_at == timedelta(hours=2)
    muted = a.manager.raise_alert("api_failure", "high", "kalshi_api", "timeout")
    other = a.manager.raise_alert("api_failure", "high", "espn", "timeout")
    assert a.manager.get(muted).silence_id == silence.silence_id
    assert _statuses(db_url, muted) == {}
    assert set(_statuses(db_url, other)) == {"console", "file"}
    report = a.notifier.deliver_pending()
    assert {o.alert_id for o in report.outcomes} == {other}


def test_silence_ends_on_time_and_can_be_expired_early(alerting, clock, db_url) -> None:
    a = alerting()
    s1 = a.manager.silence(["severity=low"], "30m", by="alice", comment="noisy")
    clock.advance(minutes=31)
    after_end = a.manager.raise_alert("feed_gap", "low", "espn", "gap", dedup_key="1")
    assert a.manager.get(after_end).silence_id is None
    s2 = a.manager.silence(["type=feed_gap"], "1d", by="alice", comment="known issue")
    assert [s.silence_id for s in a.manager.silences()] == [s2.silence_id]
    assert {s.silence_id for s in a.manager.silences(include_inactive=True)} == {s1.silence_id, s2.silence_id}
    a.manager.expire_silence(s2.silence_id, "bob")
    with pytest.raises(IllegalTransition, match="already expired"):
        a.manager.expire_silence(s2.silence_id, "bob")
    delivered = a.manager.raise_alert("feed_gap", "low", "espn", "gap", dedup_key="2")
    assert set(_statuses(db_url, delivered)) == {"file"}


def test_silence_added_after_queueing_stops_the_delivery(alerting, db_url) -> None:
    a = alerting()
    alert_id = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    a.manager.silence(["component=kalshi_api"], "1h", by="alice", comment="on it")
    report = a.notifier.deliver_pending()
    assert {o.status for o in report.outcomes} == {"silenced"}
    assert _statuses(db_url, alert_id) == {"console": "silenced", "file": "silenced"}
    record = a.manager.get(alert_id)
    assert record.notification_sent is False and record.silence_id is not None
    assert record.notification_errors[0]["status"] == "silenced"


def test_silence_input_errors_are_readable() -> None:
    with pytest.raises(AlertError, match="at least one --match"):
        parse_matchers([])
    with pytest.raises(AlertError, match="unknown key 'colour'"):
        parse_matchers(["colour=red"])
    with pytest.raises(AlertError, match="severity='urgent' is not one of"):
        parse_matchers(["severity=urgent"])
    with pytest.raises(AlertError, match="is not like 30m, 2h"):
        parse_duration("two hours")
    assert parse_duration("1h30m") == timedelta(minutes=90)


def test_silence_needs_a_comment(alerting) -> None:
    a = alerting()
    with pytest.raises(AlertError, match="--comment"):
        a.manager.silence(["type=x"], "1h", by="alice", comment=" ")


def _rules(**kw) -> tuple[InhibitRule, ...]:
    return (InhibitRule(source_type="venue_down", target_types=("order_rejected", "api_failure"), **kw),)


def test_inhibition_while_source_fires(alerting, clock, db_url) -> None:
    a = alerting(make_settings(inhibit_rules=_rules()))
    source = a.manager.raise_alert("venue_down", "critical", "kalshi", "venue down")
    target = a.manager.raise_alert("order_rejected", "high", "executor", "rejected", dedup_key="o1")
    unrelated = a.manager.raise_alert("loss_threshold", "high", "risk", "loss")
    assert a.manager.get(target).inhibited_by == source
    assert _statuses(db_url, target) == {}
    assert _statuses(db_url, unrelated) != {}
    a.manager.acknowledge(source, "alice")
    a.manager.resolve(source, "alice", "fixed")
    after = a.manager.raise_alert("order_rejected", "high", "executor", "rejected", dedup_key="o2")
    assert a.manager.get(after).inhibited_by is None and _statuses(db_url, after) != {}


def test_inhibition_expires_with_max_age_and_respects_equal(alerting, clock) -> None:
    a = alerting(make_settings(inhibit_rules=_rules(equal=("component",), max_age_minutes=30)))
    a.manager.raise_alert("venue_down", "critical", "kalshi", "down")
    same = a.manager.raise_alert("api_failure", "high", "kalshi", "x", dedup_key="1")
    different = a.manager.raise_alert("api_failure", "high", "polymarket", "x", dedup_key="2")
    assert a.manager.get(same).inhibited_by is not None
    assert a.manager.get(different).inhibited_by is None
    clock.advance(minutes=31)  # a source older than max_age no longer inhibits
    late = a.manager.raise_alert("api_failure", "high", "kalshi", "x", dedup_key="3")
    assert a.manager.get(late).inhibited_by is None


def test_inhibition_checked_again_at_delivery(alerting, db_url) -> None:
    a = alerting(make_settings(inhibit_rules=_rules()))
    target = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    a.manager.raise_alert("venue_down", "critical", "kalshi", "down")
    report = a.notifier.deliver_pending()
    assert {o.status for o in report.outcomes if o.alert_id == target} == {"inhibited"}
