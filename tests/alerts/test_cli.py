"""`precog alerts ...` through the real entry point against the test database."""

from __future__ import annotations

import json

from alerts.alertkit import make_settings
from precog.alerts import AlertManager


def _raise_some(db_url: str, tmp_path, **enabled: bool) -> dict[str, int]:
    settings = make_settings(enabled=enabled)
    with AlertManager(db_url, settings=settings, environ={}, spool_path=tmp_path / "spool") as m:
        ids = {
            "crit": m.raise_alert("circuit_breaker", "critical", "position_manager", "daily loss limit hit",
                                  {"loss": "512.40"}, dedup_key="daily_loss_limit"),
            "high": m.raise_alert("api_failure", "high", "kalshi_api", "orders endpoint timing out", dedup_key="o"),
            "low": m.raise_alert("informational", "low", "engine", "started"),
        }
        m.raise_alert("api_failure", "high", "kalshi_api", "orders endpoint timing out", dedup_key="o")
    return ids


def test_list_show_ack_resolve(precog_cli, db_url, tmp_path) -> None:
    ids = _raise_some(db_url, tmp_path)

    listed = precog_cli("alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["alert_id"] for r in rows} == set(ids.values())  # the suppressed repeat is counted, not listed
    high = next(r for r in rows if r["alert_id"] == ids["high"])
    assert high["duplicate_count"] == 1 and high["state"] == "triggered"
    crit = next(r for r in rows if r["alert_id"] == ids["crit"])
    assert crit["details"] == {"loss": "512.40"}  # Decimal-safe JSON: strings stay exact

    only = json.loads(precog_cli("alerts", "list", "--unresolved", "--severity", "critical", "--json").stdout)
    assert [r["alert_id"] for r in only] == [ids["crit"]]
    by_component = precog_cli("alerts", "list", "--component", "kalshi_api")
    assert "orders endpoint timing out" in by_component.stdout and "daily loss" not in by_component.stdout

    bad = precog_cli("alerts", "resolve", str(ids["crit"]), "--action", "fixed", "--by", "alice")
    assert bad.returncode == 1
    assert "not acknowledged yet; acknowledge it first" in bad.stderr and "Traceback" not in bad.stderr

    ack = precog_cli("alerts", "ack", str(ids["crit"]), "--by", "alice", "--notes", "on it")
    assert ack.returncode == 0 and f"alert {ids['crit']} acknowledged by alice" in ack.stdout
    resolved = precog_cli("alerts", "resolve", str(ids["crit"]), "--action", "fixed", "--by", "alice",
                          "--notes", "limit resets tomorrow")
    assert resolved.returncode == 0 and "resolved (fixed) by alice" in resolved.stdout

    shown = json.loads(precog_cli("alerts", "show", str(ids["crit"]), "--json").stdout)
    assert shown["state"] == "resolved" and shown["acknowledged_notes"] == "on it"
    assert {d["channel"] for d in shown["deliveries"]} == {"console", "file"}
    text = precog_cli("alerts", "show", str(ids["high"]))
    assert text.returncode == 0 and "deliveries" in text.stdout and "pending" in text.stdout

    missing = precog_cli("alerts", "ack", "999999", "--by", "alice")
    assert missing.returncode == 1 and "alert 999999 does not exist" in missing.stderr


def test_silence_commands(precog_cli) -> None:
    added = precog_cli("alerts", "silence", "add", "--match", "type=api_failure", "--match", "component=kalshi*",
                       "--for", "2h", "--comment", "Kalshi maintenance window", "--by", "alice", "--json")
    assert added.returncode == 0, added.stderr
    silence = json.loads(added.stdout)
    assert silence["matchers"] == "type=api_failure component=kalshi*" and silence["created_by"] == "alice"

    listed = json.loads(precog_cli("alerts", "silence", "list", "--json").stdout)
    assert [s["silence_id"] for s in listed] == [silence["silence_id"]] and listed[0]["active"] is True

    expired = precog_cli("alerts", "silence", "expire", str(silence["silence_id"]), "--by", "bob")
    assert expired.returncode == 0 and "expired" in expired.stdout
    assert "no active silences" in precog_cli("alerts", "silence", "list").stdout
    again = precog_cli("alerts", "silence", "expire", str(silence["silence_id"]))
    assert again.returncode == 1 and "already expired" in again.stderr

    bad = precog_cli("alerts", "silence", "add", "--match", "colour=red", "--for", "2h", "--comment", "x")
    assert bad.returncode == 1 and "unknown key 'colour'" in bad.stderr


def test_channel_test_command(precog_cli, http_server) -> None:
    env = {"CUSTOM_WEBHOOK_URL": f"{http_server.url}/hook", "PRECOG_WEBHOOK_SECRET": "cli-secret-123"}
    ok = precog_cli("alerts", "test", "--channel", "webhook", "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    (webhook,) = result["results"]
    assert webhook["status"] == "sent" and "channel is disabled" in webhook["detail"]
    (req,) = http_server.requests
    assert req.json()["kind"] == "test" and req.json()["alert_id"] == result["alert_id"]

    sms = precog_cli("alerts", "test", "--channel", "sms")
    assert sms.returncode == 1 and "1 channel(s) failed: sms" in sms.stderr
    assert "TWILIO_ACCOUNT_SID is not set" in sms.stdout

    everything = precog_cli("alerts", "test", "--channel", "all", "--json", env=env)
    assert everything.returncode == 0, everything.stdout + everything.stderr
    results = {r["channel"]: r["status"] for r in json.loads(everything.stdout)["results"]}
    assert results == {"console": "sent", "file": "sent", "email": "skipped", "sms": "skipped", "slack": "skipped",
                       "webhook": "sent", "apprise": "skipped", "database": "sent"}

    # Test alerts are closed right away: they never show up as unresolved.
    assert json.loads(precog_cli("alerts", "list", "--unresolved", "--json").stdout) == []
    bad = precog_cli("alerts", "test", "--channel", "pager")
    assert bad.returncode == 1 and "--channel 'pager' is not one of" in bad.stderr


def test_deliver_once_reports_misconfiguration_and_delivers(precog_cli, db_url, tmp_path) -> None:
    _raise_some(db_url, tmp_path, sms=True)
    env = {"PRECOG_CFG__SYSTEM__NOTIFICATIONS__SMS__ENABLED": "true", "TWILIO_ACCOUNT_SID": "AC123"}
    result = precog_cli("alerts", "deliver", "--once", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "sms is enabled but TWILIO_AUTH_TOKEN is not set" in result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["file"] == {"sent": 3}
    assert report["counts"]["console"] == {"sent": 2}
    assert report["counts"]["sms"] == {"failed": 1}  # critical routes to sms: fails with the variable named
    sms = next(o for o in report["outcomes"] if o["channel"] == "sms")
    assert "TWILIO_AUTH_TOKEN is not set" in sms["detail"]


def test_help_has_examples(precog_cli) -> None:
    for args in (("alerts", "silence", "add"), ("alerts", "deliver")):
        shown = precog_cli(*args, "--help")
        assert shown.returncode == 0 and "Example: precog alerts" in shown.stdout
