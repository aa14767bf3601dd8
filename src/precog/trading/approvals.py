"""Manual approval of entries (spec 5.2, ADR-009: production trading needs, initially, a person's approval).

While approval is required (`ApprovalPolicy`, trading.yaml `manual_approval`), an entry the trading loop decided
and the risk manager approved is not sent: it is kept as a `pending` row of `entry_approvals`, once per decision
(the decision's key without its time bucket), and an `entry_approval_pending` alert (high) tells the operator.
`precog approvals approve|reject ID --by NAME` answers it. An approved row is sent by the loop only when a fresh
decision on the same method, market and side passes every pre-trade check again at a price within the approved
limit (at most the approved contracts), with the client_order_id stored in the row: a crash between approving
and sending finds the order again by that id instead of sending a second one. A row nobody answered, or an
approved one that could not be sent, expires at `expires_at` (trading.yaml manual_approval.timeout_seconds).

An approved row whose order never reached the venue (the process died after writing the order row and before the
venue had it, or a lost create the venue still did not know after the lookup grace period: reconciliation asked
the venue by the row's client_order_id and finalized our order as never placed, `executor.NEVER_PLACED`) does not
read `submitted`: before it expires it is approved again under a new client_order_id (the old order row stays as
the rejected record) and the loop sends it by the usual rules; past its expiry it expires, saying so. Either way an
`entry_approval_not_sent` alert (high) tells the operator. Sending again is safe only because the venue was asked
for the old id and does not have it; an order merely not reconciled yet (created, unresolved) keeps the row as it is.

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
from collections.abc import Callable
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
NOT_SENT_ALERT_TYPE = "entry_approval_not_sent"

_BUCKET = re.compile(r"\|t=-?\d+$")
_RESEND = re.compile(r"\|resend=(\d+)$")


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


@dataclass
class NeverPlaced:
    """An approved (or already `submitted`) row whose order the venue provably does not have, and what became of
    it: `resent` (approved again under `client_order_id`, the new id) or `expired`."""

    entry: PendingEntry
    strategy_id: int | None
    model_id: int | None
    old_client_order_id: str
    order_reason: str
    was_submitted: bool
    outcome: str = ""
    client_order_id: str | None = None
    note: str = ""

    def alert(self) -> tuple[str, dict[str, Any]]:
        """The entry_approval_not_sent alert's message and details: what happened and what the system does next."""
        e = self.entry
        what = (f"approved entry {e.approval_id} (buy {e.count} {e.side.upper()} on {e.market_id} at <= "
                f"${e.limit_price}, approved by {e.decided_by}) never reached the venue: it has no order under the "
                f"client_order_id {self.old_client_order_id} (our order: {self.order_reason})")
        if self.outcome == "resent":
            then = (f"it is approved again under the new client_order_id {self.client_order_id} and is sent at the "
                    f"next decision that passes every check (at most {e.count} contracts at <= ${e.limit_price}), "
                    f"until {e.expires_at.isoformat()}; `precog approvals list` shows it")
        else:
            then = (f"the approval expired ({e.expires_at.isoformat()}), so nothing is sent; the loop may propose "
                    "the entry again as a new approval")
        return f"{what}; {then}", {
            "approval_id": e.approval_id, "market_id": e.market_id, "side": e.side, "count": e.count,
            "limit_price": str(e.limit_price), "method_id": e.method_id, "decided_by": e.decided_by,
            "old_client_order_id": self.old_client_order_id, "order_reason": self.order_reason,
            "was_submitted": self.was_submitted, "outcome": self.outcome, "client_order_id": self.client_order_id,
            "expires_at": e.expires_at.isoformat()}


def resend_decision_key(decision_key: str) -> str:
    """The decision key an approved entry is sent again under (its client_order_id derives from it): the row's own
    with a re-send counter, `...|resend=1`, then `|resend=2`; never one an earlier order of the row used."""
    m = _RESEND.search(decision_key)
    if m is None:
        return f"{decision_key}|resend=1"
    return f"{decision_key[:m.start()]}|resend={int(m.group(1)) + 1}"


# an order of ours finalized as never placed: rejected without a venue order id, for the reason the executor gives
# only when the venue, asked by the client_order_id, does not have it (a venue's refusal is not this)
_NEVER_PLACED_ORDER = ("o.status = 'rejected' AND o.venue_order_id IS NULL "
                       "AND coalesce(o.reject_reason, '') LIKE %s")


