"""The volatility ratio of spec 5.3 ("volatility >= 2x normal -> -30% size"): how much faster a market's mid
price moves now than it normally does.

    mid            (yes_bid + yes_ask) / 2 while both sides quote (0 < bid <= ask < 1), else unknown
    move           the change of the mid between two consecutive observations that both have one
    RV(window)     the sum of squared moves that happened inside the window (realized variance)
    ratio          sqrt( (RV(recent) / recent seconds) / (RV(baseline) / baseline seconds) )
                   recent   = the last `volatility_recent_minutes`
                   baseline = the `volatility_baseline_minutes` before the recent window

Realized variance is time-weighted by construction: the mid is a step function between observations, so a
repeated observation of an unchanged mid adds nothing. The database path can therefore use the markets SCD2
versions (written only on a material change) as the observations, and the trading loop the snapshots it
reads every cycle, and both get the same number for the same price path (tested). The ratio is unknown
(None, no size reduction) when either window holds fewer non-zero moves than its configured minimum; the
baseline minimum (>= 1) also guarantees a non-zero denominator.

All arithmetic is exact Decimal (mids of 4-decimal quotes, their squares and sums); only the final square
root is rounded, to 4 places.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from precog.domain.money import ONE, ZERO, to_decimal
from precog.trading.settings import SizingAdjustments

HIGH_VOLATILITY = "high_volatility"  # the size adjustment's name (sizing.size_adjustment uses the same)
_CTX = Context(prec=28, rounding=ROUND_HALF_EVEN)
_PLACES = Decimal("0.0001")
_TWO = Decimal(2)


@dataclass(frozen=True, slots=True)
class VolatilityRule:
    """position_management.yaml `sizing_adjustments`: the windows, the minimum moves, and the reduction."""

    recent_seconds: int = 15 * 60
    baseline_seconds: int = 120 * 60
    min_recent_moves: int = 3
    min_baseline_moves: int = 10
    threshold: Decimal = Decimal("2.0")  # high_volatility_ratio
    reduction: Decimal = Decimal("0.30")  # high_volatility_reduction

    @classmethod
    def from_adjustments(cls, adj: SizingAdjustments) -> VolatilityRule:
        return cls(recent_seconds=adj.volatility_recent_minutes * 60,
                   baseline_seconds=adj.volatility_baseline_minutes * 60,
                   min_recent_moves=adj.volatility_min_recent_moves,
                   min_baseline_moves=adj.volatility_min_baseline_moves,
                   threshold=adj.high_volatility_ratio, reduction=adj.high_volatility_reduction)

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any] | None) -> VolatilityRule:
        """From the `sizing_adjustments` mapping of a loaded configuration (validated by the config schema)."""
        block = block or {}
        base = SizingAdjustments()

        def num(key: str) -> int:
            return int(block.get(key, getattr(base, key)))

        def dec(key: str) -> Decimal:
            return to_decimal(block.get(key, getattr(base, key)), field=f"sizing_adjustments.{key}")

        return cls.from_adjustments(SizingAdjustments(
            volatility_recent_minutes=num("volatility_recent_minutes"),
            volatility_baseline_minutes=num("volatility_baseline_minutes"),
            volatility_min_recent_moves=num("volatility_min_recent_moves"),
            volatility_min_baseline_moves=num("volatility_min_baseline_moves"),
            high_volatility_ratio=dec("high_volatility_ratio"),
            high_volatility_reduction=dec("high_volatility_reduction")))

    def size_factor(self, ratio: Decimal | None) -> tuple[Decimal, tuple[str, ...]]:
        """(multiplier, adjustment names) for a size: 1 - reduction at or above the threshold; unknown -> none."""
        if ratio is not None and ratio >= self.threshold:
            return ONE - self.reduction, (HIGH_VOLATILITY,)
        return ONE, ()


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Non-zero mid moves and their sum of squares in the recent and the baseline window."""

    recent_moves: int = 0
    recent_sum_sq: Decimal = ZERO
    baseline_moves: int = 0
    baseline_sum_sq: Decimal = ZERO


def mid_of(yes_bid: Decimal | None, yes_ask: Decimal | None) -> Decimal | None:
    """The mid of a two-sided quote (the same rule as the stored yes_price), else None."""
    if yes_bid is None or yes_ask is None or not (ZERO < yes_bid <= yes_ask < ONE):
        return None
    return (yes_bid + yes_ask) / _TWO


def volatility_ratio(stats: WindowStats, rule: VolatilityRule) -> Decimal | None:
    """The ratio of recent to baseline volatility (4 places), or None with too few moves in either window."""
    if stats.recent_moves < rule.min_recent_moves or stats.baseline_moves < rule.min_baseline_moves:
        return None
    if stats.baseline_sum_sq <= ZERO:  # only reachable with min_baseline_moves = 0 (the schema forbids it)
        return None
    variance_ratio = _CTX.divide(_CTX.multiply(stats.recent_sum_sq, Decimal(rule.baseline_seconds)),
                                 _CTX.multiply(stats.baseline_sum_sq, Decimal(rule.recent_seconds)))
    return _CTX.sqrt(variance_ratio).quantize(_PLACES, rounding=ROUND_HALF_EVEN, context=_CTX)


