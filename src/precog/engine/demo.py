"""`precog demo`: the whole loop on a fresh local exchange with simulated NFL games, in accelerated time.

Teams and Elo ratings come from the seeded `teams` table. A market maker quotes each game's "home team
wins" market around a noisy fair value; two methods trade it (an Elo pre-game method and an in-game
win-probability method). Time is simulated (5 s steps) and paced to `speed` x real time. When every
market has settled, the report compares our books with the exchange's ledger to the cent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from precog.config.loader import Config, load_config
from precog.db.connection import connect
from precog.domain.money import ZERO, to_decimal
from precog.engine.alert_sink import loop_alerts
from precog.engine.core import Engine, Estimate, TrackedMarket
from precog.engine.entries import MethodSpec
from precog.engine.local_venue import LocalVenue
from precog.engine.sim.nfl import GAME_SECONDS, MarketMaker, SimGame, elo_pregame, prob
from precog.engine.venue import Venue
from precog.trading.breakers import BreakerBoard, SimulationBreakerStore
from precog.trading.settings import BreakerSettings
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

log = logging.getLogger(__name__)
SERIES = "KXNFLGAME"
STEP_SECONDS = 5.0
PREGAME_SECONDS = 300.0
STAGGER_SECONDS = 120.0


@dataclass
class DemoOptions:
    games: int = 4
    speed: float = 90.0  # simulated seconds per real second; <= 0 runs as fast as possible
    seed: int | None = None
    transport: str = "http"  # http (the real Kalshi client over loopback) | inprocess
    initial_cash: Decimal = Decimal("10000")
    notify: bool = True  # deliver the run's alerts through the configured channels while it runs


@dataclass
class DemoProgress:
    sim_seconds: float
    total_seconds: float
    games_final: int
    games: int
    trades: int
    lines: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    run_id: int
    seed: int
    trades: int
    positions_settled: int
    pnl: Decimal
    ledger_match: bool
    ledger: dict[str, Any]
    report: dict[str, Any]
    games: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------- methods

# demo_* names: the forecasting package ships its own elo_nfl@v1.0 / wp_nfl@v1.0 (precog.forecast.builtin) with
# other configs, and model versions are immutable too
DEMO_ELO = "demo_elo_nfl"
DEMO_WP = "demo_ingame_wp_nfl"
_MODELS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (DEMO_ELO, "elo", {"k_factor": 20, "home_field": 48}, "Demo: Elo pre-game win probability"),
    (DEMO_WP, "regression", {"sigma": "13.45", "form": "stern_1991"},
     "Demo: in-game win probability (score, clock, Elo spread)"))
# The demo's own strategy rows, named apart from the strategies synced from trade_strategies.yaml
# (precog.trading.strategies): versions are immutable, so sharing a name@version with a different config would
# make `precog edges scan` / `precog methods create` refuse the YAML on the same database.
DEMO_PRE_GAME = "demo_pre_game_entry"
DEMO_LIVE = "demo_live_trading"
_STRATEGIES: tuple[tuple[str, dict[str, Any]], ...] = (
    (DEMO_PRE_GAME, {"min_edge": "0.05", "window_hours": [0.5, 24]}),
    (DEMO_LIVE, {"min_edge": "0.05", "decide_within_seconds": 10}))


def ensure_demo_methods(conn: psycopg.Connection[Any]) -> list[MethodSpec]:
    """The demo's models, strategies and methods (immutable v1.0 rows, created once)."""
    from precog.ingest.scd2 import jsonb

    ids: dict[str, int] = {}
    for name, mtype, cfg, desc in _MODELS:
        conn.execute("INSERT INTO probability_models (model_name, model_version, model_type, sport, config, "
                     "description, status) VALUES (%s, 'v1.0', %s, 'nfl', %s, %s, 'active') "
                     "ON CONFLICT (model_name, model_version) DO NOTHING", (name, mtype, jsonb(cfg), desc))
        ids[name] = conn.execute("SELECT model_id FROM probability_models WHERE model_name = %s AND "
                                 "model_version = 'v1.0'", (name,)).fetchone()[0]  # type: ignore[index]
    for name, cfg in _STRATEGIES:
        conn.execute("INSERT INTO strategies (strategy_name, strategy_version, sport, config, status) "
                     "VALUES (%s, 'v1.0', 'nfl', %s, 'active') ON CONFLICT (strategy_name, strategy_version) "
                     "DO NOTHING", (name, jsonb(cfg)))
        ids[name] = conn.execute("SELECT strategy_id FROM strategies WHERE strategy_name = %s AND "
                                 "strategy_version = 'v1.0'", (name,)).fetchone()[0]  # type: ignore[index]
    specs = []
    for mname, strategy, model, key, phase, pm in _METHODS:
        conn.execute(
            "INSERT INTO methods (method_name, method_version, strategy_id, model_id, position_mgmt_config, "
            "risk_config, execution_config, sport_config, config_hash, status) VALUES (%s, 'v1.1', %s, %s, %s, %s, "
            "%s, %s, %s, 'active') ON CONFLICT (method_name, method_version) DO NOTHING",
            (mname, ids[strategy], ids[model], jsonb(pm), jsonb({"kelly_fraction": "0.25"}),
             jsonb({"default_order_type": "limit"}), jsonb({"nfl": {"enabled": True}}), f"demo-{mname}-v1.1"))
        mid, stored_pm = conn.execute(
            "SELECT method_id, position_mgmt_config FROM methods WHERE method_name = %s AND method_version = 'v1.1'",
            (mname,)).fetchone()  # type: ignore[misc]
        specs.append(MethodSpec(method_id=mid, strategy_id=ids[strategy], model_id=ids[model], name=mname,
                                model_key=key, phase=phase, min_edge=Decimal("0.05"), kelly_fraction=Decimal("0.25"),
                                position_mgmt=stored_pm or None))
    return specs


