"""The decision inputs read from the database: open markets in scope, their games, positions, balance.

Used by `precog edges scan` (one scan now) and by anything that decides from stored state rather than a
live feed. Market and game freshness: a stored version is as fresh as the later of its own write and the
last message of its feed (`ingest_feed_status`), because the SCD2 writer only writes a new version when
something changed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from precog.domain.money import ONE
from precog.feeds.espn_parse import Situation, fourth_down_outcome
from precog.feeds.game_state import Side
from precog.trading.method_risk import MethodHistory, load_method_history
from precog.trading.settings import TradingSettings
from precog.trading.strategies import FOURTH_DOWN, LAST_PLAY_SEEN
from precog.trading.views import GameView, MarketView, PositionView, correlation_group
from precog.trading.volatility import VolatilityRule, load_ratios


@dataclass
class Snapshot:
    markets: list[MarketView]
    games: dict[str, GameView]
    positions: list[PositionView]
    balance: Decimal
    out_of_scope: dict[str, int] = field(default_factory=dict)
    # the methods' recent closed positions, for their own loss limits (RiskManager.set_method_history)
    method_history: MethodHistory = field(default_factory=MethodHistory)
    # strategy_id -> the Sharpe ratio of its closed positions (selection_logic best_sharpe only; else empty)
    strategy_sharpe: dict[int, Decimal] = field(default_factory=dict)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _meta_ts(meta: dict[str, Any] | None, key: str) -> float | None:
    """An ISO-8601 time the ingest keeps in a row's metadata (e.g. Kalshi's expected_expiration_time)."""
    value = (meta or {}).get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _meta_count(meta: dict[str, Any] | None, key: str) -> Decimal | None:
    """A contract count the ingest keeps in a row's metadata (Kalshi's yes_bid_size / yes_ask_size, stored as
    exact text); None when it was not reported (or is not a count)."""
    value = (meta or {}).get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        count = Decimal(str(value))
    except ArithmeticError:
        return None
    return count if count.is_finite() and count >= 0 else None


def _later(*values: datetime | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present).timestamp() if present else None


def _sport_of(series_ticker: str, subcategory: str | None, settings: TradingSettings) -> str | None:
    for sport, league in settings.leagues.items():
        if league.series_ticker and (series_ticker == league.series_ticker):
            return sport
    if subcategory and subcategory in settings.leagues:
        return subcategory
    return None


SPECIAL_EVENTS = ("playoffs", "championship")


def special_event(event_meta: dict[str, Any] | None, game_season_type: str | None) -> str | None:
    """The special-event rule of a market: None, "playoffs" or "championship" (spec 5.3; trading.yaml
    position_sizing.special_events: playoffs x0.5 Kelly, championship x0.3 Kelly and x1.5 the minimum edge).

    The venue event's own metadata wins when it says anything (`special_event`, or `season_type`: a "regular"
    there is a decision too); otherwise the season type of the linked game's current state (ESPN `season.type`
    and the final's headline, `precog.feeds.espn_parse`). A preseason, regular or unknown game has no rule."""
    meta = event_meta or {}
    explicit = meta.get("special_event")
    if explicit:
        return str(explicit)
    season = meta.get("season_type")
    if season:
        return season if season in SPECIAL_EVENTS else None
    return game_season_type if game_season_type in SPECIAL_EVENTS else None


_MARKETS_SQL = """
SELECT m.id, m.market_id, m.ticker, m.event_id, m.title, m.market_type, m.yes_bid, m.yes_ask, m.volume,
       m.volume_24h, m.open_interest, m.open_time,
       m.status, m.close_time, m.created_at, m.platform_id, m.metadata,
       e.start_time, e.metadata AS event_metadata, e.category AS event_category,
       s.external_id AS series_ticker, s.category AS series_category, s.subcategory, s.fee_multiplier,
       gl.home_team, gl.away_team, gl.sport AS link_sport, gl.external_game_id, glm.side AS yes_team,
       gs.sport_metadata ->> 'season_type' AS game_season_type,
       f.last_message_at AS feed_last_message
FROM markets m
LEFT JOIN events e ON e.event_id = m.event_id
LEFT JOIN series s ON s.series_id = e.series_id
LEFT JOIN game_links gl ON gl.event_id = m.event_id
LEFT JOIN game_link_markets glm ON glm.market_id = m.market_id
LEFT JOIN game_states gs ON gs.sport = gl.sport AND gs.external_game_id = gl.external_game_id AND gs.row_current_ind
LEFT JOIN ingest_feed_status f ON f.feed = m.platform_id || ':markets' AND f.mode <> 'down'
WHERE m.row_current_ind AND m.status = 'open'
ORDER BY m.market_id
"""


