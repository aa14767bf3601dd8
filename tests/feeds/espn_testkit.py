"""Helpers shared by the feed and ingest tests (imported as `feeds.espn_testkit`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SAMPLE_FILES = {
    "nfl": "nfl_scoreboard_2025_week13_sample.json",
    "ncaaf": "ncaaf_scoreboard_2025_sample.json",
    "nba": "nba_scoreboard_2025_sample.json",
}


def load_samples(shared_data: Path) -> dict[str, bytes]:
    """Raw bytes of the real ESPN scoreboard responses in ../shared/data/espn/ (skips when absent)."""
    out = {}
    for sport, name in SAMPLE_FILES.items():
        path = shared_data / "espn" / name
        if not path.is_file():
            pytest.skip(f"ESPN sample {path} is not present")
        out[sport] = path.read_bytes()
    return out


def sample_dict(espn_samples: dict[str, bytes], sport: str) -> dict[str, Any]:
    """A fresh, mutable copy of a sample (for variations)."""
    return json.loads(espn_samples[sport])


def competition(data: dict[str, Any], game_id: str) -> dict[str, Any]:
    event = next(e for e in data["events"] if e["id"] == game_id)
    return event["competitions"][0]


def set_score(data: dict[str, Any], game_id: str, side: str, score: int) -> None:
    comp = competition(data, game_id)
    next(c for c in comp["competitors"] if c["homeAway"] == side)["score"] = str(score)


class RecordingAlerts:
    """An AlertRaiser sink that keeps what was raised (the AlertManager is exercised in its own suite)."""

    def __init__(self) -> None:
        self.raised: list[dict[str, Any]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str,
                    details: dict[str, Any] | None = None, *, source_table: str | None = None,
                    source_id: int | None = None, dedup_key: str | None = None,
                    category: str | None = None) -> int | None:
        self.raised.append({"alert_type": alert_type, "severity": severity, "component": component,
                            "message": message, "details": details or {}, "source_table": source_table,
                            "source_id": source_id, "dedup_key": dedup_key, "category": category})
        return len(self.raised)

    def of_type(self, alert_type: str) -> list[dict[str, Any]]:
        return [a for a in self.raised if a["alert_type"] == alert_type]


def insert_venue_event(conn: Any, event_ticker: str, title: str, markets: list[tuple[str, str]],
                       *, platform: str = "kalshi") -> None:
    """Store a Kalshi series/event/markets the way market ingestion does (for link tests)."""
    from precog.ingest import scd2

    series = event_ticker.split("-")[0]
    conn.execute(
        "INSERT INTO series (series_id, platform_id, external_id, category, subcategory, title)"
        " VALUES (%s, %s, %s, 'sports', NULL, %s) ON CONFLICT DO NOTHING", (series, platform, series, series))
    conn.execute(
        "INSERT INTO events (event_id, platform_id, series_id, external_id, category, title)"
        " VALUES (%s, %s, %s, %s, 'sports', %s)", (event_ticker, platform, series, event_ticker, title))
    rows = [{"market_id": f"{event_ticker}-{code}", "platform_id": platform, "event_id": event_ticker,
             "external_id": f"{event_ticker}-{code}", "ticker": f"{event_ticker}-{code}", "title": title,
             "status": "open", "market_type": "binary", "tick_size": "0.01", "notional_value": "1",
             "metadata": {"yes_sub_title": name}} for code, name in markets]
    scd2.write_batch(conn, scd2.MARKETS, rows)


def run_cli(*args: str) -> Any:
    """Run a `precog` command in-process (fast); returns typer's Result (exit_code, stdout, exception)."""
    from typer.testing import CliRunner

    from precog.cli.main import app

    return CliRunner().invoke(app, list(args), env={"NO_COLOR": "1", "COLUMNS": "200"})
