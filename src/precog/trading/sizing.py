"""Position sizing: the configured method's stake for a binary contract, then adjustments, caps and whole contracts.

    f*     = (p - c) / (1 - c)          c = price + fee + slippage per contract (the effective cost); every
                                        method trades only when f* > 0 (an edge after costs)
    stake  = by trading.yaml position_sizing.method:
             kelly           bankroll x f* x fraction   fraction: strategy override > method (per sport) > sport
                                                        > default, x the special-event multiplier (playoffs 0.5,
                                                        championship 0.3)
             fixed           fixed_amount_dollars x the special-event multiplier
             fixed_fraction  bankroll x fixed_fraction x the special-event multiplier
    stake x= each size adjustment       (spec 5.3: low volume, wide spread, far from settlement, low
                                        confidence, CI width, volatility; same-game ratio)
    stake  = min(stake, every cap)      per position %, per position $, and the remaining room per
                                        market / game / sport / correlated group / total / cash
    count  = the largest whole number with count x (price + slippage) + fee(count, price) <= stake
    stake < min_position_dollars -> 0

Every method passes the same adjustments, caps and minimum: only the stake before them differs.
The result is never negative, never above any cap, zero without an edge, and shrinks as fees grow (but at the
minimum: whole contracts and a cent-rounded fee can commit just under it at a lower fee and just over it at a
higher one, so near the minimum a size is nothing or at least the minimum).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from precog.domain.fees import FeeSchedule
from precog.domain.money import ONE, ZERO
from precog.trading.settings import (
    FIXED,
    FIXED_FRACTION,
    KELLY,
    SizingAdjustments,
    SizingMethod,
    TradingSettings,
)

_MAX_FRACTION = Decimal("0.50")


def method_stake(method: SizingMethod, bankroll: Decimal, f_star: Decimal, kelly: Decimal,
                 event_multiplier: Decimal) -> tuple[Decimal, Decimal]:
    """(stake before adjustments and caps, the multiplier of its base that SizeResult reports as `fraction`).

    `kelly` is the fractional-Kelly multiplier (special event included); `event_multiplier` the special-event
    multiplier alone, which the fixed methods apply to their own stake. Edge and bankroll checks are the caller's."""
    if method.name == FIXED:
        return method.fixed_amount * event_multiplier, event_multiplier
    if method.name == FIXED_FRACTION:
        share = method.fixed_fraction * event_multiplier
        return bankroll * share, share
    return bankroll * f_star * kelly, kelly


def special_event_multiplier(settings: TradingSettings, special_event: str | None) -> Decimal:
    """The special-event stake multiplier (playoffs 0.5, championship 0.3; 1 otherwise)."""
    if special_event == "playoffs":
        return settings.playoffs_multiplier
    if special_event == "championship":
        return settings.championship_multiplier
    return ONE


def kelly_fraction(p: Decimal, cost: Decimal) -> Decimal:
    """Full-Kelly share of bankroll for buying at effective cost `cost` with belief `p` (0 without edge)."""
    if p <= cost or cost >= ONE:
        return ZERO
    return (p - cost) / (ONE - cost)


def kelly_multiplier(settings: TradingSettings, sport: str, *, strategy_fraction: Decimal | None = None,
                     method_fraction: Decimal | None = None, special_event: str | None = None) -> Decimal:
    """The fractional-Kelly multiplier for one decision (clamped to [0, 0.50], the allowed maximum)."""
    if strategy_fraction is not None:
        fraction = strategy_fraction
    elif method_fraction is not None:
        fraction = method_fraction
    else:
        fraction = settings.sport_kelly_fraction(sport)
    fraction *= special_event_multiplier(settings, special_event)
    return min(max(fraction, ZERO), _MAX_FRACTION)


