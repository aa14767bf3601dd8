"""Kalshi trade API v2 REST client (asyncio, httpx) with a thin synchronous wrapper for the CLI.

- Every request is signed when a signer is configured; public market data works without one.
- Separate read / write token buckets (`ratelimit.py`).
- 429, 5xx and connection errors are retried with exponential backoff + jitter, honouring
  `Retry-After`; other 4xx are never retried.
- A request that may have reached the venue (timeout, dropped connection, 5xx) is retried only when
  repeating it is harmless. An order create in that state is resolved by looking the order up by its
  `client_order_id` — never by sending it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import httpx

from precog.alerts.api import AlertRaiser
from precog.domain.market import Candlestick, Event, Market, OrderBook, Series, Trade
from precog.domain.order import Action, Fill, Order, OrderRequest, OrderType, Side, TimeInForce
from precog.domain.portfolio import Balance, EventPosition, Position, Settlement
from precog.venues.kalshi import parsing as P
from precog.venues.kalshi.auth import KalshiSigner, signer_from_env
from precog.venues.kalshi.environments import KalshiEnvironment, resolve_environment
from precog.venues.kalshi.errors import (
    KalshiAPIError,
    KalshiConfigError,
    KalshiConflict,
    KalshiError,
    KalshiSchemaError,
    KalshiTransportError,
    OrderOutcomeUnknown,
)
from precog.venues.kalshi.ratelimit import USAGE_ALERT_KEY, RateLimiter, RateLimits, TokenBucket, tier_limits

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOCK_SKEW_HINT = (
    "check KALSHI_API_KEY_ID matches the private key, that the key belongs to this environment "
    "(demo and prod keys differ), and that this machine's clock is correct (signatures carry a "
    "millisecond timestamp; run `timedatectl` or sync NTP if it is off)"
)
MISSING_KEY_HINT = (
    "this endpoint needs an API key: set KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH "
    "(see docs/kalshi.md)"
)

# Transport failures where the request never left this machine: always safe to retry.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class _MaybeProcessed(Exception):
    """A non-idempotent request may or may not have been processed by the venue.

    `status` is the HTTP status when the venue answered (5xx: it finished handling the request, so a
    lookup that finds nothing is conclusive); None when the answer was lost in transit (the request
    may still be in flight, so absence now proves nothing).
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class PositionsPage:
    market_positions: tuple[Position, ...]
    event_positions: tuple[EventPosition, ...]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class CancelResult:
    order: Order | None
    reduced_by: Decimal
    order_id: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class BatchOrderResult:
    client_order_id: str
    order: Order | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base: float = 0.5  # seconds, multiplied by `backoff_multiplier` per attempt
    backoff_max: float = 30.0
    retry_after_max: float = 60.0  # never sleep longer than this on a venue's Retry-After
    lookup_attempts: int = 4  # order lookups after an unknown create outcome
    lookup_delay: float = 0.25
    backoff_multiplier: float = 2.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: uniform in [cap/2, cap]."""
        cap = min(self.backoff_max, self.backoff_base * (self.backoff_multiplier**attempt))
        return cap / 2 + random.uniform(0, cap / 2)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def _decode(content: bytes, *, method: str, path: str) -> Any:
    if not content:
        return {}
    try:
        return json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        snippet = content[:80].decode("utf-8", "replace")
        raise KalshiSchemaError("<body>", f"is not valid JSON ({method} {path}): {snippet!r}", kind="response") from None


def _params(values: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


def _fp(value: Decimal) -> str:
    return f"{value:.2f}"


def _price_str(value: Decimal) -> str:
    return f"{value:.4f}" if value == value.quantize(Decimal("0.0001")) else str(value)


def order_body(req: OrderRequest) -> dict[str, Any]:
    """The POST /portfolio/orders body (OpenAPI v3.13 CreateOrderRequest): dollars/fp strings plus the legacy
    integer twins where exact. Kalshi removed `type` (and market orders): an OrderType.MARKET request goes out
    as a limit at its price that never rests — immediate_or_cancel unless it names another time in force."""
    body: dict[str, Any] = {
        "ticker": req.ticker,
        "client_order_id": req.client_order_id,
        "side": req.side.value,
        "action": req.action.value,
        "count_fp": _fp(req.count),
    }
    if req.count == req.count.to_integral_value():
        body["count"] = int(req.count)
    key = "yes_price" if req.side is Side.YES else "no_price"
    body[f"{key}_dollars"] = _price_str(req.price)
    time_in_force = req.time_in_force
    if time_in_force is None and req.type is OrderType.MARKET:
        time_in_force = TimeInForce.IMMEDIATE_OR_CANCEL
    if time_in_force is not None:
        body["time_in_force"] = time_in_force.value
    if req.post_only:
        body["post_only"] = True
    if req.reduce_only:
        body["reduce_only"] = True
    if req.expiration_ts is not None:
        body["expiration_ts"] = int(req.expiration_ts)
    if req.buy_max_cost is not None:
        body["buy_max_cost"] = int((req.buy_max_cost * 100).to_integral_value())
    return body


class AsyncKalshiClient:
    """One Kalshi account (or anonymous market-data access) on one environment."""

    def __init__(
        self,
        environment: KalshiEnvironment | None = None,
        *,
        signer: KalshiSigner | None = None,
        timeout: float = 10.0,
        rate_limits: RateLimits | str = "basic",
        retry: RetryPolicy | None = None,
        alerts: AlertRaiser | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        usage_alert: float | None = 0.8,
    ) -> None:
        self.environment = environment or resolve_environment("demo")
        self.signer = signer
        self.retry = retry or RetryPolicy()
        self.limiter = RateLimiter(tier_limits(rate_limits) if isinstance(rate_limits, str) else rate_limits)
        self.alerts = alerts
        # a budget (reads, writes) used this much over the last minute raises rate_limit_usage, once per episode
        self.usage_alert = usage_alert
        self._usage_alerted: set[str] = set()
        # called with (True, "") when the API answered a request (any status but 429/5xx: a refusal is an
        # answer) and with (False, reason) when a request failed for good (transport error, timeout, 429 or
        # 5xx once the retries are spent); the trading loop feeds its api_failures / api_outage breakers here
        self.observers: list[Callable[[bool, str], None]] = []
        self._parse = P.KalshiParser(alerts)
        self._prefix = self.environment.path_prefix
        self._http = httpx.AsyncClient(
            base_url=self.environment.base_url,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": "precog-kalshi/0.1"},
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_env(
        cls,
        env: str | None = None,
        *,
        base_url: str | None = None,
        require_auth: bool = False,
        **kwargs: Any,
    ) -> AsyncKalshiClient:
        """Environment from `env`/`base_url`/KALSHI_BASE_URL, key from KALSHI_API_KEY_ID + KALSHI_PRIVATE_KEY_PATH."""
        environment = resolve_environment(env, base_url)
        signer = signer_from_env(environment.name)
        if signer is None and require_auth:
            raise KalshiConfigError(MISSING_KEY_HINT)
        return cls(environment, signer=signer, **kwargs)

    def __repr__(self) -> str:
        key = self.signer.key_id if self.signer else None
        return f"AsyncKalshiClient(base_url={self.environment.base_url!r}, key_id={key!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncKalshiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------ transport

    def _watch_usage(self, bucket: TokenBucket, kind: str) -> None:
        """Spec 8.2: an alert at 80% of a rate limit. One `rate_limit_usage` alert (medium) when a budget's use
        over the last minute reaches `usage_alert`; the episode ends once it is back under."""
        assert self.alerts is not None and self.usage_alert is not None
        usage = bucket.usage()
        if usage < self.usage_alert:
            self._usage_alerted.discard(kind)
            return
        if kind in self._usage_alerted:
            return
        self._usage_alerted.add(kind)
        try:
            self.alerts.raise_alert(
                "rate_limit_usage", "medium", "kalshi_api",
                f"Kalshi {kind} requests used {usage:.0%} of the client's budget over the last minute "
                f"({bucket.rate:g} a second: markets.platforms.kalshi.{kind}_requests_per_second; alert at "
                f"{self.usage_alert:.0%}: {USAGE_ALERT_KEY}); past the budget requests wait",
                {"kind": kind, "usage": round(usage, 4), "per_second": bucket.rate, "alert_at": self.usage_alert,
                 "base_url": self.environment.base_url},
                dedup_key=f"rate_limit_usage:{kind}", category="system")
        except Exception:  # noqa: BLE001 - an alert that cannot be raised never fails the request
            log.exception("could not raise the rate_limit_usage alert")

    def _tell(self, ok: bool, detail: str) -> None:
        for observe in self.observers:
            try:
                observe(ok, detail)
            except Exception:  # noqa: BLE001 - an observer's problem never fails the request
                log.exception("API outcome observer failed")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        auth: bool = False,
        write: bool = False,
        cost: float = 1.0,
        idempotent: bool = True,
    ) -> Any:
        """Send one API request (path relative to the base, e.g. "/markets") and return decoded JSON."""
        if auth and self.signer is None:
            raise KalshiConfigError(f"{method} {path}: {MISSING_KEY_HINT}")
        if not self.observers:
            return await self._request(method, path, params, body, auth, write, cost, idempotent)
        try:
            result = await self._request(method, path, params, body, auth, write, cost, idempotent)
        except (KalshiTransportError, _MaybeProcessed) as exc:
            self._tell(False, f"{method} {path}: {exc}")
            raise
        except KalshiAPIError as exc:
            failed = exc.status is not None and (exc.status == 429 or exc.status >= 500)
            self._tell(not failed, f"{method} {path}: {exc}" if failed else "")
            raise
        self._tell(True, "")
        return result

    async def _request(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any, auth: bool,
                       write: bool, cost: float, idempotent: bool) -> Any:
        query = _params(params or {})
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        sign_path = self._prefix + path
        bucket = self.limiter.bucket(write)
        attempt = 0
        while True:
            await bucket.acquire(cost)
            if self.alerts is not None and self.usage_alert is not None:
                self._watch_usage(bucket, "write" if write else "read")
            headers = {"Content-Type": "application/json"} if content is not None else {}
            if self.signer is not None:
                headers.update(self.signer.headers(method, sign_path))
            try:
                response = await self._http.request(method, path, params=query, content=content, headers=headers)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, _NOT_SENT)
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if sent and not idempotent:
                    raise _MaybeProcessed(reason) from exc
                if attempt >= self.retry.max_retries:
                    raise KalshiTransportError(
                        f"Kalshi {method} {path}: {reason} (gave up after {attempt + 1} attempts to "
                        f"{self.environment.base_url})"
                    ) from None
                delay = self.retry.backoff(attempt)
                log.info("kalshi %s %s: %s; retry %d in %.2fs", method, path, reason, attempt + 1, delay)
                await asyncio.sleep(delay)
                attempt += 1
                continue

            status = response.status_code
            if status < 400:
                return _decode(response.content, method=method, path=path)
            try:
                err_body: Any = json.loads(response.content, parse_float=Decimal)
            except (ValueError, UnicodeDecodeError):
                err_body = response.text
            retryable = status == 429 or status >= 500
            if status >= 500 and not idempotent:
                raise _MaybeProcessed(f"HTTP {status}", status)
            if not retryable or attempt >= self.retry.max_retries:
                hint = CLOCK_SKEW_HINT if status == 401 else ""
                error = KalshiAPIError.from_response(status, err_body, method=method, path=path, hint=hint)
                if retryable:
                    error.args = (f"{error.args[0]} (gave up after {attempt + 1} attempts)",)
                if status == 401:
                    self._alert_auth_rejected(error)
                raise error
            delay = self.retry.backoff(attempt)
            if status == 429:
                after = _retry_after(response.headers.get("Retry-After"))
                if after is not None:
                    delay = min(after, self.retry.retry_after_max) + random.uniform(0, 0.05)
                bucket.penalize(delay)
            log.info("kalshi %s %s: HTTP %d; retry %d in %.2fs", method, path, status, attempt + 1, delay)
            await asyncio.sleep(delay)
            attempt += 1

    def _alert_auth_rejected(self, error: KalshiAPIError) -> None:
        """A refused signature stops all trading: say so once, with the likely causes (clock skew first)."""
        if self.alerts is None:
            return
        try:
            self.alerts.raise_alert(
                "venue_auth_rejected", "critical", "kalshi_client", str(error),
                {"status": error.status, "code": error.code, "method": error.method, "path": error.path},
                dedup_key=f"kalshi:401:{error.code}", category="system")
        except Exception:  # an alert sink failure must not hide the error itself
            log.exception("could not raise venue_auth_rejected alert")

    async def _get(self, path: str, *, auth: bool = False, **params: Any) -> Any:
        return await self.request("GET", path, params=params, auth=auth)

    async def _paginate(
        self, fetch: Callable[[str | None], Awaitable[Page[T]]], max_items: int | None = None
    ) -> AsyncIterator[T]:
        cursor: str | None = None
        seen: set[str] = set()
        produced = 0
        while True:
            page = await fetch(cursor)
            for item in page.items:
                yield item
                produced += 1
                if max_items is not None and produced >= max_items:
                    return
            if not page.cursor:
                return
            if page.cursor in seen:  # a venue bug would otherwise loop forever
                raise KalshiSchemaError("cursor", f"repeated {page.cursor!r}; pagination would not end", kind="page")
            seen.add(page.cursor)
            cursor = page.cursor

    def _page(self, body: Any, key: str, fn: Callable[[P.Payload], T], kind: str) -> Page[T]:
        rows = self._parse(P.items, body, key, kind)
        return Page(tuple(self._parse(fn, row) for row in rows), P.cursor_of(body))

    # ------------------------------------------------------------------------------------ market data

    async def get_series_list(
        self, *, category: str | None = None, tags: str | None = None, include_product_metadata: bool | None = None
    ) -> list[Series]:
        body = await self._get("/series", category=category, tags=tags, include_product_metadata=include_product_metadata)
        return [self._parse(P.parse_series, row) for row in self._parse(P.items, body, "series", "series")]

    async def get_series(self, series_ticker: str) -> Series:
        body = await self._get(f"/series/{series_ticker}")
        return self._parse(P.parse_series, self._parse(P.unwrap, body, "series", "series"))

    async def get_events(
        self,
        *,
        series_ticker: str | None = None,
        status: str | None = None,
        with_nested_markets: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        min_close_ts: int | None = None,
    ) -> Page[Event]:
        body = await self._get(
            "/events",
            series_ticker=series_ticker,
            status=status,
            with_nested_markets=with_nested_markets,
            limit=limit,
            cursor=cursor,
            min_close_ts=min_close_ts,
        )
        return self._page(body, "events", P.parse_event, "events")

    def iter_events(self, *, max_items: int | None = None, page_size: int = 200, **filters: Any) -> AsyncIterator[Event]:
        return self._paginate(lambda c: self.get_events(limit=page_size, cursor=c, **filters), max_items)

    async def get_event(self, event_ticker: str, *, with_nested_markets: bool = False) -> Event:
        body = await self._get(f"/events/{event_ticker}", with_nested_markets=with_nested_markets)
        event = self._parse(P.unwrap, body, "event", "event")
        markets = body.get("markets") if isinstance(body, Mapping) else None
        nested = event.get("markets")
        rows = nested if isinstance(nested, list) and nested else (markets if isinstance(markets, list) else [])
        return self._parse(P.parse_event, event, rows)

    async def get_markets(
        self,
        *,
        series_ticker: str | None = None,
        event_ticker: str | None = None,
        status: str | None = None,
        tickers: Sequence[str] | None = None,
        min_close_ts: int | None = None,
        max_close_ts: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Market]:
        body = await self._get(
            "/markets",
            series_ticker=series_ticker,
            event_ticker=event_ticker,
            status=status,
            tickers=list(tickers) if tickers else None,
            min_close_ts=min_close_ts,
            max_close_ts=max_close_ts,
            limit=limit,
            cursor=cursor,
        )
        return self._page(body, "markets", P.parse_market, "markets")

    def iter_markets(
        self, *, max_items: int | None = None, page_size: int = 1000, **filters: Any
    ) -> AsyncIterator[Market]:
        if max_items is not None:
            page_size = max(1, min(page_size, max_items))
        return self._paginate(lambda c: self.get_markets(limit=page_size, cursor=c, **filters), max_items)

    async def get_market(self, ticker: str) -> Market:
        body = await self._get(f"/markets/{ticker}")
        return self._parse(P.parse_market, self._parse(P.unwrap, body, "market", "market"))

    async def get_orderbook(self, ticker: str, *, depth: int | None = None) -> OrderBook:
        body = await self._get(f"/markets/{ticker}/orderbook", depth=depth)
        book = self._parse(P.parse_orderbook, self._parse(P._mapping, body, "<body>", "orderbook"), ticker)
        if depth:
            book = OrderBook(book.ticker, book.yes_bids[:depth], book.no_bids[:depth], book.ts)
        return book

    async def get_trades(
        self,
        *,
        ticker: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Trade]:
        body = await self._get("/markets/trades", ticker=ticker, min_ts=min_ts, max_ts=max_ts, limit=limit, cursor=cursor)
        return self._page(body, "trades", P.parse_trade, "trades")

    def iter_trades(self, *, max_items: int | None = None, page_size: int = 1000, **filters: Any) -> AsyncIterator[Trade]:
        return self._paginate(lambda c: self.get_trades(limit=page_size, cursor=c, **filters), max_items)

    async def get_candlesticks(
        self, series_ticker: str, ticker: str, *, start_ts: int, end_ts: int, period_interval: int = 60
    ) -> list[Candlestick]:
        if period_interval not in (1, 60, 1440):
            raise KalshiConfigError(f"period_interval must be 1, 60 or 1440 minutes, got {period_interval}")
        body = await self._get(
            f"/series/{series_ticker}/markets/{ticker}/candlesticks",
            start_ts=start_ts,
            end_ts=end_ts,
            period_interval=period_interval,
        )
        rows = self._parse(P.items, body, "candlesticks", "candlesticks")
        return [self._parse(P.parse_candlestick, row, ticker) for row in rows]

    # ------------------------------------------------------------------------------------ portfolio

    async def get_balance(self) -> Balance:
        body = await self._get("/portfolio/balance", auth=True)
        return self._parse(P.parse_balance, self._parse(P._mapping, body, "<body>", "balance"))

    async def get_positions(
        self,
        *,
        ticker: str | None = None,
        event_ticker: str | None = None,
        count_filter: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> PositionsPage:
        body = await self._get(
            "/portfolio/positions",
            auth=True,
            ticker=ticker,
            event_ticker=event_ticker,
            count_filter=count_filter,
            limit=limit,
            cursor=cursor,
        )
        markets = self._parse(P.items, body, "market_positions", "positions")
        events = body.get("event_positions") if isinstance(body, Mapping) else None
        return PositionsPage(
            tuple(self._parse(P.parse_position, row) for row in markets),
            tuple(self._parse(P.parse_event_position, row) for row in (events or [])),
            P.cursor_of(body),
        )

    def iter_positions(self, *, max_items: int | None = None, page_size: int = 1000, **filters: Any) -> AsyncIterator[Position]:
        async def fetch(c: str | None) -> Page[Position]:
            page = await self.get_positions(limit=page_size, cursor=c, **filters)
            return Page(page.market_positions, page.cursor)

        return self._paginate(fetch, max_items)

    async def get_fills(
        self,
        *,
        ticker: str | None = None,
        order_id: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Fill]:
        body = await self._get(
            "/portfolio/fills", auth=True, ticker=ticker, order_id=order_id, min_ts=min_ts, max_ts=max_ts, limit=limit, cursor=cursor
        )
        return self._page(body, "fills", P.parse_fill, "fills")

    def iter_fills(self, *, max_items: int | None = None, page_size: int = 1000, **filters: Any) -> AsyncIterator[Fill]:
        return self._paginate(lambda c: self.get_fills(limit=page_size, cursor=c, **filters), max_items)

    async def get_settlements(
        self,
        *,
        ticker: str | None = None,
        event_ticker: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Settlement]:
        body = await self._get(
            "/portfolio/settlements",
            auth=True,
            ticker=ticker,
            event_ticker=event_ticker,
            min_ts=min_ts,
            max_ts=max_ts,
            limit=limit,
            cursor=cursor,
        )
        return self._page(body, "settlements", P.parse_settlement, "settlements")

    def iter_settlements(
        self, *, max_items: int | None = None, page_size: int = 1000, **filters: Any
    ) -> AsyncIterator[Settlement]:
        return self._paginate(lambda c: self.get_settlements(limit=page_size, cursor=c, **filters), max_items)

    # ------------------------------------------------------------------------------------ orders

    async def get_orders(
        self,
        *,
        ticker: str | None = None,
        event_ticker: str | None = None,
        status: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Order]:
        body = await self._get(
            "/portfolio/orders",
            auth=True,
            ticker=ticker,
            event_ticker=event_ticker,
            status=status,
            min_ts=min_ts,
            max_ts=max_ts,
            limit=limit,
            cursor=cursor,
        )
        return self._page(body, "orders", P.parse_order, "orders")

    def iter_orders(self, *, max_items: int | None = None, page_size: int = 1000, **filters: Any) -> AsyncIterator[Order]:
        return self._paginate(lambda c: self.get_orders(limit=page_size, cursor=c, **filters), max_items)

    async def get_order(self, order_id: str) -> Order:
        body = await self._get(f"/portfolio/orders/{order_id}", auth=True)
        return self._parse(P.parse_order, self._parse(P.unwrap, body, "order", "order"))

    async def find_order(self, ticker: str, client_order_id: str, *, min_ts: int | None = None) -> Order | None:
        """The order with this client_order_id on `ticker`, or None (lists orders; there is no id filter)."""
        async for order in self.iter_orders(ticker=ticker, min_ts=min_ts):
            if order.client_order_id == client_order_id:
                return order
        return None

    async def create_order(self, req: OrderRequest) -> Order:
        """Place an order. If the venue's answer is lost, the order is found by its client_order_id."""
        started = int(time.time())
        attempt = 0
        while True:
            try:
                body = await self.request(
                    "POST", "/portfolio/orders", body=order_body(req), auth=True, write=True, idempotent=False
                )
            except _MaybeProcessed as exc:
                log.warning("order %s: outcome unknown (%s); looking it up", req.client_order_id, exc)
                if exc.status is None or attempt >= self.retry.max_retries:
                    return await self._resolve_unknown(req, started, str(exc))
                # The venue answered 5xx: it is done with the request, so one lookup is conclusive.
                try:
                    found = await self.find_order(req.ticker, req.client_order_id, min_ts=started - 60)
                except KalshiError as lookup_exc:  # the lookup failed: the create's outcome is still unknown
                    return await self._resolve_unknown(req, started, f"{exc}; lookup failed: {lookup_exc}")
                if found is not None:
                    return found
                delay = self.retry.backoff(attempt)
                log.info("order %s: not placed (%s); retry %d in %.2fs", req.client_order_id, exc, attempt + 1, delay)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            except KalshiConflict as exc:
                # The venue already has this client_order_id (an earlier attempt landed): that order exists, so
                # failing to find it leaves the outcome unknown, never "refused, nothing created".
                try:
                    found = await self.find_order(req.ticker, req.client_order_id)
                except KalshiError:
                    found = None
                if found is not None:
                    return found
                return await self._resolve_unknown(req, started, f"venue reports the order exists ({exc})")
            return self._parse(P.parse_order, self._parse(P.unwrap, body, "order", "order"))

    async def _resolve_unknown(self, req: OrderRequest, started: int, reason: str) -> Order:
        delay = self.retry.lookup_delay
        last_error = ""
        for attempt in range(self.retry.lookup_attempts):
            try:
                found = await self.find_order(req.ticker, req.client_order_id, min_ts=started - 60)
            except KalshiError as exc:  # any failed lookup (throttled, auth, schema ...) proves nothing
                found, last_error = None, str(exc)
            else:
                if found is not None:
                    log.info("order %s: found by lookup as %s", req.client_order_id, found.order_id)
                    return found
            if attempt + 1 < self.retry.lookup_attempts:
                await asyncio.sleep(delay)
                delay *= 2
        detail = f"{reason}; not found by {self.retry.lookup_attempts} lookups"
        if last_error:
            detail += f" (last lookup error: {last_error})"
        if self.alerts is not None:
            self.alerts.raise_alert(
                "order_outcome_unknown",
                "critical",
                "kalshi_client",
                f"order {req.client_order_id} on {req.ticker}: outcome unknown",
                {"client_order_id": req.client_order_id, "ticker": req.ticker, "reason": detail},
                dedup_key=f"order_outcome_unknown:{req.client_order_id}",
                category="trading",
            )
        raise OrderOutcomeUnknown(req.client_order_id, detail)

    async def cancel_order(self, order_id: str) -> CancelResult:
        body = await self.request("DELETE", f"/portfolio/orders/{order_id}", auth=True, write=True, idempotent=True)
        order = self._parse(P.parse_order, self._parse(P.unwrap, body, "order", "cancel"))
        reduced = P.count(body, "reduced_by", "cancel", required=False)
        return CancelResult(order, reduced if reduced is not None else order.remaining_count, order.order_id)

    async def decrease_order(
        self, order_id: str, *, reduce_by: Decimal | None = None, reduce_to: Decimal | None = None
    ) -> Order:
        if (reduce_by is None) == (reduce_to is None):
            raise KalshiConfigError("decrease_order: give exactly one of reduce_by or reduce_to")
        body: dict[str, Any] = {}
        amount = reduce_by if reduce_by is not None else reduce_to
        assert amount is not None
        name = "reduce_by" if reduce_by is not None else "reduce_to"
        body[f"{name}_fp"] = _fp(amount)
        if amount == amount.to_integral_value():
            body[name] = int(amount)
        # reduce_to is absolute (safe to repeat); reduce_by is not, so it is never repeated blindly.
        try:
            data = await self.request(
                "POST", f"/portfolio/orders/{order_id}/decrease", body=body, auth=True, write=True,
                idempotent=reduce_to is not None,
            )
        except _MaybeProcessed as exc:
            raise KalshiTransportError(
                f"decrease of order {order_id}: outcome unknown ({exc}); not repeated — check the order"
            ) from None
        return self._parse(P.parse_order, self._parse(P.unwrap, data, "order", "decrease"))

    async def amend_order(
        self,
        order_id: str,
        *,
        ticker: str,
        side: Side | str,
        action: Action | str,
        price: Decimal,
        count: Decimal,
        client_order_id: str | None = None,
        updated_client_order_id: str | None = None,
    ) -> tuple[Order, Order]:
        """Change price and/or max fillable count (remaining + filled). Returns (old, new)."""
        side = Side(side)
        body: dict[str, Any] = {
            "ticker": ticker,
            "side": side.value,
            "action": Action(action).value,
            "count_fp": _fp(count),
            f"{side.value}_price_dollars": _price_str(price),
        }
        if count == count.to_integral_value():
            body["count"] = int(count)
        if client_order_id:
            body["client_order_id"] = client_order_id
        if updated_client_order_id:
            body["updated_client_order_id"] = updated_client_order_id
        try:
            data = await self.request(
                "POST", f"/portfolio/orders/{order_id}/amend", body=body, auth=True, write=True, idempotent=True
            )
        except _MaybeProcessed as exc:  # pragma: no cover - amend is idempotent, kept for safety
            raise KalshiTransportError(f"amend of order {order_id}: outcome unknown ({exc})") from None
        old = self._parse(P.parse_order, self._parse(P.unwrap, data, "old_order", "amend"))
        new = self._parse(P.parse_order, self._parse(P.unwrap, data, "order", "amend"))
        return old, new

    async def batch_create_orders(self, requests: Sequence[OrderRequest]) -> list[BatchOrderResult]:
        """Up to 20 orders in one call. Orders whose outcome is lost are resolved one by one by lookup."""
        if not requests:
            return []
        if len(requests) > 20:
            raise KalshiConfigError(f"batch_create_orders: at most 20 orders per batch, got {len(requests)}")
        started = int(time.time())
        try:
            data = await self.request(
                "POST",
                "/portfolio/orders/batched",
                body={"orders": [order_body(r) for r in requests]},
                auth=True,
                write=True,
                cost=float(len(requests)),
                idempotent=False,
            )
        except _MaybeProcessed as exc:
            results = []
            for req in requests:
                try:
                    found = await self._resolve_unknown(req, started, str(exc))
                    results.append(BatchOrderResult(req.client_order_id, found))
                except OrderOutcomeUnknown as unknown:
                    results.append(BatchOrderResult(req.client_order_id, None, str(unknown)))
            return results
        rows = self._parse(P.items, data, "orders", "batch_create")
        results = []
        for req, row in zip(requests, rows, strict=False):
            order_row, error = row.get("order"), row.get("error")
            order = self._parse(P.parse_order, order_row) if isinstance(order_row, Mapping) else None
            message = ""
            if isinstance(error, Mapping):
                message = str(error.get("message") or error.get("code") or "rejected")
            cid = row.get("client_order_id") or (order.client_order_id if order else req.client_order_id)
            results.append(BatchOrderResult(str(cid), order, message))
        return results

    async def batch_cancel_orders(self, order_ids: Sequence[str]) -> list[CancelResult]:
        if not order_ids:
            return []
        if len(order_ids) > 20:
            raise KalshiConfigError(f"batch_cancel_orders: at most 20 orders per batch, got {len(order_ids)}")
        data = await self.request(
            "DELETE",
            "/portfolio/orders/batched",
            body={"orders": [{"order_id": oid} for oid in order_ids]},  # `ids` is the deprecated form
            auth=True,
            write=True,
            cost=0.2 * len(order_ids),
            idempotent=True,
        )
        rows = self._parse(P.items, data, "orders", "batch_cancel")
        results = []
        for row in rows:
            order_row, error = row.get("order"), row.get("error")
            order = self._parse(P.parse_order, order_row) if isinstance(order_row, Mapping) else None
            reduced = P.count(row, "reduced_by", "batch_cancel", required=False)
            message = str(error.get("message") or error.get("code") or "rejected") if isinstance(error, Mapping) else ""
            results.append(
                CancelResult(order, reduced if reduced is not None else Decimal(0), str(row.get("order_id") or ""), message)
            )
        return results

    async def get_exchange_status(self) -> dict[str, Any]:
        body = await self._get("/exchange/status")
        return dict(self._parse(P._mapping, body, "<body>", "exchange_status"))


