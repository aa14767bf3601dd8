"""Alert storm: 100,000 alerts over 1,000 fingerprints from 4 concurrent producers.

Runs against an embedded PostgreSQL it creates in a temporary directory. Two runs of the same storm:

* precog  - AlertManager: first occurrence of a fingerprint written (with its outbox rows) in one transaction
            before raise_alert returns; repeats found in the in-process window cache and group-committed
            (COPY + one counter UPDATE per batch). Then the notifier delivers the outbox.
* naive   - per alert: one transaction (lock fingerprint, look up the open original, insert the row, bump
            the counter) and, for a first occurrence, the notifications sent right there in the producer.

Notifications go to real local endpoints: the JSON-lines file, a Twilio-compatible SMS endpoint and a signed
webhook receiver (an HTTP server in this process). Expected notifications = distinct fingerprints routed to
each channel, capped by that channel's rate limits (SMS: 5/hour, 20/day, 300 s cooldown).

    .venv/bin/python benchmarks/alert_storm.py            # full storm (naive run included)
    .venv/bin/python benchmarks/alert_storm.py --quick    # 20,000 alerts
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

from precog.alerts import AlertManager, Notifier
from precog.alerts.model import fingerprint
from precog.alerts.settings import AlertSettings, RateLimit
from precog.db.embedded import server_uri, stop, with_database
from precog.db.migrate import migrate
from precog.domain.jsonutil import dumps

PRODUCERS = 4
FINGERPRINTS = 1000
SECRET = "bench-webhook-secret"  # noqa: S105 - local benchmark only
SEVERITY_OF = ["critical"] * 10 + ["high"] * 90 + ["medium"] * 400 + ["low"] * 500  # by fingerprint number


class Receiver:
    """Local HTTP endpoint standing in for Twilio and the webhook receiver; counts what arrives."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.bad_signatures = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = "sms" if "/Messages.json" in self.path else "webhook"
                if kind == "webhook":
                    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                    if self.headers.get("X-Precog-Signature") != expected:
                        with lock:
                            outer.bad_signatures += 1
                with lock:
                    outer.counts[kind] += 1
                self.send_response(201 if kind == "sms" else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def storm(total: int, seed: int = 7) -> list[list[tuple[int, int]]]:
    """Per producer: (alert number, fingerprint number); every fingerprint appears, order shuffled."""
    rng = random.Random(seed)
    per = total // PRODUCERS
    plans = []
    for p in range(PRODUCERS):
        fps = [(p * per + i) % FINGERPRINTS for i in range(per)]
        rng.shuffle(fps)
        plans.append([(p * per + i, fp) for i, fp in enumerate(fps)])
    return plans


def make_settings(home: Path, receiver: Receiver) -> AlertSettings:
    base = AlertSettings()
    return replace(
        base, environment="test", twilio_base_url=receiver.url, file_path=str(home / "alerts.jsonl"),
        file_max_bytes=50 * 1024 * 1024,
        enabled={**base.enabled, "sms": True, "webhook": True},
        routing={"critical": ("file", "sms", "database"), "high": ("file", "webhook", "database"),
                 "medium": ("file", "database"), "low": ("file", "database")},
        rate_limits={"sms": RateLimit(5, 20, 300), "webhook": RateLimit(120, 2000, 0)},
        renotify_minutes=10080,
    )


def environ(receiver: Receiver) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "bench-token", "TWILIO_FROM_NUMBER": "+15550001111",
            "CRITICAL_ALERT_PHONE_NUMBERS": "+15550002222", "CUSTOM_WEBHOOK_URL": f"{receiver.url}/hook",
            "PRECOG_WEBHOOK_SECRET": SECRET}


def run_producers(plans: list[list[tuple[int, int]]], raise_one: Callable[[int, int], object]) -> float:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(plans) + 1)

    def produce(plan: list[tuple[int, int]]) -> None:
        barrier.wait()
        try:
            for n, fp in plan:
                raise_one(n, fp)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(plan,)) for plan in plans]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def fresh_database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin, name)
    migrate(url)
    return url


def db_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT suppressed), coalesce(sum(duplicate_count), 0) FROM alerts"
        ).fetchone()
    assert found is not None
    rows, originals, repeats = found
    return {"rows": int(rows), "originals": int(originals), "repeats_counted": int(repeats)}


