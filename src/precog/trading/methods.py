"""Methods (spec 8.1, ADR-021): immutable bundles of a strategy version, a model version and the position,
risk, execution and sport configs that trade them.

* create from a template (`method_templates`) with `section.key=value` overrides, validated, hashed (MD5 of
  canonical JSON of {strategy_id, model_id, position_mgmt, risk, execution, sport}); an identical bundle
  already stored under another name is refused (duplicate detection).
* lifecycle: draft -> testing -> active -> inactive -> deprecated. Activation only from testing, with at
  least N closed paper trades and a paper ROI above the minimum (trade_strategies.yaml `methods.activation`;
  0: a positive ROI, REQ-METH-006). Deprecated is terminal. Automatic deprecation: win rate below 50% over
  30 days, or ROI below -10%, each judged from at least `min_trades` closed trades (paper + live trading;
  backtests count in no lifecycle rule); the trading loop applies it to the methods it trades (at start, every
  `check_interval_minutes` and after a close), `precog methods auto-deprecate` to every method.
  Every change is recorded in `method_status_changes`.
* JSON export/import naming the strategy and model by name+version, so a method moves between databases.
* A/B comparison: every differing setting and both records, with Fisher's exact test on the win rates.
* A/B capital split between active methods: explicit shares, or automatically the newest active method
  gets `ab_testing.new_share` (0.30) and the others share `existing_share` (0.70).
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.domain.jsonutil import canonical
from precog.domain.money import ONE, ZERO
from precog.trading.method_config import MethodRuntime
from precog.trading.normalize import normalized_for_hash

# used with fullmatch: ASCII digits only (Python's \d takes any script's digits, which the database CHECK refuses)
# and no trailing newline (`$` would accept one)
VERSION_RE = re.compile(r"v[0-9]+\.[0-9]+")
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
SECTIONS: dict[str, str] = {
    "position_mgmt": "position_mgmt_config",
    "risk": "risk_config",
    "execution": "execution_config",
    "sport": "sport_config",
}
STATUSES = ("draft", "testing", "active", "inactive", "deprecated")
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"testing", "deprecated"}),
    "testing": frozenset({"active", "deprecated"}),
    "active": frozenset({"inactive", "deprecated"}),
    "inactive": frozenset({"testing", "deprecated"}),
    "deprecated": frozenset(),
}
SPORT_KEYS = frozenset({"enabled", "kelly_fraction_override", "min_volume", "max_spread"})
# the keys each section may hold: what the risk manager, the planner and the exit rules read (spec 8.1 shapes)
RISK_KEYS = frozenset({"kelly_fraction", "max_position_size_dollars", "max_total_exposure_dollars",
                       "max_correlated_exposure_dollars", "min_edge_threshold", "daily_loss_limit_dollars",
                       "circuit_breakers"})
BREAKER_KEYS = frozenset({"consecutive_losses", "rapid_loss_dollars", "rapid_loss_minutes"})
EXECUTION_KEYS = frozenset({"algorithm", "default_order_type", "max_slippage_percent", "partial_fills",
                            "order_timeout_seconds"})
# Spec 8.1 keys nothing here acts on: refused with the reason (a stored setting that changes nothing would
# mislead whoever reads the method), never stored and ignored. `sport.*` stands for any sport.
UNSUPPORTED_KEYS: dict[str, str] = {
    "execution.advanced_params": "not supported: there is one entry algorithm (simple_limit)",
    "sport.*.time_restrictions": (
        "not supported: when a method may enter is its strategy's window (trade_strategies.yaml, e.g. "
        "pre_game_entry min_hours_before_start / max_hours_before_start) and the market filters (markets.yaml "
        "global_filters.min_hours_to_close)"),
}
EXPORT_FORMAT = "precog.method/v1"
_DEC = re.compile(r"^-?\d+(\.\d+)?$")


class MethodError(ValueError):
    """A refused method operation; the message names the method, field or rule."""


@dataclass(frozen=True, slots=True)
class ActivationRules:
    min_paper_trades: int = 10  # closed (or settled) paper positions, at least
    min_paper_roi: Decimal = ZERO  # the paper ROI must be strictly above it: 0 = a positive ROI (REQ-METH-006)


@dataclass(frozen=True, slots=True)
class DeprecationRules:
    window_days: int = 30
    min_win_rate: Decimal = Decimal("0.50")
    min_roi: Decimal = Decimal("-0.10")
    # the fewest closed trades either rule judges: the window's for the win rate, all of them for the ROI (one
    # losing trade is no evidence, and deprecation is final)
    min_trades: int = 10
    check_interval_minutes: int = 60  # how often a running trading loop applies the rules (its clock)


def rules_from_config(cfg: Any) -> tuple[ActivationRules, DeprecationRules]:
    act = cfg.get("trade_strategies.methods.activation")
    dep = cfg.get("trade_strategies.methods.auto_deprecation")
    return (ActivationRules(int(act["min_paper_trades"]), Decimal(str(act["min_paper_roi"]))),
            DeprecationRules(int(dep["window_days"]), Decimal(str(dep["min_win_rate"])),
                             Decimal(str(dep["min_roi"])), int(dep["min_trades"]),
                             int(dep.get("check_interval_minutes", 60))))


@dataclass(frozen=True, slots=True)
class MethodRecord:
    method_id: int
    name: str
    version: str
    status: str
    strategy_id: int
    strategy: str  # name@version
    model_id: int
    model: str
    template: str | None
    position_mgmt: dict[str, Any]
    risk: dict[str, Any]
    execution: dict[str, Any]
    sport: dict[str, Any]
    config_hash: str
    capital_share: Decimal | None
    activated_at: datetime | None
    deactivated_at: datetime | None
    paper_trades_count: int
    live_trades_count: int
    paper_roi: Decimal | None
    live_roi: Decimal | None
    paper_win_rate: Decimal | None
    live_win_rate: Decimal | None
    win_rate: Decimal | None
    sharpe_ratio: Decimal | None
    total_trades: int
    description: str | None
    created_by: str | None
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def configs(self) -> dict[str, dict[str, Any]]:
        return {"position_mgmt": self.position_mgmt, "risk": self.risk, "execution": self.execution,
                "sport": self.sport}

    def runtime(self, capital_share: Decimal | None = None) -> MethodRuntime:
        return MethodRuntime.from_configs(
            method_id=self.method_id, name=self.name, version=self.version, status=self.status,
            risk_config=self.risk, sport_config=self.sport, execution_config=self.execution,
            capital_share=capital_share if capital_share is not None else self.capital_share)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method_id": self.method_id, "ref": self.ref, "name": self.name, "version": self.version,
            "status": self.status, "strategy": self.strategy, "model": self.model, "template": self.template,
            "config_hash": self.config_hash, "capital_share": self.capital_share,
            "activated_at": self.activated_at, "deactivated_at": self.deactivated_at,
            "paper_trades_count": self.paper_trades_count, "live_trades_count": self.live_trades_count,
            "paper_roi": self.paper_roi, "live_roi": self.live_roi, "paper_win_rate": self.paper_win_rate,
            "live_win_rate": self.live_win_rate, "win_rate": self.win_rate, "sharpe_ratio": self.sharpe_ratio,
            "total_trades": self.total_trades, "description": self.description, "created_by": self.created_by,
            "created_at": self.created_at,
            "position_mgmt_config": self.position_mgmt, "risk_config": self.risk,
            "execution_config": self.execution, "sport_config": self.sport,
        }


_SELECT = (
    "SELECT me.*, s.strategy_name || '@' || s.strategy_version AS strategy_ref,"
    " m.model_name || '@' || m.model_version AS model_ref, t.template_name"
    " FROM methods me JOIN strategies s ON s.strategy_id = me.strategy_id"
    " JOIN probability_models m ON m.model_id = me.model_id"
    " LEFT JOIN method_templates t ON t.template_id = me.template_id"
)


def _record(r: Mapping[str, Any]) -> MethodRecord:
    return MethodRecord(
        method_id=r["method_id"], name=r["method_name"], version=r["method_version"], status=r["status"],
        strategy_id=r["strategy_id"], strategy=r["strategy_ref"], model_id=r["model_id"], model=r["model_ref"],
        template=r["template_name"], position_mgmt=dict(r["position_mgmt_config"] or {}),
        risk=dict(r["risk_config"] or {}), execution=dict(r["execution_config"] or {}),
        sport=dict(r["sport_config"] or {}), config_hash=r["config_hash"], capital_share=r["capital_share"],
        activated_at=r["activated_at"], deactivated_at=r["deactivated_at"],
        paper_trades_count=r["paper_trades_count"], live_trades_count=r["live_trades_count"],
        paper_roi=r["paper_roi"], live_roi=r["live_roi"], paper_win_rate=r["paper_win_rate"],
        live_win_rate=r["live_win_rate"], win_rate=r["win_rate"], sharpe_ratio=r["sharpe_ratio"],
        total_trades=r["total_trades"], description=r["description"], created_by=r["created_by"],
        created_at=r["created_at"])


def _rows(conn: Any, where: str = "", params: Sequence[Any] = ()) -> list[MethodRecord]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_SELECT + where, params)
        return [_record(r) for r in cur.fetchall()]


def parse_ref(ref: str, what: str = "method") -> tuple[str, str | None]:
    """`name@vX.Y` -> (name, version); `name` -> (name, None)."""
    name, _, version = ref.strip().partition("@")
    if not name or not NAME_RE.fullmatch(name):
        raise MethodError(f"{what} {ref!r}: expected NAME@vX.Y")
    if version and not VERSION_RE.fullmatch(version):
        raise MethodError(f"{what} {ref!r}: version {version!r} must look like v1.0")
    return name, version or None


def get_method(conn: Any, ref: str) -> MethodRecord:
    name, version = parse_ref(ref)
    if version is None:
        found = _rows(conn, " WHERE me.method_name = %s", (name,))
        if not found:
            raise MethodError(f"no method named {name!r} (see `precog methods list`)")
        return max(found, key=lambda m: _version_key(m.version))
    found = _rows(conn, " WHERE me.method_name = %s AND me.method_version = %s", (name, version))
    if not found:
        raise MethodError(f"no method {name}@{version} (see `precog methods list`)")
    return found[0]


def list_methods(conn: Any, status: str | None = None) -> list[MethodRecord]:
    if status is not None:
        if status not in STATUSES:
            raise MethodError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        return _rows(conn, " WHERE me.status = %s ORDER BY me.method_name, me.method_version", (status,))
    return _rows(conn, " ORDER BY me.method_name, me.method_version")


def _version_key(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")
    return int(major), int(minor)


# ---------------------------------------------------------------- configs: overrides, validation, hash
def parse_override(text: str) -> tuple[str, tuple[str, ...], str]:
    """`risk.kelly_fraction=0.2` -> ("risk", ("kelly_fraction",), "0.2")."""
    path, sep, value = text.partition("=")
    if not sep:
        raise MethodError(f"--set {text!r}: expected SECTION.KEY=VALUE (e.g. risk.kelly_fraction=0.20)")
    parts = tuple(p.strip() for p in path.strip().split("."))
    if len(parts) < 2 or not all(parts):
        raise MethodError(f"--set {text!r}: expected SECTION.KEY=VALUE (e.g. risk.kelly_fraction=0.20)")
    section = parts[0]
    if section not in SECTIONS:
        raise MethodError(f"--set {text!r}: unknown section {section!r} (one of: {', '.join(SECTIONS)})")
    return section, parts[1:], value.strip()


def _coerce(text: str, existing: Any, where: str) -> Any:
    low = text.lower()
    if isinstance(existing, bool) or (existing is None and low in ("true", "false")):
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise MethodError(f"{where}: {text!r} is not true/false")
    if isinstance(existing, int):
        try:
            return int(text)
        except ValueError:
            raise MethodError(f"{where}: {text!r} is not a whole number") from None
    if isinstance(existing, str) and _DEC.match(existing.strip()):
        if not _DEC.match(text):
            raise MethodError(f"{where}: {text!r} is not a decimal number")
        return text
    if existing is None:
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if _DEC.match(text):
            return text
    if isinstance(existing, dict | list):
        raise MethodError(f"{where} is a group of settings; set one of its keys instead")
    return text


def unsupported_reason(section: str, path: tuple[str, ...]) -> str | None:
    """Why `section.path...` is refused (UNSUPPORTED_KEYS), or None."""
    for i in range(1, len(path) + 1):
        head = path[:i]
        reason = UNSUPPORTED_KEYS.get(".".join((section, *head)))
        if reason is None and section == "sport" and len(head) >= 2:
            reason = UNSUPPORTED_KEYS.get(".".join((section, "*", *head[1:])))
        if reason is not None:
            return reason
    return None


def apply_overrides(configs: Mapping[str, Mapping[str, Any]], overrides: Iterable[str]) -> dict[str, dict[str, Any]]:
    """A deep copy of `configs` with each `section.key=value` applied. Unknown keys are refused (typos),
    except new sports and their known keys under `sport`."""
    out = {k: copy.deepcopy(dict(v)) for k, v in configs.items()}
    for text in overrides:
        section, path, value = parse_override(text)
        node: dict[str, Any] = out.setdefault(section, {})
        where = f"{section}.{'.'.join(path)}"
        reason = unsupported_reason(section, path)
        if reason is not None:
            raise MethodError(f"--set {where}: {reason}")
        hedge_key = _hedge_override(section, path)
        for i, key in enumerate(path[:-1]):
            if key not in node:
                if (section == "sport" and i == 0) or hedge_key:
                    node[key] = {}
                else:
                    raise MethodError(f"--set {where}: {'.'.join(path[:i + 1])!r} does not exist in {section} "
                                      f"(known: {', '.join(sorted(node)) or 'none'})")
            if not isinstance(node[key], dict):
                raise MethodError(f"--set {where}: {key!r} is a value, not a group")
            node = node[key]
        leaf = path[-1]
        if leaf not in node:
            new_sport_key = section == "sport" and len(path) == 2 and leaf in SPORT_KEYS
            # an execution setting a template may leave out (order_timeout_seconds: the global timeout otherwise)
            new_execution_key = section == "execution" and len(path) == 1 and leaf in EXECUTION_KEYS
            if not (new_sport_key or new_execution_key or hedge_key):
                raise MethodError(f"--set {where}: unknown key {leaf!r} (known here: {', '.join(sorted(node)) or 'none'})")
        node[leaf] = _coerce(value, node.get(leaf), where)
    return out


def _hedge_override(section: str, path: tuple[str, ...]) -> bool:
    """A key of the spec 5.11 hedge a method may set although its template has none (`position_mgmt.hedge.enabled`,
    `position_mgmt.hedge.triggers.<key>`, `position_mgmt.hedge.sizing.<key>`)."""
    from precog.trading.exits import HEDGE_SIZING_RANGES, HEDGE_TRIGGER_RANGES

    if section != "position_mgmt" or not path or path[0] != "hedge":
        return False
    rest = path[1:]
    return rest == ("enabled",) or (len(rest) == 2 and (
        (rest[0] == "triggers" and rest[1] in HEDGE_TRIGGER_RANGES)
        or (rest[0] == "sizing" and rest[1] in ("method", *HEDGE_SIZING_RANGES))))


def _dec(value: Any, where: str, problems: list[str]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        problems.append(f"{where}: {value!r} must be a decimal string")
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        problems.append(f"{where}: {value!r} is not a number")
        return None
    if not d.is_finite():
        problems.append(f"{where}: {value!r} is not finite")
        return None
    return d


def _range(value: Any, where: str, lo: str, hi: str, problems: list[str]) -> None:
    d = _dec(value, where, problems)
    if d is not None and not (Decimal(lo) <= d <= Decimal(hi)):
        problems.append(f"{where} = {value} is outside the allowed range [{lo}, {hi}]")


def _whole(value: Any, where: str, lo: int, hi: int, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        problems.append(f"{where} = {value!r} must be a whole number in the allowed range [{lo}, {hi}]")


CONFIDENCE_LEVEL_KEYS = ("high_confidence", "medium_confidence", "low_confidence")
# Allowed ranges, inclusive: spec 4.1's safe ranges and absolute caps, the same as the global settings'
# (config/schema.py: trading.yaml kelly and account, position_management.yaml trailing_stop and exit_rules).
TRAILING_STOP_RANGES = {"activation_threshold": ("0.05", "0.20"), "initial_distance": ("0.02", "0.10"),
                        "tightening_rate": ("0.005", "0.02"), "floor_distance": ("0.01", "0.05")}
LEVEL_RANGES: dict[str, dict[str, tuple[str, str]]] = {
    # spec 4.1: stop loss high -0.05...-0.40, profit target high 0.10-0.50 (the global medium/low targets: >= 0.05)
    "stop_loss": dict.fromkeys(CONFIDENCE_LEVEL_KEYS, ("-0.40", "-0.05")),
    "profit_targets": {"high_confidence": ("0.10", "0.50"), "medium_confidence": ("0.05", "0.50"),
                       "low_confidence": ("0.05", "0.50")},
}
RISK_RANGES = {
    "kelly_fraction": ("0.05", "0.50"),
    "max_position_size_dollars": ("10", "5000"),  # spec 4.1: $10-$5,000
    "daily_loss_limit_dollars": ("0.01", "2000"),  # spec 4.1: the daily loss limit is at most $2,000
    "max_total_exposure_dollars": ("0", "1000000"),
    "max_correlated_exposure_dollars": ("0", "1000000"),
    "min_edge_threshold": ("0", "1"),
}


def validate_method(name: str, version: str, configs: Mapping[str, Mapping[str, Any]]) -> None:
    """Spec 8.1 rules plus allowed ranges; raises MethodError listing every problem, each naming the key, the
    value and the allowed range (the message names the method)."""
    problems: list[str] = []
    if not NAME_RE.fullmatch(name):
        problems.append(f"name {name!r} must start with a letter and use letters, digits, _ . -")
    if not VERSION_RE.fullmatch(version):
        problems.append(f"version {version!r} must match vMAJOR.MINOR (e.g. v1.0)")
    risk = configs.get("risk") or {}
    _check_position(configs.get("position_mgmt") or {}, problems)
    _check_risk(risk, problems)
    _check_execution(configs.get("execution") or {}, problems)
    _check_sports(configs.get("sport") or {}, problems)
    if name.lower().startswith("aggressive"):
        kelly = _dec(risk.get("kelly_fraction"), "risk.kelly_fraction", [])
        if kelly is not None and kelly < Decimal("0.20"):
            problems.append(f"method {name!r} is named aggressive but risk.kelly_fraction {kelly} < 0.20")
    if problems:
        raise MethodError(f"method {name}@{version} is invalid: " + "; ".join(problems))


def _check_position(pm: Mapping[str, Any], problems: list[str]) -> None:
    # required = present with a value: an imported `null` would leave the method on the global setting unannounced
    for key in ("trailing_stop", "profit_targets", "stop_loss"):
        if pm.get(key) is None:
            problems.append(f"position_mgmt.{key} is required")
        elif not isinstance(pm[key], Mapping):
            problems.append(f"position_mgmt.{key} must be a group of settings, not {pm[key]!r}")
    if "hedge" in pm:  # spec 5.11: the same keys and ranges as trade_strategies.yaml hedge_strategy
        from precog.trading.exits import HedgeRules

        try:
            HedgeRules.from_config(pm["hedge"], "position_mgmt.hedge")
        except ValueError as exc:
            problems.append(str(exc))
    ts_group = pm.get("trailing_stop")
    ts: Mapping[str, Any] = ts_group if isinstance(ts_group, Mapping) else {}
    for key, (lo, hi) in TRAILING_STOP_RANGES.items():
        if key in ts:
            _range(ts[key], f"position_mgmt.trailing_stop.{key}", lo, hi, problems)
    for section, ranges in LEVEL_RANGES.items():
        levels = pm.get(section)
        for level, value in (levels if isinstance(levels, Mapping) else {}).items():
            if level not in ranges:  # the exit rules read only these: another name would do nothing
                problems.append(f"position_mgmt.{section}.{level} is not a confidence level (one of "
                                f"{', '.join(CONFIDENCE_LEVEL_KEYS)})")
                continue
            _range(value, f"position_mgmt.{section}.{level}", *ranges[level], problems)


def _check_risk(risk: Mapping[str, Any], problems: list[str]) -> None:
    for key in ("kelly_fraction", "max_position_size_dollars"):
        if risk.get(key) is None:
            problems.append(f"risk.{key} is required")
    unknown = set(risk) - RISK_KEYS
    if unknown:
        problems.append(f"risk: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(RISK_KEYS))})")
    for key, (lo, hi) in RISK_RANGES.items():
        if risk.get(key) is not None:
            _range(risk[key], f"risk.{key}", lo, hi, problems)
    breakers = risk.get("circuit_breakers")
    if breakers is None:
        return
    if not isinstance(breakers, Mapping):
        problems.append(f"risk.circuit_breakers must be a group of settings, not {breakers!r}")
        return
    unknown = set(breakers) - BREAKER_KEYS
    if unknown:
        problems.append(f"risk.circuit_breakers: unknown key(s) {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(sorted(BREAKER_KEYS))})")
    # spec 4.1: 5 consecutive losses and $200 of rapid loss are the non-customizable breakers; a method's own
    # limits can only be tighter
    if "consecutive_losses" in breakers:
        _whole(breakers["consecutive_losses"], "risk.circuit_breakers.consecutive_losses", 1, 5, problems)
    if "rapid_loss_dollars" in breakers:
        _range(breakers["rapid_loss_dollars"], "risk.circuit_breakers.rapid_loss_dollars", "0.01", "200", problems)
    if "rapid_loss_minutes" in breakers:
        _whole(breakers["rapid_loss_minutes"], "risk.circuit_breakers.rapid_loss_minutes", 1, 1440, problems)


def _check_execution(execution: Mapping[str, Any], problems: list[str]) -> None:
    for key, value in execution.items():
        reason = unsupported_reason("execution", (str(key),))
        if reason is not None:
            problems.append(f"execution.{key} = {value!r}: {reason}")
        elif key not in EXECUTION_KEYS:
            problems.append(f"execution.{key} is not a method setting (known: {', '.join(sorted(EXECUTION_KEYS))})")
    algorithm = execution.get("algorithm")
    if algorithm == "dynamic_depth_walker":
        problems.append("execution.algorithm 'dynamic_depth_walker' is not supported: an entry is sent at the ask "
                        "(a limit order, or immediate-or-cancel within max_slippage_percent); the only algorithm is "
                        "simple_limit")
    elif algorithm not in (None, "simple_limit"):
        problems.append(f"execution.algorithm {algorithm!r} must be simple_limit")
    if execution.get("default_order_type") not in (None, "limit", "market"):
        problems.append(f"execution.default_order_type {execution.get('default_order_type')!r} must be limit or market")
    partial = execution.get("partial_fills")
    if partial is False:
        problems.append("execution.partial_fills = false is not supported: an entry keeps what fills (a resting "
                        "limit order can fill in parts, an immediate-or-cancel entry keeps its filled part); "
                        "the only value is true")
    elif partial not in (None, True):
        problems.append(f"execution.partial_fills = {partial!r} must be true")
    if "max_slippage_percent" in execution:
        # the method's limit on a market-style entry's price above the ask; trading.execution.max_slippage_pct
        # still caps it (a method only tightens)
        _range(execution["max_slippage_percent"], "execution.max_slippage_percent", "0", "0.10", problems)
    if "order_timeout_seconds" in execution:
        # how long the method's limit entries rest before they are canceled (the global
        # trading.execution.limit_order_timeout_seconds otherwise; the same range)
        _whole(execution["order_timeout_seconds"], "execution.order_timeout_seconds", 5, 3600, problems)


def _check_sports(sport: Mapping[str, Any], problems: list[str]) -> None:
    enabled = 0
    for sport_name, rule in sport.items():
        if not isinstance(rule, Mapping):
            problems.append(f"sport.{sport_name} must be a group of settings")
            continue
        for key in rule:
            reason = unsupported_reason("sport", (str(sport_name), str(key)))
            if reason is not None:
                problems.append(f"sport.{sport_name}.{key}: {reason}")
        unknown = {k for k in set(rule) - SPORT_KEYS if unsupported_reason("sport", (str(sport_name), str(k))) is None}
        if unknown:
            problems.append(f"sport.{sport_name}: unknown key(s) {', '.join(sorted(unknown))}")
        if not isinstance(rule.get("enabled", True), bool):
            problems.append(f"sport.{sport_name}.enabled must be true or false")
        elif rule.get("enabled", True):
            enabled += 1
        if "kelly_fraction_override" in rule:
            _range(rule["kelly_fraction_override"], f"sport.{sport_name}.kelly_fraction_override",
                   *RISK_RANGES["kelly_fraction"], problems)
        if "max_spread" in rule:
            _range(rule["max_spread"], f"sport.{sport_name}.max_spread", "0", "1", problems)
        if "min_volume" in rule and (not isinstance(rule["min_volume"], int) or rule["min_volume"] < 0):
            problems.append(f"sport.{sport_name}.min_volume must be a whole number >= 0")
    if enabled == 0:
        problems.append("at least one sport must be enabled (sport.<name>.enabled=true)")


def method_hash(strategy_id: int, model_id: int, configs: Mapping[str, Mapping[str, Any]]) -> str:
    """MD5 hex of canonical JSON of {strategy_id, model_id, position_mgmt, risk, execution, sport}."""
    payload = {"strategy_id": strategy_id, "model_id": model_id,
               **{k: normalized_for_hash(dict(configs.get(k) or {})) for k in SECTIONS}}
    return hashlib.md5(canonical(payload).encode(), usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------- create / import
def _strategy_id(conn: Any, ref: str) -> int:
    name, version = parse_ref(ref, "strategy")
    if version is None:
        rows = conn.execute("SELECT strategy_id, strategy_version FROM strategies WHERE strategy_name = %s",
                            (name,)).fetchall()
        if not rows:
            raise MethodError(f"strategy {name!r} not found (strategies come from trade_strategies.yaml: "
                              "run `precog edges scan` or `precog methods list` to sync them)")
        return int(max(rows, key=lambda r: _version_key(r[1]))[0])
    row = conn.execute("SELECT strategy_id FROM strategies WHERE strategy_name = %s AND strategy_version = %s",
                       (name, version)).fetchone()
    if row is None:
        raise MethodError(f"strategy {name}@{version} not found")
    return int(row[0])


def _model_id(conn: Any, ref: str) -> int:
    name, version = parse_ref(ref, "model")
    if version is None:
        rows = conn.execute("SELECT model_id, model_version FROM probability_models WHERE model_name = %s",
                            (name,)).fetchall()
        if not rows:
            raise MethodError(f"model {name!r} not found (see `precog models list`)")
        return int(max(rows, key=lambda r: _version_key(r[1]))[0])
    row = conn.execute("SELECT model_id FROM probability_models WHERE model_name = %s AND model_version = %s",
                       (name, version)).fetchone()
    if row is None:
        raise MethodError(f"model {name}@{version} not found (see `precog models list`)")
    return int(row[0])


def templates(conn: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT template_id, template_name, description, position_mgmt_config, risk_config,"
                    " execution_config, sport_config, usage_count FROM method_templates ORDER BY template_id")
        return list(cur.fetchall())


def _insert(conn: Any, *, name: str, version: str, strategy_id: int, model_id: int, template_id: int | None,
            configs: Mapping[str, Mapping[str, Any]], description: str | None, created_by: str | None,
            reason: str) -> MethodRecord:
    validate_method(name, version, configs)
    digest = method_hash(strategy_id, model_id, configs)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('precog.methods'))")
        same = conn.execute("SELECT config_hash FROM methods WHERE method_name = %s AND method_version = %s",
                            (name, version)).fetchone()
        if same is not None:
            if same[0] == digest:
                raise MethodError(f"method {name}@{version} already exists with this configuration")
            raise MethodError(f"method {name}@{version} already exists with a different configuration; method "
                              f"versions are immutable - create {name}@{_bump(version)} instead")
        dup = conn.execute("SELECT method_name || '@' || method_version FROM methods WHERE config_hash = %s",
                           (digest,)).fetchone()
        if dup is not None:
            raise MethodError(f"this configuration is identical to method {dup[0]} (config hash {digest}); a new "
                              "method must differ in strategy, model or a config value")
        row = conn.execute(
            "INSERT INTO methods (method_name, method_version, strategy_id, model_id, template_id, position_mgmt_config,"
            " risk_config, execution_config, sport_config, config_hash, status, description, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'draft', %s, %s) RETURNING method_id",
            (name, version, strategy_id, model_id, template_id, Jsonb(dict(configs["position_mgmt"])),
             Jsonb(dict(configs["risk"])), Jsonb(dict(configs["execution"])), Jsonb(dict(configs["sport"])),
             digest, description, created_by),
        ).fetchone()
        if template_id is not None:
            conn.execute("UPDATE method_templates SET usage_count = usage_count + 1 WHERE template_id = %s",
                         (template_id,))
        conn.execute("INSERT INTO method_status_changes (method_id, from_status, to_status, reason, changed_by)"
                     " VALUES (%s, NULL, 'draft', %s, %s)", (row[0], reason, created_by))
    return get_method(conn, f"{name}@{version}")


def _bump(version: str) -> str:
    major, minor = _version_key(version)
    return f"v{major}.{minor + 1}"


def create_method(conn: Any, *, template: str, name: str, version: str, strategy: str, model: str,
                  overrides: Iterable[str] = (), description: str | None = None,
                  created_by: str | None = None) -> MethodRecord:
    """A new draft method from `template` with `section.key=value` overrides."""
    found = [t for t in templates(conn) if t["template_name"] == template]
    if not found:
        names = ", ".join(t["template_name"] for t in templates(conn))
        raise MethodError(f"template {template!r} not found (one of: {names})")
    t = found[0]
    base = {"position_mgmt": t["position_mgmt_config"], "risk": t["risk_config"],
            "execution": t["execution_config"], "sport": t["sport_config"] or {}}
    configs = apply_overrides(base, overrides)
    return _insert(conn, name=name, version=version, strategy_id=_strategy_id(conn, strategy),
                   model_id=_model_id(conn, model), template_id=int(t["template_id"]), configs=configs,
                   description=description, created_by=created_by, reason=f"created from template {template}")


def export_method(conn: Any, ref: str) -> dict[str, Any]:
    m = get_method(conn, ref)
    s_name, s_version = m.strategy.split("@")
    mo_name, mo_version = m.model.split("@")
    return {
        "format": EXPORT_FORMAT, "method_name": m.name, "method_version": m.version,
        "strategy": {"name": s_name, "version": s_version}, "model": {"name": mo_name, "version": mo_version},
        "template": m.template, "description": m.description, "position_mgmt_config": m.position_mgmt,
        "risk_config": m.risk, "execution_config": m.execution, "sport_config": m.sport,
        "config_hash": m.config_hash, "status_at_export": m.status,
    }


def import_method(conn: Any, data: Any, *, created_by: str | None = None, source: str = "file"
                  ) -> tuple[MethodRecord, bool]:
    """Create the exported method here (as draft). Returns (record, created); an identical existing
    method is returned with created=False."""
    if not isinstance(data, dict):
        raise MethodError(f"{source}: a method export is a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise MethodError(f"{source}: field 'format' must be {EXPORT_FORMAT!r} (got {data.get('format')!r})")
    for key in ("method_name", "method_version", "strategy", "model", "position_mgmt_config", "risk_config",
                "execution_config", "sport_config"):
        if key not in data:
            raise MethodError(f"{source}: field {key!r} is missing")
    for key in ("strategy", "model"):
        ref = data[key]
        if not isinstance(ref, dict) or "name" not in ref or "version" not in ref:
            raise MethodError(f"{source}: field {key!r} must be {{\"name\": ..., \"version\": ...}}")
    for key in ("position_mgmt_config", "risk_config", "execution_config", "sport_config"):
        if not isinstance(data[key], dict):
            raise MethodError(f"{source}: field {key!r} must be a JSON object")
    name, version = str(data["method_name"]), str(data["method_version"])
    strategy_id = _strategy_id(conn, f"{data['strategy']['name']}@{data['strategy']['version']}")
    model_id = _model_id(conn, f"{data['model']['name']}@{data['model']['version']}")
    configs = {"position_mgmt": data["position_mgmt_config"], "risk": data["risk_config"],
               "execution": data["execution_config"], "sport": data["sport_config"]}
    digest = method_hash(strategy_id, model_id, configs)
    existing = conn.execute("SELECT config_hash FROM methods WHERE method_name = %s AND method_version = %s",
                            (name, version)).fetchone()
    if existing is not None and existing[0] == digest:
        return get_method(conn, f"{name}@{version}"), False
    try:  # the error names the file too: the setting to fix is in it
        validate_method(name, version, configs)
    except MethodError as exc:
        raise MethodError(f"{source}: {exc}") from None
    template_id = None
    if data.get("template"):
        row = conn.execute("SELECT template_id FROM method_templates WHERE template_name = %s",
                           (data["template"],)).fetchone()
        template_id = int(row[0]) if row else None
    record = _insert(conn, name=name, version=version, strategy_id=strategy_id, model_id=model_id,
                     template_id=template_id, configs=configs, description=data.get("description"),
                     created_by=created_by, reason=f"imported from {source}")
    return record, True


# ---------------------------------------------------------------- performance and lifecycle
@dataclass(frozen=True, slots=True)
class Performance:
    trades: int
    wins: int
    pnl: Decimal
    cost: Decimal
    roi: Decimal | None
    win_rate: Decimal | None
    sharpe: Decimal | None


def _q(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))


# The lifecycle rules judge the exact figures (P&L against cost, wins against trades), never the 4-place values
# stored and shown: a loss of $0.0001 on $50 is a loss although its ROI rounds to 0.0000.
def roi_exceeds(p: Performance, threshold: Decimal) -> bool:
    """ROI strictly above `threshold` (False with no cost: no record)."""
    return p.cost > ZERO and p.pnl > threshold * p.cost


def roi_below(p: Performance, threshold: Decimal) -> bool:
    return p.cost > ZERO and p.pnl < threshold * p.cost


def win_rate_below(p: Performance, threshold: Decimal) -> bool:
    return p.trades > 0 and Decimal(p.wins) < threshold * Decimal(p.trades)


# The trading record of a method: paper and live positions. A backtest's positions (mode 'backtest') replay it over
# history; they are reported by the backtest and count in none of its lifecycle rules or stored metrics.
TRADING_MODES = ("paper", "live")


# the owner column `performance` filters positions by (constant SQL fragments, never user input)
_OWNER_FILTERS = {"method": "method_id = %(id)s", "strategy": "strategy_id = %(id)s"}


def _closed_rows(conn: Any, method_id: int | None, strategy_id: int | None, mode: str | None,
                 since: datetime | None) -> list[tuple[str, Decimal | None, Decimal | None]]:
    """(mode, realized P&L, cost) of each closed/settled current position of the method or strategy version, in
    `mode` (None: paper and live, its trading record)."""
    if (method_id is None) == (strategy_id is None):
        raise ValueError("performance: give exactly one of method_id and strategy_id")
    owner, owner_id = ("method", method_id) if method_id is not None else ("strategy", strategy_id)
    return list(conn.execute(
        "SELECT mode, realized_pnl, entry_price * initial_quantity + fees FROM positions"  # noqa: S608 - constant fragment
        f" WHERE {_OWNER_FILTERS[owner]} AND row_current_ind AND status IN ('closed', 'settled')"
        " AND mode = ANY(%(modes)s)"
        " AND (%(since)s::timestamptz IS NULL OR COALESCE(exit_time, created_at) >= %(since)s::timestamptz)",
        {"id": owner_id, "modes": list(TRADING_MODES) if mode is None else [mode], "since": since}).fetchall())


def _summarize(rows: Sequence[tuple[Decimal | None, Decimal | None]]) -> Performance:
    """Count, wins, realized P&L, ROI on cost, win rate and Sharpe of (realized P&L, cost) rows."""
    trades = len(rows)
    pnl = sum((r[0] or ZERO for r in rows), ZERO)
    cost = sum((r[1] or ZERO for r in rows), ZERO)
    wins = sum(1 for r in rows if (r[0] or ZERO) > ZERO)
    roi = _q(pnl / cost) if cost > ZERO else None
    win_rate = _q(Decimal(wins) / Decimal(trades)) if trades else None
    sharpe = None
    returns = [(r[0] or ZERO) / r[1] for r in rows if r[1] and r[1] > ZERO]
    if len(returns) >= 2:
        mean = sum(returns, ZERO) / len(returns)
        var = sum(((x - mean) ** 2 for x in returns), ZERO) / (len(returns) - 1)
        if var > ZERO:
            sharpe = _q(mean / var.sqrt())
    return Performance(trades, wins, pnl, cost, roi, win_rate, sharpe)


def performance(conn: Any, method_id: int | None = None, *, strategy_id: int | None = None, mode: str | None = None,
                since: datetime | None = None) -> Performance:
    """Closed/settled positions (current rows) of the method - or, given `strategy_id` instead, of the strategy
    version - in `mode` (None: paper and live): count, wins, realized P&L, ROI on cost, win rate, Sharpe."""
    return _summarize([(r[1], r[2]) for r in _closed_rows(conn, method_id, strategy_id, mode, since)])


def performance_by_mode(conn: Any, method_id: int | None = None, *, strategy_id: int | None = None
                        ) -> tuple[Performance, Performance, Performance]:
    """(paper, live, paper + live) performance of the method or strategy version, from one query: what
    `performance(..., mode="paper")`, `mode="live"` and no mode give."""
    rows = _closed_rows(conn, method_id, strategy_id, None, None)
    return (_summarize([(r[1], r[2]) for r in rows if r[0] == "paper"]),
            _summarize([(r[1], r[2]) for r in rows if r[0] == "live"]),
            _summarize([(r[1], r[2]) for r in rows]))


def refresh_metrics(conn: Any, method_id: int) -> MethodRecord:
    """Recompute the stored paper/live metrics from the method's closed positions; the refreshed method."""
    store_metrics(conn, method_id)
    row = conn.execute("SELECT method_name || '@' || method_version FROM methods WHERE method_id = %s",
                       (method_id,)).fetchone()
    return get_method(conn, row[0])


