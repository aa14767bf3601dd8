"""The post-run leak guard: results no honest strategy can produce mean the run saw the future.

Under the hypothesis "the market price was right", a position bought at price c wins with probability c,
so the number of winners is a sum of Bernoulli(c) with mean sum(c) and variance sum(c(1-c)). A real edge
moves it by a standard deviation or two over a season; a leaked result moves it by dozens. Likewise a
model whose forecasts beat the market's Brier score by half or more has, in sports, read the answer.
(The structural guard, LookAheadError, stops direct peeks during the run; this one catches leaks that
arrive through a side door, e.g. a model built from the full data file before the run.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

HIT_RATE_Z = 5.0  # winners this many standard deviations above what the entry prices implied
MIN_POSITIONS = 20
BRIER_RATIO = 0.5  # model Brier below half the market's on the same games
MIN_FORECASTS = 20


@dataclass(frozen=True)
class GuardVerdict:
    fired: bool
    reasons: list[str]
    hit_rate_z: float | None

    def as_dict(self) -> dict[str, object]:
        return {"fired": self.fired, "reasons": self.reasons,
                "hit_rate_z": None if self.hit_rate_z is None else round(self.hit_rate_z, 2)}


def hit_rate_z(entry_prices: Sequence[Decimal], won: Sequence[bool]) -> float | None:
    if not entry_prices:
        return None
    mean = sum(float(c) for c in entry_prices)
    var = sum(float(c) * (1 - float(c)) for c in entry_prices)
    if var <= 0:
        return None
    return (sum(1 for w in won if w) - mean) / math.sqrt(var)


def check(entry_prices: Sequence[Decimal], won: Sequence[bool],
          brier: dict[str, tuple[float, float, int]]) -> GuardVerdict:
    """`brier`: model -> (model Brier, market Brier on the same forecasts, n)."""
    reasons: list[str] = []
    z = hit_rate_z(entry_prices, won)
    if z is not None and len(entry_prices) >= MIN_POSITIONS and z > HIT_RATE_Z:
        wins = sum(1 for w in won if w)
        reasons.append(f"impossible hit rate: {wins}/{len(won)} winners is {z:.1f} standard deviations above what "
                       f"the entry prices implied ({sum(float(c) for c in entry_prices):.1f} expected)")
    for model, (b_model, b_market, n) in sorted(brier.items()):
        if n >= MIN_FORECASTS and b_market > 0 and b_model < BRIER_RATIO * b_market:
            reasons.append(f"model {model}: Brier {b_model:.4f} vs the market's {b_market:.4f} on the same {n} "
                           "forecasts; no real sports model is that much better than the closing line")
    return GuardVerdict(bool(reasons), reasons, z)
