"""Stored backtest runs (table `backtest_runs`, migration 0009)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.backtest.errors import BacktestError
from precog.ingest.scd2 import jsonb


@dataclass
class StoredRun:
    backtest_id: int
    parameters: dict[str, Any]
    data_source: str
    data_kind: str
    methods: list[str]
    status: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None
    report_path: str | None


def start(conn: psycopg.Connection[Any], parameters: dict[str, Any], data_source: str, data_kind: str,
          methods: list[str]) -> int:
    row = conn.execute("INSERT INTO backtest_runs (parameters, data_source, data_kind, methods) "
                       "VALUES (%s, %s, %s, %s) RETURNING backtest_id",
                       (jsonb(parameters), data_source, data_kind, jsonb(methods))).fetchone()
    assert row is not None
    return int(row[0])


def add_window(conn: psycopg.Connection[Any], backtest_id: int, lane: int, lane_methods: list[str], index: int,
               engine_run_id: int, train_from: date | None, train_to: date | None, test_from: date, test_to: date,
               summary: dict[str, Any]) -> None:
    conn.execute("INSERT INTO backtest_windows (backtest_id, lane, lane_methods, window_index, engine_run_id, "
                 "train_from, train_to, test_from, test_to, summary) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 (backtest_id, lane, jsonb(lane_methods), index, engine_run_id, train_from, train_to, test_from,
                  test_to, jsonb(summary)))


def finish(conn: psycopg.Connection[Any], backtest_id: int, summary: dict[str, Any], report_path: str | None) -> None:
    conn.execute("UPDATE backtest_runs SET status = 'finished', finished_at = now(), summary = %s, report_path = %s "
                 "WHERE backtest_id = %s", (jsonb(summary), report_path, backtest_id))


def fail(conn: psycopg.Connection[Any], backtest_id: int, error: str) -> None:
    conn.execute("UPDATE backtest_runs SET status = 'failed', finished_at = now(), error = %s WHERE backtest_id = %s",
                 (error[:2000], backtest_id))


def set_report_path(conn: psycopg.Connection[Any], backtest_id: int, path: str) -> None:
    conn.execute("UPDATE backtest_runs SET report_path = %s WHERE backtest_id = %s", (path, backtest_id))


def get(conn: psycopg.Connection[Any], backtest_id: int) -> StoredRun:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM backtest_runs WHERE backtest_id = %s", (backtest_id,))
        r = cur.fetchone()
    if r is None:
        raise BacktestError(f"no backtest run {backtest_id} (`precog report --list` lists the stored runs)")
    return StoredRun(r["backtest_id"], r["parameters"], r["data_source"], r["data_kind"], list(r["methods"]),
                     r["status"], r["error"], r["started_at"], r["finished_at"], r["summary"], r["report_path"])


def recent(conn: psycopg.Connection[Any], limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs; `trades` is the run's fills (rows of the trades table), the summary's totals.fills."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT backtest_id, status, data_kind, data_source, methods, started_at, finished_at, "
                    "summary->'totals'->>'pnl' AS pnl, (summary->'totals'->>'fills')::int AS trades, report_path "
                    "FROM backtest_runs ORDER BY backtest_id DESC LIMIT %s", (limit,))
        return list(cur.fetchall())
