"""HTTP/WebSocket face of the local exchange: Kalshi's trade API v2 paths and JSON, plus `/sim/` admin.

`create_app(exchange)` returns a Starlette app. REST lives under `/trade-api/v2`, the WebSocket at
`/trade-api/ws/v2`, admin endpoints under `/sim/` (loopback clients only, or an admin token).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from precog.domain.money import ZERO, floor_cent
from precog.venues.exchange.auth import AUTH_HEADERS, KeyRegistry
from precog.venues.exchange.clock import iso_ms, parse_time_ms
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import ExchangeError, Forbidden, InvalidRequest, NotFound, Unauthorized
from precog.venues.exchange.faults import FaultInjector
from precog.venues.exchange.model import (
    CANCELED,
    EXECUTED,
    NO,
    RESTING,
    STATUS_FILTERS,
    YES,
    Account,
    fill_view,
    trade_view,
)
from precog.venues.exchange.requests import parse_amend, parse_create_order, parse_decrease
from precog.venues.exchange.serialize import (
    balance_json,
    candlesticks_json,
    decode_cursor,
    encode_cursor,
    event_json,
    event_positions_json,
    fill_json,
    mark_price,
    market_json,
    order_json,
    orderbook_json,
    position_json,
    series_json,
    settlement_json,
    trade_json,
)
from precog.venues.exchange.ws import WebSocketHub

log = logging.getLogger(__name__)

API_PREFIX = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"
BATCH_LIMIT = 20


class Stepper(Protocol):
    """Anything the server should drive on its clock (a scenario)."""

    def step(self, now_ms: int) -> None: ...


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status_code=status, headers=headers,
                    media_type="application/json")


def _error(exc: ExchangeError) -> Response:
    return _json(exc.body(), exc.status)


Handler = Callable[[Request], Awaitable[Response]]


def _guard(fn: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except ExchangeError as exc:
            return _error(exc)

    wrapped.__name__ = fn.__name__
    return wrapped


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON") from None


def _q_int(request: Request, name: str, default: int | None = None, *, lo: int | None = None,
           hi: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name} must be an integer, got {raw!r}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidRequest(f"query parameter {name} must be within [{lo}, {hi}], got {value}")
    return value


def _q_bool(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "").lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise InvalidRequest(f"query parameter {name} must be true or false, got {raw!r}")


def _q_list(request: Request, name: str) -> list[str] | None:
    values = request.query_params.getlist(name)
    out = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
    return out or None


class ExchangeApp:
    """Holds the exchange, keys, faults and WebSocket hub; builds the Starlette app."""

    def __init__(self, exchange: Exchange, keys: KeyRegistry, faults: FaultInjector, *, max_skew_s: float,
                 admin_token: str | None, tick_interval: float, scenario: Stepper | None,
                 auth_clock: Callable[[], int] | None, legacy_status: bool = False,
                 allow_unsigned_ws: bool = False) -> None:
        self.exchange = exchange
        self.keys = keys
        self.faults = faults
        self.hub = WebSocketHub(exchange)
        self.max_skew_ms = int(max_skew_s * 1000)
        self.admin_token = admin_token
        self.tick_interval = tick_interval
        self.scenario = scenario
        self.auth_clock = auth_clock or exchange.clock.now_ms
        self.legacy_status = legacy_status
        self.allow_unsigned_ws = allow_unsigned_ws

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: Request) -> str:
        return self.keys.verify(request.headers, request.method, request.url.path, self.auth_clock(),
                                self.max_skew_ms)

    def _optional_auth(self, request: Request) -> None:
        """Public endpoints need no key, but a signed request must be signed correctly."""
        if any(request.headers.get(h) for h in AUTH_HEADERS):
            self._authenticate(request)

    def _account(self, request: Request) -> Account:
        user_id = self._authenticate(request)
        acct = self.exchange.accounts.get(user_id)
        if acct is None:
            raise Unauthorized("the API key's account no longer exists")
        return acct

    # ------------------------------------------------------------------ market data

    async def exchange_status(self, request: Request) -> Response:
        return _json({"exchange_active": True, "trading_active": self.exchange.trading_active,
                      "exchange_estimated_resume_time": None})

    async def series_list(self, request: Request) -> Response:
        self._optional_auth(request)
        category = request.query_params.get("category")
        tags = set(_q_list(request, "tags") or [])
        include_volume = _q_bool(request, "include_volume")
        ex = self.exchange
        with ex.lock:
            out = [series_json(s, self._series_volume(s.ticker) if include_volume else None)
                   for s in ex.series.values()
                   if (not category or s.category == category) and (not tags or tags & set(s.tags))]
        return _json({"series": out})

    def _series_volume(self, series_ticker: str) -> int:
        return sum(m.volume for m in self.exchange.markets.values() if m.series_ticker == series_ticker)

    async def series_one(self, request: Request) -> Response:
        self._optional_auth(request)
        ticker = request.path_params["series_ticker"]
        ex = self.exchange
        with ex.lock:
            s = ex.series.get(ticker)
            if s is None:
                raise NotFound(f"series {ticker} not found", code="series_not_found")
            return _json({"series": series_json(s, self._series_volume(ticker)
                                                if _q_bool(request, "include_volume") else None)})

    def _event_status(self, event_ticker: str) -> set[str]:
        ex = self.exchange
        return {ex.markets[t].status for t in ex.events[event_ticker].markets}

    async def events_list(self, request: Request) -> Response:
        self._optional_auth(request)
        limit = _q_int(request, "limit", 200, lo=1, hi=200)
        assert limit is not None
        start = decode_cursor(request.query_params.get("cursor"), "events") or 0
        nested = _q_bool(request, "with_nested_markets")
        series_ticker = request.query_params.get("series_ticker")
        status = request.query_params.get("status")
        allowed = _status_filter(status)
        min_close = _q_int(request, "min_close_ts")
        ex = self.exchange
        now = ex.now_ms()
        with ex.lock:
            events = list(ex.events.values())
            picked = []
            for e in events:
                if series_ticker and e.series_ticker != series_ticker:
                    continue
                markets = [ex.markets[t] for t in e.markets]
                if allowed is not None and not any(m.status in allowed for m in markets):
                    continue
                if min_close is not None and not any(m.close_ms // 1000 > min_close for m in markets):
                    continue
                picked.append((e, markets))
            page = picked[start:start + limit]
            legacy = self.legacy_status
            out = [event_json(e, [market_json(m, now, legacy_status=legacy) for m in ms] if nested else None)
                   for e, ms in page]
        cursor = encode_cursor("events", start + limit) if start + limit < len(picked) else ""
        return _json({"events": out, "cursor": cursor, "milestones": []})

    async def event_one(self, request: Request) -> Response:
        self._optional_auth(request)
        ticker = request.path_params["event_ticker"]
        nested = _q_bool(request, "with_nested_markets")
        ex = self.exchange
        now = ex.now_ms()
        with ex.lock:
            e = ex.events.get(ticker)
            if e is None:
                raise NotFound(f"event {ticker} not found", code="event_not_found")
            markets = [market_json(ex.markets[t], now, legacy_status=self.legacy_status) for t in e.markets]
            return _json({"event": event_json(e, markets if nested else None), "markets": markets})

    async def markets_list(self, request: Request) -> Response:
        self._optional_auth(request)
        limit = _q_int(request, "limit", 100, lo=0, hi=1000) or 100
        start = decode_cursor(request.query_params.get("cursor"), "markets") or 0
        event_ticker = request.query_params.get("event_ticker")
        series_ticker = request.query_params.get("series_ticker")
        allowed = _status_filter(request.query_params.get("status"))
        tickers = _q_list(request, "tickers")
        wanted = set(tickers) if tickers else None
        min_close = _q_int(request, "min_close_ts")
        max_close = _q_int(request, "max_close_ts")
        ex = self.exchange
        now = ex.now_ms()
        with ex.lock:
            picked = [m for m in ex.markets.values()
                      if (not event_ticker or m.event_ticker == event_ticker)
                      and (not series_ticker or m.series_ticker == series_ticker)
                      and (allowed is None or m.status in allowed)
                      and (wanted is None or m.ticker in wanted)
                      and (min_close is None or m.close_ms // 1000 > min_close)
                      and (max_close is None or m.close_ms // 1000 < max_close)]
            out = [market_json(m, now, legacy_status=self.legacy_status) for m in picked[start:start + limit]]
        cursor = encode_cursor("markets", start + limit) if start + limit < len(picked) else ""
        return _json({"markets": out, "cursor": cursor})

    async def market_one(self, request: Request) -> Response:
        self._optional_auth(request)
        ex = self.exchange
        with ex.lock:
            m = ex.market(request.path_params["ticker"])
            return _json({"market": market_json(m, ex.now_ms(), legacy_status=self.legacy_status)})

    async def orderbook(self, request: Request) -> Response:
        self._optional_auth(request)
        depth = _q_int(request, "depth", 0, hi=100) or 0
        yes, no = self.exchange.orderbook(request.path_params["ticker"], depth)
        return _json(orderbook_json(yes, no))

    async def trades(self, request: Request) -> Response:
        self._optional_auth(request)
        limit = _q_int(request, "limit", 100, lo=0, hi=1000) or 100
        before = decode_cursor(request.query_params.get("cursor"), "trades")
        ticker = request.query_params.get("ticker")
        min_ts = _q_int(request, "min_ts")
        max_ts = _q_int(request, "max_ts")
        ex = self.exchange
        with ex.lock:
            if ticker:
                source = ex.market(ticker).trades
            else:
                source = ex.trades
            out: list[dict[str, Any]] = []
            last_seq = None
            more = False
            for rec in reversed(source):
                tr = trade_view(rec)
                if before is not None and tr.seq >= before:
                    continue
                ts = tr.created_ms // 1000
                if (min_ts is not None and ts < min_ts) or (max_ts is not None and ts > max_ts):
                    continue
                if len(out) == limit:
                    more = True
                    break
                out.append(trade_json(tr))
                last_seq = tr.seq
        cursor = encode_cursor("trades", last_seq) if more and last_seq is not None else ""
        return _json({"trades": out, "cursor": cursor})

    async def candlesticks(self, request: Request) -> Response:
        self._optional_auth(request)
        series_ticker = request.path_params["series_ticker"]
        ticker = request.path_params["ticker"]
        start = _q_int(request, "start_ts")
        end = _q_int(request, "end_ts")
        period = _q_int(request, "period_interval")
        if start is None or end is None or period is None:
            raise InvalidRequest("start_ts, end_ts and period_interval are required")
        if period not in (1, 60, 1440):
            raise InvalidRequest(f"period_interval must be 1, 60 or 1440, got {period}")
        if end < start:
            raise InvalidRequest("end_ts must not be before start_ts")
        ex = self.exchange
        with ex.lock:
            m = ex.market(ticker)
            if m.series_ticker != series_ticker:
                raise NotFound(f"market {ticker} is not in series {series_ticker}", code="market_not_found")
            return _json({"ticker": ticker, "candlesticks": candlesticks_json(m, start, end, period)})

    # ------------------------------------------------------------------ portfolio

    async def balance(self, request: Request) -> Response:
        acct = self._account(request)
        ex = self.exchange
        with ex.lock:
            value = ZERO
            for ticker, pos in acct.positions.items():
                if pos.held[YES] or pos.held[NO]:
                    mark = mark_price(ex.markets[ticker])
                    value += floor_cent(mark * pos.held[YES] + (1 - mark) * pos.held[NO])
            return _json(balance_json(acct, value))

    async def positions(self, request: Request) -> Response:
        acct = self._account(request)
        limit = _q_int(request, "limit", 100, lo=1, hi=1000)
        assert limit is not None
        start = decode_cursor(request.query_params.get("cursor"), "positions") or 0
        ticker = request.query_params.get("ticker")
        event_ticker = request.query_params.get("event_ticker")
        count_filter = set(_q_list(request, "count_filter") or [])
        unknown = count_filter - {"position", "total_traded", "resting_order_count"}
        if unknown:
            raise InvalidRequest(f"count_filter accepts position, total_traded; got {', '.join(sorted(unknown))}")
        settlement_status = request.query_params.get("settlement_status", "unsettled")
        if settlement_status not in ("unsettled", "settled", "all"):
            raise InvalidRequest(f"settlement_status must be unsettled, settled or all, got {settlement_status!r}")
        ex = self.exchange
        with ex.lock:
            picked = []
            for p in acct.positions.values():
                if ticker and p.ticker != ticker or event_ticker and p.event_ticker != event_ticker:
                    continue
                if settlement_status == "unsettled" and p.settled or settlement_status == "settled" and not p.settled:
                    continue
                if count_filter and not (("position" in count_filter and p.net)
                                         or ("total_traded" in count_filter and p.total_traded)
                                         or ("resting_order_count" in count_filter and p.resting_orders)):
                    continue
                picked.append(p)
            page = picked[start:start + limit]
            out = {"market_positions": [position_json(p) for p in page],
                   "event_positions": event_positions_json(picked),
                   "cursor": encode_cursor("positions", start + limit) if start + limit < len(picked) else ""}
        return _json(out)

    async def fills(self, request: Request) -> Response:
        acct = self._account(request)
        ticker = request.query_params.get("ticker")
        order_id = request.query_params.get("order_id")
        with self.exchange.lock:
            views = (fill_view(rec, acct.user_id) for rec in reversed(acct.fills))
            out, cursor = _newest_first_page(
                request, "fills", views,
                lambda f: not (ticker and f.ticker != ticker or order_id and f.order_id != order_id),
                lambda f: f.created_ms, fill_json)
        return _json({"fills": out, "cursor": cursor})

    async def settlements(self, request: Request) -> Response:
        acct = self._account(request)
        ticker = request.query_params.get("ticker")
        event_ticker = request.query_params.get("event_ticker")
        with self.exchange.lock:
            out, cursor = _newest_first_page(
                request, "settlements", reversed(acct.settlements),
                lambda s: not (ticker and s.ticker != ticker or event_ticker and s.event_ticker != event_ticker),
                lambda s: s.settled_ms, settlement_json)
        return _json({"settlements": out, "cursor": cursor})

    # ------------------------------------------------------------------ orders

    def _order_out(self, o: Any) -> dict[str, Any]:
        return order_json(o, self.exchange.queue_position(o) if o.status == RESTING else 0)

    async def create_order(self, request: Request) -> Response:
        acct = self._account(request)
        kwargs = parse_create_order(await _body(request))
        o = self.exchange.place_order(acct.user_id, **kwargs)
        with self.exchange.lock:
            return _json({"order": self._order_out(o)}, 201)

    async def list_orders(self, request: Request) -> Response:
        acct = self._account(request)
        limit = _q_int(request, "limit", 100, lo=1, hi=1000)
        assert limit is not None
        before = decode_cursor(request.query_params.get("cursor"), "orders")
        ticker = request.query_params.get("ticker")
        events = set(_q_list(request, "event_ticker") or [])
        status = request.query_params.get("status")
        if status is not None and status not in (RESTING, CANCELED, EXECUTED):
            raise InvalidRequest(f"status must be resting, canceled or executed, got {status!r}")
        min_ts = _q_int(request, "min_ts")
        max_ts = _q_int(request, "max_ts")
        ex = self.exchange
        with ex.lock:
            orders = list(acct.orders.values())
            end = len(orders) if before is None else min(before, len(orders))
            out: list[dict[str, Any]] = []
            next_cursor = ""
            for i in range(end - 1, -1, -1):
                o = orders[i]
                if ticker and o.ticker != ticker or status and o.status != status:
                    continue
                if events and ex.markets[o.ticker].event_ticker not in events:
                    continue
                ts = o.created_ms // 1000
                if (min_ts is not None and ts < min_ts) or (max_ts is not None and ts > max_ts):
                    continue
                if len(out) == limit:
                    next_cursor = encode_cursor("orders", i + 1)
                    break
                out.append(self._order_out(o))
        return _json({"orders": out, "cursor": next_cursor})

    async def get_order(self, request: Request) -> Response:
        acct = self._account(request)
        o = self.exchange.get_order(acct.user_id, request.path_params["order_id"])
        with self.exchange.lock:
            return _json({"order": self._order_out(o)})

    async def cancel_order(self, request: Request) -> Response:
        acct = self._account(request)
        o, reduced = self.exchange.cancel_order(acct.user_id, request.path_params["order_id"])
        with self.exchange.lock:
            return _json({"order": self._order_out(o), "reduced_by": reduced, "reduced_by_fp": f"{reduced}.00"})

    async def decrease_order(self, request: Request) -> Response:
        acct = self._account(request)
        kwargs = parse_decrease(await _body(request))
        o = self.exchange.decrease_order(acct.user_id, request.path_params["order_id"], **kwargs)
        with self.exchange.lock:
            return _json({"order": self._order_out(o)})

    async def amend_order(self, request: Request) -> Response:
        acct = self._account(request)
        kwargs = parse_amend(await _body(request))
        old, new = self.exchange.amend_order(acct.user_id, request.path_params["order_id"], **kwargs)
        with self.exchange.lock:
            return _json({"old_order": order_json(old), "order": self._order_out(new)})

    async def queue_position(self, request: Request) -> Response:
        acct = self._account(request)
        o = self.exchange.get_order(acct.user_id, request.path_params["order_id"])
        q = self.exchange.queue_position(o)
        return _json({"queue_position": q, "queue_position_fp": f"{q}.00"})

    async def queue_positions(self, request: Request) -> Response:
        acct = self._account(request)
        tickers = set(_q_list(request, "market_tickers") or [])
        event_ticker = request.query_params.get("event_ticker")
        ex = self.exchange
        with ex.lock:
            out: list[dict[str, Any]] = []
            for o in acct.orders.values():
                if o.status != RESTING or tickers and o.ticker not in tickers:
                    continue
                if event_ticker and ex.markets[o.ticker].event_ticker != event_ticker:
                    continue
                q = ex.queue_position(o)
                out.append({"order_id": o.order_id, "market_ticker": o.ticker, "queue_position": q,
                            "queue_position_fp": f"{q}.00"})
        return _json({"queue_positions": out})

    async def batch_create(self, request: Request) -> Response:
        acct = self._account(request)
        body = await _body(request)
        orders = body.get("orders") if isinstance(body, dict) else None
        if not isinstance(orders, list) or not orders:
            raise InvalidRequest("orders must be a non-empty list")
        if len(orders) > BATCH_LIMIT:
            raise InvalidRequest(f"at most {BATCH_LIMIT} orders per batch, got {len(orders)}")
        out = []
        for item in orders:
            cid = item.get("client_order_id") if isinstance(item, dict) else None
            try:
                o = self.exchange.place_order(acct.user_id, **parse_create_order(item))
                with self.exchange.lock:
                    out.append({"client_order_id": cid, "order": self._order_out(o), "error": None})
            except ExchangeError as exc:
                out.append({"client_order_id": cid, "order": None, "error": exc.body()["error"]})
        return _json({"orders": out}, 201)

    async def batch_cancel(self, request: Request) -> Response:
        acct = self._account(request)
        body = await _body(request)
        ids: list[Any] = []
        if isinstance(body, dict):
            if isinstance(body.get("ids"), list):
                ids.extend(body["ids"])
            if isinstance(body.get("orders"), list):
                ids.extend(x.get("order_id") if isinstance(x, dict) else None for x in body["orders"])
        if not ids:
            raise InvalidRequest("ids (or orders) must be a non-empty list of order ids")
        if len(ids) > BATCH_LIMIT:
            raise InvalidRequest(f"at most {BATCH_LIMIT} orders per batch, got {len(ids)}")
        out = []
        for oid in ids:
            try:
                if not isinstance(oid, str):
                    raise InvalidRequest(f"order id {oid!r} must be a string")
                o, reduced = self.exchange.cancel_order(acct.user_id, oid)
                with self.exchange.lock:
                    out.append({"order_id": oid, "order": self._order_out(o), "reduced_by": reduced,
                                "reduced_by_fp": f"{reduced}.00", "error": None})
            except ExchangeError as exc:
                out.append({"order_id": oid, "order": None, "reduced_by": 0, "reduced_by_fp": "0.00",
                            "error": exc.body()["error"]})
        return _json({"orders": out})

    # ------------------------------------------------------------------ websocket

    async def websocket(self, websocket: WebSocket) -> None:
        """Kalshi requires a signed handshake on every connection, public channels included; an unsigned one
        is served (public channels only) only with the `allow_unsigned_ws` opt-out."""
        user_id = None
        missing = [h.upper() for h in AUTH_HEADERS if not websocket.headers.get(h)]
        # the opt-out admits a handshake with none of the headers (the hub then allows public channels only); a
        # partly signed one is refused either way, as a partly signed REST request is
        anonymous = self.allow_unsigned_ws and len(missing) == len(AUTH_HEADERS)
        try:
            if missing and not anonymous:
                raise Unauthorized(
                    f"the WebSocket handshake must be signed, as on Kalshi (public channels too): missing "
                    f"header(s) {', '.join(missing)}; sign timestamp + GET + {WS_PATH}",
                    code="missing_authentication",
                    details="a local exchange started with --allow-unsigned-ws (allow_unsigned_ws=True) accepts "
                            "unsigned connections")
            if not missing:
                user_id = self.keys.verify(websocket.headers, "GET", websocket.url.path, self.auth_clock(),
                                           self.max_skew_ms)
        except Unauthorized as exc:
            await _deny(websocket, exc)
            return
        await self.hub.serve(websocket, user_id)

    # ------------------------------------------------------------------ admin (/sim/)

    def _admin(self, request: Request) -> None:
        if self.admin_token is not None:
            if request.headers.get("x-sim-admin-token") != self.admin_token:
                raise Forbidden("admin endpoints need the X-Sim-Admin-Token header")
            return
        host = request.client.host if request.client else ""
        if host not in ("127.0.0.1", "::1", "localhost", "testclient"):
            raise Forbidden("admin endpoints accept loopback clients only")

    async def sim_series(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        s = self.exchange.create_series(
            _req_str(b, "ticker"), b.get("title") or _req_str(b, "ticker"), category=b.get("category", "Sports"),
            frequency=b.get("frequency", "custom"), tags=b.get("tags") or [],
            maker_fee_rate=_opt_decimal(b, "maker_fee_rate"),
            fee_multiplier=_opt_decimal(b, "fee_multiplier") or Decimal(1))
        return _json({"series": series_json(s)}, 201)

    async def sim_event(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        e = self.exchange.create_event(_req_str(b, "event_ticker"), _req_str(b, "series_ticker"),
                                       b.get("title") or _req_str(b, "event_ticker"), b.get("sub_title", ""),
                                       mutually_exclusive=bool(b.get("mutually_exclusive", True)))
        return _json({"event": event_json(e)}, 201)

    async def sim_market(self, request: Request) -> Response:
        """Create a market; its series and event are created on the way when they do not exist."""
        self._admin(request)
        b = await _body(request)
        ex = self.exchange
        ticker = _req_str(b, "ticker")
        event_ticker = b.get("event_ticker") or ticker.rsplit("-", 1)[0]
        series_ticker = b.get("series_ticker") or event_ticker.split("-", 1)[0]
        with ex.lock:
            if series_ticker not in ex.series and event_ticker not in ex.events:
                ex.create_series(series_ticker, b.get("series_title") or series_ticker,
                                 maker_fee_rate=_opt_decimal(b, "maker_fee_rate"))
            if event_ticker not in ex.events:
                ex.create_event(event_ticker, series_ticker, b.get("event_title") or event_ticker)
            m = ex.create_market(
                ticker, event_ticker, title=b.get("title", ""), subtitle=b.get("subtitle", ""),
                yes_sub_title=b.get("yes_sub_title", ""), no_sub_title=b.get("no_sub_title", ""),
                open_ms=_opt_time(b, "open_time"), close_ms=_opt_time(b, "close_time"),
                expiration_ms=_opt_time(b, "expiration_time"), status=b.get("status"),
                expected_expiration_ms=_opt_time(b, "expected_expiration_time"),
                rules_primary=b.get("rules_primary", ""), settlement_timer_s=int(b.get("settlement_timer_seconds", 0)),
                market_type=b.get("market_type", "binary"))
            return _json({"market": market_json(m, ex.now_ms(), legacy_status=self.legacy_status)}, 201)

    async def sim_account(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        ex = self.exchange
        balance = _opt_decimal(b, "balance") or ZERO
        acct = ex.create_account(b.get("user_id"), balance)
        out: dict[str, Any] = {"user_id": acct.user_id, "balance_dollars": str(acct.balance)}
        if b.get("public_key_pem"):
            key = self.keys.register(acct.user_id, b["public_key_pem"], b.get("key_id"))
            out["key_id"] = key.key_id
        return _json(out, 201)

    async def sim_deposit(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        amount = _opt_decimal(b, "amount")
        if amount is None:
            raise InvalidRequest("amount is required (dollars as a string)")
        acct = self.exchange.deposit(request.path_params["user_id"], amount)
        return _json({"user_id": acct.user_id, "balance_dollars": str(acct.balance)})

    async def sim_account_get(self, request: Request) -> Response:
        self._admin(request)
        ex = self.exchange
        with ex.lock:
            acct = ex.account(request.path_params["user_id"])
            return _json({"user_id": acct.user_id, "balance_dollars": str(acct.balance),
                          "deposits_dollars": str(acct.deposits),
                          "positions": [position_json(p) for p in acct.positions.values()]})

    async def sim_order(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        user_id = _req_str(b, "user_id")
        o = self.exchange.place_order(user_id, **parse_create_order(b))
        with self.exchange.lock:
            return _json({"order": self._order_out(o)}, 201)

    async def sim_cancel(self, request: Request) -> Response:
        self._admin(request)
        ex = self.exchange
        o = ex.orders.get(request.path_params["order_id"])
        if o is None:
            raise NotFound("order not found", code="order_not_found")
        o, reduced = ex.cancel_order(o.user_id, o.order_id)
        with ex.lock:
            return _json({"order": self._order_out(o), "reduced_by": reduced})

    async def sim_clock(self, request: Request) -> Response:
        self._admin(request)
        ex = self.exchange
        if request.method == "POST":
            b = await _body(request)
            seconds = b.get("advance_seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float | str):
                raise InvalidRequest("advance_seconds (a number of seconds >= 0) is required")
            try:
                value = float(seconds)
            except ValueError:
                raise InvalidRequest(f"advance_seconds {seconds!r} is not a number") from None
            if value < 0:
                raise InvalidRequest("advance_seconds must be >= 0 (the clock only moves forward)")
            ex.clock.advance(value)
            ex.tick()
        now = ex.now_ms()
        return _json({"now_ms": now, "now": iso_ms(now)})

    async def sim_market_status(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        ex = self.exchange
        m = ex.set_market_status(request.path_params["ticker"], _req_str(b, "status"))
        with ex.lock:
            return _json({"market": market_json(m, ex.now_ms(), legacy_status=self.legacy_status)})

    async def sim_determine(self, request: Request) -> Response:
        return await self._result(request, final=False)

    async def sim_settle(self, request: Request) -> Response:
        return await self._result(request, final=True)

    async def _result(self, request: Request, *, final: bool) -> Response:
        self._admin(request)
        b = await _body(request)
        value = _settlement_value(b)
        ex = self.exchange
        ticker = request.path_params["ticker"]
        m = ex.settle_market(ticker, value) if final else ex.determine_market(ticker, value)
        with ex.lock:
            return _json({"market": market_json(m, ex.now_ms(), legacy_status=self.legacy_status)})

    async def sim_faults(self, request: Request) -> Response:
        self._admin(request)
        if request.method == "DELETE":
            self.faults.clear()
        elif request.method == "POST":
            b = await _body(request)
            kind = b.get("kind")
            try:
                if kind == "error":
                    self.faults.fail(int(b.get("status", 503)), int(b.get("count", 1)),
                                     retry_after=b.get("retry_after"), path_prefix=b.get("path_prefix", ""),
                                     method=b.get("method"), message=b.get("message"))
                elif kind == "delay":
                    self.faults.delay(float(b.get("seconds", 1)), int(b.get("count", 1)),
                                      path_prefix=b.get("path_prefix", ""))
                elif kind == "drop_order_response":
                    self.faults.drop_next_order_create(int(b.get("count", 1)))
                else:
                    raise InvalidRequest("kind must be error, delay or drop_order_response")
            except (TypeError, ValueError) as exc:
                raise InvalidRequest(f"bad fault parameters: {exc}") from None
        return _json(self.faults.state())

    async def sim_ws_drop(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        n = await self.hub.drop_connections(abort=b.get("mode", "abort") != "close")
        return _json({"dropped": n})

    async def sim_ws_skip(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        return _json({"connections": self.hub.skip_seq(int(b.get("count", 1)))})

    async def sim_audit(self, request: Request) -> Response:
        self._admin(request)
        return _json({k: str(v) for k, v in self.exchange.audit().items()})

    async def sim_trading(self, request: Request) -> Response:
        self._admin(request)
        b = await _body(request)
        if not isinstance(b.get("active"), bool):
            raise InvalidRequest("active (true/false) is required")
        with self.exchange.lock:
            self.exchange.trading_active = b["active"]
        return _json({"trading_active": self.exchange.trading_active})

    # ------------------------------------------------------------------ assembly

    async def _ticker_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.exchange.tick()
                if self.scenario is not None:
                    self.scenario.step(self.exchange.now_ms())
            except Exception:  # noqa: BLE001 - a scenario bug must not stop the exchange
                log.exception("exchange tick failed")

    def build(self) -> Starlette:
        p = API_PREFIX
        g = _guard
        routes = [
            Route(f"{p}/exchange/status", g(self.exchange_status)),
            Route(f"{p}/series", g(self.series_list)),
            Route(f"{p}/series/{{series_ticker}}", g(self.series_one)),
            Route(f"{p}/series/{{series_ticker}}/markets/{{ticker}}/candlesticks", g(self.candlesticks)),
            Route(f"{p}/events", g(self.events_list)),
            Route(f"{p}/events/{{event_ticker}}", g(self.event_one)),
            Route(f"{p}/markets", g(self.markets_list)),
            Route(f"{p}/markets/trades", g(self.trades)),
            Route(f"{p}/markets/{{ticker}}", g(self.market_one)),
            Route(f"{p}/markets/{{ticker}}/orderbook", g(self.orderbook)),
            Route(f"{p}/portfolio/balance", g(self.balance)),
            Route(f"{p}/portfolio/positions", g(self.positions)),
            Route(f"{p}/portfolio/fills", g(self.fills)),
            Route(f"{p}/portfolio/settlements", g(self.settlements)),
            Route(f"{p}/portfolio/orders", g(self.list_orders), methods=["GET"]),
            Route(f"{p}/portfolio/orders", g(self.create_order), methods=["POST"]),
            Route(f"{p}/portfolio/orders/batched", g(self.batch_create), methods=["POST"]),
            Route(f"{p}/portfolio/orders/batched", g(self.batch_cancel), methods=["DELETE"]),
            Route(f"{p}/portfolio/orders/queue_positions", g(self.queue_positions), methods=["GET"]),
            Route(f"{p}/portfolio/orders/{{order_id}}", g(self.get_order), methods=["GET"]),
            Route(f"{p}/portfolio/orders/{{order_id}}", g(self.cancel_order), methods=["DELETE"]),
            Route(f"{p}/portfolio/orders/{{order_id}}/queue_position", g(self.queue_position), methods=["GET"]),
            Route(f"{p}/portfolio/orders/{{order_id}}/decrease", g(self.decrease_order), methods=["POST"]),
            Route(f"{p}/portfolio/orders/{{order_id}}/amend", g(self.amend_order), methods=["POST"]),
            WebSocketRoute(WS_PATH, self.websocket),
            Route("/sim/series", g(self.sim_series), methods=["POST"]),
            Route("/sim/events", g(self.sim_event), methods=["POST"]),
            Route("/sim/markets", g(self.sim_market), methods=["POST"]),
            Route("/sim/markets/{ticker}/status", g(self.sim_market_status), methods=["POST"]),
            Route("/sim/markets/{ticker}/determine", g(self.sim_determine), methods=["POST"]),
            Route("/sim/markets/{ticker}/settle", g(self.sim_settle), methods=["POST"]),
            Route("/sim/accounts", g(self.sim_account), methods=["POST"]),
            Route("/sim/accounts/{user_id}", g(self.sim_account_get), methods=["GET"]),
            Route("/sim/accounts/{user_id}/deposit", g(self.sim_deposit), methods=["POST"]),
            Route("/sim/orders", g(self.sim_order), methods=["POST"]),
            Route("/sim/orders/{order_id}/cancel", g(self.sim_cancel), methods=["POST"]),
            Route("/sim/clock", g(self.sim_clock), methods=["GET", "POST"]),
            Route("/sim/faults", g(self.sim_faults), methods=["GET", "POST", "DELETE"]),
            Route("/sim/ws/drop", g(self.sim_ws_drop), methods=["POST"]),
            Route("/sim/ws/skip_seq", g(self.sim_ws_skip), methods=["POST"]),
            Route("/sim/audit", g(self.sim_audit), methods=["GET"]),
            Route("/sim/trading", g(self.sim_trading), methods=["POST"]),
        ]

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self.hub.start(asyncio.get_running_loop())
            task = asyncio.create_task(self._ticker_loop())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self.hub.stop()

        app = Starlette(routes=routes, lifespan=lifespan,
                        exception_handlers={404: _not_found, 405: _not_allowed, 500: _internal})
        app.state.exchange_app = self
        return app


def create_app(exchange: Exchange, *, keys: KeyRegistry | None = None, faults: FaultInjector | None = None,
               max_skew_s: float = 30.0, admin_token: str | None = None, tick_interval: float = 0.25,
               scenario: Stepper | None = None, auth_clock: Callable[[], int] | None = None,
               legacy_status: bool = False, allow_unsigned_ws: bool = False) -> ASGIApp:
    """The ASGI app serving `exchange`. `app.state.exchange_app` gives access to keys, faults and hub.

    `max_skew_s`: how far a request timestamp may be from `auth_clock` (default: the exchange clock).
    `legacy_status`: write market statuses in the older vocabulary (`settled` for `finalized` ...), which
    clients such as kalshi-python-sync 3.2.0 require; the default is the OpenAPI v3.13 vocabulary.
    `allow_unsigned_ws`: serve unsigned WebSocket handshakes (public channels only) instead of refusing them
    with a 401 as Kalshi does.
    """
    core = ExchangeApp(exchange, keys or KeyRegistry(), faults or FaultInjector(), max_skew_s=max_skew_s,
                       admin_token=admin_token, tick_interval=tick_interval, scenario=scenario,
                       auth_clock=auth_clock, legacy_status=legacy_status, allow_unsigned_ws=allow_unsigned_ws)
    app = core.build()
    return FaultMiddleware(app, core.faults, state_app=app)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _json({"error": {"code": "not_found", "message": f"no such endpoint: {request.url.path}",
                            "service": "precog-exchange"}}, 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _json({"error": {"code": "method_not_allowed",
                            "message": f"{request.method} is not allowed on {request.url.path}",
                            "service": "precog-exchange"}}, 405)


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json({"error": {"code": "internal_server_error", "message": "internal server error",
                            "service": "precog-exchange"}}, 500)


async def _deny(websocket: WebSocket, exc: Unauthorized) -> None:
    """Refuse a WebSocket handshake with Kalshi's 401 body when the server supports denial responses."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(_error(exc))
    else:
        await websocket.close(code=1008, reason=exc.message[:120])


