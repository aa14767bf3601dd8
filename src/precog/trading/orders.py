"""Our orders: an explicit state machine, idempotent client order ids, and every transition stored.

States: created -> submitted -> resting -> partially_filled -> filled, with cancel_pending / canceled,
rejected, and unresolved (the venue's answer was lost; resolved by looking the order up by its
client_order_id). An illegal transition raises instead of being written, so the stored history is always a
valid path through the machine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.domain.order import Order as VenueOrder
from precog.domain.order import OrderStatus as VenueStatus
from precog.ingest.scd2 import jsonb


class OrderState(StrEnum):
    CREATED = "created"
    SUBMITTED = "submitted"
    RESTING = "resting"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_PENDING = "cancel_pending"
    CANCELED = "canceled"
    REJECTED = "rejected"
    UNRESOLVED = "unresolved"


S = OrderState
TERMINAL = frozenset({S.FILLED, S.CANCELED, S.REJECTED})
OPEN_STATES = frozenset(set(S) - TERMINAL)

# Allowed transitions. Fill-driven moves may skip intermediate states (an order can fill on arrival).
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.CREATED: frozenset({S.SUBMITTED, S.REJECTED, S.UNRESOLVED}),
    # a venue may report an accepted order as pending (not yet on the book); it can be canceled from there
    S.SUBMITTED: frozenset({S.RESTING, S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELED, S.REJECTED,
                            S.UNRESOLVED}),
    S.RESTING: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCEL_PENDING, S.CANCELED}),
    S.CANCEL_PENDING: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.CANCEL_PENDING}),
    S.UNRESOLVED: frozenset({S.SUBMITTED, S.RESTING, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def check_transition(old: OrderState, new: OrderState) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"order state {old} -> {new} is not allowed")


CLIENT_ORDER_ID_MAX = 64  # the orders column and the local venue's limit (1-64 letters, digits, '-' or '_')
# The digest of the decision key: 32 hex digits (128 bits), never fewer than 24 (96 bits) when the attribution
# fields are long; ids of the first format carry 40 and nothing else.
_DIGEST_MAX = 32
_DIGEST_MIN = 24
_LEGACY_DIGEST = 40
_PURPOSE_LETTER = {"entry": "e", "exit": "x"}
_PURPOSE_OF_LETTER = {v: k for k, v in _PURPOSE_LETTER.items()}
# exit conditions as two letters (stable codes, not positions in a list that may be reordered)
_CONDITION_CODE = {
    "stop_loss": "sl", "circuit_breaker": "cb", "trailing_stop": "ts", "time_based_urgent": "tu",
    "liquidity_dried_up": "ld", "profit_target": "pt", "partial_exit_target": "px", "early_exit": "ee",
    "edge_disappeared": "ed", "rebalance": "rb", "hedge": "hg",
}
_CONDITION_OF_CODE = {v: k for k, v in _CONDITION_CODE.items()}
_PARTIAL = "partial_exit_target"
_STAGE_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")
_STAGE_FIELD = re.compile(r"[a-z0-9]{1,80}")
_DIGEST = re.compile(r"[0-9a-f]+")
_NUMBER = re.compile(r"[0-9]{1,19}")


def _stage_field(stage: str) -> str:
    """A stage name in the id's alphabet (lowercase letters, digits; '-' separates fields: what a UUID uses, the
    venue documents no other rule): lowercase letters and digits as they are, 'x' escapes the rest - 'xx' an x,
    'xy' an underscore, 'xu' + a letter that letter in uppercase (`first_target` is `firstxytarget`)."""
    out = []
    for ch in stage:
        if ch == "x":
            out.append("xx")
        elif ch == "_":
            out.append("xy")
        elif ch.isupper():
            out.append("xu" + ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def _stage_from_field(value: str) -> str | None:
    if not _STAGE_FIELD.fullmatch(value):
        return None
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch != "x":
            out.append(ch)
            i += 1
            continue
        code = value[i + 1:i + 2]
        if code == "x" or code == "y":
            out.append("x" if code == "x" else "_")
            i += 2
        elif code == "u" and value[i + 2:i + 3].isalpha():
            out.append(value[i + 2].upper())
            i += 3
        else:
            return None  # not an escape we write
    name = "".join(out)
    return name if _STAGE_NAME.fullmatch(name) else None


@dataclass(frozen=True)
class OrderTags:
    """What a client_order_id carries besides its digest: enough to attribute an order whose row was lost.

    Entries: the method (or, for a decision-layer entry without one, its strategy and model). Exits: the
    position, the exit condition and, for a partial-exit stage, the stage's name and whole quantity, and the
    attempt number."""

    purpose: str  # entry | exit
    method_id: int | None = None
    strategy_id: int | None = None
    model_id: int | None = None
    position_id: int | None = None
    exit_condition: str | None = None
    stage: str | None = None
    stage_quantity: int | None = None
    attempt: int | None = None


def _tag_fields(tags: OrderTags, dropped: frozenset[str]) -> list[tuple[str, str]]:
    """(tag letter, value) in the order they are written, less the `dropped` tags; a partial-exit stage implies
    its condition (written only when the stage is not), fields that cannot be written are left out."""
    stage = tags.stage if tags.stage is not None and _STAGE_NAME.fullmatch(tags.stage) and "s" not in dropped \
        else None
    condition = None if stage is not None and tags.exit_condition == _PARTIAL else \
        _CONDITION_CODE.get(tags.exit_condition or "")
    fields: list[tuple[str, int | str | None]] = [
        ("m", tags.method_id), ("t", tags.strategy_id), ("o", tags.model_id), ("p", tags.position_id),
        ("c", condition), ("s", _stage_field(stage) if stage is not None else None),
        ("q", tags.stage_quantity if stage is not None else None), ("a", tags.attempt)]
    return [(tag, str(v)) for tag, v in fields
            if v is not None and tag not in dropped and not (isinstance(v, int) and v < 0)]


# which fields give way first when the id would be too long (a position or a method id alone always fits)
_DROP_ORDER = ("a", "q", "s", "c", "o", "t", "m", "p")


def derive_client_order_id(purpose: str, key: str, tags: OrderTags | None = None) -> str:
    """A deterministic id for one decision: the same decision always gives the same id (<= 64 chars).

    `key` names the decision completely, e.g. `method=3|market=X|side=yes|action=buy|t=1732600000000`, so a
    restart that re-derives the decision re-derives the id and the venue refuses a duplicate. With `tags` the
    id also carries the order's attribution in the clear (`parse_client_order_id` reads it back), e.g.
    `pce-m12-<32 hex>` or `pcx-p345-sfirstxytarget-q50-a1-<32 hex>` (stage `first_target`, escaped): fields
    are `-`-separated, each a letter and its value, in lowercase letters, digits and '-' only. A field that does
    not fit beside a 24-digit digest is left out (the attempt first)."""
    digest = hashlib.sha256(f"{purpose}|{key}".encode()).hexdigest()
    if tags is None:
        return f"pc{purpose[0]}-{digest[:_LEGACY_DIGEST]}"
    if tags.purpose != purpose or purpose not in _PURPOSE_LETTER:
        raise ValueError(f"client_order_id tags are for purpose {tags.purpose!r}, the order is {purpose!r} "
                         f"(tagged ids exist for {', '.join(_PURPOSE_LETTER)})")
    prefix = f"pc{_PURPOSE_LETTER[purpose]}"
    for dropping in range(len(_DROP_ORDER) + 1):
        fields = _tag_fields(tags, frozenset(_DROP_ORDER[:dropping]))
        head = "-".join([prefix, *(tag + value for tag, value in fields)])
        room = CLIENT_ORDER_ID_MAX - len(head) - 1
        if room >= _DIGEST_MIN:
            return f"{head}-{digest[:min(room, _DIGEST_MAX)]}"
    return f"{prefix}-{digest[:_DIGEST_MAX]}"  # not reached: the prefix alone always fits


def earlier_client_order_ids(purpose: str, key: str) -> tuple[str, ...]:
    """The ids earlier versions derived for the same decision (the first format, `pc<letter>-<40 hex>`): an order
    stored under one of them is this decision's order (`OrderStore.create`)."""
    return (derive_client_order_id(purpose, key),)


