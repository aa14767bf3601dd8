"""Data-quality checks run on every ingested update.

Checks: stale data (trading.yaml data_freshness: prices 120 s, game states 60 s), crossed or inverted
books, prices outside [0, 1], scores that go down, periods (or status) that go backwards, and payload
schema drift. Every failed check raises an alert and counts one bad point towards the data breaker.
Game states that regress are held back (the last good state stays current) until the same reading has
been seen `confirm_after` times in a row — then it is taken as a genuine correction (ESPN does revise
scores after reviews) and stored with `metadata.corrected = true`; reading it again is no change (the stored
correction stays current, marker included).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from precog.alerts.api import AlertRaiser, Severity
from precog.feeds.game_state import GameState
from precog.ingest.breaker import DataBreaker
from precog.ingest.game_store import change_key

ZERO = Decimal(0)
ONE = Decimal(1)
# a suspended game is in progress (paused); it goes back to live when play resumes
_STATUS_ORDER = {"scheduled": 0, "postponed": 0, "live": 1, "halftime": 1, "suspended": 1, "final": 2,
                 "cancelled": 2}


@dataclass(frozen=True, slots=True)
class QualityLimits:
    max_game_state_age_seconds: float = 60.0  # trading.yaml data_freshness.max_game_state_age
    max_price_age_seconds: float = 120.0  # trading.yaml data_freshness.max_price_age
    confirm_after: int = 3  # identical regressive readings before accepting them as a correction


@dataclass(frozen=True, slots=True)
class QualityIssue:
    check: str  # stale_game | stale_price | stale_feed | crossed_book | price_out_of_range |
    #             score_decrease | period_backwards | schema_drift
    key: str  # game id, market ticker or feed name
    message: str
    severity: Severity = "high"
    details: dict[str, Any] = field(default_factory=dict)


class DataQualityMonitor:
    """Turns issues into alerts and breaker bad points; keeps counters for reports and the benchmark."""

    def __init__(
        self,
        *,
        alerts: AlertRaiser | None = None,
        breaker: DataBreaker | None = None,
        limits: QualityLimits | None = None,
        component: str = "ingest",
    ) -> None:
        self.alerts = alerts
        self.breaker = breaker
        self.limits = limits or QualityLimits()
        self.component = component
        self.counts: dict[str, int] = {}

    def report(self, issues: Iterable[QualityIssue]) -> list[QualityIssue]:
        out = list(issues)
        for issue in out:
            self.counts[issue.check] = self.counts.get(issue.check, 0) + 1
            if self.alerts is not None:
                self.alerts.raise_alert(
                    "data_quality",
                    issue.severity,
                    self.component,
                    issue.message,
                    {"check": issue.check, "key": issue.key, **issue.details},
                    dedup_key=f"data_quality:{issue.check}:{issue.key}",
                    category="data",
                )
            if self.breaker is not None:
                self.breaker.record_failure(issue.check, issue.key, issue.message)
        return out

    def schema_drift(self, source: str, problem: str, details: dict[str, Any] | None = None) -> QualityIssue:
        issue = QualityIssue("schema_drift", source, f"{source}: payload schema drift: {problem}", "high",
                             dict(details or {}))
        self.report([issue])
        return issue

    # --- markets -------------------------------------------------------------------------------------

    def check_quote(
        self,
        ticker: str,
        *,
        yes_bid: Decimal | None = None,
        yes_ask: Decimal | None = None,
        no_bid: Decimal | None = None,
        no_ask: Decimal | None = None,
        last_price: Decimal | None = None,
        event_time: datetime | None = None,
        received_at: datetime | None = None,
    ) -> list[QualityIssue]:
        """Check one market price update; returns (and reports) what is wrong with it."""
        issues = quote_issues(
            ticker,
            yes_bid=yes_bid,
            yes_ask=yes_ask,
            no_bid=no_bid,
            no_ask=no_ask,
            last_price=last_price,
            event_time=event_time,
            received_at=received_at,
            max_age_seconds=self.limits.max_price_age_seconds,
        )
        return self.report(issues) if issues else issues

    def check_feed_silence(self, feed: str, last_message_at: datetime | None, now: datetime,
                           max_age_seconds: float) -> list[QualityIssue]:
        if last_message_at is None:
            return []
        age = (now - last_message_at).total_seconds()
        if age <= max_age_seconds:
            return []
        return self.report([QualityIssue(
            "stale_feed", feed, f"{feed}: no data for {age:.0f} s (limit {max_age_seconds:.0f} s)", "high",
            {"age_seconds": round(age, 3), "limit_seconds": max_age_seconds},
        )])

    # --- games -----------------------------------------------------------------------------------------

    def check_game_staleness(self, live_game_ids: Iterable[str], last_success_at: datetime | None,
                             now: datetime, source: str) -> list[QualityIssue]:
        """Live games whose feed has not delivered within max_game_state_age are stale."""
        if last_success_at is None:
            return []
        age = (now - last_success_at).total_seconds()
        limit = self.limits.max_game_state_age_seconds
        if age <= limit:
            return []
        return self.report([
            QualityIssue("stale_game", game_id,
                         f"{source} game {game_id}: live state is {age:.0f} s old (limit {limit:.0f} s)",
                         "high", {"age_seconds": round(age, 3), "limit_seconds": limit})
            for game_id in live_game_ids
        ])


def quote_issues(
    ticker: str,
    *,
    yes_bid: Decimal | None,
    yes_ask: Decimal | None,
    no_bid: Decimal | None,
    no_ask: Decimal | None,
    last_price: Decimal | None,
    event_time: datetime | None,
    received_at: datetime | None,
    max_age_seconds: float,
) -> list[QualityIssue]:
    issues: list[QualityIssue] = []
    prices = {"yes_bid": yes_bid, "yes_ask": yes_ask, "no_bid": no_bid, "no_ask": no_ask, "last_price": last_price}
    bad = {k: str(v) for k, v in prices.items() if v is not None and not ZERO <= v <= ONE}
    if bad:
        issues.append(QualityIssue(
            "price_out_of_range", ticker,
            f"{ticker}: price outside [0, 1]: " + ", ".join(f"{k}={v}" for k, v in bad.items()), "high", bad,
        ))
    elif yes_bid is not None and yes_ask is not None and yes_bid > 0 and yes_bid > yes_ask:
        issues.append(QualityIssue(
            "crossed_book", ticker, f"{ticker}: crossed book: yes_bid {yes_bid} > yes_ask {yes_ask}", "high",
            {"yes_bid": str(yes_bid), "yes_ask": str(yes_ask)},
        ))
    elif no_bid is not None and no_ask is not None and no_bid > 0 and no_bid > no_ask:
        issues.append(QualityIssue(
            "crossed_book", ticker, f"{ticker}: crossed book: no_bid {no_bid} > no_ask {no_ask}", "high",
            {"no_bid": str(no_bid), "no_ask": str(no_ask)},
        ))
    elif yes_bid is not None and no_bid is not None and yes_bid + no_bid > ONE:
        # a YES bid at p and a NO bid at q with p + q > 1 would have matched: the book is inverted
        issues.append(QualityIssue(
            "crossed_book", ticker, f"{ticker}: inverted book: yes_bid {yes_bid} + no_bid {no_bid} > 1", "high",
            {"yes_bid": str(yes_bid), "no_bid": str(no_bid)},
        ))
    if event_time is not None and received_at is not None:
        age = (received_at - event_time).total_seconds()
        if age > max_age_seconds:
            issues.append(QualityIssue(
                "stale_price", ticker, f"{ticker}: price update is {age:.0f} s old (limit {max_age_seconds:.0f} s)",
                "medium", {"age_seconds": round(age, 3), "limit_seconds": max_age_seconds},
            ))
    return issues


def game_regressions(previous: GameState, new: GameState) -> list[QualityIssue]:
    """Scores that go down and periods/status that go backwards, compared with the last accepted state."""
    issues: list[QualityIssue] = []
    gid = new.game_id
    for side in ("home", "away"):
        before, after = getattr(previous, f"{side}_score"), getattr(new, f"{side}_score")
        if after < before:
            issues.append(QualityIssue(
                "score_decrease", gid,
                f"{new.sport} game {gid} ({new.short_name}): {side} score went down {before} -> {after}", "high",
                {"side": side, "before": before, "after": after},
            ))
    status_back = _STATUS_ORDER.get(new.status, 0) < _STATUS_ORDER.get(previous.status, 0)
    period_back = new.period < previous.period and new.status != "final"
    if status_back or period_back:
        issues.append(QualityIssue(
            "period_backwards", gid,
            f"{new.sport} game {gid} ({new.short_name}): went backwards"
            f" {previous.status} P{previous.period} -> {new.status} P{new.period}", "high",
            {"before": {"status": previous.status, "period": previous.period},
             "after": {"status": new.status, "period": new.period}},
        ))
    return issues


class GameStateGate:
    """Admits game states in order; holds back regressions (fall back to last known state) until confirmed."""

    def __init__(self, monitor: DataQualityMonitor) -> None:
        self.monitor = monitor
        self.accepted: dict[str, GameState] = {}
        self._pending: dict[str, tuple[tuple[Any, ...], int]] = {}

    def seed(self, states: Iterable[GameState]) -> None:
        """Start from the states already stored (so a restart does not re-check from nothing)."""
        for state in states:
            self.accepted[state.game_id] = state

    def admit(self, new: GameState) -> GameState | None:
        """The state to store, or None when it is rejected (or unchanged)."""
        previous = self.accepted.get(new.game_id)
        if previous is None:
            self.accepted[new.game_id] = new
            return new
        issues = game_regressions(previous, new)
        if not issues:
            self._pending.pop(new.game_id, None)
            if previous.metadata.get("corrected") and _same_reading(_uncorrected(previous), new):
                return previous  # the correction read again: no change, its marker stays
            self.accepted[new.game_id] = new
            return new
        key = new.state_key()
        seen_key, count = self._pending.get(new.game_id, (None, 0))
        count = count + 1 if seen_key == key else 1
        self._pending[new.game_id] = (key, count)
        if count == 1:
            self.monitor.report(issues)  # alert once per distinct regressive reading
        if count < self.monitor.limits.confirm_after:
            return None
        self._pending.pop(new.game_id, None)
        corrected = GameState(**{**_fields(new), "metadata": {**new.metadata, "corrected": True,
                                                             "corrected_checks": [i.check for i in issues]}})
        self.accepted[new.game_id] = corrected
        if self.monitor.alerts is not None:
            self.monitor.alerts.raise_alert(
                "data_quality", "medium", self.monitor.component,
                f"{new.sport} game {new.game_id} ({new.short_name}): accepted as a correction after"
                f" {count} identical readings",
                {"checks": [i.check for i in issues], "game_id": new.game_id},
                dedup_key=f"data_quality:correction:{new.game_id}", category="data",
            )
        return corrected


def _fields(state: GameState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__dataclass_fields__}


_CORRECTION_MARKERS = ("corrected", "corrected_checks")


def _uncorrected(state: GameState) -> GameState:
    metadata = {k: v for k, v in state.metadata.items() if k not in _CORRECTION_MARKERS}
    return GameState(**{**_fields(state), "metadata": metadata})


def _same_reading(a: GameState, b: GameState) -> bool:
    # compared as game_states stores them, so a correction restored from the database still matches
    return change_key(a) == change_key(b)
