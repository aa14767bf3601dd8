"""Entry strategies (spec 5.11) as immutable versions, and the rule each applies to turn an edge into a signal.

`trade_strategies.yaml` holds one block per strategy with a `version`; `sync_strategies` stores each block
as a `strategies` row (config = the block without `version`/`enabled`). A version's config never changes:
a block whose config differs from the stored row of the same version is refused with a message telling
the user to bump the version. `enabled` maps to the row's status (active / inactive) until an operator
moves the version with `transition` (recorded in strategy_status_changes); from then on the operator's
decision stands.

At decision time a strategy answers two questions, cheaply:
  * `phase_block(market, game, now)`  - is this market in the strategy's moment (pre-game window, halftime,
    live event, final seconds)? None = yes, else the reason it is not.
  * `side_block(market, game, side, p_side, now)` - side-specific rules (settlement arbitrage buys only a
    near-certain leader; halftime needs a tight spread). None = a signal, if the edge clears the minimum.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from precog.config.loader import Config
from precog.domain.jsonutil import canonical
from precog.domain.money import to_decimal
from precog.trading.methods import performance_by_mode, store_metrics
from precog.trading.normalize import normalized_for_hash
from precog.trading.views import YES, GameView, MarketView

PRE_GAME = "pre_game_entry"
HALFTIME = "halftime_entry"
LIVE = "live_trading"
SETTLEMENT_ARB = "settlement_arbitrage"
ENTRY_STRATEGIES = (PRE_GAME, HALFTIME, LIVE, SETTLEMENT_ARB)

_VERSION_KEYS = ("version", "enabled")


class StrategyError(ValueError):
    """A strategy configuration or lookup problem; the message names the strategy and what to do."""


class StrategyConfigChanged(StrategyError):
    pass


# ---------------------------------------------------------------- definitions and the database
@dataclass(frozen=True, slots=True)
class StrategyDefinition:
    name: str
    version: str
    enabled: bool
    config: dict[str, Any]

    @property
    def config_hash(self) -> str:
        return strategy_config_hash(self.config)


def strategy_config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.md5(canonical(normalized_for_hash(dict(config))).encode(), usedforsecurity=False).hexdigest()


def load_strategy_definitions(cfg: Config) -> list[StrategyDefinition]:
    blocks = cfg.get("trade_strategies.strategies")
    out = []
    for name, block in blocks.items():
        config = {k: v for k, v in block.items() if k not in _VERSION_KEYS}
        out.append(StrategyDefinition(str(name), str(block["version"]), bool(block.get("enabled", True)), config))
    return out


@dataclass(frozen=True, slots=True)
class SyncReport:
    inserted: tuple[str, ...]
    unchanged: tuple[str, ...]
    status_changed: tuple[str, ...]


def _diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{sub} added")
            elif key not in new:
                out.append(f"{sub} removed")
            else:
                out.extend(_diff(old[key], new[key], sub))
        return out
    if old != new:
        return [f"{path}: {old} -> {new}"]
    return []


def sync_strategies(conn: Any, definitions: Iterable[StrategyDefinition]) -> SyncReport:
    """Store each YAML strategy version (idempotent). Refuses a changed config under an existing version.

    Runs in one transaction: either every block is stored or none is."""
    inserted: list[str] = []
    unchanged: list[str] = []
    status_changed: list[str] = []
    with conn.transaction():
        for d in definitions:
            label = f"{d.name}@{d.version}"
            row = conn.execute(
                "SELECT strategy_id, config, status FROM strategies WHERE strategy_name = %s AND strategy_version = %s",
                (d.name, d.version),
            ).fetchone()
            wanted_status = "active" if d.enabled else "inactive"
            if row is None:
                conn.execute(
                    "UPDATE strategies SET status = 'inactive', deactivated_at = now()"
                    " WHERE strategy_name = %s AND status = 'active'",
                    (d.name,),
                )
                conn.execute(
                    "INSERT INTO strategies (strategy_name, strategy_version, strategy_type, category, config,"
                    " config_hash, description, status, activated_at, created_by)"
                    " VALUES (%s, %s, 'entry', 'sports', %s, %s, %s, %s, CASE WHEN %s = 'active' THEN now() END,"
                    " 'trade_strategies.yaml')",
                    (d.name, d.version, Jsonb(d.config), d.config_hash, f"{d.name} from trade_strategies.yaml",
                     wanted_status, wanted_status),
                )
                inserted.append(label)
                continue
            stored = normalized_for_hash(row[1])
            if strategy_config_hash(row[1]) != d.config_hash:
                changes = "; ".join(_diff(stored, normalized_for_hash(d.config))[:5])
                raise StrategyConfigChanged(
                    f"trade_strategies.yaml: strategies.{d.name} differs from the stored version {d.version} "
                    f"({changes}); strategy versions are immutable - bump strategies.{d.name}.version "
                    f"(e.g. {bump_version(d.version)}) to create a new version")
            status = row[2]
            # a lifecycle change made by an operator (`precog strategies ...`, dashboard) outranks `enabled`
            managed = conn.execute("SELECT 1 FROM strategy_status_changes WHERE strategy_id = %s LIMIT 1",
                                   (row[0],)).fetchone() is not None
            if status != wanted_status and status in ("active", "inactive") and not managed:
                conn.execute(
                    "UPDATE strategies SET status = %s,"
                    " activated_at = CASE WHEN %s = 'active' THEN now() ELSE activated_at END,"
                    " deactivated_at = CASE WHEN %s = 'inactive' THEN now() ELSE deactivated_at END"
                    " WHERE strategy_id = %s",
                    (wanted_status, wanted_status, wanted_status, row[0]),
                )
                status_changed.append(f"{label}: {status} -> {wanted_status}")
            else:
                unchanged.append(label)
    return SyncReport(tuple(inserted), tuple(unchanged), tuple(status_changed))


def bump_version(version: str) -> str:
    major, minor = version.lstrip("v").split(".")
    return f"v{major}.{int(minor) + 1}"


@dataclass(frozen=True, slots=True)
class StrategyRef:
    strategy_id: int | None
    name: str
    version: str
    status: str = "active"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


# ---------------------------------------------------------------- decision rules
def _dec(config: Mapping[str, Any], key: str, default: str | None = None) -> Decimal | None:
    value = config.get(key, default)
    return None if value is None else to_decimal(value, field=key)


class EntryStrategy(ABC):
    """Common parts: minimum edge (per sport), Kelly/size overrides, spread limit, order style."""

    order_type = "limit"

    def __init__(self, ref: StrategyRef, config: Mapping[str, Any]) -> None:
        self.ref = ref
        self.name = ref.name
        self.config = dict(config)
        self.min_edge = _dec(config, "min_edge", "0")
        self.kelly_fraction = _dec(config, "kelly_fraction")
        self.max_position_dollars = _dec(config, "max_position_dollars")
        self.max_spread = _dec(config, "max_spread")
        # a strategy may replace the global shrinkage toward 0.5 (settlement arbitrage: 0)
        self.shrinkage_factor = _dec(config, "shrinkage_factor")
        sports = config.get("sports") or {}
        self.sport_rules: dict[str, dict[str, Any]] = {str(k): dict(v or {}) for k, v in sports.items()}
        self._min_edge_by_sport: dict[str, Decimal | None] = {
            sport: (to_decimal(rules["min_edge"], field=f"{self.name}.sports.{sport}.min_edge")
                    if "min_edge" in rules else self.min_edge)
            for sport, rules in self.sport_rules.items()
        }

    def min_edge_for(self, sport: str) -> Decimal | None:
        return self._min_edge_by_sport.get(sport, self.min_edge)

    def sport_block(self, market: MarketView) -> str | None:
        """A strategy with a `sports` block trades only the sports it lists (spec 5.11 gives each strategy's rules
        per sport: pre-game MLB is off, and a league enabled in markets.yaml must not inherit another sport's
        thresholds and skip its own gates)."""
        if self.sport_rules and market.sport not in self.sport_rules:
            return "sport_not_traded"
        return None

    @abstractmethod
    def phase_block(self, market: MarketView, game: GameView | None, now: float) -> str | None:
        """None when the market is in this strategy's moment, else the reason it is not."""

    def side_block(self, market: MarketView, game: GameView | None, side: str, p_side: Decimal,
                   now: float) -> str | None:
        if self.max_spread is not None and market.spread > self.max_spread:
            return "spread_above_strategy_max"
        return None


