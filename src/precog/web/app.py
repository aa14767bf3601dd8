"""The dashboard web application: JSON API + server-sent events + the single-page UI (static files).

`create_app(settings)` builds a FastAPI app over the engine's PostgreSQL database. GET endpoints are open to
whoever reaches the server (bound to 127.0.0.1 by default); every POST needs the dashboard token as
`Authorization: Bearer ...` (401 without it, 403 with a wrong one) and changes nothing otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from precog.alerts.model import AlertError, AlertNotFound, IllegalTransition
from precog.db.connection import DatabaseUnavailable, make_pool
from precog.domain.jsonutil import dumps
from precog.forecast.errors import ForecastError
from precog.trading import trading_state
from precog.trading.breakers import SPECS, mode_of
from precog.trading.drawdown import DrawdownRule
from precog.trading.exits import ExitRules
from precog.trading.methods import ActivationRules, MethodError, rules_from_config
from precog.trading.settings import TradingSettings
from precog.trading.strategies import StrategyActivationRules, StrategyError
from precog.trading.trading_state import TradingMode, worst
from precog.trading.var import VarRule
from precog.web import controls, queries
from precog.web.auth import DashboardToken, bearer_of
from precog.web.live import ChangeFeed

log = logging.getLogger("precog.web")
access_log = logging.getLogger("precog.web.access")

STATIC_DIR = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass
class DashboardSettings:
    db_url: str
    token: DashboardToken
    host: str = "127.0.0.1"
    mode: str | None = None  # paper | live | backtest | None (all)
    poll_seconds: float = 1.0
    timezone: str = "America/New_York"
    environment: str | None = None
    freshness: queries.Freshness = field(default_factory=queries.Freshness)
    exit_rules: ExitRules | None = None
    trading_settings: TradingSettings = field(default_factory=TradingSettings)
    method_activation: ActivationRules | None = None
    strategy_activation: StrategyActivationRules | None = None
    # system.yaml database: the pool's sizes, how long a request waits for a connection before a 503, and the
    # sessions' statement timeout
    pool_min: int = 1
    pool_max: int = 8
    pool_timeout: float = 10.0
    statement_timeout_ms: int = 60_000
    # trading.yaml alerts: the risk card's value-at-risk confidence and drawdown peak window (as the engine's alerts)
    var_rule: VarRule = field(default_factory=lambda: VarRule(Decimal("0.10"), Decimal("0.95")))
    drawdown_rule: DrawdownRule = field(default_factory=lambda: DrawdownRule(Decimal("0.15"), timedelta(days=30)))

    @classmethod
    def from_config(cls, db_url: str, token: DashboardToken, *, host: str = "127.0.0.1", mode: str | None = None,
                    poll_seconds: float = 1.0) -> DashboardSettings:
        """Thresholds, time zone and exit rules from the same configuration the engine uses."""
        from precog.config.loader import load_config

        cfg = load_config(db_url=db_url)
        trading = TradingSettings.from_config(cfg)
        fresh = queries.Freshness(max_price_age_seconds=trading.max_price_age_seconds,
                                  max_game_state_age_seconds=trading.max_game_state_age_seconds,
                                  max_feed_age_seconds=max(trading.max_price_age_seconds, 60))
        return cls(db_url=db_url, token=token, host=host, mode=mode, poll_seconds=poll_seconds,
                   timezone=str(cfg.get("system.defaults.timezone", "America/New_York")),
                   environment=str(cfg.get("system.environment.active", "")) or None, freshness=fresh,
                   exit_rules=ExitRules.from_config(cfg.section("position_management"),
                                                    cfg.section("trade_strategies").get("hedge_strategy")),
                   trading_settings=trading, method_activation=rules_from_config(cfg)[0],
                   strategy_activation=StrategyActivationRules.from_config(cfg),
                   pool_min=int(cfg.get("system.database.pool_min_size")),
                   pool_max=int(cfg.get("system.database.pool_max_size")),
                   pool_timeout=float(cfg.get("system.database.pool_timeout_seconds")),
                   statement_timeout_ms=int(cfg.get("system.database.statement_timeout_ms")),
                   var_rule=VarRule.from_config(cfg.section("trading")),
                   drawdown_rule=DrawdownRule.from_config(cfg.section("trading")))

    def allowed_hosts(self) -> list[str]:
        """Host headers the server answers (DNS-rebinding guard): loopback names, plus the bound host."""
        if self.host in ("0.0.0.0", "::", ""):  # noqa: S104 - the operator asked for every interface
            return ["*"]
        return sorted({*LOOPBACK_HOSTS, self.host})


class JSONResponse(Response):
    """JSON with Decimals as exact strings and datetimes as ISO-8601."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


