""""Time to settlement" (spec 5.3 sizing, 5.6 time_based_urgent) is the expected settlement, not Kalshi's close_time.

On Kalshi a game market's `close_time` is the latest it may close (often weeks after the game) and
`expected_expiration_time` is when Kalshi expects to settle it. Sizing cuts 20 % only when the expected
settlement is more than 3 h away; without an expected expiration the close still counts, as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from psycopg.rows import dict_row
from trading_dbkit import EVENT, World
from trading_testkit import DEFAULTS, NOW, engine, game, market, strategy

from precog.domain.market import Market, MarketStatus, expected_settlement
from precog.ingest.market_store import MarketStore, market_row
from precog.trading.snapshot import load_markets
from precog.venues.kalshi.parsing import parse_market

WEEKS_2 = 14 * 86400.0
GAME = "KXNFLGAME-25DEC28KCBUF"


def _settlement_arbitrage_sizing(**market_kw: Any) -> tuple[str, ...]:
    """The size reductions of a settlement-arbitrage entry on a decided game (one minute left)."""
    m = market(bid="0.82", ask="0.83", yes_team="home", volume=5000, **market_kw)
    decided = game("live", period=4, clock=60, home=28, away=17, possession="home", away_timeouts=0,
                   observed_ago=2, metadata={"last_play_type": "touchdown"})
    result = engine({m.ticker: "0.999"}, strategies=(strategy("settlement_arbitrage", strategy_id=4),)).scan(
        [m], {GAME: decided}, positions=[], balance=D("10000"), now=NOW)
    assert len(result.approved) == 1
    assert result.approved[0].intent.size_adjustments == result.sized[m.ticker].adjustments
    return result.sized[m.ticker].adjustments


def test_a_game_closing_in_two_weeks_but_settling_in_two_hours_is_not_cut_as_far_from_settlement() -> None:
    assert "far_from_settlement" not in _settlement_arbitrage_sizing(close_in=WEEKS_2,
                                                                     expected_expiration_ts=NOW + 2 * 3600)


def test_without_an_expected_expiration_the_close_counts_as_before() -> None:
    assert "far_from_settlement" in _settlement_arbitrage_sizing(close_in=WEEKS_2)
    assert "far_from_settlement" not in _settlement_arbitrage_sizing(close_in=2 * 3600)


def test_an_expected_settlement_more_than_three_hours_away_is_still_cut() -> None:
    assert "far_from_settlement" in _settlement_arbitrage_sizing(close_in=WEEKS_2,
                                                                 expected_expiration_ts=NOW + 3 * 3600 + 1)
    assert "far_from_settlement" not in _settlement_arbitrage_sizing(close_in=WEEKS_2,
                                                                     expected_expiration_ts=NOW + 3 * 3600)


def test_expected_settlement_order_venue_estimate_then_close() -> None:
    close, expected = NOW + WEEKS_2, NOW + 2 * 3600
    assert expected_settlement(expected, close) == expected
    assert expected_settlement(None, close) == close
    assert expected_settlement(None, None) is None


def _market(close: datetime | None, expected: datetime | None) -> Market:
    return Market(ticker="T", event_ticker="E", status=MarketStatus.OPEN, venue_status="active", yes_bid=D("0.5"),
                  yes_ask=D("0.51"), no_bid=D("0.49"), no_ask=D("0.5"), last_price=D("0.5"), close_time=close,
                  expected_expiration_time=expected)


def test_the_exit_deadline_is_the_expected_settlement_or_the_close_when_trading_stops_first() -> None:
    now = datetime(2025, 12, 28, 18, tzinfo=UTC)
    kalshi_game = _market(now + timedelta(days=14), now + timedelta(hours=2))
    assert kalshi_game.settles_at() == kalshi_game.exit_deadline() == now + timedelta(hours=2)
    no_estimate = _market(now + timedelta(days=14), None)
    assert no_estimate.settles_at() == no_estimate.exit_deadline() == now + timedelta(days=14)
    closes_at_kickoff = _market(now + timedelta(hours=1), now + timedelta(hours=4))  # settles after the game
    assert closes_at_kickoff.settles_at() == now + timedelta(hours=4)
    assert closes_at_kickoff.exit_deadline() == now + timedelta(hours=1)


def _kalshi_rest_market(ticker: str, close: datetime, expected: datetime | None) -> dict[str, Any]:
    """A market as Kalshi's REST API (OpenAPI v3.13 Market schema) sends it."""
    iso = "%Y-%m-%dT%H:%M:%SZ"
    body: dict[str, Any] = {
        "ticker": ticker, "event_ticker": EVENT, "market_type": "binary", "yes_sub_title": "Kansas City",
        "no_sub_title": "Kansas City", "created_time": "2025-12-20T12:00:00Z", "updated_time": "2025-12-20T12:00:00Z",
        "open_time": "2025-12-21T12:00:00Z", "close_time": close.strftime(iso),
        "expiration_time": (close + timedelta(hours=3)).strftime(iso),
        "latest_expiration_time": (close + timedelta(hours=3)).strftime(iso), "settlement_timer_seconds": 300,
        "status": "active", "notional_value_dollars": "1.0000", "yes_bid_dollars": "0.5000",
        "yes_ask_dollars": "0.5200", "no_bid_dollars": "0.4800", "no_ask_dollars": "0.5000",
        "yes_bid_size_fp": "100.00", "yes_ask_size_fp": "100.00", "last_price_dollars": "0.5100",
        "previous_yes_bid_dollars": "0.5000", "previous_yes_ask_dollars": "0.5200", "previous_price_dollars": "0.5100",
        "volume_fp": "1000.00", "volume_24h_fp": "1000.00", "liquidity_dollars": "0.0000",
        "open_interest_fp": "1000.00", "result": "", "can_close_early": True, "fractional_trading_enabled": False,
        "expiration_value": "", "rules_primary": "If Kansas City wins ...", "rules_secondary": "",
        "price_level_structure": "linear_cent", "price_ranges": [{"start": "0.01", "end": "0.99", "step": "0.01"}],
    }
    if expected is not None:
        body["expected_expiration_time"] = expected.strftime(iso)
    return body


def test_the_decision_snapshot_reads_the_expected_settlement_the_ingest_stored(world: World) -> None:
    """Kalshi REST market -> parser -> the ingest's markets row -> the decision layer's MarketView."""
    now = world.now.replace(microsecond=0)
    close, expected = now + timedelta(days=14), now + timedelta(hours=2)
    with_estimate = parse_market(_kalshi_rest_market(f"{EVENT}-KC2", close, expected))
    without = parse_market(_kalshi_rest_market(f"{EVENT}-KC3", close, None))
    MarketStore(world.conn, "kalshi").write_markets([market_row(with_estimate, "kalshi"), market_row(without, "kalshi")])
    with world.conn.cursor(row_factory=dict_row) as cur:
        stored = cur.execute("SELECT metadata FROM markets WHERE market_id = %s AND row_current_ind",
                             (f"{EVENT}-KC2",)).fetchone()
    assert stored is not None and "expected_expiration_time" in stored["metadata"]
    views = {m.ticker: m for m in load_markets(world.conn, DEFAULTS, now.timestamp())[0]}
    kc2, kc3 = views[f"{EVENT}-KC2"], views[f"{EVENT}-KC3"]
    assert kc2.close_ts == close.timestamp() and kc2.expected_expiration_ts == expected.timestamp()
    assert kc2.settlement_ts == expected.timestamp()
    assert kc3.expected_expiration_ts is None and kc3.settlement_ts == close.timestamp()
