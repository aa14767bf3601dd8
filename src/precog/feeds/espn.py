"""Async client for ESPN's public scoreboard API (no key) for NFL, NCAAF (FBS, groups=80), NBA and MLB.

The base URL is configurable (`PRECOG_ESPN_BASE_URL`, or the spec's `ESPN_API_BASE`) so tests and
replays point it at a local server. Network errors, 429 and 5xx are retried with a short delay; other
4xx are not. Every raw body can be handed to a recorder through `on_raw` before it is parsed.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from precog.feeds.espn_parse import ParsedScoreboard, load_payload, parse_scoreboard
from precog.feeds.game_state import SPORTS, Sport

DEFAULT_BASE_URL = "https://site.api.espn.com/apis/site/v2"
SPORT_PATHS: dict[str, str] = {
    "nfl": "football/nfl",
    "ncaaf": "football/college-football",
    "nba": "basketball/nba",
    "mlb": "baseball/mlb",
}
# NCAAF scoreboards default to a small featured set; groups=80 asks for all FBS games.
SPORT_PARAMS: dict[str, dict[str, str]] = {"ncaaf": {"groups": "80", "limit": "300"}}
USER_AGENT = "precog-trading-bot/1.0 (research purposes)"
_DATE_RE = re.compile(r"^\d{8}$")

RawHook = Callable[[str, dict[str, Any], datetime], None]


class EspnFetchError(RuntimeError):
    """ESPN could not be reached or answered with an error after the allowed retries."""


def espn_base_url() -> str:
    return (os.environ.get("PRECOG_ESPN_BASE_URL") or os.environ.get("ESPN_API_BASE") or DEFAULT_BASE_URL).rstrip(
        "/"
    )


def check_sport(sport: str) -> Sport:
    if sport not in SPORTS:
        raise ValueError(f"unknown sport {sport!r}; expected one of {', '.join(SPORTS)}")
    return sport  # type: ignore[return-value]


def check_date(date: str | None) -> str | None:
    if date is None:
        return None
    if not _DATE_RE.match(date):
        raise ValueError(f"date {date!r} must be YYYYMMDD, e.g. 20251130")
    try:
        datetime.strptime(date, "%Y%m%d")
    except ValueError as exc:
        raise ValueError(f"date {date!r} is not a calendar date") from exc
    return date


@dataclass(frozen=True, slots=True)
class ScoreboardResponse:
    sport: Sport
    url: str
    body: bytes
    received_at: datetime  # when the body arrived (UTC)
    fetch_seconds: float

    def payload(self) -> dict[str, Any]:
        return load_payload(self.body, sport=self.sport)

    def parse(self) -> ParsedScoreboard:
        return parse_scoreboard(self.payload(), self.sport)


class EspnClient:
    """`async with EspnClient() as espn: board = await espn.scoreboard("nfl")`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        retry_delay: float = 2.0,
        min_interval: float = 1.0,
        on_raw: RawHook | None = None,
        http: httpx.AsyncClient | None = None,
        paths: Mapping[str, str] | None = None,
        params: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.base_url = (base_url or espn_base_url()).rstrip("/")
        # data_sources.yaml espn.paths / ncaaf_groups: each sport's API path and extra query parameters
        self.paths = {**SPORT_PATHS, **(paths or {})}
        self.params = {sport: dict(p) for sport, p in {**SPORT_PARAMS, **(params or {})}.items()}
        self.retries = retries
        self.retry_delay = retry_delay
        self.min_interval = min_interval  # data_sources.yaml: 60 requests/min
        self.on_raw = on_raw
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._last_request = 0.0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> EspnClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    def scoreboard_url(self, sport: str) -> str:
        return f"{self.base_url}/sports/{self.paths[check_sport(sport)]}/scoreboard"

    async def fetch(self, sport: str, date: str | None = None) -> ScoreboardResponse:
        """GET the scoreboard (raw body + receive time). Raises EspnFetchError after the retries."""
        sport_ok = check_sport(sport)
        params = dict(self.params.get(sport_ok, {}))
        if check_date(date):
            params["dates"] = date  # type: ignore[assignment]
        url = self.scoreboard_url(sport_ok)
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.retry_delay * (2 ** (attempt - 1)))
            await self._pace()
            started = time.monotonic()
            try:
                response = await self._http.get(url, params=params)
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 200:
                received = datetime.now(UTC)
                result = ScoreboardResponse(sport_ok, str(response.url), response.content, received,
                                            time.monotonic() - started)
                if self.on_raw is not None:
                    self.on_raw(f"espn:{sport_ok}", {"url": result.url, "body": response.text}, received)
                return result
            last_error = f"HTTP {response.status_code} from {response.url}"
            if response.status_code != 429 and response.status_code < 500:
                break  # 4xx other than rate limiting will not get better by retrying
        raise EspnFetchError(f"ESPN {sport_ok} scoreboard failed: {last_error}")

    async def scoreboard(self, sport: str, date: str | None = None) -> ParsedScoreboard:
        return (await self.fetch(sport, date)).parse()

    async def _pace(self) -> None:
        async with self._lock:
            wait = self._last_request + self.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_request = time.monotonic()