class FaultMiddleware:
    """Outermost ASGI layer: injected errors, delays and lost order-create responses (REST only)."""

    def __init__(self, app: ASGIApp, faults: FaultInjector, *, state_app: Starlette) -> None:
        self.app = app
        self.faults = faults
        self.state = state_app.state  # so `app.state.exchange_app` works on the wrapped app too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        method = scope["method"]
        delay = self.faults.take_delay(path)
        if delay:
            await asyncio.sleep(delay)
        fault = self.faults.take_error(method, path)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            code = {429: "too_many_requests", 500: "internal_server_error", 502: "bad_gateway",
                    503: "service_unavailable", 504: "gateway_timeout"}.get(fault.status, "injected_fault")
            response = _json({"error": {"code": code, "message": fault.message, "service": "precog-exchange"}},
                             fault.status, headers)
            await response(scope, receive, send)
            return
        if self.faults.take_drop(method, path):
            await self._accept_then_drop(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _accept_then_drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request (the order is placed), then cut the connection instead of answering."""
        status: dict[str, int] = {}

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]

        await self.app(scope, receive, swallow)
        log.info("fault injection: dropped the %s response of %s %s", status.get("code"), scope["method"],
                 scope["path"])
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            return
        # not uvicorn: start a response that promises a body and never deliver it
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
        raise ConnectionAbortedError("fault injection: response dropped")


def _req_str(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} is required")
    return value


def _opt_decimal(body: Any, name: str) -> Decimal | None:
    value = body.get(name) if isinstance(body, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidRequest(f"{name} must be a decimal string (e.g. \"100.00\"), got {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise InvalidRequest(f"{name} {value!r} is not a decimal number") from None


def _opt_time(body: Any, name: str) -> int | None:
    value = body.get(name) if isinstance(body, dict) else None
    return None if value is None else parse_time_ms(value, field=name)


def _settlement_value(body: Any) -> Decimal:
    result = body.get("result") if isinstance(body, dict) else None
    value = _opt_decimal(body, "settlement_value")
    if value is None and result is not None:
        if result not in ("yes", "no"):
            raise InvalidRequest("result must be yes or no (or give settlement_value in [0, 1])")
        return Decimal(1) if result == "yes" else Decimal(0)
    if value is None:
        raise InvalidRequest("settlement_value (dollars per YES contract, 0..1) or result (yes/no) is required")
    return value


def _status_filter(status: str | None) -> frozenset[str] | None:
    if not status:
        return None
    allowed: set[str] = set()
    for s in status.split(","):
        s = s.strip()
        if s not in STATUS_FILTERS:
            raise InvalidRequest(f"status {s!r} is not a market status (use unopened, open, paused, closed, settled "
                                 "or one of initialized, inactive, active, determined, finalized)")
        allowed |= STATUS_FILTERS[s]
    return frozenset(allowed)


__all__ = ["API_PREFIX", "WS_PATH", "create_app", "ExchangeApp", "FaultMiddleware"]


def _newest_first_page(request: Request, kind: str, records: Any, keep: Any, ms_of: Any,
                       to_json: Any) -> tuple[list[dict[str, Any]], str]:
    """One page of `records` (newest first, each with a `seq`) after the request's cursor, filtered by `keep`
    and the request's min_ts/max_ts (seconds); returns the JSON rows and the next cursor ("" when done)."""
    limit = _q_int(request, "limit", 100, lo=1, hi=1000)
    before = decode_cursor(request.query_params.get("cursor"), kind)
    min_ts = _q_int(request, "min_ts")
    max_ts = _q_int(request, "max_ts")
    out: list[dict[str, Any]] = []
    last = None
    more = False
    for rec in records:
        if before is not None and rec.seq >= before or not keep(rec):
            continue
        ts = ms_of(rec) // 1000
        if (min_ts is not None and ts < min_ts) or (max_ts is not None and ts > max_ts):
            continue
        if len(out) == limit:
            more = True
            break
        out.append(to_json(rec))
        last = rec.seq
    return out, encode_cursor(kind, last) if more and last else ""
