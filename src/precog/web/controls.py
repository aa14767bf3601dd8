"""The dashboard's write actions, each delegated to the module that owns the rule it must respect.

alerts: precog.alerts.store (acknowledge -> resolve lifecycle) and precog.alerts.silences;
trading state and breakers: the breaker board of precog.trading.scan.board_for over the shared PostgreSQL
stores, so a halt from the dashboard is the same `manual` breaker trip as `precog halt`, seen by every engine;
methods: precog.trading.methods.transition (activation rules, audit trail);
models: precog.forecast.registry.transition (the lifecycle rules and audit trail);
strategies: precog.trading.strategies.transition (the lifecycle rules and audit trail);
entry approvals: precog.trading.approvals.decide (pending only, answered once), as `precog approvals`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psycopg

from precog.alerts import silences as alert_silences
from precog.alerts import store as alert_store
from precog.alerts.api import AlertRaiser
from precog.alerts.model import AlertRecord
from precog.forecast import registry
from precog.trading import approvals as entry_approvals
from precog.trading import methods as method_registry
from precog.trading import strategies as strategy_registry
from precog.trading.breakers import SPECS, BreakerBoard, BreakerError
from precog.trading.scan import board_for
from precog.trading.settings import TradingSettings
from precog.trading.trading_state import TradingStateSnapshot

Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]

MANUAL_BREAKER = "manual"


class ControlError(ValueError):
    """A refused action (bad input or a state that does not allow it); the message says why."""


class NotFound(LookupError):
    """The thing the action names does not exist."""


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- alerts

def acknowledge_alert(connect: Connect, alert_id: int, by: str, notes: str | None) -> AlertRecord:
    with connect() as conn:
        return alert_store.acknowledge(conn, alert_id, by, notes, _now())


def resolve_alert(connect: Connect, alert_id: int, by: str, action: str, notes: str | None) -> AlertRecord:
    with connect() as conn:
        return alert_store.resolve(conn, alert_id, by, action, notes, _now())


def silence_alert(connect: Connect, alert_id: int, by: str, duration: str, comment: str,
                  match: tuple[str, ...] = ("type", "component")) -> alert_silences.Silence:
    """Silence further alerts like this one (same type and component by default) for `duration`."""
    span = alert_silences.parse_duration(duration)
    with connect() as conn:
        alert = alert_store.get_alert(conn, alert_id)
        values = {"type": alert.alert_type, "component": alert.component, "severity": alert.severity}
        unknown = [m for m in match if m not in values]
        if unknown or not match:
            raise ControlError(f"match must name some of type, component, severity (got {', '.join(match) or 'none'})")
        matchers = alert_silences.parse_matchers([f"{m}={values[m]}" for m in match])
        return alert_silences.add_silence(conn, matchers, starts_at=_now(), duration=span, created_by=by,
                                          comment=comment)


def expire_silence(connect: Connect, silence_id: int, by: str) -> alert_silences.Silence:
    with connect() as conn:
        return alert_silences.expire_silence(conn, silence_id, by=by, now=_now())


# ---------------------------------------------------------------- trading state and breakers
# The same breaker board as `precog halt / resume / breakers reset` (precog.trading.scan.board_for), so a
# halt from the dashboard is the `manual` breaker every engine process sees, with the same rules.

def _board(connect: Connect, settings: TradingSettings, environment: str | None,
           alerts: AlertRaiser | None) -> BreakerBoard:
    return board_for(connect, settings, alerts=alerts, environment=environment)


def halt(connect: Connect, settings: TradingSettings, environment: str | None, alerts: AlertRaiser | None,
         *, by: str, reason: str) -> TradingStateSnapshot:
    """Trip the `manual` breaker: trading HALTED until an operator resumes it (a critical alert is raised)."""
    board = _board(connect, settings, environment, alerts)
    if board.trip(MANUAL_BREAKER, reason, by=by, trigger_value={"manual": True, "via": "dashboard"}) is None:
        raise ControlError("trading is already halted by hand (resume it first)")
    return board.current()


def resume(connect: Connect, settings: TradingSettings, environment: str | None, *, by: str, notes: str,
           reset_all: bool = False) -> tuple[TradingStateSnapshot, list[str]]:
    """Reset the `manual` breaker, as `precog resume`: refused (changing nothing) while other breakers still
    block trading, unless `reset_all` resets them too. Returns the new state and the breakers reset."""
    board = _board(connect, settings, environment, None)
    others = [b.name for b in board.open_breakers() if b.name != MANUAL_BREAKER and b.action != "alert"]
    if others and not reset_all:
        raise ControlError(f"trading stays {board.current().mode.value}: open breakers {', '.join(others)}; reset "
                           "them first, or resume with the other breakers reset too")
    names = [b.name for b in board.open_breakers()] if reset_all else [MANUAL_BREAKER]
    done = board.reset_many(names, by=by, notes=notes)
    if not done:
        raise ControlError("trading is not halted by hand (nothing to resume)")
    return board.current(), done


def reset_breaker(connect: Connect, settings: TradingSettings, environment: str | None, name: str, *, by: str,
                  notes: str) -> TradingStateSnapshot:
    if name not in SPECS:
        raise ControlError(f"unknown breaker {name!r} (known: {', '.join(SPECS)})")
    board = _board(connect, settings, environment, None)
    try:
        reset = board.reset(name, by=by, notes=notes)
    except BreakerError as exc:
        raise ControlError(str(exc)) from exc
    if not reset:
        raise ControlError(f"breaker {name} is not open")
    return board.current()


# ---------------------------------------------------------------- models

def transition_model(connect: Connect, model_id: int, target: str, *, by: str, reason: str | None) -> dict[str, Any]:
    with connect() as conn:
        row = conn.execute("SELECT model_name, model_version FROM probability_models WHERE model_id = %s",
                           (model_id,)).fetchone()
        if row is None:
            raise NotFound(f"model {model_id} does not exist")
        record = registry.transition(conn, f"{row[0]}@{row[1]}", target, reason=reason, changed_by=by)
    return {"model_id": record.model_id, "model_name": record.model_name, "model_version": record.model_version,
            "status": record.status}


# ---------------------------------------------------------------- methods

def transition_method(connect: Connect, method_id: int, target: str, *, by: str, reason: str | None,
                      activation: method_registry.ActivationRules | None) -> dict[str, Any]:
    with connect() as conn:
        row = conn.execute("SELECT method_name, method_version FROM methods WHERE method_id = %s",
                           (method_id,)).fetchone()
        if row is None:
            raise NotFound(f"method {method_id} does not exist")
        record = method_registry.transition(conn, f"{row[0]}@{row[1]}", target, by=by, reason=reason,
                                            activation=activation)
    return {"method_id": record.method_id, "status": record.status}


# ---------------------------------------------------------------- strategies

def transition_strategy(connect: Connect, strategy_id: int, target: str, *, by: str, reason: str | None,
                        activation: strategy_registry.StrategyActivationRules | None = None) -> dict[str, Any]:
    with connect() as conn:
        row = conn.execute("SELECT strategy_name, strategy_version FROM strategies WHERE strategy_id = %s",
                           (strategy_id,)).fetchone()
        if row is None:
            raise NotFound(f"strategy {strategy_id} does not exist")
        record = strategy_registry.transition(conn, f"{row[0]}@{row[1]}", target, by=by, reason=reason,
                                              activation=activation)
    return {"strategy_id": record["strategy_id"], "strategy_name": record["strategy_name"],
            "strategy_version": record["strategy_version"], "status": record["status"]}


# ---------------------------------------------------------------- entry approvals

def decide_approval(connect: Connect, approval_id: int, *, approve: bool, by: str,
                    reason: str | None) -> dict[str, Any]:
    """Approve or reject a pending entry through the store `precog approvals` uses (its rules, its messages):
    an unknown id is NotFound, a row already answered (or expired, or sent) a ControlError."""
    with connect() as conn:
        try:
            return entry_approvals.decide(conn, approval_id, approve=approve, by=by, reason=reason)
        except entry_approvals.ApprovalDecisionError as exc:
            # the store says why in one message; whether the row exists picks 404 or 409
            conn.rollback()
            found = conn.execute("SELECT 1 FROM entry_approvals WHERE approval_id = %s", (approval_id,)).fetchone()
            raise (ControlError if found else NotFound)(str(exc)) from exc