class PreGameEntry(EntryStrategy):
    """0.5-24 h before the start; lineup/injury/weather gates from the game's metadata when reported."""

    def __init__(self, ref: StrategyRef, config: Mapping[str, Any]) -> None:
        super().__init__(ref, config)
        self.min_seconds = float(to_decimal(config.get("min_hours_before_start", "0.5"), field="min_hours")) * 3600
        self.max_seconds = float(to_decimal(config.get("max_hours_before_start", 24), field="max_hours")) * 3600
        self.markets = frozenset(str(m) for m in config.get("markets") or ())

    def phase_block(self, market: MarketView, game: GameView | None, now: float) -> str | None:
        uncovered = self.sport_block(market)
        if uncovered is not None:
            return uncovered
        if game is not None and game.state.status not in ("scheduled", "pregame"):
            return "game_started"
        start = game.start_ts if game is not None else market.start_ts
        if start is None:
            return "start_time_unknown"
        until = start - now
        if until < self.min_seconds or until > self.max_seconds:
            return "outside_pregame_window"
        if self.markets and market.market_kind not in self.markets:
            return "market_kind_not_traded"
        rules = self.sport_rules.get(market.sport)
        if rules and game is not None and game.state.metadata:
            meta = game.state.metadata
            if meta.get("lineup_confirmed") is False:
                return "lineup_not_confirmed"
            if "max_key_injuries" in rules and int(meta.get("key_injuries", 0) or 0) > int(rules["max_key_injuries"]):
                return "key_injuries"
            if "max_wind_mph" in rules and meta.get("wind_mph") is not None and \
                    to_decimal(meta["wind_mph"], field="wind_mph") > to_decimal(rules["max_wind_mph"], field="max_wind"):
                return "wind"
            if "max_precipitation" in rules and meta.get("precipitation") is not None and \
                    to_decimal(meta["precipitation"], field="precipitation") > \
                    to_decimal(rules["max_precipitation"], field="max_precipitation"):
                return "precipitation"
            if rules.get("allow_snow") is False and meta.get("snow"):
                return "snow"
        return None