def _never_placed_like() -> str:
    from precog.trading.executor import NEVER_PLACED

    return NEVER_PLACED.replace("%", r"\%").replace("_", r"\_") + "%"


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
        order is found by the row's client_order_id, the id the venue also knows it by. An order whose venue
        outcome is not known yet (created, unresolved) counts as sent until reconciliation says otherwise
        (`never_placed`); one reconciliation already finalized as never placed does not."""
        cur = self.conn.execute(
            "UPDATE entry_approvals a SET status = 'submitted', submitted_at = o.created_at, "  # noqa: S608 - constant SQL fragments; values are parameters
            "not_sent_reason = NULL FROM orders o WHERE o.client_order_id = a.client_order_id "
            f"AND NOT ({_NEVER_PLACED_ORDER}) "
            "AND a.status = 'approved' AND a.platform_id = %s AND a.mode = %s "
            "AND a.account_ref IS NOT DISTINCT FROM %s", (_never_placed_like(), self.platform_id, self.mode,
                                                           self.account_ref))
        return cur.rowcount

    def never_placed(self, now: datetime, resend_id: Callable[[NeverPlaced, str], str]) -> list[NeverPlaced]:
        """Approved or submitted rows whose order reconciliation finalized as never placed (the venue, asked by the
        row's client_order_id, does not have it): one not expired on the loop's clock is approved again under a
        new decision key and client_order_id (`resend_id(row, decision_key)`: the id the executor derives for
        it), one past its expiry expires. The old order row stays as the rejected record.

        Invariant: a row is sent again only because the venue was asked for its old id and does not have it (it
        refuses that id from now on); an order whose outcome is not known yet never gets here."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {', '.join('a.' + c for c in PendingEntry.__dataclass_fields__)}, a.strategy_id, "  # noqa: S608 - constant SQL fragments; values are parameters
                "a.model_id, a.status = 'submitted' AS was_submitted, o.reject_reason AS order_reason "
                "FROM entry_approvals a JOIN orders o ON o.client_order_id = a.client_order_id "
                f"WHERE a.status IN ('approved', 'submitted') AND ({_NEVER_PLACED_ORDER}) AND a.platform_id = %s "
                "AND a.mode = %s AND a.account_ref IS NOT DISTINCT FROM %s ORDER BY a.approval_id",
                (_never_placed_like(), self.platform_id, self.mode, self.account_ref)).fetchall()
        done = []
        for r in rows:
            found = NeverPlaced(PendingEntry.of(r), r["strategy_id"], r["model_id"], r["client_order_id"],
                                r["order_reason"], r["was_submitted"])
            if found.entry.expires_at > now and self._resend(found, now, resend_id):
                done.append(found)
            elif self._expire_unsent(found, now):
                done.append(found)
        return done

    def _resend(self, found: NeverPlaced, now: datetime, resend_id: Callable[[NeverPlaced, str], str]) -> bool:
        """Approved again under a new id, unless another outstanding row holds the decision meanwhile (then the
        caller expires this one: the newer row stands for the entry)."""
        key = resend_decision_key(found.entry.decision_key)
        cid = resend_id(found, key)
        note = (f"order {found.old_client_order_id} never reached the venue ({found.order_reason}); "
                f"approved again to be sent under {cid}")
        with self.conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "UPDATE entry_approvals a SET status = 'approved', decision_key = %s, client_order_id = %s, "  # noqa: S608 - constant SQL fragments; values are parameters
                "submitted_at = NULL, not_sent_reason = %s, checked_at = %s, details = a.details || "
                "jsonb_build_object('never_placed', coalesce(a.details->'never_placed', '[]'::jsonb) || "
                "jsonb_build_array(jsonb_build_object('client_order_id', %s::text, 'reason', %s::text, "
                "'at', %s::text))) WHERE a.approval_id = %s AND a.client_order_id = %s "
                "AND a.status IN ('approved', 'submitted') AND NOT EXISTS (SELECT 1 FROM entry_approvals b "
                "WHERE b.approval_key = a.approval_key AND b.status IN ('pending', 'approved') "
                f"AND b.approval_id <> a.approval_id) RETURNING {_COLUMNS}",
                (key, cid, note, now, found.old_client_order_id, found.order_reason, now.isoformat(),
                 found.entry.approval_id, found.old_client_order_id)).fetchone()
        if row is None:
            return False
        found.entry, found.outcome, found.client_order_id, found.note = PendingEntry.of(row), "resent", cid, note
        return True

    def _expire_unsent(self, found: NeverPlaced, now: datetime) -> bool:
        note = f"approved, but its order {found.old_client_order_id} never reached the venue ({found.order_reason})"
        with self.conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "UPDATE entry_approvals SET status = 'expired', submitted_at = NULL, not_sent_reason = %s, "  # noqa: S608 - constant SQL fragments; values are parameters
                "checked_at = %s, reason = CASE WHEN reason IS NULL THEN %s ELSE reason || '; ' || %s END "
                "WHERE approval_id = %s AND client_order_id = %s AND status IN ('approved', 'submitted') "
                f"RETURNING {_COLUMNS}",
                (note, now, note, note, found.entry.approval_id, found.old_client_order_id)).fetchone()
        if row is None:
            return False  # another process settled it first
        found.entry, found.outcome, found.note = PendingEntry.of(row), "expired", note
        return True

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
