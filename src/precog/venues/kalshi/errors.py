"""Errors of the Kalshi venue. Each message is one readable line and never contains key material."""

from __future__ import annotations

from typing import Any


class KalshiError(Exception):
    """Base of every Kalshi venue error."""


class KalshiConfigError(KalshiError):
    """Credentials or environment are missing or unusable (wrong key file, unknown env ...)."""


class KalshiSchemaError(KalshiError):
    """A payload did not have the shape we rely on; names the field so drift is obvious."""

    def __init__(self, field: str, problem: str, *, kind: str = "payload") -> None:
        self.field = field
        self.problem = problem
        self.kind = kind
        super().__init__(f"Kalshi {kind}: field {field!r} {problem}")


class KalshiTransportError(KalshiError):
    """The request could not be completed (connection refused, timeout) after all retries."""


class KalshiAPIError(KalshiError):
    """The venue answered with an error status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "",
        details: str = "",
        method: str = "",
        path: str = "",
        hint: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.method = method
        self.path = path
        self.hint = hint
        where = f" {method} {path}" if method else ""
        what = f"{code}: {message}" if code and code not in message else message
        extra = f" ({details})" if details and details not in message else ""
        tail = f" — {hint}" if hint else ""
        super().__init__(f"Kalshi HTTP {status}{where}: {what}{extra}{tail}")

    @classmethod
    def from_response(
        cls, status: int, body: Any, *, method: str, path: str, hint: str = ""
    ) -> KalshiAPIError:
        code = message = details = ""
        if isinstance(body, dict):
            nested = body.get("error")
            err: dict[str, Any] = nested if isinstance(nested, dict) else body
            code = str(err.get("code") or "")
            message = str(err.get("message") or err.get("msg") or "")
            details = str(err.get("details") or "")
        elif isinstance(body, str):
            message = body.strip()[:200]
        if not message:
            message = _REASONS.get(status, "error")
        klass = _CLASS_BY_STATUS.get(status)
        if klass is None:
            klass = KalshiServerError if status >= 500 else KalshiAPIError
        return klass(status, message, code=code, details=details, method=method, path=path, hint=hint)


class KalshiBadRequest(KalshiAPIError):
    """400: the venue rejected the request (e.g. an order it will not accept)."""


class KalshiUnauthorized(KalshiAPIError):
    """401: signature or key rejected."""


class KalshiForbidden(KalshiAPIError):
    pass


class KalshiNotFound(KalshiAPIError):
    pass


class KalshiConflict(KalshiAPIError):
    """409: e.g. an order with this client_order_id already exists."""


class KalshiRateLimited(KalshiAPIError):
    """429 after every retry was used."""


class KalshiServerError(KalshiAPIError):
    """5xx after every retry was used."""


class OrderOutcomeUnknown(KalshiError):
    """An order was sent but we could not learn whether the venue accepted it, even by looking it up."""

    def __init__(self, client_order_id: str, reason: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(
            f"order {client_order_id}: outcome unknown ({reason}); it was NOT re-sent — check "
            "`precog kalshi orders` before retrying"
        )


_CLASS_BY_STATUS: dict[int, type[KalshiAPIError]] = {
    400: KalshiBadRequest,
    401: KalshiUnauthorized,
    403: KalshiForbidden,
    404: KalshiNotFound,
    409: KalshiConflict,
    429: KalshiRateLimited,
}

_REASONS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    429: "rate limited",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
