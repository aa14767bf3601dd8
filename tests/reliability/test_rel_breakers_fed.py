"""The trading loop feeds the circuit breakers that watch the venue and the database (spec 5.4): failing Kalshi
requests trip api_failures (and api_outage while they keep failing), which pause new entries and raise alerts; a
database that keeps failing trips db_failures, which halts trading until an operator resets it, even though its
event could only be written once the database was back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.db import embedded
from precog.engine.alert_sink import TableAlertSink
from precog.engine.runner import run_loop
from precog.reliability import dbcontrol
from precog.trading.scan import board_for
from precog.trading.settings import TradingSettings
from reliability.conftest import RelExchange
from reliability.relkit import MovingMarketMaker, fast_config, kalshi_client, make_engine


def _board(url: str, alerts: Any, **changes: Any) -> Any:
    settings = TradingSettings.from_config(fast_config())
    settings = dataclasses.replace(settings, breakers=dataclasses.replace(settings.breakers, **changes))
    return board_for(lambda: psycopg.connect(url, autocommit=True), settings, alerts=alerts)


@pytest.mark.timeout(120)
async def test_failing_venue_requests_trip_api_failures_and_an_outage_that_recovers(
        db_url: str, rel_exchange: RelExchange) -> None:
    rx = rel_exchange
    conn = psycopg.connect(db_url, autocommit=True)
    alerts = TableAlertSink(conn, "test")
    client = kalshi_client(rx.base_url, rx.ws_url, rx.key_id, rx.key_path, timeout=0.6, alerts=alerts)
    board = _board(db_url, alerts, api_outage_seconds=8)  # 5 failed requests take ~5 s here
    engine = make_engine(conn, client, rx.tickers, alerts=alerts, breakers=board)
    mm = MovingMarketMaker(rx.exchange, rx.mm, rx.tickers)
    mm.start()
    seen: dict[str, Any] = {}

    def before_step(_: float) -> None:
        if engine.stats.steps == 5 and "armed" not in seen:
            seen["armed"] = datetime.now(UTC)
            rx.admin.fail_next(10_000, status=503)  # the venue answers nothing but 503 until cleared
        if board.is_open("api_outage") and "cleared" not in seen:
            seen["both_open"] = board.is_open("api_failures")
            seen["cleared"] = datetime.now(UTC)
            rx.admin.clear_faults()

    try:
        await run_loop(engine, interval_s=0.05, venue_label="local", before_step=before_step,
                       until=lambda: "cleared" in seen and engine.stats.steps >= 12, duration_s=60)
    finally:
        mm.stop()
        await client.aclose()
    assert "cleared" in seen, "the outage breaker never tripped"
    assert seen["both_open"], "5 failed requests trip api_failures before the outage does"
    assert not board.is_open("api_outage"), "the outage ends with the first answered request"
    assert board.is_open("api_failures") and engine.trading_state == "REDUCING"
    events = dict(conn.execute("SELECT breaker_type, resolution_action FROM circuit_breaker_events").fetchall())
    assert events == {"api_failures": None, "api_outage": "recovered"}
    api_alerts = conn.execute("SELECT severity, message FROM alerts WHERE alert_type = 'api_failure'").fetchall()
    assert api_alerts and api_alerts[0][0] == "high" and "503" in api_alerts[0][1]
    trips = conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'circuit_breaker' AND severity = 'critical'"
                         ).fetchone()[0]
    assert trips == 2
    # REDUCING: no new entry since the venue started failing
    late = conn.execute("SELECT count(*) FROM orders WHERE purpose = 'entry' AND created_at > %s",
                        (seen["armed"],)).fetchone()[0]
    assert late == 0
    conn.close()


@pytest.mark.timeout(120)
async def test_a_database_that_keeps_failing_halts_trading_until_an_operator_resets_it(
        own_server: tuple[Path, str], make_rig_on: Any) -> None:
    home, url = own_server
    admin = embedded.server_uri(home)
    rig = make_rig_on(url)
    rig.quote("0.49", "0.50")
    board = _board(url, None)
    engine = rig.make_engine(breakers=board)
    cycle = {"n": 0}

    def before_step(_: float) -> None:
        cycle["n"] += 1
        rig.clock.advance(1)  # seconds of the simulated clock
        rig.exchange.tick()
        if cycle["n"] == 3:
            assert embedded.stop(home), "the server did not stop"
        elif cycle["n"] == 9:
            dbcontrol.start(home, admin)

    await run_loop(engine, interval_s=0.0, venue_label="local", before_step=before_step,
                   until=lambda: cycle["n"] >= 14)
    assert board.is_open("db_failures")
    assert engine.trading_state == "HALTED"
    with psycopg.connect(url, autocommit=True) as c:
        stored = c.execute("SELECT action, resolved_at FROM circuit_breaker_events WHERE breaker_type = 'db_failures'"
                           ).fetchall()
        state = c.execute("SELECT mode FROM trading_state_history ORDER BY changed_at DESC, id DESC LIMIT 1"
                          ).fetchone()
    # tripped while the database was down, written once it was back: other processes and the CLI see it
    assert stored == [("pause_all", None)]
    assert state == ("HALTED",)
    assert board.reset("db_failures", by="ops", notes="database checked")
    await rig.step()
    assert engine.trading_state == "ACTIVE"
