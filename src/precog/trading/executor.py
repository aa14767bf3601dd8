"""Order execution: send, track, cancel, book fills; exits that walk their price (spec §5.9, §5.10).

The executor persists an order (state `created`) before the venue hears of it, so a crash at any point
leaves a row whose client_order_id finds the venue's order again. A lost answer moves the order to
`unresolved` and a lookup by client_order_id resolves it. Fills are booked from the venue's fill list,
once each, so a partial fill updates the position the moment it is seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from precog.alerts.api import AlertRaiser
from precog.domain.market import Market
from precog.domain.money import ONE, ZERO
from precog.domain.order import Action, Fill, OrderRequest, OrderType, TimeInForce
from precog.domain.order import Order as VenueOrder
from precog.engine.venue import Venue, VenueOutcomeUnknown, VenueRejected
from precog.ingest.scd2 import jsonb
from precog.trading import exits as ex
from precog.trading.orders import (
    TERMINAL,
    OrderRecord,
    OrderState,
    OrderStore,
    OrderTags,
    derive_client_order_id,
    earlier_client_order_ids,
    parse_client_order_id,
    state_from_venue,
)
from precog.trading.portfolio import BookedFill, Portfolio, PositionState

log = logging.getLogger(__name__)
S = OrderState
FAR_SELL = Decimal("0.01")  # a sell limit at 1 cent takes every bid: market-style
FAR_BUY = Decimal("0.99")
# how long an order whose create outcome was lost is looked up before it counts as never placed
UNRESOLVED_GRACE_SECONDS = 60
# how the reject_reason of an order finalized as never placed begins: the venue was asked for it by its
# client_order_id and does not have it (and refuses that id from now on). Only such an order may be sent again
# under a new id (precog.trading.approvals: an approved entry whose order never reached the venue).
NEVER_PLACED = "never reached the venue"


@dataclass
class OrderIntent:
    market_id: str
    side: str
    action: str
    quantity: int
    limit_price: Decimal
    purpose: str  # entry | exit
    decision_key: str
    order_type: str = "limit"
    time_in_force: str = "good_till_canceled"
    position_id: int | None = None
    method_id: int | None = None
    strategy_id: int | None = None
    model_id: int | None = None
    edge_id: int | None = None
    exit_condition: str | None = None
    exit_priority: str | None = None
    edge: Decimal | None = None
    confidence: str | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # an entry needs the precog.trading.risk.Approval the RiskManager issued for it (spec 5.2): consumed here,
    # right before the order goes out; exits need none
    approval: Any = None


def _check_entry_approval(intent: OrderIntent) -> None:
    """An entry order must carry the RiskManager's Approval for this market, side and at most its size and
    price; anything else is refused before an order row exists (ApprovalError)."""
    from precog.trading.risk import Approval, ApprovalError

    a = intent.approval
    if not isinstance(a, Approval):
        raise ApprovalError(f"entry order on {intent.market_id} refused: it needs an Approval from "
                            f"RiskManager.approve, got {type(a).__name__}")
    ok = a.intent
    if ok.market.ticker != intent.market_id or ok.side != intent.side or intent.action != "buy":
        raise ApprovalError(f"approval {a.approval_id} is for buying {ok.side} on {ok.market.ticker}, not "
                            f"{intent.action} {intent.side} on {intent.market_id}")
    if intent.quantity > ok.quantity or intent.limit_price > ok.price + ok.slippage:
        raise ApprovalError(f"approval {a.approval_id} covers {ok.quantity} at <= {ok.price + ok.slippage}, not "
                            f"{intent.quantity} at {intent.limit_price}")


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def booking_order(fills: Iterable[Fill]) -> list[Fill]:
    """The order fills are booked in: by venue time; at one timestamp, the fills that add contracts (buys)
    before those that remove them (sells), each group in the venue's own order; fills without a time last.

    A venue promises time order only, and its timestamps are coarse (Kalshi lists the fills of one timestamp by
    their random UUIDs): a sell listed before the buy it sells cannot be booked. Buys first at a tie is always
    bookable, whatever the true order was, and changes nothing else: a new entry's buy opens its own position,
    and contracts bought into a position in the same instant as a sale of it leave the same cash and P&L."""
    return sorted(fills, key=lambda f: (f.created_time is None, f.created_time or _NO_TIME,
                                        f.action is not Action.BUY))


class Executor:
    def __init__(self, venue: Venue, store: OrderStore, portfolio: Portfolio, *, run_id: int | None, mode: str,
                 clock: Callable[[], datetime], alerts: AlertRaiser | None = None,
                 on_fill: Callable[[BookedFill, OrderRecord], None] | None = None) -> None:
        self.venue = venue
        self.store = store
        self.portfolio = portfolio
        self.run_id = run_id
        self.mode = mode
        self.clock = clock
        self.alerts = alerts
        self.on_fill = on_fill
        self.open: dict[str, OrderRecord] = {
            o.client_order_id: o for o in store.open_orders(venue.platform_id, venue.account_ref)}
        self._booked: set[str] = {r[0] for r in store.conn.execute(
            "SELECT fill_id FROM trades WHERE platform_id = %s AND fill_id IS NOT NULL", (venue.platform_id,))}
        self.orders_sent = 0
        self._unresolved_since: dict[str, datetime] = {}  # client_order_id -> first lookup that did not find it
        self._fills_seen_ms: int | None = None
        self.fills_booked = 0  # fills this process booked

    # ------------------------------------------------------------------ sending

    def client_order_id(self, intent: OrderIntent) -> str:
        """The decision on this venue account in this mode: a restart re-derives the same id (the venue refuses a
        duplicate), while another run on the same database (paper beside live, another account) gets its own."""
        return derive_client_order_id(intent.purpose, self._decision_key(intent), order_tags(intent))

    def _decision_key(self, intent: OrderIntent) -> str:
        return f"{self.mode}|{self.venue.account_ref}|{intent.decision_key}"

    async def submit(self, intent: OrderIntent) -> OrderRecord:
        if intent.purpose == "entry":
            _check_entry_approval(intent)
        cid = self.client_order_id(intent)
        earlier = [e for e in earlier_client_order_ids(intent.purpose, self._decision_key(intent)) if e != cid]
        rec = self.store.create(OrderRecord(
            id=0, client_order_id=cid, venue_order_id=None, run_id=self.run_id,
            platform_id=self.venue.platform_id, market_id=intent.market_id, position_id=intent.position_id,
            purpose=intent.purpose, side=intent.side, action=intent.action, order_type=intent.order_type,
            time_in_force=intent.time_in_force, limit_price=intent.limit_price, quantity=intent.quantity,
            filled_quantity=0, fees=ZERO, status=S.CREATED, mode=self.mode, method_id=intent.method_id,
            strategy_id=intent.strategy_id, model_id=intent.model_id, edge_id=intent.edge_id,
            exit_condition=intent.exit_condition, exit_priority=intent.exit_priority,
            decision_key=intent.decision_key, edge_at_decision=intent.edge, confidence=intent.confidence,
            expires_at=intent.expires_at, metadata=dict(intent.metadata)), aliases=earlier)
        if rec.status is not S.CREATED:
            return rec  # this decision was already sent (idempotent): nothing goes out twice
        if intent.purpose == "entry":
            from precog.trading.risk import ApprovalError, require_approval

            try:
                require_approval(intent.approval, now=self.clock().timestamp())
            except ApprovalError as exc:
                self.store.transition(rec, S.REJECTED, reason=f"no valid risk approval: {exc}"[:500])
                raise
        return await self._send(rec)

    async def _send(self, rec: OrderRecord) -> OrderRecord:
        tif = TimeInForce(rec.time_in_force)
        req = OrderRequest(ticker=rec.market_id, side=rec.side, action=rec.action,  # type: ignore[arg-type]
                           count=Decimal(rec.quantity), price=rec.limit_price, client_order_id=rec.client_order_id,
                           type=OrderType.LIMIT, time_in_force=tif)
        self.open[rec.client_order_id] = rec
        self.orders_sent += 1
        try:
            vo = await self.venue.place_order(req)
        except VenueRejected as exc:
            self.store.transition(rec, S.REJECTED, reason=str(exc)[:500])
            self.open.pop(rec.client_order_id, None)
            return rec
        except Exception as exc:  # noqa: BLE001 - only VenueRejected proves nothing was created
            # lost, timed out, or an answer we could not read (schema drift): the order may exist at the venue
            self.store.transition(rec, S.UNRESOLVED, reason=f"outcome unknown: {type(exc).__name__}: {exc}"[:500])
            return await self.resolve(rec)
        self._apply_venue(rec, vo, submitted=True)
        return rec

    async def resolve(self, rec: OrderRecord) -> OrderRecord:
        """Find an order whose outcome is unknown by its client_order_id."""
        try:
            vo = await self.venue.find_order(rec.market_id, rec.client_order_id)
        except (VenueOutcomeUnknown, OSError, TimeoutError) as exc:
            log.warning("lookup of %s failed: %s", rec.client_order_id, exc)
            return rec
        if vo is None:
            if rec.status is S.UNRESOLVED:
                # a create whose answer was lost may still be in flight (a proxy, the venue's queue): absence now
                # proves nothing, so the order stays open and is looked up again each cycle for a grace period
                now = self.clock()
                since = self._unresolved_since.setdefault(rec.client_order_id, now)
                if (now - since).total_seconds() < UNRESOLVED_GRACE_SECONDS:
                    return rec
            # The venue never received it (it refuses duplicate ids, so it cannot arrive later as a second order).
            reason = (f"{NEVER_PLACED} (the process stopped before sending it)" if rec.status is S.CREATED
                      else f"{NEVER_PLACED}: not found there by client_order_id within {UNRESOLVED_GRACE_SECONDS} s")
            self.store.transition(rec, S.REJECTED, reason=reason)
            self.open.pop(rec.client_order_id, None)
            self._unresolved_since.pop(rec.client_order_id, None)
            return rec
        self._unresolved_since.pop(rec.client_order_id, None)
        self._apply_venue(rec, vo, submitted=rec.status in (S.CREATED, S.UNRESOLVED))
        return rec

    def _apply_venue(self, rec: OrderRecord, vo: VenueOrder, *, submitted: bool = False) -> None:
        new = state_from_venue(vo)
        if submitted and rec.status is S.CREATED:
            if new is S.SUBMITTED:
                self.store.transition(rec, S.SUBMITTED, venue=vo)
            else:  # one transaction: created -> submitted -> the venue's state
                self.store.transition(rec, new, venue=vo, via=S.SUBMITTED, filled_quantity=int(vo.fill_count),
                                      fees=vo.fees)
                if rec.status in TERMINAL:
                    self.open.pop(rec.client_order_id, None)
                return
        if rec.status is S.CANCEL_PENDING and new in (S.RESTING, S.PARTIALLY_FILLED):
            new = S.CANCEL_PENDING
        if rec.status is S.UNRESOLVED and new is S.SUBMITTED:
            new = S.SUBMITTED
        if rec.status is S.SUBMITTED and new is S.SUBMITTED and vo.order_id == rec.venue_order_id:
            return
        if new != rec.status or int(vo.fill_count) != rec.filled_quantity or rec.venue_order_id is None:
            if rec.status is S.UNRESOLVED and new not in (S.SUBMITTED, S.REJECTED):
                self.store.transition(rec, S.SUBMITTED, venue=vo, reason="resolved by client_order_id lookup")
            if rec.status in (S.RESTING,) and new is S.RESTING and int(vo.fill_count) == rec.filled_quantity:
                return
            self.store.transition(rec, new, venue=vo, filled_quantity=int(vo.fill_count), fees=vo.fees)
        if rec.status in TERMINAL:
            self.open.pop(rec.client_order_id, None)

    async def refresh(self, rec: OrderRecord) -> OrderRecord:
        if rec.status in TERMINAL:
            return rec
        if rec.status in (S.CREATED, S.UNRESOLVED) or rec.venue_order_id is None:
            return await self.resolve(rec)
        vo = await self.venue.get_order(rec.venue_order_id)
        self._apply_venue(rec, vo)
        return rec

    async def cancel(self, rec: OrderRecord, reason: str = "cancel") -> OrderRecord:
        if rec.status in TERMINAL:
            return rec
        if rec.venue_order_id is None:
            await self.resolve(rec)
            if rec.status in TERMINAL or rec.venue_order_id is None:
                return rec
        if rec.status is not S.CANCEL_PENDING:
            self.store.transition(rec, S.CANCEL_PENDING, reason=reason)
        vo = await self.venue.cancel_order(rec.venue_order_id)
        if vo is None:
            vo = await self.venue.get_order(rec.venue_order_id)
        self._apply_venue(rec, vo)
        return rec

    # ------------------------------------------------------------------ fills

    async def sync_fills(self, since_ms: int | None = None) -> list[BookedFill]:
        """Book every venue fill not booked yet, oldest first (`booking_order`: buys before sells at one
        timestamp). Without `since_ms`, fills from the newest one already seen on (a full history read happens
        once, at the first call)."""
        booked: list[BookedFill] = []
        since = since_ms if since_ms is not None else self._fills_seen_ms
        for fill in booking_order(await self.venue.fills(since)):
            if fill.created_time is not None:
                ms = _ms(fill.created_time)
                if self._fills_seen_ms is None or ms > self._fills_seen_ms:
                    self._fills_seen_ms = ms
            if fill.fill_id in self._booked:
                continue
            b = await self.book(fill)
            self._booked.add(fill.fill_id)
            if b is not None:
                booked.append(b)
                self.fills_booked += 1
        return booked

    async def book(self, fill: Fill) -> BookedFill | None:
        rec = self.store.by_client_id(fill.client_order_id) if fill.client_order_id else None
        if rec is None:
            rec = self.store.by_venue_id(self.venue.platform_id, fill.order_id)
        if rec is None:
            rec = await self.adopt(fill.order_id)
        live = self.open.get(rec.client_order_id)
        if live is not None:
            rec = live
        when = fill.created_time or self.clock()
        try:
            b = self.portfolio.book_fill(fill, rec, when, sport=rec.metadata.get("sport"),
                                         event_id=rec.metadata.get("event_id"))
        except RuntimeError as exc:
            # a fill our books cannot place (e.g. a sell of contracts we do not hold): do not guess; the
            # position check of the next reconciliation sees the difference and halts trading
            log.error("cannot book fill %s: %s", fill.fill_id, exc)
            if self.alerts is not None:
                self.alerts.raise_alert("fill_not_booked", "critical", "executor", f"cannot book fill {fill.fill_id}: "
                                        f"{exc}", {"fill_id": fill.fill_id, "order": rec.client_order_id},
                                        dedup_key=f"fill_not_booked:{fill.fill_id}", category="trading")
            return None
        if b is not None and self.on_fill is not None:
            self.on_fill(b, rec)
        return b

    async def adopt(self, venue_order_id: str) -> OrderRecord:
        """An order the venue has and we do not (sent by a crashed process before its row, or by hand).

        Its client_order_id, when one of our tagged ids, gives back the purpose, the method (entries) and the
        position, exit condition and partial-exit stage (exits), so its fills are booked as the original order's
        would have been; what does not check out against our records is left out and named in the alert."""
        vo = await self.venue.get_order(venue_order_id)
        cid = vo.client_order_id or f"adopted-{venue_order_id}"[:64]
        existing = self.store.by_client_id(cid)
        if existing is not None:
            return existing
        origin = self._restore_attribution(parse_client_order_id(cid), vo)
        rec = self.store.create(OrderRecord(
            id=0, client_order_id=cid, venue_order_id=None, run_id=self.run_id, platform_id=self.venue.platform_id,
            market_id=vo.ticker, position_id=origin.position_id, purpose=origin.purpose, side=vo.side.value,
            action=vo.action.value, order_type="limit", time_in_force="good_till_canceled",
            limit_price=min(max(vo.price, Decimal("0.01")), Decimal("0.99")), quantity=int(vo.initial_count),
            filled_quantity=0, fees=ZERO, status=S.CREATED, mode=self.mode, method_id=origin.method_id,
            strategy_id=origin.strategy_id, model_id=origin.model_id, exit_condition=origin.exit_condition,
            exit_priority=origin.exit_priority, metadata={"adopted": True, **origin.metadata},
            # an entry of ours whose row was lost was priced on data we no longer know: its entry timeout has
            # come (the next cycle cancels what rests; what filled is booked as its method's)
            expires_at=self.clock() if origin.purpose == "entry" else None))
        self._apply_venue(rec, vo, submitted=True)
        if rec.status not in TERMINAL:
            self.open[rec.client_order_id] = rec
        if origin.warnings:
            log.warning("adopted order %s: %s", cid, "; ".join(origin.warnings))
        if self.alerts is not None:
            self.alerts.raise_alert("order_adopted", "high", "reconciliation",
                                    f"adopted venue order {venue_order_id} on {vo.ticker} not in our records",
                                    {"venue_order_id": venue_order_id, "client_order_id": cid,
                                     "restored": origin.restored(), "warnings": origin.warnings},
                                    source_table="orders", source_id=rec.id, dedup_key=f"adopt:{venue_order_id}",
                                    category="trading")
        return rec

    def _restore_attribution(self, tags: OrderTags | None, vo: VenueOrder) -> _AdoptedOrigin:
        """The attribution of an adopted order from its id's tags, each part checked against our records: a
        method or position we do not have (or one of another market, side, mode) is not trusted."""
        origin = _AdoptedOrigin()
        if tags is None:
            return origin  # an id of the first format or placed by hand: nothing to restore
        expected_action = "buy" if tags.purpose == "entry" else "sell"
        if vo.action.value != expected_action:
            origin.warnings.append(f"id says {tags.purpose} but the order is a {vo.action.value}: not restored")
            return origin
        origin.purpose = tags.purpose
        if tags.purpose == "entry":
            self._restore_entry(tags, origin)
        else:
            self._restore_exit(tags, vo, origin)
        return origin

    def _restore_entry(self, tags: OrderTags, origin: _AdoptedOrigin) -> None:
        conn = self.store.conn
        if tags.method_id is not None:
            row = conn.execute("SELECT strategy_id, model_id FROM methods WHERE method_id = %s",
                               (tags.method_id,)).fetchone()
            if row is None:
                origin.warnings.append(f"method {tags.method_id} named by the id does not exist: ignored")
                return
            origin.method_id, origin.strategy_id, origin.model_id = tags.method_id, row[0], row[1]
            return
        if tags.strategy_id is not None:
            found = conn.execute("SELECT 1 FROM strategies WHERE strategy_id = %s", (tags.strategy_id,)).fetchone()
            if found is None:
                origin.warnings.append(f"strategy {tags.strategy_id} named by the id does not exist: ignored")
            else:
                origin.strategy_id = tags.strategy_id
        if tags.model_id is not None:
            found = conn.execute("SELECT 1 FROM probability_models WHERE model_id = %s", (tags.model_id,)).fetchone()
            if found is None:
                origin.warnings.append(f"model {tags.model_id} named by the id does not exist: ignored")
            else:
                origin.model_id = tags.model_id

    def _restore_exit(self, tags: OrderTags, vo: VenueOrder, origin: _AdoptedOrigin) -> None:
        if tags.exit_condition is not None:
            origin.exit_condition = tags.exit_condition
            origin.exit_priority = ex.PRIORITY_OF.get(tags.exit_condition)
        if tags.attempt is not None:
            origin.metadata["attempt"] = tags.attempt
        if tags.position_id is None:
            return
        pos = self.portfolio.get(tags.position_id)
        problem = None
        if pos is None:
            problem = "does not exist"
        elif (pos.platform_id, pos.mode) != (self.venue.platform_id, self.mode):
            problem = f"is a {pos.platform_id}/{pos.mode} position, not {self.venue.platform_id}/{self.mode}"
        elif (pos.market_id, pos.side) != (vo.ticker, vo.side.value):
            problem = f"holds {pos.side} on {pos.market_id}, the order sells {vo.side.value} on {vo.ticker}"
        elif not pos.is_open:
            problem = "is not open"
        if problem is not None:
            # its stage belongs to that position: counting it on another would skip a stage of the wrong one
            origin.warnings.append(f"position {tags.position_id} named by the id {problem}: position and stage "
                                   "ignored")
            return
        assert pos is not None
        origin.position_id = pos.position_id
        origin.method_id, origin.strategy_id, origin.model_id = pos.method_id, pos.strategy_id, pos.model_id
        if tags.stage is not None and tags.exit_condition in ("partial_exit_target", "hedge"):
            origin.metadata["stage"] = tags.stage
            origin.metadata["stage_quantity"] = tags.stage_quantity


@dataclass
class _AdoptedOrigin:
    """What adoption restores of an order's attribution, and what it declined to trust."""

    purpose: str = "adopted"
    method_id: int | None = None
    strategy_id: int | None = None
    model_id: int | None = None
    position_id: int | None = None
    exit_condition: str | None = None
    exit_priority: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def restored(self) -> dict[str, Any]:
        fields = {"purpose": self.purpose, "method_id": self.method_id, "strategy_id": self.strategy_id,
                  "model_id": self.model_id, "position_id": self.position_id, "exit_condition": self.exit_condition,
                  **self.metadata}
        return {k: v for k, v in fields.items() if v is not None}