# The pre-game method holds towards settlement: no targets or trailing stop and a deep stop loss; before kickoff
# it still takes its profit when the price comes to its model (early_exit / edge_disappeared), and once the
# game is live its model has nothing to say, so only the stop or the settlement closes it (no hedge, spec 5.11,
# sells part of a winner). The live method manages positions with the global rules (position_management.yaml,
# and trade_strategies.yaml hedge_strategy). (Method versions are immutable: a new config needs a new version.
# `hedge` came after v1.1 was first stored: a database that stored v1.1 before keeps its row, which leaves the
# hedge to the global setting.)
_HOLD: dict[str, Any] = {"stop_loss": {"high_confidence": "-0.60", "medium_confidence": "-0.60", "low_confidence": "-0.60"},
         "profit_targets": {"high_confidence": "0.90", "medium_confidence": "0.90", "low_confidence": "0.90"},
         "trailing_stop": {"enabled": False}, "partial_exits": {"enabled": False, "stages": []},
         "liquidity": {"max_spread": "0.10", "min_volume": 1}, "hedge": {"enabled": False}}
_METHODS: tuple[tuple[str, str, str, str, str, dict[str, Any]], ...] = (
    ("nfl_elo_pregame", DEMO_PRE_GAME, DEMO_ELO, "elo", "pre_game", _HOLD),
    ("nfl_live_wp", DEMO_LIVE, DEMO_WP, "wp", "live", {}))


