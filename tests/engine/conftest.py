"""A trading rig: the real Engine against a real in-process local exchange, on simulated time.

    async def test_x(rig):
        rig.quote("0.49", "0.50")          # the counterparty's book: YES bid / YES ask
        rig.probs.p[rig.ticker] = Decimal("0.62")
        await rig.run_until(lambda: rig.open_positions())
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from precog.config.loader import Config, load_config
from precog.engine.alert_sink import TableAlertSink
from precog.engine.core import Engine, Estimate, TrackedMarket
from precog.engine.demo import ensure_demo_methods, simulated_market_settings
from precog.engine.local_venue import LocalVenue
from precog.trading.portfolio import PositionState
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

SERIES = "KXNFLGAME"
EVENT = "KXNFLGAME-TEST-NEBUF"
TICKER = f"{EVENT}-BUF"
TICKER2 = "KXNFLGAME-TEST-MIAJET-NYJ"
CASH = Decimal("10000")


class FixedProbabilities:
    def __init__(self) -> None:
        self.p: dict[str, Decimal] = {}
        self.confidence = "medium"
        self.phases: dict[str, str] = {}

    def estimate(self, model_key: str, ticker: str, now: datetime) -> Estimate | None:
        p = self.p.get(ticker)
        return None if p is None else Estimate(p, self.confidence)

    def phase(self, ticker: str, now: datetime) -> str:
        return self.phases.get(ticker, "live")


@dataclass
class Rig:
    exchange: Exchange
    clock: SimClock
    venue: LocalVenue
    conn: psycopg.Connection[Any]
    probs: FixedProbabilities
    config: Config
    methods: list[Any]
    alerts: TableAlertSink
    ticker: str = TICKER
    engine: Engine | None = None
    mm_orders: dict[str, list[str]] = field(default_factory=dict)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, tz=UTC)

    def make_engine(self, mode: str = "paper", kind: str = "test", **kwargs: Any) -> Engine:
        markets = [TrackedMarket(t, self.exchange.market(t).event_ticker, "nfl",
                                 datetime.fromtimestamp(self.exchange.market(t).close_ms / 1000, tz=UTC))
                   for t in self.exchange.markets]
        self.engine = Engine(self.conn, self.venue, config=self.config, mode=mode, kind=kind,
                             methods=[m for m in self.methods if m.phase == "live"], probabilities=self.probs,
                             markets=markets, clock=self.now, alerts=self.alerts, initial_cash=CASH,
                             **{"reconcile_cash": True, "risk_settings": simulated_market_settings(self.config),
                                **kwargs})
        return self.engine

    def quote(self, bid: str | None, ask: str | None, size: int = 2000, ticker: str | None = None) -> None:
        """Replace the counterparty's quotes: a YES bid and a YES ask (a NO bid at 1 - ask)."""
        t = ticker or self.ticker
        for oid in self.mm_orders.pop(t, []):
            if self.exchange.get_order("mm", oid).status == "resting":
                self.exchange.cancel_order("mm", oid)
        placed = []
        if bid is not None:
            placed.append(self.exchange.place_order("mm", t, "yes", "buy", size, Decimal(bid)).order_id)
        if ask is not None:
            placed.append(self.exchange.place_order("mm", t, "no", "buy", size, 1 - Decimal(ask)).order_id)
        self.mm_orders[t] = placed

    async def step(self, seconds: float = 5) -> None:
        self.clock.advance(seconds)
        self.exchange.tick()
        assert self.engine is not None
        await self.engine.step()

    async def run_until(self, cond: Callable[[], Any], max_steps: int = 60, seconds: float = 5) -> None:
        for _ in range(max_steps):
            await self.step(seconds)
            if cond():
                return
        raise AssertionError(f"condition not reached after {max_steps} steps")

    async def engine_with_position(self, p_yes: str = "0.62", kind: str = "test") -> Engine:
        """A started engine holding one position: the maker quotes 0.49/0.50 and the model says `p_yes`."""
        self.quote("0.49", "0.50")
        self.probs.p[self.ticker] = Decimal(p_yes)
        engine = self.make_engine(kind=kind)
        await engine.start()
        await self.run_until(lambda: self.open_positions())
        return engine

    def open_positions(self) -> list[PositionState]:
        assert self.engine is not None
        return self.engine.portfolio.open_positions()

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, params).fetchall()

    def venue_position(self, ticker: str | None = None) -> int:
        pos = self.exchange.account("us").positions.get(ticker or self.ticker)
        return 0 if pos is None else pos.net


def rig_config(**changes: Any) -> Config:
    cfg = load_config(use_env=False)
    data = copy.deepcopy(cfg.data)
    for key, value in changes.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return Config(data, {})


@pytest.fixture
def make_rig(db_url: str) -> Iterator[Callable[..., Rig]]:
    conns: list[psycopg.Connection[Any]] = []

    def _make(config: Config | None = None, close_in_s: int = 4 * 3600, second_market: bool = False) -> Rig:
        conn = psycopg.connect(db_url, autocommit=True)
        conns.append(conn)
        clock = SimClock(start_ms=1_764_000_000_000)
        ex = Exchange(clock)
        ex.create_series(SERIES, "Pro Football Game")
        ex.create_event(EVENT, SERIES, "New England at Buffalo")
        ex.create_market(TICKER, EVENT, title="Will Buffalo win?", close_ms=clock.now_ms() + close_in_s * 1000)
        if second_market:
            ex.create_event("KXNFLGAME-TEST-MIAJET", SERIES, "Miami at New York")
            ex.create_market(TICKER2, "KXNFLGAME-TEST-MIAJET", title="Will New York win?",
                             close_ms=clock.now_ms() + close_in_s * 1000)
        ex.create_account("us", CASH)
        ex.create_account("mm", Decimal("1000000"))
        methods = ensure_demo_methods(conn)
        rig = Rig(ex, clock, LocalVenue(ex, "us"), conn, FixedProbabilities(), config or rig_config(), methods,
                  TableAlertSink(conn, "test"))
        return rig

    yield _make
    for c in conns:
        c.close()


def planner_engine(db_url: str, exchange: Exchange, clock: Callable[[], datetime], *,
                   probabilities: Any = None) -> Engine:
    """The engine as `precog run --venue kalshi` builds it (no methods of its own: entries come from the decision
    layer's planner over the database snapshot), trading account "us" of `exchange` in paper mode. The planner's
    forecasts price the positions unless `probabilities` is given."""
    from precog.engine.decision_planner import DecisionPlanner, PlannerForecasts

    conn = psycopg.connect(db_url, autocommit=True)
    planner = DecisionPlanner(conn, rig_config(), lambda: psycopg.connect(db_url, autocommit=True), mode="paper")
    return Engine(conn, LocalVenue(exchange, "us"), config=rig_config(), mode="paper", kind="test", methods=[],
                  probabilities=probabilities if probabilities is not None else PlannerForecasts(planner),
                  markets=[], clock=clock, initial_cash=Decimal("10000"), planner=planner)
