"""Contract test: the local exchange and our Kalshi client held to Kalshi's OpenAPI document (v3.13.0).

Every REST route the exchange serves under /trade-api/v2 is driven over real HTTP (the `local_exchange`
server, signed requests) with realistic state — resting orders, fills, positions, a settled and a determined
market — and each answer is validated against the spec's response schema for that path, method and status
(OpenAPI 3.0 converted to JSON Schema: `nullable`, `$ref` siblings, `allOf`; date-time formats checked).
Fields the spec does not declare are reported too, so a misnamed optional field cannot hide: the few the
exchange sends on purpose are in `UNDECLARED_ALLOWED`, each with its reason. The request bodies and query
parameters our client (`precog.venues.kalshi`) puts on the wire are captured at the HTTP transport and held
to the spec the same way, and every path the client's source calls must exist in the spec with that method.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.routing import Route

from precog.domain.order import Action, OrderRequest, OrderType, Side, TimeInForce, new_client_order_id
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.server import API_PREFIX, create_app
from precog.venues.kalshi import client as kalshi_client_module
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient, RetryPolicy, order_body
from precog.venues.kalshi.environments import resolve_environment
from venues.conftest import KalshiTestAuth, LocalExchange

SPEC_FILE = ("kalshi", "kalshi_openapi_v3.13.0.yaml")
SPEC_URI = "urn:kalshi:openapi:3.13.0"

# Fields the exchange sends that v3.13 does not declare, each on purpose. Our client never needs them:
# `test_what_our_client_sends_and_reads_is_in_the_spec` strips every undeclared field before the client reads.
SDK_320 = "older generation (integer cents/counts); kalshi-python-sync 3.2.0's model requires or reads it"
UNDECLARED_ALLOWED: dict[tuple[str, str], str] = {
    **{("Market", f): SDK_320 for f in (
        "yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "previous_yes_bid", "previous_yes_ask",
        "previous_price", "volume", "volume_24h", "liquidity", "open_interest", "notional_value",
        "settlement_value", "risk_limit_cents", "category")},
    **{("Order", f): SDK_320 for f in (
        "yes_price", "no_price", "fill_count", "remaining_count", "initial_count", "taker_fees", "maker_fees",
        "taker_fill_cost", "maker_fill_cost", "queue_position")},
    **{("Fill", f): SDK_320 for f in (
        "count", "price", "yes_price", "no_price", "yes_price_fixed", "no_price_fixed", "client_order_id")},
    **{("Trade", f): SDK_320 for f in ("price", "count", "yes_price", "no_price")},
    **{("MarketPosition", f): SDK_320 for f in (
        "total_traded", "position", "market_exposure", "realized_pnl", "fees_paid")},
    **{("EventPosition", f): SDK_320 for f in (
        "total_cost", "total_cost_shares", "event_exposure", "realized_pnl", "fees_paid")},
    **{("Settlement", f): SDK_320 for f in ("yes_count", "no_count", "yes_total_cost", "no_total_cost")},
    **{("MarketCandlestick", f): SDK_320 for f in ("volume", "open_interest")},
    **{("BidAskDistribution", f): SDK_320 for f in ("open", "high", "low", "close")},
    **{("PriceDistribution", f): SDK_320 for f in ("open", "high", "low", "close", "mean", "previous")},
    ("GetMarketOrderbookResponse", "orderbook"): SDK_320,
    ("CancelOrderResponse", "reduced_by"): SDK_320,
    ("BatchCancelOrdersIndividualResponse", "reduced_by"): SDK_320,
    ("GetOrderQueuePositionResponse", "queue_position"): SDK_320,
    ("OrderQueuePosition", "queue_position"): SDK_320,
    ("Settlement", "value_dollars"): "a fractional settlement value (0.4533) that integer cents cannot carry",
    ("Settlement", "revenue_dollars"): "the dollar twin of the integer `revenue` cents, as for every amount",
    ("GetBalanceResponse", "balance_dollars"): "the dollar twin of the integer `balance` cents",
    ("GetBalanceResponse", "portfolio_value_dollars"): "the dollar twin of the integer `portfolio_value` cents",
}


# ------------------------------------------------------------------------------------------ the spec


def _rfc3339(value: object) -> bool:
    """RFC 3339 date-time: a 'T' between date and time and an explicit offset (`Z` or +hh:mm)."""
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value)
    return True


def _int_range(bits: int) -> Any:
    def check(value: object) -> bool:
        return not isinstance(value, int) or -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
    return check


FORMATS = FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(_rfc3339)
FORMATS.checks("int32")(_int_range(32))
FORMATS.checks("int64")(_int_range(64))

# OpenAPI 3.0 keywords that mean nothing to validation (documentation and code-generator hints).
_DOC_KEYWORDS = {"description", "example", "deprecated", "default", "title"}
_SAME_KEYWORDS = {"type", "enum", "required", "minimum", "maximum", "minItems", "maxItems", "format", "pattern",
                  "minLength", "maxLength", "uniqueItems"}


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.0 schema object as JSON Schema 2020-12: `nullable: true` admits null whatever else the
    object says (also beside a `$ref` or an `allOf`, as the spec uses it), refs point into SPEC_URI."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in _DOC_KEYWORDS or key == "nullable":
            continue
        if key in _SAME_KEYWORDS:
            out[key] = value
        elif key == "$ref":
            out[key] = SPEC_URI + value
        elif key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = to_json_schema(value)
        elif key == "additionalProperties":
            out[key] = value if isinstance(value, bool) else to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            raise AssertionError(f"OpenAPI keyword {key!r} is not converted by this test; teach to_json_schema")
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


class OpenApiSpec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        converted = {"components": {"schemas": {n: to_json_schema(s) for n, s in self.schemas.items()}}}
        self.registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(converted, default_specification=DRAFT202012))

    def ref(self, node: dict[str, Any], section: str) -> dict[str, Any]:
        while "$ref" in node:
            prefix = f"#/components/{section}/"
            assert node["$ref"].startswith(prefix), node["$ref"]
            node = self.doc["components"][section][node["$ref"][len(prefix):]]
        return node

    def operation(self, method: str, template: str) -> dict[str, Any]:
        op = self.doc["paths"].get(template, {}).get(method.lower())
        assert op is not None, f"{method} {template} is not in Kalshi's OpenAPI v3.13.0"
        return op

    def response_schema(self, method: str, template: str, status: int) -> dict[str, Any] | None:
        responses = self.operation(method, template)["responses"]
        assert str(status) in responses, (f"{method} {template} answered {status}; the spec lists only "
                                          f"{sorted(responses)}")
        content = self.ref(responses[str(status)], "responses").get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return schema if isinstance(schema, dict) else None

    def request_schema(self, method: str, template: str) -> dict[str, Any]:
        body = self.operation(method, template).get("requestBody")
        assert body is not None, f"{method} {template} takes no request body in the spec"
        return body["content"]["application/json"]["schema"]  # type: ignore[no-any-return]

    def query_parameters(self, method: str, template: str) -> dict[str, dict[str, Any]]:
        out = {}
        for raw in self.operation(method, template).get("parameters", []):
            param = self.ref(raw, "parameters")
            if param["in"] == "query":
                out[param["name"]] = param["schema"]
        return out

    def template_of(self, method: str, path: str) -> str | None:
        """The spec's path template matching a concrete path (literal segments win over `{params}`)."""
        best = None
        for template, item in self.doc["paths"].items():
            if method.lower() not in item:
                continue
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, path) and (best is None or template.count("{") < best.count("{")):
                best = template
        return best

    # -------------------------------------------------------------- checking one JSON value

    def problems(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        """Schema violations plus undeclared fields that are not in UNDECLARED_ALLOWED."""
        validator = Draft202012Validator(to_json_schema(schema), registry=self.registry, format_checker=FORMATS)
        out = [f"{where}: {'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}"
               for e in validator.iter_errors(value)]
        extra: list[tuple[str, str]] = []
        self._undeclared(schema, value, where.split()[-1], extra)
        out += [f"{where}: {owner}.{name} is not in the spec" for owner, name in extra
                if (owner, name) not in UNDECLARED_ALLOWED]
        return out

    def strip_undeclared(self, schema: dict[str, Any], value: Any) -> list[tuple[str, str]]:
        """Delete (in place) every field of `value` the schema does not declare; returns what went."""
        gone: list[tuple[str, str]] = []
        self._undeclared(schema, value, "<body>", gone, strip=True)
        return gone

    def _undeclared(self, schema: dict[str, Any], value: Any, owner: str, out: list[tuple[str, str]],
                    strip: bool = False) -> None:
        while "$ref" in schema:
            owner = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.schemas[owner]
        if value is None:
            return
        parts = [schema]
        for sub in schema.get("allOf", []):
            if "$ref" in sub:
                owner = sub["$ref"].rsplit("/", 1)[-1]
                sub = self.schemas[owner]
            parts.append(sub)
        if isinstance(value, dict):
            declared: dict[str, Any] = {}
            additional: Any = None
            for part in parts:
                declared.update(part.get("properties", {}))
                additional = additional or part.get("additionalProperties")
            for name, item in list(value.items()):
                if name in declared:
                    sub_owner = f"{owner}.{name}" if "$ref" not in declared[name] else owner
                    self._undeclared(declared[name], item, sub_owner, out, strip)
                elif isinstance(additional, dict):
                    self._undeclared(additional, item, f"{owner}.{name}", out, strip)
                elif not additional:
                    out.append((owner, name))
                    if strip:
                        del value[name]
        elif isinstance(value, list):
            items = next((p["items"] for p in parts if "items" in p), None)
            if items is not None:
                for item in value:
                    self._undeclared(items, item, owner, out, strip)


@pytest.fixture(scope="module")
def openapi(shared_data: Any) -> OpenApiSpec:
    path = shared_data.joinpath(*SPEC_FILE)
    return OpenApiSpec(yaml.safe_load(path.read_text(encoding="utf-8")))


def served_routes() -> set[tuple[str, str]]:
    """(method, template) of every REST route the exchange serves under /trade-api/v2."""
    app = create_app(Exchange()).app  # type: ignore[attr-defined]
    out = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(API_PREFIX + "/"):
            out |= {(m, route.path[len(API_PREFIX):]) for m in (route.methods or ()) if m != "HEAD"}
    return out


# ------------------------------------------------------------------------------------------ responses


class Checked:
    """Calls the exchange over HTTP, validating every answer; remembers the routes it covered."""

    def __init__(self, spec: OpenApiSpec, http: httpx.Client) -> None:
        self.spec = spec
        self.http = http
        self.seen: set[tuple[str, str]] = set()
        self.problems: list[str] = []

    def __call__(self, method: str, template: str, *, path: dict[str, str] | None = None,
                 params: dict[str, Any] | None = None, body: Any = None, status: int = 200) -> Any:
        url = template.format(**(path or {}))
        r = self.http.request(method, url, params=params, json=body)
        assert r.status_code == status, f"{method} {url}: {r.status_code} {r.text[:300]}"
        payload = r.json()
        self.seen.add((method, template))
        if status >= 400:
            self.problems += check_error(self.spec, method, template, status, payload)
            return payload
        schema = self.spec.response_schema(method, template, status)
        assert schema is not None, f"{method} {template} {status} has no schema in the spec"
        self.problems += self.spec.problems(schema, payload, f"{method} {template} {status} ->")
        return payload


def check_error(spec: OpenApiSpec, method: str, template: str, status: int, payload: Any) -> list[str]:
    """An error answer: Kalshi (and the exchange) wrap the spec's ErrorResponse object in {"error": ...} —
    the same nesting the spec itself uses in BatchCreateOrdersIndividualResponse.error — and our client
    accepts both that and the bare object; the inner object must match ErrorResponse exactly."""
    where = f"{method} {template} {status} ->"
    if not (isinstance(payload, dict) and set(payload) == {"error"}):
        return [f"{where} error body is not {{'error': ErrorResponse}}: {payload!r}"]
    schema = spec.response_schema(method, template, status) or {"$ref": "#/components/schemas/ErrorResponse"}
    out = spec.problems(schema, payload["error"], where)
    inner = payload["error"]
    if not (isinstance(inner, dict) and inner.get("code") and inner.get("message")):
        out.append(f"{where} error has no code/message: {inner!r}")
    return out


@pytest.fixture
def checked(openapi: OpenApiSpec, local_exchange: LocalExchange) -> Iterator[Checked]:
    with httpx.Client(base_url=local_exchange.base_url, timeout=10,
                      auth=KalshiTestAuth(local_exchange.key_id, local_exchange.private_key_path)) as http:
        yield Checked(openapi, http)


def _build_state(ex: LocalExchange) -> dict[str, str]:
    """Resting orders both sides, a partly filled order, fills, positions, a settled (fractional) market and a
    determined one, a closed one."""
    t0, t1 = ex.tickers
    ex.counterparty_order(t0, "yes", "buy", 10, "0.40")
    ex.counterparty_order(t0, "no", "buy", 6, "0.55")
    ex.counterparty_order(t1, "no", "buy", 4, "0.70")
    settled = ex.create_market("KXCONTRACT-25JAN01-SETTLED", title="Settles at 0.37")
    determined = ex.create_market("KXCONTRACT-25JAN01-DETERMINED", title="Determined, not final",
                                  settlement_timer_seconds=86400)
    closed = ex.create_market("KXCONTRACT-25JAN01-CLOSED", title="Closed")
    for ticker in (settled, determined):
        ex.counterparty_order(ticker, "no", "buy", 5, "0.50")
    return {"t0": t0, "t1": t1, "settled": settled, "determined": determined, "closed": closed}


def test_every_served_route_answers_in_the_specs_shape(openapi: OpenApiSpec, local_exchange: LocalExchange,
                                                        checked: Checked) -> None:
    ex = local_exchange
    s = _build_state(ex)
    t0 = s["t0"]
    call = checked
    new = {"ticker": t0, "side": "yes", "action": "buy", "count": 8, "count_fp": "8.00",
           "yes_price_dollars": "0.45", "client_order_id": "contract-taker"}
    taker = call("POST", "/portfolio/orders", body=new, status=201)["order"]  # 6 fill at 0.45, 2 rest
    assert taker["status"] == "resting" and taker["fill_count_fp"] == "6.00"
    resting = call("POST", "/portfolio/orders", body={
        "ticker": t0, "side": "no", "action": "buy", "count": 5, "no_price_dollars": "0.30",
        "expiration_ts": int(time.time()) + 3600}, status=201)["order"]
    for ticker in (s["settled"], s["determined"]):
        call("POST", "/portfolio/orders", body={"ticker": ticker, "side": "yes", "action": "buy", "count": 5,
                                                "yes_price_dollars": "0.50"}, status=201)
    batch = call("POST", "/portfolio/orders/batched", status=201, body={"orders": [
        {"ticker": s["t1"], "side": "yes", "action": "buy", "count": 2, "yes_price_dollars": "0.20",
         "client_order_id": "contract-b1"},
        {"ticker": s["t1"], "side": "yes", "action": "buy", "count": 2, "yes_price_dollars": "0.20",
         "client_order_id": "contract-b1"}]})  # the second is a duplicate: an error row
    assert batch["orders"][0]["error"] is None and batch["orders"][1]["order"] is None
    ex.settle(s["settled"], "0.37")
    ex.admin.determine(s["determined"], "1")
    ex.admin.close_market(s["closed"])

    call("GET", "/exchange/status")
    call("GET", "/series", params={"include_volume": "true"})
    call("GET", "/series/{series_ticker}", path={"series_ticker": ex.series_ticker})
    call("GET", "/events", params={"with_nested_markets": "true"})
    call("GET", "/events", params={"status": "settled", "limit": 1})
    call("GET", "/events/{event_ticker}", path={"event_ticker": ex.event_ticker},
         params={"with_nested_markets": "true"})
    markets = call("GET", "/markets", params={"limit": 1000})["markets"]
    assert {m["status"] for m in markets} >= {"active", "finalized", "determined", "closed"}
    call("GET", "/markets/{ticker}", path={"ticker": s["settled"]})
    call("GET", "/markets/{ticker}/orderbook", path={"ticker": t0})
    call("GET", "/markets/{ticker}/orderbook", path={"ticker": s["closed"]}, params={"depth": 5})
    call("GET", "/markets/trades", params={"ticker": t0})
    now_s = ex.admin.now_ms() // 1000
    for period in (1, 60):
        candles = call("GET", "/series/{series_ticker}/markets/{ticker}/candlesticks",
                       path={"series_ticker": ex.series_ticker, "ticker": t0},
                       params={"start_ts": now_s - 7200, "end_ts": now_s + 3600, "period_interval": period})
        assert candles["candlesticks"]
    call("GET", "/portfolio/balance")
    call("GET", "/portfolio/positions")
    call("GET", "/portfolio/positions", params={"settlement_status": "all"})
    fills = call("GET", "/portfolio/fills")["fills"]
    assert fills
    assert call("GET", "/portfolio/settlements")["settlements"]
    call("GET", "/portfolio/orders")
    call("GET", "/portfolio/orders", params={"status": "executed"})
    call("GET", "/portfolio/orders/{order_id}", path={"order_id": taker["order_id"]})
    call("GET", "/portfolio/orders/{order_id}/queue_position", path={"order_id": resting["order_id"]})
    call("GET", "/portfolio/orders/queue_positions", params={"market_tickers": t0})
    call("POST", "/portfolio/orders/{order_id}/decrease", path={"order_id": resting["order_id"]},
         body={"reduce_by": 1})
    call("POST", "/portfolio/orders/{order_id}/amend", path={"order_id": resting["order_id"]},
         body={"ticker": t0, "side": "no", "action": "buy", "no_price_dollars": "0.31", "count": 4})
    call("DELETE", "/portfolio/orders/{order_id}", path={"order_id": taker["order_id"]})
    cancel = call("DELETE", "/portfolio/orders/batched",
                  body={"orders": [{"order_id": resting["order_id"]}, {"order_id": "no-such-order"}]})
    assert cancel["orders"][1]["error"] is not None

    assert not checked.problems, "\n".join(checked.problems)
    in_spec = {(m, p) for m, p in served_routes() if openapi.template_of(m, p) == p}
    assert in_spec - checked.seen == set(), "served routes this test did not drive"


def test_every_served_route_is_in_the_spec(openapi: OpenApiSpec) -> None:
    """The exchange invents no endpoint: each route it serves is Kalshi's, with that method."""
    invented = sorted((m, p) for m, p in served_routes() if openapi.template_of(m, p) != p)
    assert not invented


def test_error_answers_match_the_specs_error_schema(local_exchange: LocalExchange, checked: Checked,
                                                    public_http: httpx.Client) -> None:
    t0 = local_exchange.tickers[0]
    call = checked
    call("GET", "/markets/{ticker}", path={"ticker": "KXNOPE-1"}, status=404)
    call("GET", "/markets/{ticker}/orderbook", path={"ticker": "KXNOPE-1"}, status=404)
    call("GET", "/markets", params={"status": "sleeping"}, status=400)
    call("GET", "/portfolio/orders/{order_id}", path={"order_id": "no-such-order"}, status=404)
    call("DELETE", "/portfolio/orders/{order_id}", path={"order_id": "no-such-order"}, status=404)
    call("POST", "/portfolio/orders", body={"ticker": t0, "side": "maybe", "action": "buy", "count": 1,
                                            "yes_price_dollars": "0.40"}, status=400)
    body = {"ticker": t0, "side": "yes", "action": "buy", "count": 1, "yes_price_dollars": "0.40",
            "client_order_id": "dup-1"}
    call("POST", "/portfolio/orders", body=body, status=201)
    call("POST", "/portfolio/orders", body=body, status=409)
    call("POST", "/portfolio/orders/{order_id}/decrease", path={"order_id": "no-such-order"},
         body={"reduce_by": 1}, status=404)
    unsigned = public_http.get("/portfolio/balance")
    assert unsigned.status_code == 401
    checked.problems += check_error(checked.spec, "GET", "/portfolio/balance", 401, unsigned.json())
    local_exchange.admin.fail_next(status=429, retry_after=1, path_prefix=f"{API_PREFIX}/portfolio/orders",
                                   method="POST")
    call("POST", "/portfolio/orders", body={**body, "client_order_id": "throttled"}, status=429)
    assert not checked.problems, "\n".join(checked.problems)


# ------------------------------------------------------------------------------------------ our client


class SpecOnlyTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that keeps each request our client sent (method, path, query, JSON body) and
    deletes from each 2xx answer every field the spec does not declare before the client reads it, so the
    client is run on exactly what Kalshi promises."""

    def __init__(self, spec: OpenApiSpec) -> None:
        super().__init__()
        self.spec = spec
        self.sent: list[tuple[str, str, list[tuple[str, str]], Any]] = []
        self.stripped: set[tuple[str, str]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.sent.append((request.method, path, list(request.url.params.multi_items()), body))
        response = await super().handle_async_request(request)
        template = self.spec.template_of(request.method, path[len(API_PREFIX):])
        if template is None or response.status_code >= 300:
            return response
        payload = json.loads(await response.aread())
        schema = self.spec.response_schema(request.method, template, response.status_code)
        assert schema is not None, f"{request.method} {template}: no response schema"
        self.stripped.update(self.spec.strip_undeclared(schema, payload))
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=json.dumps(payload).encode(),
                              request=request)


def _query_problems(spec: OpenApiSpec, method: str, template: str, query: list[tuple[str, str]]) -> list[str]:
    declared = spec.query_parameters(method, template)
    out = []
    for name, raw in query:
        if name not in declared:
            out.append(f"{method} {template}: query parameter {name!r} is not in the spec")
            continue
        schema = declared[name]
        value: Any = raw
        if schema.get("type") == "integer":
            value = int(raw)
        elif schema.get("type") == "boolean":
            assert raw in ("true", "false"), f"{method} {template}: {name}={raw!r} is not true/false"
            value = raw == "true"
        out += spec.problems(schema, value, f"{method} {template} ?{name}=")
    return out


async def _drive_client(ex: LocalExchange, client: AsyncKalshiClient) -> None:
    """Every client method, against real state."""
    t0, t1 = ex.tickers
    ex.counterparty_order(t0, "no", "buy", 3, "0.55")
    settled = ex.create_market("KXCLIENT-25JAN01-S", title="Settles at 0.37")
    ex.counterparty_order(settled, "no", "buy", 4, "0.50")
    now_s = int(time.time())

    def req(ticker: str, count: str, price: str, **kw: Any) -> OrderRequest:
        return OrderRequest(ticker=ticker, side=Side.YES, action=Action.BUY, count=Decimal(count),
                            price=Decimal(price), client_order_id=new_client_order_id("oa"), **kw)

    await client.get_exchange_status()
    await client.get_series_list(category="Sports", tags="Football")
    await client.get_series(ex.series_ticker)
    await client.get_events(series_ticker=ex.series_ticker, status="open", with_nested_markets=True, limit=5,
                            min_close_ts=now_s)
    await client.get_event(ex.event_ticker, with_nested_markets=True)
    await client.get_markets(series_ticker=ex.series_ticker, event_ticker=ex.event_ticker, status="open",
                             tickers=[t0, t1], min_close_ts=now_s - 60, max_close_ts=now_s + 10**8, limit=10)
    rested = await client.create_order(req(t0, "5", "0.44", time_in_force=TimeInForce.GOOD_TILL_CANCELED))
    market = await client.create_order(req(t0, "1", "0.46", type=OrderType.MARKET))  # fills 1 at 0.45
    assert market.fill_count == 1
    await client.create_order(req(t0, "1", "0.50", buy_max_cost=Decimal("1.00")))  # fill-or-kill, fills at 0.45
    await client.create_order(req(t1, "2", "0.10", post_only=True, expiration_ts=now_s + 3600))
    await client.create_order(req(settled, "4", "0.50"))
    ex.settle(settled, "0.37")
    batch = await client.batch_create_orders([req(t1, "1", "0.11"), req(t1, "1", "0.12")])
    await client.amend_order(rested.order_id, ticker=t0, side=Side.YES, action=Action.BUY, price=Decimal("0.43"),
                             count=Decimal("6"), updated_client_order_id=new_client_order_id("oa"))
    await client.decrease_order(rested.order_id, reduce_by=Decimal("1"))
    await client.decrease_order(rested.order_id, reduce_to=Decimal("2"))
    await client.get_market(t0)
    await client.get_orderbook(t0, depth=3)
    await client.get_trades(ticker=t0, min_ts=now_s - 60, max_ts=now_s + 60, limit=10)
    candles = await client.get_candlesticks(ex.series_ticker, t0, start_ts=now_s - 3600, end_ts=now_s + 120,
                                            period_interval=1)
    assert candles
    await client.get_order(rested.order_id)
    await client.get_orders(ticker=t0, event_ticker=ex.event_ticker, status="resting", min_ts=now_s - 60,
                            max_ts=now_s + 60, limit=10)
    await client.get_balance()
    positions = await client.get_positions(ticker=t0, event_ticker=ex.event_ticker, count_filter="position",
                                           limit=10)
    assert positions.market_positions and positions.event_positions
    assert (await client.get_fills(ticker=t0, min_ts=now_s - 60, max_ts=now_s + 60, limit=10)).items
    assert (await client.get_settlements(ticker=settled, limit=10)).items
    await client.cancel_order(rested.order_id)
    await client.batch_cancel_orders([r.order.order_id for r in batch if r.order is not None])


def test_what_our_client_sends_and_reads_is_in_the_spec(openapi: OpenApiSpec,
                                                        local_exchange: LocalExchange) -> None:
    """Paths, query parameters and request bodies (create, batched, amend, decrease, batch cancel) as our
    client puts them on the wire are the spec's; and every client call works on answers cut down to the
    fields the spec declares (no dependence on the exchange's legacy extras)."""
    transport = SpecOnlyTransport(openapi)
    signer = KalshiSigner.from_files(local_exchange.key_id, local_exchange.private_key_path)
    client = AsyncKalshiClient(resolve_environment("local", local_exchange.base_url), signer=signer,
                               rate_limits="unlimited", transport=transport,
                               retry=RetryPolicy(max_retries=0, lookup_attempts=1, lookup_delay=0.01))

    async def run() -> None:
        async with client:
            await _drive_client(local_exchange, client)

    asyncio.run(run())
    problems: list[str] = []
    with_body = set()
    for method, path, query, body in transport.sent:
        assert path.startswith(API_PREFIX), path
        template = openapi.template_of(method, path[len(API_PREFIX):])
        if template is None:
            problems.append(f"{method} {path}: no such path/method in the spec")
            continue
        problems += _query_problems(openapi, method, template, query)
        if body is not None:
            with_body.add((method, template))
            problems += openapi.problems(openapi.request_schema(method, template), body,
                                         f"request {method} {template} <-")
    assert not problems, "\n".join(problems)
    assert {("Market", "yes_bid"), ("Order", "fill_count"), ("Fill", "count")} <= transport.stripped
    assert with_body >= {("POST", "/portfolio/orders"), ("POST", "/portfolio/orders/batched"),
                         ("DELETE", "/portfolio/orders/batched"), ("POST", "/portfolio/orders/{order_id}/amend"),
                         ("POST", "/portfolio/orders/{order_id}/decrease")}


@pytest.mark.parametrize("order_type, tif", [(OrderType.LIMIT, None), (OrderType.MARKET, None),
                                             (OrderType.MARKET, TimeInForce.FILL_OR_KILL),
                                             (OrderType.LIMIT, TimeInForce.IMMEDIATE_OR_CANCEL)])
def test_order_body_fits_create_order_request(openapi: OpenApiSpec, order_type: OrderType,
                                              tif: TimeInForce | None) -> None:
    """v3.13 has no `type` on CreateOrderRequest (Kalshi removed it with market orders): a market order goes out
    as a limit at its price that never rests (immediate_or_cancel unless another time in force is given)."""
    req = OrderRequest(ticker="KXA-1", side=Side.NO, action=Action.SELL, count=Decimal("3"), price=Decimal("0.6"),
                       client_order_id="cid-1", type=order_type, time_in_force=tif)
    body = order_body(req)
    assert not openapi.problems(openapi.request_schema("POST", "/portfolio/orders"), body, "CreateOrderRequest")
    expected_tif = tif.value if tif else ("immediate_or_cancel" if order_type is OrderType.MARKET else None)
    assert body.get("time_in_force") == expected_tif
    assert body["no_price_dollars"] == "0.6000" and body["count_fp"] == "3.00" and body["count"] == 3


def _client_calls() -> dict[tuple[str, str], set[str]]:
    """(method, path template) -> query parameter names, for every request in precog.venues.kalshi.client."""
    tree = ast.parse(inspect.getsource(kalshi_client_module))
    out: dict[tuple[str, str], set[str]] = {}

    def path_of(node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        assert isinstance(node, ast.JoinedStr), ast.dump(node)
        return "".join(v.value if isinstance(v, ast.Constant) else "{x}" for v in node.values)  # type: ignore[misc]

    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"):
            continue
        if node.func.attr == "_get" and node.args and not isinstance(node.args[0], ast.Name):
            query = {k.arg for k in node.keywords if k.arg and k.arg != "auth"}
            out.setdefault(("GET", path_of(node.args[0])), set()).update(query)
        elif node.func.attr == "request" and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant):
            if not isinstance(node.args[1], ast.Name):
                assert not any(k.arg == "params" for k in node.keywords), "teach _client_calls about params="
                out.setdefault((str(node.args[0].value), path_of(node.args[1])), set())
    return out


def test_every_path_and_query_parameter_our_client_uses_is_in_the_spec(openapi: OpenApiSpec) -> None:
    calls = _client_calls()
    assert len(calls) >= 20, calls  # the parser found the client's requests
    problems = []
    for (method, path), query in sorted(calls.items()):
        template = openapi.template_of(method, path)
        if template is None:
            problems.append(f"{method} {path}: not in the spec")
            continue
        declared = openapi.query_parameters(method, template)
        problems += [f"{method} {template}: query parameter {q!r} is not in the spec"
                     for q in sorted(query - set(declared))]
    assert not problems, "\n".join(problems)


def test_allow_list_names_only_fields_the_spec_lacks(openapi: OpenApiSpec) -> None:
    """An allow-list entry the spec now declares (or whose schema is gone) is stale: drop it."""
    import kalshi_python_sync.models as sdk_models

    for (owner, name), reason in UNDECLARED_ALLOWED.items():
        assert owner in openapi.schemas, owner
        assert name not in openapi.schemas[owner].get("properties", {}), (owner, name)
        if reason == SDK_320:  # the reason is checked: the SDK's model of that name has the field
            assert name in getattr(sdk_models, owner).model_fields, (owner, name)


def test_the_checker_catches_what_it_must(openapi: OpenApiSpec) -> None:
    """The machinery itself: an old status word, a null where none is allowed, a missing required field, a
    bad date-time and an undeclared field are all reported; `nullable` beside `$ref`/`allOf` admits null."""
    market = {"market": {"ticker": "X", "status": "settled", "yes_bid_dollars": None, "close_time": "yesterday",
                         "made_up_field": 1}}
    found = "\n".join(openapi.problems({"$ref": "#/components/schemas/GetMarketResponse"}, market, "m"))
    for needle in ("'settled' is not one of", "market/yes_bid_dollars: None is not of type 'string'",
                   "'event_ticker' is a required property", "is not a 'date-time'", "Market.made_up_field"):
        assert needle in found, (needle, found)
    row = {"client_order_id": None, "order": None, "error": None}
    assert not openapi.problems({"$ref": "#/components/schemas/BatchCreateOrdersIndividualResponse"}, row, "b")
    candle_price = {"open_dollars": None, "previous_dollars": "0.4200"}
    assert not openapi.problems({"$ref": "#/components/schemas/PriceDistribution"}, candle_price, "p")