# Actions other writers store in circuit_breaker_events, as the breaker board's action names.
_ACTION_ALIASES = {"close_all_positions": "close_all", "pause": "pause_entries", "halt_trading": "halt"}


def effective_mode(open_breakers: list[dict[str, Any]]) -> tuple[TradingMode, bool, list[str]]:
    """The state the open breakers impose (the breaker board's rule), with the names that block entries."""
    mode, liquidate, blocking = TradingMode.ACTIVE, False, []
    for b in open_breakers:
        action = _ACTION_ALIASES.get(b["action"] or "", b["action"] or "")
        if action not in ("close_all", "halt", "pause_all", "pause_entries", "alert"):
            spec = SPECS.get(b["breaker_type"])
            action = spec.action if spec is not None else "halt"
        m, liq = mode_of(action)
        if m is not TradingMode.ACTIVE and b["breaker_type"] not in blocking:
            blocking.append(b["breaker_type"])
        mode = worst(mode, m)
        liquidate = liquidate or liq
    return mode, liquidate, sorted(blocking)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# ---------------------------------------------------------------- request bodies

class AckBody(BaseModel):
    by: str = Field("dashboard", max_length=100)
    notes: str | None = Field(None, max_length=2000)


class ResolveBody(BaseModel):
    by: str = Field("dashboard", max_length=100)
    action: str = Field("fixed", max_length=20)
    notes: str | None = Field(None, max_length=2000)


class SilenceBody(BaseModel):
    by: str = Field("dashboard", max_length=100)
    duration: str = Field("1h", max_length=20)
    comment: str = Field(..., max_length=2000)
    match: list[str] = Field(default_factory=lambda: ["type", "component"], max_length=3)


class HaltBody(BaseModel):
    by: str = Field("dashboard", max_length=100)
    reason: str = Field(..., min_length=1, max_length=500)


class ResetBody(BaseModel):
    by: str = Field("dashboard", max_length=100)
    notes: str = Field("reset from the dashboard", min_length=1, max_length=500)


class ResumeBody(ResetBody):
    reset_all: bool = False  # also reset every other open breaker (`precog resume --all`)


class TransitionBody(BaseModel):
    by: str = Field("dashboard", max_length=100)
    target: str = Field(..., max_length=20)
    reason: str | None = Field(None, max_length=500)


ApprovalId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]  # a BIGSERIAL: larger is a 422, not a database error


class ApprovalBody(BaseModel):
    by: str = Field(..., max_length=100)  # a person answers an entry approval: no default name
    reason: str | None = Field(None, max_length=1000)


def _who(by: str) -> str:
    by = " ".join(by.split())  # one line: it goes into logs and audit columns
    if not by:
        raise HTTPException(422, "by: say who is doing this")
    return by


# ---------------------------------------------------------------- the app

