"""Position monitoring (spec §5.5): when each open position is checked, with what price, and what it triggers.

Each open position is checked every 30 s, or every 5 s when it is near a threshold (stop loss + 0.02,
profit target - 0.02, or within 2% of an active trailing stop). Prices come through a 10 s TTL cache that
also enforces the API budget (60 calls a minute). A check marks the position to market, moves the
trailing stop, evaluates the exit conditions (spec 5.6's 10 and the 5.11 hedge) and hands the winning trigger
to the exit manager.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from precog.alerts.api import AlertRaiser, Severity
from precog.domain.fees import DEFAULT_FEES, FeeSchedule
from precog.domain.market import Market
from precog.domain.money import ONE
from precog.trading import exits as ex
from precog.trading import trailing
from precog.trading.executor import ExitManager
from precog.trading.portfolio import Portfolio, PositionState

log = logging.getLogger(__name__)

# spec 5.5 / REQ-MON-002: a position without a price update for this long is critical (orphaned position risk)
CRITICAL_STALE_SECONDS = 120


@dataclass(frozen=True)
class MonitorConfig:
    normal_seconds: float = 30
    urgent_seconds: float = 5
    near_threshold_pct: Decimal = Decimal("0.02")
    price_cache_ttl_seconds: float = 10
    max_api_calls_per_minute: int = 60
    stale_after_seconds: float = 60

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> MonitorConfig:
        return cls(normal_seconds=float(data.get("normal_frequency", 30)),
                   urgent_seconds=float(data.get("urgent_frequency", 5)),
                   near_threshold_pct=Decimal(str(data.get("near_threshold_pct", "0.02"))),
                   price_cache_ttl_seconds=float(data.get("price_cache_ttl_seconds", 10)),
                   max_api_calls_per_minute=int(data.get("max_api_calls_per_minute", 60)),
                   stale_after_seconds=float(data.get("stale_after_seconds", 60)))


class PriceCache:
    """Market snapshots with a TTL; at most `max_calls` venue calls in any 60 s window (then cached data,
    however old, is served until the window frees up)."""

    def __init__(self, fetch: Callable[[str], Awaitable[Market]], clock: Callable[[], datetime], *,
                 ttl_seconds: float = 10, max_calls_per_minute: int = 60) -> None:
        self.fetch = fetch
        self.clock = clock
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_calls = max_calls_per_minute
        self._data: dict[str, tuple[datetime, Market]] = {}
        self._calls: deque[datetime] = deque()
        self.calls_made = 0
        self.budget_waits = 0

    def put(self, market: Market) -> None:
        """Feed a snapshot that arrived by other means (WebSocket, a batch poll)."""
        self._data[market.ticker] = (self.clock(), market)

    def fetched_at(self, ticker: str) -> datetime | None:
        """When the latest snapshot of `ticker` came from the venue (None: never, in this process)."""
        cached = self._data.get(ticker)
        return cached[0] if cached is not None else None

    async def get(self, ticker: str, *, max_age: timedelta | None = None) -> Market | None:
        now = self.clock()
        cached = self._data.get(ticker)
        limit = self.ttl if max_age is None else max_age
        if cached is not None and now - cached[0] <= limit:
            return cached[1]
        while self._calls and now - self._calls[0] >= timedelta(seconds=60):
            self._calls.popleft()
        if len(self._calls) >= self.max_calls:
            self.budget_waits += 1
            return cached[1] if cached is not None else None
        self._calls.append(now)
        self.calls_made += 1
        market = await self.fetch(ticker)
        self._data[ticker] = (now, market)
        return market


def side_quotes(side: str, m: Market) -> tuple[Decimal | None, Decimal | None, int | None]:
    """(bid, ask, bid size) of one side of the book; None where the side is empty."""
    if side == "yes":
        bid = m.yes_bid if m.yes_bid > 0 else None
        ask = m.yes_ask if m.yes_ask < ONE else None
        size = int(m.yes_bid_size) if m.yes_bid_size is not None else None
    else:
        bid = m.no_bid if m.no_bid > 0 else None
        ask = m.no_ask if m.no_ask < ONE else None
        size = int(m.yes_ask_size) if m.yes_ask_size is not None else None
    return bid, ask, size


@dataclass
class CheckResult:
    decision: ex.ExitDecision | None
    trailing_changed: bool
    urgent: bool


class PositionMonitor:
    def __init__(self, portfolio: Portfolio, exits: ExitManager, rules: ex.ExitRules,
                 trailing_config: trailing.TrailingConfig, config: MonitorConfig) -> None:
        self.portfolio = portfolio
        self.exits = exits
        self.rules = rules
        self.trailing_config = trailing_config
        self.config = config
        self.next_check: dict[int, datetime] = {}
        self.checks = 0
        # per-method position management (a method's position_mgmt_config), by method_id
        self.method_rules: dict[int, tuple[ex.ExitRules, trailing.TrailingConfig]] = {}
        # the rules of a method not in `method_rules` (None: it has none of its own); asked once per method
        self.load_method_rules: Callable[[int], tuple[ex.ExitRules, trailing.TrailingConfig] | None] | None = None
        # the fee schedule a hedge's sale is sized with (the engine sets its own)
        self.fees: FeeSchedule = DEFAULT_FEES

    def rules_of(self, pos: PositionState) -> tuple[ex.ExitRules, trailing.TrailingConfig]:
        if pos.method_id is None:
            return self.rules, self.trailing_config
        found = self.method_rules.get(pos.method_id)
        if found is None:
            loaded = self.load_method_rules(pos.method_id) if self.load_method_rules is not None else None
            found = self.method_rules[pos.method_id] = loaded or (self.rules, self.trailing_config)
        return found

    def due(self, pos: PositionState, now: datetime) -> bool:
        nxt = self.next_check.get(pos.position_id)
        return nxt is None or now >= nxt

    def _schedule_next(self, pos: PositionState, now: datetime) -> bool:
        """The position's next check after one at `now` (spec 5.5 cadence); True when it is urgent."""
        urgent = self.is_urgent(pos)
        interval = self.config.urgent_seconds if urgent else self.config.normal_seconds
        self.next_check[pos.position_id] = now + timedelta(seconds=interval)
        return urgent

    def record_quiet_checks(self, pos: PositionState, now: datetime, count: int = 1) -> None:
        """What `count` checks up to `now` do to a position whose side has no bid, on the quote it last saw, while
        an exit of the highest priority is already working on it: the last check's time and the next one (nothing
        else changes: no mark, no trailing stop move, no new exit). A backtest records the checks of the steps it
        skips so."""
        self.checks += count
        self.portfolio.mark(pos, None, now)
        self._schedule_next(pos, now)

    def is_urgent(self, pos: PositionState) -> bool:
        """Spec 5.5: check every 5 s when pct < stop loss + 0.02, pct > profit target - 0.02 (with partial exits
        on, also the next stage's threshold - 0.02: the profit that is taken next; with the hedge on and not taken
        yet, its gain trigger - 0.02), or an active trailing stop is within 2 % of the price."""
        price = pos.current_price
        # the exact pct, not the mark stored on the position (rounded to 4 places, which can hide a crossing)
        pct = (price - pos.entry_price) / pos.entry_price if price is not None and pos.entry_price > 0 else None
        conf = pos.metadata.get("confidence", "medium")
        conf = conf if conf in ("high", "medium", "low") else "medium"
        near = self.config.near_threshold_pct
        rules, _ = self.rules_of(pos)
        if pct is not None:
            if pct < rules.stop_loss[conf] + near or pct > rules.profit_target[conf] - near:
                return True
            stage = ex.next_stage_of(rules, pos.initial_quantity, pos.executed_stages, pos.stage_sold) \
                if rules.partial_enabled else None
            if stage is not None and pct > stage.profit_threshold - near:
                return True
            if rules.hedge.enabled and ex.HEDGE_STAGE not in pos.executed_stages \
                    and pct > rules.hedge.unrealized_gain_pct - near:  # the hedge's gain trigger, not taken yet
                return True
        st = pos.trailing_stop_state or {}
        if st.get("active") and pos.current_price:
            stop = Decimal(st["current_stop_price"])
            if (pos.current_price - stop) / pos.current_price < near:
                return True
        return False

    async def check(self, pos: PositionState, market: Market | None, now: datetime, *,
                    recomputed_edge: Decimal | None = None, breaker_active: bool = False,
                    better_opportunity: bool = False) -> CheckResult:
        self.checks += 1
        bid, ask, size = side_quotes(pos.side, market) if market is not None else (None, None, None)
        before_price = pos.current_price
        self.portfolio.mark(pos, bid, now)
        changed = triggered = False
        rules, trailing_config = self.rules_of(pos)
        if bid is not None:
            state, changed, triggered = trailing.update(pos.trailing_stop_state, bid, pos.entry_price,
                                                        trailing_config, now.isoformat())
            pos.trailing_stop_state = state
        # time_based_urgent (spec 5.6 "< 5 min to settlement/close"): to the expected settlement (Kalshi's
        # expected_expiration_time; its close_time is the latest close, often weeks after a game), or to the
        # close when trading stops first
        seconds_to_close = ex.seconds_to_time_exit(market.exit_deadline() if market is not None else None,
                                                   pos.entry_time, now, rules)
        situation = ex.ExitSituation(
            quantity=pos.quantity, initial_quantity=pos.initial_quantity, entry_price=pos.entry_price, bid=bid,
            ask=ask, bid_size=size, confidence=pos.metadata.get("confidence", "medium"),
            trailing_triggered=triggered, seconds_to_close=seconds_to_close, recomputed_edge=recomputed_edge,
            breaker_active=breaker_active, better_opportunity=better_opportunity,
            executed_stages=pos.executed_stages, stage_sold=pos.stage_sold, hedge_quantity=pos.hedge_quantity)
        decision = ex.resolve(ex.evaluate(situation, rules, self.fees)) \
            if market is not None and market.is_tradable else None
        urgent = self._schedule_next(pos, now)
        material = changed or before_price is None or (bid is not None and before_price is not None
                                                       and abs(bid - before_price) >= Decimal("0.01"))
        if material:
            pos.last_update = now
            self.portfolio.save(pos, now)
        if decision is not None:
            await self.exits.start(pos, decision, now)
        return CheckResult(decision, changed, urgent)


