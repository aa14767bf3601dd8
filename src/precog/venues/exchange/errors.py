"""Errors the local exchange returns, each carrying Kalshi's HTTP status and error code.

Kalshi's error body is `{"error": {"code": ..., "message": ..., "details": ..., "service": ...}}`;
`ExchangeError.body()` renders exactly that, so the engine and the HTTP layer agree on one shape.
"""

from __future__ import annotations

from typing import Any


class ExchangeError(Exception):
    """A request the exchange refuses. `status` is the HTTP status Kalshi would send."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "service": "precog-exchange"}
        if self.details:
            err["details"] = self.details
        return {"error": err}


class InvalidRequest(ExchangeError):
    status = 400
    code = "invalid_parameters"


class InvalidOrder(ExchangeError):
    status = 400
    code = "invalid_order"


class InsufficientBalance(ExchangeError):
    status = 400
    code = "insufficient_balance"


class MarketNotOpen(ExchangeError):
    status = 400
    code = "market_closed"


class NotFound(ExchangeError):
    status = 404
    code = "not_found"


class Conflict(ExchangeError):
    status = 409
    code = "order_already_exists"


class Unauthorized(ExchangeError):
    status = 401
    code = "authentication_error"


class Forbidden(ExchangeError):
    status = 403
    code = "forbidden"
