"""`Dialer`: enqueue and inspect campaigns from another Python service.

Two modes with the same methods, answers and errors (``DialerError`` subclasses carrying the user's
message):

- ``Dialer(redis_url)`` talks to Redis through the same service as the CLI (no HTTP);
- ``Dialer(base_url=..., api_key=...)`` talks to the HTTP API, for services that cannot reach Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from dialer.clock import Clock
from dialer.errors import (
    ERROR_HEADER,
    Conflict,
    ConnectionFailed,
    DialerError,
    InsufficientBalance,
    InvalidRequest,
    NoGroupOrProvider,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceUnavailable,
    Unauthorized,
    error_classes,
)
from dialer.service import Service

_BY_NAME = error_classes()
# answers without the header (seed 000's 401s, a proxy's page): by message, then by status
_BY_MESSAGE: dict[str, Callable[[], DialerError]] = {
    cls().message: cls for cls in (InsufficientBalance, NoGroupOrProvider, ConnectionFailed)
}
_BY_STATUS: dict[int, type[DialerError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
}


def error_from(status: int, body: Any, name: str | None = None) -> Exception:
    """The error an HTTP answer stands for: the class the service raised (named by the web app), else one
    read from the answer; an unavailable server is ``ServiceUnavailable`` (a ``RedisUnavailable``)."""
    if status == 503 or (status >= 500 and not isinstance(body, dict)):
        detail = body.get("error") if isinstance(body, dict) else None
        return ServiceUnavailable(
            f"the dialer is unavailable (HTTP {status}){f': {detail}' if detail else ''}"
        )
    if not isinstance(body, dict):
        return DialerError(f"HTTP {status}")
    if "warning" in body:
        return QuotaExceeded(str(body["warning"]))
    message = str(body.get("error") or f"HTTP {status}")
    if status >= 500:
        return DialerError(f"{message} (error_id {body.get('error_id')})")
    cls = _BY_NAME.get(name or "")
    if cls is InvalidRequest or (cls is None and status == 400 and message not in _BY_MESSAGE):
        return InvalidRequest(message, body.get("detail"))
    if cls is not None:
        return cls(message)
    if message in _BY_MESSAGE:
        return _BY_MESSAGE[message]()
    return _BY_STATUS.get(status, DialerError)(message)


class Dialer:
    def __init__(
        self,
        redis_url: str | None = None,
        clock: Clock | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.http: httpx.Client | None = None
        self.service: Service | None = None
        if base_url is not None:
            if not api_key:
                raise ValueError("the HTTP mode needs the account's api_key")
            self.http = httpx.Client(
                base_url=base_url.rstrip("/"),
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=timeout_s,
            )
        else:
            self.service = Service.from_settings(redis_url=redis_url, clock=clock)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        assert self.http is not None
        try:
            res = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"the dialer at {self.http.base_url} cannot be reached: {exc}") from None
        try:
            body = res.json() if res.content else None
        except ValueError:  # not JSON: a proxy's error page
            body = None
        if res.status_code >= 400:
            raise error_from(res.status_code, body, res.headers.get(ERROR_HEADER))
        if body is None and res.content:
            raise ServiceUnavailable(f"the dialer at {self.http.base_url} answered something else than JSON")
        return body

    def submit_campaign(
        self, account_id: str | None, campaign: dict[str, Any], start: bool = True
    ) -> dict[str, Any]:
        """Validate and store a campaign (and start it): seed 003's 202 body plus ``status``. In the HTTP
        mode the account is the API key's (``account_id`` may be None)."""
        if self.service is not None:
            if account_id is None:
                raise InvalidRequest("account_id: required without an API key")
            return self.service.for_account(account_id).submit(campaign, start=start)
        return dict(self._call("POST", "/campaigns", json=campaign, params={"start": str(start).lower()}))

    def start_campaign(self, campaign_id: str) -> dict[str, Any]:
        if self.service is not None:
            return self.service.for_campaign(campaign_id).start(campaign_id)
        return dict(self._call("POST", f"/campaigns/{campaign_id}/start"))

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        if self.service is not None:
            return self.service.for_campaign(campaign_id).campaign(campaign_id)
        return dict(self._call("GET", f"/campaigns/{campaign_id}"))

    def calls(self, campaign_id: str) -> list[dict[str, Any]]:
        if self.service is not None:
            return self.service.for_campaign(campaign_id).calls(campaign_id)
        rows: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._call(
                "GET",
                f"/campaigns/{campaign_id}/calls",
                params={"limit": 1000, **({"page_token": token} if token else {})},
            )
            rows += page["result"]
            token = page["next_page_token"]
            if not token:
                return rows

    def enqueue_campaign(self, account_id: str | None, campaign: dict[str, Any], start: bool = True) -> str:
        """Hand a campaign over without waiting for its validation: in the Redis mode the ``submit_campaign``
        message on this client's Redis (returns the message id); in the HTTP mode the POST itself (returns
        the campaign id)."""
        if self.service is not None:
            if account_id is None:
                raise InvalidRequest("account_id: required without an API key")
            return self.service.enqueue_campaign(account_id, campaign, start)
        return str(self.submit_campaign(account_id, campaign, start)["campaign_id"])

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