@dataclass
class _StaleEpisode:
    since: datetime  # the position's last fresh price (or when the watch first saw it without one)
    severity: Severity | None = None  # the most severe alert raised in this episode


_SEVERITY_RANK: dict[Severity, int] = {"critical": 0, "high": 1}


class StalePriceWatch:
    """REQ-MON-002 (spec 5.5): an open position whose latest price is older than `stale_after_seconds` raises
    `position_price_stale` (high); still none 120 s after it (spec: no updates for 2 minutes) the alert is
    raised again as critical. One alert per severity per episode, not one per cycle; an episode ends when a
    fresh price arrives, and the next staleness is a new episode that alerts again. Ages are on the engine's
    clock (simulated in the demo and local runs)."""

    def __init__(self, stale_after_seconds: float, alerts: AlertRaiser) -> None:
        if stale_after_seconds <= 0:
            raise ValueError(f"stale_after_seconds must be > 0, got {stale_after_seconds}")
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.critical_after = timedelta(seconds=max(stale_after_seconds, CRITICAL_STALE_SECONDS))
        self.alerts = alerts
        self.raised = 0
        self._first_seen: dict[int, datetime] = {}
        self._episodes: dict[int, _StaleEpisode] = {}

    def stale(self, position_id: int) -> bool:
        return position_id in self._episodes

    def observe(self, positions: Iterable[PositionState], fetched_at: Callable[[str], datetime | None],
                now: datetime) -> None:
        """Look at every open position's price age now (`fetched_at(ticker)`: when its price last came)."""
        seen: set[int] = set()
        for pos in positions:
            pid = pos.position_id
            seen.add(pid)
            first = self._first_seen.setdefault(pid, now)
            last = fetched_at(pos.market_id)
            since = last if last is not None else first
            age = now - since
            if age <= self.stale_after:
                ended = self._episodes.pop(pid, None)
                if ended is not None and ended.severity is not None:
                    log.info("position %s on %s has a fresh price again", pid, pos.market_id)
                continue
            episode = self._episodes.get(pid)
            if episode is None or episode.since != since:  # a price came in between: a new episode
                episode = self._episodes[pid] = _StaleEpisode(since)
            severity: Severity = "critical" if age > self.critical_after else "high"
            if episode.severity is None or _SEVERITY_RANK[severity] < _SEVERITY_RANK[episode.severity]:
                if self._raise(pos, severity, age, last, since):
                    episode.severity = severity
        for gone in [pid for pid in self._first_seen if pid not in seen]:  # closed: forget it
            self._first_seen.pop(gone, None)
            self._episodes.pop(gone, None)

    def _raise(self, pos: PositionState, severity: Severity, age: timedelta, last: datetime | None,
               since: datetime) -> bool:
        seconds = age.total_seconds()
        limit = self.stale_after.total_seconds()
        what = "no price" if last is None else "no fresh price"
        try:
            self.alerts.raise_alert(
                "position_price_stale", severity, "position_monitor",
                f"position {pos.position_id} on {pos.market_id}: {what} for {seconds:.0f} s "
                f"(stale after {limit:.0f} s); its exits are decided on an old price or not at all",
                {"position_id": pos.position_id, "market_id": pos.market_id, "side": pos.side,
                 "quantity": pos.quantity, "age_seconds": round(seconds, 1), "stale_after_seconds": limit,
                 "last_price_at": last.isoformat() if last is not None else None,
                 "current_price": str(pos.current_price) if pos.current_price is not None else None},
                source_table="positions", source_id=pos.position_id,
                # one alert per severity per episode (the episode is named by its last fresh price)
                dedup_key=f"price_stale:{pos.position_id}:{since.isoformat()}:{severity}", category="data")
        except Exception:  # noqa: BLE001 - raised again at the next look; monitoring goes on
            log.exception("could not raise position_price_stale for position %s", pos.position_id)
            return False
        self.raised += 1
        return True