def simulated_market_settings(cfg: Config) -> Any:
    """The pre-trade risk settings (TradingSettings) for markets on the simulated local exchange: the configured
    ones, except the market filters the simulation cannot meet by construction -
    - traded volume: the market maker's quoted depth is the liquidity there and the only traded volume is our
      own, so `min_volume_contracts`, each league's `min_liquidity` and global_filters `min_volume_24h` would
      refuse every first entry (the local venue does not report a 24-hour volume at all);
    - open interest (global_filters `min_open_interest`): the only open interest is our own positions;
    - time to close (global_filters `min_hours_to_close`): a simulated market closes when its game ends, so an
      hour's minimum would refuse every entry in a game's last simulated hour; market_filters
      `min_seconds_to_close` still applies;
    - the spread relative to the price (`max_spread_pct`): the simulated market maker quotes a fixed 2-cent
      spread at every price (4 after a score), which is > 5% of any price below 0.40; the absolute per-league
      spread limit (markets.yaml leagues.<sport>.max_spread) still applies;
    - market age (global_filters `min_market_age_hours`): a simulated slate is listed moments before its first
      trade (and a backtest replays markets from their listing), so an hour's minimum would refuse every entry
      of a demo;
    - the size at the ask (global_filters `min_bid_ask_size`): a simulated or replayed book is as deep as the
      world or recording makes it - the tests' books are a few contracts deep on purpose (partial fills, walking
      exits) - so the filter would decide what those worlds are built to exercise (the demo's market maker shows
      150+ contracts at its best prices, so the demo is unaffected either way).
    Every other check (status, binary market, max_days_to_close, freshness, edge, confidence, balance, counts,
    markets held (prioritization), exposure caps, breakers) and the sizing method are as configured."""
    import dataclasses

    from precog.trading.settings import TradingSettings

    configured = TradingSettings.from_config(cfg)
    leagues = {sport: dataclasses.replace(league, min_liquidity=0) for sport, league in configured.leagues.items()}
    return dataclasses.replace(configured, min_volume=0, leagues=leagues, min_volume_24h=0, min_open_interest=0,
                               global_min_seconds_to_close=0, max_spread_pct=Decimal(1), min_market_age_seconds=0,
                               min_bid_ask_size=0)


class SimulationBoard(BreakerBoard):
    """The breaker board of a simulated world: the configured breakers on the world's own results, in simulated
    time, plus every breaker open in the database (`precog halt`, `precog breakers trip`, the dashboard, a real
    engine's trips), re-read as the Kalshi engine re-reads them (store: SimulationBreakerStore).

    Its trade-rate limits (unusual_activity: trades per 5 min / hour / day) are not counted: simulated time
    compresses a slate of games into minutes, so they would pause every demo; the loss, position and invariant
    breakers apply. `attach` the engine's run before the first step; `end` when the world is gone."""

    def __init__(self, settings: BreakerSettings, store: SimulationBreakerStore, alerts: Any) -> None:
        from precog.trading.trading_state import TradingState

        # the trading state in memory: the world's own trips are not the account's state (trading_state_history)
        super().__init__(settings, store=store, state=TradingState(), alerts=alerts)
        self.simulation_store = store

    def record_fill(self, *, at: float | None = None) -> None:
        return None

    def attach(self, engine: Engine) -> None:
        self.simulation_store.attach(engine.run_id)

    def end(self) -> None:
        """Resolve the world's own open breakers (nothing is left for an operator to reset) and close the store's
        connection."""
        try:
            if self.simulation_store.simulation_run is not None:
                own = [b.name for b in self.open_breakers() if b.owned]
                self.reset_many(own, by="system", notes="the simulated world ended", resolution="simulation_ended")
        finally:
            self.simulation_store.close()


def simulation_board(db_url: str, cfg: Config, alerts: Any, environment: str | None) -> SimulationBoard:
    store = SimulationBreakerStore(lambda: connect(db_url, autocommit=True), environment)
    return SimulationBoard(simulated_market_settings(cfg).breakers, store, alerts)


# ---------------------------------------------------------------------------------------------- world

SETTLE_MARGIN_SECONDS = 900  # simulated time past the last final whistle: settlement and the last exits


