"""A venue outage under `precog run` reads as one line per failed cycle, not a traceback.

Found by the session 16 crash/restart audit: with the exchange process stopped under a running loop, every
failed cycle printed a 30-line traceback of the HTTP client to the console (about every 10 s, for as long as the
venue was down), burying the one line that says what happened. An outage is an expected operational failure:
the loop logs `engine step failed: <what and where>` and raises its alerts; a traceback is for bugs (or
--debug). An unexpected error keeps its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest

from precog.engine.alert_sink import TableAlertSink
from precog.engine.runner import run_loop
from reliability.conftest import RelExchange
from reliability.relkit import kalshi_client, make_engine


def _step_failures(caplog: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "precog.engine.runner" and r.getMessage().startswith(
        "engine step failed")]


@pytest.mark.timeout(120)
async def test_rel_a_venue_outage_logs_one_line_per_failed_cycle(db_url: str, rel_exchange: RelExchange,
                                                                 caplog: Any) -> None:
    rx = rel_exchange
    conn = psycopg.connect(db_url, autocommit=True)
    alerts = TableAlertSink(conn, "test")
    client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path, timeout=0.6, alerts=alerts)
    engine = make_engine(conn, client, rx.tickers, alerts=alerts)
    armed: list[int] = []

    def before_step(_: float) -> None:
        if engine.stats.steps == 2 and not armed:
            armed.append(1)
            rx.admin.fail_next(10_000, status=503)  # the venue answers nothing but 503 (retries give up)

    def outage_seen() -> bool:
        if len(_step_failures(caplog)) < 2:
            return False
        rx.admin.clear_faults()  # the venue is back before the loop stops (its stop cancels and books at the venue)
        return True

    caplog.set_level(logging.WARNING, logger="precog.engine.runner")
    try:
        await run_loop(engine, interval_s=0.05, venue_label="local", before_step=before_step, until=outage_seen,
                       duration_s=60)
    finally:
        rx.admin.clear_faults()
        await client.aclose()
    failures = _step_failures(caplog)
    assert len(failures) >= 2, "the outage never failed a cycle"
    for record in failures:
        assert record.levelno == logging.ERROR and "503" in record.getMessage()
        assert record.exc_info is None, "an outage logged a traceback"
    # the alert still says what happened
    assert conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'engine_step_failed'").fetchone()[0] >= 1
    conn.close()


@pytest.mark.timeout(120)
async def test_rel_a_stop_during_an_outage_still_ends_the_run(db_url: str, rel_exchange: RelExchange,
                                                             caplog: Any) -> None:
    """Ctrl-C while the venue is down: the run ends (its row says what could not be done at the venue) instead of
    the stop raising and leaving the run looking alive; the next start reconciles with the venue."""
    rx = rel_exchange
    conn = psycopg.connect(db_url, autocommit=True)
    alerts = TableAlertSink(conn, "test")
    client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path, timeout=0.6, alerts=alerts)
    engine = make_engine(conn, client, rx.tickers, alerts=alerts)

    def down_after_two_cycles() -> bool:
        if engine.stats.steps < 2:
            return False
        rx.admin.fail_next(10_000, status=503)  # the venue goes down and stays down through the stop
        return True

    caplog.set_level(logging.WARNING, logger="precog.engine.core")
    try:
        await run_loop(engine, interval_s=0.05, venue_label="local", until=down_after_two_cycles, duration_s=60)
    finally:
        rx.admin.clear_faults()
        await client.aclose()
    ended, summary = conn.execute("SELECT ended_at IS NOT NULL, summary FROM engine_runs WHERE run_id = %s",
                                  (engine.run_id,)).fetchone()  # type: ignore[misc]
    assert ended, "the run was left looking alive"
    assert any("fills not booked" in item and "503" in item for item in summary["stop_incomplete"]), summary
    assert any("stopped with the venue unreachable" in r.getMessage() for r in caplog.records)
    conn.close()
