"""Report arithmetic a user reads off the summary: drawdown, Sharpe, the leak guard's statistics."""

from __future__ import annotations

from decimal import Decimal

from precog.backtest import guard
from precog.backtest.report import _combined, _drawdown, _sharpe

DAY = 86_400_000


def test_drawdown_is_measured_from_the_running_peak() -> None:
    curve = [(0, Decimal("100")), (1, Decimal("120")), (2, Decimal("90")), (3, Decimal("130")), (4, Decimal("117"))]
    dd, worst, pct = _drawdown(curve)
    assert worst == Decimal("30") and pct == Decimal("0.2500")  # 120 -> 90
    assert [v for _, v in dd] == [0, 0, Decimal("-30"), 0, Decimal("-13")]


def test_sharpe_uses_daily_returns_and_needs_variation() -> None:
    flat = [(i * DAY, Decimal("100")) for i in range(5)]
    assert _sharpe(flat) is None
    up_down = [(0, Decimal("100")), (DAY, Decimal("110")), (2 * DAY, Decimal("99")), (3 * DAY, Decimal("108.9"))]
    s = _sharpe(up_down)
    assert s is not None and s > 0


def test_sharpe_counts_a_quiet_day_as_a_zero_return() -> None:
    # 100 -> 110 on day 1, nothing on day 2, 121 on day 3: daily returns 0.10, 0, 0.10 (not 0.10, 0.10, which has
    # no spread); mean 1/15, sample sd 1/sqrt(300), annualized with sqrt(365)
    curve = [(0, Decimal("100")), (DAY, Decimal("110")), (3 * DAY + 5_000, Decimal("121"))]
    assert _sharpe(curve) == round((1 / 15) / (1 / 300 ** 0.5) * 365 ** 0.5, 3) == 22.061
    # several samples in a day: the day's last one counts
    intraday = [(0, Decimal("100")), (DAY, Decimal("90")), (DAY + 60_000, Decimal("110")), (3 * DAY, Decimal("121"))]
    assert _sharpe(intraday) == 22.061


def test_ab_lanes_add_up_holding_each_lanes_last_value() -> None:
    curves = {"a": [(0, Decimal("100")), (10, Decimal("110"))], "b": [(0, Decimal("100")), (5, Decimal("95"))]}
    assert _combined(curves) == [(0, Decimal("200")), (5, Decimal("195")), (10, Decimal("205"))]


def test_leak_guard_judges_winners_against_the_prices_paid() -> None:
    prices = [Decimal("0.50")] * 40
    honest = guard.check(prices, [i % 2 == 0 for i in range(40)], {})
    assert not honest.fired and honest.hit_rate_z == 0
    leaked = guard.check(prices, [True] * 40, {})
    assert leaked.fired and leaked.hit_rate_z is not None and leaked.hit_rate_z > 6
    # a model with a tenth of the market's Brier score has read the answers
    assert guard.check([], [], {"elo": (0.02, 0.21, 200)}).fired
    assert not guard.check([], [], {"elo": (0.20, 0.21, 200)}).fired
    # too few positions to judge
    assert not guard.check(prices[:5], [True] * 5, {}).fired
