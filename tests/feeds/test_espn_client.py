"""The async ESPN client against a local ESPN-compatible HTTP server serving the real samples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from feeds.espn_testkit import sample_dict, set_score
from precog.feeds.espn import EspnClient, EspnFetchError
from precog.feeds.espn_parse import EspnSchemaError
from precog.feeds.espn_server import LocalEspnServer


async def test_fetches_and_parses_each_sport(espn_server: LocalEspnServer, espn_samples: dict[str, bytes]) -> None:
    for sport in ("nfl", "ncaaf", "nba"):
        espn_server.set_scoreboard(sport, espn_samples[sport])
    async with EspnClient(espn_server.base_url, min_interval=0) as client:
        nfl = await client.scoreboard("nfl", "20251130")
        cfb = await client.scoreboard("ncaaf")
        nba = await client.scoreboard("nba")
    assert (len(nfl.games), len(cfb.games), len(nba.games)) == (16, 19, 7)
    nfl_req = espn_server.requests_for("nfl")[0]
    assert nfl_req.path == "/apis/site/v2/sports/football/nfl/scoreboard"
    assert nfl_req.query == {"dates": ["20251130"]}
    cfb_req = espn_server.requests_for("ncaaf")[0]
    assert cfb_req.path.endswith("/football/college-football/scoreboard")
    assert cfb_req.query["groups"] == ["80"]  # all FBS games, not ESPN's featured subset
    assert espn_server.requests_for("nba")[0].path.endswith("/basketball/nba/scoreboard")


async def test_successive_polls_see_score_changes(espn_server: LocalEspnServer,
                                                  espn_samples: dict[str, bytes]) -> None:
    later = sample_dict(espn_samples, "nfl")
    set_score(later, "401772931", "home", 24)
    espn_server.queue("nfl", espn_samples["nfl"], json.dumps(later))
    async with EspnClient(espn_server.base_url, min_interval=0) as client:
        first = await client.scoreboard("nfl")
        second = await client.scoreboard("nfl")
    live = [g for g in first.games if g.game_id == "401772931"][0]
    live2 = [g for g in second.games if g.game_id == "401772931"][0]
    assert (live.home_score, live2.home_score) == (17, 24)


async def test_retries_server_errors_then_succeeds(espn_server: LocalEspnServer,
                                                   espn_samples: dict[str, bytes]) -> None:
    espn_server.set_scoreboard("nba", espn_samples["nba"])
    espn_server.fail_next("nba", 503, times=2)
    async with EspnClient(espn_server.base_url, retries=3, retry_delay=0.01, min_interval=0) as client:
        board = await client.scoreboard("nba")
    assert len(board.games) == 7
    assert len(espn_server.requests_for("nba")) == 3


async def test_gives_up_with_a_clear_error(espn_server: LocalEspnServer) -> None:
    espn_server.set_scoreboard("nfl", b"{}", status=404)
    async with EspnClient(espn_server.base_url, retries=3, retry_delay=0.01, min_interval=0) as client:
        with pytest.raises(EspnFetchError, match=r"ESPN nfl scoreboard failed: HTTP 404"):
            await client.fetch("nfl")
    assert len(espn_server.requests_for("nfl")) == 1  # a 404 is not retried

    async with EspnClient("http://127.0.0.1:9", retries=1, retry_delay=0.01, min_interval=0) as client:
        with pytest.raises(EspnFetchError, match="ConnectError"):
            await client.fetch("nfl")


async def test_malformed_body_is_a_schema_error(espn_server: LocalEspnServer) -> None:
    espn_server.set_scoreboard("nfl", b"<html>maintenance</html>")
    async with EspnClient(espn_server.base_url, min_interval=0) as client:
        response = await client.fetch("nfl")  # fetching works; the body is what is wrong
        with pytest.raises(EspnSchemaError, match="not valid JSON"):
            response.parse()


async def test_raw_bodies_reach_the_recorder_hook(espn_server: LocalEspnServer,
                                                  espn_samples: dict[str, bytes]) -> None:
    espn_server.set_scoreboard("nba", espn_samples["nba"])
    seen: list[tuple[str, dict[str, Any], datetime]] = []
    async with EspnClient(espn_server.base_url, min_interval=0,
                          on_raw=lambda s, p, t: seen.append((s, p, t))) as client:
        await client.fetch("nba")
    assert len(seen) == 1
    source, payload, received = seen[0]
    assert source == "espn:nba" and payload["body"].encode() == espn_samples["nba"]
    assert payload["url"].endswith("/basketball/nba/scoreboard")
    assert received.tzinfo is UTC


async def test_bad_arguments_are_refused() -> None:
    async with EspnClient("http://127.0.0.1:9") as client:
        with pytest.raises(ValueError, match="unknown sport 'cricket'"):
            await client.fetch("cricket")
        with pytest.raises(ValueError, match="must be YYYYMMDD"):
            await client.fetch("nfl", "2025-11-30")
        with pytest.raises(ValueError, match="not a calendar date"):
            await client.fetch("nfl", "20251341")