def parse_client_order_id(client_order_id: str) -> OrderTags | None:
    """The attribution a tagged id carries; None ("unknown") for any other id: ids of the first format (a
    bare 40-digit digest), ids placed by hand, anything not written by `derive_client_order_id` with tags."""
    parts = client_order_id.split("-")
    if len(parts) < 2 or len(client_order_id) > CLIENT_ORDER_ID_MAX:
        return None
    prefix, digest, fields = parts[0], parts[-1], parts[1:-1]
    purpose = _PURPOSE_OF_LETTER.get(prefix[2:]) if prefix.startswith("pc") else None
    if purpose is None or not (_DIGEST_MIN <= len(digest) <= _DIGEST_MAX and _DIGEST.fullmatch(digest)):
        return None
    values: dict[str, str] = {}
    for f in fields:
        tag, value = f[:1], f[1:]
        if tag in values or not value:
            return None
        values[tag] = value
    numbers = {"m": "method_id", "t": "strategy_id", "o": "model_id", "p": "position_id", "q": "stage_quantity",
               "a": "attempt"}
    out: dict[str, Any] = {}
    for tag, value in values.items():
        if tag in numbers and _NUMBER.fullmatch(value):
            out[numbers[tag]] = int(value)
        elif tag == "c" and value in _CONDITION_OF_CODE:
            out["exit_condition"] = _CONDITION_OF_CODE[value]
        elif tag == "s" and (stage := _stage_from_field(value)) is not None:
            out["stage"] = stage
            out.setdefault("exit_condition", _PARTIAL)  # a stage is a partial exit's
        else:
            return None  # not a field we write: not one of our tagged ids
    return OrderTags(purpose=purpose, **out)


