"""The trading loop: market data -> probability -> edge -> sized, approved order -> fills -> positions ->
trailing stops and exits -> settlement -> P&L, one `step()` at a time.

The same Engine runs live, paper, the demo and the tests; only the venue and the clock differ. `step()` is
clock-agnostic (timeouts are compared with `clock()`), so the demo drives it in accelerated simulated
time and `precog run` drives it in real time.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

import psycopg
from psycopg.pq import TransactionStatus

from precog.alerts.api import AlertRaiser
from precog.config.loader import Config
from precog.domain.fees import FeeSchedule
from precog.domain.market import Market, MarketStatus
from precog.domain.money import ZERO
from precog.engine import entries
from precog.engine.data_watch import DataWatch, RejectedMarketData, live_game_ages, market_defect
from precog.engine.venue import Venue
from precog.ingest.scd2 import jsonb
from precog.trading import exits as ex
from precog.trading import trailing
from precog.trading.drawdown import DrawdownRule, DrawdownWatch
from precog.trading.executor import Executor, ExitManager, OrderIntent
from precog.trading.monitor import MonitorConfig, PositionMonitor, PriceCache, StalePriceWatch
from precog.trading.orders import TERMINAL, OrderStore
from precog.trading.portfolio import BookedFill, PnlAlertRule, Portfolio
from precog.trading.reconcile import ReconcileReport, reconcile
from precog.trading.settlement import settle_market, venue_settlement_for
from precog.trading.var import Holding, VarRule, VarWatch
from precog.trading.volatility import VolatilityRule, VolatilityTracker
from precog.venues.kalshi.errors import KalshiSchemaError

log = logging.getLogger(__name__)

# risk checks that refuse an entry for lack of room (not for lack of edge): a reason to rebalance
_CAPACITY_CHECKS = frozenset({"position_count", "game_positions", "game_exposure", "sport_exposure",
                              "correlated_exposure", "total_exposure", "market_exposure"})


def prepare_connection(conn: psycopg.Connection[Any]) -> None:
    """Session settings of the engine's connection.

    synchronous_commit = off: a commit returns once it is in the WAL buffer, not after the disk flush (~4 ms
    each here). A killed engine process loses nothing (the server still writes everything it acknowledged);
    only a crash of the database server itself can lose the last fraction of a second of writes, and then
    startup reconciliation restores them from the venue, which is the source of truth for orders and fills
    (unknown orders are adopted, missed fills booked)."""
    conn.execute("SET synchronous_commit = off")


def _reconnector(conn: psycopg.Connection[Any]) -> Callable[[], psycopg.Connection[Any]]:
    """A function opening a new connection like `conn` (same server, database, user and password)."""
    from psycopg.conninfo import conninfo_to_dict

    params: dict[str, Any] = conninfo_to_dict(conn.info.dsn)
    if conn.info.password:
        params["password"] = conn.info.password
    return lambda: psycopg.connect(autocommit=True, **params)


# how often a database-backed breaker board re-reads the breakers other processes trip and reset
BOARD_REFRESH_SECONDS = 2.0

# an entry's time in force by order type: a limit rests until its timeout, a market-style entry takes what is there
_TIME_IN_FORCE = {"limit": "good_till_canceled", "market": "immediate_or_cancel"}


def _text(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


@dataclass
class TrackedMarket:
    ticker: str
    event_id: str
    sport: str
    close_time: datetime | None = None


@dataclass(frozen=True)
class Estimate:
    p_yes: Decimal
    confidence: str = "medium"  # high | medium | low


class ProbabilitySource(Protocol):
    def estimate(self, model_key: str, ticker: str, now: datetime) -> Estimate | None:
        """P(YES) from one model for one market now, or None when the model has nothing to say."""
        ...

    def phase(self, ticker: str, now: datetime) -> str:
        """pre_game | live | final for the game behind the market."""
        ...


@dataclass
class _Scan:
    """One entry scan's shared state: the venue cash, read at the first decision and after each order."""

    balance: Decimal | None = None
    portfolio: entries.PortfolioView | None = None  # of that cash and the book then; dropped with it


@dataclass
class EngineStats:
    steps: int = 0
    entries_sent: int = 0
    entries_refused: dict[str, int] = field(default_factory=dict)
    exits_started: dict[str, int] = field(default_factory=dict)
    breakers: list[str] = field(default_factory=list)
    settled_positions: int = 0
    reconcile: ReconcileReport | None = None


