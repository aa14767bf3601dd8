"""The decision scan: markets -> edges (both sides) -> strategy signals -> size -> risk approval.

Everything here runs on in-memory state (no database): the caller passes the open markets, the game
states, and (optionally) fresh positions and balance. One scan is one `calculation_run_id`.

    engine = DecisionEngine(settings, units, risk, breakers=board)
    result = engine.scan(markets, games, positions=positions, balance=balance)
    for approval in result.approved:        # each an Approval the order path must present
        send(approval)                      # -> require_approval(approval) inside the executor
    store_edges(conn, result, engine.units) # optional: edges SCD2 (precog.trading.edge_store)

A *unit* is what decides: a method (strategy version + model version + risk config), or, when no method is
active, a bare strategy x model pair. For every market each unit yields a YES and a NO edge; an edge is a
trade signal when it clears the effective minimum edge and the unit's strategy accepts the moment and the
side. Per market at most one signal becomes an order intent (strategy priority, or best edge), so one scan
never buys both sides of a market.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from precog.domain.money import ONE, ZERO
from precog.trading.breakers import BreakerBoard
from precog.trading.edges import (
    CostTable,
    EdgeRecord,
    ShrinkTable,
    SideEdge,
    confidence_level,
    q4,
)
from precog.trading.forecasts import Forecast, ModelRef, ProbabilityModel
from precog.trading.method_config import MethodRuntime
from precog.trading.priority import Candidate, composite_scores
from precog.trading.risk import Approval, OrderIntent, Rejection, RiskManager
from precog.trading.settings import TradingSettings
from precog.trading.sizing import (
    SizeResult,
    kelly_multiplier,
    size_adjustment,
    size_position,
    special_event_multiplier,
)
from precog.trading.strategies import EntryStrategy
from precog.trading.views import NO, YES, GameView, MarketView, PositionView

_TWO = Decimal(2)
_UNSET = object()


@dataclass(frozen=True, slots=True)
class DecisionUnit:
    strategy: EntryStrategy
    model: ProbabilityModel
    model_ref: ModelRef
    method: MethodRuntime | None = None

    @property
    def label(self) -> str:
        if self.method is not None:
            return self.method.label
        return f"{self.strategy.ref.label}+{self.model_ref.label}"


@dataclass(slots=True)
class Signal:
    unit: DecisionUnit
    evaluation: MarketEval
    side: SideEdge
    min_edge: Decimal
    rank: int


def _composite_inputs(signal: Signal, m: MarketView) -> Candidate:
    """What sort_by composite scores of a candidate: its side edge, the dollars offered at the price it would pay
    (the ask size of its side x that price) and its forecast's confidence level."""
    side = signal.side.side
    size = m.ask_size_of(side)
    price = m.price_of(side)
    return Candidate(signal.side.edge, None if size is None else size * price, signal.evaluation.level)


class MarketEval:
    """One market under one model: both sides' edges, and each unit's verdict on them.

    `verdicts` holds (unit, min_edge, why YES is not a signal, why NO is not) - None where it is a signal."""

    __slots__ = ("market", "forecast", "model_ref", "level", "yes", "no", "verdicts")

    def __init__(self, market: MarketView, forecast: Forecast, model_ref: ModelRef, level: str,
                 yes: SideEdge | None, no: SideEdge | None) -> None:
        self.market = market
        self.forecast = forecast
        self.model_ref = model_ref
        self.level = level
        self.yes = yes
        self.no = no
        self.verdicts: list[tuple[DecisionUnit, Decimal, str | None, str | None]] = []

    def records(self) -> list[EdgeRecord]:
        """One EdgeRecord per unit and side (what `edges` stores)."""
        m, f = self.market, self.forecast
        yes_mid = (m.yes_bid + m.yes_ask) / _TWO
        out = []
        for unit, min_edge, yes_reason, no_reason in self.verdicts:
            method_id = unit.method.method_id if unit.method is not None else None
            for side, reason, implied in ((self.yes, yes_reason, yes_mid), (self.no, no_reason, ONE - yes_mid)):
                if side is None:
                    continue
                out.append(EdgeRecord(
                    m.ticker, m.event_ticker, side.side, side.p_side, side.price, q4(implied), side.fee,
                    side.slippage, side.cost, side.edge, side.ev_pct, f.confidence, self.level, side.action,
                    unit.strategy.ref.strategy_id, self.model_ref.model_id, method_id, f.sample_size, f.ci_width,
                    min_edge, reason is None, reason, m.market_version_id))
        return out


