"""Exit conditions, the priority resolver, partial-exit stages, the hedge and exit pricing (spec §5.6, §5.8, §5.9,
§5.11).

Everything here is pure: a position's situation goes in, the triggers (and the price of each walk) come
out. The executor turns a decision into orders and `exit_attempts` rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from precog.domain.fees import DEFAULT_FEES, FeeSchedule
from precog.domain.money import CENT, ZERO, to_decimal

PRIORITY_RANK = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "LOW": 4}

# The 10 conditions of spec §5.6 and the hedge (§5.11), their priority and their order within a priority (§5.6
# table order; the hedge after the partial exit, so a due stage sells first and the hedge comes at a later check).
CONDITIONS: tuple[tuple[str, str], ...] = (
    ("stop_loss", "CRITICAL"), ("circuit_breaker", "CRITICAL"), ("trailing_stop", "HIGH"),
    ("time_based_urgent", "HIGH"), ("liquidity_dried_up", "HIGH"), ("profit_target", "MEDIUM"),
    ("partial_exit_target", "MEDIUM"), ("hedge", "MEDIUM"), ("early_exit", "LOW"), ("edge_disappeared", "LOW"),
    ("rebalance", "LOW"),
)
# the hedge is recorded on the position as a one-off stage of this name (executed_stages / stage_sold)
HEDGE_STAGE = "hedge"
PRIORITY_OF = dict(CONDITIONS)
_ORDER = {name: i for i, (name, _) in enumerate(CONDITIONS)}
MIN_PX = Decimal("0.01")
MAX_PX = Decimal("0.99")


@dataclass(frozen=True)
class PartialStage:
    name: str
    profit_threshold: Decimal
    exit_percentage: int


# spec 5.11 hedge_strategy keys and their allowed ranges: (low, low inclusive, high, high inclusive)
HEDGE_TRIGGER_RANGES: dict[str, tuple[Decimal, bool, Decimal, bool]] = {
    "unrealized_gain_pct": (ZERO, False, Decimal("10"), True),
    "edge_flip": (ZERO, False, Decimal("1"), True),
    "minutes_left": (ZERO, True, Decimal("1440"), True),
    "min_gain_dollars": (ZERO, True, Decimal("1000000"), True),
}
HEDGE_SIZING_RANGES: dict[str, tuple[Decimal, bool, Decimal, bool]] = {
    "lock_fraction": (ZERO, False, Decimal("1"), False),
}
HEDGE_METHODS = ("partial_lock",)


@dataclass(frozen=True)
class HedgeRules:
    """Spec 5.11 hedge_strategy (trade_strategies.yaml; a method's position_mgmt_config `hedge` overrides it): a
    winning position sells part of itself (on Kalshi a YES and a NO of one market net out, so a hedge IS a partial
    sale) when a trigger holds, enough to lock `lock_fraction` of its unrealized profit. Off unless configured."""

    enabled: bool = False
    unrealized_gain_pct: Decimal = Decimal("0.40")
    edge_flip: Decimal = Decimal("0.10")
    minutes_left: Decimal = Decimal("5")
    min_gain_dollars: Decimal = Decimal("50.00")
    lock_fraction: Decimal = Decimal("0.70")

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None, where: str = "trade_strategies.hedge_strategy",
                    base: HedgeRules | None = None) -> HedgeRules:
        """A hedge_strategy block (enabled, triggers.*, sizing.method / lock_fraction) over `base` (default: the
        spec's values, off); a key left out keeps the base's value. An unknown key, a value out of its range or
        of the wrong type is refused naming the key and the range."""
        from dataclasses import replace

        out = base or cls()
        if block is None:
            return out
        _known(block, ("enabled", "triggers", "sizing"), where)
        if "enabled" in block:
            if not isinstance(block["enabled"], bool):
                raise ValueError(f"{where}.enabled must be true or false, got {block['enabled']!r}")
            out = replace(out, enabled=block["enabled"])
        triggers = block.get("triggers", {})
        _known(triggers, tuple(HEDGE_TRIGGER_RANGES), f"{where}.triggers")
        sizing = block.get("sizing", {})
        _known(sizing, ("method", *HEDGE_SIZING_RANGES), f"{where}.sizing")
        if "method" in sizing and sizing["method"] not in HEDGE_METHODS:
            raise ValueError(f"{where}.sizing.method must be one of {', '.join(HEDGE_METHODS)}, got "
                             f"{sizing['method']!r}")
        values: dict[str, Any] = {k: _ranged(v, f"{where}.triggers.{k}", HEDGE_TRIGGER_RANGES[k])
                                   for k, v in triggers.items()}
        values.update({k: _ranged(v, f"{where}.sizing.{k}", HEDGE_SIZING_RANGES[k]) for k, v in sizing.items()
                       if k != "method"})
        return replace(out, **values)


def _ranged(value: Any, where: str, bounds: tuple[Decimal, bool, Decimal, bool]) -> Decimal:
    low, low_in, high, high_in = bounds
    allowed = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
    if isinstance(value, bool | float):
        raise ValueError(f"{where} must be a number in {allowed}, got {value!r}")
    try:
        number = to_decimal(value, field=where)
    except (ValueError, ArithmeticError, TypeError):
        raise ValueError(f"{where} must be a number in {allowed}, got {value!r}") from None
    if not number.is_finite() or (number < low if low_in else number <= low) \
            or (number > high if high_in else number >= high):
        raise ValueError(f"{where} = {value} is out of range: must be in {allowed}")
    return number


@dataclass(frozen=True)
class ExitRules:
    stop_loss: dict[str, Decimal]
    profit_target: dict[str, Decimal]
    time_based_urgent_seconds: int = 300
    liquidity_max_spread: Decimal = Decimal("0.03")
    liquidity_min_volume: int = 50
    early_exit_edge: Decimal = Decimal("0.02")
    edge_disappeared_edge: Decimal = ZERO
    partial_enabled: bool = True
    stages: tuple[PartialStage, ...] = ()
    hedge: HedgeRules = HedgeRules()

    @classmethod
    def from_config(cls, pm: Mapping[str, Any], hedge: Mapping[str, Any] | None = None) -> ExitRules:
        """From the position_management section (exit_rules + partial_exits) and trade_strategies' hedge_strategy
        block (`hedge`; None: no hedge). A key left out keeps the spec's value; a key this does not know (a typo,
        or the spec's `mandatory`/`discretionary` layout) is refused: ignoring it would trade on a threshold the
        operator did not set."""
        er = pm.get("exit_rules", {})
        pe = pm.get("partial_exits", {})
        where = "position_management.exit_rules"
        _known(er, _EXIT_RULE_KEYS, where)
        liq = er.get("liquidity", {})
        _known(liq, ("max_spread", "min_volume"), f"{where}.liquidity")
        stages = _stages(pe.get("stages", []))
        minutes = to_decimal(er.get("time_based_urgent_minutes", 5), field=f"{where}.time_based_urgent_minutes")
        if minutes <= 0:
            raise ValueError(f"{where}.time_based_urgent_minutes must be > 0, got {minutes}")
        return cls(
            stop_loss=_levels(er.get("stop_loss", {"high_confidence": "-0.15", "medium_confidence": "-0.12",
                                                   "low_confidence": "-0.08"}), f"{where}.stop_loss"),
            profit_target=_levels(er.get("profit_target", {"high_confidence": "0.25", "medium_confidence": "0.20",
                                                           "low_confidence": "0.15"}), f"{where}.profit_target"),
            time_based_urgent_seconds=int(minutes * 60),
            liquidity_max_spread=to_decimal(liq.get("max_spread", "0.03"), field=f"{where}.liquidity.max_spread"),
            liquidity_min_volume=int(liq.get("min_volume", 50)),
            early_exit_edge=to_decimal(er.get("early_exit_edge", "0.02"), field=f"{where}.early_exit_edge"),
            edge_disappeared_edge=to_decimal(er.get("edge_disappeared_edge", "0"),
                                             field=f"{where}.edge_disappeared_edge"),
            partial_enabled=bool(pe.get("enabled", True)), stages=stages, hedge=HedgeRules.from_config(hedge))


def _stages(block: Any) -> tuple[PartialStage, ...]:
    stages = tuple(PartialStage(str(s["name"]), to_decimal(s["profit_threshold"], field="partial_exits.stages"),
                                int(s["exit_percentage"])) for s in block)
    if any(st.name == HEDGE_STAGE for st in stages):
        # the hedge's sales are counted under this name in executed_stages / stage_sold
        raise ValueError(f"partial_exits.stages: the stage name {HEDGE_STAGE!r} is reserved for the hedge")
    return stages


_EXIT_RULE_KEYS = ("stop_loss", "profit_target", "time_based_urgent_minutes", "liquidity", "early_exit_edge",
                   "edge_disappeared_edge")
CONFIDENCE_LEVELS = ("high", "medium", "low")


def _known(block: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(block, Mapping):
        raise ValueError(f"{where} must be a mapping of {', '.join(allowed)}")
    unknown = sorted(set(block) - set(allowed))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(allowed)})")


def _levels(block: Mapping[str, Any], where: str) -> dict[str, Decimal]:
    """A threshold per confidence level: exactly high_confidence, medium_confidence and low_confidence."""
    keys = tuple(f"{level}_confidence" for level in CONFIDENCE_LEVELS)
    _known(block, keys, where)
    missing = [k for k in keys if k not in block]
    if missing:
        raise ValueError(f"{where}.{missing[0]} is required (one threshold per confidence level)")
    return {k.split("_")[0]: to_decimal(v, field=f"{where}.{k}") for k, v in block.items()}


def rules_for_method(base: ExitRules, pm: dict[str, Any]) -> ExitRules:
    """A method's position_mgmt_config (method_templates shape: stop_loss, profit_targets, partial_exits,
    early_exit, hedge) over the global rules; keys it does not set keep the global value."""
    from dataclasses import replace

    def dmap(block: dict[str, Any] | None, name: str, current: dict[str, Decimal]) -> dict[str, Decimal]:
        if not block:
            return current
        out = dict(current)
        out.update({k.split("_")[0]: to_decimal(v, field=f"position_mgmt_config.{name}.{k}") for k, v in block.items()})
        return out

    rules = replace(base, stop_loss=dmap(pm.get("stop_loss"), "stop_loss", base.stop_loss),
                    profit_target=dmap(pm.get("profit_targets"), "profit_targets", base.profit_target))
    pe = pm.get("partial_exits")
    if isinstance(pe, dict):
        stages = _stages(pe.get("stages", []))
        rules = replace(rules, partial_enabled=bool(pe.get("enabled", True)), stages=stages or rules.stages)
    liq = pm.get("liquidity")
    if isinstance(liq, dict):
        rules = replace(rules, liquidity_max_spread=to_decimal(liq.get("max_spread", rules.liquidity_max_spread),
                                                               field="liquidity.max_spread"),
                        liquidity_min_volume=int(liq.get("min_volume", rules.liquidity_min_volume)))
    ee = pm.get("early_exit")
    if isinstance(ee, dict) and "edge_threshold" in ee:
        rules = replace(rules, early_exit_edge=to_decimal(ee["edge_threshold"], field="early_exit.edge_threshold"))
    ed = pm.get("edge_disappeared")
    if isinstance(ed, dict) and "edge_threshold" in ed:
        rules = replace(rules, edge_disappeared_edge=to_decimal(ed["edge_threshold"],
                                                                field="edge_disappeared.edge_threshold"))
    if "hedge" in pm:  # `hedge: {enabled: false}` keeps a hold-to-settlement method holding
        rules = replace(rules, hedge=HedgeRules.from_config(pm["hedge"], "position_mgmt_config.hedge", rules.hedge))
    return rules


@dataclass(frozen=True)
class ExitSituation:
    """What the monitor knows about one open position at one moment (prices of the position's side)."""

    quantity: int
    initial_quantity: int
    entry_price: Decimal
    bid: Decimal | None  # what we can sell at now
    ask: Decimal | None
    bid_size: int | None
    confidence: str = "medium"
    trailing_triggered: bool = False
    seconds_to_close: float | None = None  # to the expected settlement, or the close if trading stops first
    recomputed_edge: Decimal | None = None
    breaker_active: bool = False
    better_opportunity: bool = False
    executed_stages: frozenset[str] = frozenset()
    # contracts each partial-exit stage has sold so far: a stage is done once it sold its whole quantity
    stage_sold: Mapping[str, int] = field(default_factory=dict)
    # the quantity a hedge that sold part of it fixed when it fired (None: no hedge has sold yet)
    hedge_quantity: int | None = None

    @property
    def pnl_pct(self) -> Decimal | None:
        if self.bid is None or self.entry_price <= 0:
            return None
        return (self.bid - self.entry_price) / self.entry_price


@dataclass(frozen=True)
class ExitTrigger:
    condition: str
    priority: str
    quantity: int
    stage: str | None = None
    detail: str = ""
    stage_target: int | None = None  # the stage's whole quantity (what it sells in all, its earlier sales included)

    @property
    def rank(self) -> tuple[int, int]:
        return PRIORITY_RANK[self.priority], _ORDER[self.condition]


@dataclass(frozen=True)
class ExitDecision:
    trigger: ExitTrigger
    conflicting: tuple[ExitTrigger, ...] = field(default_factory=tuple)

    def conflicting_json(self) -> list[dict[str, Any]]:
        return [{"condition": t.condition, "priority": t.priority, "quantity": t.quantity, "stage": t.stage,
                 "detail": t.detail} for t in self.conflicting]


def evaluate(s: ExitSituation, rules: ExitRules, fees: FeeSchedule = DEFAULT_FEES) -> list[ExitTrigger]:
    """All exit conditions that hold now (unsorted). `fees` prices the hedge's sale (the taker fee)."""
    out: list[ExitTrigger] = []
    full = s.quantity
    pct = s.pnl_pct
    conf = s.confidence if s.confidence in ("high", "medium", "low") else "medium"
    if pct is not None and pct < rules.stop_loss[conf]:
        out.append(ExitTrigger("stop_loss", "CRITICAL", full, detail=f"pnl {pct:.4f} < {rules.stop_loss[conf]}"))
    if s.breaker_active:
        out.append(ExitTrigger("circuit_breaker", "CRITICAL", full, detail="circuit breaker tripped"))
    if s.trailing_triggered:
        out.append(ExitTrigger("trailing_stop", "HIGH", full, detail="price at or below the trailing stop"))
    if s.seconds_to_close is not None and s.seconds_to_close < rules.time_based_urgent_seconds:
        out.append(ExitTrigger("time_based_urgent", "HIGH", full,
                               detail=f"{s.seconds_to_close:.0f} s to settlement/close"))
    spread = (s.ask - s.bid) if s.ask is not None and s.bid is not None else None
    if s.bid is None or (spread is not None and spread > rules.liquidity_max_spread) \
            or (s.bid_size is not None and s.bid_size < rules.liquidity_min_volume):
        out.append(ExitTrigger("liquidity_dried_up", "HIGH", full,
                               detail=f"spread {spread} bid size {s.bid_size}"))
    if pct is not None:
        if not rules.partial_enabled and pct >= rules.profit_target[conf]:
            out.append(ExitTrigger("profit_target", "MEDIUM", full, detail=f"pnl {pct:.4f}"))
        if rules.partial_enabled:
            stage = next_stage(s, rules)
            if stage is not None and pct >= stage.profit_threshold:
                sold = s.stage_sold.get(stage.name, 0)
                qty = stage_quantity(stage, s.initial_quantity, s.quantity, sold)
                if qty > 0:
                    out.append(ExitTrigger("partial_exit_target", "MEDIUM", qty, stage=stage.name,
                                           detail=f"pnl {pct:.4f} >= {stage.profit_threshold}",
                                           stage_target=stage_target(stage, s.initial_quantity)))
    if s.recomputed_edge is not None:
        if s.recomputed_edge < rules.edge_disappeared_edge:
            out.append(ExitTrigger("edge_disappeared", "LOW", full, detail=f"edge {s.recomputed_edge}"))
        elif s.recomputed_edge < rules.early_exit_edge:
            out.append(ExitTrigger("early_exit", "LOW", full, detail=f"edge {s.recomputed_edge}"))
    if s.better_opportunity and pct is not None and pct > 0:  # never sell losers to rebalance
        out.append(ExitTrigger("rebalance", "LOW", full, detail="better opportunity"))
    # a hedge never stands in for a full exit: selling everything already locks the whole gain
    if rules.hedge.enabled and not any(t.quantity >= full for t in out):
        hedge = hedge_trigger(s, rules.hedge, fees)
        if hedge is not None:
            out.append(hedge)
    return out


def seconds_to_time_exit(deadline: datetime | None, entry_time: datetime | None, now: datetime,
                         rules: ExitRules) -> float | None:
    """Seconds left to the time_based_urgent deadline (`Market.exit_deadline`); None without one, or for a
    position entered inside the window on purpose (settlement arbitrage buys with <= 120 s left): selling it at
    the next check would only pay the spread and fees twice, so it is held to settlement."""
    if deadline is None:
        return None
    if entry_time is not None and (deadline - entry_time).total_seconds() < rules.time_based_urgent_seconds:
        return None
    return (deadline - now).total_seconds()


def hedge_reasons(s: ExitSituation, h: HedgeRules) -> list[str]:
    """The spec 5.11 triggers that hold (any one fires the hedge); none without a bid or a gain at the bid."""
    if s.bid is None or s.quantity <= 0 or s.entry_price <= 0 or s.bid <= s.entry_price:
        return []
    reasons = []
    pct = (s.bid - s.entry_price) / s.entry_price
    if pct >= h.unrealized_gain_pct:
        reasons.append(f"gain {pct:.4f} >= {h.unrealized_gain_pct}")
    if s.recomputed_edge is not None and s.recomputed_edge <= -h.edge_flip:
        reasons.append(f"edge {s.recomputed_edge} <= -{h.edge_flip}")
    gain = (s.bid - s.entry_price) * s.quantity
    if s.seconds_to_close is not None and Decimal(str(s.seconds_to_close)) <= h.minutes_left * 60 \
            and gain >= h.min_gain_dollars:
        reasons.append(f"{s.seconds_to_close:.0f} s left with ${gain} gain >= ${h.min_gain_dollars}")
    return reasons


def hedge_trigger(s: ExitSituation, h: HedgeRules, fees: FeeSchedule = DEFAULT_FEES) -> ExitTrigger | None:
    """The hedge's sale, once per position: the partial_lock quantity when it fires; after a hedge that sold only
    part of it, what is left of the quantity fixed then (not sized again)."""
    if HEDGE_STAGE in s.executed_stages:
        return None
    reasons = hedge_reasons(s, h)
    if not reasons:
        return None
    assert s.bid is not None  # hedge_reasons gives none without a bid
    sold = s.stage_sold.get(HEDGE_STAGE, 0)
    if sold > 0 and s.hedge_quantity is not None:
        target = s.hedge_quantity
        qty = max(min(target - sold, s.quantity), 0)
    else:
        target = qty = partial_lock_quantity(s.quantity, s.entry_price, s.bid, h.lock_fraction, fees)
    if qty <= 0:
        return None
    return ExitTrigger("hedge", "MEDIUM", qty, stage=HEDGE_STAGE, detail="; ".join(reasons), stage_target=target)


def partial_lock_quantity(quantity: int, entry_price: Decimal, bid: Decimal, lock_fraction: Decimal,
                          fees: FeeSchedule = DEFAULT_FEES) -> int:
    """Spec 5.11 sizing partial_lock: the fewest contracts k (1 <= k <= quantity) whose sale at the bid, after its
    taker fee, locks `lock_fraction` of the unrealized profit even if the contracts kept settle worthless:
    k x bid - fee(k at bid) - quantity x entry >= lock_fraction x quantity x (bid - entry). None smaller: all."""
    need = quantity * entry_price + lock_fraction * quantity * (bid - entry_price)
    if bid <= 0:
        return quantity
    # no fee: k >= need / bid; a fee only raises it, so the search starts there
    k = max(int((need / bid).to_integral_value(rounding=ROUND_CEILING)), 1)
    while k < quantity:
        if k * bid - fees.fee(k, bid, taker=True) >= need:
            return k
        k += 1
    return quantity


def next_stage(s: ExitSituation, rules: ExitRules) -> PartialStage | None:
    return next_stage_of(rules, s.initial_quantity, s.executed_stages, s.stage_sold)


def next_stage_of(rules: ExitRules, initial_quantity: int, executed: frozenset[str],
                  sold: Mapping[str, int]) -> PartialStage | None:
    """The first stage not executed yet. A stage that has sold its whole quantity is done even when its
    `executed_stages` mark is missing; one that sold only part of it is not (its remainder is sold next); a
    stage of zero contracts (a small position) is skipped."""
    for stage in rules.stages:
        if stage.name in executed:
            continue
        if stage_target(stage, initial_quantity) - sold.get(stage.name, 0) > 0:
            return stage
    return None


def stage_target(stage: PartialStage, initial: int) -> int:
    """Stage sizes are percentages of the ORIGINAL quantity (100 -> 50, 25, 25 rides the trailing stop)."""
    return initial * stage.exit_percentage // 100


def stage_quantity(stage: PartialStage, initial: int, current: int, sold: int = 0) -> int:
    """What the stage still has to sell: its target less what it already sold, at most what is held."""
    return max(min(stage_target(stage, initial) - sold, current), 0)


def resolve(triggers: list[ExitTrigger]) -> ExitDecision | None:
    """Highest priority first (CRITICAL=1 .. LOW=4; table order within a priority); the rest are recorded."""
    if not triggers:
        return None
    ordered = sorted(triggers, key=lambda t: t.rank)
    return ExitDecision(ordered[0], tuple(ordered[1:]))


# ------------------------------------------------------------------------------------------ execution policy

ORDER_TYPES = ("market", "limit")
PRICE_STYLES = ("aggressive", "fair", "conservative")
# spec §5.9: how long each walk (after the first attempt, which waits the priority's timeout) rests
WALK_WAIT_SECONDS = {"immediate_market": None, "walk_then_market": 10.0, "walk_price": 15.0, "walk_slowly": 30.0}
ESCALATIONS = tuple(WALK_WAIT_SECONDS)
_POLICY_KEYS = ("order_type", "price", "timeout_seconds", "escalation", "max_walks", "walk_wait_seconds")


@dataclass(frozen=True)
class ExecutionPolicy:
    priority: str
    order_type: str  # market | limit
    price_style: str | None  # aggressive | fair | conservative
    timeout_seconds: float  # the first attempt's wait
    escalation: str  # immediate_market | walk_then_market | walk_price | walk_slowly
    max_walks: int
    walk_wait_seconds: float = 0.0  # the wait of every walk after the first attempt (and of a market attempt)

    @classmethod
    def from_config(cls, priority: str, block: Mapping[str, Any], condition: str | None = None) -> ExecutionPolicy:
        """One `position_management.exit_execution.<priority>` block, checked: a typo or a missing key is refused
        naming it (an unknown escalation or price would otherwise change how an exit is priced, silently)."""
        where = f"position_management.exit_execution.{priority}"
        if priority not in PRIORITY_RANK:
            raise ValueError(f"{where}: unknown priority (one of {', '.join(PRIORITY_RANK)})")
        if not isinstance(block, Mapping):
            raise ValueError(f"{where} must be a mapping of {', '.join(_POLICY_KEYS)}")
        unknown = sorted(set(block) - set(_POLICY_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_POLICY_KEYS)})")
        order_type = _choice(block, "order_type", ORDER_TYPES, where)
        escalation = _choice(block, "escalation", ESCALATIONS, where)
        style = _choice(block, "price", PRICE_STYLES, where) if order_type == "limit" or "price" in block else None
        timeout = _seconds(block.get("timeout_seconds"), f"{where}.timeout_seconds")
        walks = block.get("max_walks")
        if isinstance(walks, bool) or not isinstance(walks, int) or walks < 0:
            raise ValueError(f"{where}.max_walks must be a whole number >= 0, got {walks!r}")
        default_wait = WALK_WAIT_SECONDS[escalation]
        wait = _seconds(block["walk_wait_seconds"], f"{where}.walk_wait_seconds") if "walk_wait_seconds" in block \
            else (default_wait if default_wait is not None else timeout)
        if priority == "HIGH" and condition == "liquidity_dried_up":
            timeout, walks = 15.0, 3  # spec §5.9: liquidity exits wait longer and walk more
        return cls(priority, order_type, style, timeout, escalation, walks, wait)


def execution_policies(config: Mapping[str, Any]) -> dict[str, ExecutionPolicy]:
    """Every priority's policy of a whole `exit_execution` section, checked up front (a bad block fails the engine
    at its start, not at the first exit that needs it)."""
    return {priority: ExecutionPolicy.from_config(priority, block) for priority, block in config.items()}


def _choice(block: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    value = block.get(key)
    if value not in allowed:
        raise ValueError(f"{where}.{key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not value > 0:
        raise ValueError(f"{where} must be a number of seconds > 0, got {value!r}")
    return float(value)


DEFAULT_EXECUTION = {
    "CRITICAL": {"order_type": "market", "timeout_seconds": 5, "escalation": "immediate_market", "max_walks": 0},
    "HIGH": {"order_type": "limit", "price": "aggressive", "timeout_seconds": 10, "escalation": "walk_then_market",
             "max_walks": 2, "walk_wait_seconds": 10},
    "MEDIUM": {"order_type": "limit", "price": "fair", "timeout_seconds": 30, "escalation": "walk_price",
               "max_walks": 5, "walk_wait_seconds": 15},
    "LOW": {"order_type": "limit", "price": "conservative", "timeout_seconds": 60, "escalation": "walk_slowly",
            "max_walks": 10, "walk_wait_seconds": 30},
}


def _cent(value: Decimal, rounding: str) -> Decimal:
    return min(max(value.quantize(CENT, rounding=rounding), MIN_PX), MAX_PX)


def start_price(style: str | None, bid: Decimal, ask: Decimal | None) -> Decimal:
    """Opening limit of a sell (spec §5.9 exit prices): aggressive = max(bid - 0.01, bid x 0.98),
    fair = mid, conservative = ask."""
    if style == "aggressive":
        return _cent(max(bid - CENT, bid * Decimal("0.98")), ROUND_FLOOR)
    if style == "fair" and ask is not None:
        return _cent((bid + ask) / 2, ROUND_HALF_UP)
    if style == "conservative" and ask is not None:
        return _cent(ask, ROUND_CEILING)
    return _cent(bid, ROUND_FLOOR)


def walk_step(escalation: str, n: int) -> Decimal:
    """Price step of the n-th walk (n from 0): $0.01 x aggressiveness."""
    if escalation == "walk_then_market":
        factor = Decimal("1.5") + Decimal("0.5") * n
    elif escalation == "walk_slowly":
        factor = Decimal("1.0") + Decimal("0.3") * n
    else:
        factor = Decimal("1.0") + Decimal("0.5") * n
    return CENT * factor


def walked_price(previous: Decimal, escalation: str, n: int, bid: Decimal | None, ask: Decimal | None) -> Decimal:
    """Move a sell limit down by the walk step, never below bid - spread (rounded to the cent above it, so a
    sub-cent book cannot push the limit under it), within [0.01, 0.99]."""
    price = (previous - walk_step(escalation, n)).quantize(CENT, rounding=ROUND_FLOOR)
    if bid is not None:
        spread = (ask - bid) if ask is not None else ZERO
        price = max(price, (bid - spread).quantize(CENT, rounding=ROUND_CEILING))
    return min(max(price, MIN_PX), MAX_PX)