def store_metrics(conn: Any, method_id: int) -> None:
    """Recompute the stored paper/live metrics from the method's closed positions (one UPDATE).

    Called whenever a paper/live position of the method closes or settles (`Portfolio.save`) and before an
    activation is judged, so the stored figures are those of its positions."""
    paper, live, total = performance_by_mode(conn, method_id)
    conn.execute(
        "UPDATE methods SET paper_trades_count = %s, live_trades_count = %s, paper_roi = %s, live_roi = %s,"
        " paper_win_rate = %s, live_win_rate = %s, win_rate = %s, paper_sharpe = %s, live_sharpe = %s,"
        " sharpe_ratio = %s, total_trades = %s WHERE method_id = %s",
        (paper.trades, live.trades, paper.roi, live.roi, paper.win_rate, live.win_rate, total.win_rate,
         paper.sharpe, live.sharpe, total.sharpe, total.trades, method_id))


def transition(conn: Any, ref: str, target: str, *, by: str, reason: str | None = None,
               activation: ActivationRules | None = None) -> MethodRecord:
    """Move a method along its lifecycle; refuses illegal moves and unearned activations."""
    if target not in STATUSES:
        raise MethodError(f"status {target!r} is not one of {', '.join(STATUSES)}")
    rules = activation or ActivationRules()
    with conn.transaction():
        m = get_method(conn, ref)
        conn.execute("SELECT 1 FROM methods WHERE method_id = %s FOR UPDATE", (m.method_id,))
        if m.status == target:
            raise MethodError(f"method {m.ref} is already {target}")
        if target == "active" and m.status in ("draft", "inactive"):
            raise MethodError(f"method {m.ref} is {m.status}: activation is only allowed from testing "
                              f"(run `precog methods test {m.ref}` first)")
        if target not in TRANSITIONS[m.status]:
            allowed = ", ".join(sorted(TRANSITIONS[m.status])) or "nothing (deprecated is final)"
            raise MethodError(f"method {m.ref} is {m.status}: it can move to {allowed}, not {target}")
        if target == "active":
            m = refresh_metrics(conn, m.method_id)
            paper = performance(conn, m.method_id, mode="paper")
            roi = m.paper_roi
            # REQ-METH-006: a positive paper ROI (spec 8.1 writes >= 0): breaking even shows no edge to bet on
            if paper.trades < rules.min_paper_trades or not roi_exceeds(paper, rules.min_paper_roi):
                raise MethodError(
                    f"method {m.ref} cannot be activated yet: {paper.trades} closed paper trades "
                    f"(need >= {rules.min_paper_trades}) with paper ROI {roi if roi is not None else 'n/a'} "
                    f"(need > {rules.min_paper_roi})")
        conn.execute(
            "UPDATE methods SET status = %s,"
            " activated_at = CASE WHEN %s = 'active' THEN now() ELSE activated_at END,"
            " deactivated_at = CASE WHEN %s IN ('inactive', 'deprecated') AND activated_at IS NOT NULL"
            " THEN now() ELSE deactivated_at END,"
            " capital_share = CASE WHEN %s = 'active' THEN capital_share ELSE NULL END"
            " WHERE method_id = %s",
            (target, target, target, target, m.method_id))
        conn.execute("INSERT INTO method_status_changes (method_id, from_status, to_status, reason, changed_by)"
                     " VALUES (%s, %s, %s, %s, %s)", (m.method_id, m.status, target, reason, by))
    return get_method(conn, m.ref)