def size_adjustment(adj: SizingAdjustments, *, volume: int, spread: Decimal, seconds_to_settlement: float | None,
                    confidence: Decimal, ci_width: Decimal | None, volatility_ratio: Decimal | None
                    ) -> tuple[Decimal, tuple[str, ...]]:
    """The product of the spec 5.3 size reductions that apply, and their names."""
    factor = ONE
    names: list[str] = []
    if volume < adj.low_volume_threshold:
        factor *= ONE - adj.low_volume_reduction
        names.append("low_volume")
    if spread >= adj.wide_spread_threshold:
        factor *= ONE - adj.wide_spread_reduction
        names.append("wide_spread")
    if seconds_to_settlement is not None and seconds_to_settlement > adj.far_from_settlement_seconds:
        factor *= ONE - adj.far_from_settlement_reduction
        names.append("far_from_settlement")
    if confidence < adj.low_confidence_threshold:
        factor *= ONE - adj.low_confidence_reduction
        names.append("low_confidence")
    if ci_width is not None and ci_width > ZERO:
        # -2% of size per 1% (0.01) of CI width
        factor *= max(ZERO, ONE - adj.ci_width_reduction_per_pct * ci_width * 100)
        names.append("ci_width")
    if volatility_ratio is not None and volatility_ratio >= adj.high_volatility_ratio:
        factor *= ONE - adj.high_volatility_reduction
        names.append("high_volatility")
    return factor, tuple(names)


@dataclass(frozen=True, slots=True)
class SizeResult:
    count: int
    stake: Decimal  # dollars committed: count x (price + slippage) + fee(count)
    fee: Decimal  # total fee of the order
    kelly: Decimal  # full-Kelly fraction f*
    fraction: Decimal  # kelly: the fractional-Kelly multiplier; fixed_fraction: the share of bankroll;
    #                    fixed: the special-event multiplier of the fixed amount
    target: Decimal  # the method's stake x adjustments, before caps
    limit: str  # what bound the size (the sizing method's name, a cap name), or why it is zero
    adjustments: tuple[str, ...] = ()
    method: str = KELLY  # the sizing method (trading.yaml position_sizing.method)


def contracts_for(stake: Decimal, price: Decimal, slippage: Decimal, fees: FeeSchedule, *,
                  taker: bool = True) -> tuple[int, Decimal, Decimal]:
    """(count, committed dollars, fee): the most whole contracts whose price, slippage and fee fit `stake`."""
    unit = price + slippage
    if stake <= ZERO or unit <= ZERO:
        return 0, ZERO, ZERO
    rate = (fees.taker_rate if taker else fees.maker_rate) * fees.multiplier * price * (ONE - price)
    n = int((stake / (unit + rate)).to_integral_value(rounding=ROUND_FLOOR))
    while n > 0:
        fee = fees.fee(n, price, taker=taker)
        total = unit * n + fee
        if total <= stake:
            return n, total, fee
        n -= 1
    return 0, ZERO, ZERO


def size_position(*, p: Decimal, price: Decimal, fee_per_contract: Decimal, slippage: Decimal, fees: FeeSchedule,
                  bankroll: Decimal, fraction: Decimal, caps: Sequence[tuple[str, Decimal]],
                  min_position: Decimal, adjustment: Decimal = ONE, adjustments: tuple[str, ...] = (),
                  taker: bool = True, method: SizingMethod | None = None,
                  event_multiplier: Decimal = ONE) -> SizeResult:
    """Size one entry. `caps` are (name, max dollars) pairs; the smallest binds. `method` (default Kelly) sets the
    stake before adjustments and caps; `fraction` is the fractional-Kelly multiplier (used by Kelly only) and
    `event_multiplier` the special-event multiplier (used by the fixed methods; Kelly's is inside `fraction`)."""
    method = method if method is not None else _KELLY
    cost = price + fee_per_contract + slippage
    f_star = kelly_fraction(p, cost)
    if f_star <= ZERO or bankroll <= ZERO:
        return SizeResult(0, ZERO, ZERO, f_star, fraction, ZERO, "no_edge" if f_star <= ZERO else "no_bankroll",
                          adjustments, method.name)
    base, fraction = method_stake(method, bankroll, f_star, fraction, event_multiplier)
    target = base * adjustment
    stake, limit = target, method.name
    for name, cap in caps:
        if cap < stake:
            stake, limit = cap, name
    if stake < min_position:
        return SizeResult(0, ZERO, ZERO, f_star, fraction, target, f"below_min_position:{limit}", adjustments,
                          method.name)
    count, committed, fee = contracts_for(stake, price, slippage, fees, taker=taker)
    if count == 0 or committed < min_position:
        return SizeResult(0, ZERO, ZERO, f_star, fraction, target, f"below_min_position:{limit}", adjustments,
                          method.name)
    return SizeResult(count, committed, fee, f_star, fraction, target, limit, adjustments, method.name)


_KELLY = SizingMethod()
