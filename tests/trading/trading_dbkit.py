"""Database builders of the trading tests: one NFL game with two markets, a fixed model, a testing method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

EVENT = "KXNFLGAME-25DEC28BUFKC"
KC = f"{EVENT}-KC"
BUF = f"{EVENT}-BUF"


@dataclass
class World:
    url: str
    conn: psycopg.Connection[Any]
    model_id: int
    now: datetime

    def connect(self) -> Callable[[], psycopg.Connection[Any]]:
        return lambda: psycopg.connect(self.url)

    def set_market(self, ticker: str, *, bid: str, ask: str, status: str = "open") -> None:
        """A new SCD2 version of the market (as ingestion writes it)."""
        with self.conn.transaction():
            row = self.conn.execute("SELECT event_id, title FROM markets WHERE market_id = %s AND row_current_ind",
                                    (ticker,)).fetchone()
            self.conn.execute("UPDATE markets SET row_current_ind = FALSE, row_end_ts = now()"
                              " WHERE market_id = %s AND row_current_ind", (ticker,))
            _insert_market(self.conn, ticker, row[0], row[1], bid, ask, status, self.now)


def _insert_market(conn: psycopg.Connection[Any], ticker: str, event: str, title: str, bid: str, ask: str,
                   status: str, now: datetime) -> None:
    # as ingestion stores a Kalshi market: top-of-book sizes in the metadata (exact text), listed a day ago
    conn.execute(
        "INSERT INTO markets (market_id, platform_id, event_id, external_id, ticker, title, yes_bid, yes_ask, no_bid,"
        " no_ask, volume, volume_24h, open_interest, open_time, close_time, status, metadata) VALUES (%s, 'kalshi',"
        " %s, %s, %s, %s, %s, %s, 1 - %s::numeric, 1 - %s::numeric, 1000, 1000, 1000, %s, %s, %s,"
        " '{\"yes_bid_size\": \"1000\", \"yes_ask_size\": \"1000\"}'::jsonb)",
        (ticker, event, ticker, ticker, title, Decimal(bid), Decimal(ask), Decimal(ask), Decimal(bid),
         now - timedelta(days=1), now + timedelta(hours=6), status))


def seed_world(url: str, *, probability: str = "0.75", model_status: str = "active") -> World:
    """Series/event/markets for KC (home) vs BUF, the game linked and scheduled in 3 h, a fixed model."""
    from precog.forecast.registry import create_model, transition

    conn = psycopg.connect(url, autocommit=True)
    now = datetime.now(UTC)
    conn.execute("INSERT INTO series (series_id, platform_id, external_id, category, subcategory, title, fee_multiplier)"
                 " VALUES ('KXNFLGAME', 'kalshi', 'KXNFLGAME', 'sports', 'nfl', 'NFL game', 1)")
    conn.execute("INSERT INTO events (event_id, platform_id, series_id, external_id, category, subcategory, title,"
                 " start_time) VALUES (%s, 'kalshi', 'KXNFLGAME', %s, 'sports', 'nfl', 'BUF at KC', %s)",
                 (EVENT, EVENT, now + timedelta(hours=3)))
    _insert_market(conn, KC, EVENT, "Kansas City wins", "0.50", "0.52", "open", now)
    _insert_market(conn, BUF, EVENT, "Buffalo wins", "0.46", "0.47", "open", now)
    conn.execute("INSERT INTO game_links (event_id, sport, external_game_id, game_date, home_team, away_team,"
                 " match_method, match_score) VALUES (%s, 'nfl', '401', %s, 'KC', 'BUF', 'ticker_codes', 10)",
                 (EVENT, now.date()))
    conn.execute("INSERT INTO game_link_markets (market_id, event_id, side, team_code) VALUES"
                 " (%s, %s, 'home', 'KC'), (%s, %s, 'away', 'BUF')", (KC, EVENT, BUF, EVENT))
    conn.execute("INSERT INTO game_states (external_game_id, sport, event_id, home_team, away_team, status,"
                 " start_time, period) VALUES ('401', 'nfl', %s, 'KC', 'BUF', 'scheduled', %s, 0)",
                 (EVENT, now + timedelta(hours=3)))
    record = create_model(conn, "fixed_test", "v1.0", "fixed", {"probability": probability, "confidence": "high"},
                          status="validating", description="test model")
    if model_status == "active":
        transition(conn, "fixed_test@v1.0", "active")
    return World(url, conn, record.model_id, now)


def create_testing_method(conn: psycopg.Connection[Any], name: str = "nfl_pregame", *, template: str = "moderate",
                          overrides: tuple[str, ...] = (), status: str = "testing") -> Any:
    from precog.config.loader import load_config
    from precog.trading.methods import create_method, transition
    from precog.trading.strategies import load_strategy_definitions, sync_strategies

    sync_strategies(conn, load_strategy_definitions(load_config(use_env=False)))
    m = create_method(conn, template=template, name=name, version="v1.0", strategy="pre_game_entry@v1.0",
                      model="fixed_test@v1.0", overrides=overrides, created_by="test")
    if status != "draft":
        m = transition(conn, m.ref, "testing", by="test")
    if status == "active":  # set directly: activation needs a closed paper record these tests do not have
        conn.execute("UPDATE methods SET status = 'active', activated_at = now() WHERE method_id = %s", (m.method_id,))
    return m


def world_exchange() -> tuple[Any, dict[tuple[str, str], str]]:
    """A local exchange listing the seeded world's two markets (KC and BUF of EVENT), our account "us" with
    $10,000 and a maker "mm" quoting them as the database does (KC 0.50/0.52, BUF 0.46/0.47); returns the
    exchange and the maker's order ids by (ticker, side)."""
    from precog.venues.exchange.engine import Exchange

    ex = Exchange()
    ex.create_series("KXNFLGAME", "NFL game")
    ex.create_event(EVENT, "KXNFLGAME", "BUF at KC")
    for ticker in (KC, BUF):
        ex.create_market(ticker, EVENT, title=ticker)
    ex.create_account("us", Decimal("10000"))
    ex.create_account("mm", Decimal("1000000"))
    quotes: dict[tuple[str, str], str] = {}
    for ticker, bid, no_bid in ((KC, "0.50", "0.48"), (BUF, "0.46", "0.53")):
        quotes[ticker, "yes"] = ex.place_order("mm", ticker, "yes", "buy", 5000, Decimal(bid)).order_id
        quotes[ticker, "no"] = ex.place_order("mm", ticker, "no", "buy", 5000, Decimal(no_bid)).order_id
    return ex, quotes


@dataclass
class ProdStandIn:
    """The seeded world with an active method, and a local exchange (not started) standing in for Kalshi
    production: signed requests only, our key registered for account "us"."""

    world: World
    exchange: Any
    server: Any
    key_id: str
    key_path: Any

    @property
    def env(self) -> dict[str, str]:
        """KALSHI_BASE_URL and our key, for `precog run --venue kalshi --env prod` (once the server started)."""
        return {"KALSHI_BASE_URL": self.server.base_url, "KALSHI_API_KEY_ID": self.key_id,
                "KALSHI_PRIVATE_KEY_PATH": str(self.key_path)}


def prod_stand_in(url: str, key_dir: Any) -> ProdStandIn:
    from cryptography.hazmat.primitives import serialization

    from precog.venues.exchange.auth import generate_key_pair
    from precog.venues.exchange.runner import ExchangeServer

    world = seed_world(url, probability="0.75")
    create_testing_method(world.conn, status="active")  # live trading takes active methods only
    key_id, key_path, public_pem = generate_key_pair(key_dir)
    ex, _ = world_exchange()
    server = ExchangeServer(ex)
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    return ProdStandIn(world, ex, server, key_id, key_path)