# the first-half turnover and special-teams touchdown gates are football rules (spec 5.11 lists them under NFL)
_FOOTBALL = frozenset({"nfl", "ncaaf"})


class HalftimeEntry(EntryStrategy):
    """Within window_minutes of halftime starting; lead and (football) first-half turnover/special-teams gates."""

    def __init__(self, ref: StrategyRef, config: Mapping[str, Any]) -> None:
        super().__init__(ref, config)
        self.window = float(to_decimal(config.get("window_minutes", 10), field="window_minutes")) * 60
        self.min_lead = int(config.get("min_lead", 0))
        self.max_turnovers = config.get("max_first_half_turnovers")
        self.max_st_tds = config.get("max_special_teams_tds")

    def phase_block(self, market: MarketView, game: GameView | None, now: float) -> str | None:
        uncovered = self.sport_block(market)
        if uncovered is not None:
            return uncovered
        if game is None:
            return "no_game_state"
        if game.state.status != "halftime":
            return "not_halftime"
        started = game.halftime_started_ts if game.halftime_started_ts is not None else game.observed_ts
        if now - started > self.window:
            return "halftime_window_passed"
        if game.state.lead < self.min_lead:
            return "lead_below_min"
        meta = game.state.metadata
        if meta and game.state.sport in _FOOTBALL:
            if self.max_turnovers is not None and int(meta.get("first_half_turnovers", 0) or 0) > int(self.max_turnovers):
                return "too_many_turnovers"
            if self.max_st_tds is not None and int(meta.get("special_teams_tds", 0) or 0) > int(self.max_st_tds):
                return "special_teams_tds"
        return None


# game metadata key (set by snapshot.load_games, never stored): epoch seconds of the first stored game state
# that showed the current last play, i.e. when that play became an event for us
LAST_PLAY_SEEN = "last_play_seen_ts"
# game metadata key (set by snapshot.load_games, never stored): "fourth_down_conversion" / "fourth_down_fail" when
# the current last play was a fourth-down attempt with a known outcome (precog.feeds.espn_parse.fourth_down_outcome)
FOURTH_DOWN = "fourth_down_outcome"


