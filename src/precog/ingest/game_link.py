"""Link each Kalshi game event to its ESPN game (teams + date) and each of its markets to a side.

Kalshi event tickers carry the series, the game's US Eastern date and the two team codes, away first:
`KXNFLGAME-25NOV30DENWSH` (or `KXNFLGAME-25OCT05-NEBUF`); each market adds its team: `...-DEN`. Team
codes are not always ESPN's (WAS/WSH, JAC/JAX, GSW/GS ...), so identity is decided by codes (with known
aliases) and, failing that, by the team names in the market's yes_sub_title/title against ESPN's names.
A link is only made when exactly one game on that date fits best; ambiguous cases are left unlinked. A game
on the next Eastern day fits only when it starts in the first hours after midnight Eastern (a late local
start dated by its local day) and no game of the same teams is on the ticker's date.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from precog.feeds.game_state import GameState, Sport

EASTERN = ZoneInfo("America/New_York")
_TICKER_RE = re.compile(r"^(?P<series>[A-Z0-9]+)-(?P<yy>\d{2})(?P<mon>[A-Z]{3})(?P<dd>\d{2})(?:\d{4})?-?(?P<teams>[A-Z0-9]*)$")
_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
DEFAULT_GAME_SERIES: dict[str, list[str]] = {
    "nfl": ["KXNFLGAME"], "ncaaf": ["KXNCAAFGAME"], "nba": ["KXNBAGAME"], "mlb": ["KXMLBGAME"],
}
SERIES_PREFIX_SPORT: tuple[tuple[str, Sport], ...] = (
    ("KXNCAAF", "ncaaf"), ("KXNFL", "nfl"), ("KXNBA", "nba"), ("KXMLB", "mlb"),
)
# Kalshi code -> ESPN abbreviation, where they differ (per sport; checked both ways).
CODE_ALIASES: dict[str, dict[str, str]] = {
    "nfl": {"WAS": "WSH", "JAC": "JAX", "LA": "LAR", "LVR": "LV", "ARZ": "ARI"},
    "nba": {"NYK": "NY", "GSW": "GS", "SAS": "SA", "NOP": "NO", "UTA": "UTAH", "WAS": "WSH", "PHO": "PHX",
            "BRK": "BKN"},
    "mlb": {"CWS": "CHW", "WAS": "WSH", "WSN": "WSH", "ARI": "AZ", "KCR": "KC", "SDP": "SD", "SFG": "SF",
            "TBR": "TB", "OAK": "ATH"},
    "ncaaf": {},
}


@dataclass(frozen=True, slots=True)
class EventTicker:
    series: str
    game_date: date
    teams: str  # the concatenated team codes, away first ('' when absent)


@dataclass(frozen=True, slots=True)
class VenueMarket:
    ticker: str
    title: str = ""
    yes_sub_title: str = ""

    def code(self, event_ticker: str) -> str:
        prefix = event_ticker + "-"
        return self.ticker[len(prefix):] if self.ticker.startswith(prefix) else ""


@dataclass(frozen=True, slots=True)
class VenueEvent:
    event_ticker: str
    title: str
    markets: tuple[VenueMarket, ...]


@dataclass(frozen=True, slots=True)
class GameLink:
    event_ticker: str
    sport: str
    game: GameState
    game_date: date
    method: str  # ticker_codes | team_names
    score: int
    market_sides: dict[str, str]  # market ticker -> home | away | tie


def parse_event_ticker(ticker: str) -> EventTicker | None:
    match = _TICKER_RE.match(ticker.upper())
    if not match or match["mon"] not in _MONTHS:
        return None
    try:
        day = date(2000 + int(match["yy"]), _MONTHS[match["mon"]], int(match["dd"]))
    except ValueError:
        return None
    return EventTicker(match["series"], day, match["teams"])


def sport_of_series(series: str) -> Sport | None:
    for prefix, sport in SERIES_PREFIX_SPORT:
        if series.upper().startswith(prefix):
            return sport
    return None


def eastern_date(game: GameState) -> date:
    return game.start_time.astimezone(EASTERN).date()


# Tickers carry the Eastern date (a Monday-night kickoff at 01:15Z is dated Monday). The one case where a
# game's Eastern date differs is a late local start (West coast, Hawaii) that falls after midnight Eastern and
# is dated by its local day, the day before. Any other one-day difference is another game: in a baseball
# series the same teams play on consecutive days.
LATE_START_HOURS = 4


def dated_by_late_start(game: GameState, ticker_date: date) -> bool:
    """True when the game starts in the first hours of the day after `ticker_date` (Eastern)."""
    start = game.start_time.astimezone(EASTERN)
    return start.date() == ticker_date + timedelta(days=1) and start.hour < LATE_START_HOURS


def _norm_code(code: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", code.upper())


def code_variants(espn_abbr: str, sport: str) -> set[str]:
    """Every code Kalshi may use for an ESPN abbreviation."""
    base = _norm_code(espn_abbr)
    out = {base}
    for kalshi, espn in CODE_ALIASES.get(sport, {}).items():
        if _norm_code(espn) == base:
            out.add(kalshi)
    return out


def _norm_name(text: str) -> str:
    text = text.lower().replace("st.", "state").replace("é", "e")
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9& ]", " ", text)).strip()


def _team_name_from_market(market: VenueMarket) -> str:
    if market.yes_sub_title:
        return market.yes_sub_title
    # "Will Denver win the Denver at Washington game?" style titles carry no single team reliably
    return ""


def name_score(candidate: str, display_name: str) -> int:
    """3 exact (full name or location), 2 word prefix, 1 character prefix ('Los Angeles R'), 0 none."""
    sub, full = _norm_name(candidate), _norm_name(display_name)
    if not sub or not full:
        return 0
    location = full.rsplit(" ", 1)[0] if " " in full else full
    if sub in (full, location):
        return 3
    if full.startswith(sub + " "):
        return 2
    if full.startswith(sub):
        return 1
    return 0


def _market_side_scores(market: VenueMarket, event_ticker: str, game: GameState) -> dict[str, int]:
    code = _norm_code(market.code(event_ticker))
    scores: dict[str, int] = {}
    if code in ("TIE", "DRAW"):
        return {"tie": 4}
    for side, abbr, display in (("home", game.home_team, game.home_team_name),
                                ("away", game.away_team, game.away_team_name)):
        if code and code in code_variants(abbr, game.sport):
            scores[side] = 4
        else:
            scores[side] = name_score(_team_name_from_market(market), display)
    return scores


def _codes_match(teams_blob: str, game: GameState) -> bool:
    if not teams_blob:
        return False
    for away in code_variants(game.away_team, game.sport):
        for home in code_variants(game.home_team, game.sport):
            if teams_blob in (away + home, home + away):
                return True
    return False


def _assign_markets(event: VenueEvent, game: GameState) -> tuple[int, dict[str, str]] | None:
    """Best distinct market -> side assignment and its score (None when some team market fits nowhere)."""
    markets = list(event.markets)
    if not markets:
        return 0, {}
    scores = [_market_side_scores(m, event.event_ticker, game) for m in markets]
    sides = ["home", "away", "tie"]
    best: tuple[int, dict[str, str]] | None = None
    for perm in itertools.permutations(sides, len(markets)) if len(markets) <= 3 else []:
        total = 0
        ok = True
        for market_scores, side in zip(scores, perm, strict=True):
            value = market_scores.get(side, 0)
            if value <= 0:
                ok = False
                break
            total += value
        if ok and (best is None or total > best[0]):
            best = (total, {m.ticker: side for m, side in zip(markets, perm, strict=True)})
    return best


def match_event(event: VenueEvent, games: Iterable[GameState]) -> GameLink | None:
    """The ESPN game this Kalshi event is about, or None when no single game fits."""
    parsed = parse_event_ticker(event.event_ticker)
    if parsed is None:
        return None
    sport = sport_of_series(parsed.series)
    candidates: list[tuple[int, str, GameState, dict[str, str]]] = []
    late_starts: list[tuple[int, str, GameState, dict[str, str]]] = []  # next Eastern day, after midnight
    for game in games:
        if sport is not None and game.sport != sport:
            continue
        same_day = eastern_date(game) == parsed.game_date
        if not same_day and not dated_by_late_start(game, parsed.game_date):
            continue
        codes = _codes_match(parsed.teams, game)
        assigned = _assign_markets(event, game)
        if not codes and (assigned is None or not assigned[1]):
            continue  # by names alone, every market must name one of this game's teams
        # codes fit but the markets are not one-per-team (spread, totals ...): link the event, no sides
        points, sides = assigned if assigned is not None else (0, {})
        score = (10 if codes else 0) + points + (2 if same_day else 0)
        entry = (score, "ticker_codes" if codes else "team_names", game, sides)
        (candidates if same_day else late_starts).append(entry)
    # a late start explains the date only when no game of these teams is on the ticker's own date
    candidates = candidates or late_starts
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0], reverse=True)
    if len(candidates) > 1 and candidates[1][0] == candidates[0][0]:
        return None  # two games fit equally well: do not guess
    score, method, game, sides = candidates[0]
    return GameLink(event.event_ticker, game.sport, game, parsed.game_date, method, score, sides)


# --- database ----------------------------------------------------------------------------------------------


def unlinked_events(conn: psycopg.Connection[Any], *, series_prefixes: Sequence[str] | None = None,
                    since: date | None = None) -> list[VenueEvent]:
    """Kalshi events with no game link yet, with their current markets."""
    patterns = [f"{p}%" for p in series_prefixes] if series_prefixes else None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT e.event_id, e.title, m.ticker, m.title AS market_title,"
            " COALESCE(m.metadata ->> 'yes_sub_title', m.subtitle, '') AS yes_sub_title"
            " FROM events e LEFT JOIN markets m ON m.event_id = e.event_id AND m.row_current_ind"
            " WHERE NOT EXISTS (SELECT 1 FROM game_links gl WHERE gl.event_id = e.event_id)"
            " AND (%(patterns)s::text[] IS NULL OR e.event_id LIKE ANY(%(patterns)s::text[]))"
            " AND (%(since)s::date IS NULL OR e.start_time IS NULL OR e.start_time >= %(since)s::date)"
            " ORDER BY e.event_id, m.ticker",
            {"patterns": patterns, "since": since},
        )
        rows = cur.fetchall()
    events: dict[str, tuple[str, list[VenueMarket]]] = {}
    for row in rows:
        title, markets = events.setdefault(row["event_id"], (row["title"], []))
        if row["ticker"]:
            markets.append(VenueMarket(row["ticker"], row["market_title"] or "", row["yes_sub_title"] or ""))
    return [VenueEvent(eid, title, tuple(ms)) for eid, (title, ms) in events.items()]


def save_link(conn: psycopg.Connection[Any], link: GameLink) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO game_links (event_id, sport, external_game_id, game_date, home_team, away_team,"
            " match_method, match_score) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (event_id) DO UPDATE SET sport = EXCLUDED.sport,"
            " external_game_id = EXCLUDED.external_game_id, game_date = EXCLUDED.game_date,"
            " home_team = EXCLUDED.home_team, away_team = EXCLUDED.away_team,"
            " match_method = EXCLUDED.match_method, match_score = EXCLUDED.match_score",
            (link.event_ticker, link.sport, link.game.game_id, link.game_date, link.game.home_team[:10],
             link.game.away_team[:10], link.method, link.score),
        )
        for ticker, side in link.market_sides.items():
            team = {"home": link.game.home_team, "away": link.game.away_team}.get(side)
            conn.execute(
                "INSERT INTO game_link_markets (market_id, event_id, side, team_code) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (market_id) DO UPDATE SET event_id = EXCLUDED.event_id, side = EXCLUDED.side,"
                " team_code = EXCLUDED.team_code",
                (ticker, link.event_ticker, side, team[:10] if team else None),
            )


def link_events(conn: psycopg.Connection[Any], games: Sequence[GameState], *,
                series_prefixes: Sequence[str] | None = None) -> list[GameLink]:
    """Link every not-yet-linked venue event that matches one of `games`; returns the new links."""
    if not games:
        return []
    earliest = min(eastern_date(g) for g in games) - timedelta(days=2)
    links = []
    for event in unlinked_events(conn, series_prefixes=series_prefixes, since=earliest):
        link = match_event(event, games)
        if link is not None:
            save_link(conn, link)
            links.append(link)
    return links