def load_markets(conn: Any, settings: TradingSettings, now: float | None = None
                 ) -> tuple[list[MarketView], dict[str, tuple[str, str]], dict[str, int]]:
    """Open markets of the enabled leagues; also event -> (sport, game id) for the linked games.

    Each market carries its volatility ratio (recent / normal volatility of the mid, spec 5.3), computed for
    all of them in one query over the markets history (precog.trading.volatility); None when too few moves."""
    blacklist = re.compile("|".join(f"(?:{p})" for p in settings.blacklist_patterns)) \
        if settings.blacklist_patterns else None
    links: dict[str, tuple[str, str]] = {}
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_MARKETS_SQL)
        rows = cur.fetchall()
    in_scope: list[tuple[dict[str, Any], str, str, str]] = []
    for r in rows:
        series = r["series_ticker"] or (r["event_id"] or r["ticker"]).split("-")[0]
        sport = r["link_sport"] or _sport_of(series, r["subcategory"], settings)
        if sport is None or sport not in settings.leagues:
            skip("not_a_configured_league")
            continue
        if not settings.leagues[sport].enabled:
            skip("league_disabled")
            continue
        category = r["series_category"] or r["event_category"] or "sports"
        if category in settings.exclude_categories:
            skip("excluded_category")
            continue
        if blacklist is not None and blacklist.match(r["ticker"]):
            skip("blacklisted")
            continue
        if r["market_type"] != "binary":
            skip("not_binary")
            continue
        if r["yes_bid"] is None or r["yes_ask"] is None:
            skip("no_quote")
            continue
        in_scope.append((r, sport, series, category))
    ratios = load_ratios(conn, [r["market_id"] for r, *_ in in_scope], time.time() if now is None else now,
                         VolatilityRule.from_adjustments(settings.adjustments))
    markets: list[MarketView] = []
    for r, sport, series, category in in_scope:
        special = special_event(r["event_metadata"], r["game_season_type"])
        event = r["event_id"] or r["ticker"]
        markets.append(MarketView(
            ticker=r["ticker"], event_ticker=event, sport=sport, yes_bid=r["yes_bid"], yes_ask=r["yes_ask"],
            status=r["status"], volume=int(r["volume"] or 0), close_ts=_ts(r["close_time"]),
            expected_expiration_ts=_meta_ts(r["metadata"], "expected_expiration_time"),
            quote_ts=_later(r["created_at"], r["feed_last_message"]),
            fee_multiplier=r["fee_multiplier"] if r["fee_multiplier"] is not None else ONE,
            series_ticker=series, category=category, market_type=r["market_type"],
            market_kind=str((r["metadata"] or {}).get("market_kind", "game_winner")),
            special_event=special, yes_team=r["yes_team"] if r["yes_team"] in ("home", "away") else None,
            home_team=r["home_team"] or "", away_team=r["away_team"] or "", start_ts=_ts(r["start_time"]),
            volatility_ratio=ratios.get(r["market_id"]), market_version_id=int(r["id"]), title=r["title"] or "",
            volume_24h=r["volume_24h"], open_interest=r["open_interest"],
            yes_bid_size=_meta_count(r["metadata"], "yes_bid_size"),
            yes_ask_size=_meta_count(r["metadata"], "yes_ask_size"), open_ts=_ts(r["open_time"])))
        if r["external_game_id"]:
            links[event] = (sport, r["external_game_id"])
    return markets, links, skipped


def load_games(conn: Any, links: dict[str, tuple[str, str]]) -> dict[str, GameView]:
    """Current game states of the linked games, keyed by the Kalshi event (market.event_ticker); several
    venue events (winner, spread, total) may share one game."""
    if not links:
        return {}
    from precog.ingest.game_store import from_row

    sports = sorted({sport for sport, _ in links.values()})
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT g.*, f.last_success_at AS feed_success FROM game_states g"
            " LEFT JOIN ingest_feed_status f ON f.feed = 'espn:' || g.sport AND f.mode <> 'down'"
            " WHERE g.row_current_ind AND g.sport = ANY(%s)", (sports,))
        rows = cur.fetchall()
    wanted = set(links.values())
    at_halftime = [(r["sport"], r["external_game_id"]) for r in rows
                   if r["status"] == "halftime" and (r["sport"], r["external_game_id"]) in wanted]
    halftime_started = _halftime_started(conn, at_halftime)
    plays = [(r["sport"], r["external_game_id"], str(r["sport_metadata"]["last_play_id"])) for r in rows
             if (r["sport"], r["external_game_id"]) in wanted and (r["sport_metadata"] or {}).get("last_play_id")]
    play_seen = _last_play_seen(conn, plays)
    by_game: dict[tuple[str, str], GameView] = {}
    for r in rows:
        key = (r["sport"], r["external_game_id"])
        if key in wanted:
            state = from_row(r)
            if key in play_seen:
                seen_ts, before = play_seen[key]
                state.metadata[LAST_PLAY_SEEN] = seen_ts
                after = Situation(state.down, state.possession, state.home_score, state.away_score)
                outcome = fourth_down_outcome(state.sport, before, after, state.metadata)
                if outcome is not None:
                    state.metadata[FOURTH_DOWN] = outcome
            by_game[key] = GameView(state, _later(r["created_at"], r["feed_success"]) or 0.0,
                                    halftime_started.get(key))
    return {event: by_game[key] for event, key in links.items() if key in by_game}