class LiveTrading(EntryStrategy):
    """In play, deciding within decision_seconds of a trigger event (touchdown, turnover, ...). The event's age
    runs from when its play was first observed (LAST_PLAY_SEEN), not from the latest poll that saw it again;
    without that time (a state not loaded from game_states) from the state's observation. The play triggers by
    its type (last_play_type) or by its fourth-down outcome (FOURTH_DOWN): a fourth-down touchdown is both."""

    def __init__(self, ref: StrategyRef, config: Mapping[str, Any]) -> None:
        super().__init__(ref, config)
        self.decision_seconds = float(to_decimal(config.get("decision_seconds", 10), field="decision_seconds"))
        self.triggers = frozenset(str(t) for t in config.get("trigger_events") or ())

    def phase_block(self, market: MarketView, game: GameView | None, now: float) -> str | None:
        uncovered = self.sport_block(market)
        if uncovered is not None:
            return uncovered
        if game is None:
            return "no_game_state"
        if game.state.status != "live":
            return "not_live"
        meta = game.state.metadata or {}
        seen = meta.get(LAST_PLAY_SEEN)
        event_ts = min(float(seen), game.observed_ts) if isinstance(seen, int | float) else game.observed_ts
        if now - event_ts > self.decision_seconds:
            return "event_too_old"
        if self.triggers:
            if not any(meta.get(key) in self.triggers for key in ("last_play_type", FOURTH_DOWN)):
                return "no_trigger_event"
        return None


class SettlementArbitrage(EntryStrategy):
    """The final seconds of a decided game: buy the near-certain winner when the price still leaves an edge."""

    order_type = "market"

    def __init__(self, ref: StrategyRef, config: Mapping[str, Any]) -> None:
        super().__init__(ref, config)
        self.min_probability = _dec(config, "min_probability", "0.98")
        self.max_seconds = int(config.get("max_seconds_remaining", 120))
        rules = config.get("certainty_rules") or {}
        self.rules: dict[str, list[dict[str, Any]]] = {str(k): [dict(r) for r in v or ()] for k, v in rules.items()}

    def decided(self, game: GameView) -> bool:
        """A certainty rule of the game's sport holds for the leader. A tied game is never decided, and ESPN's
        victory formation counts only for a sport with rules and only when the leader holds the ball (a kneel at
        a tie sends the game to overtime)."""
        state = game.state
        leader = state.leader
        if leader == "tied" or state.sport not in self.rules:
            return False
        meta = state.metadata or {}
        if meta.get("victory_formation") and state.possession == leader:
            return True
        remaining = game.seconds_remaining()
        if remaining is None:
            return False
        for rule in self.rules.get(state.sport, ()):
            if state.lead < int(rule.get("min_lead", 0)) or remaining > int(rule.get("max_seconds", 0)):
                continue
            if rule.get("leader_has_possession") and state.possession != leader:
                continue
            if "opponent_max_timeouts" in rule:
                timeouts = state.away_timeouts if leader == "home" else state.home_timeouts
                if timeouts is None or timeouts > int(rule["opponent_max_timeouts"]):
                    continue
            return True
        return False

    def phase_block(self, market: MarketView, game: GameView | None, now: float) -> str | None:
        if market.sport not in self.rules:
            return "sport_not_traded"  # no certainty rule: nothing here can be called decided
        if game is None:
            return "no_game_state"
        if game.state.status != "live":
            return "not_live"
        remaining = game.seconds_remaining()
        if remaining is None or remaining > self.max_seconds:
            return "too_much_time_left"
        if not self.decided(game):
            return "game_not_decided"
        return None

    def side_block(self, market: MarketView, game: GameView | None, side: str, p_side: Decimal,
                   now: float) -> str | None:
        if self.min_probability is not None and p_side < self.min_probability:
            return "probability_below_min"
        # only the leader is bought: a market whose YES team is unknown cannot show which side that is
        if market.yes_team is None or game is None or game.state.leader == "tied":
            return "leader_unknown"
        buys_yes_team = side == YES
        yes_team_leads = game.state.leader == market.yes_team
        if buys_yes_team != yes_team_leads:
            return "not_the_leader"
        return super().side_block(market, game, side, p_side, now)


_CLASSES: dict[str, type[EntryStrategy]] = {
    PRE_GAME: PreGameEntry,
    HALFTIME: HalftimeEntry,
    LIVE: LiveTrading,
    SETTLEMENT_ARB: SettlementArbitrage,
}


