"""Circuit breakers: each trips exactly at its threshold and blocks exactly what it should."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trading_testkit import NOW

from precog.trading.breakers import SPECS, BreakerBoard, BreakerError
from precog.trading.settings import BreakerSettings
from precog.trading.trading_state import TradingMode

D = Decimal


class Alerts:
    """Collects what a component raises through the AlertRaiser protocol."""

    def __init__(self) -> None:
        self.raised: list[dict[str, Any]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str,
                    details: dict[str, Any] | None = None, **kw: Any) -> int:
        self.raised.append({"type": alert_type, "severity": severity, "component": component, "message": message,
                            "details": details, **kw})
        return len(self.raised)


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _board(**changes: Any) -> tuple[BreakerBoard, Alerts, Clock]:
    alerts, clock = Alerts(), Clock()
    base = BreakerSettings(reset_seconds={"api_failures": 300, "rapid_loss": 1800, "position_limit": 3600,
                                          "data_quality": 600, "data_stale": 60, "api_outage": 300})
    return BreakerBoard(replace(base, **changes), alerts=alerts, clock=clock), alerts, clock


def _assert_tripped(board: BreakerBoard, alerts: Alerts, name: str) -> None:
    assert board.is_open(name)
    assert alerts.raised[-1]["severity"] == "critical" and alerts.raised[-1]["type"] == "circuit_breaker"
    assert name in alerts.raised[-1]["message"]


@given(st.integers(min_value=1, max_value=200000).map(lambda c: D(c) / 100))
def test_daily_loss_trips_exactly_at_the_limit(loss: Decimal) -> None:
    board, alerts, _ = _board()
    board.record_trade_result(-loss, at=NOW)
    assert board.is_open("daily_loss_limit") == (loss >= D("500"))
    if loss >= D("500"):
        st_ = board.current()
        assert st_.mode is TradingMode.HALTED and st_.liquidate  # close all, then halt
        assert not st_.allows_entries and st_.allows_exits(forced=True) and not st_.allows_exits()


def test_daily_loss_counts_unrealized_and_only_today() -> None:
    board, alerts, clock = _board()
    yesterday = NOW - 86400
    board.record_trade_result(D("-450"), at=yesterday)
    board.record_pnl(D("-499.99"), at=NOW)
    assert not board.is_open("daily_loss_limit")  # yesterday's loss does not count today
    board.record_pnl(D("-500.00"), at=NOW)
    _assert_tripped(board, alerts, "daily_loss_limit")


def test_weekly_loss_halts_without_liquidating() -> None:
    board, alerts, _ = _board(daily_loss_limit=D("100000"), rapid_loss_dollars=D("100000"))
    for day in range(3):  # Monday ... Wednesday of one week (NOW is a Monday)
        board.record_trade_result(D("-499.99"), at=NOW + day * 86400 + 3600 * 14)
    assert not board.is_open("weekly_loss_limit")
    board.record_trade_result(D("-0.03"), at=NOW + 2 * 86400 + 3600 * 15)
    _assert_tripped(board, alerts, "weekly_loss_limit")
    assert board.current().mode is TradingMode.HALTED and not board.current().liquidate


def test_consecutive_losses_trip_at_five_and_a_win_resets_the_count() -> None:
    board, alerts, _ = _board()
    for _ in range(4):
        board.record_trade_result(D("-1"), at=NOW)
    board.record_trade_result(D("2"), at=NOW)
    for _ in range(4):
        board.record_trade_result(D("-1"), at=NOW)
    assert not board.is_open("consecutive_losses")
    board.record_trade_result(D("0"), at=NOW)  # a scratch neither counts nor resets
    assert not board.is_open("consecutive_losses")
    board.record_trade_result(D("-1"), at=NOW)
    _assert_tripped(board, alerts, "consecutive_losses")
    assert board.current().liquidate
    assert board.reset("consecutive_losses", by="alice")
    board.record_trade_result(D("-1"), at=NOW)  # counting starts afresh after a reset
    assert not board.is_open("consecutive_losses")


def test_rapid_loss_within_15_minutes_and_auto_reset() -> None:
    board, alerts, clock = _board(daily_loss_limit=D("100000"))
    board.record_trade_result(D("-150"), at=NOW - 900)  # exactly 15 min ago: outside the window
    board.record_trade_result(D("-199.99"), at=NOW)
    assert not board.is_open("rapid_loss")
    board.record_trade_result(D("-0.01"), at=NOW)
    _assert_tripped(board, alerts, "rapid_loss")
    assert board.entry_block(NOW + 1799) is not None
    assert board.entry_block(NOW + 1800) is None  # automatic reset after 30 min
    assert not board.is_open("rapid_loss")


def test_api_failures_consecutive() -> None:
    board, _, _ = _board(api_failures_in_window=100)
    for i in range(4):
        assert board.record_api_failure("timeout", at=NOW + i) is None
    board.record_api_success(at=NOW + 5)  # a success breaks the run
    for i in range(4):
        board.record_api_failure("timeout", at=NOW + 10 + i)
    assert not board.is_open("api_failures")  # 8 failures, never 5 in a row
    board2, alerts2, _ = _board(api_failures_in_window=100)
    for i in range(4):
        board2.record_api_failure("x", at=NOW + i)
    board2.record_api_failure("x", at=NOW + 4)
    _assert_tripped(board2, alerts2, "api_failures")
    assert board2.current().mode is TradingMode.REDUCING  # entries paused, exits continue
    assert board2.current().allows_exits()


def test_api_failures_inside_the_window() -> None:
    board, alerts, _ = _board(api_failures_consecutive=100)
    for i in range(4):
        board.record_api_failure("x", at=NOW + i * 60)
        board.record_api_success(at=NOW + i * 60 + 1)
    board.record_api_failure("x", at=NOW + 299)  # the 5th inside 300 s
    _assert_tripped(board, alerts, "api_failures")
    board2, _, _ = _board(api_failures_consecutive=100)
    for i in range(5):
        board2.record_api_failure("x", at=NOW + i * 75)  # the 5th is 300 s after the 1st: outside
        board2.record_api_success(at=NOW + i * 75 + 1)
    assert not board2.is_open("api_failures")


def test_api_outage_trips_after_five_minutes_and_recovers() -> None:
    board, alerts, _ = _board(api_failures_consecutive=1000, api_failures_in_window=1000)
    board.record_api_failure("down", at=NOW)
    board.record_api_failure("down", at=NOW + 299)
    assert not board.is_open("api_outage")
    board.record_api_failure("down", at=NOW + 300)
    _assert_tripped(board, alerts, "api_outage")
    board.record_api_success(at=NOW + 301)
    assert not board.is_open("api_outage") and board.current().mode is TradingMode.ACTIVE


def test_db_failures_trip_above_three_per_minute_and_halt_everything() -> None:
    board, alerts, _ = _board()
    for i in range(3):
        board.record_db_error("deadlock", at=NOW + i)
    assert not board.is_open("db_failures")
    board.record_db_error("deadlock", at=NOW + 59)
    _assert_tripped(board, alerts, "db_failures")
    assert board.current().mode is TradingMode.HALTED and not board.current().allows_exits(forced=True)


def test_data_quality_and_staleness() -> None:
    board, alerts, _ = _board()
    board.record_data_quality_failure("crossed book", at=NOW)
    board.record_data_quality_failure("crossed book", at=NOW + 1)
    assert not board.is_open("data_quality")
    board.record_data_quality_failure("crossed book", at=NOW + 2)
    _assert_tripped(board, alerts, "data_quality")
    board.record_data_age(60, at=NOW)
    assert not board.is_open("data_stale")
    board.record_data_age(60.5, at=NOW)
    _assert_tripped(board, alerts, "data_stale")
    board.record_data_age(3, at=NOW + 1)
    assert not board.is_open("data_stale")


def test_edge_anomaly_three_within_ten_minutes() -> None:
    board, alerts, _ = _board()
    assert board.record_edge(D("0.2999"), at=NOW) is None
    board.record_edge(D("0.30"), at=NOW)
    board.record_edge(D("0.45"), at=NOW + 300)
    assert not board.is_open("edge_anomaly")
    board.record_edge(D("0.31"), at=NOW + 599)
    _assert_tripped(board, alerts, "edge_anomaly")
    assert board.entry_block(NOW + 10**6) is not None  # manual reset only


def test_unusual_activity_per_hour() -> None:
    board, alerts, _ = _board()
    for i in range(10):
        assert board.record_fill(at=NOW + i * 60) is None
    board.record_fill(at=NOW + 600)  # the 11th within an hour
    _assert_tripped(board, alerts, "unusual_activity")
    block = board.open_breakers()[0]
    assert block.reset_ts is not None and block.reset_ts > NOW + 600


def test_unusual_activity_burst_and_day() -> None:
    board, alerts, _ = _board(max_trades_per_hour=1000, max_trades_per_day=1000)
    for i in range(19):
        board.record_fill(at=NOW + i)
    assert not board.is_open("unusual_activity")
    board.record_fill(at=NOW + 19)  # 20 within 5 minutes
    _assert_tripped(board, alerts, "unusual_activity")
    board2, alerts2, _ = _board(max_trades_per_hour=1000, unusual_burst_trades=1000)
    for i in range(50):
        board2.record_fill(at=NOW + i * 400)
    assert not board2.is_open("unusual_activity")
    board2.record_fill(at=NOW + 50 * 400)
    _assert_tripped(board2, alerts2, "unusual_activity")


def test_position_count_order_rejections_and_min_balance() -> None:
    board, alerts, _ = _board()
    assert board.record_open_positions(20, at=NOW) is None
    board.record_open_positions(21, at=NOW)
    _assert_tripped(board, alerts, "position_limit")
    assert board.entry_block(NOW + 3599) is not None and board.entry_block(NOW + 3600) is None
    for _ in range(3):
        assert board.record_order_rejected("price", at=NOW) is None
    board.record_order_rejected("price", at=NOW)
    _assert_tripped(board, alerts, "order_rejections")
    assert board.current().mode is TradingMode.ACTIVE  # alert only: it blocks nothing
    board.record_order_accepted(at=NOW)
    assert not board.is_open("order_rejections")
    assert board.record_balance(D("1000"), at=NOW) is None
    board.record_balance(D("999.99"), at=NOW)
    _assert_tripped(board, alerts, "min_balance")
    assert board.current().mode is TradingMode.REDUCING
    board.record_balance(D("1000.00"), at=NOW)
    assert not board.is_open("min_balance")


def test_invariant_breakers_and_manual_halt() -> None:
    board, alerts, _ = _board()
    board.record_invariant_violation("immutability_violation", "config of strategies row 3 changed", at=NOW)
    assert board.current().mode is TradingMode.ACTIVE and board.is_open("immutability_violation")
    board.record_invariant_violation("trailing_stop_failure", "position 9", at=NOW)
    assert board.current().mode is TradingMode.REDUCING
    board.trip("manual", "operator halt", by="alice", now=NOW)
    state = board.current()
    assert state.mode is TradingMode.HALTED and state.changed_by == "alice"
    assert set(state.blocking) == {"trailing_stop_failure", "manual"}
    assert board.trip("manual", "again", now=NOW) is None  # already open: no second event
    with pytest.raises(BreakerError):
        board.trip("nonsense", "x")
    board.reset("manual", by="alice", now=NOW)
    assert board.current().mode is TradingMode.REDUCING  # the trailing-stop breaker still holds


def test_every_breaker_has_an_action() -> None:
    assert {"daily_loss_limit", "weekly_loss_limit", "consecutive_losses", "rapid_loss", "api_failures",
            "data_quality", "data_stale", "db_failures", "edge_anomaly", "unusual_activity", "position_limit",
            "order_rejections", "min_balance"} <= set(SPECS)


def test_production_trips_api_failures_sooner_and_stays_open_longer():
    """Spec 5.4: 5 consecutive API failures in demo, 3 in production (open 600 s instead of 300 s)."""
    from precog.config.loader import load_config
    from precog.trading.settings import TradingSettings

    demo = TradingSettings.from_config(load_config(environ={}, use_overrides=False))
    prod = TradingSettings.from_config(load_config(environ={"TRADING_ENV": "prod"}, use_overrides=False))
    assert demo.breakers.api_failures_consecutive == 5 and prod.breakers.api_failures_consecutive == 3
    assert prod.breakers.api_failures_in_window == 3
    assert demo.breakers.reset_seconds["api_failures"] == 300
    assert prod.breakers.reset_seconds["api_failures"] == 600


_loss_steps = st.lists(st.tuples(st.sampled_from(["wait", "result", "mark", "reset"]),
                                 st.integers(min_value=0, max_value=3 * 86400),
                                 st.integers(min_value=-40000, max_value=30000).map(lambda c: D(c) / 100)),
                       min_size=1, max_size=60)


@given(_loss_steps)
def test_loss_windows_reused_between_results_equal_a_fresh_sum(steps: list[tuple[str, int, Decimal]]) -> None:
    """The board keeps each loss window's last realized sum until a result arrives or the window's start passes
    a counted close; every figure must equal the sum recomputed from scratch at that moment."""
    board, _, clock = _board(daily_loss_limit=D("1000000"), weekly_loss_limit=D("1000000"),
                             rapid_loss_dollars=D("1000000"), consecutive_losses=1000)
    for kind, seconds, amount in steps:
        if kind == "wait":
            clock.t += seconds
        elif kind == "result":
            board.record_trade_result(amount)
        elif kind == "mark":
            board.record_pnl(amount)
        else:  # a loss breaker reset by hand moves its window's start to now
            board.trip("daily_loss_limit", "test", now=clock.t)
            board.reset("daily_loss_limit", by="test", now=clock.t)
        reused = board.losses()
        board._window_sums.clear()  # the same figures from scratch
        assert reused == board.losses()


@given(st.lists(st.integers(min_value=0, max_value=4000), max_size=30), st.integers(min_value=0, max_value=5000),
       st.integers(min_value=0, max_value=3000))
def test_a_result_leaving_the_rapid_window_is_found_in_any_recording_order(offsets: list[int], since: int,
                                                                            length: int) -> None:
    """The idle-step check asks whether a result left the rapid-loss window between two steps; the answer must
    be the plain definition's, whether results were recorded in time order (newest-first search) or not."""
    board, _, _ = _board(daily_loss_limit=D("1000000"), weekly_loss_limit=D("1000000"),
                         rapid_loss_dollars=D("1000000"), consecutive_losses=1000)
    for at in offsets:
        board.record_trade_result(D("-1"), at=NOW + at)
    lo, hi, window = NOW + since, NOW + since + length, 900
    expected = any(lo < NOW + at + window <= hi for at in offsets)
    assert board.result_left_window(lo, hi, window) is expected
    assert board._pnl_in_order == (offsets == sorted(offsets))
    # the first moment a result leaves after `lo`: the check is False before it and True from it on
    first = board.next_result_leaving(lo, window)
    assert first == min((NOW + at + window for at in offsets if NOW + at + window > lo), default=float("inf"))
    if first != float("inf"):
        assert board.result_left_window(lo, first, window) and not board.result_left_window(lo, first - 1, window)


def test_day_and_week_starts_follow_the_local_calendar_across_daylight_saving() -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    board, _, _ = _board()
    tz = ZoneInfo(board.settings.timezone)
    t = datetime(2026, 3, 6, 12, tzinfo=tz).timestamp()  # through the March change, every 37 minutes
    while t < datetime(2026, 3, 12, tzinfo=tz).timestamp():
        local = datetime.fromtimestamp(t, tz).replace(hour=0, minute=0, second=0, microsecond=0)
        assert board._day_start(t) == local.timestamp()
        assert board._week_start(t) == (local - timedelta(days=local.weekday())).timestamp()
        t += 37 * 60