def _last_play_seen(conn: Any, plays: list[tuple[str, str, str]]
                    ) -> dict[tuple[str, str], tuple[float, Situation | None]]:
    """When each game's current last play was first stored (the first version whose metadata has that
    last_play_id), and the situation of the version stored right before it (None when there is none). A version
    is written on any change (clock, win probability), and observed_ts follows every poll, so neither dates the
    play; live_trading's 10 s run from here. ESPN's down and possession describe the next snap, so the earlier
    version's are the ones the play was run with (its fourth-down outcome). One query for all games."""
    if not plays:
        return {}
    rows = conn.execute(
        "SELECT w.sport, w.game_id, f.first_at, b.found, b.down, b.possession, b.home_score, b.away_score"
        " FROM unnest(%s::text[], %s::text[], %s::text[]) AS w(sport, game_id, play_id)"
        " JOIN LATERAL (SELECT min(h.created_at) AS first_at FROM game_states h"
        "   WHERE h.sport = w.sport AND h.external_game_id = w.game_id"
        "   AND h.sport_metadata->>'last_play_id' = w.play_id) f ON f.first_at IS NOT NULL"
        " LEFT JOIN LATERAL (SELECT TRUE AS found, p.sport_metadata->>'down' AS down, p.possession,"
        "   p.home_score, p.away_score FROM game_states p"
        "   WHERE p.sport = w.sport AND p.external_game_id = w.game_id AND p.created_at < f.first_at"
        "   ORDER BY p.created_at DESC, p.id DESC LIMIT 1) b ON TRUE",
        ([p[0] for p in plays], [p[1] for p in plays], [p[2] for p in plays])).fetchall()
    return {(r[0], r[1]): (r[2].timestamp(), _situation(*r[4:]) if r[3] else None) for r in rows}


def _situation(down: str | None, possession: str | None, home_score: int, away_score: int) -> Situation:
    """A stored version's situation; a down that is not a whole number (or none) is unknown."""
    known_down = int(down) if down is not None and down.isdigit() else None
    side: Side | None = "home" if possession == "home" else "away" if possession == "away" else None
    return Situation(known_down, side, int(home_score), int(away_score))


def _halftime_started(conn: Any, games: list[tuple[str, str]]) -> dict[tuple[str, str], float]:
    """When each game's current halftime was first stored: the first version of its latest run of halftime
    versions (a later version - timeouts reset, say - does not restart it). The halftime strategy's window
    (spec 5.11: within 10 min of halftime start) runs from there, not from a process's first sight of the game,
    which a restart or a one-shot `precog edges scan` would move to now."""
    if not games:
        return {}
    rows = conn.execute(
        "SELECT h.sport, h.external_game_id, min(h.created_at) FROM game_states h"
        " JOIN unnest(%s::text[], %s::text[]) AS w(sport, game_id)"
        "   ON h.sport = w.sport AND h.external_game_id = w.game_id"
        " WHERE h.status = 'halftime' AND h.created_at > COALESCE((SELECT max(o.created_at) FROM game_states o"
        "   WHERE o.sport = h.sport AND o.external_game_id = h.external_game_id AND o.status <> 'halftime'),"
        "   '-infinity'::timestamptz)"
        " GROUP BY h.sport, h.external_game_id",
        ([g[0] for g in games], [g[1] for g in games])).fetchall()
    return {(r[0], r[1]): r[2].timestamp() for r in rows}