def _unknown_keys(name: str, config: Mapping[str, Any]) -> list[str]:
    """The keys of a stored strategy config that its rules do not read (trade_strategies.yaml's schema refuses them
    at load; a stored version is checked again so no rule ever falls back to a built-in default)."""
    from precog.config.schema import CertaintyRule, EntryStrategies

    block = EntryStrategies.model_fields[name].annotation
    assert block is not None
    known = set(block.model_fields) - set(_VERSION_KEYS)  # type: ignore[union-attr]
    out = [k for k in config if k not in known]
    sport_model = block.model_fields["sports"].annotation.__args__[1]  # type: ignore[union-attr]
    for sport, rules in (config.get("sports") or {}).items():
        out += [f"sports.{sport}.{k}" for k in rules or {} if k not in sport_model.model_fields]
    for sport, rules in (config.get("certainty_rules") or {}).items():
        for i, rule in enumerate(rules or ()):
            out += [f"certainty_rules.{sport}.{i}.{k}" for k in rule if k not in CertaintyRule.model_fields]
    return out


def build_strategy(ref: StrategyRef, config: Mapping[str, Any]) -> EntryStrategy:
    cls = _CLASSES.get(ref.name)
    if cls is None:
        raise StrategyError(f"strategy {ref.label}: unknown entry strategy (known: {', '.join(ENTRY_STRATEGIES)})")
    unknown = _unknown_keys(ref.name, config)
    if unknown:
        raise StrategyError(f"strategy {ref.label}: unknown config key(s) {', '.join(unknown)} (a typo would leave "
                            "the rule on a default); fix trade_strategies.yaml and bump the version")
    return cls(ref, config)


def load_strategy(conn: Any, name: str, version: str | None = None) -> tuple[StrategyRef, dict[str, Any]]:
    """A stored strategy version (the newest when `version` is None)."""
    if version is None:
        rows = conn.execute(
            "SELECT strategy_id, strategy_name, strategy_version, status, config FROM strategies"
            " WHERE strategy_name = %s", (name,)).fetchall()
        if not rows:
            raise StrategyError(f"strategy {name!r} not found (run `precog edges scan` or sync strategies first)")
        row = max(rows, key=lambda r: tuple(int(x) for x in r[2].lstrip("v").split(".")))
    else:
        row = conn.execute(
            "SELECT strategy_id, strategy_name, strategy_version, status, config FROM strategies"
            " WHERE strategy_name = %s AND strategy_version = %s", (name, version)).fetchone()
        if row is None:
            raise StrategyError(f"strategy {name}@{version} not found")
    return StrategyRef(int(row[0]), row[1], row[2], row[3]), dict(row[4])


# ---------------------------------------------------------------- lifecycle (spec 8.1)
STATUSES = ("draft", "testing", "active", "inactive", "deprecated")
# DEPRECATED is final; ACTIVE/TESTING never go back to DRAFT. inactive <-> active is the YAML `enabled` switch.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"testing", "deprecated"}),
    "testing": frozenset({"active", "deprecated"}),
    "active": frozenset({"inactive", "deprecated"}),
    "inactive": frozenset({"active", "testing", "deprecated"}),
    "deprecated": frozenset(),
}


@dataclass(frozen=True, slots=True)
class StrategyActivationRules:
    """What a version must show in testing before it goes active (spec 8.1; trade_strategies.yaml
    versioning.lifecycle: min_testing_days 60, min_testing_trades 50)."""

    min_testing_days: int = 60
    min_testing_trades: int = 50  # closed (or settled) paper positions of the version

    @classmethod
    def from_config(cls, cfg: Any) -> StrategyActivationRules:
        """trade_strategies.yaml `strategy_lifecycle.activation` (validated by the configuration schema)."""
        act = cfg.get("trade_strategies.strategy_lifecycle.activation")
        return cls(int(act["min_testing_days"]), int(act["min_testing_trades"]))


def _parse_ref(ref: str) -> tuple[str, str | None]:
    name, _, version = ref.partition("@")
    if not name:
        raise StrategyError(f"strategy reference {ref!r}: expected NAME or NAME@vX.Y")
    return name, version or None


