"""Secrets never leak: a run with known secret values (Kalshi key id + private key, SMTP password, Twilio token,
Slack webhook URL, webhook signing secret, dashboard token), through Kalshi CLI calls (success, 401, 5xx), a
short demo, alert deliveries on every channel (failures included, against servers that echo what they got),
and dashboard requests (refused and accepted). Then every captured stdout/stderr (DEBUG logging), every text
and JSON column of every table, every file under PRECOG_HOME and every notification body is scanned."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization

from precog.reliability import tally
from precog.reliability.secrets_scan import SecretSet, scan_database, scan_text, scan_tree
from precog.venues.exchange.auth import generate_key_pair
from reliability.conftest import RelExchange


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _echo(req: Any) -> tuple[int, dict[str, str], bytes]:
    """A hostile receiver: fails and echoes everything it was sent (path, auth header, body) in its error."""
    echoed = json.dumps({"message": "rejected", "path": req.path, "auth": req.headers.get("authorization", ""),
                         "body": req.body.decode("utf-8", "replace")[:500]})
    return 400, {"Content-Type": "application/json"}, echoed.encode()


@pytest.mark.timeout(240)
def test_rel_known_secrets_appear_in_no_log_error_alert_row_or_file(
        db_url: str, rel_exchange: RelExchange, http_server: Any, smtp_factory: Any, self_signed: Any,
        tmp_path: Path) -> None:
    rx = rel_exchange
    tag = pysecrets.token_hex(6)
    key_id = f"relkeyid-{tag}-0000"
    key_id, key_path, public_pem = generate_key_pair(tmp_path / "keys", key_id=key_id)
    rx.server.keys.register(rx.user, serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    smtp = smtp_factory("starttls")
    home = Path(os.environ["PRECOG_HOME"])
    values = {
        "KALSHI_API_KEY_ID": key_id,
        "KALSHI_PRIVATE_KEY": key_path.read_text(),
        "SMTP_PASSWORD": f"smtp-pw-{tag}",
        "TWILIO_AUTH_TOKEN": f"twilio-token-{tag}",
        "SLACK_WEBHOOK_URL": f"{http_server.url}/services/T0REL/B0REL/slacksecret{tag}",
        "PRECOG_WEBHOOK_SECRET": f"whsec-{tag}",
        "PRECOG_DASHBOARD_TOKEN": f"dash-token-{tag}-abcdef",
    }
    needles = SecretSet.of(values)
    http_server.responder = lambda req: (_echo(req) if "/services/" in req.path or "/Accounts/" in req.path
                                         else (200, {"Content-Type": "text/plain"}, b"ok"))
    env = {
        "PRECOG_DATABASE_URL": db_url, "PRECOG_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200",
        "LOG_LEVEL": "DEBUG", "PRECOG_DEBUG": "1",
        "KALSHI_API_KEY_ID": key_id, "KALSHI_PRIVATE_KEY_PATH": str(key_path), "KALSHI_BASE_URL": rx.base_url,
        **smtp.env(self_signed, SMTP_PASSWORD=values["SMTP_PASSWORD"]),  # the server expects another: auth fails
        "TWILIO_ACCOUNT_SID": "ACrel0000", "TWILIO_AUTH_TOKEN": values["TWILIO_AUTH_TOKEN"],
        "TWILIO_FROM_NUMBER": "+15550000000", "CRITICAL_ALERT_PHONE_NUMBERS": "+15550000001",
        "SLACK_WEBHOOK_URL": values["SLACK_WEBHOOK_URL"],
        "CUSTOM_WEBHOOK_URL": f"{http_server.url}/hook", "PRECOG_WEBHOOK_SECRET": values["PRECOG_WEBHOOK_SECRET"],
        "PRECOG_DASHBOARD_TOKEN": values["PRECOG_DASHBOARD_TOKEN"],
        "PRECOG_CFG__SYSTEM__NOTIFICATIONS__SMS__TWILIO_BASE_URL": http_server.url,
        "PRECOG_CFG__SYSTEM__ENVIRONMENT__ACTIVE": "test",
    }
    for ch in ("EMAIL", "SMS", "SLACK", "WEBHOOK"):
        env[f"PRECOG_CFG__SYSTEM__NOTIFICATIONS__{ch}__ENABLED"] = "true"
    env["PRECOG_CFG__SYSTEM__ALERT_ROUTING__CRITICAL"] = json.dumps(
        ["console", "file", "email", "sms", "slack", "webhook", "database"])
    full_env = dict(os.environ, **env)
    outputs: list[tuple[str, str]] = []

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True,
                              env=full_env, timeout=timeout, check=False)
        outputs.append((f"stdout of precog {' '.join(args)}", done.stdout))
        outputs.append((f"stderr of precog {' '.join(args)}", done.stderr))
        return done

    base = ("--env", "local", "--base-url", rx.base_url)
    assert run("kalshi", "balance", *base, "--json").returncode == 0
    rx.admin.fail_next(1, status=401, path_prefix="/trade-api/v2/portfolio")
    refused = run("kalshi", "positions", *base)
    assert refused.returncode == 1 and "401" in refused.stderr + refused.stdout
    rx.admin.fail_next(20, status=503, path_prefix="/trade-api/v2/portfolio")
    assert run("kalshi", "orders", *base).returncode == 1
    rx.admin.clear_faults()
    # alert deliveries on every channel (SMTP auth fails, Slack and Twilio answer with an echo of the request)
    run("alerts", "test", "--channel", "all")
    run("alerts", "deliver", "--once")
    demo = run("demo", "--games", "1", "--speed", "0", timeout=180)
    assert demo.returncode == 0, demo.stderr[-2000:]

    # the dashboard: a refused write (wrong token), an accepted one, reads
    port = _free_port()
    dash = subprocess.Popen([sys.executable, "-m", "precog", "dashboard", "--port", str(port)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base_url + "/api/overview", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        wrong = httpx.post(base_url + "/api/trading/halt", json={"reason": "x", "by": "rel"},
                           headers={"Authorization": "Bearer " + values["PRECOG_DASHBOARD_TOKEN"][:-1] + "X"})
        assert wrong.status_code in (401, 403)
        outputs.append(("dashboard 401 response", wrong.text))
        ok = httpx.post(base_url + "/api/trading/halt", json={"reason": "reliability check", "by": "rel"},
                        headers={"Authorization": "Bearer " + values["PRECOG_DASHBOARD_TOKEN"]})
        assert ok.status_code < 300, ok.text
        for path in ("/api/overview", "/api/alerts?state=all", "/api/controls", "/"):
            outputs.append((f"dashboard GET {path}", httpx.get(base_url + path, timeout=10).text))
    finally:
        dash.send_signal(signal.SIGINT)
        out, err = dash.communicate(timeout=20)
        outputs.append(("dashboard stdout", out))
        outputs.append(("dashboard stderr", err))

    # notification bodies the receivers got (the Slack URL path and Basic auth header are the transport, not
    # the message: only bodies are scanned) and the e-mails
    bodies = [(f"notification body to {r.path.split('/')[1]}", r.body.decode("utf-8", "replace"))
              for r in http_server.requests]
    bodies += [("e-mail", m.message.as_string()) for m in smtp.handler.messages]

    findings = [f for where, text in outputs + bodies for f in scan_text(where, text, needles)]
    with psycopg.connect(db_url) as conn:
        findings += scan_database(conn, needles)
        n_alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
        failures = conn.execute("SELECT count(*) FROM alert_outbox WHERE last_error IS NOT NULL").fetchone()[0]
    findings += scan_tree(home, needles)
    assert n_alerts >= 1 and failures >= 1, "the run must have produced alerts and failed deliveries to scan"
    assert any(r.path.startswith("/services/") for r in http_server.requests), "Slack was called"
    assert not findings, "\n".join(map(str, findings))
    # control: the scanner does find each secret where it is planted
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "leak.log").write_text("\n".join(values.values()))
    assert {f.secret for f in scan_tree(planted, needles)} == set(values)
    pem_line = values["KALSHI_PRIVATE_KEY"].splitlines()[3]
    assert needles.names_in(f"traceback ... {pem_line} ...") == ["KALSHI_PRIVATE_KEY"]
    tally.record("security: known secrets through logs, errors, alerts, DB, files", len(values),
                 f"none found in {len(outputs) + len(bodies)} captured outputs/bodies, every text column of "
                 f"every table, and {sum(1 for p in home.rglob('*') if p.is_file())} files under PRECOG_HOME")


def test_rel_loose_private_key_permissions_warn_without_showing_the_key(
        rel_key: tuple[str, Path, bytes], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from precog.venues.kalshi.auth import KalshiSigner

    key_id, key_path, _ = rel_key
    loose = tmp_path / "loose.pem"
    loose.write_bytes(key_path.read_bytes())
    loose.chmod(0o644)
    with caplog.at_level("WARNING", logger="precog.venues.kalshi.auth"):
        KalshiSigner.from_files(key_id, loose)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(loose) in w and "chmod 600" in w and "0o644" in w for w in warnings), warnings
    assert not scan_text("warning", "\n".join(warnings), SecretSet.of({"pem": key_path.read_text()}))
    caplog.clear()
    tight = tmp_path / "tight.pem"
    tight.write_bytes(key_path.read_bytes())
    tight.chmod(0o600)
    with caplog.at_level("WARNING", logger="precog.venues.kalshi.auth"):
        KalshiSigner.from_files(key_id, tight)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # a garbage key file: one clear error naming the file, never echoing its content
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkw\n-----END RSA PRIVATE KEY-----\n")
    from precog.venues.kalshi.errors import KalshiConfigError

    with pytest.raises(KalshiConfigError) as err:
        KalshiSigner.from_files(key_id, bad)
    assert str(bad) in str(err.value) and "c2VjcmV0" not in str(err.value)
    tally.record("security: private key file readable by group/others", 1,
                 "a warning naming the file and `chmod 600`; the key itself never shown")


def test_rel_dashboard_and_webhook_compare_secrets_in_constant_time() -> None:
    """Code inspection: every comparison of a presented token/signature goes through hmac.compare_digest."""
    import ast
    import inspect

    from precog.alerts.channels import webhook
    from precog.web import app, auth

    for module in (auth, webhook):
        tree = ast.parse(inspect.getsource(module))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr == "compare_digest"]
        assert calls, f"{module.__name__} does not use hmac.compare_digest"
    # no == / != against the token anywhere in the web package's auth paths
    for module in (auth, app):
        source = inspect.getsource(module)
        for needle in ("token.value ==", "== token.value", "presented ==", "== presented", "token.value !="):
            assert needle not in source, f"{module.__name__}: plain comparison `{needle}`"
    token = auth.DashboardToken("x" * 32, "env")
    assert token.matches("x" * 32) and not token.matches("x" * 31 + "y") and not token.matches("")
    assert "x" * 32 not in repr(token) and "x" * 32 not in str(token)


def test_rel_webhook_payloads_are_signed_and_the_signature_verifies(http_server: Any, tmp_path: Path) -> None:
    """A delivered webhook carries an HMAC-SHA256 signature of the raw body that a receiver can verify;
    a tampered body or another secret does not verify."""
    import datetime as dt

    from precog.alerts.channels.base import Notification
    from precog.alerts.channels.webhook import SIGNATURE_HEADER, WebhookChannel, verify
    from precog.alerts.model import AlertRecord
    from precog.alerts.redact import Redactor

    secret = "rel-webhook-signing-secret"
    channel = WebhookChannel({"CUSTOM_WEBHOOK_URL": http_server.url + "/hook", "PRECOG_WEBHOOK_SECRET": secret},
                             timeout=5, redactor=Redactor([secret]))
    fields = {f: None for f in AlertRecord.__dataclass_fields__}
    fields.update(alert_id=7, alert_uuid="00000000-0000-0000-0000-000000000007", alert_type="venue_down",
                  severity="critical", category="venue", component="kalshi", message="venue unreachable",
                  details={}, environment="test", fingerprint="f" * 64, triggered_at=dt.datetime.now(dt.UTC),
                  suppressed=False, duplicate_count=0, last_seen_at=dt.datetime.now(dt.UTC))
    fields = {k: v for k, v in fields.items() if v is not None or k in AlertRecord.__annotations__}
    alert = AlertRecord(**fields)
    channel.send(Notification(outbox_id=42, kind="initial", alert=alert, attempt=1))
    channel.close()
    req = http_server.requests[-1]
    signature = req.headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("sha256=") and verify(secret, req.body, signature)
    assert not verify(secret, req.body.replace(b"venue unreachable", b"all is fine"), signature)
    assert not verify("another-secret", req.body, signature)
    assert secret not in req.body.decode()
    tally.record("security: webhook payload tampered / signed with another secret", 2,
                 "HMAC-SHA256 signature over the raw body; verification refuses both")


async def test_rel_a_trading_run_stores_no_kalshi_key_id(db_url: str, rel_exchange: RelExchange,
                                                         tmp_path: Path) -> None:
    """`precog run --venue kalshi` names the account in our books; the API key id must not be that name (it was:
    engine_runs.account_ref held '<platform>:<url>:<key id>' until the engine hashed it)."""
    from precog.engine.core import Engine
    from precog.engine.kalshi_venue import KalshiVenue
    from reliability.relkit import kalshi_client, make_engine

    rx = rel_exchange
    key_id, key_path, public_pem = generate_key_pair(tmp_path / "keys", key_id=f"relkeyid-{pysecrets.token_hex(8)}")
    rx.server.keys.register(rx.user, serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    conn = psycopg.connect(db_url, autocommit=True)
    client = kalshi_client(rx.base_url, rx.ws_url, key_id, key_path)
    template = make_engine(conn, client, rx.tickers)
    # what `precog run --venue kalshi` builds: KalshiVenue(client) with its default account_ref
    engine = Engine(conn, KalshiVenue(client), config=template.config, mode="paper", kind="test",
                    methods=template.methods, probabilities=template.probabilities,
                    markets=list(template.markets.values()), clock=template.clock)
    await engine.start()
    await engine.step()
    await engine.stop()
    await client.aclose()
    findings = scan_database(conn, SecretSet.of({"KALSHI_API_KEY_ID": key_id}))
    conn.close()
    assert not findings, "\n".join(map(str, findings))