def load_positions(conn: Any, mode: str, platform_id: str | None = None) -> list[PositionView]:
    """Open positions as exposure (cost = entry price x contracts + fees), grouped like the markets; with
    `platform_id`, only that venue's (a local-exchange session's positions are not exposure on Kalshi)."""
    rows = conn.execute(
        "SELECT p.position_id, p.market_id, COALESCE(p.event_id, m.event_id, p.market_id),"
        " COALESCE(p.sport, gl.sport, ''), lower(p.side), p.quantity, p.entry_price * p.quantity + p.fees,"
        " p.method_id, e.start_time"
        " FROM positions p"
        " LEFT JOIN markets m ON m.market_id = p.market_id AND m.row_current_ind"
        " LEFT JOIN events e ON e.event_id = COALESCE(p.event_id, m.event_id)"
        " LEFT JOIN game_links gl ON gl.event_id = COALESCE(p.event_id, m.event_id)"
        " WHERE p.row_current_ind AND p.status = 'open' AND p.mode = %s"
        " AND (%s::text IS NULL OR p.platform_id = %s)", (mode, platform_id, platform_id)).fetchall()
    out = [PositionView(ticker=r[1], event_ticker=r[2], sport=r[3], side=r[4], quantity=int(r[5]), cost=r[6],
                        correlation_group=correlation_group(r[3], r[2], _ts(r[8])), method_id=r[7],
                        position_id=int(r[0])) for r in rows]
    return out + load_open_entry_orders(conn, mode, platform_id)


def load_open_entry_orders(conn: Any, mode: str, platform_id: str | None = None) -> list[PositionView]:
    """Entry orders still working at the venue count as exposure too (their unfilled part, at the limit)."""
    exists = conn.execute("SELECT to_regclass('orders')").fetchone()
    if exists is None or exists[0] is None:
        return []
    rows = conn.execute(
        "SELECT o.market_id, COALESCE(m.event_id, o.market_id), COALESCE(gl.sport, ''), o.side,"
        " o.quantity - o.filled_quantity, o.limit_price * (o.quantity - o.filled_quantity), o.method_id,"
        " e.start_time"
        " FROM orders o"
        " LEFT JOIN markets m ON m.market_id = o.market_id AND m.row_current_ind"
        " LEFT JOIN events e ON e.event_id = m.event_id"
        " LEFT JOIN game_links gl ON gl.event_id = m.event_id"
        " WHERE o.purpose = 'entry' AND o.mode = %s AND o.quantity > o.filled_quantity"
        " AND o.status IN ('created', 'submitted', 'resting', 'partially_filled', 'unresolved')"
        " AND (%s::text IS NULL OR o.platform_id = %s)", (mode, platform_id, platform_id)).fetchall()
    return [PositionView(ticker=r[0], event_ticker=r[1], sport=r[2], side=r[3], quantity=int(r[4]), cost=r[5],
                         correlation_group=correlation_group(r[2], r[1], _ts(r[7])), method_id=r[6],
                         extra={"open_order": True}) for r in rows]


def load_balance(conn: Any, mode: str, settings: TradingSettings, *, platform_id: str) -> Decimal:
    """The cash of the account the entries go to: the current account_balance row of (`platform_id`, `mode`),
    else the configured initial capital. Other platforms' accounts (a local-exchange demo's paper cash) never
    size orders for this one."""
    row = conn.execute("SELECT balance FROM account_balance WHERE row_current_ind AND platform_id = %s AND mode = %s",
                       (platform_id, mode)).fetchone()
    if row is None or row[0] is None:
        return settings.initial_capital
    return Decimal(row[0])


def load_snapshot(conn: Any, settings: TradingSettings, mode: str = "paper", now: float | None = None, *,
                  platform_id: str = "kalshi") -> Snapshot:
    """`platform_id`: the venue the entries would be sent to (whose balance sizes them); the markets in the
    database are Kalshi's."""
    markets, links, skipped = load_markets(conn, settings, now)
    sharpe = load_strategy_sharpe(conn, settings.min_sharpe_positions) \
        if settings.selection_method == "best_sharpe" else {}
    return Snapshot(markets, load_games(conn, links), load_positions(conn, mode, platform_id),
                    load_balance(conn, mode, settings, platform_id=platform_id), skipped,
                    load_method_history(conn, mode, time.time() if now is None else now), sharpe)


def load_strategy_sharpe(conn: Any, min_positions: int) -> dict[int, Decimal]:
    """Per strategy version with at least `min_positions` closed or settled paper and live positions: the Sharpe
    ratio of their returns (realized P&L / the contracts' cost at entry), mean over sample standard deviation,
    per position (not annualized), 4 places. A version whose returns do not vary has none."""
    rows = conn.execute(
        "SELECT strategy_id, round(avg(r) / stddev_samp(r), 4) FROM ("
        "  SELECT strategy_id, realized_pnl / (entry_price * initial_quantity) AS r FROM positions"
        "  WHERE row_current_ind AND status IN ('closed', 'settled') AND mode IN ('paper', 'live')"
        "  AND strategy_id IS NOT NULL AND entry_price > 0) p"
        " GROUP BY strategy_id HAVING count(*) >= %s AND stddev_samp(r) > 0", (min_positions,)).fetchall()
    return {int(r[0]): Decimal(r[1]) for r in rows}