def expected_notifications(settings: AlertSettings, window_seconds: float) -> dict[str, int]:
    routed: Counter[str] = Counter()
    for fp in range(FINGERPRINTS):
        for ch in settings.routes("storm", SEVERITY_OF[fp]):
            if ch != "database":
                routed[ch] += 1
    out = {}
    for ch, n in routed.items():
        limit = settings.rate_limits.get(ch)
        if limit is not None:
            caps = [n]
            if limit.per_hour:
                caps.append(limit.per_hour)
            if limit.per_day:
                caps.append(limit.per_day)
            if limit.cooldown_seconds:
                caps.append(1 + int(window_seconds // limit.cooldown_seconds))
            n = min(caps)
        out[ch] = n
    return out


# ---------------------------------------------------------------------------------------------- precog
def run_precog(admin: str, home: Path, receiver: Receiver, plans: list[list[tuple[int, int]]]) -> dict[str, Any]:
    url = fresh_database(admin, "alert_storm_precog")
    settings = make_settings(home / "precog", receiver)
    env = environ(receiver)
    manager = AlertManager(url, settings=settings, environ=env, pool_max=PRODUCERS + 2, pool_min=PRODUCERS + 1,
                           spool_path=home / "spool.jsonl", replay_spool=False)
    manager._pool.wait(timeout=30)  # a long-running process has its connections open before a storm hits
    notifier = Notifier(url, settings=settings, environ=env, home=home)

    def raise_one(n: int, fp: int) -> object:
        return manager.raise_alert("storm", SEVERITY_OF[fp], "bench", f"storm alert {n} on fingerprint {fp}",
                                   {"n": n, "fp": fp}, dedup_key=f"fp-{fp}")

    started = time.perf_counter()
    accepted_s = run_producers(plans, raise_one)
    manager.flush()
    durable_s = time.perf_counter() - started
    manager.close()
    t0 = time.perf_counter()
    report = notifier.deliver_pending()
    deliver_s = time.perf_counter() - t0
    notifier.close()
    counts = report.counts()
    return {"accepted_s": accepted_s, "durable_s": durable_s, "deliver_s": deliver_s, "db": db_counts(url),
            "sent": {ch: c.get("sent", 0) for ch, c in counts.items()},
            "limited": {ch: c.get("rate_limited", 0) for ch, c in counts.items()},
            "failed": {ch: c.get("failed", 0) + c.get("retry", 0) for ch, c in counts.items()},
            "expected": expected_notifications(settings, durable_s + deliver_s)}


# ---------------------------------------------------------------------------------------------- naive
def run_naive(admin: str, home: Path, receiver: Receiver, plans: list[list[tuple[int, int]]]) -> dict[str, Any]:
    url = fresh_database(admin, "alert_storm_naive")
    settings = make_settings(home / "naive", receiver)
    env = environ(receiver)
    path = home / "naive-alerts.jsonl"
    file_lock = threading.Lock()
    local = threading.local()
    sent: Counter[str] = Counter()
    window = timedelta(minutes=settings.dedup_window_minutes)

    def conn() -> tuple[psycopg.Connection[Any], httpx.Client]:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(url)
            local.http = httpx.Client(timeout=10)
        return local.conn, local.http

    def raise_one(n: int, fp: int) -> None:
        c, http = conn()
        severity = SEVERITY_OF[fp]
        key = fingerprint("storm", "bench", f"fp-{fp}")
        message = f"storm alert {n} on fingerprint {fp}"
        now = datetime.now(UTC)
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s, %s)", (1, int(key[:7], 16)))
            row = c.execute("SELECT alert_id FROM alerts WHERE fingerprint = %s AND NOT suppressed AND resolved_at IS NULL"
                            " AND triggered_at > %s ORDER BY triggered_at DESC LIMIT 1", (key, now - window)).fetchone()
            new = c.execute(
                "INSERT INTO alerts (alert_type, severity, component, message, details, triggered_at, environment,"
                " fingerprint, dedup_key, suppressed, duplicate_of, last_seen_at) VALUES"
                " ('storm', %s, 'bench', %s, %s, %s, 'test', %s, %s, %s, %s, %s) RETURNING alert_id",
                (severity, message, Jsonb({"n": n, "fp": fp}), now, key, f"fp-{fp}", row is not None,
                 row[0] if row else None, now)).fetchone()
            if row is not None:
                c.execute("UPDATE alerts SET duplicate_count = duplicate_count + 1, last_seen_at = %s WHERE alert_id = %s",
                          (now, row[0]))
        if row is None:  # first occurrence: notify synchronously, in the producer
            assert new is not None
            doc = {"alert_id": new[0], "severity": severity, "message": message, "fingerprint": key}
            for ch in settings.routes("storm", severity):
                if ch == "file":
                    with file_lock, open(path, "a", encoding="utf-8") as fh:
                        fh.write(dumps(doc) + "\n")
                elif ch == "sms":
                    http.post(f"{receiver.url}/2010-04-01/Accounts/{env['TWILIO_ACCOUNT_SID']}/Messages.json",
                              data={"To": env["CRITICAL_ALERT_PHONE_NUMBERS"], "From": env["TWILIO_FROM_NUMBER"],
                                    "Body": message}, auth=(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"]))
                elif ch == "webhook":
                    body = dumps(doc).encode()
                    http.post(env["CUSTOM_WEBHOOK_URL"], content=body, headers={
                        "Content-Type": "application/json",
                        "X-Precog-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()})
                if ch != "database":
                    sent[ch] += 1

    elapsed = run_producers(plans, raise_one)
    return {"accepted_s": elapsed, "durable_s": elapsed, "db": db_counts(url), "sent": dict(sent)}


# ---------------------------------------------------------------------------------------------- report
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 alerts instead of 100,000.")
    parser.add_argument("--alerts", type=int, default=None, help="Storm size (default 100,000; 20,000 with --quick).")
    args = parser.parse_args()
    # Rate-limited SMS are expected here (that is the point); they are counted in the table instead.
    logging.getLogger("precog.alerts").setLevel(logging.ERROR)
    total = args.alerts or (20_000 if args.quick else 100_000)
    plans = storm(total)
    total = sum(len(p) for p in plans)

    with tempfile.TemporaryDirectory(prefix="alert-storm-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        print(f"starting embedded PostgreSQL in {home} ...", flush=True)
        admin = server_uri(home / "pg")
        receiver = Receiver()
        try:
            print(f"storm: {total:,} alerts, {FINGERPRINTS:,} fingerprints, {PRODUCERS} producer threads", flush=True)
            ours = run_precog(admin, home, receiver, plans)
            ours_http = dict(receiver.counts)
            receiver.counts.clear()
            print("precog run done; naive baseline running ...", flush=True)
            naive = run_naive(admin, home, receiver, plans)
            bad_signatures = receiver.bad_signatures
        finally:
            receiver.close()
            stop(home / "pg")

    ours_rate = total / ours["accepted_s"]
    ours_durable = total / ours["durable_s"]
    naive_rate = total / naive["accepted_s"]
    sent_total = sum(ours["sent"].values())
    expected_total = sum(ours["expected"].values())

    print()
    print(f"{'':34}{'precog':>16}{'naive':>16}")
    print(f"{'alerts raised':34}{total:>16,}{total:>16,}")
    print(f"{'accepted (raise returned) s':34}{ours['accepted_s']:>16.2f}{naive['accepted_s']:>16.2f}")
    print(f"{'accepted alerts/s':34}{ours_rate:>16,.0f}{naive_rate:>16,.0f}")
    print(f"{'durable (all rows committed) s':34}{ours['durable_s']:>16.2f}{naive['durable_s']:>16.2f}")
    print(f"{'durable alerts/s':34}{ours_durable:>16,.0f}{naive_rate:>16,.0f}")
    print(f"{'alert rows in database':34}{ours['db']['rows']:>16,}{naive['db']['rows']:>16,}")
    print(f"{'originals (unsuppressed)':34}{ours['db']['originals']:>16,}{naive['db']['originals']:>16,}")
    print(f"{'repeats counted on originals':34}{ours['db']['repeats_counted']:>16,}{naive['db']['repeats_counted']:>16,}")
    print(f"{'notifier delivery time s':34}{ours['deliver_s']:>16.2f}{'(in producers)':>16}")
    print()
    print(f"{'channel':10}{'expected':>10}{'sent':>8}{'limited':>9}{'failed':>8}{'received':>10}{'naive sent':>12}")
    for ch in sorted(ours["expected"]):
        received = ours_http.get(ch, "-") if ch in ("sms", "webhook") else "-"
        print(f"{ch:10}{ours['expected'][ch]:>10}{ours['sent'].get(ch, 0):>8}{ours['limited'].get(ch, 0):>9}"
              f"{ours['failed'].get(ch, 0):>8}{received!s:>10}{naive['sent'].get(ch, 0):>12}")
    ok = (sent_total == expected_total and ours["db"]["rows"] == total and ours["db"]["originals"] == FINGERPRINTS
          and ours["db"]["repeats_counted"] == total - FINGERPRINTS and bad_signatures == 0
          and all(ours_http.get(ch, 0) == ours["sent"].get(ch, 0) for ch in ("sms", "webhook")))
    print()
    print(f"check: notifications sent {sent_total} == expected {expected_total} (distinct fingerprints per channel, "
          f"capped by rate limits); rows {ours['db']['rows']:,} == alerts {total:,}; bad signatures {bad_signatures}: "
          f"{'OK' if ok else 'MISMATCH'}")
    print(f"alert storm: {ours_rate:,.0f} alerts/s, {sent_total} notifications, speedup vs naive {ours_rate / naive_rate:.1f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