def order_tags(intent: OrderIntent) -> OrderTags | None:
    """What an order's client_order_id carries for adoption (None: a purpose without tagged ids)."""
    if intent.purpose == "entry":
        if intent.method_id is not None:
            return OrderTags("entry", method_id=intent.method_id)
        return OrderTags("entry", strategy_id=intent.strategy_id, model_id=intent.model_id)
    if intent.purpose == "exit":
        meta = intent.metadata
        stage_quantity, attempt = meta.get("stage_quantity"), meta.get("attempt")
        return OrderTags("exit", position_id=intent.position_id, exit_condition=intent.exit_condition,
                         stage=meta.get("stage"), stage_quantity=int(stage_quantity) if stage_quantity is not None
                         else None, attempt=int(attempt) if attempt is not None else None)
    return None


# ------------------------------------------------------------------------------------------ exits

@dataclass
class ExitJob:
    position_id: int
    market_id: str
    side: str
    condition: str
    priority: str
    target_quantity: int
    policy: ex.ExecutionPolicy
    started_at: datetime
    stage: str | None = None
    stage_target: int | None = None  # a partial-exit stage's whole quantity (booking marks the stage executed)
    conflicting: list[dict[str, Any]] = field(default_factory=list)
    attempt: int = 0
    walks: int = 0
    filled: int = 0
    order: OrderRecord | None = None
    order_price: Decimal | None = None
    order_type: str = "limit"
    deadline: datetime | None = None
    wait_seconds: float | None = None  # how long the current attempt rests (its exit_attempts.timeout_seconds)
    # the client_order_id of the attempt being handed to the executor: set until `submit` returns its record, so
    # an attempt whose send failed half way (the venue may hold it) is found again instead of sent beside
    sending: str | None = None
    done: bool = False
    gave_up: bool = False
    # the whole position leaves: its resting entry remainder is canceled first and the target follows the
    # position (contracts a fill added before the cancel landed leave too)
    full: bool = False

    @property
    def remaining(self) -> int:
        return self.target_quantity - self.filled


