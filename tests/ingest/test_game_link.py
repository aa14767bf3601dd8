"""Linking Kalshi game events to ESPN games (teams + date) and showing them with `precog games`."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import psycopg

from feeds.espn_testkit import RecordingAlerts, insert_venue_event, run_cli
from precog.cli.errors import UserError
from precog.feeds.espn import EspnClient
from precog.feeds.espn_parse import parse_scoreboard
from precog.feeds.espn_server import LocalEspnServer
from precog.ingest import scd2
from precog.ingest.game_link import VenueEvent, VenueMarket, match_event, parse_event_ticker
from precog.ingest.game_store import GameStateStore
from precog.ingest.games import GameFeed
from precog.ingest.quality import DataQualityMonitor


def test_event_tickers_are_parsed() -> None:
    parsed = parse_event_ticker("KXNFLGAME-25OCT05-NEBUF")
    assert parsed is not None and (parsed.series, parsed.game_date, parsed.teams) == ("KXNFLGAME", date(2025, 10, 5), "NEBUF")
    assert parse_event_ticker("KXNFLGAME-25NOV30DENWAS").teams == "DENWAS"  # type: ignore[union-attr]
    assert parse_event_ticker("KXNFLGAME-25FEB30DENWAS") is None  # no such day
    assert parse_event_ticker("KXNFLMVP-26") is None


def test_matching_by_codes_aliases_and_names(espn_samples: dict[str, bytes]) -> None:
    nfl = parse_scoreboard(espn_samples["nfl"], "nfl").games
    # Kalshi spells Washington WAS, ESPN WSH; markets name the teams by city
    event = VenueEvent("KXNFLGAME-25NOV30DENWAS", "Denver at Washington",
                       (VenueMarket("KXNFLGAME-25NOV30DENWAS-DEN", yes_sub_title="Denver"),
                        VenueMarket("KXNFLGAME-25NOV30DENWAS-WAS", yes_sub_title="Washington")))
    link = match_event(event, nfl)
    assert link is not None and link.game.game_id == "401772931" and link.method == "ticker_codes"
    assert link.market_sides == {"KXNFLGAME-25NOV30DENWAS-DEN": "away", "KXNFLGAME-25NOV30DENWAS-WAS": "home"}
    # Monday night game on Dec 1 ET (01:15 UTC Dec 2)
    mnf = match_event(VenueEvent("KXNFLGAME-25DEC01NYGNE", "", ()), nfl)
    assert mnf is not None and mnf.game.game_id == "401772821" and mnf.market_sides == {}
    # same teams, wrong date: no link
    assert match_event(VenueEvent("KXNFLGAME-25DEC14DENWAS", "", ()), nfl) is None

    cfb = parse_scoreboard(espn_samples["ncaaf"], "ncaaf").games
    # ESPN's code is TA&M; Kalshi's is TAMU: names decide, and "Texas" must not be taken for Texas A&M
    aggies = VenueEvent("KXNCAAFGAME-25NOV28TAMUTEX", "Texas A&M at Texas",
                        (VenueMarket("KXNCAAFGAME-25NOV28TAMUTEX-TAMU", yes_sub_title="Texas A&M"),
                         VenueMarket("KXNCAAFGAME-25NOV28TAMUTEX-TEX", yes_sub_title="Texas")))
    link = match_event(aggies, cfb)
    assert link is not None and link.game.game_id == "401752792" and link.method == "team_names"
    assert link.market_sides["KXNCAAFGAME-25NOV28TAMUTEX-TAMU"] == "away"
    assert link.market_sides["KXNCAAFGAME-25NOV28TAMUTEX-TEX"] == "home"

    nba = parse_scoreboard(espn_samples["nba"], "nba").games
    knicks = match_event(VenueEvent("KXNBAGAME-25DEC07ORLNYK", "", (
        VenueMarket("KXNBAGAME-25DEC07ORLNYK-NYK", yes_sub_title="New York K"),
        VenueMarket("KXNBAGAME-25DEC07ORLNYK-ORL", yes_sub_title="Orlando"))), nba)
    assert knicks is not None and knicks.market_sides["KXNBAGAME-25DEC07ORLNYK-NYK"] == "home"

    # a market naming a team that is not in the game prevents a names-only link
    wrong = VenueEvent("KXNCAAFGAME-25NOV28AAABBB", "", (
        VenueMarket("KXNCAAFGAME-25NOV28AAABBB-AAA", yes_sub_title="Texas A&M"),
        VenueMarket("KXNCAAFGAME-25NOV28AAABBB-BBB", yes_sub_title="Notre Dame")))
    assert match_event(wrong, cfb) is None


async def test_feed_links_events_and_stamps_game_states(
        espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db: psycopg.Connection[Any],
        alerts: RecordingAlerts) -> None:
    espn_server.set_scoreboard("nfl", espn_samples["nfl"])
    feed = GameFeed(EspnClient(espn_server.base_url, retries=0, min_interval=0), sports=["nfl"],
                    monitor=DataQualityMonitor(alerts=alerts), store=GameStateStore(db))
    await feed.poll("nfl")
    assert scd2.current(db, scd2.GAME_STATES, ("nfl", "401772931"))["event_id"] is None  # type: ignore[index]
    insert_venue_event(db, "KXNFLGAME-25NOV30DENWAS", "Denver at Washington Winner?",
                       [("DEN", "Denver"), ("WAS", "Washington")])
    insert_venue_event(db, "KXNFLGAME-25NOV30ZZZYYY", "Nobody at Nowhere", [("ZZZ", "Nobody"), ("YYY", "Nowhere")])
    outcome = await feed.poll("nfl")
    assert [link.event_ticker for link in outcome.links] == ["KXNFLGAME-25NOV30DENWAS"]
    assert outcome.versions_written == 1  # the linked game gets a version carrying its event
    history = scd2.history(db, scd2.GAME_STATES, ("nfl", "401772931"))
    assert [v["event_id"] for v in history] == [None, "KXNFLGAME-25NOV30DENWAS"]
    assert db.execute("SELECT market_id, side, team_code FROM game_link_markets ORDER BY market_id").fetchall() == [
        ("KXNFLGAME-25NOV30DENWAS-DEN", "away", "DEN"), ("KXNFLGAME-25NOV30DENWAS-WAS", "home", "WSH")]
    again = await feed.poll("nfl")
    assert again.links == [] and again.versions_written == 0


async def test_games_command(espn_server: LocalEspnServer, espn_samples: dict[str, bytes], db_url: str,
                             db: psycopg.Connection[Any], alerts: RecordingAlerts) -> None:
    insert_venue_event(db, "KXNBAGAME-25DEC07ORLNYK", "Orlando at New York K Winner?",
                       [("NYK", "New York K"), ("ORL", "Orlando")])
    espn_server.set_scoreboard("nba", espn_samples["nba"])
    espn_server.set_scoreboard("nfl", espn_samples["nfl"])
    feed = GameFeed(EspnClient(espn_server.base_url, retries=0, min_interval=0), sports=["nba", "nfl"],
                    monitor=DataQualityMonitor(alerts=alerts), store=GameStateStore(db))
    await feed.poll("nba")
    await feed.poll("nfl")

    result = run_cli("games", "--live", "--json")
    assert result.exit_code == 0, result.output
    live = json.loads(result.stdout)
    assert sorted(g["game_id"] for g in live) == ["401772931", "401810212"]
    knicks = next(g for g in live if g["game_id"] == "401810212")
    assert knicks["home_score"] == 87 and knicks["period_label"] == "Q4"
    assert knicks["kalshi_events"] == [{"event_id": "KXNBAGAME-25DEC07ORLNYK", "match_method": "ticker_codes",
                                        "markets": {"KXNBAGAME-25DEC07ORLNYK-NYK": "home",
                                                    "KXNBAGAME-25DEC07ORLNYK-ORL": "away"}}]
    assert knicks["metadata"]["espn_win_probability"]["home"] == "0.9610"

    every = json.loads(run_cli("games", "--json").stdout)
    assert len(every) == 23
    table = run_cli("games", "--sport", "nba")
    assert table.exit_code == 0 and "ORL @ NY" in table.stdout and "KXNBAGAME-25DEC07ORLNYK" in table.stdout
    bad = run_cli("games", "--sport", "cricket")
    assert isinstance(bad.exception, UserError) and "--sport" in str(bad.exception)
