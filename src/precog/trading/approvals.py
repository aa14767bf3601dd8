"""Manual approval of entries (spec 5.2, ADR-009: production trading needs, initially, a person's approval).

While approval is required (`ApprovalPolicy`, trading.yaml `manual_approval`), an entry the trading loop decided
and the risk manager approved is not sent: it is kept as a `pending` row of `entry_approvals`, once per decision
(the decision's key without its time bucket), and an `entry_approval_pending` alert (high) tells the operator.
`precog approvals approve|reject ID --by NAME` answers it. An approved row is sent by the loop only when a fresh
decision on the same method, market and side passes every pre-trade check again at a price within the approved
limit (at most the approved contracts), with the client_order_id stored in the row: a crash between approving
and sending finds the order again by that id instead of sending a second one. A row nobody answered, or an
approved one that could not be sent, expires at `expires_at` (trading.yaml manual_approval.timeout_seconds).

A pending row holds its cost against the exposure limits (as a resting entry does), so entries approved
together never exceed them; a rejected or expired row holds nothing. A rejection is final for that method,
market and side: the loop does not ask again. Exits never wait for approval: a stop loss must not wait for a
person.

Spec 7.x (the WebSocket state machine): while the real-time feed is not SUBSCRIBED, automated trading needs a
person too. With `manual_approval.when_realtime_down` (default on) a live loop whose market data is the Kalshi
stream holds, per entry, one decided on a market whose stream view is not live (`realtime_down`), whatever the
mode says; the row's details and the alert say why (`{"why": "real-time data down: ..."}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.ingest.scd2 import jsonb

MODES = ("off", "live", "prod", "always")
STATUSES = ("pending", "approved", "rejected", "expired", "submitted")
OUTSTANDING = ("pending", "approved")
ALERT_TYPE = "entry_approval_pending"

_BUCKET = re.compile(r"\|t=-?\d+$")


class ApprovalDecisionError(RuntimeError):
    """An approval that cannot be answered (unknown id, already answered, expired)."""


@dataclass(frozen=True)
class ApprovalPolicy:
    mode: str = "prod"
    timeout_seconds: int = 120
    when_realtime_down: bool = True
    realtime_grace_seconds: int = 30

    @classmethod
    def from_config(cls, config: Any) -> ApprovalPolicy:
        raw = config.get("trading.manual_approval.mode", "prod")
        mode = "off" if raw is False else str(raw)  # YAML reads an unquoted `off` as false
        timeout = config.get("trading.manual_approval.timeout_seconds", 120)
        realtime = config.get("trading.manual_approval.when_realtime_down", True)
        if mode not in MODES:
            raise ValueError(f"trading.manual_approval.mode must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 10 <= timeout <= 3600:
            raise ValueError(f"trading.manual_approval.timeout_seconds must be whole seconds in 10-3600, "
                             f"got {timeout!r}")
        grace = config.get("trading.manual_approval.realtime_grace_seconds", 30)
        if not isinstance(realtime, bool):
            raise ValueError(f"trading.manual_approval.when_realtime_down must be true or false, got {realtime!r}")
        if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 600:
            raise ValueError(f"trading.manual_approval.realtime_grace_seconds must be whole seconds in 0-600, "
                             f"got {grace!r}")
        return cls(mode, timeout, realtime, grace)

    def required(self, *, trading_mode: str, platform_id: str, prod: bool, kind: str) -> bool:
        """Whether an entry of this loop waits for a person: `always` gates every loop but a backtest; `live`
        every live loop on a real venue (not the local exchange); `prod` a live loop whose orders go to
        production; `off` none."""
        if kind == "backtest" or trading_mode == "backtest" or self.mode == "off":
            return False
        if self.mode == "always":
            return True
        if trading_mode != "live" or platform_id == "local":
            return False
        return self.mode == "live" or prod

    def watches_realtime(self, *, trading_mode: str, platform_id: str, kind: str, streamed: bool) -> bool:
        """Whether an entry of this loop waits for a person while its market's real-time data is down (spec 7.x):
        a live loop on a real venue whose market data is the Kalshi stream (`streamed`). Paper loops, the local
        exchange and backtests never: they move no real money."""
        return (self.when_realtime_down and streamed and trading_mode == "live" and platform_id != "local"
                and kind != "backtest")


def realtime_down(stream: Any, ticker: str) -> str | None:
    """Why the market stream's view of `ticker` may not be used now (the engine read it over REST), or None
    when it is live. `stream` is the engine's MarketStream."""
    if stream.is_live(ticker):
        return None
    from precog.venues.kalshi.events import ConnectionState

    ws = stream.ws
    if ws is None:
        why = "the market stream is not started"
    elif ws.state is not ConnectionState.SUBSCRIBED:
        why = f"the market stream is {ws.state.value}"
    elif ticker not in stream.followed or ticker not in ws.tickers or ticker in ws.subscribing():
        why = f"{ticker} is not subscribed on the market stream yet"
    else:  # subscribed, but no price confirmed since (a new subscription, a refused price, a book gap) or too old
        why = f"no current stream price for {ticker}"
    return f"real-time data down: {why}"