class Engine:
    def __init__(self, conn: psycopg.Connection[Any], venue: Venue, *, config: Config, mode: str, kind: str,
                 methods: list[entries.MethodSpec], probabilities: ProbabilitySource,
                 markets: list[TrackedMarket], clock: Callable[[], datetime], alerts: AlertRaiser | None = None,
                 environment: str | None = None, fees: FeeSchedule | None = None,
                 initial_cash: Decimal | None = None, decision_interval_s: float = 15,
                 planner: Any = None, market_data: str = "stream", reconcile_interval_s: float = 300,
                 breakers: Any = None, reconcile_cash: bool = False,
                 reconnect: Callable[[], psycopg.Connection[Any]] | None = None,
                 risk_settings: Any = None, auto_deprecation: bool | None = None,
                 prod_target: bool | None = None) -> None:
        if not conn.autocommit:
            raise ValueError("the engine needs an autocommit connection (each write is its own transaction)")
        if auto_deprecation and "backtest" in (kind, mode):
            raise ValueError("a backtest never deprecates methods (auto_deprecation must be off)")
        prepare_connection(conn)
        self.conn = conn
        self._reconnect = reconnect or _reconnector(conn)
        self.venue = venue
        self.config = config
        self.mode = mode
        self.kind = kind
        self.methods = methods
        self.probabilities = probabilities
        self.markets = {m.ticker: m for m in markets}
        self.clock = clock
        self.alerts = alerts
        self.environment = environment
        self.fees = fees or FeeSchedule()
        self.initial_cash = initial_cash
        self.decision_interval = timedelta(seconds=decision_interval_s)
        # optional: entries from the decision layer (precog.trading.decide) instead of the built-in planner
        self.planner = planner
        # stream: every cycle reads each market (a push feed: the local exchange, a WebSocket book);
        # poll: reads go through the 10 s TTL price cache and its 60-calls-a-minute budget (spec 5.5)
        if market_data not in ("stream", "poll"):
            raise ValueError(f"market_data must be stream or poll, got {market_data!r}")
        self.market_data = market_data
        self.reconcile_interval = timedelta(seconds=reconcile_interval_s)
        # the decision layer's BreakerBoard (precog.trading.breakers): fed by this loop, it owns the trading
        # state; without one the loop applies its own daily-loss and consecutive-loss breakers
        # the venue account started at `initial_cash` and only this account's runs moved it (a fresh local
        # exchange or paper account): reconciliation then checks cash to the cent as well
        self.reconcile_cash = reconcile_cash and initial_cash is not None
        self.board: Any = breakers if breakers is not None else getattr(planner, "board", None)
        self._board_read_at: float | None = None  # when the board last re-read the database's breakers
        self._board_read_wall = 0.0  # the same on the wall clock (time.monotonic)
        self._last_reconcile: datetime | None = None
        self._planned: dict[str, Any] = {}  # client_order_id -> PlannedEntry whose approval is reserved
        self._last_scan: datetime | None = None
        self._forecasts_refreshed: datetime | None = None  # the planner's models re-run without a scan
        pm = config.section("position_management")
        trading_cfg = config.section("trading")
        self.limits = entries.RiskLimits.from_config(trading_cfg, pm)
        # the rolling volatility estimate of every tracked market (spec 5.3 size reduction), fed in _enter
        self.volatility = VolatilityTracker(VolatilityRule.from_mapping(pm.get("sizing_adjustments")))
        # spec 5.11: the hedge of a winning position is an exit condition (trade_strategies hedge_strategy)
        self.rules = ex.ExitRules.from_config(pm, config.section("trade_strategies").get("hedge_strategy"))
        self.trailing_config = trailing.TrailingConfig.from_mapping(pm.get("trailing_stop", {}))
        self.monitor_config = MonitorConfig.from_mapping(pm.get("monitoring", {}))
        self.daily_loss_limit = Decimal(str(trading_cfg.get("account", {}).get("daily_loss_limit_dollars", "500")))
        # the order type of an entry whose method names none (trading.execution.default_order_type)
        self.default_order_type = str(config.get("trading.execution.default_order_type"))
        if self.default_order_type not in ("limit", "market"):
            raise ValueError("trading.execution.default_order_type must be limit or market, got "
                             f"{self.default_order_type!r}")
        # method_id -> (default_order_type, order_timeout) of its execution_config, each None when it names none
        self._method_execution: dict[int, tuple[str | None, timedelta | None]] = {}
        # how long a limit entry rests before it is canceled (spec 5.10), unless its method sets its own
        self.entry_timeout = timedelta(seconds=float(config.get("trading.execution.limit_order_timeout_seconds", 30)))
        self.consecutive_losses_limit = int(trading_cfg.get("circuit_breakers", {}).get("consecutive_losses", 5))
        self.trading_state = "ACTIVE"
        self.breaker_active = False
        self.stats = EngineStats()
        self.snapshots: dict[str, Market] = {}
        self._last_decision: dict[tuple[int, str], datetime] = {}
        # (method, market) -> the quote, method, forecast and trading state its last decision was refused on
        # by the first checks (screen_entry), and the refusal: the same immutable quote needs no second screening
        self._screen_refusals: dict[tuple[int, str], tuple[Market, Any, Decimal, str, str]] = {}
        self._settled_markets: set[str] = set()
        self._loss_streak = 0
        # the best edge an entry had that was refused only for lack of room (positions/exposure): a reason
        # to rebalance out of a weaker, profitable position
        self._blocked_edge: Decimal | None = None
        self._blocked_at: datetime | None = None
        self.rebalance_margin = Decimal("0.05")
        # every entry of the built-in planner is put to the shared pre-trade gate (precog.trading.risk, spec 5.2);
        # the decision layer (planner) brings its own RiskManager. `risk_settings` (TradingSettings) defaults to
        # the configuration's.
        self.entry_risk: entries.EngineRisk | None = None
        self._approvals: dict[str, Any] = {}  # client_order_id -> Approval reserved for a resting entry
        self._units_loaded: datetime | None = None
        if planner is None:
            from precog.trading.settings import TradingSettings

            settings = risk_settings if risk_settings is not None else TradingSettings.from_config(config)
            gate = self.board if self.board is not None else entries._StateGate(lambda: self.trading_state)
            self.entry_risk = entries.EngineRisk(conn, settings, mode=mode, gate=gate)
        self.run_id = self._start_run()
        self.store = OrderStore(conn)
        self.portfolio = Portfolio(conn, venue.platform_id, mode, self.trailing_config, venue.account_ref)
        # alerts a trader is owed: closes past the P&L thresholds (trading.alerts) and open positions whose price
        # went stale (REQ-MON-002); a backtest replays the past and pages nobody
        alerting = alerts is not None and kind != "backtest"
        if alerting:
            self.portfolio.pnl_alerts = PnlAlertRule.from_config(trading_cfg)
        # open positions an earlier process opened on this account: this run manages them, so their P&L is in
        # the run's (the loop's own daily-loss breaker must see a loss that began before a restart)
        self._taken_over = [p.position_id for p in self.portfolio.open_positions()]
        self.executor = Executor(venue, self.store, self.portfolio, run_id=self.run_id, mode=mode, clock=clock,
                                 alerts=alerts, on_fill=self._on_fill)
        resume = getattr(venue, "resume", None)
        if callable(resume) and initial_cash is not None:  # a paper account carried over a restart
            resume(initial_cash + self.account_cash_delta(), self.portfolio.open_positions(),
                   list(self.executor.open.values()))
        self.exits = ExitManager(self.executor, pm.get("exit_execution"), alerts)
        # ADR-009: entries that wait for a person's approval (trading.manual_approval, precog.trading.approvals);
        # `prod_target`: the orders go to Kalshi production (default: environment == "prod")
        self.approvals = self._approval_store(environment == "prod" if prod_target is None else prod_target)
        self._approval_rows: dict[str, Any] = {}  # approval key -> outstanding row, read each cycle
        self._approvals_seen: set[str] = set()  # approval keys a decision of the current scan reached
        # whether an approved entry's order may have been finalized as never placed since the last review: at the
        # first review (a dead process's orders, startup reconciliation), then while an entry's outcome is unknown
        self._never_placed_due = True
        if self.approvals is not None and planner is not None and hasattr(planner, "reserved"):
            planner.reserved = self._pending_views  # pending entries hold exposure in the decision scan too
        self.monitor = PositionMonitor(self.portfolio, self.exits, self.rules, self.trailing_config,
                                       self.monitor_config)
        self.monitor.fees = self.fees  # a hedge's sale is sized net of the fee entries pay
        self._trailing_defaults = dict(pm.get("trailing_stop", {}))
        for m in methods:
            if m.position_mgmt:
                self.monitor.method_rules[m.method_id] = self._rules_for(m.position_mgmt)
        # a position opened by a method this engine was not given (the decision layer's, or an earlier run's)
        # is managed with that method's own position management, read from its (immutable) row
        self.monitor.load_method_rules = self._stored_method_rules
        # when the engine's view of each market was last confirmed, and the bad payloads refused: the data_stale
        # and data_quality breakers (precog.engine.data_watch); every market read goes through `_read_market`
        self.data_watch = DataWatch(self.board, venue.platform_id)
        self.prices = PriceCache(self._read_market, clock, ttl_seconds=self.monitor_config.price_cache_ttl_seconds,
                                 max_calls_per_minute=self.monitor_config.max_api_calls_per_minute)
        self.stale_watch = StalePriceWatch(self.monitor_config.stale_after_seconds, alerts) \
            if alerting and alerts is not None else None
        # the account's equity against its peak (trading.alerts.max_drawdown_pct), read when the balance is recorded
        self.drawdown_watch = DrawdownWatch(DrawdownRule.from_config(trading_cfg), alerts, venue.platform_id, mode) \
            if alerting else None
        # the open positions' value at risk to settlement against equity (trading.alerts.max_var_pct), same cadence
        self.var_watch = VarWatch(VarRule.from_config(trading_cfg), alerts, venue.platform_id, mode) \
            if alerting else None
        # system_health rows (the dashboard's Engine health): at most one write per interval, plus one when a
        # component's status changes; backtests replay the past and write none
        self.health_interval = timedelta(seconds=float(config.get("system.health_checks.interval_seconds", 60)))
        self.max_latency_ms = float(config.get("system.health_checks.max_api_latency_ms", 5000))
        self._health_written: datetime | None = None
        self._health_status: dict[str, str] = {}
        self._cycle_ms: float | None = None
        self._slow_alerted = False  # a health_degraded alert was raised for the current run of slow cycles
        self._cycle_error: str | None = None
        self._cycle_failures = 0
        self._venue_ok: bool | None = None  # None until the engine has called the venue
        self._venue_error: str | None = None
        self._setup_auto_deprecation(auto_deprecation)
        self._trade_orders: set[str] = set()  # orders already counted as a trade (unusual-activity breaker)
        self._api_watched: list[Any] = []  # Kalshi clients reporting each request's outcome (`_watch_api`)

    # ------------------------------------------------------------------ lifecycle

    def _start_run(self) -> int:
        row = self.conn.execute(
            "INSERT INTO engine_runs (kind, mode, platform_id, environment, account_ref) VALUES (%s, %s, %s, %s, %s) "
            "RETURNING run_id",
            (self.kind, self.mode, self.venue.platform_id, self.environment, self.venue.account_ref)).fetchone()
        assert row is not None
        return int(row[0])

    def _rules_for(self, position_mgmt: dict[str, Any]) -> tuple[ex.ExitRules, trailing.TrailingConfig]:
        return (ex.rules_for_method(self.rules, position_mgmt),
                trailing.TrailingConfig.from_mapping({**self._trailing_defaults,
                                                      **position_mgmt.get("trailing_stop", {})}))

    def _stored_method_rules(self, method_id: int) -> tuple[ex.ExitRules, trailing.TrailingConfig] | None:
        row = self.conn.execute("SELECT position_mgmt_config FROM methods WHERE method_id = %s",
                                (method_id,)).fetchone()
        return self._rules_for(dict(row[0])) if row is not None and row[0] else None

    async def start(self) -> ReconcileReport:
        """Reconcile with the venue before trading; an unexplained mismatch halts trading."""
        self._watch_api()  # before the first venue call (startup reconciliation)
        rep = await reconcile(self.executor, startup=True, alerts=self.alerts, expected_cash=self._expected_cash())
        await self.record_balance()
        self.stats.reconcile = rep
        self._last_reconcile = self.clock()
        self.stats.settled_positions += rep.positions_settled
        if not rep.ok:
            self._halt_for_reconciliation(rep, "startup reconciliation")
        self._refresh_stored_metrics()
        # closes an earlier process booked and died before alerting, and the ones reconciliation just booked
        self._raise_pnl_alerts(everything=True)
        await self._check_deprecations(self.clock())
        return rep

    def _refresh_stored_metrics(self) -> None:
        """The stored paper/live figures of the methods this engine runs and of their strategy versions, from their
        closed positions. Every close keeps them true (`Portfolio.save`); this brings in positions closed before
        that was so, or written by other processes."""
        from precog.trading.portfolio import METRIC_MODES
        from precog.trading.strategies import refresh_owner_metrics

        if self.mode in METRIC_MODES:
            for method in self.methods:
                refresh_owner_metrics(self.conn, method.method_id, method.strategy_id)

    async def stop(self, summary: dict[str, Any] | None = None) -> None:
        """Cancel our working entries, book the last fills, record the balance and end the run. With the venue
        unreachable the venue's part cannot be done: the run still ends, its summary lists what was left
        (`stop_incomplete`) and a warning says so; the next start reconciles orders and fills with the venue."""
        left: list[str] = []
        for rec in list(self.executor.open.values()):
            if rec.status not in TERMINAL and rec.purpose == "entry":
                try:
                    await self.executor.cancel(rec, reason="engine stopping")
                except Exception as exc:  # noqa: BLE001 - an outage must not keep the run from ending
                    left.append(f"entry {rec.client_order_id} not canceled ({type(exc).__name__}: {exc})")
        try:
            await self.executor.sync_fills()
        except Exception as exc:  # noqa: BLE001 - as above
            left.append(f"fills not booked ({type(exc).__name__}: {exc})")
        self._raise_pnl_alerts()
        try:
            await self.record_balance()
        except Exception as exc:  # noqa: BLE001 - as above
            left.append(f"balance not recorded ({type(exc).__name__}: {exc})")
        if left:
            log.warning("run %s stopped with the venue unreachable: %s; the next start reconciles orders and fills "
                        "with the venue", self.run_id, "; ".join(left))
            summary = {**(summary or {}), "stop_incomplete": left}
        self.conn.execute("UPDATE engine_runs SET ended_at = now(), summary = %s WHERE run_id = %s",
                          (jsonb(summary or {}), self.run_id))

    async def _recover_database(self) -> None:
        """The connection died (a database restart): connect again, rebuild what is in memory from the database
        (which may have lost its last unflushed writes) and re-read the venue, as at a restart."""
        new = self._reconnect()
        prepare_connection(new)
        old = self.conn
        recorder = self.entry_risk.risk.recorder if self.entry_risk is not None else None
        for holder in (self, self.store, self.portfolio, self.alerts, self.planner, self.entry_risk, recorder):
            if holder is not None and getattr(holder, "conn", None) is old:
                holder.conn = new  # type: ignore[union-attr]
        log.warning("database connection re-established; reconciling with the venue")
        self.portfolio.load_open()
        self.executor.open = {o.client_order_id: o for o in
                              self.store.open_orders(self.venue.platform_id, self.venue.account_ref)}
        self.executor._booked = {r[0] for r in new.execute(
            "SELECT fill_id FROM trades WHERE platform_id = %s AND fill_id IS NOT NULL", (self.venue.platform_id,))}
        self.executor._fills_seen_ms = None  # read the whole fill history again: book what the database lost
        rep = await reconcile(self.executor, startup=False, alerts=self.alerts, expected_cash=self._expected_cash())
        if not rep.ok:
            self._halt_for_reconciliation(rep, "reconciliation after a database reconnect")
        if self.alerts is not None:
            self.alerts.raise_alert("database_reconnected", "high", "trading_engine",
                                    "the engine lost its database connection and reconnected; books reconciled",
                                    {"fills_booked": rep.fills_booked, "mismatches": rep.mismatches},
                                    dedup_key=f"db_reconnect:{self.run_id}", category="system")

    async def record_balance(self) -> None:
        """The venue account's cash and portfolio value as a new account_balance version, keyed by (platform,
        mode) — in paper mode the paper account's (SCD2; written when it changed). The decision layer sizes
        the next entries on it and the dashboard shows it."""
        from precog.ingest import scd2

        if self.kind == "backtest":
            return  # a replayed account: its equity curve is in the backtest's own tables, not the current balance
        bal = await self.venue.balance()
        if bal.balance < 0:
            return
        watch = self.drawdown_watch
        if watch is not None and watch.peak is None and self.venue.platform_id != "local":
            # the account's recorded peak (a simulated world's account is new each run: its own readings only)
            watch.seed(self.conn, self.clock())
        scd2.write_one(self.conn, scd2.ACCOUNT_BALANCE, {
            "platform_id": self.venue.platform_id, "mode": self.mode, "balance": bal.balance,
            "portfolio_value": bal.portfolio_value, "currency": "USD"})
        equity = bal.balance + (bal.portfolio_value or ZERO)
        if watch is not None:
            try:
                watch.observe(equity, self.clock())
            except Exception:  # noqa: BLE001 - an alert that cannot be raised never stops trading (logged)
                log.exception("could not check the account's drawdown")
        if self.var_watch is not None:
            try:
                self.var_watch.observe([Holding(p.event_id or p.market_id, p.market_id, p.side, p.quantity,
                                                p.current_price if p.current_price is not None else p.entry_price)
                                        for p in self.portfolio.open_positions()], equity)
            except Exception:  # noqa: BLE001 - as above
                log.exception("could not check the positions' value at risk")

    async def _reconcile_periodically(self, now: datetime) -> None:
        """Orders, fills and positions against the venue; a mismatch that survives a second look (a fill may
        land between reading our books and the venue's) halts trading."""
        self._last_reconcile = now
        rep = await reconcile(self.executor, startup=False, expected_cash=self._expected_cash())
        await self.record_balance()
        if not rep.ok:
            rep = await reconcile(self.executor, startup=False, alerts=self.alerts,
                                  expected_cash=self._expected_cash())
        self.stats.settled_positions += rep.positions_settled
        if rep.positions_settled:  # settled by reconciliation (e.g. while the loop was away): every version
            self._check_model_health(now, None)
        if not rep.ok and self.trading_state != "HALTED":
            self._halt_for_reconciliation(rep, "periodic reconciliation")

    def _halt_for_reconciliation(self, rep: ReconcileReport, what: str) -> None:
        if self.board is not None:
            self.board.trip("reconciliation", f"{what}: {len(rep.mismatches)} unexplained difference(s)",
                            trigger_value={"mismatches": rep.mismatches}, now=self.clock().timestamp())
        else:
            self._record_breaker("reconciliation", {"mismatches": rep.mismatches}, "halt")
        self.set_state("HALTED", f"{what}: {rep.mismatches}")

    def set_state(self, state: str, reason: str) -> None:
        if state == self.trading_state:
            return
        log.warning("trading state %s -> %s: %s", self.trading_state, state, reason)
        self.trading_state = state
        self.conn.execute("UPDATE engine_runs SET trading_state = %s, state_reason = %s WHERE run_id = %s",
                          (state, reason[:1000], self.run_id))

    # ------------------------------------------------------------------ one cycle

    async def step(self) -> None:
        started = time.perf_counter()
        try:
            await self._cycle()
        except Exception as exc:
            self._cycle_failures += 1
            self._cycle_error = f"{type(exc).__name__}: {exc}"[:500]
            self._watch_data(self.clock())  # data not refreshed by a failed cycle keeps aging: data_stale sees it
            self._record_health(self.clock())
            raise
        finally:
            self._after_cycle()
        self._cycle_ms = (time.perf_counter() - started) * 1000
        self._cycle_failures = 0
        self._cycle_error = None
        self._watch_latency(self._cycle_ms)
        self._record_health(self.clock())

    def _watch_latency(self, cycle_ms: float) -> None:
        """A cycle slower than system.health_checks.max_api_latency_ms degrades the engine's health (spec 8.2:
        health degradation): one health_degraded alert (medium) per episode; a cycle back within the limit
        ends it. Failed cycles and venue outages have their own alerts (engine_step_failed, api_failure)."""
        if self.alerts is None or self.kind == "backtest":
            return
        if cycle_ms <= self.max_latency_ms:
            self._slow_alerted = False
            return
        if self._slow_alerted:
            return
        self._slow_alerted = True
        try:
            self.alerts.raise_alert(
                "health_degraded", "medium", "trading_engine",
                f"an engine cycle took {cycle_ms:,.0f} ms (limit {self.max_latency_ms:,.0f} ms: "
                "system.health_checks.max_api_latency_ms); prices, exits and orders wait that long",
                {"run_id": self.run_id, "cycle_latency_ms": round(cycle_ms, 1),
                 "max_api_latency_ms": self.max_latency_ms, "open_positions": len(self.portfolio.open_positions())},
                dedup_key=f"slow_cycle:{self.run_id}", category="system")
        except Exception:  # noqa: BLE001 - an alerting problem must not stop trading
            log.exception("could not raise the slow-cycle alert")

    def _after_cycle(self) -> None:
        """Alerts owed whatever the cycle did, a failed one included (a venue that stopped answering fails the
        cycle itself): open positions whose price went stale, closes past the P&L thresholds. Never raises."""
        if self.stale_watch is not None:
            try:
                self.stale_watch.observe(self.portfolio.open_positions(), self.prices.fetched_at, self.clock())
            except Exception:  # noqa: BLE001 - an alerting problem must not stop trading
                log.exception("could not check the open positions' price age")
        self._raise_pnl_alerts()

    def _raise_pnl_alerts(self, *, everything: bool = False) -> None:
        """Raise the loss/gain alert each close past a trading.alerts threshold owes (`Portfolio.owed_pnl_alerts`):
        the closes booked since the last call, or (`everything`, at start) every one no alert answers yet. Runs
        after the close committed, so a failure here never undoes or blocks it; what failed is tried again at the
        next call, and a crash in between leaves the debt in the position's row for the next start."""
        portfolio = self.portfolio
        if self.alerts is None or portfolio.pnl_alerts is None or (not everything and not portfolio.closed_unalerted):
            return
        if self.conn.closed or self.conn.broken or self.conn.info.transaction_status != TransactionStatus.IDLE:
            return  # mid-transaction (or no connection): the close may not be committed yet; the next call sees it
        wanted = None if everything else set(portfolio.closed_unalerted)
        try:
            owed = portfolio.owed_pnl_alerts(wanted)
        except psycopg.Error as exc:
            log.warning("could not read the P&L alerts closes owe (tried again next cycle): %s", exc)
            return
        failed = {row["position_id"] for row in owed if not self._raise_pnl_alert(row)}
        # a close not listed owes nothing (inside the thresholds, already alerted, or its booking rolled back)
        portfolio.closed_unalerted = failed if wanted is None else (portfolio.closed_unalerted - wanted) | failed

    def _raise_pnl_alert(self, row: dict[str, Any]) -> bool:
        assert self.alerts is not None
        kind, pid, pnl = str(row["alert_type"]), int(row["position_id"]), row["realized_pnl"]
        loss = kind == "loss_threshold"
        threshold = Decimal(str(row["threshold"]))
        settled = row["status"] == "settled"
        closed_by = "settlement" if settled else f"exit ({row['exit_reason'] or 'manual'})"
        method = f"{row['method_name']}@{row['method_version']}" if row["method_name"] else None
        sign = "-" if pnl < 0 else "+"
        message = (f"position {pid} on {row['market_id']} closed by {closed_by} with realized P&L "
                   f"{sign}${abs(pnl):,.2f} ({'loss' if loss else 'gain'} alert at "
                   f"{'-' if loss else '+'}${threshold:,.2f})" + (f", method {method}" if method else ""))
        details = {
            "position_id": pid, "market_id": row["market_id"], "event_id": row["event_id"], "sport": row["sport"],
            "side": row["side"], "mode": row["mode"], "closed_by": "settlement" if settled else "exit",
            "exit_reason": row["exit_reason"], "exit_price": _text(row["exit_price"]),
            "exit_time": row["exit_time"].isoformat() if row["exit_time"] is not None else None,
            "quantity": row["initial_quantity"], "entry_price": _text(row["entry_price"]),
            "realized_pnl": str(pnl), "threshold_dollars": str(threshold), "method_id": row["method_id"],
            "method": method, "strategy_id": row["strategy_id"], "model_id": row["model_id"]}
        try:
            self.alerts.raise_alert(kind, "high" if loss else "medium", "portfolio", message, details,
                                    source_table="positions", source_id=pid, dedup_key=f"{kind}:{pid}",
                                    category="trading")
        except Exception:  # noqa: BLE001 - the close stands; the alert is tried again at the next call
            log.exception("could not raise the %s alert of position %s", kind, pid)
            return False
        return True

    def _health_rows(self) -> list[tuple[str, str, dict[str, Any]]]:
        if self._cycle_failures >= 3:
            status = "down"
        elif self._cycle_failures or self.trading_state != "ACTIVE" or (
                self._cycle_ms is not None and self._cycle_ms > self.max_latency_ms):
            status = "degraded"
        else:
            status = "healthy"
        rows = [("trading_engine", status, {
            "run_id": self.run_id, "mode": self.mode, "kind": self.kind, "trading_state": self.trading_state,
            "cycle_latency_ms": None if self._cycle_ms is None else round(self._cycle_ms, 1),
            "open_positions": len(self.portfolio.open_positions()),
            "open_orders": sum(1 for o in self.executor.open.values() if o.status not in TERMINAL),
            "steps": self.stats.steps, "consecutive_failures": self._cycle_failures,
            "last_error": self._cycle_error})]
        if self._venue_ok is not None:
            component = "kalshi_api" if self.venue.platform_id == "kalshi" else "exchange"
            rows.append((component, "healthy" if self._venue_ok else "down",
                         {"platform_id": self.venue.platform_id, "run_id": self.run_id,
                          "last_error": self._venue_error}))
        return rows

    def _record_health(self, now: datetime) -> None:
        """One system_health row per component when the interval has passed or a status changed."""
        if self.kind == "backtest" or self.conn.closed or self.conn.broken:
            return
        rows = self._health_rows()
        due = self._health_written is None or now - self._health_written >= self.health_interval
        if not due and all(self._health_status.get(c) == st for c, st, _ in rows):
            return
        try:
            with self.conn.cursor() as cur:
                cur.executemany("INSERT INTO system_health (component, status, details) VALUES (%s, %s, %s)",
                                [(c, st, jsonb(d)) for c, st, d in rows])
        except psycopg.Error as exc:  # health is reporting, never a reason to stop trading
            log.warning("could not write system_health: %s", str(exc).splitlines()[0] if str(exc) else exc)
            return
        self._health_written = now
        self._health_status = {c: st for c, st, _ in rows}

    async def _cycle(self) -> None:
        if self.conn.closed or self.conn.broken:
            await self._recover_database()
        now = self.clock()
        self.stats.steps += 1
        await self._refresh_markets()
        await self.executor.sync_fills()
        await self._manage_entry_orders(now)
        await self._settle(now)
        self._check_breakers(now)
        self._pause_exits()
        await self._monitor(now)
        await self.exits.step(self.snapshots, now)
        if self._last_reconcile is not None and now - self._last_reconcile >= self.reconcile_interval:
            await self._reconcile_periodically(now)
        if self.auto_deprecation and (self._closed_since_check or self._deprecation_checked is None
                                      or now - self._deprecation_checked >= self.deprecation_interval):
            await self._check_deprecations(now)
        if self.trading_state == "ACTIVE":
            if self.planner is not None:
                await self._enter_planned(now)
            else:
                await self._enter(now)

    async def _refresh_markets(self) -> None:
        from precog.engine.market_stream import stream_of

        # tracked markets in the order they were added, then any other market we hold: snapshots (and so
        # settlements within one cycle) keep a deterministic order
        tickers = dict.fromkeys(self.markets) | dict.fromkeys(p.market_id for p in self.portfolio.open_positions())
        # a live market view (Kalshi's WebSocket) follows what the engine holds, has resting and plans; a ticker
        # it serves is read from memory every cycle (no REST budget spent), the others through the price cache
        stream = stream_of(self.venue)
        if stream is not None:
            resting = {o.market_id for o in self.executor.open.values() if o.status not in TERMINAL}
            # the planner's candidates: the markets its latest scan evaluated (entries are priced on them)
            candidates = set(getattr(self.planner, "forecasts", None) or ())
            await stream.follow(set(tickers) | resting | candidates | {e.ticker for e in self._planned.values()})
        watch = self.data_watch
        for t in tickers:
            if t in self._settled_markets and t not in {p.market_id for p in self.portfolio.open_positions()}:
                continue
            requested = self.clock().timestamp()
            watch.wanted(t, requested)
            try:
                if self.market_data == "poll" and not (stream is not None and stream.is_live(t)):
                    cached = await self.prices.get(t)
                    self._venue_ok, self._venue_error = True, None
                    if cached is not None:
                        self.snapshots[t] = cached
                    fetched = self.prices.fetched_at(t)  # a read the REST budget held back: as old as its fetch
                    if fetched is not None:
                        watch.confirm(t, fetched.timestamp())
                    continue
                # a live stream view is as old as the connection's last proof of life; any other read is current
                age = stream.data_age(t) if stream is not None else None
                m = await self._read_market(t)
            except RejectedMarketData:
                continue  # a bad payload (counted): the last good snapshot stays, and ages
            except Exception as exc:
                self._venue_ok, self._venue_error = False, f"{type(exc).__name__}: {exc}"[:500]
                raise
            self._venue_ok, self._venue_error = True, None
            self.snapshots[t] = m
            self.prices.put(m)
            watch.confirm(t, requested - (age or 0.0))

    async def _read_market(self, ticker: str) -> Market:
        """One market from the venue; a malformed payload is refused (RejectedMarketData, one bad data point for
        the data_quality breaker), never used: the Kalshi client's own refusals (a missing field, a price outside
        [0, 1]) and `market_defect`'s (a price outside [0, 1], a crossed or inverted open book, another market)."""
        try:
            m = await self.venue.market(ticker)
        except KalshiSchemaError as exc:
            raise self.data_watch.reject(ticker, f"malformed payload: {exc.field} {exc.problem}",
                                         self.clock().timestamp()) from exc
        defect = market_defect(m, ticker)
        if defect is not None:
            raise self.data_watch.reject(ticker, defect, self.clock().timestamp())
        return m

    async def _manage_entry_orders(self, now: datetime) -> None:
        for rec in list(self.executor.open.values()):
            if rec.purpose != "entry" or rec.status in TERMINAL:
                continue
            await self.executor.refresh(rec)
            if rec.status not in TERMINAL and rec.expires_at is not None and now >= rec.expires_at:
                await self.executor.cancel(rec, reason="entry limit order timed out")
        for cid in [c for c, _ in self._planned.items()
                    if c not in self.executor.open or self.executor.open[c].status in TERMINAL]:
            self.planner.release(self._planned.pop(cid))
        if self.entry_risk is not None:
            for cid in [c for c in self._approvals
                        if c not in self.executor.open or self.executor.open[c].status in TERMINAL]:
                self.entry_risk.release(self._approvals.pop(cid))
        self._review_approvals(now)

    async def _settle(self, now: datetime) -> None:
        settlements = None
        held = {p.market_id for p in self.portfolio.open_positions()}
        models: set[int] = set()  # model versions whose positions settled now: their health is re-checked
        for t, m in self.snapshots.items():
            if m.status is not MarketStatus.SETTLED or m.settlement_value is None:
                continue
            # a market already settled is passed again only when we hold something there: a fill booked after
            # its pass (listed late by the venue) is settled now, not at the next periodic reconciliation
            if t in self._settled_markets and t not in held:
                continue
            if t in held:
                if settlements is None:
                    settlements = await self.venue.settlements()
                models |= {p.model_id for p in self.portfolio.open_in_market(t) if p.model_id is not None}
                done = settle_market(self.portfolio, t, m.settlement_value, now,
                                     venue_settlement=venue_settlement_for(settlements, t), run_id=self.run_id,
                                     market_result=m.result or None, alerts=self.alerts)
                self.stats.settled_positions += len(done)
                for s in done:  # a position's result is all of it, as when an exit closes it
                    self._record_outcome(s.position_pnl)
                if done:
                    self._closed_since_check = True
            self._settled_markets.add(t)
        if models:
            self._check_model_health(now, models)

    def _check_model_health(self, now: datetime, model_ids: set[int] | None) -> None:
        """Spec 7.3 monitoring: re-check the model versions whose positions just settled (None: every version
        with settled positions) and raise model_degradation once per episode (precog.forecast.health). Reporting
        only: it never blocks trading, and a failure here is logged, never raised."""
        if self.alerts is None or self.kind == "backtest" or self.mode == "backtest":
            return
        from precog.forecast.health import HealthSettings, check_models

        try:
            check_models(self.conn, HealthSettings.from_config(self.config), self.alerts, now, model_ids)
        except Exception:  # noqa: BLE001 - model health is reporting, never a reason to stop trading
            log.exception("could not check the health of model versions %s", sorted(model_ids or ()))

    def _on_fill(self, booked: BookedFill, order: Any) -> None:
        # a trade, for the unusual-activity limits, is an order of ours that executed: the fills of one order
        # (a paper order walking the book, a resting order filled piece by piece) count once
        if self.board is not None and order.client_order_id not in self._trade_orders:
            self._trade_orders.add(order.client_order_id)
            self.board.record_fill(at=self.clock().timestamp())
        if not booked.position.is_open and booked.position.status == "closed":
            self._record_outcome(booked.position.realized_pnl)
            self._closed_since_check = True

    def _record_outcome(self, realized: Decimal) -> None:
        self._loss_streak = self._loss_streak + 1 if realized < 0 else 0
        if self.board is not None:
            self.board.record_trade_result(realized, at=self.clock().timestamp())

    # ------------------------------------------------------------------ venue and database failures (spec 5.4)

    def _watch_api(self) -> None:
        """Every Kalshi client behind the venue (the venue's, a paper venue's market data, a market stream's REST
        client) reports each request's outcome here: the api_failures / api_outage breakers count them."""
        if self.kind == "backtest":
            return
        from precog.engine.market_stream import stream_of
        from precog.venues.kalshi.client import AsyncKalshiClient

        for holder in (self.venue, getattr(self.venue, "data", None), stream_of(self.venue)):
            for attr in ("client", "rest"):
                client = getattr(holder, attr, None) if holder is not None else None
                if isinstance(client, AsyncKalshiClient) and all(client is not c for c in self._api_watched):
                    self._api_watched.append(client)
                    client.observers.append(self._on_api_outcome)
        stream = stream_of(self.venue)
        if stream is not None and self._on_stream_rejection not in stream.rejection_observers:
            stream.rejection_observers.append(self._on_stream_rejection)  # stream prices refused: data_quality

    def _on_api_outcome(self, ok: bool, detail: str) -> None:
        """One venue request answered (ok) or failed for good: the breaker board counts it (5 consecutive
        failures or 5 within 5 min pause entries; failing for 300 s is an outage), and a failure raises one
        api_failure alert (high) per run, deduplicated while it stays open."""
        at = self.clock().timestamp()
        if ok:
            if self.board is not None:
                self.board.record_api_success(at=at)
            return
        if self.board is not None:
            self.board.record_api_failure(detail[:300], at=at)
        if self.alerts is not None:
            try:
                self.alerts.raise_alert(
                    "api_failure", "high", "kalshi_api", f"a venue request failed: {detail}"[:1000],
                    {"detail": detail[:1000], "run_id": self.run_id, "platform": self.venue.platform_id},
                    dedup_key=f"api_failure:{self.run_id}", category="system")
            except Exception:  # noqa: BLE001 - an alerting problem must not stop trading
                log.exception("could not raise the api_failure alert")

    def record_failure(self, exc: BaseException) -> None:
        """A cycle or position check that failed (the loop goes on): a database error counts toward the
        db_failures breaker (more than 3 within 60 s pause all trading, entries and exits, until an operator
        resets it). Venue failures are counted per request (`_on_api_outcome`), not here."""
        if self.board is None:
            return
        if isinstance(exc, psycopg.Error) or self.conn.closed or self.conn.broken:
            self.board.record_db_error(f"{type(exc).__name__}: {exc}"[:300], at=self.clock().timestamp())

    # ------------------------------------------------------------------ automatic method deprecation

    def _setup_auto_deprecation(self, wanted: bool | None) -> None:
        """Whether this loop applies the automatic deprecation rules (spec 8.1, trade_strategies.yaml
        methods.auto_deprecation) to the methods it trades. Default: every loop on a real venue (`precog run`,
        paper or live); never a backtest (it replays history: its positions are no trading record); not a
        simulated world on the local exchange (`precog demo`, `run --venue local`) unless asked - its methods are
        the demo's fixed rows and one simulated session can condemn them for good."""
        backtest = "backtest" in (self.kind, self.mode)  # asking for it there is refused (__init__)
        self.auto_deprecation = (not backtest and self.venue.platform_id != "local") if wanted is None else wanted
        self.deprecated_methods: set[int] = set()  # deprecated while this engine ran: no new entry for them
        self._deprecation_checked: datetime | None = None
        self._closed_since_check = False  # a position closed or settled since the last check
        self._deprecation_alerts: list[Any] = []  # deprecations whose alert could not be raised yet
        if self.auto_deprecation:
            from precog.trading.methods import rules_from_config

            self.deprecation_rules = rules_from_config(self.config)[1]
            self.deprecation_interval = timedelta(minutes=self.deprecation_rules.check_interval_minutes)

    def _traded_method_ids(self) -> set[int]:
        return {m.method_id for m in self.methods} | set(getattr(self.planner, "method_ids", ()))

    async def _check_deprecations(self, now: datetime) -> None:
        """Apply the deprecation rules to the methods this engine trades (their paper + live record on the
        engine's clock); a method deprecated here or elsewhere (the CLI, another loop) gets no new entry from
        now on, its resting entries are canceled, and its open positions are managed to exit or settlement as
        before. Each deprecation made here raises one `method_deprecated` alert. Never raises (logged; the
        next check tries again)."""
        if not self.auto_deprecation:
            return
        from precog.trading.methods import deprecate_due

        self._deprecation_checked, self._closed_since_check = now, False
        ids = self._traded_method_ids() - self.deprecated_methods
        if ids:
            try:
                self._deprecation_alerts += deprecate_due(self.conn, self.deprecation_rules, now=now, method_ids=ids)
            except Exception:  # noqa: BLE001 - a failed check never stops trading; the next one tries again
                log.exception("could not apply the automatic method deprecation rules")
            try:
                gone = {int(r[0]) for r in self.conn.execute(
                    "SELECT method_id FROM methods WHERE method_id = ANY(%s) AND status = 'deprecated'",
                    (sorted(ids),)).fetchall()}
            except psycopg.Error as exc:
                log.warning("could not read the traded methods' statuses (read again at the next check): %s", exc)
                gone = set()
            if gone:
                await self._stop_entries_of(gone)
        self._raise_deprecation_alerts()

    async def _stop_entries_of(self, method_ids: set[int]) -> None:
        self.deprecated_methods |= method_ids
        retire = getattr(self.planner, "retire_methods", None)
        if retire is not None:
            retire(method_ids)
        log.warning("no new entries for deprecated method(s) %s", sorted(method_ids))
        for rec in list(self.executor.open.values()):
            if rec.purpose == "entry" and rec.status not in TERMINAL and rec.method_id in method_ids:
                try:
                    await self.executor.cancel(rec, reason="method deprecated")
                except Exception as exc:  # noqa: BLE001 - the entry's timeout still cancels it
                    log.warning("could not cancel entry %s of a deprecated method: %s", rec.client_order_id, exc)

    def _raise_deprecation_alerts(self) -> None:
        owed, self._deprecation_alerts = self._deprecation_alerts, []
        if self.alerts is None:
            return
        for d in owed:
            rules = self.deprecation_rules
            judged = d.recent if d.rule == "win_rate" else d.overall
            try:
                self.alerts.raise_alert(
                    "method_deprecated", "medium", "trading_engine",
                    f"method {d.ref} was deprecated automatically: {d.reason}; it opens no new position (its open "
                    "positions are managed to exit or settlement)",
                    {"method_id": d.method_id, "method": d.ref, "from_status": d.status, "rule": d.rule,
                     "reason": d.reason, "trades": judged.trades, "wins": judged.wins, "pnl": str(judged.pnl),
                     "win_rate": _text(judged.win_rate), "roi": _text(judged.roi),
                     "window_days": rules.window_days, "min_win_rate": str(rules.min_win_rate),
                     "min_roi": str(rules.min_roi), "min_trades": rules.min_trades, "mode": self.mode,
                     "run_id": self.run_id},
                    source_table="methods", source_id=d.method_id, dedup_key=f"method_deprecated:{d.method_id}",
                    category="trading")
            except Exception:  # noqa: BLE001 - the deprecation stands; the alert is tried again at the next check
                log.exception("could not raise the method_deprecated alert of %s", d.ref)
                self._deprecation_alerts.append(d)

    # ------------------------------------------------------------------ breakers

    def run_pnl(self) -> Decimal:
        row = self.conn.execute(
            "SELECT coalesce(sum(realized_pnl), 0) + coalesce(sum(unrealized_pnl) FILTER (WHERE status = 'open'), 0) "
            "FROM positions WHERE row_current_ind AND ((position_metadata->>'run_id')::bigint = %s "
            "OR position_id = ANY(%s))", (self.run_id, self._taken_over)).fetchone()
        return row[0] if row else ZERO

    def _check_breakers(self, now: datetime) -> None:
        if self.board is not None:
            self._watch_data(now)
            self._follow_board(now)
            return
        if self.breaker_active:
            return
        pnl = self.run_pnl()
        if pnl <= -self.daily_loss_limit:
            self.trip("daily_loss_limit", {"pnl": str(pnl), "limit": str(self.daily_loss_limit)})
        elif self._loss_streak >= self.consecutive_losses_limit:
            self.trip("consecutive_losses", {"streak": self._loss_streak})

    def _watch_data(self, now: datetime) -> None:
        """The data_stale breaker gets the worst age of the data this loop decides on, and a market in a live
        game whose price passed 5 minutes counts one bad data point (precog.engine.data_watch: what counts, and
        why a backtest reports nothing). Never raises (a failed cycle calls it too)."""
        if self.board is None or self.kind == "backtest":
            return
        try:
            self._report_data_ages(now)
        except Exception as exc:  # noqa: BLE001 - reporting must not fail the cycle; the next one reports again
            log.warning("could not report the age of the engine's data: %s", exc)

    def _report_data_ages(self, now: datetime) -> None:
        ts = now.timestamp()
        watch = self.data_watch
        held = {p.market_id for p in self.portfolio.open_positions()}
        read = dict.fromkeys(self.markets) | dict.fromkeys(held)  # what `_refresh_markets` reads
        watch.forget(read)
        ages: list[tuple[float, str]] = []
        in_live_games: list[str] = []
        for t in read:
            snap = self.snapshots.get(t)
            if t not in held and (t in self._settled_markets or (snap is not None and not snap.is_tradable)):
                continue  # no entry or exit can be decided on it
            ages.append((watch.market_age(t, ts), f"{self.venue.platform_id} market data for {t}"))
            if self.planner is None and self._phase_of(t, now) == "live":
                in_live_games.append(t)
        if self.planner is not None:  # the decision layer trades on ingestion's stored game states
            wanted = (held | {o.market_id for o in self.executor.open.values() if o.status not in TERMINAL}
                      | set(getattr(self.planner, "forecasts", None) or ()) | {e.ticker for e in self._planned.values()})
            for label, age, markets in live_game_ages(self.conn, wanted, ts):
                ages.append((age, label))
                in_live_games.extend(m for m in markets if m in read)
        watch.live_price_check(in_live_games, ts)
        watch.report(ages, ts)

    def _phase_of(self, ticker: str, now: datetime) -> str | None:
        try:
            return self.probabilities.phase(ticker, now)
        except Exception:  # noqa: BLE001 - a market the probability source does not know has no game phase
            return None

    def _on_stream_rejection(self, ticker: str, defect: str) -> None:
        """The market stream refused a price (or could not read a message): one bad data point."""
        self.data_watch.bad_point(ticker, defect, self.clock().timestamp())

    def _follow_board(self, now: datetime) -> None:
        """Report the marks and position count to the breaker board and take its trading state; a tripped
        close-all breaker closes every position with CRITICAL exits."""
        from precog.trading.breakers import CLOSE_ALL

        at = now.timestamp()
        wall = time.monotonic()
        if getattr(self.board, "store", None) is not None and (
                self._board_read_at is None or at - self._board_read_at >= BOARD_REFRESH_SECONDS
                or wall - self._board_read_wall >= BOARD_REFRESH_SECONDS):
            # trips and resets by other processes (`precog halt`/`resume`, the dashboard, ingestion) reach a
            # running engine within seconds, not at its next restart: seconds of its clock or of the wall's,
            # whichever pass first (a simulated loop paced slower than real time)
            self._board_read_at, self._board_read_wall = at, wall
            self.board.refresh(at)
        open_pos = self.portfolio.open_positions()
        self.board.record_pnl(sum((p.unrealized_pnl or ZERO for p in open_pos), ZERO), at=at)
        self.board.record_open_positions(len(open_pos), at=at)
        self.board.entry_block(at)  # lets expired breakers reset
        mode = str(self.board.mode)
        if mode != self.trading_state:
            names = ", ".join(b.name for b in self.board.open_breakers())
            self.set_state(mode, f"breaker board: {names}" if names else "breaker board: every breaker is closed")
        closing = [b.name for b in self.board.open_breakers() if b.action == CLOSE_ALL]
        if closing and not self.breaker_active:
            self.breaker_active = True
            self.stats.breakers.extend(closing)
        elif not closing:
            self.breaker_active = False

    def trip(self, breaker: str, value: dict[str, Any]) -> None:
        """A breaker that closes every position: CRITICAL `circuit_breaker` exits, and trading halts."""
        self.breaker_active = True
        self.stats.breakers.append(breaker)
        self._record_breaker(breaker, value, "close_all_positions")
        self.set_state("HALTED", f"circuit breaker {breaker}")

    def _record_breaker(self, breaker: str, value: dict[str, Any], action: str) -> None:
        row = self.conn.execute(
            "INSERT INTO circuit_breaker_events (breaker_type, trigger_value, action, environment, notes) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING event_id",
            (breaker, jsonb(value), action, self.environment, f"run {self.run_id}")).fetchone()
        if self.alerts is not None:
            self.alerts.raise_alert("circuit_breaker", "critical", "trading_engine",
                                    f"circuit breaker {breaker} tripped: {action}", value,
                                    source_table="circuit_breaker_events", source_id=int(row[0]) if row else None,
                                    dedup_key=f"breaker:{breaker}:{self.run_id}", category="risk")

    # ------------------------------------------------------------------ positions

    async def check_positions(self) -> None:
        """Between full cycles (spec 5.5 cadence): check only the open positions whose check is due (5 s near a
        threshold, 30 s otherwise) and move the working exits on; no entries, settlement or reconciliation."""
        if self.conn.closed or self.conn.broken:
            return  # the next full cycle reconnects and reconciles
        now = self.clock()
        positions = self.portfolio.open_positions()
        try:
            if not self.exits.jobs and not any(self.breaker_active or self.monitor.due(p, now) for p in positions):
                return
            await self.executor.sync_fills()
            self._pause_exits()
            await self._monitor(now)
            await self.exits.step(self.snapshots, now)
        finally:
            self._after_cycle()

    async def expire_entry_orders(self) -> bool:
        """Between full cycles (`precog run`): cancel the entry orders whose limit_order_timeout_seconds is up, so a
        limit entry never rests past its timeout for want of a full cycle (spec 5.10). True when one was due."""
        if self.conn.closed or self.conn.broken:
            return False  # the next full cycle reconnects and handles them
        now = self.clock()
        if not any(o.purpose == "entry" and o.status not in TERMINAL and o.expires_at is not None
                   and now >= o.expires_at for o in self.executor.open.values()):
            return False
        await self.executor.sync_fills()  # as in a full cycle: fills first, so a released approval was not filled
        await self._manage_entry_orders(now)
        return True

    def _pause_exits(self) -> None:
        """HALTED stops exits too, but for the liquidation a close-all breaker ordered (trading_state
        `allows_exits`; REDUCING and ACTIVE exit as usual): an operator's halt, a weekly loss, a reconciliation
        mismatch or database failures send no exit order until trading resumes."""
        self.exits.paused = self.trading_state == "HALTED" and not self.breaker_active

    def _refresh_position_forecasts(self, now: datetime, positions: list[Any]) -> None:
        """Decision-layer path: the planner's scan re-runs the models each decision interval while trading is
        ACTIVE; when no scan did within the interval (not ACTIVE, the first cycle, cycles further apart than
        the interval) the open positions' models are re-run here."""
        refresh = getattr(self.planner, "refresh_forecasts", None)
        if refresh is None or not positions:
            return
        fresh = self._forecasts_at()
        if fresh is not None and now - fresh < self.decision_interval:
            return
        try:
            refresh({p.market_id for p in positions})
        except Exception as exc:  # noqa: BLE001 - without a forecast the edge exits wait; the rest of the check goes on
            log.warning("could not re-run the models of the open positions: %s", exc)
            return
        self._forecasts_refreshed = now

    def _forecasts_at(self) -> datetime | None:
        times = [t for t in (self._last_scan, self._forecasts_refreshed) if t is not None]
        return max(times) if times else None

    async def _cancel_entries_for_close_all(self) -> None:
        """A close-all breaker: no entry order may stay resting (its fill would open what we are closing)."""
        for rec in list(self.executor.open.values()):
            if rec.purpose == "entry" and rec.status not in TERMINAL:
                try:
                    await self.executor.cancel(rec, reason="circuit breaker: closing all positions")
                except Exception as exc:  # noqa: BLE001 - retried on the next check
                    log.warning("could not cancel entry %s under a close-all breaker: %s", rec.client_order_id, exc)

    async def _monitor(self, now: datetime) -> None:
        if self.planner is not None:
            self._refresh_position_forecasts(now, self.portfolio.open_positions())
        for pos in list(self.portfolio.open_positions()):
            last = pos.last_check_time
            if last is not None and (now - last).total_seconds() > 120 and self.alerts is not None:
                # spec 5.5: no update for 2 minutes means the position is not being watched
                self.alerts.raise_alert("position_unmonitored", "critical", "position_monitor",
                                        f"position {pos.position_id} on {pos.market_id} not checked for "
                                        f"{(now - last).total_seconds():.0f} s", {"position_id": pos.position_id},
                                        source_table="positions", source_id=pos.position_id,
                                        dedup_key=f"unmonitored:{pos.position_id}", category="trading")
            if not self.breaker_active and not self.monitor.due(pos, now):
                continue
            # a push feed is cheap to read: between full cycles a due check reads the current quote, not the
            # one the cycle cached (up to the TTL old); polled data goes through the TTL cache and its budget
            fresh = timedelta(seconds=1) if self.market_data == "stream" else None
            try:
                market = await self.prices.get(pos.market_id, max_age=fresh)
            except RejectedMarketData:
                market = None  # refused and counted: no exit is decided on a payload we do not trust
            if market is not None:
                self.snapshots[pos.market_id] = market  # the exit manager and the edge price on the same quote
            edge = self._recomputed_edge(pos, now)
            better = (self._blocked_edge is not None and edge is not None
                      and self._blocked_edge > edge + self.rebalance_margin)
            result = await self.monitor.check(pos, market, now, recomputed_edge=edge,
                                              breaker_active=self.breaker_active, better_opportunity=better)
            if result.decision is not None and self.exits.jobs.get(pos.position_id) is not None:
                job = self.exits.jobs[pos.position_id]
                if job.started_at == now:
                    name = job.condition
                    self.stats.exits_started[name] = self.stats.exits_started.get(name, 0) + 1
        if self.breaker_active:
            await self._cancel_entries_for_close_all()

    def _recomputed_edge(self, pos: Any, now: datetime) -> Decimal | None:
        """The edge of holding the position now, from the model that opened it, at the current exit price."""
        method = next((m for m in self.methods if m.method_id == pos.method_id), None)
        snap = self.snapshots.get(pos.market_id)
        if snap is None:
            return None
        if method is not None:
            est = self.probabilities.estimate(method.model_key, pos.market_id, now)
            if est is None:
                return None
            p_side = entries.shrink(est.p_yes if pos.side == "yes" else 1 - est.p_yes)
        else:
            # a position the decision layer opened: the same model (model_id) at the planner's latest scan,
            # shrunk like its entry; no scan within two decision intervals is no estimate
            of_position = getattr(self.probabilities, "position_probability", None)
            fresh = self._forecasts_at()
            if of_position is None or fresh is None or now - fresh > 2 * self.decision_interval:
                return None
            found = of_position(pos.market_id, pos.side, model_id=pos.model_id, strategy_id=pos.strategy_id,
                                method_id=pos.method_id)
            if found is None:
                return None
            p_side = found
        bid = snap.yes_bid if pos.side == "yes" else snap.no_bid
        if bid <= 0:
            return None
        return p_side - bid

    # ------------------------------------------------------------------ entries

    def _portfolio_view(self, balance: Decimal) -> entries.PortfolioView:
        open_pos = self.portfolio.open_positions()
        by_game: dict[str, int] = {}
        exp_game: dict[str, Decimal] = {}
        exposure = ZERO
        for p in open_pos:
            game = p.event_id or p.market_id
            by_game[game] = by_game.get(game, 0) + 1
            exp_game[game] = exp_game.get(game, ZERO) + p.cost_basis
            exposure += p.cost_basis
        held = {p.market_id for p in open_pos}
        for rec in self.executor.open.values():
            if rec.purpose == "entry" and rec.status not in TERMINAL:
                held.add(rec.market_id)
                exposure += rec.limit_price * rec.remaining
        for row in self._approval_rows.values():  # an entry waiting for approval holds its market and cost
            if row.status == "pending":
                held.add(row.market_id)
                exposure += row.reserved_cost
                game = row.event_id or row.market_id
                exp_game[game] = exp_game.get(game, ZERO) + row.reserved_cost
        bankroll = self.initial_cash if self.initial_cash is not None else balance + exposure
        return entries.PortfolioView(balance=balance, bankroll=bankroll, open_positions=len(open_pos),
                                     exposure=exposure, markets_held=frozenset(held), positions_by_game=by_game,
                                     exposure_by_game=exp_game, trading_state=self.trading_state)

    def _sync_entry_risk(self, balance: Decimal, now: datetime) -> None:
        """Bring the risk manager's book to our open positions and the venue cash; reload method, strategy and
        model rows (their status) once per decision interval."""
        from precog.trading.views import PositionView

        assert self.entry_risk is not None
        if self._units_loaded is None or now - self._units_loaded >= self.decision_interval:
            self.entry_risk.load_units(self.methods)
            self._units_loaded = now
        views = []
        for p in self.portfolio.open_positions():
            tm = self.markets.get(p.market_id)
            views.append(PositionView(ticker=p.market_id, event_ticker=p.event_id or (tm.event_id if tm else p.market_id),
                                      sport=p.sport or (tm.sport if tm else ""), side=p.side, quantity=p.quantity,
                                      cost=p.cost_basis, method_id=p.method_id, position_id=p.position_id))
        views.extend(self._pending_views())
        # the methods' loss windows run on the engine's clock (simulated in a backtest, which only sees its own run)
        backtest = self.kind == "backtest"
        self.entry_risk.sync(views, balance, now=now.timestamp(), run_id=self.run_id if backtest else None,
                             closes=self.portfolio.closes if backtest else None)

    async def _enter(self, now: datetime) -> None:
        self._forget_blocked(now)
        ts = now.timestamp()
        for tm in self.markets.values():
            snap = self.snapshots.get(tm.ticker)
            if snap is not None:
                self.volatility.observe(tm.ticker, ts, snap.yes_bid, snap.yes_ask)
        scan = _Scan()
        for tm in self.markets.values():
            await self._enter_market(tm, now, scan)

    def _forget_blocked(self, now: datetime) -> None:
        if self._blocked_at is not None and now - self._blocked_at > 2 * self.decision_interval:
            self._blocked_edge = None  # the blocked opportunity was not seen again: it is gone

    async def _enter_market(self, tm: TrackedMarket, now: datetime, scan: _Scan) -> None:
        """Decide every method whose decision on this market is due (at most once per decision interval).
        Deciding changes no snapshot, so the scan observes every market's quote for the volatility tracker
        before it decides any."""
        snap = self.snapshots.get(tm.ticker)
        if snap is None or not snap.is_tradable:
            return
        ts = now.timestamp()
        vol_ratio: Decimal | None = None
        size_factor: Decimal = Decimal(1)
        size_adjustments: tuple[str, ...] = ()
        vol_known = False
        phase = self.probabilities.phase(tm.ticker, now)
        for method in self.methods:
            if method.phase != phase or method.method_id in self.deprecated_methods:
                continue
            key = (method.method_id, tm.ticker)
            last = self._last_decision.get(key)
            if last is not None and now - last < self.decision_interval:
                continue
            self._last_decision[key] = now
            est = self.probabilities.estimate(method.model_key, tm.ticker, now)
            if est is None:
                continue
            repeated = self._refusal_repeated(key, snap, method, est.p_yes)
            if repeated is not None:
                self.stats.entries_refused[repeated] = self.stats.entries_refused.get(repeated, 0) + 1
                continue
            if scan.balance is None:
                scan.balance = (await self.venue.balance()).balance
                self._sync_entry_risk(scan.balance, now)
                scan.portfolio = None
            if scan.portfolio is None:  # positions and working entries change only when an order is sent
                scan.portfolio = self._portfolio_view(scan.balance)
            pv = scan.portfolio
            plan: entries.EntryPlan | None = None
            screened, reason = entries.screen_entry(est.p_yes, snap, method, pv, self.limits, self.fees)
            if screened is not None:  # the sizing inputs only for an entry past the edge checks
                if not vol_known:  # once per market and cycle: recent / normal volatility of the mid
                    vol_ratio = self.volatility.ratio(tm.ticker, ts)
                    size_factor, size_adjustments = self.volatility.rule.size_factor(vol_ratio)
                    vol_known = True
                plan, reason = entries.plan_entry(est.p_yes, snap, method, pv, self.limits, self.fees, tm.event_id,
                                                  size_factor=size_factor, size_adjustments=size_adjustments)
            if plan is None:
                if reason in ("max open positions", "exposure limit reached", "max positions per game"):
                    blocked = entries.best_edge(est.p_yes, snap, self.fees)
                    if blocked is not None and blocked.edge >= max(self.limits.min_edge_global, method.min_edge):
                        self._blocked_edge = max(self._blocked_edge or blocked.edge, blocked.edge)
                        self._blocked_at = now
                short = reason.split(" ")[0] if reason[0].isalpha() else reason
                self.stats.entries_refused[short] = self.stats.entries_refused.get(short, 0) + 1
                self._note_refused(method.method_id, tm.ticker, reason, now)
                if screened is None:  # refused on quote, forecast and trading state alone
                    self._screen_refusals[key] = (snap, method, est.p_yes, pv.trading_state, short)
                continue
            assert self.entry_risk is not None
            approval = self.entry_risk.approve(plan, snap, method, event_id=tm.event_id, sport=tm.sport,
                                               confidence=est.confidence, now=now.timestamp(),
                                               close_ts=tm.close_time.timestamp() if tm.close_time else None)
            if not approval.approved:  # refused by the shared pre-trade checks (recorded with its reason)
                if approval.check in _CAPACITY_CHECKS and plan.edge.edge >= max(self.limits.min_edge_global,
                                                                                  method.min_edge):
                    self._blocked_edge = max(self._blocked_edge or plan.edge.edge, plan.edge.edge)
                    self._blocked_at = now
                key_r = f"risk:{approval.check}"
                self.stats.entries_refused[key_r] = self.stats.entries_refused.get(key_r, 0) + 1
                self._note_refused(method.method_id, tm.ticker, f"risk check {approval.check}: {approval.reason}",
                                   now)
                continue
            bucket = int(now.timestamp() * 1000) // int(self.decision_interval.total_seconds() * 1000)
            order_type = self._entry_order_type(method.method_id, plan.order_type)
            intent = OrderIntent(
                market_id=tm.ticker, side=plan.side, action="buy", quantity=approval.intent.quantity,
                limit_price=plan.limit_price, purpose="entry",
                decision_key=f"method={method.method_id}|market={tm.ticker}|side={plan.side}|buy|t={bucket}",
                order_type=order_type, time_in_force=_TIME_IN_FORCE[order_type], method_id=method.method_id,
                strategy_id=method.strategy_id, model_id=method.model_id, edge=plan.edge.edge,
                confidence=est.confidence,
                expires_at=now + self._entry_timeout(method.method_id),
                metadata={"sport": tm.sport, "event_id": tm.event_id, "p_yes": str(est.p_yes),
                          "ev_pct": str(plan.edge.ev_pct), "approval_id": approval.approval_id,
                          "size_adjustments": list(plan.adjustments),
                          "volatility_ratio": str(vol_ratio) if vol_ratio is not None else None},
                approval=approval)
            rec = await self._submit_or_hold(intent, partial(self.entry_risk.release, approval), now)
            if rec is None:
                if self.approvals is not None:  # a row held for approval now holds this cost: read the book again
                    scan.balance = scan.portfolio = None
                continue
            if rec.status in TERMINAL:
                self.entry_risk.release(approval)
            else:
                self._approvals[rec.client_order_id] = approval
            self.stats.entries_sent += 1
            await self.executor.sync_fills()
            scan.balance = scan.portfolio = None  # read again before the next decision: the order moved cash
            if rec.status.value == "rejected":
                self.stats.entries_refused["venue_rejected"] = self.stats.entries_refused.get(
                    "venue_rejected", 0) + 1

    def _refusal_repeated(self, key: tuple[int, str], snap: Market, method: entries.MethodSpec,
                          p_yes: Decimal) -> str | None:
        """The reason the first entry checks refused this (method, market) last time, when they must refuse it
        again: the same (immutable) quote object, method, forecast and trading state. None otherwise."""
        refused = self._screen_refusals.get(key)
        if refused is not None and refused[0] is snap and refused[1] is method and refused[2] == p_yes \
                and refused[3] == self.trading_state:
            return refused[4]
        return None

    def _entry_order_type(self, method_id: int | None, planned: str) -> str:
        """limit or market for an approved entry: market when its plan already is (an edge at or above
        trading.edges.market_order_edge, a market-style strategy, a method saying market); otherwise the method's
        own execution_config.default_order_type, and for a method naming none (or an entry without a method)
        trading.execution.default_order_type. Either way the price is the approved one: a market entry is
        immediate-or-cancel at it, never above what the risk approval covers."""
        if planned == "market":
            return "market"
        own = self._method_order_type(method_id) if method_id is not None else None
        return own or self.default_order_type

    def _method_order_type(self, method_id: int) -> str | None:
        """The method's execution_config.default_order_type, or None when it names none."""
        return self._execution_of(method_id)[0]

    def _entry_timeout(self, method_id: int | None) -> timedelta:
        """How long an entry of this method rests before it is canceled: its execution_config
        order_timeout_seconds, else trading.execution.limit_order_timeout_seconds."""
        own = self._execution_of(method_id)[1] if method_id is not None else None
        return own or self.entry_timeout

    def _execution_of(self, method_id: int) -> tuple[str | None, timedelta | None]:
        """The method's execution_config default_order_type and order_timeout_seconds (read once per method: method
        configs are immutable; a stored value out of range is refused, as validate_method would)."""
        found = self._method_execution.get(method_id)
        if found is None:
            row = self.conn.execute("SELECT execution_config->>'default_order_type', "
                                    "execution_config->'order_timeout_seconds' FROM methods WHERE method_id = %s",
                                    (method_id,)).fetchone()
            order_type, timeout = row if row is not None else (None, None)
            if order_type not in (None, "limit", "market"):
                raise ValueError(f"method {method_id}: execution_config.default_order_type {order_type!r} must be "
                                 "limit or market")
            if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)
                                        or not 5 <= timeout <= 3600):
                raise ValueError(f"method {method_id}: execution_config.order_timeout_seconds {timeout!r} must be a "
                                 "whole number of seconds in [5, 3600]")
            found = self._method_execution[method_id] = (
                order_type, timedelta(seconds=timeout) if timeout is not None else None)
        return found

    async def _submit_entry(self, intent: OrderIntent, release: Callable[[], None]) -> Any:
        """Send an approved entry; an approval the order path refuses (used, released, expired) sends nothing,
        gives the reservation back and is counted."""
        from precog.trading.risk import ApprovalError

        try:
            return await self.executor.submit(intent)
        except ApprovalError as exc:
            log.warning("entry on %s not sent: %s", intent.market_id, exc)
            release()
            self.stats.entries_refused["approval"] = self.stats.entries_refused.get("approval", 0) + 1
            return None

    # ------------------------------------------------------------------ manual approval (ADR-009)

    def _approval_store(self, prod: bool) -> Any:
        """The approval rows of this loop's account when its entries wait for a person (trading.manual_approval),
        or may wait (when_realtime_down: a live Kalshi-stream loop while the stream is down), else None (entries go
        straight out). `approval_always`: every entry waits (the mode); else only one on a market without live
        real-time data (`approval_realtime`)."""
        from precog.engine.market_stream import stream_of
        from precog.trading.approvals import ApprovalPolicy, ApprovalStore

        policy = self.approval_policy = ApprovalPolicy.from_config(self.config)
        platform = self.venue.platform_id
        self.approval_always = policy.required(trading_mode=self.mode, platform_id=platform, prod=prod,
                                               kind=self.kind)
        self.approval_realtime = policy.watches_realtime(trading_mode=self.mode, platform_id=platform,
                                                         kind=self.kind, streamed=stream_of(self.venue) is not None)
        if self.approval_always:
            log.warning("manual approval (%s): every entry waits for `precog approvals approve`; exits never wait",
                        policy.mode)
        elif self.approval_realtime:
            log.info("manual approval while the real-time market stream is down: such an entry waits for "
                     "`precog approvals approve` (trading.manual_approval.when_realtime_down)")
        else:
            return None
        return ApprovalStore(self.conn, platform_id=platform, account_ref=self.venue.account_ref,
                             mode=self.mode, environment=self.environment, run_id=self.run_id)

    def _pending_views(self) -> list[Any]:
        """Entries waiting for approval as exposure (as a resting entry): they hold their market and cost."""
        from precog.trading.views import PositionView

        return [PositionView(ticker=r.market_id, event_ticker=r.event_id or r.market_id, sport=r.sport or "",
                             side=r.side, quantity=r.count, cost=r.reserved_cost, method_id=r.method_id)
                for r in self._approval_rows.values() if r.status == "pending"]

    def _review_approvals(self, now: datetime) -> None:
        """Expire what is past its time (on the loop's clock), read the outstanding rows (an answer given since
        the last cycle included), and say why approved entries wait while trading is not ACTIVE."""
        if self.approvals is None:
            return
        from precog.trading.orders import OrderState

        # first: an approved entry whose order never reached the venue is approved again (new id) or expires,
        # saying so, before the expiry below could call it merely "not sendable". Only an order whose venue
        # outcome was unknown (created, unresolved) can be finalized so: looked for after one was seen, not every
        # cycle through every submitted row
        if self._never_placed_due:
            for found in self.approvals.never_placed(now, self._resend_client_order_id):
                self._alert_not_sent(found)
        unknown = (OrderState.CREATED, OrderState.UNRESOLVED)
        self._never_placed_due = any(r.purpose == "entry" and r.status in unknown for r in self.executor.open.values())
        for row in self.approvals.expire(now):
            log.warning("entry approval %s (%s %s on %s) expired", row.approval_id, row.side, row.count, row.market_id)
            self.stats.entries_refused["approval_expired"] = self.stats.entries_refused.get("approval_expired", 0) + 1
        self.approvals.mark_sent()  # an order sent before a crash let its row be recorded as sent
        self._approval_rows = self.approvals.outstanding()
        if self.trading_state != "ACTIVE":
            for row in self._approval_rows.values():
                if row.status == "approved":
                    self.approvals.note_not_sent(row.approval_id, f"trading state {self.trading_state}", now)

    def _resend_client_order_id(self, found: Any, decision_key: str) -> str:
        """The client_order_id the executor derives for an approved entry sent again under `decision_key` (what
        `_submit_or_hold` sends it with: the row's decision key, this method, strategy and model)."""
        e = found.entry
        return self.executor.client_order_id(OrderIntent(
            market_id=e.market_id, side=e.side, action="buy", quantity=e.count, limit_price=e.limit_price,
            purpose="entry", decision_key=decision_key, method_id=e.method_id, strategy_id=found.strategy_id,
            model_id=found.model_id))

    def _alert_not_sent(self, found: Any) -> None:
        """An approved entry whose order never reached the venue: logged, and one entry_approval_not_sent alert
        (high) per approval saying what the loop does next (sends it again under a new id, or nothing: expired)."""
        from precog.trading.approvals import NOT_SENT_ALERT_TYPE

        message, details = found.alert()
        log.warning("%s", message)
        if self.alerts is None:
            return
        try:
            self.alerts.raise_alert(
                NOT_SENT_ALERT_TYPE, "high", "trading_engine", message,
                {**details, "mode": self.mode, "environment": self.environment, "run_id": self.run_id},
                source_table="entry_approvals", source_id=found.entry.approval_id,
                dedup_key=f"entry_approval_not_sent:{found.entry.approval_id}", category="trading")
        except Exception:  # noqa: BLE001 - the row says it (not_sent_reason, `precog approvals list`); alerting failed
            log.exception("could not raise the %s alert of approval %s", NOT_SENT_ALERT_TYPE,
                          found.entry.approval_id)

    def _note_refused(self, method_id: int | None, ticker: str, reason: str, now: datetime) -> None:
        """A fresh decision of this method on this market was refused: an approved entry there is not sent."""
        if self.approvals is None:
            return
        for row in self._approval_rows.values():
            if row.status == "approved" and row.market_id == ticker and row.method_id == method_id:
                self.approvals.note_not_sent(row.approval_id, reason, now)

    async def _submit_or_hold(self, intent: OrderIntent, release: Callable[[], None], now: datetime) -> Any:
        """Send an approved entry, or (manual approval) keep it for a person: a decision without an approved row
        becomes a pending one (once per decision key) and nothing is sent; one whose row a person approved is
        sent, at most the approved contracts at a price within the approved limit, under the row's
        client_order_id. The risk approval of an entry not sent is given back."""
        if self.approvals is None:
            return await self._submit_entry(intent, release)
        from precog.engine.market_stream import stream_of
        from precog.trading.approvals import approval_key, realtime_down, realtime_outage

        key = approval_key(self.mode, self.venue.account_ref, intent.decision_key)
        self._approvals_seen.add(key)
        row = self._approval_rows.get(key)
        # spec 7.x: without the mode, an entry waits only when its market's real-time data is down at decision
        # time (a row held then stays until answered or expired, even once the stream is back; a rejection stays
        # final for the decision)
        why = None
        if not self.approval_always and row is None:
            stream = stream_of(self.venue)
            why = realtime_down(stream, intent.market_id) if stream is not None else None
            if why is None and not self.approvals.rejected(key):
                return await self._submit_entry(intent, release)
            if why is not None and not realtime_outage(stream, self.approval_policy.realtime_grace_seconds):
                release()  # a reconnect, the start, a market being subscribed: decided again next time, not asked
                self.stats.entries_refused["awaiting_stream"] = self.stats.entries_refused.get("awaiting_stream", 0) + 1
                return None
        if row is None or row.status != "approved":
            release()  # nothing goes out now; a pending row holds its cost itself
            if row is None:
                self._hold_for_approval(intent, key, now, why)
            self.stats.entries_refused["awaiting_approval"] = self.stats.entries_refused.get("awaiting_approval", 0) + 1
            return None
        if intent.limit_price > row.limit_price:
            release()
            self.approvals.note_not_sent(row.approval_id, f"price {intent.limit_price} is above the approved limit "
                                         f"{row.limit_price}", now)
            self.stats.entries_refused["approval_price"] = self.stats.entries_refused.get("approval_price", 0) + 1
            return None
        sent = dataclasses.replace(intent, decision_key=row.decision_key, quantity=min(intent.quantity, row.count),
                                   metadata={**intent.metadata, "manual_approval_id": row.approval_id,
                                             "approved_by": row.decided_by})
        rec = await self._submit_entry(sent, release)
        if rec is not None:
            self.approvals.mark_submitted(row.approval_id, rec.client_order_id, now)
            self._approval_rows.pop(key, None)
        return rec

    def _hold_for_approval(self, intent: OrderIntent, key: str, now: datetime, why: str | None = None) -> None:
        """A pending row for this decision (none after a rejection: a person's no is final for it) and the
        entry_approval_pending alert (high) that asks for an answer. `why`: the reason when the mode itself would
        not hold it (real-time data down), kept in the row's details and told in the alert."""
        assert self.approvals is not None
        if self.approvals.rejected(key):
            self.stats.entries_refused["approval_rejected"] = self.stats.entries_refused.get("approval_rejected", 0) + 1
            return
        cost = getattr(intent.approval, "cost", None)
        row = self.approvals.add(
            key=key, intent=intent, client_order_id=self.executor.client_order_id(intent),
            reserved_cost=cost if cost is not None else intent.limit_price * intent.quantity, created_at=now,
            expires_at=now + timedelta(seconds=self.approval_policy.timeout_seconds), why=why)
        if row is None:
            return  # another process (or an earlier cycle) holds this decision already
        self._approval_rows[key] = row
        because = f" ({why})" if why else ""
        log.warning("entry waiting for approval %s%s: buy %s %s on %s at <= %s", row.approval_id, because, row.count,
                    row.side, row.market_id, row.limit_price)
        if self.alerts is None:
            return
        try:
            self.alerts.raise_alert(
                "entry_approval_pending", "high", "trading_engine",
                f"entry {row.approval_id} waits for approval{because}: buy {row.count} {row.side.upper()} on "
                f"{row.market_id} at <= ${row.limit_price} (edge {intent.edge}); answer before "
                f"{row.expires_at.isoformat()} with "
                f"`precog approvals approve {row.approval_id} --by NAME` or `precog approvals reject "
                f"{row.approval_id} --by NAME`",
                {"approval_id": row.approval_id, "market_id": row.market_id, "side": row.side, "count": row.count,
                 "limit_price": str(row.limit_price), "edge": _text(intent.edge), "method_id": intent.method_id,
                 "strategy_id": intent.strategy_id, "model_id": intent.model_id, "mode": self.mode,
                 "environment": self.environment, "expires_at": row.expires_at.isoformat(),
                 "client_order_id": row.client_order_id, "run_id": self.run_id, "why": why},
                source_table="entry_approvals", source_id=row.approval_id,
                dedup_key=f"entry_approval:{row.approval_id}", category="trading")
        except Exception:  # noqa: BLE001 - the row stands (listed by `precog approvals list`); alerting failed
            log.exception("could not raise the entry_approval_pending alert of approval %s", row.approval_id)

    async def _enter_planned(self, now: datetime) -> None:
        """Entries approved by the decision layer; each approval is consumed right before its order goes."""

        if self._last_scan is not None and now - self._last_scan < self.decision_interval:
            return
        self._last_scan = now
        bucket = int(now.timestamp() * 1000) // int(self.decision_interval.total_seconds() * 1000)
        held = {p.market_id for p in self.portfolio.open_positions()}
        self._approvals_seen = set()
        for entry in self.planner.plan():
            if entry.ticker in held or entry.method_id in self.deprecated_methods:
                self.planner.release(entry)
                continue
            order_type = self._entry_order_type(entry.method_id, entry.order_type)
            intent = OrderIntent(
                market_id=entry.ticker, side=entry.side, action="buy", quantity=entry.count,
                limit_price=entry.price, purpose="entry",
                decision_key=f"method={entry.method_id}|strategy={entry.strategy_id}|model={entry.model_id}|"
                             f"market={entry.ticker}|side={entry.side}|buy|t={bucket}",
                order_type=order_type, time_in_force=_TIME_IN_FORCE[order_type], method_id=entry.method_id,
                strategy_id=entry.strategy_id, model_id=entry.model_id, edge=entry.edge, edge_id=entry.edge_id,
                confidence=entry.confidence if entry.confidence in ("high", "medium", "low") else None,
                expires_at=now + self._entry_timeout(entry.method_id),
                metadata={"sport": entry.sport, "event_id": entry.event_ticker, "p_side": str(entry.p_side),
                          "size_adjustments": list(entry.approval.intent.size_adjustments),
                          "volatility_ratio": None if entry.approval.intent.market.volatility_ratio is None
                          else str(entry.approval.intent.market.volatility_ratio)},
                approval=entry.approval)  # the executor consumes it right before sending: no order without one
            rec = await self._submit_or_hold(intent, partial(self.planner.release, entry), now)
            if rec is None:
                continue
            self.stats.entries_sent += 1
            if self.board is not None:
                if rec.status.value == "rejected":
                    self.board.record_order_rejected(f"{entry.ticker}: venue refused the order", at=now.timestamp())
                else:
                    self.board.record_order_accepted(at=now.timestamp())
            held.add(entry.ticker)
            if rec.status in TERMINAL:
                self.planner.release(entry)
            else:
                self._planned[rec.client_order_id] = entry
        for key, row in self._approval_rows.items():  # approved, but this scan did not approve the entry again
            if row.status == "approved" and key not in self._approvals_seen and self.approvals is not None:
                self.approvals.note_not_sent(row.approval_id, "the decision scan did not approve this entry again "
                                             "(edge, price or a risk limit)", now)
        await self.executor.sync_fills()

    # ------------------------------------------------------------------ ledger

    def _expected_cash(self) -> Callable[[], Decimal] | None:
        if not self.reconcile_cash or self.initial_cash is None:
            return None
        base = self.initial_cash
        return lambda: base + self.account_cash_delta()

    def account_cash_delta(self) -> Decimal:
        """Cash moved by every run on this venue account: sells - buys - fees + settlement payouts."""
        row = self.conn.execute(
            "SELECT coalesce(sum(CASE WHEN action = 'sell' THEN price * quantity ELSE -price * quantity END "
            "- fees), 0) FROM trades WHERE (trade_metadata->>'run_id')::bigint IN "
            "(SELECT run_id FROM engine_runs WHERE account_ref = %s)", (self.venue.account_ref,)).fetchone()
        trades = row[0] if row else ZERO
        row = self.conn.execute(
            "SELECT coalesce(sum(s.payout), 0) FROM settlements s JOIN positions p ON p.position_id = s.position_id "
            "AND p.row_current_ind WHERE (p.position_metadata->>'run_id')::bigint IN "
            "(SELECT run_id FROM engine_runs WHERE account_ref = %s)", (self.venue.account_ref,)).fetchone()
        return trades + (row[0] if row else ZERO)

    def our_cash_delta(self) -> Decimal:
        """Cash our books say this run moved: sells - buys - fees + settlement payouts."""
        row = self.conn.execute(
            "SELECT coalesce(sum(CASE WHEN action = 'sell' THEN price * quantity ELSE -price * quantity END "
            "- fees), 0) FROM trades WHERE (trade_metadata->>'run_id')::bigint = %s", (self.run_id,)).fetchone()
        trades = row[0] if row else ZERO
        row = self.conn.execute(
            "SELECT coalesce(sum(s.payout), 0) FROM settlements s JOIN positions p ON p.position_id = s.position_id "
            "AND p.row_current_ind WHERE (p.position_metadata->>'run_id')::bigint = %s", (self.run_id,)).fetchone()
        payouts = row[0] if row else ZERO
        return trades + payouts