class ExitManager:
    """One exit job per position at a time; a higher-priority trigger replaces a lower one."""

    def __init__(self, executor: Executor, execution_config: dict[str, Any] | None = None,
                 alerts: AlertRaiser | None = None) -> None:
        self.executor = executor
        self.config = {**ex.DEFAULT_EXECUTION, **(execution_config or {})}
        ex.execution_policies(self.config)  # a bad exit_execution block is refused now, naming its key
        self.alerts = alerts
        self.jobs: dict[int, ExitJob] = {}
        self.completed: list[ExitJob] = []
        # HALTED without a forced liquidation (`TradingStateSnapshot.allows_exits`): no exit is started and no
        # attempt is sent; working attempts are still followed (fills, timeouts, cancels) and resume afterwards
        self.paused = False

    def has_job(self, position_id: int) -> bool:
        return position_id in self.jobs

    async def start(self, pos: PositionState, decision: ex.ExitDecision, now: datetime) -> ExitJob | None:
        if self.paused:
            return None
        trig = decision.trigger
        current = self.jobs.get(pos.position_id)
        if current is not None:
            if ex.PRIORITY_RANK[trig.priority] >= ex.PRIORITY_RANK[current.priority]:
                return None  # an exit of equal or higher priority is already working
            self._follow_order(current)
            if current.order is not None and current.order.status not in TERMINAL:
                await self.executor.cancel(current.order, reason=f"preempted by {trig.condition}")
                await self._finish_attempt(current, now)
            current.done = True
            self.jobs.pop(pos.position_id, None)
        qty = min(trig.quantity, pos.quantity)
        if qty <= 0:
            return None
        full = qty >= pos.quantity or trig.condition == "circuit_breaker"
        if full:
            # a late fill of the entry's resting remainder would re-open the exposure we are getting out of
            await self.cancel_entries(pos, trig.condition)
            qty = pos.quantity  # fills booked while canceling leave with the rest
            if qty <= 0:
                return None
        policy = ex.ExecutionPolicy.from_config(trig.priority, self.config[trig.priority], trig.condition)
        job = ExitJob(pos.position_id, pos.market_id, pos.side, trig.condition, trig.priority, qty, policy, now,
                      stage=trig.stage, stage_target=trig.stage_target, conflicting=decision.conflicting_json(),
                      full=full)
        self.jobs[pos.position_id] = job
        return job

    def resting_entries(self, pos: PositionState) -> list[OrderRecord]:
        """Our open entry orders that feed this position: the ones that already filled into it, and unfilled ones
        in the same market and side (their first fill would open a new position there)."""
        return [o for o in self.executor.open.values()
                if o.purpose == "entry" and o.status not in TERMINAL and o.market_id == pos.market_id
                and o.side == pos.side and o.position_id in (pos.position_id, None)]

    async def cancel_entries(self, pos: PositionState, condition: str) -> int:
        """Cancel the position's resting entry remainder before a full exit; fills that land before the cancel are
        booked (they join the position and leave with it). Returns how many entry orders are still open (a
        cancel the venue did not confirm is retried on the job's next step)."""
        pending = self.resting_entries(pos)
        if not pending:
            return 0
        for rec in pending:
            try:
                await self.executor.cancel(rec, reason=f"position exiting: {condition}")
            except Exception as exc:  # noqa: BLE001 - the exit goes on; the cancel is retried next step
                log.warning("could not cancel entry %s of exiting position %s: %s", rec.client_order_id,
                            pos.position_id, exc)
        await self.executor.sync_fills()
        left = self.resting_entries(pos)
        if left and self.alerts is not None:
            self.alerts.raise_alert(
                "entry_cancel_pending", "high", "exit_executor",
                f"{len(left)} entry order(s) of exiting position {pos.position_id} on {pos.market_id} not canceled "
                "yet; retrying", {"position_id": pos.position_id, "orders": [o.client_order_id for o in left]},
                source_table="positions", source_id=pos.position_id,
                dedup_key=f"entry_cancel:{pos.position_id}", category="trading")
        return len(left)

    async def step(self, markets: dict[str, Market], now: datetime) -> None:
        for job in list(self.jobs.values()):
            await self._step_job(job, markets.get(job.market_id), now)
            if job.done:
                self.jobs.pop(job.position_id, None)
                self.completed.append(job)

    async def _step_job(self, job: ExitJob, market: Market | None, now: datetime) -> None:
        self._follow_order(job)
        pos = self.executor.portfolio.get(job.position_id)
        if pos is None or not pos.is_open:
            if job.order is not None:
                if job.order.status not in TERMINAL:
                    await self.executor.cancel(job.order, reason="position closed")
                await self._finish_attempt(job, now)
            job.done = True
            return
        if job.full and self.resting_entries(pos):
            await self.cancel_entries(pos, job.condition)
        if job.order is not None:
            await self.executor.refresh(job.order)
            if job.order.status not in TERMINAL:
                if job.deadline is not None and now >= job.deadline:
                    await self.executor.cancel(job.order, reason="exit attempt timed out")
                if job.order.status not in TERMINAL:
                    return
            await self._finish_attempt(job, now)
            if job.remaining <= 0 or pos.quantity <= 0:
                job.done = True
                return
        if market is None or not market.is_tradable:
            return  # nothing can be sent now; settlement will close the position if the market is over
        if self.waiting_for_bid(job, market, now) or self.paused:
            return
        if job.full:
            job.target_quantity = job.filled + pos.quantity
        else:
            job.target_quantity = min(job.target_quantity, job.filled + pos.quantity)
        await self._next_attempt(job, pos, market, now)

    def _follow_order(self, job: ExitJob) -> None:
        """Work on the executor's current record of the job's order. A database reconnect reloads the
        executor's open orders as new records: the job's own is outdated (refreshing it stores transitions the
        reloaded one already stored). An attempt whose `submit` failed after the order row was written (the
        connection died while the venue took it) is taken up again from its row, not sent a second time."""
        ex = self.executor
        if job.sending is not None:
            cid, job.sending = job.sending, None
            found = ex.open.get(cid) or ex.store.by_client_id(cid)
            if found is not None:  # no row: the executor writes it before sending, so nothing went out
                job.order = found
                log.warning("exit %s of position %s: attempt %s (%s) was being sent when it failed; following it",
                            job.condition, job.position_id, job.attempt, cid)
            return
        if job.order is None:
            return
        current = ex.open.get(job.order.client_order_id)
        if current is None and job.order.status not in TERMINAL:
            current = ex.store.by_client_id(job.order.client_order_id)  # ended while our record was not held
        if current is not None:
            job.order = current

    def waiting_for_bid(self, job: ExitJob, m: Market, now: datetime) -> bool:
        """Nobody bids on the job's side: its next attempt waits for a bid to show (or the last attempt's
        timeout, in case the snapshot is behind) instead of sending order after order into an empty book."""
        return self._side_quotes(job, m)[0] is None and job.deadline is not None and now < job.deadline

    def _side_quotes(self, job: ExitJob, m: Market) -> tuple[Decimal | None, Decimal | None]:
        if job.side == "yes":
            bid = m.yes_bid if m.yes_bid > 0 else None
            ask = m.yes_ask if m.yes_ask < ONE else None
        else:
            bid = m.no_bid if m.no_bid > 0 else None
            ask = m.no_ask if m.no_ask < ONE else None
        return bid, ask

    async def _next_attempt(self, job: ExitJob, pos: PositionState, m: Market, now: datetime) -> None:
        p = job.policy
        bid, ask = self._side_quotes(job, m)
        market_style = p.order_type == "market"
        if job.attempt > 0 and not market_style:
            if job.walks >= p.max_walks:
                if p.escalation == "walk_then_market":
                    market_style = True
                else:
                    job.gave_up = True
                    job.done = True
                    self._alert_failed(job, pos)
                    return
            else:
                job.walks += 1
        if market_style:
            price, tif, otype = FAR_SELL, "immediate_or_cancel", "market"
        elif job.attempt == 0 or job.order_price is None:
            if bid is None:
                price, tif, otype = FAR_SELL, "immediate_or_cancel", "market"
            else:
                price, tif, otype = ex.start_price(p.price_style, bid, ask), "good_till_canceled", "limit"
        else:
            price = ex.walked_price(job.order_price, p.escalation, job.walks - 1, bid, ask)
            tif, otype = "good_till_canceled", "limit"
        job.attempt += 1
        qty = min(job.remaining, pos.quantity)
        intent = OrderIntent(
            market_id=job.market_id, side=job.side, action="sell", quantity=qty, limit_price=price, purpose="exit",
            decision_key=f"pos={job.position_id}|cond={job.condition}|stage={job.stage}|start={_ms(job.started_at)}"
                         f"|attempt={job.attempt}",
            time_in_force=tif, position_id=job.position_id, method_id=pos.method_id, strategy_id=pos.strategy_id,
            model_id=pos.model_id, exit_condition=job.condition, exit_priority=job.priority,
            metadata={"stage": job.stage, "stage_quantity": job.stage_target,
                      "conflicting_triggers": job.conflicting, "attempt": job.attempt, "walks": job.walks})
        job.order_price = price
        job.order_type = otype
        # spec §5.9: the first attempt rests the priority's timeout, every walk (and a market attempt after the
        # walks) the escalation's wait; CRITICAL repeats its market attempt on its own timeout
        job.wait_seconds = p.timeout_seconds if job.attempt == 1 or p.escalation == "immediate_market" \
            else p.walk_wait_seconds
        job.deadline = now + timedelta(seconds=job.wait_seconds)
        job.sending = self.executor.client_order_id(intent)
        job.order = await self.executor.submit(intent)
        job.sending = None

    async def _finish_attempt(self, job: ExitJob, now: datetime) -> None:
        o = job.order
        if o is None:
            return
        await self.executor.sync_fills()
        fill_price = None
        if o.filled_quantity:
            row = self.executor.store.conn.execute(
                "SELECT sum(price * quantity) / sum(quantity) FROM trades WHERE client_order_id = %s",
                (o.client_order_id,)).fetchone()
            fill_price = row[0] if row else None
        job.filled += o.filled_quantity
        self.executor.store.conn.execute(
            "INSERT INTO exit_attempts (position_id, exit_condition, priority_level, order_type, limit_price, "
            "fill_price, quantity, filled_quantity, attempt_number, timeout_seconds, success, order_id, "
            "attempt_metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (job.position_id, job.condition, job.priority, job.order_type, o.limit_price,
             fill_price.quantize(Decimal("0.0001")) if fill_price is not None else None, o.quantity,
             o.filled_quantity, job.attempt,
             Decimal(str(job.wait_seconds if job.wait_seconds is not None else job.policy.timeout_seconds)),
             o.filled_quantity == o.quantity, o.venue_order_id or o.client_order_id,
             jsonb({"client_order_id": o.client_order_id, "status": o.status.value, "walks": job.walks,
                    "stage": job.stage, "run_id": self.executor.run_id})))
        self.executor.store.conn.commit()
        job.order = None

    def _alert_failed(self, job: ExitJob, pos: PositionState) -> None:
        log.warning("exit %s of position %s gave up after %s attempts", job.condition, pos.position_id, job.attempt)
        if self.alerts is not None:
            self.alerts.raise_alert(
                "exit_failed", "high", "exit_executor",
                f"{job.condition} exit of position {pos.position_id} on {pos.market_id} not filled after "
                f"{job.attempt} attempts; position stays open", {"position_id": pos.position_id,
                                                                 "condition": job.condition},
                source_table="positions", source_id=pos.position_id,
                dedup_key=f"exit_failed:{pos.position_id}:{job.condition}", category="trading")