def realtime_outage(stream: Any, grace_seconds: float) -> bool:
    """Whether the market stream has been down (not subscribed: reconnecting, not started) for at least
    `grace_seconds`. A shorter gap (a reconnect, the loop's start) or a market that is only being subscribed on a
    stream that is up is no outage: such an entry is deferred to the next decision, not put to a person."""
    down = stream.down_seconds()
    return down is not None and down >= grace_seconds


def approval_key(mode: str, account_ref: str | None, decision_key: str) -> str:
    """The decision without its time bucket: the same entry decided again on a later cycle has the same key."""
    return f"{mode}|{account_ref or ''}|{_BUCKET.sub('', decision_key)}"[:300]


@dataclass
class PendingEntry:
    approval_id: int
    approval_key: str
    decision_key: str
    client_order_id: str
    status: str
    market_id: str
    event_id: str | None
    sport: str | None
    side: str
    count: int
    limit_price: Decimal
    reserved_cost: Decimal
    method_id: int | None
    expires_at: datetime
    decided_by: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> PendingEntry:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


_COLUMNS = ", ".join(PendingEntry.__dataclass_fields__)


class ApprovalStore:
    """The rows of one venue account in one mode (what one trading loop owns)."""

    def __init__(self, conn: psycopg.Connection[Any], *, platform_id: str, account_ref: str | None, mode: str,
                 environment: str | None, run_id: int | None) -> None:
        self.conn = conn
        self.platform_id = platform_id
        self.account_ref = account_ref
        self.mode = mode
        self.environment = environment
        self.run_id = run_id

    def outstanding(self) -> dict[str, PendingEntry]:
        """Pending and approved rows by approval key."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM entry_approvals WHERE platform_id = %s AND mode = %s "  # noqa: S608 - constant SQL fragments; values are parameters
                "AND account_ref IS NOT DISTINCT FROM %s AND status IN ('pending', 'approved') ORDER BY approval_id",
                (self.platform_id, self.mode, self.account_ref)).fetchall()
        return {r["approval_key"]: PendingEntry.of(r) for r in rows}

    def rejected(self, key: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM entry_approvals WHERE approval_key = %s AND status = 'rejected' "
                                "LIMIT 1", (key,)).fetchone()
        return row is not None

    def add(self, *, key: str, intent: Any, client_order_id: str, reserved_cost: Decimal, created_at: datetime,
            expires_at: datetime, why: str | None = None) -> PendingEntry | None:
        """A pending row for `intent` (an executor OrderIntent), or None when the key already has an outstanding
        one (another cycle, or another process, got there first). `why`: a reason other than the mode (details)."""
        meta = dict(intent.metadata)
        if why is not None:
            meta["why"] = why
        with self.conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO entry_approvals (approval_key, decision_key, client_order_id, run_id, platform_id, "  # noqa: S608 - constant SQL fragments; values are parameters
                "account_ref, mode, environment, created_at, expires_at, market_id, event_id, sport, side, count, "
                "limit_price, order_type, reserved_cost, edge, confidence, method_id, strategy_id, model_id, edge_id, "
                "details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, %s, %s) ON CONFLICT (approval_key) WHERE status IN ('pending', 'approved') DO NOTHING "
                f"RETURNING {_COLUMNS}",
                (key, intent.decision_key, client_order_id, self.run_id, self.platform_id, self.account_ref,
                 self.mode, self.environment, created_at, expires_at, intent.market_id, meta.get("event_id"),
                 meta.get("sport"), intent.side, intent.quantity, intent.limit_price, intent.order_type,
                 reserved_cost, intent.edge, intent.confidence, intent.method_id, intent.strategy_id,
                 intent.model_id, intent.edge_id, jsonb(meta))).fetchone()
        return PendingEntry.of(row) if row is not None else None

    def expire(self, now: datetime) -> list[PendingEntry]:
        """Outstanding rows past their expiry (on the loop's clock) become expired."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "UPDATE entry_approvals SET status = 'expired', reason = coalesce(reason, CASE WHEN status = 'pending' "  # noqa: S608 - constant SQL fragments; values are parameters
                "THEN 'not approved before it expired' ELSE 'approved but not sendable before it expired' END) "
                "WHERE platform_id = %s AND mode = %s AND account_ref IS NOT DISTINCT FROM %s "
                f"AND status IN ('pending', 'approved') AND expires_at <= %s RETURNING {_COLUMNS}",
                (self.platform_id, self.mode, self.account_ref, now)).fetchall()
        return [PendingEntry.of(r) for r in rows]

    def mark_sent(self) -> int:
        """Approved rows whose order exists (a process that sent it died before recording so): submitted. The
        order is found by the row's client_order_id, the id the venue also knows it by."""
        cur = self.conn.execute(
            "UPDATE entry_approvals a SET status = 'submitted', submitted_at = o.created_at, "
            "not_sent_reason = NULL FROM orders o WHERE o.client_order_id = a.client_order_id "
            "AND a.status = 'approved' AND a.platform_id = %s AND a.mode = %s "
            "AND a.account_ref IS NOT DISTINCT FROM %s", (self.platform_id, self.mode, self.account_ref))
        return cur.rowcount

    def note_not_sent(self, approval_id: int, reason: str, now: datetime) -> None:
        self.conn.execute("UPDATE entry_approvals SET not_sent_reason = %s, checked_at = %s WHERE approval_id = %s "
                          "AND status = 'approved'", (reason[:1000], now, approval_id))

    def mark_submitted(self, approval_id: int, client_order_id: str, now: datetime) -> None:
        self.conn.execute("UPDATE entry_approvals SET status = 'submitted', submitted_at = %s, checked_at = %s, "
                          "client_order_id = %s, not_sent_reason = NULL WHERE approval_id = %s "
                          "AND status = 'approved'", (now, now, client_order_id, approval_id))