def get_strategy_row(conn: Any, ref: str) -> dict[str, Any]:
    """One stored strategy version as a dict (NAME@vX.Y, or NAME for the newest version)."""
    name, version = _parse_ref(ref)
    strategy, _ = load_strategy(conn, name, version)
    cur = conn.execute(
        "SELECT strategy_id, strategy_name, strategy_version, strategy_type, sport, status, config, config_hash,"
        " description, paper_roi, live_roi, paper_trades_count, live_trades_count, activated_at, deactivated_at,"
        " created_by, created_at, updated_at FROM strategies WHERE strategy_id = %s", (strategy.strategy_id,))
    cols = [d.name for d in cur.description]
    return dict(zip(cols, cur.fetchone(), strict=True))


def list_strategy_rows(conn: Any, status: str | None = None) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise StrategyError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    cur = conn.execute(
        "SELECT strategy_id, strategy_name, strategy_version, strategy_type, status, paper_roi,"
        " paper_trades_count, live_roi, live_trades_count, activated_at, config_hash FROM strategies"
        " WHERE %s::text IS NULL OR status = %s ORDER BY strategy_name, strategy_id", (status, status))
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# ---------------------------------------------------------------- stored paper/live metrics
@dataclass(frozen=True, slots=True)
class StrategyMetrics:
    """A version's closed (or settled) positions per mode and the ROI on their cost (None: nothing closed)."""

    paper_trades_count: int
    live_trades_count: int
    paper_roi: Decimal | None
    live_roi: Decimal | None


def refresh_strategy_metrics(conn: Any, strategy_id: int) -> StrategyMetrics:
    """Recompute the version's stored paper/live trade counts and ROI from its closed/settled positions (current
    rows; the definition methods' metrics use, see `methods.performance`).

    Called whenever a paper/live position of the version closes or settles (`Portfolio.save`), by the activation
    gate, and before `precog strategies list/show` print them. One SELECT and at most one UPDATE (none when the
    stored figures are already right)."""
    paper, live, _every_mode = performance_by_mode(conn, strategy_id=strategy_id)
    metrics = StrategyMetrics(paper.trades, live.trades, paper.roi, live.roi)
    conn.execute(
        "UPDATE strategies SET paper_trades_count = %(paper_n)s, live_trades_count = %(live_n)s,"
        " paper_roi = %(paper_roi)s, live_roi = %(live_roi)s WHERE strategy_id = %(id)s"
        " AND (paper_trades_count, live_trades_count, paper_roi, live_roi)"
        " IS DISTINCT FROM (%(paper_n)s::int, %(live_n)s::int, %(paper_roi)s::numeric, %(live_roi)s::numeric)",
        {"paper_n": metrics.paper_trades_count, "live_n": metrics.live_trades_count, "paper_roi": metrics.paper_roi,
         "live_roi": metrics.live_roi, "id": strategy_id})
    return metrics


def refresh_owner_metrics(conn: Any, method_id: int | None, strategy_id: int | None) -> None:
    """The stored paper/live figures of a method (`methods.store_metrics`) and of its strategy version, from their
    closed positions: after one of their positions closed, or at an engine's start."""
    if method_id is not None:
        store_metrics(conn, method_id)
    if strategy_id is not None:
        refresh_strategy_metrics(conn, strategy_id)


def refresh_all_strategy_metrics(conn: Any) -> None:
    """Refresh every stored version's metrics (on demand: a listing; a handful of versions)."""
    for (strategy_id,) in conn.execute("SELECT strategy_id FROM strategies ORDER BY strategy_id").fetchall():
        refresh_strategy_metrics(conn, int(strategy_id))


def strategy_status_history(conn: Any, strategy_id: int) -> list[dict[str, Any]]:
    cur = conn.execute("SELECT from_status, to_status, reason, changed_by, changed_at FROM strategy_status_changes"
                       " WHERE strategy_id = %s ORDER BY changed_at, id", (strategy_id,))
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _set_status(conn: Any, strategy_id: int, old: str, target: str, by: str, reason: str | None) -> None:
    conn.execute(
        "UPDATE strategies SET status = %s,"
        " activated_at = CASE WHEN %s = 'active' THEN now() ELSE activated_at END,"
        " deactivated_at = CASE WHEN %s IN ('inactive', 'deprecated') AND activated_at IS NOT NULL"
        " THEN now() ELSE deactivated_at END WHERE strategy_id = %s",
        (target, target, target, strategy_id))
    conn.execute("INSERT INTO strategy_status_changes (strategy_id, from_status, to_status, reason, changed_by)"
                 " VALUES (%s, %s, %s, %s, %s)", (strategy_id, old, target, reason, by))