def state_from_venue(order: VenueOrder) -> OrderState:
    """Our state for an order as the venue reports it."""
    filled = order.fill_count
    if order.status is VenueStatus.EXECUTED or (order.remaining_count == 0 and filled > 0
                                                 and order.status is not VenueStatus.CANCELED):
        return S.FILLED
    if order.status is VenueStatus.CANCELED:
        return S.CANCELED
    if filled > 0:
        return S.PARTIALLY_FILLED
    if order.status is VenueStatus.PENDING:
        return S.SUBMITTED
    return S.RESTING


@dataclass
class OrderRecord:
    id: int
    client_order_id: str
    venue_order_id: str | None
    run_id: int | None
    platform_id: str
    market_id: str
    position_id: int | None
    purpose: str
    side: str
    action: str
    order_type: str
    time_in_force: str
    limit_price: Decimal
    quantity: int
    filled_quantity: int
    fees: Decimal
    status: OrderState
    mode: str
    method_id: int | None = None
    strategy_id: int | None = None
    model_id: int | None = None
    edge_id: int | None = None
    exit_condition: str | None = None
    exit_priority: str | None = None
    decision_key: str | None = None
    edge_at_decision: Decimal | None = None
    confidence: str | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity


_COLUMNS = ("id, client_order_id, venue_order_id, run_id, platform_id, market_id, position_id, purpose, side, action, "
            "order_type, time_in_force, limit_price, quantity, filled_quantity, fees, status, mode, method_id, "
            "strategy_id, model_id, edge_id, exit_condition, exit_priority, decision_key, edge_at_decision, "
            "confidence, expires_at, metadata, created_at")


def _record(row: dict[str, Any]) -> OrderRecord:
    data = dict(row)
    data["status"] = OrderState(data["status"])
    data["metadata"] = data.get("metadata") or {}
    return OrderRecord(**data)


