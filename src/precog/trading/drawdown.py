"""Account drawdown alerts (spec 8.2: drawdown > 0.15): equity (cash + portfolio value) against its peak.

The peak is the highest equity recorded for the account (platform, mode) in `account_balance` over the last
`trading.alerts.drawdown_window_days`, then every equity the engine records. A drawdown of at least
`trading.alerts.max_drawdown_pct` of the peak raises one `drawdown` alert (high); the episode ends once the
drawdown is back under half the limit, and the next breach alerts again. Deposits and withdrawals move equity
like trading does (the account's history has no cash-flow column to tell them apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from precog.trading.alert_config import alerts_section, share

ZERO = Decimal("0")
PCT = Decimal("0.0001")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DrawdownRule:
    """trading.yaml `alerts.max_drawdown_pct` (a share of the peak) and `alerts.drawdown_window_days`."""

    max_drawdown: Decimal
    window: timedelta

    @classmethod
    def from_config(cls, trading: Mapping[str, Any]) -> DrawdownRule:
        section = alerts_section(trading, "max_drawdown_pct and drawdown_window_days")
        days = section.get("drawdown_window_days")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise ValueError(f"trading.alerts.drawdown_window_days must be whole days in 1-3650, got {days!r}")
        return cls(share(section, "max_drawdown_pct"), timedelta(days=days))


class DrawdownWatch:
    """Tracks one account's equity peak and raises the drawdown alert once per episode."""

    def __init__(self, rule: DrawdownRule, alerts: Any, platform_id: str, mode: str) -> None:
        self.rule = rule
        self.alerts = alerts
        self.platform_id = platform_id
        self.mode = mode
        self.peak: Decimal | None = None
        self.peak_at: datetime | None = None
        self.alerted = False

    def seed(self, conn: psycopg.Connection[Any], now: datetime) -> None:
        """The peak of the account's recorded equity over the window before `now`."""
        row = conn.execute(
            "SELECT balance + coalesce(portfolio_value, 0) AS equity, created_at FROM account_balance "
            "WHERE platform_id = %s AND mode = %s AND created_at >= %s ORDER BY equity DESC, created_at DESC LIMIT 1",
            (self.platform_id, self.mode, now - self.rule.window)).fetchone()
        if row is not None:
            self._raise_peak(row[0], row[1])

    def _raise_peak(self, equity: Decimal, at: datetime) -> None:
        if self.peak is None or equity > self.peak:
            self.peak, self.peak_at = equity, at

    def drawdown(self, equity: Decimal) -> Decimal:
        """(peak - equity) / peak, 0 without a positive peak."""
        if self.peak is None or self.peak <= ZERO or equity >= self.peak:
            return ZERO
        return (self.peak - equity) / self.peak

    def observe(self, equity: Decimal, now: datetime) -> bool:
        """Record an equity reading; True when it raised the alert."""
        self._raise_peak(equity, now)
        dd = self.drawdown(equity)
        if dd < self.rule.max_drawdown / 2:
            self.alerted = False  # recovered: the next breach is a new episode
            return False
        if self.alerted or dd < self.rule.max_drawdown:
            return False
        self.alerted = True
        assert self.peak is not None
        pct = (dd * 100).quantize(Decimal("0.01"))
        self.alerts.raise_alert(
            "drawdown", "high", "portfolio",
            f"account equity ${equity:,.2f} is {pct}% below its peak ${self.peak:,.2f} "
            f"(limit {(self.rule.max_drawdown * 100).normalize()}%: trading.alerts.max_drawdown_pct)",
            {"platform_id": self.platform_id, "mode": self.mode, "equity": str(equity.quantize(CENT)),
             "peak": str(self.peak.quantize(CENT)),
             "peak_at": self.peak_at.isoformat() if self.peak_at else None, "drawdown": str(dd.quantize(PCT)),
             "max_drawdown_pct": str(self.rule.max_drawdown)},
            dedup_key=f"drawdown:{self.platform_id}:{self.mode}", category="risk")
        return True