def _testing_record(conn: Any, strategy_id: int) -> tuple[float, int]:
    """(days since the version last moved into testing - or was created, if it started there -, its closed
    paper trades: the stored `paper_trades_count`, refreshed here so the gate and the listing agree)."""
    row = conn.execute(
        "SELECT EXTRACT(EPOCH FROM now() - COALESCE((SELECT max(c.changed_at) FROM strategy_status_changes c"
        "   WHERE c.strategy_id = s.strategy_id AND c.to_status = 'testing'), s.created_at)) / 86400"
        " FROM strategies s WHERE s.strategy_id = %s", (strategy_id,)).fetchone()
    return float(row[0]), refresh_strategy_metrics(conn, strategy_id).paper_trades_count


def _check_activation(conn: Any, strategy_id: int, label: str, status: str, rules: StrategyActivationRules) -> None:
    """Refuse an activation the version has not earned: from testing, the spec's testing period; from
    inactive, only a version that was active before (a pause or a rollback, not a way around testing)."""
    if status == "inactive":
        was_active = conn.execute(
            "SELECT activated_at IS NOT NULL OR EXISTS (SELECT 1 FROM strategy_status_changes c"
            " WHERE c.strategy_id = s.strategy_id AND 'active' IN (c.from_status, c.to_status))"
            " FROM strategies s WHERE s.strategy_id = %s", (strategy_id,)).fetchone()[0]
        if not was_active:
            raise StrategyError(f"strategy {label} has never been active: test it first (`precog strategies test "
                                f"{label}`, then >= {rules.min_testing_days} days and >= {rules.min_testing_trades}"
                                " closed paper trades)")
        return
    days, trades = _testing_record(conn, strategy_id)
    missing = []
    if days < rules.min_testing_days:
        missing.append(f"{int(days)} days in testing (need >= {rules.min_testing_days})")
    if trades < rules.min_testing_trades:
        missing.append(f"{trades} closed paper trades (need >= {rules.min_testing_trades})")
    if missing:
        raise StrategyError(f"strategy {label} cannot be activated yet: {'; '.join(missing)}")


def transition(conn: Any, ref: str, target: str, *, by: str, reason: str | None = None,
               activation: StrategyActivationRules | None = None) -> dict[str, Any]:
    """Move a strategy version along its lifecycle; refuses illegal moves and unearned activations, and records
    who/when/why.

    Activating a version makes any other active version of the same strategy inactive (one live version
    per strategy, as `sync_strategies` does for a new YAML version); that change is recorded too."""
    if target not in STATUSES:
        raise StrategyError(f"status {target!r} is not one of {', '.join(STATUSES)}")
    by = " ".join((by or "").split())
    if not by:
        raise StrategyError("by: say who is making this change")
    with conn.transaction():
        row = get_strategy_row(conn, ref)
        conn.execute("SELECT 1 FROM strategies WHERE strategy_id = %s FOR UPDATE", (row["strategy_id"],))
        label = f"{row['strategy_name']}@{row['strategy_version']}"
        status = conn.execute("SELECT status FROM strategies WHERE strategy_id = %s",
                              (row["strategy_id"],)).fetchone()[0]
        if status == target:
            raise StrategyError(f"strategy {label} is already {target}")
        if target not in TRANSITIONS[status]:
            allowed = ", ".join(sorted(TRANSITIONS[status])) or "nothing (deprecated is final)"
            raise StrategyError(f"strategy {label} is {status}: it can move to {allowed}, not {target}")
        if target == "active":
            _check_activation(conn, row["strategy_id"], label, status, activation or StrategyActivationRules())
            others = conn.execute(
                "SELECT strategy_id, strategy_version FROM strategies WHERE strategy_name = %s AND status = 'active'"
                " AND strategy_id <> %s FOR UPDATE", (row["strategy_name"], row["strategy_id"])).fetchall()
            for other_id, _other_version in others:
                _set_status(conn, other_id, "active", "inactive", by, f"superseded by {label}")
        _set_status(conn, row["strategy_id"], status, target, by, reason)
    return get_strategy_row(conn, label)
