"""Market settlement: close our positions at the settlement value, write `settlements`, realize P&L.

A YES contract pays `value` (1, 0, or a fraction for scalar/fractional settlements) and a NO contract pays
1 - value. The venue pays floor-to-cent per market, side and account, so the payout we book for a side is
floor_cent(unit value x contracts); several of our positions in one market share it by quantity, the last one
taking the remainder, so the books match the venue to the cent.

Verification (spec position_management `settlement`: "verify settlements, log disputes"). What we book is
compared with the venue's own settlement of the market when it lists one: contracts per side (its yes_count /
no_count against all our settled contracts of that side in the market), the payout (its revenue, which covers
both sides, against the sum of our payouts in the market), the outcome (its market_result) and the value (its
per-contract YES payout, or 1 / 0 from a yes / no result). The comparison is kept in every settlement row the
market wrote (`api_response.verified`, `api_response.differences`); a difference raises one
`settlement_mismatch` alert per market. What is booked never changes (the venue's cash is reconciled on its own,
precog.trading.reconcile). A settlement booked before the venue listed its own is compared by a later
reconciliation (`verify_stored`), recorded in `settlement_verifications` (settlements is append-only).

A market the venue reports as disputed, or voided, is not settled: its positions are held and one
`settlement_disputed` alert is raised per market; they settle when the venue gives a final result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from precog.alerts.api import AlertRaiser
from precog.domain.money import CENT, ONE, ZERO, floor_cent, q4
from precog.domain.portfolio import Settlement as VenueSettlement
from precog.ingest.scd2 import jsonb
from precog.trading.portfolio import Portfolio, PositionState

log = logging.getLogger(__name__)

SETTLEMENT_MISMATCH = "settlement_mismatch"
SETTLEMENT_DISPUTED = "settlement_disputed"
# Kalshi market statuses whose result is contested: the market is closed without a final payout (the parser
# maps them to CLOSED, so nothing settles them); `amended` follows a dispute and also waits for finalization,
# but it is the venue's corrected result, not a dispute still open.
DISPUTED_STATUSES = frozenset({"disputed"})
VOID = "void"  # Kalshi settlement market_result: the market was voided, positions returned at their cost
# settlements booked without the venue's own are compared while the venue lists it within this time; the same
# window bounds the search for mismatch alerts still owed (a reconciliation looks at nothing older)
VERIFY_WITHIN = timedelta(days=7)
_RESULT_VALUE = {"yes": ONE, "no": ZERO}


@dataclass(frozen=True)
class SettledPosition:
    position_id: int
    payout: Decimal
    realized: Decimal  # this settlement's own P&L: the payout less the cost of the contracts still held
    position_pnl: Decimal  # the whole position's realized P&L (earlier partial exits included)
    settlement_id: int | None = None  # the `settlements` row written


@dataclass(frozen=True)
class Booked:
    """What our books hold for one market's settlement, in the venue settlement's terms."""

    yes_count: Decimal
    no_count: Decimal
    payout: Decimal  # both sides
    outcome: str
    value: Decimal  # the payout of one YES contract we settled at

    def __add__(self, other: Booked) -> Booked:
        return Booked(self.yes_count + other.yes_count, self.no_count + other.no_count,
                      self.payout + other.payout, self.outcome, self.value)


def outcome_for(value: Decimal) -> str:
    return "yes" if value == ONE else "no" if value == ZERO else "scalar"


def differences(ours: Booked, venue: VenueSettlement) -> list[dict[str, str]]:
    """Each figure where our books and the venue's settlement disagree: {figure, side, ours, venue}
    (side yes / no for contracts, market for the figures of the whole market)."""
    out: list[dict[str, str]] = []
    for side, mine, theirs in (("yes", ours.yes_count, venue.yes_count), ("no", ours.no_count, venue.no_count)):
        if mine != theirs:
            out.append(_difference("contracts", side, mine, theirs))
    cents = venue.cents_only
    if _differ(ours.payout, venue.revenue, "revenue" in cents):  # the venue's revenue: the market's payout
        out.append(_difference("payout", "market", ours.payout, venue.revenue))
    if venue.market_result and venue.market_result != ours.outcome:
        out.append(_difference("outcome", "market", ours.outcome, venue.market_result))
    venue_value = venue.value if venue.value is not None else _RESULT_VALUE.get(venue.market_result)
    if venue_value is not None and _differ(ours.value, venue_value, "value" in cents and venue.value is not None):
        out.append(_difference("value", "market", ours.value, venue_value))
    return out


def _differ(ours: Decimal, venue: Decimal, in_whole_cents: bool) -> bool:
    """Whether two figures disagree. A venue figure given in whole cents (Kalshi's integer `revenue`, `value`)
    stands for an exact one within a cent of it (a 0.4533 settlement value arrives as 45 or 46, the venue does not
    say which rounding): only a difference of a cent or more is one."""
    if not in_whole_cents:
        return ours != venue
    return abs(ours - venue) >= CENT


def _difference(figure: str, side: str, ours: object, venue: object) -> dict[str, str]:
    return {"figure": figure, "side": side, "ours": str(ours), "venue": str(venue)}


def venue_payload(s: VenueSettlement) -> dict[str, Any]:
    return {"market_result": s.market_result, "revenue": str(s.revenue), "yes_count": str(s.yes_count),
            "no_count": str(s.no_count), "value": str(s.value) if s.value is not None else None}


def settle_market(portfolio: Portfolio, market_id: str, value: Decimal, when: datetime, *,
                  venue_settlement: VenueSettlement | None = None, run_id: int | None = None,
                  market_result: str | None = None, alerts: AlertRaiser | None = None) -> list[SettledPosition]:
    """Settle every open position we hold in `market_id`. Idempotent: settled positions are not open.

    With the venue's settlement the booking is verified against it (module docstring); a difference raises
    `settlement_mismatch` through `alerts` (without one, the next reconciliation raises it). A voided market is
    held, not settled (`settlement_disputed`)."""
    positions = [p for p in portfolio.open_in_market(market_id)]
    if not positions:
        return []
    if VOID in (market_result, venue_settlement.market_result if venue_settlement is not None else None):
        hold_disputed(portfolio, market_id, "voided by the venue", alerts,
                      venue_status=venue_settlement.market_result if venue_settlement is not None else VOID)
        return []
    plan = _payouts(positions, value)
    outcome = market_result or outcome_for(value)
    api: dict[str, Any] | None = None
    found: list[dict[str, str]] = []
    if venue_settlement is not None:
        found = _verify(portfolio, market_id, plan, outcome, value, venue_settlement)
        api = {**venue_payload(venue_settlement), "verified": not found, "differences": found}
    out = [_settle_one(portfolio, pos, value, payout, when, run_id, outcome, api) for pos, payout in plan]
    if found and venue_settlement is not None:
        log.error("settlement of %s differs from the venue's: %s", market_id, found)
        raise_mismatch(portfolio, market_id, found, alerts, venue=venue_payload(venue_settlement))
    return out


def _payouts(positions: Sequence[PositionState], value: Decimal) -> list[tuple[PositionState, Decimal]]:
    """Each position's payout: its side's floor-to-cent total shared by quantity, the last taking the rest."""
    by_side: dict[str, list[PositionState]] = {}
    for p in positions:
        by_side.setdefault(p.side, []).append(p)
    plan: list[tuple[PositionState, Decimal]] = []
    for side, group in by_side.items():
        unit = value if side == "yes" else ONE - value
        total_qty = sum(p.quantity for p in group)
        total = floor_cent(unit * total_qty)  # what the venue pays for the side, to the cent
        remaining = total
        for i, pos in enumerate(group):
            payout = remaining if i == len(group) - 1 else q4(total * pos.quantity / total_qty)
            remaining -= payout
            plan.append((pos, payout))
    return plan


def _verify(portfolio: Portfolio, market_id: str, plan: Sequence[tuple[PositionState, Decimal]], outcome: str,
            value: Decimal, venue: VenueSettlement) -> list[dict[str, str]]:
    """The differences between the venue's settlement and everything we settled in the market: this pass, and
    (looked up only when this pass alone differs) earlier passes, e.g. a fill the venue listed late."""
    ours = Booked(sum((Decimal(p.quantity) for p, _ in plan if p.side == "yes"), ZERO),
                  sum((Decimal(p.quantity) for p, _ in plan if p.side == "no"), ZERO),
                  sum((pay for _, pay in plan), ZERO), outcome, value)
    found = differences(ours, venue)
    if found:
        earlier = _booked_earlier(portfolio, market_id, outcome, value)
        if earlier is not None:
            found = differences(ours + earlier, venue)
    return found


def _scope(portfolio: Portfolio, params: list[Any]) -> str:
    """SQL condition keeping settlement rows `s` of this portfolio's platform, mode and venue account."""
    params += [portfolio.platform_id, portfolio.mode]
    cond = "s.platform_id = %s AND s.mode = %s"
    if portfolio.account_ref is not None:  # as Portfolio's own scope: positions opened by a run of the account
        params.append(portfolio.account_ref)
        cond += (" AND EXISTS (SELECT 1 FROM positions p WHERE p.position_id = s.position_id AND p.row_current_ind"
                 " AND (p.position_metadata->>'run_id')::bigint IN (SELECT run_id FROM engine_runs"
                 " WHERE account_ref = %s))")
    return cond


def _booked_earlier(portfolio: Portfolio, market_id: str, outcome: str, value: Decimal) -> Booked | None:
    params: list[Any] = [market_id]
    rows = portfolio.conn.execute(
        "SELECT s.side, sum(s.quantity), sum(s.payout) FROM settlements s WHERE s.market_id = %s AND "  # noqa: S608 - constant SQL fragments; values are parameters
        f"{_scope(portfolio, params)} GROUP BY s.side", params).fetchall()
    if not rows:
        return None
    qty = {side: Decimal(n) for side, n, _ in rows}
    return Booked(qty.get("yes", ZERO), qty.get("no", ZERO), sum((Decimal(pay) for _, _, pay in rows), ZERO),
                  outcome, value)


def _settle_one(portfolio: Portfolio, pos: PositionState, value: Decimal, payout: Decimal, when: datetime,
                run_id: int | None, outcome: str, api: dict[str, Any] | None) -> SettledPosition:
    realized = payout - pos.cost_basis
    qty = pos.quantity
    with portfolio.conn.transaction():
        row = portfolio.conn.execute(
            "INSERT INTO settlements (market_id, platform_id, position_id, outcome, settlement_value, side, quantity, "
            "payout, realized_pnl, mode, settlement_timestamp, api_response) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING settlement_id",
            (pos.market_id, portfolio.platform_id, pos.position_id, outcome, value,
             pos.side, qty, payout, realized, portfolio.mode, when, jsonb(api) if api else None)).fetchone()
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
    return SettledPosition(pos.position_id, payout, realized, pos.realized_pnl, int(row[0]) if row else None)


def venue_settlement_for(settlements: Sequence[VenueSettlement], market_id: str) -> VenueSettlement | None:
    for s in settlements:
        if s.ticker == market_id:
            return s
    return None


# ------------------------------------------------------------------------------------------------- alerts


def _market_settlement_ids(portfolio: Portfolio, market_id: str) -> list[int]:
    params: list[Any] = [market_id]
    rows = portfolio.conn.execute(
        f"SELECT s.settlement_id FROM settlements s WHERE s.market_id = %s AND {_scope(portfolio, params)} "  # noqa: S608 - constant SQL fragments; values are parameters
        "ORDER BY s.settlement_id", params).fetchall()
    return [int(r[0]) for r in rows]


def _alerted(portfolio: Portfolio, alert_type: str, source_table: str, ids: Sequence[int]) -> bool:
    row = portfolio.conn.execute(
        "SELECT 1 FROM alerts WHERE alert_type = %s AND source_table = %s AND source_id = ANY(%s) LIMIT 1",
        (alert_type, source_table, list(ids))).fetchone()
    return row is not None


def _dedup_key(alert_type: str, portfolio: Portfolio, market_id: str) -> str:
    return f"{alert_type}:{portfolio.platform_id}:{portfolio.mode}:{market_id}"


def _raise(alerts: AlertRaiser, alert_type: str, message: str, details: dict[str, Any], source_table: str,
           source_id: int, dedup_key: str) -> bool:
    try:
        alerts.raise_alert(alert_type, "high", "settlement", message, details, source_table=source_table,
                           source_id=source_id, dedup_key=dedup_key, category="trading")
    except Exception:  # noqa: BLE001 - an alert that cannot be raised never undoes a settlement (owed, retried)
        log.exception("could not raise %s for %s", alert_type, details.get("market"))
        return False
    return True


def raise_mismatch(portfolio: Portfolio, market_id: str, found: Sequence[dict[str, str]],
                   alerts: AlertRaiser | None, *, venue: dict[str, Any] | None = None) -> bool:
    """One `settlement_mismatch` alert (high) per market of this account: none when one was raised already
    (an alert whose source is one of the market's settlement rows). True when raised now."""
    if alerts is None:
        return False
    ids = _market_settlement_ids(portfolio, market_id)
    if not ids or _alerted(portfolio, SETTLEMENT_MISMATCH, "settlements", ids):
        return False
    figures = ", ".join(f"{d['figure']} ({d['side']}) ours {d['ours']} vs venue {d['venue']}" for d in found)
    details = {"market": market_id, "platform": portfolio.platform_id, "mode": portfolio.mode,
               "differences": list(found), "settlement_ids": ids, "venue_settlement": venue}
    return _raise(alerts, SETTLEMENT_MISMATCH,
                  f"settlement of {market_id} differs from the venue's: {figures}; booked as ours, check the venue",
                  details, "settlements", ids[0], _dedup_key(SETTLEMENT_MISMATCH, portfolio, market_id))


def hold_disputed(portfolio: Portfolio, market_id: str, reason: str, alerts: AlertRaiser | None, *,
                  venue_status: str = "") -> bool:
    """Our open positions in a market the venue disputes or voided stay open (nothing is settled at a value the
    venue has not finalized); one `settlement_disputed` alert (high) per market says so. True when raised now."""
    held = sorted(portfolio.open_in_market(market_id), key=lambda p: p.position_id)
    if not held or alerts is None:
        return False
    ids = [p.position_id for p in held]
    if _alerted(portfolio, SETTLEMENT_DISPUTED, "positions", ids):
        return False
    log.warning("market %s is %s: %d position(s) held until the venue gives a final result", market_id, reason,
                len(held))
    details = {"market": market_id, "platform": portfolio.platform_id, "mode": portfolio.mode, "reason": reason,
               "venue_status": venue_status, "position_ids": ids,
               "contracts": {side: sum(p.quantity for p in held if p.side == side) for side in ("yes", "no")}}
    return _raise(alerts, SETTLEMENT_DISPUTED,
                  f"{market_id} is {reason}: {len(held)} position(s) held, not settled, until the venue gives a "
                  "final result", details, "positions", ids[0], _dedup_key(SETTLEMENT_DISPUTED, portfolio, market_id))


# ---------------------------------------------------------------------------- verification after the fact


def _mine(portfolio: Portfolio, since: datetime, params: list[Any]) -> str:
    """CTE `mine`: this account's settlement rows written since `since`."""
    cond = _scope(portfolio, params)
    params.append(since)
    return f"WITH mine AS (SELECT s.* FROM settlements s WHERE {cond} AND s.settlement_timestamp >= %s) "  # noqa: S608 - constant SQL fragments; values are parameters


def unverified(portfolio: Portfolio, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Markets settled within VERIFY_WITHIN whose rows were written without the venue's settlement and not
    compared since, with all their settlement rows of this account. Cheap when there are none (every
    reconciliation asks): the partial index idx_settlements_unverified holds only rows written without one."""
    params: list[Any] = []
    cond = _scope(portfolio, params)
    params.append(now - VERIFY_WITHIN)
    markets = [r[0] for r in portfolio.conn.execute(
        f"SELECT DISTINCT s.market_id FROM settlements s WHERE s.api_response IS NULL AND {cond} "  # noqa: S608 - constant SQL fragments; values are parameters
        "AND s.settlement_timestamp >= %s AND NOT EXISTS (SELECT 1 FROM settlement_verifications v "
        "WHERE v.settlement_ids @> ARRAY[s.settlement_id])", params).fetchall()]
    if not markets:
        return {}
    params = [markets]
    cond = _scope(portfolio, params)
    out: dict[str, list[dict[str, Any]]] = {}
    with portfolio.conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(
                "SELECT s.settlement_id, s.market_id, s.side, s.quantity, s.payout, s.outcome, s.settlement_value "  # noqa: S608 - constant SQL fragments
                f"FROM settlements s WHERE s.market_id = ANY(%s) AND {cond} ORDER BY s.settlement_id",
                params).fetchall():
            out.setdefault(row["market_id"], []).append(row)
    return out


def verify_stored(portfolio: Portfolio, pending: dict[str, list[dict[str, Any]]],
                  settlements: Sequence[VenueSettlement], alerts: AlertRaiser | None, now: datetime) -> int:
    """Compare each pending market (`unverified`) the venue now lists with its settlement; record the comparison
    in `settlement_verifications` and raise `settlement_mismatch` on a difference. Markets the venue does not
    list yet stay pending. Returns how many markets were compared."""
    done = 0
    for market_id, rows in pending.items():
        venue = venue_settlement_for(settlements, market_id)
        if venue is None:
            continue
        ours = Booked(sum((Decimal(r["quantity"]) for r in rows if r["side"] == "yes"), ZERO),
                      sum((Decimal(r["quantity"]) for r in rows if r["side"] == "no"), ZERO),
                      sum((Decimal(r["payout"]) for r in rows), ZERO), rows[-1]["outcome"],
                      Decimal(rows[-1]["settlement_value"]))
        found = differences(ours, venue)
        payload = venue_payload(venue)
        portfolio.conn.execute(
            "INSERT INTO settlement_verifications (market_id, platform_id, mode, settlement_ids, verified, "
            "differences, venue_settlement, verified_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (market_id, portfolio.platform_id, portfolio.mode, [r["settlement_id"] for r in rows], not found,
             jsonb(found), jsonb(payload), now))
        done += 1
        if found:
            log.error("settlement of %s differs from the venue's: %s", market_id, found)
            raise_mismatch(portfolio, market_id, found, alerts, venue=payload)
    return done


def raise_owed_mismatches(portfolio: Portfolio, alerts: AlertRaiser | None, now: datetime) -> int:
    """Raise the `settlement_mismatch` alerts owed: markets settled within VERIFY_WITHIN whose latest comparison
    (a settlement row's api_response, or a later verification) found differences and that have no such alert
    yet — a settlement booked without an alert sink (the engine's cycle), or whose alert failed. Returns how
    many were raised."""
    if alerts is None:
        return 0
    params: list[Any] = []
    # each comparison of the market, in the order made: a settlement row's own (kind 0), a later verification (1)
    sql = _mine(portfolio, now - VERIFY_WITHIN, params) + (  # noqa: S608 - constant SQL fragments
        "SELECT m.market_id, m.settlement_timestamp AS at, 0 AS kind, m.settlement_id AS seq, "
        "(m.api_response->>'verified')::boolean AS verified, m.api_response->'differences' AS differences, "
        "m.api_response - 'verified' - 'differences' AS venue "
        "FROM mine m WHERE m.api_response ? 'verified' "
        "UNION ALL SELECT v.market_id, v.verified_at, 1, v.verification_id, v.verified, v.differences, "
        "v.venue_settlement FROM settlement_verifications v "
        "WHERE EXISTS (SELECT 1 FROM mine m WHERE v.settlement_ids @> ARRAY[m.settlement_id]) "
        "ORDER BY 1, 2, 3, 4")
    latest: dict[str, dict[str, Any]] = {}
    with portfolio.conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(sql, params).fetchall():  # type: ignore[arg-type]
            latest[row["market_id"]] = row  # ordered by time: the last one per market wins
    raised = 0
    for market_id, row in latest.items():
        if not row["verified"] and raise_mismatch(portfolio, market_id, row["differences"] or [], alerts,
                                                  venue=row["venue"]):
            raised += 1
    return raised
