"""data_sources.yaml and markets.yaml keys that ingestion accepted but never read now change what it does.

Found by the s9 traceability audit: `data_sources.espn.enabled`, `espn.paths.<sport>` and `espn.ncaaf_groups`
were in the packaged defaults and validated, but the ESPN client used hard-coded paths and `groups=80` and
the game feed started whatever `enabled` said; `markets.platforms.kalshi.read/write_requests_per_second`
(documented as the venue's rate limits) were never given to the REST client, which always used the Basic
tier's 20/10.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from feeds.espn_testkit import sample_dict
from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.feeds.espn import EspnClient, EspnFetchError
from precog.feeds.espn_server import LocalEspnServer
from precog.ingest.market_feed import MarketFeed
from precog.ingest.runner import IngestOptions, run_ingest
from precog.ingest.settings import load_ingest_settings
from venues.conftest import LocalExchange


def _config(tmp_path: Path, **files: str) -> Any:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return load_config(tmp_path, use_env=False, use_overrides=False, environ={})


def test_espn_and_kalshi_keys_reach_the_ingest_settings(tmp_path: Path) -> None:
    cfg = _config(tmp_path, data_sources="espn:\n  enabled: false\n  ncaaf_groups: 81\n"
                                         "  paths:\n    nfl: football/nfl-preseason\n",
                  markets="platforms:\n  kalshi:\n    read_requests_per_second: 5\n    write_requests_per_second: 2\n")
    settings = load_ingest_settings(cfg, ["nfl", "ncaaf"])
    assert settings.espn_enabled is False
    assert settings.espn_paths["nfl"] == "football/nfl-preseason"
    assert settings.espn_paths["ncaaf"] == "football/college-football"  # the other sports keep their default
    assert settings.espn_params["ncaaf"]["groups"] == "81"
    assert (settings.kalshi_rate_limits.read_per_second, settings.kalshi_rate_limits.write_per_second) == (5.0, 2.0)


def test_the_espn_client_requests_the_configured_path_and_groups(espn_server: LocalEspnServer,
                                                                  espn_samples: dict[str, bytes]) -> None:
    espn_server.set_scoreboard("ncaaf", sample_dict(espn_samples, "ncaaf"))

    async def go() -> None:
        async with EspnClient(espn_server.base_url, retries=0, retry_delay=0, min_interval=0,
                              paths={"nfl": "football/nfl-preseason"}, params={"ncaaf": {"groups": "81"}}) as espn:
            with pytest.raises(EspnFetchError):  # the local server serves ESPN's real paths only
                await espn.fetch("nfl")
            await espn.fetch("ncaaf")

    asyncio.run(go())
    nfl, ncaaf = espn_server.requests
    assert nfl.path == "/apis/site/v2/sports/football/nfl-preseason/scoreboard"
    assert ncaaf.query["groups"] == ["81"]


def test_bad_espn_path_or_sport_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="espn.paths.nfl"):
        _config(tmp_path, data_sources="espn:\n  paths:\n    nfl: 'football/nfl?x=1'\n")
    with pytest.raises(ConfigError, match="espn.paths.nhl"):
        _config(tmp_path, data_sources="espn:\n  paths:\n    nhl: hockey/nhl\n")


def test_ingest_follows_espn_enabled_and_the_kalshi_budget(tmp_path: Path, db_url: str,
                                                          local_exchange: LocalExchange,
                                                          espn_server: LocalEspnServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH", "KALSHI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    cfg = _config(tmp_path, data_sources=f"espn:\n  enabled: false\n  base_url: {espn_server.base_url}\n",
                  markets="platforms:\n  kalshi:\n    read_requests_per_second: 7\n    write_requests_per_second: 3\n")
    settings = load_ingest_settings(cfg, ["nfl"])
    feeds: list[MarketFeed] = []
    report = asyncio.run(run_ingest(db_url, settings, IngestOptions(venue="local", base_url=local_exchange.base_url,
                                                                    once=True),
                                    alerts=None, on_market_feed=feeds.append))
    assert report.game_polls == [] and espn_server.requests == []  # ESPN disabled: never asked
    assert report.markets  # the markets were still followed
    limits = feeds[0].rest.limiter.limits
    assert (limits.read_per_second, limits.write_per_second) == (7.0, 3.0)