def status_history(conn: Any, ref: str) -> list[dict[str, Any]]:
    m = get_method(conn, ref)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT from_status, to_status, reason, changed_by, changed_at FROM method_status_changes"
                    " WHERE method_id = %s ORDER BY changed_at, id", (m.method_id,))
        return list(cur.fetchall())


@dataclass(frozen=True, slots=True)
class Deprecation:
    """A method the automatic deprecation rules condemn: which rule, why, and the records judged."""

    method_id: int
    ref: str
    status: str  # its status when judged (testing or active)
    rule: str  # win_rate | roi
    reason: str
    recent: Performance  # its trading over the rules' window
    overall: Performance  # all its trading (paper + live)


def deprecations_due(conn: Any, rules: DeprecationRules | None = None, *, now: datetime | None = None,
                     method_ids: Iterable[int] | None = None) -> list[Deprecation]:
    """Testing/active methods (all, or those of `method_ids`) that break a rule: a win rate over the last
    `window_days` (closes at or after now - window_days) below min_win_rate, judged from >= min_trades closed
    trades there; or a ROI over all their trading (paper + live) below min_roi, judged from >= min_trades closed
    trades. The win-rate rule is named when both break."""
    rules = rules or DeprecationRules()
    since = (now or datetime.now().astimezone()) - timedelta(days=rules.window_days)
    if method_ids is None:
        candidates = _rows(conn, " WHERE me.status IN ('testing', 'active') ORDER BY me.method_name, me.method_version")
    else:
        candidates = _rows(conn, " WHERE me.status IN ('testing', 'active') AND me.method_id = ANY(%s)"
                                 " ORDER BY me.method_name, me.method_version", (sorted(set(method_ids)),))
    out: list[Deprecation] = []
    for m in candidates:
        recent = performance(conn, m.method_id, since=since)
        overall = performance(conn, m.method_id)
        if recent.trades >= rules.min_trades and win_rate_below(recent, rules.min_win_rate):
            out.append(Deprecation(m.method_id, m.ref, m.status, "win_rate",
                                   f"win rate {recent.win_rate} over the last {rules.window_days} days "
                                   f"({recent.trades} trades) < {rules.min_win_rate}", recent, overall))
        elif overall.trades >= rules.min_trades and roi_below(overall, rules.min_roi):
            out.append(Deprecation(m.method_id, m.ref, m.status, "roi",
                                   f"ROI {overall.roi} over {overall.trades} trades < {rules.min_roi}", recent, overall))
    return out


