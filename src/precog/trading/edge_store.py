"""Edges and risk rejections in the database.

Edges are SCD2 (`edges`, business key market|side|strategy|model|method) written with the shared SCD2
writer: a key gets a new version only when its edge, probability, price, confidence or action changed;
every version written by one scan carries that scan's `calculation_run_id`. Keys of the scanned units that
the scan no longer produced (the market closed or left scope) are ended in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.ingest.scd2 import EDGES, write_batch
from precog.trading.decide import DecisionUnit, ScanResult
from precog.trading.edges import EdgeRecord, q4
from precog.trading.risk import Rejection


@dataclass(frozen=True, slots=True)
class StoredEdges:
    received: int
    versions_written: int
    ended: int


def edge_row(rec: EdgeRecord, run_id: str) -> dict[str, Any]:
    return {
        "edge_key": rec.edge_key, "market_id": rec.ticker, "market_version_id": rec.market_version_id,
        "side": rec.side, "probability_matrix_id": None, "strategy_id": rec.strategy_id, "model_id": rec.model_id,
        "method_id": rec.method_id, "expected_value": rec.edge, "ev_pct": rec.ev_pct,
        "true_win_probability": rec.p_side, "market_implied_probability": q4(rec.implied),
        "market_price": rec.price, "fee_per_contract": rec.fee, "slippage": rec.slippage,
        "confidence_level": rec.confidence_level,
        "confidence_metrics": {"confidence": rec.confidence, "sample_size": rec.sample_size,
                               "ci_width": rec.ci_width, "cost": rec.cost, "min_edge": rec.min_edge},
        "recommended_action": rec.action, "calculation_run_id": run_id,
    }


def store_edges(conn: Any, result: ScanResult, units: Sequence[DecisionUnit]) -> StoredEdges:
    """Write the scan's edges (one transaction) and end the current edges of `units` it did not produce."""
    records = result.edges
    rows = [edge_row(r, result.run_id) for r in records]
    keys = [r["edge_key"] for r in rows]
    scope = [(u.strategy.ref.strategy_id, u.model_ref.model_id, u.method.method_id if u.method else None)
             for u in units]
    with conn.transaction():
        written = write_batch(conn, EDGES, rows) if rows else None
        ended = 0
        for strategy_id, model_id, method_id in set(scope):
            cur = conn.execute(
                "UPDATE edges SET row_current_ind = FALSE, row_end_ts = GREATEST(now(), created_at)"
                " WHERE row_current_ind AND strategy_id IS NOT DISTINCT FROM %s AND model_id IS NOT DISTINCT FROM %s"
                " AND method_id IS NOT DISTINCT FROM %s AND NOT (edge_key = ANY(%s))",
                (strategy_id, model_id, method_id, keys))
            ended += cur.rowcount
    return StoredEdges(len(rows), written.versions_written if written else 0, ended)


def store_rejections(conn: Any, rejections: Iterable[Rejection], *, mode: str | None = None) -> int:
    rows = []
    for r in rejections:
        m = r.market
        rows.append((
            r.check, r.reason, m.ticker if m else None, m.event_ticker if m else None, m.sport if m else None,
            r.side, r.strategy_id, r.model_id, r.method_id, r.edge, r.quantity, r.stake, mode,
            r.calculation_run_id or None, Jsonb(r.details or {})))
    if not rows:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO risk_rejections (check_name, reason, market_id, event_id, sport, side, strategy_id, model_id,"
            " method_id, edge, quantity, stake, mode, calculation_run_id, details)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    return len(rows)


class PgRejectionRecorder:
    """A RejectionRecorder that writes each rejection at once (for the trading loop)."""

    def __init__(self, conn: Any, mode: str) -> None:
        self.conn = conn
        self.mode = mode

    def record(self, rejection: Rejection) -> None:
        store_rejections(self.conn, [rejection], mode=self.mode)


_LIST_SQL = """
SELECT e.id, e.market_id, e.side, e.expected_value, e.ev_pct, e.true_win_probability, e.market_price,
       e.market_implied_probability, e.fee_per_contract, e.slippage, e.confidence_level, e.recommended_action,
       e.calculation_run_id, e.created_at,
       s.strategy_name || '@' || s.strategy_version AS strategy,
       pm.model_name || '@' || pm.model_version AS model,
       me.method_name || '@' || me.method_version AS method
FROM edges e
LEFT JOIN strategies s ON s.strategy_id = e.strategy_id
LEFT JOIN probability_models pm ON pm.model_id = e.model_id
LEFT JOIN methods me ON me.method_id = e.method_id
WHERE e.row_current_ind
  AND (%(min_edge)s::numeric IS NULL OR e.expected_value >= %(min_edge)s::numeric)
  AND (%(market)s::text IS NULL OR e.market_id = %(market)s::text)
  AND (%(action)s::text IS NULL OR e.recommended_action = %(action)s::text)
ORDER BY e.expected_value DESC, e.market_id, e.side
LIMIT %(limit)s
"""


def list_edges(conn: Any, *, min_edge: Decimal | None = None, market: str | None = None,
               action: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Current edges, best first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_LIST_SQL, {"min_edge": min_edge, "market": market, "action": action, "limit": limit})
        return list(cur.fetchall())


def list_rejections(conn: Any, *, limit: int = 50, run_id: str | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT rejected_at, check_name, reason, market_id, side, edge, quantity, stake, calculation_run_id"
            " FROM risk_rejections WHERE (%(run)s::uuid IS NULL OR calculation_run_id = %(run)s::uuid)"
            " ORDER BY rejected_at DESC, id DESC LIMIT %(limit)s", {"run": run_id, "limit": limit})
        return list(cur.fetchall())
