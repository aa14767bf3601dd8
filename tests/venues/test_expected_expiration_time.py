"""Kalshi's `expected_expiration_time` (OpenAPI v3.13 Market: "Time when this market is expected to expire") is
kept apart from `close_time` (for a game: the latest the market may close) and from the deprecated
`expiration_time` / `latest_expiration_time` ("Latest possible time for this market to expire"), by our parser
and by the local exchange (REST market JSON, the admin API, the `created` lifecycle frame)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from precog.venues.exchange import Exchange, ExchangeServer, SimClock
from precog.venues.exchange.admin_client import SimAdminClient, SimAdminError
from precog.venues.exchange.scenarios.nfl import GAME_SECONDS, NFLScenario
from precog.venues.exchange.ws import lifecycle_payload
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import resolve_environment
from precog.venues.kalshi.parsing import parse_market

START_MS = 1_766_944_800_000  # 2025-12-28 18:00 UTC


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rest_market(**times: str) -> dict[str, Any]:
    """A game market in the OpenAPI v3.13 Market shape (the required fields), with the given times."""
    return {
        "ticker": "KXNFLGAME-25DEC28LVKC-KC", "event_ticker": "KXNFLGAME-25DEC28LVKC", "market_type": "binary",
        "yes_sub_title": "Kansas City", "no_sub_title": "Kansas City", "created_time": "2025-12-20T12:00:00Z",
        "updated_time": "2025-12-20T12:00:00Z", "open_time": "2025-12-21T12:00:00Z",
        "close_time": "2026-01-11T18:00:00Z", "latest_expiration_time": "2026-01-11T21:00:00Z",
        "settlement_timer_seconds": 300, "status": "active", "notional_value_dollars": "1.0000",
        "yes_bid_dollars": "0.5000", "yes_ask_dollars": "0.5200", "no_bid_dollars": "0.4800",
        "no_ask_dollars": "0.5000", "yes_bid_size_fp": "100.00", "yes_ask_size_fp": "100.00",
        "last_price_dollars": "0.5100", "previous_yes_bid_dollars": "0.5000", "previous_yes_ask_dollars": "0.5200",
        "previous_price_dollars": "0.5100", "volume_fp": "1000.00", "volume_24h_fp": "1000.00",
        "liquidity_dollars": "0.0000", "open_interest_fp": "1000.00", "result": "", "can_close_early": True,
        "fractional_trading_enabled": False, "expiration_value": "", "rules_primary": "If Kansas City wins ...",
        "rules_secondary": "", "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.01", "end": "0.99", "step": "0.01"}], **times,
    }


def test_the_parser_keeps_expected_expiration_close_and_latest_expiration_apart() -> None:
    m = parse_market(_rest_market(expected_expiration_time="2025-12-28T21:30:00Z",
                                  expiration_time="2026-01-11T21:00:00Z"))
    assert m.expected_expiration_time == datetime(2025, 12, 28, 21, 30, tzinfo=UTC)
    assert m.close_time == datetime(2026, 1, 11, 18, tzinfo=UTC)
    assert m.latest_expiration_time == m.expiration_time == datetime(2026, 1, 11, 21, tzinfo=UTC)
    assert m.settles_at() == m.expected_expiration_time


def test_without_expected_expiration_nothing_stands_in_for_it() -> None:
    """The field is optional (x-omitempty): absent, the market is expected to settle at its close, and the
    deprecated expiration_time stays what Kalshi sent (it used to be overwritten by the expected time)."""
    m = parse_market(_rest_market())
    assert m.expected_expiration_time is None and m.expiration_time is None
    assert m.settles_at() == m.close_time
    m = parse_market(_rest_market(expected_expiration_time=""))
    assert m.expected_expiration_time is None


@pytest.fixture
def nfl_exchange() -> Any:
    ex = Exchange(SimClock(START_MS), seed=3)
    sc = NFLScenario(ex, seed=3, speed=60, stagger_s=20)
    with ExchangeServer(ex, tick_interval=0.05) as server:
        yield ex, sc, server


async def test_the_local_exchange_reports_an_nfl_game_expected_to_settle_at_the_final_whistle(nfl_exchange: Any) -> None:
    ex, sc, server = nfl_exchange
    game = sc.games[0]
    final_whistle_ms = game.kickoff_ms + int(GAME_SECONDS / 60 * 1000)
    raw = httpx.get(f"{server.base_url}/markets/{game.home_ticker}", timeout=5).json()["market"]
    assert _rfc3339(raw["expected_expiration_time"]) == _utc(final_whistle_ms)
    async with AsyncKalshiClient(resolve_environment("local", server.base_url), rate_limits="unlimited") as client:
        m = await client.get_market(game.home_ticker)
    assert m.expected_expiration_time == _utc(final_whistle_ms)
    assert m.close_time == _utc(final_whistle_ms) + timedelta(hours=1)  # trading may go on after the game
    assert m.latest_expiration_time is not None and m.latest_expiration_time > m.close_time
    assert m.settles_at() == m.expected_expiration_time
    # the WebSocket `created` frame carries the same time (additional_metadata.expected_expiration_ts)
    created = lifecycle_payload(ex.market(game.home_ticker), "created")
    assert created["additional_metadata"]["expected_expiration_ts"] == final_whistle_ms // 1000


def test_the_admin_api_lists_a_market_with_its_expected_expiration() -> None:
    with ExchangeServer(Exchange(SimClock(START_MS))) as server, SimAdminClient(server.root_url) as admin:
        made = admin.create_market("KXNFLGAME-25DEC28LVKC-KC", close_time="2026-01-11T18:00:00Z",
                                   expected_expiration_time="2025-12-28T21:30:00Z")
        assert _rfc3339(made["expected_expiration_time"]) == datetime(2025, 12, 28, 21, 30, tzinfo=UTC)
        assert _rfc3339(made["close_time"]) == datetime(2026, 1, 11, 18, tzinfo=UTC)
        default = admin.create_market("KXNFLGAME-25DEC28LVKC-LV", close_time="2026-01-11T18:00:00Z")
        assert default["expected_expiration_time"] == default["close_time"]  # nothing else known: its close
        with pytest.raises(SimAdminError, match="expected_expiration_time"):  # after the latest expiration
            admin.create_market("KXNFLGAME-25DEC28LVKC-XX", close_time="2026-01-11T18:00:00Z",
                                expiration_time="2026-01-11T21:00:00Z", expected_expiration_time="2026-01-12T00:00:00Z")