def deprecate_due(conn: Any, rules: DeprecationRules | None = None, *, now: datetime | None = None,
                  method_ids: Iterable[int] | None = None, by: str = "auto-deprecation") -> list[Deprecation]:
    """Deprecate every method `deprecations_due` finds (recorded in method_status_changes, changed_by `by`, the
    reason naming the rule). Returns the ones this call deprecated: a method deprecated meanwhile by someone
    else (the CLI, another loop) is left out."""
    done: list[Deprecation] = []
    for d in deprecations_due(conn, rules, now=now, method_ids=method_ids):
        try:
            transition(conn, d.ref, "deprecated", by=by, reason=d.reason)
        except MethodError:
            if get_method(conn, d.ref).status == "deprecated":
                continue  # deprecated since it was judged
            raise
        done.append(d)
    return done


def auto_deprecate(conn: Any, rules: DeprecationRules | None = None, *, now: datetime | None = None,
                   dry_run: bool = False, by: str = "auto-deprecation",
                   method_ids: Iterable[int] | None = None) -> list[tuple[str, str]]:
    """Apply the automatic deprecation rules (`deprecations_due`) to every testing/active method (or those of
    `method_ids`). Returns (method, reason) for each deprecated (dry_run: each that would be)."""
    if dry_run:
        return [(d.ref, d.reason) for d in deprecations_due(conn, rules, now=now, method_ids=method_ids)]
    return [(d.ref, d.reason) for d in deprecate_due(conn, rules, now=now, method_ids=method_ids, by=by)]


