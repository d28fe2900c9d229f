"""Who is asking: an account's API key (in the seeds' styles) or the admin token.

Keys are accepted as ``Authorization: Bearer KEY``, ``X-API-Key: KEY``, ``?user_token=KEY`` (seed 000) or
``?token=KEY`` (seed 002); they are compared by their hash (the key itself is never stored) and never
logged. The admin token is compared in constant time.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from dialer.errors import NotFound, Unauthorized
from dialer.service import AccountService, Service

MISSING_KEY = "missing API key: send Authorization: Bearer KEY (or X-API-Key, or ?user_token= / ?token=)"
WRONG_KEY = "invalid API key"


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for candidate in (
        request.headers.get("x-api-key"),
        request.query_params.get("user_token"),
        request.query_params.get("token"),
    ):
        if candidate:
            return candidate.strip()
    return None


def service_of(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def account(request: Request) -> AccountService:
    """The calling account (a FastAPI dependency); 401 without a valid key."""
    key = presented_key(request)
    if not key:
        raise Unauthorized(MISSING_KEY)
    scope = service_of(request).authenticate(key)
    if scope is None:
        raise Unauthorized(WRONG_KEY)
    request.state.account = scope.account_id
    return scope


def admin(request: Request) -> Service:
    """The operator (a FastAPI dependency): ``Authorization: Bearer $DIALER_ADMIN_TOKEN``."""
    svc = service_of(request)
    token = svc.core.settings.admin_token
    if not token:  # no admin routes at all without a token: as if they did not exist
        raise NotFound("not found")
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise Unauthorized("admin routes need Authorization: Bearer DIALER_ADMIN_TOKEN")
    request.state.account = "admin"
    return svc
