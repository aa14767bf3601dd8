"""Lifecycle triggered -> acknowledged -> resolved, illegal transitions, input validation, environment tag."""

from __future__ import annotations

import pytest

from alerts.alertkit import make_settings
from precog.alerts import AlertError, AlertNotFound, AlertSettings, IllegalTransition
from precog.alerts.api import AlertRaiser
from precog.config.loader import load_config


def test_manager_satisfies_the_alert_raiser_protocol(alerting) -> None:
    a = alerting()
    raiser: AlertRaiser = a.manager
    alert_id = raiser.raise_alert("order_rejected", "high", "executor", "order rejected: insufficient balance",
                                  {"order_id": "abc"}, source_table="orders", source_id=17, category="trading")
    record = a.manager.get(alert_id)
    assert (record.source_table, record.source_id, record.category) == ("orders", 17, "trading")
    assert record.details == {"order_id": "abc"}
    assert record.state == "triggered"


def test_acknowledge_then_resolve_records_who_when_and_notes(alerting, clock) -> None:
    a = alerting()
    alert_id = a.manager.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit",
                                     dedup_key="daily_loss_limit")
    clock.advance(minutes=3)
    acked = a.manager.acknowledge(alert_id, "alice", "checking fills")
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_notes) == ("acknowledged", "alice", "checking fills")
    assert acked.acknowledged_at == clock.now()
    clock.advance(minutes=20)
    resolved = a.manager.resolve(alert_id, "bob", "fixed", "limit reset next day")
    assert resolved.state == "resolved"
    assert (resolved.resolved_by, resolved.resolution_action, resolved.resolved_notes) == ("bob", "fixed", "limit reset next day")
    assert resolved.resolved_at == clock.now()
    assert a.manager.unresolved() == []


def test_illegal_transitions_are_refused_with_clear_errors(alerting) -> None:
    a = alerting()
    alert_id = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x")
    with pytest.raises(IllegalTransition, match=rf"alert {alert_id} is not acknowledged yet; acknowledge it first"):
        a.manager.resolve(alert_id, "bob", "fixed")
    a.manager.acknowledge(alert_id, "alice")
    with pytest.raises(IllegalTransition, match=r"already acknowledged \(by alice"):
        a.manager.acknowledge(alert_id, "bob")
    a.manager.resolve(alert_id, "alice", "false_positive")
    with pytest.raises(IllegalTransition, match=r"already resolved \(by alice .* action false_positive\)"):
        a.manager.resolve(alert_id, "bob", "fixed")
    with pytest.raises(IllegalTransition, match="a resolved alert cannot be acknowledged"):
        a.manager.acknowledge(alert_id, "bob")
    with pytest.raises(AlertNotFound, match="alert 999999 does not exist"):
        a.manager.acknowledge(999999, "bob")


def test_bad_resolution_action_and_suppressed_repeat(alerting) -> None:
    a = alerting()
    first = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x", dedup_key="k")
    repeat = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x", dedup_key="k")
    a.manager.acknowledge(first, "alice")
    with pytest.raises(AlertError, match="resolution action 'done' is not one of fixed, false_positive, ignored, escalated"):
        a.manager.resolve(first, "alice", "done")
    with pytest.raises(IllegalTransition, match=rf"suppressed repeat .*; acknowledge alert {first} instead"):
        a.manager.acknowledge(repeat, "alice")
    with pytest.raises(AlertError, match="must name who"):
        a.manager.acknowledge(first, "  ")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"severity": "urgent"}, "severity 'urgent' is not one of critical, high, medium, low"),
    ({"message": ""}, "message must be a non-empty string"),
    ({"alert_type": "x" * 61}, "alert_type is 61 characters long"),
    ({"category": "misc"}, "category 'misc' is not one of risk, system, trading, data"),
    ({"details": ["not", "a", "dict"]}, "details must be a dict"),
])
def test_bad_input_names_the_field(alerting, kwargs, message) -> None:
    a = alerting()
    args = {"alert_type": "api_failure", "severity": "high", "component": "kalshi_api", "message": "m"} | kwargs
    details = args.pop("details", None)
    category = args.pop("category", None)
    with pytest.raises(AlertError, match=message):
        a.manager.raise_alert(**args, details=details, category=category)


def test_environment_tag_comes_from_config(alerting) -> None:
    config = load_config(environ={"TRADING_ENV": "prod"}, use_overrides=False)
    settings = AlertSettings.from_config(config)
    assert settings.environment == "prod"
    a = alerting(settings)
    assert a.manager.get(a.manager.raise_alert("api_failure", "low", "x", "m")).environment == "prod"


def test_unresolved_filters_by_severity_and_component(alerting) -> None:
    a = alerting(make_settings())
    a.manager.raise_alert("api_failure", "high", "kalshi_api", "one")
    a.manager.raise_alert("api_failure", "low", "kalshi_api", "two")
    a.manager.raise_alert("api_failure", "high", "espn", "three")
    assert [r.message for r in a.manager.unresolved(severity="high", component="kalshi_api")] == ["one"]
    assert len(a.manager.get_unresolved_alerts()) == 3


def test_secrets_in_messages_are_redacted_before_storage(alerting) -> None:
    a = alerting(environ={"TWILIO_AUTH_TOKEN": "tok-abcdef123456"})
    alert_id = a.manager.raise_alert("api_failure", "high", "sms", "auth failed with tok-abcdef123456",
                                     {"token": "tok-abcdef123456"})
    record = a.manager.get(alert_id)
    assert "tok-abcdef123456" not in record.message and record.details == {"token": "***"}
