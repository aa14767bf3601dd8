"""Dedup by fingerprint: repeats inside the window are stored suppressed, counted on the original, never re-sent."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import psycopg

from alerts.alertkit import make_settings
from precog.alerts import fingerprint


def _outbox_rows(db_url: str) -> list[tuple[int, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT alert_id, channel FROM alert_outbox ORDER BY outbox_id").fetchall()


def test_fingerprint_is_md5_of_type_component_key() -> None:
    expected = hashlib.md5(b"circuit_breaker:position_manager:daily_loss_limit").hexdigest()  # noqa: S324
    assert fingerprint("circuit_breaker", "position_manager", "daily_loss_limit") == expected


def test_repeat_in_window_is_suppressed_and_counted_on_original(alerting, clock, db_url) -> None:
    a = alerting()
    first = a.manager.raise_alert("api_failure", "high", "kalshi_api", "orders endpoint timing out",
                                  {"latency_ms": 5400}, dedup_key="orders")
    clock.advance(minutes=10)
    second = a.manager.raise_alert("api_failure", "high", "kalshi_api", "orders endpoint timing out again",
                                   dedup_key="orders")
    clock.advance(minutes=10)
    third = a.manager.raise_alert("api_failure", "high", "kalshi_api", "still timing out", dedup_key="orders")
    a.manager.flush()
    assert len({first, second, third}) == 3

    original = a.manager.get(first)
    assert not original.suppressed
    assert original.duplicate_count == 2
    assert original.last_seen_at == clock.now()
    assert original.environment == "test"
    assert original.fingerprint == fingerprint("api_failure", "kalshi_api", "orders")
    for rid in (second, third):
        repeat = a.manager.get(rid)
        assert repeat.suppressed and repeat.duplicate_of == first
        assert repeat.fingerprint == original.fingerprint
    # Only the original was queued (console + file for "high"; database is the row itself).
    assert {r[0] for r in _outbox_rows(db_url)} == {first}
    report = a.notifier.deliver_pending()
    assert report.counts() == {"console": {"sent": 1}, "file": {"sent": 1}}


def test_new_alert_after_window_is_delivered_again(alerting, clock, db_url) -> None:
    a = alerting()
    first = a.manager.raise_alert("api_failure", "high", "kalshi_api", "down", dedup_key="k")
    clock.advance(minutes=59)
    assert a.manager.get(a.manager.raise_alert("api_failure", "high", "kalshi_api", "down", dedup_key="k")).suppressed
    clock.advance(minutes=2)  # 61 minutes after the original: the 60-minute window has closed
    third = a.manager.raise_alert("api_failure", "high", "kalshi_api", "down", dedup_key="k")
    a.manager.flush()
    assert not a.manager.get(third).suppressed
    assert {r[0] for r in _outbox_rows(db_url)} == {first, third}


def test_window_is_configurable_per_type(alerting, clock) -> None:
    a = alerting(make_settings(dedup_window_minutes_by_type={"stale_price": 5}))
    a.manager.raise_alert("stale_price", "medium", "ingest", "price stale", dedup_key="KXNFL")
    a.manager.raise_alert("api_failure", "medium", "ingest", "api", dedup_key="x")
    clock.advance(minutes=6)
    again = a.manager.raise_alert("stale_price", "medium", "ingest", "price stale", dedup_key="KXNFL")
    other = a.manager.raise_alert("api_failure", "medium", "ingest", "api", dedup_key="x")
    a.manager.flush()
    assert not a.manager.get(again).suppressed  # 5-minute window for stale_price
    assert a.manager.get(other).suppressed  # default 60 minutes for the rest


def test_zero_window_disables_dedup(alerting) -> None:
    a = alerting(make_settings(dedup_window_minutes=0))
    ids = [a.manager.raise_alert("fill", "low", "executor", "filled", dedup_key="same") for _ in range(3)]
    assert not any(a.manager.get(i).suppressed for i in ids)


def test_different_keys_and_default_key_is_the_message(alerting) -> None:
    a = alerting()
    x = a.manager.raise_alert("api_failure", "high", "kalshi_api", "a", dedup_key="one")
    y = a.manager.raise_alert("api_failure", "high", "kalshi_api", "a", dedup_key="two")
    z1 = a.manager.raise_alert("api_failure", "high", "kalshi_api", "same text")
    z2 = a.manager.raise_alert("api_failure", "high", "kalshi_api", "same text")
    a.manager.flush()
    assert not a.manager.get(x).suppressed and not a.manager.get(y).suppressed
    assert not a.manager.get(z1).suppressed and a.manager.get(z2).suppressed


def test_severity_escalation_is_never_suppressed(alerting, db_url) -> None:
    a = alerting()
    medium = a.manager.raise_alert("loss_threshold", "medium", "risk", "loss $120", dedup_key="daily")
    critical = a.manager.raise_alert("loss_threshold", "critical", "risk", "loss $480", dedup_key="daily")
    repeat = a.manager.raise_alert("loss_threshold", "high", "risk", "loss $300", dedup_key="daily")
    a.manager.flush()
    assert not a.manager.get(critical).suppressed
    assert a.manager.get(repeat).duplicate_of == critical  # a lower severity repeat counts on the critical one
    assert {r[0] for r in _outbox_rows(db_url)} == {medium, critical}


def test_resolved_original_does_not_suppress(alerting) -> None:
    a = alerting()
    first = a.manager.raise_alert("venue_down", "critical", "kalshi", "venue down", dedup_key="kalshi")
    a.manager.acknowledge(first, "alice")
    a.manager.resolve(first, "alice", "fixed")
    again = a.manager.raise_alert("venue_down", "critical", "kalshi", "venue down", dedup_key="kalshi")
    assert not a.manager.get(again).suppressed


def test_resolution_seen_by_another_process_stops_suppression(alerting, db_url, clock) -> None:
    """Process A caches the open window; process B (the CLI) resolves it; A's next batch notices, and the
    occurrence buffered after the resolution becomes a new, notifying alert (later ones count on it)."""
    a = alerting()
    first = a.manager.raise_alert("venue_down", "critical", "kalshi", "down", dedup_key="k")
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE alerts SET acknowledged_at = %s, acknowledged_by = 'bob', resolved_at = %s,"
                     " resolved_by = 'bob', resolution_action = 'fixed' WHERE alert_id = %s",
                     (clock.now(), clock.now(), first))
    again = a.manager.raise_alert("venue_down", "critical", "kalshi", "down", dedup_key="k")  # buffered (cached)
    a.manager.flush()  # the batch sees the original resolved: `again` is raised as a new occurrence
    assert not a.manager.get(again).suppressed
    fresh = a.manager.raise_alert("venue_down", "critical", "kalshi", "down", dedup_key="k")
    assert a.manager.get(fresh).duplicate_of == again


def test_two_processes_share_one_original(alerting, db_url) -> None:
    """Two managers (as two processes would) raising the same fingerprint produce one original."""
    a, b = alerting(), alerting()
    first = a.manager.raise_alert("api_failure", "high", "kalshi_api", "x", dedup_key="k")
    other = b.manager.raise_alert("api_failure", "high", "kalshi_api", "x", dedup_key="k")
    b.manager.flush()
    assert b.manager.get(other).duplicate_of == first
    assert a.manager.get(first).duplicate_count == 1


def test_concurrent_producers_one_original_per_fingerprint(alerting, db_url) -> None:
    a = alerting()
    errors: list[BaseException] = []

    def produce(worker: int) -> None:
        try:
            for i in range(300):
                a.manager.raise_alert("api_failure", "medium", "kalshi_api", f"failure {i}", dedup_key=f"fp{i % 10}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a.manager.flush()
    assert not errors
    with psycopg.connect(db_url) as conn:
        originals = conn.execute("SELECT count(*), sum(duplicate_count) FROM alerts WHERE NOT suppressed").fetchone()
        total = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
        outbox = conn.execute("SELECT count(DISTINCT alert_id) FROM alert_outbox").fetchone()[0]
    assert originals == (10, 1190)
    assert total == 1200
    assert outbox == 10


def test_group_commit_writes_repeats_within_the_interval(alerting, db_url) -> None:
    a = alerting(make_settings(group_commit_ms=20))
    first = a.manager.raise_alert("api_failure", "low", "feed", "x", dedup_key="k")
    repeat = a.manager.raise_alert("api_failure", "low", "feed", "x", dedup_key="k")
    deadline = timedelta(seconds=5).total_seconds()
    import time

    start = time.monotonic()
    while time.monotonic() - start < deadline:
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT suppressed FROM alerts WHERE alert_id = %s", (repeat,)).fetchone()
        if row is not None:
            break
        time.sleep(0.02)
    assert row == (True,)
    assert a.manager.get(first).duplicate_count == 1


def test_synchronous_mode_writes_repeat_before_returning(alerting, db_url) -> None:
    a = alerting(make_settings(group_commit_ms=0))
    a.manager.raise_alert("api_failure", "low", "feed", "x", dedup_key="k")
    repeat = a.manager.raise_alert("api_failure", "low", "feed", "x", dedup_key="k")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT suppressed FROM alerts WHERE alert_id = %s", (repeat,)).fetchone() == (True,)