class OrderStore:
    """Orders and order_events in PostgreSQL. Every write commits before the caller talks to the venue."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def create(self, rec: OrderRecord, aliases: Sequence[str] = ()) -> OrderRecord:
        """Insert a new order in state `created` (and its first event) in one statement; an existing order with
        the client_order_id, or with one of `aliases` (the ids the same decision had in earlier id formats: a
        process upgraded mid-decision must not send it again under its new id), is returned instead."""
        ids = [rec.client_order_id, *aliases]
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "WITH o AS (INSERT INTO orders (client_order_id, run_id, platform_id, market_id, position_id, "  # noqa: S608 - constant SQL fragments; values are parameters
                "purpose, exit_condition, exit_priority, decision_key, edge_id, method_id, strategy_id, model_id, "
                "side, action, order_type, time_in_force, limit_price, quantity, status, mode, edge_at_decision, "
                "confidence, expires_at, metadata) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, %s, %s, 'created', %s, %s, %s, %s, %s "
                "WHERE NOT EXISTS (SELECT 1 FROM orders WHERE client_order_id = ANY(%s)) "
                "ON CONFLICT (client_order_id) DO NOTHING "
                f"RETURNING {_COLUMNS}), "  # noqa: S608 - constant SQL fragments; values are parameters
                "e AS (INSERT INTO order_events (order_id, from_status, to_status, reason) "
                "SELECT id, NULL, 'created', purpose FROM o) SELECT * FROM o",
                (rec.client_order_id, rec.run_id, rec.platform_id, rec.market_id, rec.position_id, rec.purpose,
                 rec.exit_condition, rec.exit_priority, rec.decision_key, rec.edge_id, rec.method_id,
                 rec.strategy_id, rec.model_id, rec.side, rec.action, rec.order_type, rec.time_in_force,
                 rec.limit_price, rec.quantity, rec.mode, rec.edge_at_decision, rec.confidence, rec.expires_at,
                 jsonb(rec.metadata), ids))
            row = cur.fetchone()
        if row is None:
            for cid in ids:  # the current id first: a concurrent insert of this very order
                existing = self.by_client_id(cid)
                if existing is not None:
                    return existing
            raise AssertionError(f"order {rec.client_order_id} was neither inserted nor found")
        return _record(row)

    def transition(self, rec: OrderRecord, new: OrderState, *, reason: str | None = None,
                   venue: VenueOrder | None = None, filled_quantity: int | None = None,
                   fees: Decimal | None = None, venue_order_id: str | None = None,
                   position_id: int | None = None, via: OrderState | None = None) -> OrderRecord:
        """Move the order to `new` (validated), updating counts, and store the event(s) — one statement, so
        the row and its history never disagree. `via` records an intermediate state on the way
        (created -> submitted -> resting when the venue's answer arrives). Same-state updates are stored
        only when a count changed."""
        old = rec.status
        filled = rec.filled_quantity if filled_quantity is None else filled_quantity
        vid = venue_order_id or (venue.order_id if venue is not None else None) or rec.venue_order_id
        steps: list[tuple[OrderState, OrderState, int]] = []
        if via is not None and via != old and via != new:
            check_transition(old, via)
            check_transition(via, new)
            steps = [(old, via, rec.filled_quantity), (via, new, filled)]
        else:
            if new == old and filled == rec.filled_quantity and vid == rec.venue_order_id and fees is None \
                    and (position_id is None or position_id == rec.position_id):
                return rec
            if new != old:
                check_transition(old, new)
            if new != old or filled != rec.filled_quantity:
                steps = [(old, new, filled)]
        payload = None
        if venue is not None:
            payload = {"order_id": venue.order_id, "status": venue.status.value, "fill_count": str(venue.fill_count),
                       "remaining_count": str(venue.remaining_count), "yes_price": str(venue.yes_price)}
        update = ("UPDATE orders SET status = %s, filled_quantity = %s, venue_order_id = %s, "
                  "fees = COALESCE(%s, fees), position_id = COALESCE(%s, position_id), "
                  "reject_reason = CASE WHEN %s = 'rejected' THEN %s ELSE reject_reason END, updated_at = now() "
                  "WHERE id = %s RETURNING id")
        params: list[Any] = [new.value, filled, vid, fees, position_id, new.value, reason, rec.id]
        if steps:
            values = ", ".join(["(%s::text, %s::text, %s::int, %s::text, %s::jsonb)"] * len(steps))
            for i, (a, b, q) in enumerate(steps):
                params += [a.value, b.value, q, reason, jsonb(payload) if payload and i == len(steps) - 1 else None]
            self.conn.execute(
                f"WITH u AS ({update}) INSERT INTO order_events (order_id, from_status, to_status, "  # noqa: S608
                f"filled_quantity, reason, venue_payload) SELECT u.id, v.f, v.t, v.q, v.r, v.p FROM u, "
                f"(VALUES {values}) AS v(f, t, q, r, p)", params)
        else:
            self.conn.execute(update, params)
        rec.status = new
        rec.filled_quantity = filled
        rec.venue_order_id = vid
        if fees is not None:
            rec.fees = fees
        if position_id is not None:
            rec.position_id = position_id
        return rec

    def by_client_id(self, client_order_id: str) -> OrderRecord | None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM orders WHERE client_order_id = %s", (client_order_id,))  # noqa: S608 - constant SQL fragments; values are parameters
            row = cur.fetchone()
        return _record(row) if row else None

    def by_venue_id(self, platform_id: str, venue_order_id: str) -> OrderRecord | None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM orders WHERE platform_id = %s AND venue_order_id = %s",  # noqa: S608 - constant SQL fragments; values are parameters
                        (platform_id, venue_order_id))
            row = cur.fetchone()
        return _record(row) if row else None

    def open_orders(self, platform_id: str, account_ref: str | None = None) -> list[OrderRecord]:
        """Open orders on the platform; with `account_ref`, only those sent from that venue account."""
        scope = "" if account_ref is None else \
            " AND run_id IN (SELECT run_id FROM engine_runs WHERE account_ref = %s)"
        params: list[Any] = [platform_id, [s.value for s in OPEN_STATES]]
        if account_ref is not None:
            params.append(account_ref)
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM orders WHERE platform_id = %s AND status = ANY(%s){scope} "  # noqa: S608 - constant SQL fragments; values are parameters
                        "ORDER BY id", params)
            return [_record(r) for r in cur.fetchall()]

    def events(self, order_id: int) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT from_status, to_status, filled_quantity, reason FROM order_events "
                        "WHERE order_id = %s ORDER BY event_id", (order_id,))
            return list(cur.fetchall())