def window_stats(observations: Iterable[tuple[float, Decimal | None]], now: float,
                 rule: VolatilityRule) -> WindowStats:
    """The statistic from time-ordered (epoch seconds, mid or None) observations.

    The observation current at the baseline start (the latest at or before it) anchors the first move; a
    move is dated at its later observation and counted in the window that contains that time."""
    recent_start = now - rule.recent_seconds
    baseline_start = recent_start - rule.baseline_seconds
    rn = bn = 0
    rs = bs = ZERO
    prev: Decimal | None = None
    for ts, mid in observations:
        if ts > now:
            break
        if ts > baseline_start and prev is not None and mid is not None:
            move = mid - prev
            if move != ZERO:
                sq = move * move
                if ts > recent_start:
                    rn, rs = rn + 1, rs + sq
                else:
                    bn, bs = bn + 1, bs + sq
        prev = mid
    return WindowStats(rn, rs, bn, bs)


class VolatilityTracker:
    """The trading loop's rolling estimator: fed each market's quote every cycle, it keeps only the mid
    changes inside the windows (plus the one observation that anchors the baseline)."""

    def __init__(self, rule: VolatilityRule) -> None:
        self.rule = rule
        self._obs: dict[str, deque[tuple[float, Decimal | None]]] = {}

    def observe(self, ticker: str, ts: float, yes_bid: Decimal | None, yes_ask: Decimal | None) -> None:
        mid = mid_of(yes_bid, yes_ask)
        q = self._obs.setdefault(ticker, deque())
        if q:
            last_ts, last_mid = q[-1]
            if ts < last_ts or last_mid == mid:  # out of order, or no change: nothing to learn
                return
        q.append((ts, mid))
        horizon = ts - self.rule.recent_seconds - self.rule.baseline_seconds
        while len(q) >= 2 and q[1][0] <= horizon:
            q.popleft()

    def stats(self, ticker: str, now: float) -> WindowStats:
        return window_stats(self._obs.get(ticker, ()), now, self.rule)

    def ratio(self, ticker: str, now: float) -> Decimal | None:
        return volatility_ratio(self.stats(ticker, now), self.rule)

    def observations(self, ticker: str) -> Sequence[tuple[float, Decimal | None]]:
        return tuple(self._obs.get(ticker, ()))


# One set-based query over the markets SCD2 history for every market of a scan: the version current at the
# baseline start (LATERAL, one index probe per market) and all versions since (an index range scan on
# (market_id, created_at)); moves by lag() per market; both windows aggregated per market.
_STATS_SQL = """
WITH ids AS (SELECT DISTINCT unnest(%(ids)s::text[]) AS market_id),
obs AS (
    SELECT a.id, a.market_id, a.created_at, a.yes_bid, a.yes_ask
    FROM ids CROSS JOIN LATERAL (
        SELECT h.id, h.market_id, h.created_at, h.yes_bid, h.yes_ask FROM markets h
        WHERE h.market_id = ids.market_id AND h.created_at <= %(baseline_start)s
        ORDER BY h.created_at DESC, h.id DESC LIMIT 1) a
    UNION ALL
    SELECT h.id, h.market_id, h.created_at, h.yes_bid, h.yes_ask FROM markets h
    WHERE h.market_id = ANY(%(ids)s::text[]) AND h.created_at > %(baseline_start)s AND h.created_at <= %(now)s
),
mids AS (
    SELECT id, market_id, created_at,
           CASE WHEN yes_bid > 0 AND yes_bid <= yes_ask AND yes_ask < 1 THEN (yes_bid + yes_ask) / 2 END AS mid
    FROM obs
),
moves AS (
    SELECT market_id, created_at,
           mid - lag(mid) OVER (PARTITION BY market_id ORDER BY created_at, id) AS dm
    FROM mids
)
SELECT market_id,
       count(*) FILTER (WHERE created_at > %(recent_start)s AND dm <> 0),
       COALESCE(sum(dm * dm) FILTER (WHERE created_at > %(recent_start)s), 0),
       count(*) FILTER (WHERE created_at > %(baseline_start)s AND created_at <= %(recent_start)s AND dm <> 0),
       COALESCE(sum(dm * dm) FILTER (WHERE created_at > %(baseline_start)s AND created_at <= %(recent_start)s), 0)
FROM moves
GROUP BY market_id
"""


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def load_window_stats(conn: Any, market_ids: Sequence[str], now: float,
                      rule: VolatilityRule) -> dict[str, WindowStats]:
    """The statistic of every market in `market_ids` from its stored versions, in one query."""
    if not market_ids:
        return {}
    recent_start = now - rule.recent_seconds
    params = {"ids": list(market_ids), "now": _at(now), "recent_start": _at(recent_start),
              "baseline_start": _at(recent_start - rule.baseline_seconds)}
    rows = conn.execute(_STATS_SQL, params).fetchall()
    return {r[0]: WindowStats(int(r[1]), Decimal(r[2]), int(r[3]), Decimal(r[4])) for r in rows}


def load_ratios(conn: Any, market_ids: Sequence[str], now: float, rule: VolatilityRule) -> dict[str, Decimal | None]:
    """market_id -> volatility ratio (None: too few moves to say) for every market in `market_ids`."""
    stats = load_window_stats(conn, market_ids, now, rule)
    return {m: volatility_ratio(stats.get(m, WindowStats()), rule) for m in market_ids}