class KalshiClient:
    """Synchronous facade over AsyncKalshiClient for scripts and the CLI (own private event loop).

    Not for use inside a running event loop — use AsyncKalshiClient there.
    """

    def __init__(self, client: AsyncKalshiClient) -> None:
        self._async = client
        self._loop = asyncio.new_event_loop()

    @classmethod
    def from_env(cls, env: str | None = None, *, base_url: str | None = None, **kwargs: Any) -> KalshiClient:
        return cls(AsyncKalshiClient.from_env(env, base_url=base_url, **kwargs))

    @property
    def aio(self) -> AsyncKalshiClient:
        return self._async

    def _run(self, coro: Awaitable[T]) -> T:
        return self._loop.run_until_complete(coro)

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        while True:
            try:
                yield self._run(agen.__anext__())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._async.aclose())
            self._loop.close()

    def __enter__(self) -> KalshiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        """`client.get_market(...)` runs the async method to completion; `iter_*` become plain iterators."""
        attr = getattr(self._async, name)
        if not callable(attr):
            return attr
        if name.startswith("iter_"):
            return lambda *a, **kw: self._iterate(attr(*a, **kw))
        if asyncio.iscoroutinefunction(attr):
            return lambda *a, **kw: self._run(attr(*a, **kw))
        return attr
