"""The web process: a FastAPI app over the one service.

One error shape for everything: ``{"error": message}`` (plus ``"detail"``: ``[{"field", "message"}]`` for
validation). Validation and rule refusals are 400 (the seeds' status, not FastAPI's 422; seed 000's start
refusals keep their 401), unknown ids 404, a missing or wrong key 401, a body over
``DIALER_MAX_BODY_BYTES`` or more than ``DIALER_MAX_CONTACTS`` contacts 413. Anything unexpected is 500
``{"error": "internal error", "error_id"}`` with that id in the logs — never a traceback in a body.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import Settings, get_settings
from config.logging import configure_logging
from dialer import __version__, ops
from dialer.errors import ERROR_HEADER, DialerError, InvalidRequest
from dialer.outage import OUTAGE_ERRORS, Outage
from dialer.service import Service
from dialer.validation import MAX_PROBLEMS
from dialer.web import api, auth, compat, dashboard, metrics, twilio
from dialer.web.api import admin_router, router

log = structlog.get_logger("dialer.web")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")  # a caller's X-Request-Id is kept when it looks like one


FIELD_FIRST = re.compile(r"([A-Za-z_][A-Za-z0-9_.\[\]]*): (.+)\Z", re.S)


def error_body(exc: DialerError) -> dict[str, Any]:
    """``{"error": message}``; a refusal of bad input adds ``detail`` with the field paths — the problems
    pydantic found, or the one field a rule's message names first (``amount: not a decimal amount``)."""
    body: dict[str, Any] = {exc.key: exc.message}
    details = getattr(exc, "details", None)
    named = FIELD_FIRST.match(exc.message) if isinstance(exc, InvalidRequest) else None
    if details:
        body["detail"] = details
    elif named:
        body["detail"] = [{"field": named[1], "message": named[2]}]
    return body


class BodyLimit:
    """413 for a request body over the limit, by its Content-Length or, for a body streamed without one, by
    reading it (up to the limit) before the app sees it: a refusal that surfaced inside the app's body
    parsing would turn into that parser's error instead."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.limit:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)  # the server holds the body to its declared length
            return
        if b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: answered for the log, unread
                await _respond(send, 400, "the request body ended before it was complete")
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # a disconnect, when the client goes away
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await _respond(
            send, 413, f"request body over the limit of {self.limit} bytes (DIALER_MAX_BODY_BYTES)"
        )


async def _respond(send: Send, status: int, error: str) -> None:
    await JSONResponse({"error": error}, status_code=status)({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_app(service: Service | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over ``service`` (default: one built from the settings when the app starts)."""
    settings = settings or (service.core.settings if service else get_settings())
    if service is None:  # built by uvicorn's factory, in each of its worker processes: their logs too
        configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.service is None:  # one service per web process, built once it starts
            app.state.service = Service.from_settings(settings)
        yield

    app = FastAPI(
        lifespan=lifespan,
        redirect_slashes=False,  # a stray slash is a 404 in the one error shape, not an empty 307
        title="dialer",
        version=__version__,
        summary="Outbound-call campaigns: create, start, watch; every route scoped to the caller's account.",
        description=(
            "Authenticate with an account's API key: `Authorization: Bearer KEY`, `X-API-Key: KEY`, "
            '`?user_token=KEY` or `?token=KEY`. Errors are `{"error": message}` (validation adds '
            "`detail` with field paths such as `contacts.3.phone`)."
        ),
    )
    app.state.service = service
    app.state.settings = settings
    app.include_router(router)
    app.include_router(twilio.router)
    app.include_router(compat.router)
    app.include_router(metrics.router)
    app.include_router(dashboard.router)
    if settings.admin_token:
        app.include_router(admin_router)

    @app.get("/healthz", tags=["operations"])
    def healthz(request: Request) -> JSONResponse:
        """200 when Redis answers and a scheduler is alive; 503 with the reason otherwise."""
        svc = request.app.state.service
        try:
            svc.core.store.r.ping()
            ticking = ops.scheduler_alive(svc.core)
        except (redis.RedisError, AttributeError) as exc:
            return JSONResponse({"status": "unavailable", "error": f"Redis: {exc}"}, status_code=503)
        if not ticking:
            error = (
                f"no scheduler has ticked in the last {ops.scheduler_alive_ms(svc.core) // 1000} s: "
                "due work is not handed out"
            )
            return JSONResponse({"status": "unavailable", "error": error}, status_code=503)
        return JSONResponse({"status": "ok"})

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    _install_access_log(app)  # outermost: a request refused by the body limit is logged too
    return app