def create_app(settings: DashboardSettings) -> FastAPI:
    pool_holder: dict[str, Any] = {}
    alert_holder: dict[str, Any] = {}
    rules = settings.exit_rules or ExitRules.from_config({})
    tz = ZoneInfo(settings.timezone)

    pool_lock = threading.Lock()

    def pool() -> Any:
        with pool_lock:  # request threads and the change poller may ask at once
            if "pool" not in pool_holder:
                pool_holder["pool"] = make_pool(settings.db_url, min_size=settings.pool_min, max_size=settings.pool_max,
                                                timeout=settings.pool_timeout,
                                                statement_timeout_ms=settings.statement_timeout_ms)
            return pool_holder["pool"]

    def connect() -> Any:
        return pool().connection()

    def read_markers() -> dict[str, Any]:
        with connect() as conn:
            return queries.change_markers(conn)

    feed = ChangeFeed(read_markers, interval=settings.poll_seconds)

    def alert_raiser() -> Any:
        """The real AlertManager, created on first need (a manual halt raises a critical alert)."""
        with pool_lock:
            if "manager" not in alert_holder:
                from precog.alerts.manager import AlertManager

                alert_holder["manager"] = AlertManager(settings.db_url, replay_spool=False)
            return alert_holder["manager"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed.start()
        try:
            yield
        finally:
            await feed.close()
            if "manager" in alert_holder:
                alert_holder["manager"].close()
            if "pool" in pool_holder:
                pool_holder["pool"].close()

    app = FastAPI(title="Precog dashboard", lifespan=lifespan, default_response_class=JSONResponse,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.feed = feed
    app.state.settings = settings
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts())

    @app.middleware("http")
    async def headers_and_access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        # Every state-changing request needs the token, checked before the body is even read.
        refusal = None if request.method in SAFE_METHODS else token_refusal(request)
        response = refusal if refusal is not None else await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        # The path only: never the query string (it may carry ?token=) nor any header.
        access_log.info("%s %s %d %.1fms", request.method, request.url.path, response.status_code,
                        (time.perf_counter() - started) * 1000)
        return response

    # ------------------------------------------------------------ errors as one readable line
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":  # its loc is ("body", <character offset>): say what is wrong
            why = (first.get("ctx") or {}).get("error")
            return _error(422, "request body is not valid JSON" + (f" ({why})" if why else "")
                          + ": send a JSON object")
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return _error(422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    for exc_type, status in ((queries.QueryError, 422), (AlertError, 422), (controls.ControlError, 409),
                             (IllegalTransition, 409), (ForecastError, 409), (MethodError, 409), (StrategyError, 409), (AlertNotFound, 404),
                             (controls.NotFound, 404), (DatabaseUnavailable, 503)):
        def handler(request: Request, exc: Exception, _status: int = status) -> Response:
            return _error(_status, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

        app.add_exception_handler(exc_type, handler)

    async def database_down(request: Request, exc: Exception) -> Response:
        log.error("dashboard: database error on %s %s: %s", request.method, request.url.path,
                  str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return _error(503, "the database is not reachable right now (details in the dashboard's log)")

    for db_error in (psycopg.OperationalError, PoolTimeout):
        app.add_exception_handler(db_error, database_down)

    # ------------------------------------------------------------ auth
    def token_refusal(request: Request) -> Response | None:
        """None when the request carries the right token; else the 401/403 answer."""
        presented = bearer_of(request.headers.get("authorization"))
        if presented is None:
            return _error(401, "this action needs the dashboard token (Authorization: Bearer ...)",
                          {"WWW-Authenticate": 'Bearer realm="precog-dashboard"'})
        if not settings.token.matches(presented):
            log.warning("dashboard: refused %s %s: wrong token", request.method, request.url.path)
            return _error(403, "the dashboard token is wrong")
        return None

    def require_token(request: Request) -> None:
        """The same rule again on each write route (in case a route is ever mounted outside the middleware)."""
        refusal = token_refusal(request)
        if refusal is not None:
            raise HTTPException(refusal.status_code, json.loads(bytes(refusal.body))["error"],
                                headers={k: v for k, v in refusal.headers.items() if k == "www-authenticate"})

    write = [Depends(require_token)]

    def audit(request: Request, what: str, by: str) -> None:
        # `by` one line, as stored (_who): a name with line breaks cannot forge log lines
        log.info("dashboard: %s by %s (%s)", what, " ".join(by.split()), request.client.host if request.client else "?")
        feed.nudge()

    # ------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ------------------------------------------------------------ read API
    def now() -> datetime:
        return datetime.now(UTC)

    def state_of(conn: Any) -> dict[str, Any]:
        """The effective trading state: what the open breakers impose (as the breaker board computes it),
        made worse by a running engine's own state; the recorded state changes come along as history."""
        run = queries.latest_run(conn)
        history = trading_state.history(conn, 20)
        mode, liquidate, blocking = effective_mode(queries.breakers(conn, open_only=True))
        reason = f"open breakers: {', '.join(blocking)}" if blocking else "no open breaker"
        changed_by, changed_at = "system", None
        if run is not None and run["ended_at"] is None and run["trading_state"] in TradingMode.__members__:
            engine_mode = TradingMode(run["trading_state"])
            if worst(mode, engine_mode) is not mode:
                mode = engine_mode
                reason = f"engine run {run['run_id']}: {run['state_reason'] or engine_mode.value}"
        if history and history[0].mode is mode:
            reason, changed_by, changed_at = history[0].reason, history[0].changed_by, history[0].changed_at
        current = {"mode": mode.value, "liquidate": liquidate, "reason": reason, "changed_by": changed_by,
                   "changed_at": changed_at, "blocking": blocking}
        return {"current": current, "history": [h.as_dict() for h in history], "engine": run}

    @app.get("/api/overview")
    def overview() -> Any:
        t = now()
        with connect() as conn:
            return {
                "now": t,
                "mode_filter": settings.mode,
                "timezone": settings.timezone,
                "balances": queries.balances(conn, mode=settings.mode),
                "pnl": queries.pnl_summary(conn, mode=settings.mode, day_start=queries.day_start(t, tz)),
                "trading_state": state_of(conn),
                "breakers": queries.breakers(conn, open_only=True),
                "feeds": queries.feeds(conn, t, settings.freshness),
                "health": queries.health(conn, t),
                "alerts": queries.alert_counts(conn),
                "risk": queries.risk(conn, mode=settings.mode, var_rule=settings.var_rule,
                                     drawdown_rule=settings.drawdown_rule, now=t),
                "approvals": queries.approval_counts(conn),
            }

    @app.get("/api/positions")
    def positions(limit: int = 200) -> Any:
        t = now()
        with connect() as conn:
            return {"now": t,
                    "open": queries.open_positions(conn, mode=settings.mode, rules=rules, now=t),
                    "closed": queries.closed_positions(conn, mode=settings.mode, limit=max(1, min(limit, 2000)))}

    @app.get("/api/edges")
    def edges(market: str | None = None, side: str | None = None, min_ev: str | None = None,
              confidence: str | None = None, action: str | None = None, method: str | None = None,
              sort: str = "ev", limit: int = 300) -> Any:
        with connect() as conn:
            rows = queries.edges(conn, market=market, side=side or None, min_ev=min_ev, confidence=confidence or None,
                                 action=action or None, method=method, sort=sort, limit=limit)
        return {"edges": rows}

    @app.get("/api/trades")
    def trades(limit: int = 200) -> Any:
        with connect() as conn:
            return {"trades": queries.trades(conn, mode=settings.mode, limit=limit)}

    @app.get("/api/pnl")
    def pnl() -> Any:
        t = now()
        with connect() as conn:
            return {"now": t, "timezone": settings.timezone,
                    "summary": queries.pnl_summary(conn, mode=settings.mode, day_start=queries.day_start(t, tz)),
                    "realized_curve": queries.realized_curve(conn, mode=settings.mode),
                    "equity_curve": queries.equity_curve(conn, mode=settings.mode),
                    "by": queries.pnl_breakdown(conn, mode=settings.mode)}

    @app.get("/api/methods")
    def methods() -> Any:
        with connect() as conn:
            return {"methods": queries.methods(conn, mode=settings.mode),
                    "strategies": queries.strategies(conn, mode=settings.mode),
                    "models": queries.models(conn, mode=settings.mode)}

    @app.get("/api/alerts")
    def alerts(state: str = "open", severity: str | None = None, limit: int = 300) -> Any:
        with connect() as conn:
            return {"alerts": queries.alerts(conn, state=state, severity=severity or None, limit=limit),
                    "silences": queries.silences(conn)}

    @app.get("/api/controls")
    def controls_state() -> Any:
        with connect() as conn:
            return {"trading_state": state_of(conn),
                    "open_breakers": queries.breakers(conn, open_only=True),
                    "recent_breakers": queries.breakers(conn, open_only=False, limit=50)}

    @app.get("/api/approvals")
    def approvals(everything: bool = Query(False, alias="all"), limit: int = 200) -> Any:
        # every mode: an entry waiting for an answer is never hidden by --mode
        with connect() as conn:
            return {"now": now(), "approvals": queries.approvals(conn, everything=everything, limit=limit)}

    @app.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        return StreamingResponse(feed.stream(request.is_disconnected), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------ write API (token required)
    @app.post("/api/auth/check", dependencies=write, status_code=204)
    def auth_check() -> Response:
        return Response(status_code=204)

    @app.post("/api/alerts/{alert_id}/acknowledge", dependencies=write)
    def acknowledge(alert_id: int, body: AckBody, request: Request) -> Any:
        rec = controls.acknowledge_alert(connect, alert_id, _who(body.by), body.notes)
        audit(request, f"acknowledged alert {alert_id}", body.by)
        return {"alert": rec.as_dict()}

    @app.post("/api/alerts/{alert_id}/resolve", dependencies=write)
    def resolve(alert_id: int, body: ResolveBody, request: Request) -> Any:
        rec = controls.resolve_alert(connect, alert_id, _who(body.by), body.action, body.notes)
        audit(request, f"resolved alert {alert_id} ({body.action})", body.by)
        return {"alert": rec.as_dict()}

    @app.post("/api/alerts/{alert_id}/silence", dependencies=write)
    def silence(alert_id: int, body: SilenceBody, request: Request) -> Any:
        sil = controls.silence_alert(connect, alert_id, _who(body.by), body.duration, body.comment,
                                     tuple(body.match))
        audit(request, f"silenced alerts like {alert_id} for {body.duration}", body.by)
        return {"silence": sil.as_dict(now())}

    @app.post("/api/silences/{silence_id}/expire", dependencies=write)
    def expire(silence_id: int, body: AckBody, request: Request) -> Any:
        sil = controls.expire_silence(connect, silence_id, _who(body.by))
        audit(request, f"expired silence {silence_id}", body.by)
        return {"silence": sil.as_dict(now())}

    @app.post("/api/trading/halt", dependencies=write)
    def halt(body: HaltBody, request: Request) -> Any:
        snap = controls.halt(connect, settings.trading_settings, settings.environment, alert_raiser(),
                             by=_who(body.by), reason=body.reason)
        audit(request, "halted trading", body.by)
        return {"trading_state": snap.as_dict()}

    @app.post("/api/trading/resume", dependencies=write)
    def resume(body: ResumeBody, request: Request) -> Any:
        snap, done = controls.resume(connect, settings.trading_settings, settings.environment, by=_who(body.by),
                                     notes=body.notes, reset_all=body.reset_all)
        audit(request, f"resumed trading (reset {', '.join(done)})", body.by)
        return {"trading_state": snap.as_dict(), "reset": done}

    @app.post("/api/breakers/{name}/reset", dependencies=write)
    def reset_breaker(name: str, body: ResetBody, request: Request) -> Any:
        snap = controls.reset_breaker(connect, settings.trading_settings, settings.environment, name,
                                      by=_who(body.by), notes=body.notes)
        audit(request, f"reset breaker {name}", body.by)
        return {"trading_state": snap.as_dict()}

    @app.post("/api/models/{model_id}/transition", dependencies=write)
    def model_transition(model_id: int, body: TransitionBody, request: Request) -> Any:
        result = controls.transition_model(connect, model_id, body.target, by=_who(body.by), reason=body.reason)
        audit(request, f"model {model_id} -> {body.target}", body.by)
        return {"model": result}

    @app.post("/api/methods/{method_id}/transition", dependencies=write)
    def method_transition(method_id: int, body: TransitionBody, request: Request) -> Any:
        result = controls.transition_method(connect, method_id, body.target, by=_who(body.by), reason=body.reason,
                                            activation=settings.method_activation)
        audit(request, f"method {method_id} -> {body.target}", body.by)
        return {"method": result}

    @app.post("/api/strategies/{strategy_id}/transition", dependencies=write)
    def strategy_transition(strategy_id: int, body: TransitionBody, request: Request) -> Any:
        result = controls.transition_strategy(connect, strategy_id, body.target, by=_who(body.by), reason=body.reason,
                                              activation=settings.strategy_activation)
        audit(request, f"strategy {strategy_id} -> {body.target}", body.by)
        return {"strategy": result}

    @app.post("/api/approvals/{approval_id}/approve", dependencies=write)
    def approve_entry(approval_id: ApprovalId, body: ApprovalBody, request: Request) -> Any:
        return answer_approval(approval_id, body, request, approve=True)

    @app.post("/api/approvals/{approval_id}/reject", dependencies=write)
    def reject_entry(approval_id: ApprovalId, body: ApprovalBody, request: Request) -> Any:
        return answer_approval(approval_id, body, request, approve=False)

    def answer_approval(approval_id: int, body: ApprovalBody, request: Request, *, approve: bool) -> Any:
        reason = (body.reason or "").strip() or None
        row = controls.decide_approval(connect, approval_id, approve=approve, by=_who(body.by), reason=reason)
        audit(request, f"{row['status']} entry approval {approval_id} (buy {row['count']} {row['side']} on "
                       f"{row['market_id']} at <= {row['limit_price']})", body.by)
        return {"approval": row}

    return app
