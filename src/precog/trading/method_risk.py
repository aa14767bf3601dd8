"""A method's own loss limits (spec 8.1 risk_config): daily loss, consecutive losses, rapid loss.

Each method version carries `daily_loss_limit_dollars` and `circuit_breakers {consecutive_losses,
rapid_loss_dollars, rapid_loss_minutes}`; they bind only that method's entries (the global breaker board
still guards everything). `MethodHistory` holds each method's recent closed positions (close time, realized
P&L), loaded once per scan / engine cycle by `load_method_history`; the risk manager asks `loss_block`.
A limit trips AT its threshold: realized loss today >= daily limit, the last N closes all losses (a winning
close ends the streak, a break-even one is skipped), loss within the rapid window >= rapid_loss_dollars.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from precog.domain.money import ZERO
from precog.trading.method_config import MethodRuntime

# how far back the loader reads: enough for any consecutive-loss count and any day / rapid window
HISTORY_ROWS_PER_METHOD = 100
HISTORY_SECONDS = 2 * 86400

Close = tuple[float, Decimal]  # (close time, realized P&L)
Block = tuple[str, str, dict[str, Any]]


class MethodHistory:
    """Closed positions per method, oldest first."""

    __slots__ = ("closes",)

    def __init__(self, closes: dict[int, list[Close]] | None = None) -> None:
        self.closes: dict[int, list[Close]] = {}
        for method_id, items in (closes or {}).items():
            for ts, pnl in items:
                self.add(method_id, ts, pnl)

    def add(self, method_id: int, closed_ts: float, realized_pnl: Decimal) -> None:
        items = self.closes.setdefault(method_id, [])
        items.append((closed_ts, realized_pnl))
        if len(items) > 1 and items[-2][0] > closed_ts:
            items.sort(key=lambda c: c[0])

    def trim(self, now: float) -> None:
        """Drop what `load_method_history` at `now` would no longer read: per method, closes beyond the newest
        HISTORY_ROWS_PER_METHOD that are also older than HISTORY_SECONDS."""
        cutoff = now - HISTORY_SECONDS
        for items in self.closes.values():
            if len(items) > HISTORY_ROWS_PER_METHOD:
                recent = len(items) - bisect_left(items, cutoff, key=lambda c: c[0])
                del items[:len(items) - max(HISTORY_ROWS_PER_METHOD, recent)]

    def for_method(self, method_id: int | None) -> list[Close]:
        return self.closes.get(method_id, []) if method_id is not None else []

    def loss_block(self, method: MethodRuntime, now: float, day_start: float) -> Block | None:
        """The first of the method's loss limits that is tripped, as (check, reason, details), else None."""
        closes = self.for_method(method.method_id)
        if not closes or not method.has_loss_limits:
            return None
        label = method.label
        if method.daily_loss_limit is not None:
            loss = -_sum(pnl for ts, pnl in closes if day_start <= ts <= now)
            if loss >= method.daily_loss_limit:
                return "method_daily_loss", f"method {label} daily_loss_limit_dollars {method.daily_loss_limit} " \
                    f"reached: realized loss today {loss}", {"loss": loss, "limit": method.daily_loss_limit}
        if method.consecutive_losses is not None:
            streak = 0
            for ts, pnl in reversed(closes):
                if ts > now or pnl == ZERO:
                    continue  # a break-even close neither counts nor ends the streak (as on the breaker board)
                if pnl > ZERO:
                    break
                streak += 1
                if streak >= method.consecutive_losses:
                    return "method_consecutive_losses", f"method {label} circuit_breakers.consecutive_losses " \
                        f"{method.consecutive_losses} reached: last {streak} closed positions lost", \
                        {"streak": streak, "limit": method.consecutive_losses}
        if method.rapid_loss_dollars is not None and method.rapid_loss_minutes is not None:
            since = now - method.rapid_loss_minutes * 60
            loss = -_sum(pnl for ts, pnl in closes if since <= ts <= now)
            if loss >= method.rapid_loss_dollars:
                return "method_rapid_loss", f"method {label} circuit_breakers.rapid_loss_dollars " \
                    f"{method.rapid_loss_dollars} reached: lost {loss} in the last {method.rapid_loss_minutes} min", \
                    {"loss": loss, "limit": method.rapid_loss_dollars, "minutes": method.rapid_loss_minutes}
        return None


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for v in values:
        total += v
    return total


_HISTORY_SQL = """
SELECT method_id, extract(epoch FROM closed_at), realized_pnl FROM (
    SELECT p.method_id, COALESCE(p.exit_time, p.created_at) AS closed_at, p.realized_pnl,
           row_number() OVER (PARTITION BY p.method_id ORDER BY COALESCE(p.exit_time, p.created_at) DESC) AS rn
    FROM positions p
    WHERE p.row_current_ind AND p.status IN ('closed', 'settled') AND p.mode = %s AND p.method_id IS NOT NULL
      {run_filter}
) recent
WHERE rn <= %s OR closed_at >= to_timestamp(%s)
ORDER BY method_id, closed_at
"""


def load_method_history(conn: Any, mode: str, now: float, run_id: int | None = None) -> MethodHistory:
    """One query: each method's last HISTORY_ROWS_PER_METHOD closed positions plus all closed in the last two
    days before `now` (current SCD2 rows of `positions` in `mode`). `run_id` limits it to one engine run's
    positions: a backtest replays its own past on a simulated clock, and earlier backtest runs in the same
    database are other histories, not this method's record."""
    params: tuple[Any, ...]
    if run_id is None:
        sql, params = _HISTORY_SQL.format(run_filter=""), (mode, HISTORY_ROWS_PER_METHOD, now - HISTORY_SECONDS)
    else:
        sql = _HISTORY_SQL.format(run_filter="AND p.position_metadata->>'run_id' = %s")
        params = (mode, str(run_id), HISTORY_ROWS_PER_METHOD, now - HISTORY_SECONDS)
    rows = conn.execute(sql, params).fetchall()
    history = MethodHistory()
    for method_id, ts, pnl in rows:
        history.add(int(method_id), float(ts), pnl if pnl is not None else ZERO)
    return history