@dataclass(slots=True)
class ScanResult:
    run_id: str
    started_ts: float
    markets: int = 0
    evaluations: list[MarketEval] = field(default_factory=list)
    signals: int = 0
    approved: list[Approval] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    sized: dict[str, SizeResult] = field(default_factory=dict)  # ticker -> size of the chosen signal
    units: tuple[str, ...] = ()
    model_errors: list[str] = field(default_factory=list)

    @property
    def intents(self) -> list[OrderIntent]:
        return [a.intent for a in self.approved]

    @property
    def edges(self) -> list[EdgeRecord]:
        """Every edge of the scan, one per market, side and unit."""
        return [rec for ev in self.evaluations for rec in ev.records()]


class DecisionEngine:
    def __init__(self, settings: TradingSettings, units: Sequence[DecisionUnit], risk: RiskManager, *,
                 breakers: BreakerBoard | None = None, costs: CostTable | None = None, keep_edges: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.units = tuple(units)
        self.risk = risk
        self.breakers = breakers
        self.costs = costs if costs is not None else risk.costs
        self.keep_edges = keep_edges
        self._clock = clock
        self._priority = {name: i for i, name in enumerate(settings.strategy_priority)}
        self._excluded = frozenset(settings.exclude_categories)
        self._blacklist = re.compile("|".join(f"(?:{p})" for p in settings.blacklist_patterns)) \
            if settings.blacklist_patterns else None
        self._halftime_seen: dict[str, float] = {}
        # methods deprecated while this engine runs (`retire`): still priced, never a signal
        self.retired: frozenset[int] = frozenset()
        # A/B capital shares worked out again while running (`set_capital_shares`), by method_id: they override the
        # share each unit was loaded with
        self.capital_shares: dict[int, Decimal | None] = {}
        # selection_logic best_sharpe: strategy_id -> the Sharpe ratio of its closed positions (`set_strategy_sharpe`)
        self.strategy_sharpe: Mapping[int, Decimal] = {}
        self._anomaly = settings.breakers.edge_anomaly_min_edge
        self._static_scope: dict[str, str | None] = {}
        self._alert_at, self._auto_at = settings.alert_at, settings.auto_execute_at
        self._fractions: dict[tuple[int, int, str, str | None], Decimal] = {}
        # units grouped by (model, shrinkage): a market's edges are computed once per group, then judged per unit
        slots: dict[int, int] = {}
        groups: dict[tuple[int, Decimal], tuple[ProbabilityModel, ModelRef, ShrinkTable, list[tuple[Any, ...]]]] = {}
        tables: dict[Decimal, ShrinkTable] = {}
        for unit in self.units:
            slot = slots.setdefault(id(unit.strategy), len(slots))
            factor = unit.strategy.shrinkage_factor
            factor = settings.shrinkage_factor if factor is None else factor
            table = tables.setdefault(factor, ShrinkTable(factor))
            group = groups.setdefault((id(unit.model), factor), (unit.model, unit.model_ref, table, []))
            group[3].append((unit, unit.strategy, unit.method, slot, {}))
        self._n_strategies = len(slots)
        self._groups = tuple((model, ref, table, tuple(members)) for model, ref, table, members in groups.values())

    def retire(self, method_ids: Iterable[int]) -> None:
        """No more signals for these methods (deprecated while trading). Their units stay in the scan, so their
        forecasts still price the positions they hold; their verdict on every side is `method_deprecated`."""
        self.retired = self.retired | frozenset(method_ids)

    def set_strategy_sharpe(self, sharpe: Mapping[int, Decimal]) -> None:
        """The strategy versions' Sharpe ratios best_sharpe selection reads (snapshot.load_strategy_sharpe)."""
        self.strategy_sharpe = sharpe

    def set_capital_shares(self, shares: Mapping[int, Decimal | None]) -> None:
        """The bankroll share each method trades with from now on (by method_id; others keep theirs)."""
        self.capital_shares = {**self.capital_shares, **shares}

    # ------------------------------------------------------------ the scan
    def scan(self, markets: Iterable[MarketView], games: Mapping[str, GameView] | None = None, *,
             positions: Iterable[PositionView] | None = None, balance: Decimal | None = None,
             now: float | None = None, timings: list[int] | None = None) -> ScanResult:
        """One decision pass over `markets`. `games` is keyed by the market's event_ticker."""
        now = self._clock() if now is None else now
        if positions is not None or balance is not None:
            self.risk.sync(positions if positions is not None else (), balance)
        games = self._with_halftime(games or {}, now)
        result = ScanResult(str(uuid.uuid4()), now, units=tuple(u.label for u in self.units))
        scan_market = self._scan_market
        # each market's best signal, put to sizing and risk approval once every market is scanned: the largest edge
        # first (markets.yaml prioritization.sort_by edge), so the room left under the limits goes to the best edges;
        # `composite` by the weighted edge / liquidity / confidence score (precog.trading.priority); `ticker` keeps
        # the markets' order
        candidates: list[tuple[Signal, MarketView, GameView | None, int]] = []
        if timings is None:
            for market in markets:
                game = games.get(market.event_ticker)
                best = scan_market(market, game, now, result)
                if best is not None:
                    candidates.append((best, market, game, -1))
        else:
            clock_ns = time.perf_counter_ns
            for market in markets:
                t0 = clock_ns()
                game = games.get(market.event_ticker)
                best = scan_market(market, game, now, result)
                timings.append(clock_ns() - t0)
                if best is not None:
                    candidates.append((best, market, game, len(timings) - 1))
        if len(candidates) > 1:
            if self.settings.prioritize_by == "edge":
                candidates.sort(key=lambda c: -c[0].side.edge)  # stable: equal edges keep the markets' order
            elif self.settings.prioritize_by == "composite":
                scores = composite_scores([_composite_inputs(c[0], c[1]) for c in candidates],
                                          self.settings.composite_weights)
                order = sorted(range(len(candidates)), key=lambda i: -scores[i])  # stable, as for edge
                candidates = [candidates[i] for i in order]
        for best, market, game, slot in candidates:
            if slot < 0:
                self._act(best, market, game, now, result)
            else:
                t0 = time.perf_counter_ns()
                self._act(best, market, game, now, result)
                timings[slot] += time.perf_counter_ns() - t0  # type: ignore[index]  # a market's time includes its approval
        return result

    def _with_halftime(self, games: Mapping[str, GameView], now: float) -> Mapping[str, GameView]:
        """Remember when each game was first seen at halftime (the halftime strategy's window starts there)."""
        out = None
        for key, game in games.items():
            gid = f"{game.state.sport}:{game.state.game_id}"
            if game.state.status != "halftime":
                self._halftime_seen.pop(gid, None)
                continue
            if game.halftime_started_ts is not None:
                continue
            first = self._halftime_seen.setdefault(gid, min(now, game.observed_ts))
            if out is None:
                out = dict(games)
            out[key] = replace(game, halftime_started_ts=first)
        return out if out is not None else games

    def _out_of_scope(self, m: MarketView) -> str | None:
        if m.status != "open":
            return "not_open"
        if m.market_type != "binary":
            return "not_binary"
        static = self._static_scope.get(m.ticker, self)
        if static is self:
            static = None
            if m.category in self._excluded:
                static = "excluded_category"
            elif self._blacklist is not None and self._blacklist.match(m.ticker):
                static = "blacklisted"
            if len(self._static_scope) > 200000:
                self._static_scope.clear()
            self._static_scope[m.ticker] = static
        return static  # type: ignore[return-value]

    def _scan_market(self, m: MarketView, game: GameView | None, now: float, result: ScanResult) -> Signal | None:
        """Evaluate one market for every unit (its edges and verdicts into `result`); its best signal, if any."""
        result.markets += 1
        skip = self._out_of_scope(m)
        if skip is not None:
            result.skipped[skip] = result.skipped.get(skip, 0) + 1
            return None
        costs = self.costs
        retired = self.retired
        alert_at, auto_at = self._alert_at, self._auto_at
        ask = m.yes_ask
        no_price = ONE - m.yes_bid
        table = None
        sport = m.sport
        special = m.special_event
        phases: list[object] = [_UNSET] * self._n_strategies
        best: Signal | None = None
        forecasts: dict[int, Forecast | None] = {}
        for model, model_ref, shrink, members in self._groups:
            mkey = id(model)
            if mkey in forecasts:
                f = forecasts[mkey]
            else:
                f = forecasts[mkey] = model.forecast(m, game)
            if f is None:
                continue
            p_yes = shrink[f.p_yes]
            if table is None:
                table = costs.table(m.fee_multiplier)
            yes = SideEdge(YES, p_yes, table[ask], alert_at, auto_at) if ZERO < ask < ONE else None
            no = SideEdge(NO, ONE - p_yes, table[no_price], alert_at, auto_at) if ZERO < no_price < ONE else None
            ev = MarketEval(m, f, model_ref, f.level or confidence_level(f), yes, no)
            if self.keep_edges:
                result.evaluations.append(ev)
            if self.breakers is not None:
                for side in (yes, no):
                    if side is not None and side.edge >= self._anomaly:
                        self.breakers.record_edge(side.edge, ticker=m.ticker, at=now)
            verdicts = ev.verdicts
            for unit, strategy, method, slot, mins in members:
                if method is not None and not method.sport_enabled(sport):
                    continue
                phase = phases[slot]
                if phase is _UNSET:
                    phase = strategy.phase_block(m, game, now)
                    phases[slot] = phase
                min_edge = mins.get(sport) if special is None else None
                if min_edge is None:
                    min_edge = self.risk.min_edge_for(strategy, method, m)
                    if special is None:
                        mins[sport] = min_edge
                if retired and method is not None and method.method_id in retired:
                    verdicts.append((unit, min_edge, "method_deprecated", "method_deprecated"))
                    continue
                if yes is None:
                    yes_reason: str | None = "no_offer"
                elif yes.edge < min_edge:
                    yes_reason = "edge_below_min"
                elif phase is not None:
                    yes_reason = phase  # type: ignore[assignment]
                else:
                    yes_reason = strategy.side_block(m, game, "yes", yes.p_side, now)
                if no is None:
                    no_reason: str | None = "no_offer"
                elif no.edge < min_edge:
                    no_reason = "edge_below_min"
                elif phase is not None:
                    no_reason = phase  # type: ignore[assignment]
                else:
                    no_reason = strategy.side_block(m, game, "no", no.p_side, now)
                verdicts.append((unit, min_edge, yes_reason, no_reason))
                if yes_reason is None or no_reason is None:
                    rank = self._priority.get(strategy.name, len(self._priority))
                    for side, reason in ((yes, yes_reason), (no, no_reason)):
                        if reason is None and side is not None:
                            result.signals += 1
                            if best is None or self._better(rank, side.edge, best, strategy.ref.strategy_id):
                                best = Signal(unit, ev, side, min_edge, rank)
        return best

    def _better(self, rank: int, edge: Decimal, best: Signal, strategy_id: int | None = None) -> bool:
        """Whether a signal (its strategy's priority rank, edge and strategy version) beats the best so far:
        best_edge by an edge at least min_edge_difference larger; best_sharpe by the strategy version's Sharpe ratio
        (one with a ratio beats one without); otherwise, and on a tie, priority, then the larger edge."""
        method = self.settings.selection_method
        if method == "best_sharpe":
            mine = self.strategy_sharpe.get(strategy_id) if strategy_id is not None else None
            their_id = best.unit.strategy.ref.strategy_id
            theirs = self.strategy_sharpe.get(their_id) if their_id is not None else None
            if mine is not None and (theirs is None or mine > theirs):
                return True
            if theirs is not None and (mine is None or theirs > mine):
                return False
        elif method == "best_edge":
            gap = edge - best.side.edge
            if gap >= self.settings.min_edge_difference:
                return True
            if -gap >= self.settings.min_edge_difference:
                return False
        return (rank, -edge) < (best.rank, -best.side.edge)

    # ------------------------------------------------------------ size and approve
    def size(self, unit: DecisionUnit, m: MarketView, side: SideEdge, forecast: Forecast, now: float, *,
             market_style: bool = False) -> SizeResult:
        """The size of one signal by the configured sizing method (trading.yaml position_sizing.method: Kelly,
        fixed or fixed_fraction), fitted under every cap and the room left in the book. A market-style order is
        fitted at the taker fee whatever edge_detection.assume_taker says (the risk gate prices it so)."""
        settings, risk = self.settings, self.risk
        strategy, method = unit.strategy, unit.method
        bankroll = risk.balance
        if method is not None:
            share = self.capital_shares.get(method.method_id, method.capital_share) if method.method_id is not None \
                else method.capital_share
            if share is not None:
                bankroll = bankroll * share
        key = (id(strategy), id(method), m.sport, m.special_event)
        fraction = self._fractions.get(key)
        if fraction is None:
            fraction = self._fractions[key] = kelly_multiplier(
                settings, m.sport, strategy_fraction=strategy.kelly_fraction,
                method_fraction=method.kelly_for(m.sport) if method is not None else None,
                special_event=m.special_event)
        settles = m.settlement_ts  # spec 5.3 "> 3 h to settlement": not Kalshi's close_time (the latest close)
        factor, names = size_adjustment(
            settings.adjustments, volume=m.volume, spread=m.spread,
            seconds_to_settlement=(settles - now) if settles is not None else None,
            confidence=forecast.confidence, ci_width=forecast.ci_width, volatility_ratio=m.volatility_ratio)
        caps = [("max_position_pct", settings.max_position_pct * bankroll), *risk.headroom(m, strategy, method)]
        largest = risk.book.largest_in_game(m.event_ticker)
        if largest > 0:
            caps.append(("same_game_ratio", settings.adjustments.same_game_max_ratio * largest))
        fees = self.costs.schedule(m.fee_multiplier)
        return size_position(p=side.p_side, price=side.price, fee_per_contract=side.fee, slippage=side.slippage,
                             fees=fees, bankroll=bankroll, fraction=fraction, caps=caps,
                             min_position=settings.min_position_dollars, adjustment=factor, adjustments=names,
                             taker=settings.assume_taker or market_style, method=settings.sizing,
                             event_multiplier=special_event_multiplier(settings, m.special_event))

    def _act(self, best: Signal, m: MarketView, game: GameView | None, now: float, result: ScanResult) -> None:
        unit, side, ev = best.unit, best.side, best.evaluation
        strategy, method = unit.strategy, unit.method
        forecast = ev.forecast
        # spec 5.2 / 5.10: market-style when the edge is above market_order_edge (0.15; at it: limit) or the strategy
        # is market-style (settlement arbitrage)
        market_style = strategy.order_type == "market" or side.edge > self.settings.market_order_edge
        sized = self.size(unit, m, side, forecast, now, market_style=market_style)
        result.sized[m.ticker] = sized
        method_id = method.method_id if method is not None else None
        if sized.count == 0:
            result.rejections.append(self.risk.reject(
                "size", f"no whole contract fits: {sized.limit}", market=m, side=side.side,
                strategy_id=strategy.ref.strategy_id, model_id=unit.model_ref.model_id, method_id=method_id,
                edge=side.edge, now=now, details={"kelly": sized.kelly, "fraction": sized.fraction,
                                                  "target": sized.target, "adjustments": list(sized.adjustments),
                                                  "volatility_ratio": m.volatility_ratio,
                                                  "sizing_method": sized.method},
                calculation_run_id=result.run_id))
            return
        order_type = "market" if market_style else (method.order_type if method is not None else "limit")
        intent = OrderIntent(
            intent_id=f"{result.run_id}:{m.ticker}:{side.side}:{unit.label}", market=m, side=side.side,
            quantity=sized.count, price=side.price, p_side=side.p_side, fee_per_contract=side.fee,
            slippage=side.slippage, edge=side.edge, ev_pct=side.ev_pct, confidence=forecast.confidence,
            confidence_level=ev.level, strategy=strategy, model=unit.model_ref, method=method,
            order_type=order_type, stake=sized.stake, created_ts=now, game=game, calculation_run_id=result.run_id,
            size_limit=sized.limit, size_adjustments=sized.adjustments)
        outcome = self.risk.approve(intent, now)
        if isinstance(outcome, Approval):
            result.approved.append(outcome)
        else:
            result.rejections.append(outcome)
