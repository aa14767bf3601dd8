"""Breakers and the trading state persisted: events, counters across restarts, other processes' trips."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg

from precog.alerts.manager import AlertManager
from precog.ingest.breaker import DataBreaker
from precog.ingest.breaker import PgBreakerStore as IngestStore
from precog.trading.breakers import BreakerBoard, PgBreakerStore
from precog.trading.settings import BreakerSettings
from precog.trading.trading_state import PgTradingStateStore, TradingMode, TradingState, history

D = Decimal


def _connect(url: str) -> Callable[[], psycopg.Connection[Any]]:
    return lambda: psycopg.connect(url)


def _board(url: str, clock: Callable[[], float] = time.time, alerts: Any = None, **changes: Any) -> BreakerBoard:
    settings = BreakerSettings(reset_seconds={"rapid_loss": 1800, "position_limit": 3600}, **changes)
    return BreakerBoard(settings, store=PgBreakerStore(_connect(url), "test"),
                        state=TradingState(PgTradingStateStore(_connect(url), "test")), alerts=alerts, clock=clock)


def test_a_trip_is_stored_alerted_and_changes_the_persisted_state(db_url: str, conn: psycopg.Connection[Any]) -> None:
    with AlertManager(db_url) as alerts:
        board = _board(db_url, alerts=alerts)
        for _ in range(5):
            board.record_trade_result(D("-10"))
    row = conn.execute("SELECT event_id, breaker_type, action, trigger_value->>'consecutive_losses', resolved_at,"
                       " environment FROM circuit_breaker_events").fetchone()
    assert row is not None and row[1:] == ("consecutive_losses", "close_all", "5", None, "test")
    alert = conn.execute("SELECT severity, component, source_table, source_id, message FROM alerts").fetchone()
    assert alert is not None and alert[:4] == ("critical", "trading", "circuit_breaker_events", row[0])
    assert "consecutive_losses TRIPPED" in alert[4] and "manual reset" in alert[4]
    state = history(conn, 1)[0]
    assert state.mode is TradingMode.HALTED and state.liquidate and state.blocking == ("consecutive_losses",)
    # another process sees the same state
    assert _board(db_url).current().mode is TradingMode.HALTED


def test_counters_survive_a_restart(db_url: str) -> None:
    board = _board(db_url)
    for _ in range(4):
        board.record_trade_result(D("-1"))
    restarted = _board(db_url)
    assert restarted.losses()["consecutive_losses"] == 4
    restarted.record_trade_result(D("-1"))
    assert restarted.is_open("consecutive_losses")


def test_manual_reset_by_another_process_is_picked_up(db_url: str, conn: psycopg.Connection[Any]) -> None:
    engine = _board(db_url)
    engine.trip("db_failures", "4 errors")
    assert engine.entry_block(time.time()) is not None
    cli = _board(db_url)
    assert cli.reset("db_failures", by="alice", notes="database restarted")
    engine.refresh()
    assert engine.entry_block(time.time()) is None and engine.mode is TradingMode.ACTIVE
    row = conn.execute("SELECT resolution_action, resolved_by, notes FROM circuit_breaker_events").fetchone()
    assert row == ("manual_reset", "alice", "4 errors; database restarted")
    changes = [(s.mode.value, s.changed_by) for s in reversed(history(conn))]
    assert changes == [("HALTED", "system"), ("ACTIVE", "alice")]


def test_automatic_reset_resolves_the_event(db_url: str, conn: psycopg.Connection[Any]) -> None:
    now = [time.time() + 0.123456789]  # sub-microsecond parts do not survive the database
    board = _board(db_url, clock=lambda: now[0])
    board.record_open_positions(21)
    assert board.mode is TradingMode.REDUCING
    now[0] += 3600
    later = _board(db_url, clock=lambda: now[0])  # e.g. `precog breakers list` an hour later
    assert later.mode is TradingMode.ACTIVE
    row = conn.execute("SELECT resolution_action, resolved_by FROM circuit_breaker_events").fetchone()
    assert row == ("auto_reset", "system")


def test_the_ingestion_data_breaker_blocks_entries_until_ingestion_resolves_it(db_url: str) -> None:
    ingest = DataBreaker(threshold=1, cooldown_seconds=0.0, store=IngestStore(_connect(db_url)))
    ingest.record_failure("stale", "KXNFLGAME-X", "price 400 s old")
    board = _board(db_url)
    assert board.is_open("data_quality") and board.mode is TradingMode.REDUCING
    board.refresh(time.time() + 10**6)  # not ours: no automatic reset by the trading side
    assert board.is_open("data_quality")
    assert not ingest.is_open()  # the ingestion resolves its own event after its quiet period
    board.refresh()
    assert not board.is_open("data_quality") and board.mode is TradingMode.ACTIVE
