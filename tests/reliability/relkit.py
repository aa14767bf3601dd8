"""Helpers of the reliability suite (imported as `reliability.relkit`): the real Engine trading over the real
Kalshi client against the local exchange, a market maker whose mid wanders, and the books check that says
what (if anything) was lost."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from precog.config.loader import Config, load_config
from precog.engine.core import Engine, Estimate, TrackedMarket
from precog.engine.demo import ensure_demo_methods, simulated_market_settings
from precog.engine.kalshi_venue import KalshiVenue
from precog.venues.exchange.engine import Exchange
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy
from precog.venues.kalshi.environments import KalshiEnvironment
from precog.venues.kalshi.ratelimit import tier_limits

FAST_RETRY = RetryPolicy(max_retries=4, backoff_base=0.05, backoff_max=0.3, retry_after_max=2.0,
                         lookup_attempts=6, lookup_delay=0.1)


class MovingMarketMaker(threading.Thread):
    """Quotes every ticker two-sided around a wandering mid, so entries fill and exits trigger."""

    def __init__(self, ex: Exchange, user: str, tickers: tuple[str, ...], seed: int = 11,
                 period: float = 0.12) -> None:
        super().__init__(daemon=True)
        self.ex, self.user, self.tickers, self.period = ex, user, tickers, period
        self.stop_flag = threading.Event()
        self.rng = random.Random(seed)

    def run(self) -> None:
        mids = {t: 50 for t in self.tickers}
        orders: list[str] = []
        while not self.stop_flag.is_set():
            for oid in orders:
                try:
                    self.ex.cancel_order(self.user, oid)
                except Exception:  # noqa: BLE001 - filled or settled meanwhile
                    pass
            orders = []
            for t in self.tickers:
                if self.ex.market(t).status not in ("active", "open"):
                    continue
                mids[t] = min(max(mids[t] + self.rng.choice((-4, -2, 0, 2, 4)), 30), 70)
                try:
                    orders.append(self.ex.place_order(self.user, t, "yes", "buy", 300,
                                                      Decimal(mids[t] - 1) / 100).order_id)
                    orders.append(self.ex.place_order(self.user, t, "no", "buy", 300,
                                                      Decimal(100 - mids[t] - 1) / 100).order_id)
                except Exception:  # noqa: BLE001 - the market closed between the check and the order
                    pass
            time.sleep(self.period)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(5)


class Flipping:
    """A model whose opinion flips every `period` seconds: the engine keeps entering and exiting."""

    def __init__(self, period: float = 0.7) -> None:
        self.period = period

    def estimate(self, model_key: str, ticker: str, now: datetime) -> Estimate:
        up = int(time.time() / self.period) % 2 == 0
        return Estimate(Decimal("0.75") if up else Decimal("0.25"), "medium")

    def phase(self, ticker: str, now: datetime) -> str:
        return "live"


def fast_config() -> Config:
    cfg = load_config(use_env=False)
    for level in ("MEDIUM", "LOW"):  # walk exits fast: the scenarios are seconds long
        cfg.data["position_management"]["exit_execution"][level]["timeout_seconds"] = 0.4
        cfg.data["position_management"]["exit_execution"][level]["walk_wait_seconds"] = 0.4
    return cfg


def kalshi_client(base_url: str, ws_url: str, key_id: str, key_path: Any, *, timeout: float = 5.0,
                  alerts: Any = None) -> AsyncKalshiClient:
    env = KalshiEnvironment("local", base_url, ws_url)
    return AsyncKalshiClient(env, signer=KalshiSigner.from_files(key_id, key_path), timeout=timeout,
                             rate_limits=tier_limits("unlimited"), retry=FAST_RETRY, alerts=alerts)


def make_engine(conn: psycopg.Connection[Any], client: AsyncKalshiClient, tickers: tuple[str, ...], *,
                alerts: Any = None, probabilities: Any = None, breakers: Any = None,
                config: Config | None = None) -> Engine:
    venue = KalshiVenue(client, platform_id="local", account_ref="local:reliability")
    methods = [m for m in ensure_demo_methods(conn) if m.phase == "live"]
    markets = [TrackedMarket(t, t.rsplit("-", 1)[0], "nfl") for t in tickers]
    cfg = config or fast_config()
    # the local exchange's markets are listed seconds before trading: the simulated worlds' market filters, as
    # `precog run --venue local` uses
    return Engine(conn, venue, config=cfg, mode="paper", kind="test", methods=methods,
                  probabilities=probabilities or Flipping(), markets=markets, clock=lambda: datetime.now(UTC),
                  alerts=alerts, initial_cash=Decimal("10000"), decision_interval_s=0.3, breakers=breakers,
                  risk_settings=simulated_market_settings(cfg))


@dataclass
class BooksCheck:
    venue_orders: int
    our_orders: int
    lost_orders: int  # venue orders with no row of ours
    duplicate_orders: int  # one client_order_id / decision sent more than once
    venue_fills: int
    lost_fills: int  # venue fills we did not book
    duplicate_fills: int
    position_diff: dict[str, tuple[int, int]] = field(default_factory=dict)  # ticker -> (ours, venue)
    diff_rows: list[tuple[Any, ...]] = field(default_factory=list)  # our current rows of mismatched tickers

    @property
    def clean(self) -> bool:
        return not (self.lost_orders or self.duplicate_orders or self.lost_fills or self.duplicate_fills
                    or self.position_diff)


def check_books(conn: psycopg.Connection[Any], ex: Exchange, user: str) -> BooksCheck:
    acct = ex.account(user)
    venue_orders = {o.order_id: o.client_order_id for o in acct.orders.values()}
    rows = conn.execute("SELECT client_order_id, venue_order_id, decision_key FROM orders").fetchall()
    by_cid = {r[0]: r for r in rows}
    lost = sum(1 for cid in venue_orders.values() if cid not in by_cid)
    dup = (len(venue_orders) - len(set(venue_orders.values())))
    keys = [r[2] for r in rows if r[2]]
    dup += len(keys) - len(set(keys))
    venue_fills = {f[1] for f in acct.fills}
    booked = [r[0] for r in conn.execute("SELECT fill_id FROM trades").fetchall()]
    positions: dict[str, tuple[int, int]] = {}
    ours = dict(conn.execute(
        "SELECT market_id, coalesce(sum(CASE WHEN side = 'yes' THEN quantity ELSE -quantity END), 0) "
        "FROM positions WHERE row_current_ind AND status = 'open' GROUP BY market_id").fetchall())
    for ticker in set(ours) | set(acct.positions):
        vp = acct.positions.get(ticker)
        theirs = vp.net if vp is not None else 0
        mine = int(ours.get(ticker, 0))
        if mine != theirs:
            positions[ticker] = (mine, theirs)
    diff_rows = conn.execute(
        "SELECT position_id, market_id, side, quantity, status, exit_reason FROM positions "
        "WHERE row_current_ind AND market_id = ANY(%s) ORDER BY position_id", (list(positions),)).fetchall()
    return BooksCheck(len(venue_orders), len(rows), lost, dup, len(venue_fills), len(venue_fills - set(booked)),
                      len(booked) - len(set(booked)), positions, diff_rows)
