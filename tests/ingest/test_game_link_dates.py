"""Which ESPN game a Kalshi event's date allows: the game on the ticker's Eastern date, or a late local start
just after midnight Eastern; never the same teams' game of the day before or after (baseball series)."""

from __future__ import annotations

from datetime import UTC, datetime

from feeds.espn_testkit import insert_venue_event
from precog.db.connection import connect
from precog.feeds.game_state import GameState
from precog.ingest.game_link import VenueEvent, VenueMarket, link_events, match_event


def _mlb_game(game_id: str, start: datetime, status: str = "live") -> GameState:
    return GameState(
        sport="mlb", game_id=game_id, start_time=start, name="New York Mets at Washington Nationals",
        short_name="NYM @ WSH", home_team="WSH", away_team="NYM", home_team_id="20", away_team_id="21",
        home_team_name="Washington Nationals", away_team_name="New York Mets", status=status,  # type: ignore[arg-type]
        status_detail="Top 3rd", period=3, clock_seconds=0, display_clock="0:00", home_score=1, away_score=0,
    )


def _event(day: str) -> VenueEvent:
    ticker = f"KXMLBGAME-25JUL{day}NYMWSH"
    return VenueEvent(ticker, "New York M vs Washington", (
        VenueMarket(f"{ticker}-NYM", yes_sub_title="New York M"),
        VenueMarket(f"{ticker}-WSH", yes_sub_title="Washington"),
    ))


def test_an_event_is_not_linked_to_the_same_teams_game_of_the_day_before() -> None:
    """In a series the same teams play on consecutive days; with only today's game (1:05 PM ET Jul 2) on the
    board, tomorrow's event (Jul 3) has no game yet."""
    today = _mlb_game("401700001", datetime(2025, 7, 2, 17, 5, tzinfo=UTC))
    link = match_event(_event("03"), [today])
    assert link is None, f"Jul 3 event linked to game {link.game.game_id} of Jul 2"  # type: ignore[union-attr]


def test_an_evening_game_of_the_day_before_does_not_explain_the_date() -> None:
    """A West-coast night game (10:10 PM ET Jul 2) is still Jul 2's game: tomorrow's event stays unlinked."""
    tonight = _mlb_game("401700001", datetime(2025, 7, 3, 2, 10, tzinfo=UTC))
    assert match_event(_event("03"), [tonight]) is None


def test_a_late_start_after_midnight_eastern_links_to_its_local_date() -> None:
    """A game starting at 12:40 AM ET Jul 3 (9:40 PM on the West coast, Jul 2) is the Jul 2 event's game;
    a game later on Jul 3 is not."""
    late = _mlb_game("401700002", datetime(2025, 7, 3, 4, 40, tzinfo=UTC))  # 00:40 ET Jul 3
    link = match_event(_event("02"), [late])
    assert link is not None and link.game.game_id == "401700002"
    assert link.market_sides == {"KXMLBGAME-25JUL02NYMWSH-NYM": "away", "KXMLBGAME-25JUL02NYMWSH-WSH": "home"}
    afternoon = _mlb_game("401700003", datetime(2025, 7, 3, 17, 5, tzinfo=UTC))  # 1:05 PM ET Jul 3
    assert match_event(_event("02"), [afternoon]) is None


def test_a_game_on_the_tickers_date_wins_over_a_late_start_of_the_next_day() -> None:
    """With a game of the same teams on the ticker's own date, a next-day late start is never considered."""
    on_date = _mlb_game("401700001", datetime(2025, 7, 2, 17, 5, tzinfo=UTC))
    late_next = _mlb_game("401700002", datetime(2025, 7, 3, 4, 40, tzinfo=UTC))
    link = match_event(_event("02"), [late_next, on_date])
    assert link is not None and link.game.game_id == "401700001"


def test_each_game_of_a_series_keeps_its_own_event_in_the_database(db_url: str) -> None:
    """link_events links only the event of the game's date; the next day's event waits for its own game
    (links are permanent, so a wrong one would never be undone)."""
    today = _mlb_game("401700001", datetime(2025, 7, 2, 17, 5, tzinfo=UTC))
    with connect(db_url, autocommit=True) as conn:
        for day in ("02", "03"):
            insert_venue_event(conn, f"KXMLBGAME-25JUL{day}NYMWSH", "New York M vs Washington",
                               [("NYM", "New York M"), ("WSH", "Washington")])
        link_events(conn, [today], series_prefixes=["KXMLBGAME"])
        linked = conn.execute("SELECT event_id, external_game_id FROM game_links ORDER BY event_id").fetchall()
        markets = conn.execute("SELECT market_id FROM game_link_markets ORDER BY market_id").fetchall()
    assert linked == [("KXMLBGAME-25JUL02NYMWSH", "401700001")], f"game_links rows: {linked}"
    assert markets == [("KXMLBGAME-25JUL02NYMWSH-NYM",), ("KXMLBGAME-25JUL02NYMWSH-WSH",)]
