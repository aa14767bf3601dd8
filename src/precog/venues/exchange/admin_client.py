"""A small client for the exchange's `/sim/` admin API (tests, the demo, scripted scenarios over HTTP)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx


class SimAdminError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        super().__init__(f"/sim request failed ({status}): {message or body}")
        self.status = status
        self.body = body


def _money(value: Decimal | str | int) -> str:
    if isinstance(value, float):
        raise TypeError("money must be a Decimal, str or int, not float")
    return str(value)


class SimAdminClient:
    """`admin = SimAdminClient("http://127.0.0.1:PORT")` — create markets, trade as others, settle, inject faults."""

    def __init__(self, root_url: str, *, admin_token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"X-Sim-Admin-Token": admin_token} if admin_token else {}
        self._http = httpx.Client(base_url=root_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SimAdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, f"/sim{path}", json=body)
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            raise SimAdminError(response.status_code, data)
        return data

    # catalogue
    def create_market(self, ticker: str, *, event_ticker: str | None = None, series_ticker: str | None = None,
                      title: str = "", status: str | None = None, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"ticker": ticker, "title": title, **fields}
        if event_ticker:
            body["event_ticker"] = event_ticker
        if series_ticker:
            body["series_ticker"] = series_ticker
        if status:
            body["status"] = status
        return self._call("POST", "/markets", body)["market"]  # type: ignore[no-any-return]

    def create_series(self, ticker: str, title: str = "", **fields: Any) -> dict[str, Any]:
        return self._call("POST", "/series", {"ticker": ticker, "title": title or ticker, **fields})["series"]  # type: ignore[no-any-return]

    def create_event(self, event_ticker: str, series_ticker: str, title: str = "", **fields: Any) -> dict[str, Any]:
        return self._call("POST", "/events", {"event_ticker": event_ticker, "series_ticker": series_ticker,  # type: ignore[no-any-return]
                                             "title": title or event_ticker, **fields})["event"]

    # participants
    def create_account(self, balance: Decimal | str | int = "0", *, user_id: str | None = None,
                       public_key_pem: str | None = None, key_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"balance": _money(balance)}
        if user_id:
            body["user_id"] = user_id
        if public_key_pem:
            body["public_key_pem"] = public_key_pem
        if key_id:
            body["key_id"] = key_id
        return self._call("POST", "/accounts", body)  # type: ignore[no-any-return]

    def deposit(self, user_id: str, amount: Decimal | str | int) -> dict[str, Any]:
        return self._call("POST", f"/accounts/{user_id}/deposit", {"amount": _money(amount)})  # type: ignore[no-any-return]

    def account(self, user_id: str) -> dict[str, Any]:
        return self._call("GET", f"/accounts/{user_id}")  # type: ignore[no-any-return]

    def place_order(self, user_id: str, ticker: str, side: str, action: str, count: int, *,
                    price_dollars: Decimal | str | None = None, **fields: Any) -> dict[str, Any]:
        """Place an order as `user_id` (a counterparty). `price_dollars` is the price of `side`."""
        body: dict[str, Any] = {"user_id": user_id, "ticker": ticker, "side": side, "action": action,
                                "count": count, **fields}
        if price_dollars is not None:
            body[f"{side}_price_dollars"] = _money(price_dollars)
        return self._call("POST", "/orders", body)["order"]  # type: ignore[no-any-return]

    def cancel_order(self, order_id: str) -> dict[str, Any]:
        return self._call("POST", f"/orders/{order_id}/cancel")  # type: ignore[no-any-return]

    # time and lifecycle
    def advance_clock(self, seconds: float) -> int:
        return int(self._call("POST", "/clock", {"advance_seconds": seconds})["now_ms"])

    def now_ms(self) -> int:
        return int(self._call("GET", "/clock")["now_ms"])

    def set_status(self, ticker: str, status: str) -> dict[str, Any]:
        return self._call("POST", f"/markets/{ticker}/status", {"status": status})["market"]  # type: ignore[no-any-return]

    def close_market(self, ticker: str) -> dict[str, Any]:
        return self.set_status(ticker, "closed")

    def determine(self, ticker: str, settlement_value: Decimal | str) -> dict[str, Any]:
        return self._call("POST", f"/markets/{ticker}/determine",  # type: ignore[no-any-return]
                          {"settlement_value": _money(settlement_value)})["market"]

    def settle(self, ticker: str, settlement_value: Decimal | str | None = None, *,
               result: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if settlement_value is not None:
            body["settlement_value"] = _money(settlement_value)
        if result is not None:
            body["result"] = result
        return self._call("POST", f"/markets/{ticker}/settle", body)["market"]  # type: ignore[no-any-return]

    def set_trading(self, active: bool) -> None:
        self._call("POST", "/trading", {"active": active})

    # faults
    def fail_next(self, count: int = 1, *, status: int = 503, retry_after: float | None = None,
                  path_prefix: str = "", method: str | None = None) -> dict[str, Any]:
        """The next `count` REST requests (matching the prefix/method) get `status` (429 with Retry-After ...)."""
        body: dict[str, Any] = {"kind": "error", "status": status, "count": count, "path_prefix": path_prefix}
        if retry_after is not None:
            body["retry_after"] = retry_after
        if method:
            body["method"] = method
        return self._call("POST", "/faults", body)  # type: ignore[no-any-return]

    def delay_next(self, seconds: float, count: int = 1, *, path_prefix: str = "") -> dict[str, Any]:
        return self._call("POST", "/faults", {"kind": "delay", "seconds": seconds, "count": count,  # type: ignore[no-any-return]
                                              "path_prefix": path_prefix})

    def drop_next_order_response(self, count: int = 1) -> dict[str, Any]:
        """The next order create is executed but its HTTP response is lost (connection cut)."""
        return self._call("POST", "/faults", {"kind": "drop_order_response", "count": count})  # type: ignore[no-any-return]

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")  # type: ignore[no-any-return]

    def drop_websockets(self, *, mode: str = "abort") -> int:
        return int(self._call("POST", "/ws/drop", {"mode": mode})["dropped"])

    def skip_ws_seq(self, count: int = 1) -> int:
        return int(self._call("POST", "/ws/skip_seq", {"count": count})["connections"])

    def audit(self) -> dict[str, str]:
        return self._call("GET", "/audit")  # type: ignore[no-any-return]
