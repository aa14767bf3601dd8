"""Positions held to settlement, written through the real persistence functions (holds no tests).

Each position is an entry order (OrderStore), its buy fill booked by Portfolio.book_fill (trades, positions)
and the market settled by settle_market (settlements), as the engine does; the entry forecast is stored where
the engine stores it: the order's metadata (`p_yes`, built-in planner) or an `edges` row the order points at
(the decision layer)."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from precog.domain.order import Action, Fill, Side
from precog.ingest import scd2
from precog.trading.orders import OrderRecord, OrderState, OrderStore
from precog.trading.portfolio import Portfolio
from precog.trading.settlement import settle_market

_seq = itertools.count(1)


def model(conn: psycopg.Connection[Any], name: str, validation_brier: str | None = None) -> int:
    row = conn.execute(
        "INSERT INTO probability_models (model_name, model_version, model_type, sport, config, status, "
        "validation_brier) VALUES (%s, 'v1.0', 'fixed', 'nfl', '{\"probability\": \"0.5\"}', 'draft', %s) "
        "RETURNING model_id", (name, validation_brier)).fetchone()
    assert row is not None
    return int(row[0])


class Book:
    """An account on the local platform (paper unless `mode` says otherwise) that books entries and settles
    them."""

    def __init__(self, conn: psycopg.Connection[Any], account_ref: str = "health-seed", mode: str = "paper") -> None:
        self.conn = conn
        self.mode = mode
        row = conn.execute("INSERT INTO engine_runs (kind, mode, platform_id, account_ref) "
                           "VALUES ('test', %s, 'local', %s) RETURNING run_id", (mode, account_ref)).fetchone()
        assert row is not None
        self.run_id = int(row[0])
        self.store = OrderStore(conn)
        self.portfolio = Portfolio(conn, "local", mode, account_ref=account_ref)

    def edge(self, model_id: int, ticker: str, side: str, p_side: str, price: str) -> int:
        key = f"{ticker}|{side}|-|{model_id}|-"
        scd2.write_one(self.conn, scd2.EDGES, {
            "edge_key": key, "market_id": ticker, "market_version_id": None, "side": side,
            "probability_matrix_id": None, "strategy_id": None, "model_id": model_id, "method_id": None,
            "expected_value": Decimal(p_side) - Decimal(price), "ev_pct": None,
            "true_win_probability": Decimal(p_side), "market_implied_probability": Decimal(price),
            "market_price": Decimal(price), "fee_per_contract": Decimal("0"), "slippage": Decimal("0"),
            "confidence_level": "medium", "confidence_metrics": {}, "recommended_action": "auto_execute",
            "calculation_run_id": str(uuid.uuid4())})
        row = self.conn.execute("SELECT id FROM edges WHERE edge_key = %s AND row_current_ind", (key,)).fetchone()
        assert row is not None
        return int(row[0])

    def settled(self, model_id: int, *, p: str, won: bool, when: datetime, side: str = "yes",
                price: str = "0.50", stored: str = "order", quantity: int = 10) -> int:
        """One position on `side` entered at `price` with the model's probability `p` of that side, settled
        at `when` (won: the side paid 1). The forecast is `stored` in the order's metadata (order), in the edge
        the order points at (edge) or nowhere (none). Returns its position_id."""
        n = next(_seq)
        ticker = f"KXNFLGAME-HEALTH-{model_id}-{n}"
        edge_id = self.edge(model_id, ticker, side, p, price) if stored == "edge" else None
        p_yes = Decimal(p) if side == "yes" else 1 - Decimal(p)
        meta = {"p_yes": str(p_yes)} if stored == "order" else {}
        order = self.store.create(OrderRecord(
            id=0, client_order_id=f"health-{uuid.uuid4().hex[:20]}", venue_order_id=None, run_id=self.run_id,
            platform_id="local", market_id=ticker, position_id=None, purpose="entry", side=side, action="buy",
            order_type="limit", time_in_force="good_till_canceled", limit_price=Decimal(price), quantity=quantity,
            filled_quantity=0, fees=Decimal("0"), status=OrderState.CREATED, mode=self.mode, model_id=model_id,
            edge_id=edge_id, edge_at_decision=Decimal(p) - Decimal(price), confidence="medium", metadata=meta))
        yes_price = Decimal(price) if side == "yes" else 1 - Decimal(price)
        fill = Fill(fill_id=f"f-{order.client_order_id}", trade_id=f"t-{n}", order_id=f"o-{n}", ticker=ticker,
                    side=Side(side), action=Action.BUY, count=Decimal(quantity), yes_price=yes_price, no_price=1 - yes_price,
                    is_taker=True, fee=Decimal("0.07"), client_order_id=order.client_order_id)
        booked = self.portfolio.book_fill(fill, order, when)
        assert booked is not None
        yes_won = won if side == "yes" else not won
        done = settle_market(self.portfolio, ticker, Decimal(1) if yes_won else Decimal(0), when)
        assert len(done) == 1
        return booked.position.position_id

    def many(self, model_id: int, count: int, *, p: str, wins: int, when: datetime, **kw: Any) -> None:
        """`count` positions with forecast `p`, the first `wins` of them won."""
        for i in range(count):
            self.settled(model_id, p=p, won=i < wins, when=when, **kw)
