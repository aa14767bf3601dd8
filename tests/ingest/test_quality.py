"""Data-quality checks: every failed check alerts; repeated failures trip the data breaker."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from feeds.espn_testkit import RecordingAlerts
from precog.db.connection import connect
from precog.feeds.game_state import GameState
from precog.ingest.breaker import DataBreaker, PgBreakerStore, read_data_breaker
from precog.ingest.quality import DataQualityMonitor, GameStateGate, QualityLimits

NOW = datetime(2025, 12, 1, 2, 0, tzinfo=UTC)
D = Decimal


class FakeClock:
    def __init__(self, start: float = 1_764_554_400.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def game(**changes: Any) -> GameState:
    base = GameState(
        sport="nfl", game_id="401772931", start_time=NOW - timedelta(hours=3), name="Denver Broncos at Washington",
        short_name="DEN @ WSH", home_team="WSH", away_team="DEN", home_team_id="28", away_team_id="7",
        home_team_name="Washington Commanders", away_team_name="Denver Broncos", status="live",
        status_detail="8:42 - 4th", period=4, clock_seconds=522, display_clock="8:42", home_score=17, away_score=20,
    )
    return dataclasses.replace(base, **changes)


def test_quote_checks_each_raise_an_alert(alerts: RecordingAlerts) -> None:
    monitor = DataQualityMonitor(alerts=alerts)
    assert monitor.check_quote("T-OK", yes_bid=D("0.42"), yes_ask=D("0.44"), no_bid=D("0.56"), no_ask=D("0.58")) == []
    crossed = monitor.check_quote("T-X", yes_bid=D("0.50"), yes_ask=D("0.45"))
    assert [i.check for i in crossed] == ["crossed_book"]
    inverted = monitor.check_quote("T-INV", yes_bid=D("0.60"), no_bid=D("0.45"))
    assert [i.check for i in inverted] == ["crossed_book"] and "inverted" in inverted[0].message
    out = monitor.check_quote("T-R", yes_bid=D("1.20"), yes_ask=D("1.25"))
    assert [i.check for i in out] == ["price_out_of_range"] and "yes_bid=1.20" in out[0].message
    negative = monitor.check_quote("T-N", last_price=D("-0.01"))
    assert [i.check for i in negative] == ["price_out_of_range"]
    stale = monitor.check_quote("T-S", yes_bid=D("0.40"), yes_ask=D("0.41"), event_time=NOW - timedelta(seconds=121),
                                received_at=NOW)
    assert [i.check for i in stale] == ["stale_price"]
    assert monitor.check_quote("T-F", yes_bid=D("0.40"), event_time=NOW - timedelta(seconds=119),
                               received_at=NOW) == []
    raised = alerts.of_type("data_quality")
    assert [a["details"]["check"] for a in raised] == [
        "crossed_book", "crossed_book", "price_out_of_range", "price_out_of_range", "stale_price"]
    assert raised[0]["dedup_key"] == "data_quality:crossed_book:T-X" and raised[0]["category"] == "data"
    assert monitor.counts == {"crossed_book": 2, "price_out_of_range": 2, "stale_price": 1}


def test_empty_side_of_book_is_not_crossed(alerts: RecordingAlerts) -> None:
    monitor = DataQualityMonitor(alerts=alerts)
    # no YES bids (0) and the YES ask at 1: an empty book, not a crossed one
    assert monitor.check_quote("T-E", yes_bid=D("0"), yes_ask=D("1"), no_bid=D("0"), no_ask=D("1")) == []
    assert alerts.raised == []


def test_score_decrease_is_held_back_then_accepted_as_correction(alerts: RecordingAlerts) -> None:
    gate = GameStateGate(DataQualityMonitor(alerts=alerts, limits=QualityLimits(confirm_after=3)))
    assert gate.admit(game()) is not None
    assert gate.admit(game(home_score=24, clock_seconds=400)) is not None  # touchdown
    overturned = game(home_score=17, clock_seconds=380)
    assert gate.admit(overturned) is None  # held back: last good state stays current
    assert gate.accepted["401772931"].home_score == 24
    assert gate.admit(overturned) is None
    accepted = gate.admit(overturned)  # third identical reading: a genuine correction (review overturned it)
    assert accepted is not None and accepted.home_score == 17
    assert accepted.metadata["corrected"] is True
    checks = [a["details"].get("check") for a in alerts.of_type("data_quality")]
    assert checks.count("score_decrease") == 1  # alerted once for the same bad reading
    assert any("accepted as a correction" in a["message"] for a in alerts.raised)


def test_period_and_status_going_backwards_are_rejected(alerts: RecordingAlerts) -> None:
    gate = GameStateGate(DataQualityMonitor(alerts=alerts))
    gate.admit(game(period=4))
    assert gate.admit(game(period=3, clock_seconds=100)) is None
    gate.admit(game(status="final", period=4, clock_seconds=0))
    assert gate.admit(game(status="live", period=4, clock_seconds=0)) is None
    checks = [a["details"]["check"] for a in alerts.of_type("data_quality")]
    assert checks == ["period_backwards", "period_backwards"]
    # a blip that goes away is simply dropped; the next good state is admitted
    assert gate.admit(game(status="final", period=4, clock_seconds=0, home_score=18)) is not None


def test_breaker_trips_after_repeated_failures_and_is_visible_in_the_database(db_url: str,
                                                                             alerts: RecordingAlerts) -> None:
    clock = FakeClock()
    store = PgBreakerStore(lambda: connect(db_url))
    breaker = DataBreaker(threshold=3, window_seconds=300, cooldown_seconds=600, alerts=alerts, store=store,
                          clock=clock)
    monitor = DataQualityMonitor(alerts=alerts, breaker=breaker)
    monitor.check_quote("T1", yes_bid=D("0.9"), yes_ask=D("0.1"))
    monitor.check_quote("T2", yes_bid=D("1.5"))
    assert not breaker.is_open()
    with psycopg.connect(db_url) as conn:
        assert read_data_breaker(conn).open is False
    monitor.schema_drift("espn:nfl", "events: missing")
    assert breaker.is_open() and breaker.state == "open"
    trip = alerts.of_type("circuit_breaker")
    assert len(trip) == 1 and trip[0]["severity"] == "critical"
    assert trip[0]["source_table"] == "circuit_breaker_events" and trip[0]["source_id"] == breaker.event_id

    with psycopg.connect(db_url) as conn:
        status = read_data_breaker(conn)
        assert status.open and status.event_id == breaker.event_id
        assert status.reason["bad_points"] == 3 and "schema_drift:espn:nfl" in status.reason["recent"][-1]
        row = conn.execute("SELECT breaker_type, action, auto_reset_at - triggered_at FROM circuit_breaker_events"
                           " WHERE event_id = %s", (breaker.event_id,)).fetchone()
        assert row == ("data_quality", "pause_trading", timedelta(seconds=600))

    clock.now += 500
    monitor.check_quote("T3", yes_bid=D("2"))  # still bad data: the pause extends
    clock.now += 500
    assert breaker.is_open()
    clock.now += 101
    assert not breaker.is_open()  # 600 s without bad data
    with psycopg.connect(db_url) as conn:
        assert read_data_breaker(conn).open is False
        resolved = conn.execute("SELECT resolution_action FROM circuit_breaker_events").fetchall()
        assert resolved == [("auto_reset",)]


def test_breaker_needs_failures_within_the_window() -> None:
    clock = FakeClock()
    breaker = DataBreaker(threshold=3, window_seconds=60, cooldown_seconds=600, clock=clock)
    for _ in range(5):
        assert breaker.record_failure("stale_price", "T", "old") is False
        clock.now += 31  # never 3 within 60 s
    assert not breaker.is_open()
    clock.now += 61  # the window empties
    assert breaker.record_failure("a", "T", "x") is False
    assert breaker.record_failure("a", "T", "x") is False
    assert breaker.record_failure("a", "T", "x") is True  # three within the window


def test_breaker_left_open_by_a_previous_run_is_restored(db_url: str) -> None:
    clock = FakeClock()
    store = PgBreakerStore(lambda: connect(db_url))
    first = DataBreaker(threshold=1, cooldown_seconds=600, store=store, clock=clock)
    first.record_failure("schema_drift", "espn:nba", "bad")
    restarted = DataBreaker(threshold=1, cooldown_seconds=600, store=store, clock=clock)
    restarted.restore()
    assert restarted.is_open() and restarted.event_id == first.event_id
    clock.now += 601
    assert not restarted.is_open()
    with psycopg.connect(db_url) as conn:
        assert read_data_breaker(conn).open is False


def test_stale_live_games_and_silent_feeds(alerts: RecordingAlerts) -> None:
    monitor = DataQualityMonitor(alerts=alerts)
    assert monitor.check_game_staleness(["g1"], NOW - timedelta(seconds=59), NOW, "espn:nfl") == []
    stale = monitor.check_game_staleness(["g1", "g2"], NOW - timedelta(seconds=61), NOW, "espn:nfl")
    assert [(i.check, i.key) for i in stale] == [("stale_game", "g1"), ("stale_game", "g2")]
    silent = monitor.check_feed_silence("kalshi:ws", NOW - timedelta(seconds=200), NOW, 120)
    assert [i.check for i in silent] == ["stale_feed"] and "200 s" in silent[0].message