def simulated_clock(n_games: int, speed: float) -> SimClock:
    """The simulated world's clock, started so that its games end when the session is expected to end in
    wall time (at --speed 1 it is the wall clock; faster, it starts in the past): its orders, fills and
    positions never carry a time after the moment they were booked. `speed` 0 means as fast as possible."""
    span = DemoWorld.span_seconds(n_games) + SETTLE_MARGIN_SECONDS
    ahead = span if speed <= 0 else max(0.0, span * (1.0 - 1.0 / speed))
    return SimClock(int(time.time() - ahead) * 1000)


class DemoWorld:
    """Games, their markets on the exchange, and the market maker. Also the engine's ProbabilitySource."""

    def __init__(self, exchange: Exchange, clock: SimClock, teams: list[tuple[str, str, float]], n_games: int,
                 rng: random.Random, tag: str) -> None:
        self.exchange = exchange
        self.clock = clock
        self.rng = rng
        self.start_ms = clock.now_ms()
        picked = rng.sample(teams, 2 * n_games)
        exchange.create_series(SERIES, "NFL game winner", category="Sports", tags=["Football"])
        exchange.create_account("market-maker", Decimal("10000000"))
        self.mm = MarketMaker(exchange, "market-maker", random.Random(rng.random()))
        self.games: dict[str, SimGame] = {}
        self.tracked: list[TrackedMarket] = []
        for i in range(n_games):
            (hc, hn, he), (ac, an, ae) = picked[2 * i], picked[2 * i + 1]
            start_s = PREGAME_SECONDS + i * STAGGER_SECONDS
            event = f"{SERIES}-{tag}{ac}{hc}"
            ticker = f"{event}-{hc}"
            close_ms = self.start_ms + int((start_s + 4 * 3600) * 1000)
            # expected to settle at the end of regulation (Kalshi's expected_expiration_time); trading may go on
            # until the close, hours later (overtime, a late result)
            game_end_ms = self.start_ms + int((start_s + GAME_SECONDS) * 1000)
            exchange.create_event(event, SERIES, f"{an} at {hn}", sub_title=f"{ac} @ {hc}",
                                  strike_date_ms=self.start_ms + int(start_s * 1000))
            exchange.create_market(ticker, event, title=f"Will {hn} win {ac} @ {hc}?", yes_sub_title=hn,
                                   no_sub_title=an, close_ms=close_ms, expected_expiration_ms=game_end_ms,
                                   settlement_timer_s=0)
            self.games[ticker] = SimGame(event, hc, ac, he, ae, start_s, random.Random(rng.random()))
            self.tracked.append(TrackedMarket(ticker, event, "nfl",
                                              datetime.fromtimestamp(close_ms / 1000, tz=UTC)))

    @property
    def sim_seconds(self) -> float:
        return (self.clock.now_ms() - self.start_ms) / 1000

    @staticmethod
    def span_seconds(n_games: int) -> float:
        """Simulated seconds from the world's start to the last game's final whistle."""
        return PREGAME_SECONDS + (n_games - 1) * STAGGER_SECONDS + 3600 + 60

    def total_seconds(self) -> float:
        return self.span_seconds(len(self.games))

    def all_settled(self) -> bool:
        return all(self.exchange.market(t).status == "finalized" for t in self.games)

    def advance(self, dt: float) -> None:
        self.clock.advance(dt)
        now_s = self.sim_seconds
        for ticker, g in self.games.items():
            g.advance(now_s, dt)
            m = self.exchange.market(ticker)
            if g.status == "final" and g.settlement_value is not None and m.status not in ("determined",
                                                                                           "finalized"):
                self.mm.quote(ticker, g, now_s)  # pulls its quotes
                self.exchange.determine_market(ticker, g.settlement_value)
            elif g.status != "final":
                self.mm.quote(ticker, g, now_s)
        self.exchange.tick()

    # ProbabilitySource
    def estimate(self, model_key: str, ticker: str, now: datetime) -> Estimate | None:
        g = self.games.get(ticker)
        if g is None or g.status == "final":
            return None
        if model_key == "elo":  # a pre-game model: no opinion once the game is under way
            return Estimate(prob(elo_pregame(g.elo_home, g.elo_away)), "medium") if g.status == "scheduled" else None
        if g.status != "live":
            return Estimate(prob(g.win_probability()), "medium")
        conf = "high" if g.seconds_left < 900 else "medium"
        return Estimate(prob(g.win_probability()), conf)

    def phase(self, ticker: str, now: datetime) -> str:
        g = self.games[ticker]
        return {"scheduled": "pre_game", "live": "live", "final": "final"}[g.status]


