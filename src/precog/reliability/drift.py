"""Schema drift injection: an httpx transport that renames or removes fields in the venue's JSON responses.

    transport = DriftTransport(httpx.AsyncHTTPTransport(), rename={"yes_bid_dollars": "yes_bid_price"})
    client = AsyncKalshiClient(env, transport=transport)

Every object at any depth of a JSON response has the named keys renamed/removed, exactly as a venue that
changed its API under us would send it. `rewritten` counts the responses that were changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import httpx


def _rewrite(node: Any, rename: Mapping[str, str], drop: frozenset[str]) -> tuple[Any, bool]:
    changed = False
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            value, sub = _rewrite(value, rename, drop)
            changed |= sub
            if key in drop:
                changed = True
                continue
            if key in rename:
                changed = True
                key = rename[key]
            out[key] = value
        return out, changed
    if isinstance(node, list):
        items = []
        for value in node:
            value, sub = _rewrite(value, rename, drop)
            changed |= sub
            items.append(value)
        return items, changed
    return node, False


class DriftTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, *, rename: Mapping[str, str] | None = None,
                 drop: Iterable[str] = ()) -> None:
        self.inner = inner
        self.rename = dict(rename or {})
        self.drop = frozenset(drop)
        self.rewritten = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        try:
            doc = json.loads(body, parse_float=Decimal)
        except ValueError:
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        doc, changed = _rewrite(doc, self.rename, self.drop)
        if changed:
            self.rewritten += 1
            body = json.dumps(doc, default=str).encode()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-length",
                                                                                      "content-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()