def _unauthenticated(request: Request) -> DialerError | None:
    """The refusal of the route's own key check (an account's key, the admin token), if it fails."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    checks = {d.call for d in dependant.dependencies} & {auth.account, auth.admin} if dependant else set()
    for check in checks:
        try:
            check(request)
        except DialerError as exc:
            return exc
        except Exception:  # the store down: the body's own error stands (the next request meets the outage)
            return None
    return None


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, naming the field"},
        "detail": {
            "type": "array",
            "description": "validation: one entry a problem",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "error_id": {"type": "string", "description": "500 only: the id of the log line"},
    },
}
ERRORS = {
    "400": "invalid input (the field is named) or refused by a rule",
    "401": "missing or wrong API key",
    "404": "no such thing in this account",
    "413": "body over DIALER_MAX_BODY_BYTES or more than DIALER_MAX_CONTACTS contacts",
}
SECURITY = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer API_KEY"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "userToken": {"type": "apiKey", "in": "query", "name": "user_token"},
    "token": {"type": "apiKey", "in": "query", "name": "token"},
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, told the truth: refusals are 400 ``{"error", "detail"}`` (never its 422), the
    request models' parts sit in the components their references name, and the API key's four styles are
    security schemes (so /docs can send one)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(api.SCHEMAS)
    schemas["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, methods in doc["paths"].items():
        for op in methods.values():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for status, what in ERRORS.items():
                responses.setdefault(status, {"description": what, **ref})
            if path.startswith("/admin"):
                op["security"] = [{"bearer": []}]
            elif path not in ("/healthz", "/metrics", "/twilio/status"):
                op["security"] = [{name: []} for name in SECURITY]
    app.openapi_schema = doc
    return doc


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DialerError)
    async def _refused(request: Request, exc: DialerError) -> JSONResponse:
        # the class, for the client's HTTP mode (the body keeps the seeds' exact shape)
        headers = {ERROR_HEADER: type(exc).__name__}
        return JSONResponse(error_body(exc), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI reads the body before the key is checked: who is asking is answered first all the same
        refusal = await run_in_threadpool(_unauthenticated, request)
        if refusal is not None:
            return await _refused(request, refusal)
        details = []
        errors = exc.errors()
        for err in errors[:MAX_PROBLEMS]:
            where = err.get("loc", ())
            loc = [str(p) for p in where if p not in ("body", "query", "path", "header")]
            msg = str(err.get("msg", "invalid"))
            if err.get("type") == "json_invalid":  # its loc is a character position, not a field
                at = where[1] if len(where) > 1 else None
                loc, msg = [], "the request body is not valid JSON" + (f" (at character {at})" if at else "")
            elif err.get("type") == "missing" and tuple(where) == ("body",):
                msg = "a JSON body is required"
            details.append({"field": ".".join(loc), "message": msg})
        if len(errors) > MAX_PROBLEMS:
            details.append({"field": "", "message": f"and {len(errors) - MAX_PROBLEMS} more problems"})
        text = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details)
        return JSONResponse({"error": text or "invalid request", "detail": details}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code)

    outage = Outage("web")

    async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
        outage.failed(exc)  # one warning per outage, not one per request
        return JSONResponse({"error": "the store is unavailable; try again shortly"}, status_code=503)

    for error in OUTAGE_ERRORS:
        app.add_exception_handler(error, _redis_down)

    @app.middleware("http")
    async def _unexpected_and_outage_over(request: Request, call_next: Any) -> Any:
        """A bug answers 500 with an id to quote (the traceback goes to the log only). Caught here rather than
        by an `Exception` handler, which Starlette re-raises to the server, dropping the keep-alive connection."""
        try:
            response = await call_next(request)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("request_failed", error_id=error_id, path=request.url.path)
            return JSONResponse({"error": "internal error", "error_id": error_id}, status_code=500)
        if response.status_code < 500 and getattr(request.state, "account", None):
            outage.ok()  # a request that reached the store (its key was looked up): the store is back
        return response


def _install_access_log(app: FastAPI) -> None:
    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Any:
        """One event per request: id, account, route, status, duration (never the query: keys travel there)."""
        given = request.headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        started = time.monotonic()
        response = await call_next(request)
        route = request.scope.get("route")
        log.info(
            "http_request",
            request_id=request_id,
            account=getattr(request.state, "account", None),
            method=request.method,
            route=getattr(route, "path", "(no route)"),  # a path no route matched may hold anything
            status=response.status_code,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        response.headers["X-Request-Id"] = request_id
        return response
