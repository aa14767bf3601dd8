"""Value at risk of the open positions to settlement, and its alert (spec 8.2: VaR > 0.10).

Every open position is worth its mark now and pays $1 or $0 a contract at settlement; the market's own marks
are the win probabilities (the risk-neutral view: no model is trusted to size its own risk). Positions in the
markets of one event (a game) share its outcome: its markets are taken as mutually exclusive (one team
wins; a game-winner series' markets are), the rest of the probability going to "none of the held markets".
Events are independent of each other. The P&L distribution is exact to the cent per event and kept to the
whole dollar (rounded towards the loss) across events; VaR at confidence c is the loss the P&L stays above
with probability c. Probabilities are binary floating point: a risk figure, not an amount of money moved.

`trading.alerts.max_var_pct` (0.10 of equity) at `trading.alerts.var_confidence` (0.95) raises one
`value_at_risk` alert (high) per episode; back under half the limit ends the episode.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from precog.trading.alert_config import alerts_section, share

ZERO = Decimal("0")
ONE = Decimal("1")
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Holding:
    """An open position as VaR sees it: `mark` is the held side's price now (its win probability)."""

    event: str
    market: str
    side: str  # "yes" | "no"
    contracts: int
    mark: Decimal


@dataclass(frozen=True)
class VarRule:
    max_share: Decimal
    confidence: Decimal

    @classmethod
    def from_config(cls, trading: Mapping[str, Any]) -> VarRule:
        section = alerts_section(trading, "max_var_pct and var_confidence")
        return cls(share(section, "max_var_pct"), share(section, "var_confidence", above=Decimal("0.5")))


def _event_outcomes(holdings: list[Holding]) -> list[tuple[float, int]]:
    """(probability, P&L in cents) of each outcome of one event for the positions held in it."""
    p_yes: dict[str, Decimal] = {}
    for h in holdings:  # a market's YES probability from the mark of the side held (one position per market)
        p_yes[h.market] = h.mark if h.side == "yes" else ONE - h.mark
    total = sum(p_yes.values(), ZERO)
    scale = total if total > ONE else ONE  # marks of exclusive markets summing past 1: normalised
    outcomes: list[tuple[float, int]] = []
    winners: list[str | None] = [*p_yes, None]  # which held market resolves YES, or none of them
    for winner in winners:
        p = (p_yes[winner] / scale) if winner is not None else max(ZERO, ONE - total / scale)
        if p <= 0:
            continue
        pnl = ZERO
        for h in holdings:
            won = (h.market == winner) == (h.side == "yes")
            pnl += h.contracts * ((ONE - h.mark) if won else -h.mark)
        outcomes.append((float(p), int((pnl / CENT).to_integral_value(rounding=ROUND_FLOOR))))
    return outcomes


def pnl_distribution(holdings: Iterable[Holding]) -> dict[int, float]:
    """P&L to settlement in whole dollars (rounded towards the loss) -> probability."""
    by_event: dict[str, list[Holding]] = defaultdict(list)
    for h in holdings:
        by_event[h.event].append(h)
    dist: dict[int, float] = {0: 1.0}
    for event in sorted(by_event):
        nxt: dict[int, float] = defaultdict(float)
        for p, cents in _event_outcomes(by_event[event]):
            dollars = math.floor(cents / 100)
            for value, q in dist.items():
                nxt[value + dollars] += q * p
        dist = dict(nxt)
    return dist


def value_at_risk(holdings: Iterable[Holding], confidence: Decimal) -> Decimal:
    """The loss (dollars, >= 0) the positions' P&L to settlement stays above with probability `confidence`."""
    tail = 1.0 - float(confidence)
    cumulative = 0.0
    for value in sorted(dist := pnl_distribution(holdings)):
        cumulative += dist[value]
        if cumulative > tail + 1e-12:
            return Decimal(max(0, -value))
    return ZERO


class VarWatch:
    """Raises the value_at_risk alert once per episode."""

    def __init__(self, rule: VarRule, alerts: Any, platform_id: str, mode: str) -> None:
        self.rule = rule
        self.alerts = alerts
        self.platform_id = platform_id
        self.mode = mode
        self.alerted = False

    def observe(self, holdings: list[Holding], equity: Decimal) -> bool:
        """Check the positions against equity; True when the alert was raised."""
        if equity <= ZERO:
            return False
        var = value_at_risk(holdings, self.rule.confidence)
        share = var / equity
        if share < self.rule.max_share / 2:
            self.alerted = False
            return False
        if self.alerted or share < self.rule.max_share:
            return False
        self.alerted = True
        pct = (share * 100).quantize(CENT)
        conf = (self.rule.confidence * 100).normalize()
        self.alerts.raise_alert(
            "value_at_risk", "high", "portfolio",
            f"{conf}% value at risk of the {len(holdings)} open position(s) to settlement is ${var:,.2f}, {pct}% of "
            f"equity ${equity:,.2f} (limit {(self.rule.max_share * 100).normalize()}%: trading.alerts.max_var_pct)",
            {"platform_id": self.platform_id, "mode": self.mode, "value_at_risk": str(var),
             "equity": str(equity.quantize(CENT)), "share": str(share.quantize(Decimal("0.0001"))),
             "confidence": str(self.rule.confidence), "max_var_pct": str(self.rule.max_share),
             "positions": len(holdings), "events": len({h.event for h in holdings})},
            dedup_key=f"value_at_risk:{self.platform_id}:{self.mode}", category="risk")
        return True