# ---------------------------------------------------------------- A/B capital split and comparison
def capital_split(conn: Any, *, existing_share: Decimal = Decimal("0.70"), new_share: Decimal = Decimal("0.30")
                  ) -> dict[str, Decimal]:
    """Share of the bankroll each active method trades with (sums to 1 when any method is active).

    Explicit shares (`precog methods split --set`) are kept; the rest of the capital goes to the others:
    one -> all of it; several -> the most recently activated gets new_share of it, the others split
    existing_share equally (each rounded down to 0.0001, the newest taking the rounding remainder, so the shares
    add up to exactly 1 and never to more). When every active method has an explicit share, capital they leave
    unassigned stays idle."""
    # the config schema does not check trade_strategies.yaml ab_testing: a negative share gave the newest method
    # more than the whole bankroll (existing -0.5 / new 1.5 -> 1.5) and two zeros crashed on 0 / 0
    if existing_share < ZERO or new_share < ZERO or existing_share + new_share <= ZERO:
        raise MethodError(f"trade_strategies.yaml ab_testing: existing_share {existing_share} and new_share "
                          f"{new_share} must be >= 0 and not both 0")
    active = sorted(list_methods(conn, "active"), key=lambda m: (m.activated_at or m.created_at, m.method_id))
    if not active:
        return {}
    explicit = {m.ref: m.capital_share for m in active if m.capital_share is not None}
    rest = [m for m in active if m.capital_share is None]
    remaining = ONE - sum(explicit.values(), ZERO)
    shares: dict[str, Decimal] = dict(explicit)  # type: ignore[arg-type]
    if len(rest) == 1:
        shares[rest[0].ref] = remaining
    elif rest:
        newest, older = rest[-1], rest[:-1]
        total = existing_share + new_share
        each = (remaining * existing_share / total / len(older)).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
        for m in older:
            shares[m.ref] = each
        shares[newest.ref] = remaining - each * len(older)
    return shares


