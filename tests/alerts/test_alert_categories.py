"""Alert categories: every category the product raises with is one of the spec's (risk, system, trading,
data), so the AlertManager stores and delivers venue alerts instead of refusing them."""

from __future__ import annotations

import ast
from pathlib import Path

import psycopg
import pytest

import precog
from precog.alerts.model import CATEGORIES
from precog.engine.alert_sink import TableAlertSink
from precog.venues.kalshi.errors import KalshiSchemaError
from precog.venues.kalshi.parsing import KalshiParser


def _stored(db_url: str, alert_type: str) -> list[tuple[str | None]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT category FROM alerts WHERE alert_type = %s", (alert_type,)).fetchall()


def _drift(_: object) -> None:
    raise KalshiSchemaError("yes_bid", "is missing", kind="market")


def test_every_raise_alert_call_uses_a_spec_category() -> None:
    """A literal category outside CATEGORIES would make AlertManager.raise_alert refuse the alert."""
    bad = []
    for path in Path(precog.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("raise_alert", "log_alert")):
                continue
            for kw in node.keywords:
                if kw.arg == "category" and isinstance(kw.value, ast.Constant) and kw.value.value not in CATEGORIES:
                    bad.append(f"{path}:{node.lineno}: category={kw.value.value!r}")
    assert not bad, bad


def test_alert_manager_stores_venue_schema_error(alerting, db_url) -> None:
    """The Kalshi parser's schema-drift alert goes through the AlertManager (what make_alert_raiser hands the
    engine and the client) and is stored with a spec category."""
    a = alerting()
    with pytest.raises(KalshiSchemaError):
        KalshiParser(a.manager)(_drift, {})
    a.manager.flush()
    assert _stored(db_url, "venue_schema_error") == [("data",)]


def test_table_sink_stores_venue_schema_error_with_the_same_category(db_url) -> None:
    """The engine's fallback sink (no AlertManager) stores the same alert with the same category."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(KalshiSchemaError):
            KalshiParser(TableAlertSink(conn, "test"))(_drift, {})
    assert _stored(db_url, "venue_schema_error") == [("data",)]