# ---------------------------------------------------------------------------------------------- the operator's side

_LIST_COLUMNS = ("approval_id, status, created_at, expires_at, platform_id, mode, environment, account_ref, market_id, "
                 "event_id, sport, side, count, limit_price, order_type, reserved_cost, edge, confidence, method_id, "
                 "strategy_id, model_id, client_order_id, decided_by, decided_at, reason, not_sent_reason, checked_at, "
                 "submitted_at, run_id, details->>'why' AS why")  # why: a hold the mode did not ask for


def list_approvals(conn: psycopg.Connection[Any], *, everything: bool = False, limit: int = 200
                   ) -> list[dict[str, Any]]:
    """Outstanding rows (pending, approved not yet sent), oldest first; `everything`: the latest rows of any status."""
    where = "" if everything else "WHERE status IN ('pending', 'approved')"
    order = "approval_id DESC" if everything else "approval_id"
    with conn.cursor(row_factory=dict_row) as cur:
        query = f"SELECT {_LIST_COLUMNS} FROM entry_approvals {where} ORDER BY {order} LIMIT %s"  # noqa: S608 - constant fragments
        return cur.execute(query, (limit,)).fetchall()


def decide(conn: psycopg.Connection[Any], approval_id: int, *, approve: bool, by: str,
           reason: str | None = None) -> dict[str, Any]:
    """Approve or reject a pending row (only a pending one: an answer is given once). Returns the row."""
    status = "approved" if approve else "rejected"
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"UPDATE entry_approvals SET status = %s, decided_by = %s, decided_at = now(), reason = %s "  # noqa: S608 - constant SQL fragments; values are parameters
            f"WHERE approval_id = %s AND status = 'pending' RETURNING {_LIST_COLUMNS}",
            (status, by, reason, approval_id)).fetchone()
        if row is not None:
            return row
        found = cur.execute("SELECT status, decided_by FROM entry_approvals WHERE approval_id = %s",
                            (approval_id,)).fetchone()
    if found is None:
        raise ApprovalDecisionError(f"no entry approval {approval_id} (see `precog approvals list --all`)")
    by_whom = f" by {found['decided_by']}" if found["decided_by"] else ""
    raise ApprovalDecisionError(f"entry approval {approval_id} is {found['status']}{by_whom}: only a pending one "
                                "can be approved or rejected")