def set_capital_split(conn: Any, shares: Mapping[str, Decimal] | None) -> dict[str, Decimal]:
    """Set explicit shares for active methods (None: back to the automatic split)."""
    with conn.transaction():
        if not shares:
            conn.execute("UPDATE methods SET capital_share = NULL WHERE capital_share IS NOT NULL")
            return capital_split(conn)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('precog.methods'))")
        for ref, share in shares.items():
            if not ZERO <= share <= ONE:
                raise MethodError(f"{ref}: share {share} must be within [0, 1]")
            m = get_method(conn, ref)
            if m.status != "active":
                raise MethodError(f"method {m.ref} is {m.status}; only active methods get capital")
            conn.execute("UPDATE methods SET capital_share = %s WHERE method_id = %s", (share, m.method_id))
        # the shares kept from earlier calls count too: together they must not commit more than the bankroll
        held = conn.execute("SELECT method_name || '@' || method_version, capital_share FROM methods"
                            " WHERE status = 'active' AND capital_share IS NOT NULL ORDER BY method_id").fetchall()
        total = sum((share for _, share in held), ZERO)
        if total > ONE:
            listed = ", ".join(f"{ref}={share}" for ref, share in held)
            raise MethodError(f"capital shares add up to {total} ({listed}); they must not exceed 1")
    return capital_split(conn)


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = obj