def demo_teams(conn: psycopg.Connection[Any]) -> list[tuple[str, str, float]]:
    rows = conn.execute("SELECT team_code, team_name, current_elo_rating FROM teams WHERE sport = 'nfl' "
                        "AND current_elo_rating IS NOT NULL ORDER BY team_code").fetchall()
    return [(r[0], r[1], float(r[2])) for r in rows]


# ---------------------------------------------------------------------------------------------- run

async def _venue_for(options: DemoOptions, exchange: Exchange, user: str, stack: list[Any]) -> Venue:
    if options.transport == "inprocess":
        return LocalVenue(exchange, user)
    from precog.engine.kalshi_venue import http_venue_for_local_exchange

    venue, closer = await http_venue_for_local_exchange(exchange, user)
    stack.append(closer)
    return venue


async def run_demo(db_url: str, options: DemoOptions,
                   progress: Callable[[DemoProgress], None] | None = None,
                   config: Config | None = None) -> DemoResult:
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    cfg = config or load_config(db_url=db_url)
    with loop_alerts(db_url, notify=options.notify) as alerts:
        return await _run_demo(db_url, options, progress, cfg, alerts, seed)


async def _run_demo(db_url: str, options: DemoOptions, progress: Callable[[DemoProgress], None] | None,
                    cfg: Config, alerts: Any, seed: int) -> DemoResult:
    from precog.engine.simulated_runs import end_abandoned_runs, end_simulated_run, hold_run_lock

    rng = random.Random(seed)
    conn = connect(db_url, autocommit=True)
    closers: list[Any] = []
    board: SimulationBoard | None = None
    engine: Engine | None = None
    lock: list[Any] = []  # the session holding this run's lock while the process lives (simulated_runs)
    try:
        end_abandoned_runs(conn)  # simulated worlds of processes that died: their positions close
        methods = ensure_demo_methods(conn)
        teams = demo_teams(conn)
        if len(teams) < 2 * options.games:
            raise ValueError(f"--games {options.games} needs {2 * options.games} NFL teams with ratings; the "
                             f"teams table has {len(teams)}")
        clock = simulated_clock(options.games, options.speed)
        exchange = Exchange(clock)  # unseeded: venue ids (fills, orders) never repeat across demo runs
        tag_row = conn.execute("SELECT coalesce(max(run_id), 0) + 1 FROM engine_runs").fetchone()
        tag = f"D{tag_row[0] if tag_row else 1}S{seed}"
        world = DemoWorld(exchange, clock, teams, options.games, rng, tag)
        user = "precog-demo"
        exchange.create_account(user, options.initial_cash)
        venue = await _venue_for(options, exchange, user, closers)

        def now() -> datetime:
            return datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC)

        board = simulation_board(db_url, cfg, alerts, "demo")
        engine = Engine(conn, venue, config=cfg, mode="paper", kind="demo", methods=methods, probabilities=world,
                        markets=world.tracked, clock=now, alerts=alerts, environment="demo",
                        initial_cash=options.initial_cash, reconcile_cash=True,
                        risk_settings=simulated_market_settings(cfg), breakers=board)
        lock.append(hold_run_lock(db_url, engine.run_id))
        board.attach(engine)
        await engine.start()
        wall0 = time.monotonic()
        total = world.total_seconds()
        extra_steps = 0
        while True:
            world.advance(STEP_SECONDS)
            await engine.step()
            if progress is not None and engine.stats.steps % 6 == 0:
                progress(DemoProgress(world.sim_seconds, total,
                                      sum(1 for g in world.games.values() if g.status == "final"),
                                      len(world.games), engine.executor.fills_booked))
            if world.all_settled():
                extra_steps += 1
                if extra_steps >= 2 and not engine.portfolio.open_positions():
                    break
            if options.speed > 0:
                ahead = world.sim_seconds / options.speed - (time.monotonic() - wall0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            else:
                await asyncio.sleep(0)
            if world.sim_seconds > total + 7200:
                raise RuntimeError("the demo did not settle every market within two simulated hours of the end")
        await engine.stop()
        alerts.flush()  # the AlertManager writes repeats in the background: settle them for the report
        result = build_result(conn, engine, exchange, user, options.initial_cash, seed, world)
        conn.execute("UPDATE engine_runs SET summary = %s WHERE run_id = %s",
                     (__import__("precog.ingest.scd2", fromlist=["jsonb"]).jsonb(
                         {"trades": result.trades, "positions_settled": result.positions_settled,
                          "pnl": str(result.pnl), "ledger_match": result.ledger_match, "seed": seed}),
                      engine.run_id))
        return result
    finally:
        for closer in closers:
            await closer()
        if board is not None:
            board.end()
        if engine is not None and not conn.closed:  # stopped before its games ended (Ctrl-C, an error)
            try:
                end_simulated_run(conn, engine.run_id, why="the demo stopped before its simulated games ended")
            except Exception as exc:  # noqa: BLE001 - the next simulated run ends it (never mask the error)
                log.warning("could not end the simulated world of run %s: %s", engine.run_id, exc)
        for held in lock:
            held.close()
        conn.close()


def build_result(conn: psycopg.Connection[Any], engine: Engine, exchange: Exchange, user: str,
                 initial: Decimal, seed: int, world: DemoWorld) -> DemoResult:
    from precog.trading import attribution

    run_id = engine.run_id
    acct = exchange.account(user)
    venue_balance = acct.balance
    venue_pnl = venue_balance - acct.deposits
    our_cash = initial + engine.our_cash_delta()
    row = conn.execute("SELECT coalesce(sum(realized_pnl), 0), count(*) FILTER (WHERE status = 'open'), "
                       "count(*) FILTER (WHERE status = 'settled') FROM positions WHERE row_current_ind AND "
                       "(position_metadata->>'run_id')::bigint = %s", (run_id,)).fetchone()
    assert row is not None
    our_pnl, open_positions, settled = row[0], int(row[1]), int(row[2])
    trades = int(conn.execute("SELECT count(*) FROM trades WHERE (trade_metadata->>'run_id')::bigint = %s",
                              (run_id,)).fetchone()[0])  # type: ignore[index]
    venue_fills = len(acct.fills)
    venue_open = sum(1 for p in acct.positions.values() if p.held[0] or p.held[1])
    audit = exchange.audit()
    checks = {
        "cash": our_cash == venue_balance,
        "pnl": our_pnl == venue_pnl,
        "fills": trades == venue_fills,
        "no_open_positions": open_positions == 0 and venue_open == 0,
        "exchange_conserves_money": audit["imbalance"] == ZERO,
    }
    ledger = {"our_cash": our_cash, "venue_cash": venue_balance, "our_pnl": our_pnl, "venue_pnl": venue_pnl,
              "our_trades": trades, "venue_fills": venue_fills, "open_positions": open_positions,
              "venue_open_positions": venue_open, "checks": checks}
    report = attribution.run_report(conn, run_id)
    report["breakers"] = list(engine.stats.breakers)
    games = [{"game": f"{g.away} @ {g.home}", "score": f"{g.away_score}-{g.home_score}",
              "overtime": g.overtime, "settlement_value": g.settlement_value} for g in world.games.values()]
    return DemoResult(run_id, seed, trades, settled, to_decimal(our_pnl), all(checks.values()), ledger, report,
                      games)
