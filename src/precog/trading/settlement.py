"""Market settlement: close our positions at the settlement value, write `settlements`, realize P&L.

A YES contract pays `value` (1, 0, or a fraction for scalar/fractional settlements) and a NO contract pays
1 - value. The venue pays floor-to-cent per market and account, so the payout we book for a market is the
venue's own revenue when it reports one, else floor_cent(value x contracts); several of our positions in one
market share it by quantity, the last one taking the remainder, so the books match the venue to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from precog.domain.money import ONE, ZERO, floor_cent, q4
from precog.domain.portfolio import Settlement as VenueSettlement
from precog.ingest.scd2 import jsonb
from precog.trading.portfolio import Portfolio, PositionState


@dataclass(frozen=True)
class SettledPosition:
    position_id: int
    payout: Decimal
    realized: Decimal  # this settlement's own P&L: the payout less the cost of the contracts still held
    position_pnl: Decimal  # the whole position's realized P&L (earlier partial exits included)


def outcome_for(value: Decimal) -> str:
    return "yes" if value == ONE else "no" if value == ZERO else "scalar"


def settle_market(portfolio: Portfolio, market_id: str, value: Decimal, when: datetime, *,
                  venue_settlement: VenueSettlement | None = None, run_id: int | None = None,
                  market_result: str | None = None) -> list[SettledPosition]:
    """Settle every open position we hold in `market_id`. Idempotent: settled positions are not open."""
    positions = [p for p in portfolio.open_in_market(market_id)]
    if not positions:
        return []
    out: list[SettledPosition] = []
    by_side: dict[str, list[PositionState]] = {}
    for p in positions:
        by_side.setdefault(p.side, []).append(p)
    for side, group in by_side.items():
        unit = value if side == "yes" else ONE - value
        total_qty = sum(p.quantity for p in group)
        total = floor_cent(unit * total_qty)
        if venue_settlement is not None:
            venue_qty = venue_settlement.yes_count if side == "yes" else venue_settlement.no_count
            if venue_qty == total_qty:
                total = floor_cent(unit * venue_qty)  # the venue's revenue for this side, to the cent
        remaining = total
        for i, pos in enumerate(group):
            payout = remaining if i == len(group) - 1 else q4(total * pos.quantity / total_qty)
            remaining -= payout
            out.append(_settle_one(portfolio, pos, value, payout, when, run_id, market_result, venue_settlement))
    return out


def _settle_one(portfolio: Portfolio, pos: PositionState, value: Decimal, payout: Decimal, when: datetime,
                run_id: int | None, market_result: str | None,
                venue_settlement: VenueSettlement | None) -> SettledPosition:
    realized = payout - pos.cost_basis
    qty = pos.quantity
    api: dict[str, Any] | None = None
    if venue_settlement is not None:
        api = {"market_result": venue_settlement.market_result, "revenue": str(venue_settlement.revenue),
               "yes_count": str(venue_settlement.yes_count), "no_count": str(venue_settlement.no_count),
               "value": str(venue_settlement.value) if venue_settlement.value is not None else None}
    with portfolio.conn.transaction():
        portfolio.conn.execute(
            "INSERT INTO settlements (market_id, platform_id, position_id, outcome, settlement_value, side, quantity, "
            "payout, realized_pnl, mode, settlement_timestamp, api_response) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (pos.market_id, portfolio.platform_id, pos.position_id, market_result or outcome_for(value), value,
             pos.side, qty, payout, realized, portfolio.mode, when, jsonb(api) if api else None))
        pos.realized_pnl += realized
        pos.cost_basis = ZERO
        pos.quantity = 0
        pos.status = "settled"
        pos.exit_reason = "settlement"
        pos.exit_price = value if pos.side == "yes" else ONE - value
        pos.exit_time = when
        pos.current_price = pos.exit_price
        pos.unrealized_pnl = ZERO
        pos.last_update = when
        pos.metadata["settled_quantity"] = qty
        pos.metadata["settlement_run_id"] = run_id
        portfolio.save(pos, when)
    return SettledPosition(pos.position_id, payout, realized, pos.realized_pnl)


def venue_settlement_for(settlements: Sequence[VenueSettlement], market_id: str) -> VenueSettlement | None:
    for s in settlements:
        if s.ticker == market_id:
            return s
    return None