SIGNIFICANCE_LEVEL = Fraction(1, 20)  # a difference is claimed only when p < 0.05 (p exactly 0.05 is not enough)


def fisher_exact_p(w1: int, n1: int, w2: int, n2: int) -> Fraction | None:
    """Two-sided p-value of Fisher's exact test that two win rates (w1 of n1, w2 of n2) differ, as an exact
    fraction: the probability, given the total wins, of every split as unlikely as the observed one. Exact at
    any sample size (the normal approximation claimed 3 wins of 3 against 0 of 3 significant: p 0.014, exactly
    0.1). None without trades on both sides, or when every trade won or every trade lost (nothing to compare)."""
    wins, total = w1 + w2, n1 + n2
    if n1 == 0 or n2 == 0 or wins in (0, total):
        return None
    lo, hi = max(0, wins - n2), min(n1, wins)
    # weights comb(n1, a) * comb(n2, wins - a) for a = lo..hi, by exact integer recurrence
    weights = [math.comb(n1, lo) * math.comb(n2, wins - lo)]
    for a in range(lo, hi):
        weights.append(weights[-1] * (n1 - a) * (wins - a) // ((a + 1) * (n2 - wins + a + 1)))
    observed = weights[w1 - lo]
    return Fraction(sum(x for x in weights if x <= observed), math.comb(total, wins))


def compare_methods(conn: Any, a_ref: str, b_ref: str) -> dict[str, Any]:
    a, b = get_method(conn, a_ref), get_method(conn, b_ref)
    fa: dict[str, Any] = {"strategy": a.strategy, "model": a.model}
    fb: dict[str, Any] = {"strategy": b.strategy, "model": b.model}
    _flatten("", a.configs(), fa)
    _flatten("", b.configs(), fb)
    diffs = [{"key": k, "a": fa.get(k), "b": fb.get(k)}
             for k in sorted(set(fa) | set(fb))
             if normalized_for_hash(fa.get(k)) != normalized_for_hash(fb.get(k))]
    pa, pb = performance(conn, a.method_id), performance(conn, b.method_id)  # paper + live, not backtests
    p_value = fisher_exact_p(pa.wins, pa.trades, pb.wins, pb.trades)
    def perf(p: Performance) -> dict[str, Any]:
        return {"trades": p.trades, "wins": p.wins, "pnl": p.pnl, "roi": p.roi, "win_rate": p.win_rate,
                "sharpe": p.sharpe}
    return {
        "a": a.ref, "b": b.ref, "same_config_hash": a.config_hash == b.config_hash, "differences": diffs,
        "performance": {"a": perf(pa), "b": perf(pb)},
        "win_rate_test": "Fisher's exact test, two-sided",
        "win_rate_p_value": None if p_value is None else str(_q(Decimal(p_value.numerator) / p_value.denominator)),
        "significant_at_5pct": None if p_value is None else p_value < SIGNIFICANCE_LEVEL,
    }
