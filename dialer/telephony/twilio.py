"""The Twilio provider (DESIGN §7) on the official ``twilio`` SDK: dial, fetch, lookup, hang up, test the
connection, read and verify status callbacks.

Every failure leaves this module as one of base's errors (``PermanentDialError``, ``RetryableDialError``,
``RateLimited``, ``AuthFailed``) or ``ConnectionFailed`` for the connection test, with a reason built here:
never the SDK's exception text verbatim, never chained to an exception that holds the HTTP request (its
``Authorization`` header carries the auth token), and with the auth token scrubbed should a server ever
echo it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import structlog
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from dialer.errors import ConnectionFailed
from dialer.telephony.base import (
    FINAL_PROVIDER_STATES,
    AuthFailed,
    CallStatus,
    ConfigRefused,
    DialError,
    DialRequest,
    DialResult,
    PermanentDialError,
    Provider,
    RateLimited,
    RetryableDialError,
)

log = structlog.get_logger("dialer.twilio")

DEFAULT_API_BASE = "https://api.twilio.com"
CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]
AMD_MODES = {"off": None, "detect": "Enable", "voicemail": "DetectMessageEnd"}

# Codes that say "this number can never be called (by this account)": the attempt ends failed, no recall.
# Any other 4xx is permanent too; listing them makes the code win whatever HTTP status it comes with.
PERMANENT_CODES = frozenset(
    {
        21202,  # the number is a premium number (x11 services, premium rate)
        21211,  # invalid 'To' phone number
        21214,  # 'To' phone number cannot be reached
        21215,  # geo permissions do not allow calls to this destination
        21216,  # the number is blocked (high risk / regulatory block list)
        21217,  # the phone number does not appear to be valid
        21219,  # trial account: 'To' number not verified
        21401,  # invalid phone number
        21610,  # the recipient has opted out (STOP)
        13223,  # Dial: invalid phone number format
        13224,  # Dial: Twilio does not support calling this number, or it is invalid
        13225,  # Dial: forbidden (restricted / block-listed) number
        13226,  # Dial: invalid country code
        13227,  # Dial: no international authorization (geo permissions)
        32205,  # geo permission configuration does not permit the call (SIP)
    }
)
# Refusals of the account itself (wrong credentials, suspended or closed account): nothing was placed and
# every other dial would be refused the same way, so the campaign pauses instead of failing its contacts.
# What the SDK and its HTTP stack raise: error answers (TwilioException), transport failures
# (requests), and a 2xx whose body is not the JSON expected (json / ValueError from the SDK's parsing).
SDK_ERRORS = (TwilioException, requests.RequestException, ValueError)
AUTH_CODES = frozenset({20003, 20005, 10001})
# Refusals of our own settings for every call alike: the campaign pauses (ConfigRefused) rather than failing
# each contact with them
CONFIG_CODES = frozenset(
    {
        21205,  # the Url / StatusCallback is not a valid URL
        21209,  # invalid StatusCallbackMethod
        21210,  # the caller id ('From') is not a verified number of the account
        21212,  # invalid caller id ('From')
        21213,  # a caller id ('From') is required
        21218,  # invalid ApplicationSid
    }
)
RATE_LIMIT_CODES = frozenset({20429})
NOT_FOUND_CODES = frozenset({20404})
CALL_OVER_CODES = frozenset({21220})  # "call is not in progress": a hangup of a call that already ended

# lookup() reads at most this many of the newest calls to one number from one caller (2 pages of 50).
LOOKUP_LIMIT = 100
LOOKUP_PAGE_SIZE = 50
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 3600.0


class TwilioProvider(Provider):
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base: str | None = None,
        http_timeout_s: float = 15.0,
        callbacks: bool = False,
    ) -> None:
        if not account_sid or not auth_token:
            # the SDK would silently fall back to TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN from the environment
            raise ValueError("a Twilio provider needs an account SID and an auth token")
        self.account_sid = account_sid
        self._token = auth_token
        self.api_base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self.http_timeout_s = http_timeout_s
        self.pushes_outcomes = callbacks
        self._validator = RequestValidator(auth_token)
        # Retry-After of the last HTTP answer, per thread: TwilioRestException does not carry the headers,
        # so a requests "response" hook notes them (hooks run in the thread that made the request).
        self._last = threading.local()
        http = TwilioHttpClient(timeout=http_timeout_s, request_hooks={"response": [self._note_response]})
        self._client = Client(account_sid, auth_token, http_client=http)
        if api_base:
            # How the SDK is pointed at api_base: every REST API 2010 resource (calls, accounts) lives in the
            # client's ``api`` Domain (twilio.rest.api.ApiBase, created once and cached by the Client), and
            # each request URL is ``domain.base_url + "/2010-04-01/..."`` (Domain.absolute_url), list pages'
            # next_page_uri included. ``base_url`` is that domain's public attribute, so setting it moves the
            # whole Voice API to the regional edge / local server. Client(edge=, region=) cannot do this: they
            # only rewrite "*.twilio.com" host names (ClientBase.get_hostname), which would also mangle the
            # given base, so they are cleared (the SDK reads them from TWILIO_EDGE / TWILIO_REGION too).
            self._client.edge = None
            self._client.region = None
            self._client.api.base_url = self.api_base

    def __repr__(self) -> str:
        return f"TwilioProvider({self.account_sid!r}, api_base={self.api_base!r})"

    # --- the interface -------------------------------------------------------------------------------------
    def dial(self, req: DialRequest) -> DialResult:
        kwargs: dict[str, Any] = {
            "to": req.to,
            "from_": req.from_,
            "twiml": req.twiml,
            "timeout": req.timeout_s,
            "time_limit": req.time_limit_s,
        }
        if req.status_callback:
            kwargs.update(
                status_callback=req.status_callback,
                status_callback_event=CALLBACK_EVENTS,
                status_callback_method="POST",
            )
        machine_detection = AMD_MODES[req.amd]
        if machine_detection:
            kwargs["machine_detection"] = machine_detection
        try:
            call = self._client.calls.create(**kwargs)
        except SDK_ERRORS as exc:
            raise self._failure("create the call", exc) from None
        return DialResult(sid=str(call.sid), status=initial_status(call.status))

    def fetch(self, sid: str) -> CallStatus | None:
        try:
            call = self._client.calls(sid).fetch()
        except SDK_ERRORS as exc:
            if _not_found(exc):
                return None
            raise self._failure("fetch the call", exc) from None
        status = call_status(call)
        if status.status == "failed":
            status = self._with_error(status)
        return status

    def lookup(self, to: str, from_: str, since_ms: int, until_ms: int) -> list[CallStatus]:
        # Filtered on date_created, client-side. Twilio's only time filters are StartTime / EndTime, and a
        # call still queued (Twilio queues calls beyond the account's calls-per-second) has no start_time:
        # a StartTime filter would miss exactly the calls a lookup after a lost answer is looking for. They
        # are also date-granular (YYYY-MM-DD). date_created is always set, but to the second (RFC 2822),
        # so the window starts at the second ``since_ms`` falls in. Calls are read newest first up to
        # LOOKUP_LIMIT calls to this number from this caller: the engine looks for a call it placed
        # moments ago, and no number takes that many calls from one caller in between.
        try:
            calls = self._client.calls.list(
                to=to, from_=from_, limit=LOOKUP_LIMIT, page_size=LOOKUP_PAGE_SIZE
            )
        except SDK_ERRORS as exc:
            raise self._failure("list calls", exc) from None
        since_s = since_ms // 1000
        found: list[tuple[int, CallStatus]] = []
        for call in calls:
            created_ms = epoch_ms(call.date_created)
            if created_ms is None or not since_s * 1000 <= created_ms <= until_ms:
                continue
            if not (same_number(call.to, to) and same_number(call._from, from_)):
                continue  # what the server filtered on, checked again
            found.append((created_ms, call_status(call)))
        found.sort(key=lambda item: (item[0], item[1].sid))
        return [status for _, status in found]

    def hangup(self, sid: str) -> None:
        # Twilio: Status=canceled ends a queued or ringing call (and leaves an answered one alone);
        # Status=completed ends a call in progress. A call answered between the fetch and the cancel is
        # still in progress after it, so it gets the completed too.
        try:
            call = self._client.calls(sid).fetch()
            if call.status in FINAL_PROVIDER_STATES:
                return
            if call.status in ("queued", "ringing"):
                call = self._client.calls(sid).update(status="canceled")
                if call.status != "in-progress":
                    return
            self._client.calls(sid).update(status="completed")
        except SDK_ERRORS as exc:
            if _not_found(exc) or _code_of(exc) in CALL_OVER_CODES:
                return
            raise self._failure("hang up the call", exc) from None

    def test_connection(self) -> None:
        try:
            self._client.api.accounts(self.account_sid).fetch()
        except Exception as exc:
            log.warning("twilio_connection_test_failed", reason=self._describe(exc))
            raise ConnectionFailed() from None

    def parse_callback(self, params: Mapping[str, str]) -> CallStatus:
        status = super().parse_callback(params)
        if status.status == "initiated":  # the "initiated" event: dialling, not yet ringing
            status = replace(status, status="queued")
        if status.final and status.ended_at_ms is None:
            ended = rfc2822_ms(params.get("Timestamp"))
            if ended is not None:
                status = replace(status, ended_at_ms=ended)
        return status

    def verify_callback(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        if not signature:
            return False
        return bool(self._validator.validate(url, dict(params), signature))

    # --- helpers --------------------------------------------------------------------------------------------
    def _with_error(self, status: CallStatus) -> CallStatus:
        """A failed call's error code: the Call resource has none, its error notification does (best
        effort: the status without a code beats no status)."""
        try:
            notes = self._client.calls(status.sid).notifications.list(log=0, limit=1)
        except SDK_ERRORS as exc:
            log.info("twilio_call_notifications_unavailable", sid=status.sid, reason=self._describe(exc))
            return status
        if not notes or not notes[0].error_code:
            return status
        return replace(
            status,
            error_code=str(notes[0].error_code),
            error_message=self._scrub(str(notes[0].message_text or "")) or None,
        )

    def _note_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self._last.retry_after = response.headers.get("Retry-After")
        return response

    def _retry_after_s(self) -> float:
        return parse_retry_after(getattr(self._last, "retry_after", None))

    def _failure(self, action: str, exc: Exception) -> DialError:
        """Any exception of the SDK / HTTP stack as the DialError the engine acts on."""
        if isinstance(exc, requests.RequestException):
            kind = type(exc).__name__
            if isinstance(exc, requests.Timeout):
                reason = f"no answer from Twilio within {self.http_timeout_s:g}s ({kind}) to {action}"
            else:
                reason = f"network error talking to Twilio ({kind}) to {action}"
            return RetryableDialError(reason, code="timeout")
        error = _http_error(exc)
        if error is None:  # not HTTP (e.g. a 2xx whose body is not JSON): the call may exist
            return RetryableDialError(f"unexpected answer from Twilio to {action}: {self._describe(exc)}")
        status, code, message = error
        text = self._scrub(f"Twilio refused to {action}: HTTP {status}, error {code}: {message}")
        code_s = str(code) if code is not None else str(status)
        if status == 429 or code in RATE_LIMIT_CODES:
            return RateLimited(text, retry_after_s=self._retry_after_s(), code=code_s)
        if status == 401 or code in AUTH_CODES:
            return AuthFailed(text, code=code_s)
        if code in CONFIG_CODES:
            return ConfigRefused(text, code=code_s)
        if code in PERMANENT_CODES:
            return PermanentDialError(text, code=code_s)
        if status >= 500:
            return RetryableDialError(text, code=code_s)
        if status >= 400:
            return PermanentDialError(text, code=code_s)
        return RetryableDialError(text, code=code_s)

    def _describe(self, exc: BaseException) -> str:
        error = _http_error(exc)
        if error is not None:
            return self._scrub(f"HTTP {error[0]}, error {error[1]}: {error[2]}")
        return self._scrub(f"{type(exc).__name__}: {exc}")[:300]

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


# --- pure functions ---------------------------------------------------------------------------------------
def _http_error(exc: BaseException) -> tuple[int, int | None, str] | None:
    """(HTTP status, Twilio code, message) of an SDK error answer, or None when it is not one."""
    if isinstance(exc, TwilioRestException):
        return int(exc.status), _int_or_none(exc.code), str(exc.msg)
    if isinstance(exc, TwilioServiceException):
        return int(exc.status), _int_or_none(exc.code), str(exc.detail or exc.title)
    if isinstance(exc, TwilioException) and len(exc.args) > 1:
        # list pages: Page.process_response raises TwilioException("Unable to fetch page", response)
        response = exc.args[1]
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            code, message = _error_body(str(getattr(response, "text", "") or ""))
            return status, code if code is not None else status, f"{exc.args[0]}: {message}"
    return None


def _error_body(text: str) -> tuple[int | None, str]:
    try:
        body = json.loads(text)
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    return _int_or_none(body.get("code")), str(body.get("message") or "")


def _code_of(exc: BaseException) -> int | None:
    error = _http_error(exc)
    return error[1] if error else None


def _not_found(exc: BaseException) -> bool:
    error = _http_error(exc)
    return error is not None and (error[0] == 404 or error[1] in NOT_FOUND_CODES)


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def same_number(reported: str | None, asked: str) -> bool:
    """Twilio reports numbers in E.164; compare digits so a differently formatted question still matches."""
    if reported is None:
        return False
    digits = re.sub(r"\D", "", asked)
    return re.sub(r"\D", "", reported) == digits if digits else reported == asked


def initial_status(status: str | None) -> str:
    """A new call's state for DialResult: never final (the outcome comes by callback or poll)."""
    if status in ("ringing", "in-progress"):
        return str(status)
    return "queued"  # queued, initiated, and anything unexpected


def call_status(call: Any) -> CallStatus:
    """A CallInstance of the SDK as a CallStatus (the Call resource carries no error code)."""
    duration = str(call.duration or "")
    return CallStatus(
        sid=str(call.sid),
        status=str(call.status),
        answered_by=call.answered_by or None,
        duration_s=int(duration) if duration.isdigit() else 0,
        started_at_ms=epoch_ms(call.start_time),
        ended_at_ms=epoch_ms(call.end_time),
        to=call.to or None,
        from_=call._from or None,
    )


def epoch_ms(value: datetime | None) -> int | None:
    if not isinstance(value, datetime):  # the SDK leaves what it cannot parse as None (or a string)
        return None
    return round(value.timestamp() * 1000)


def rfc2822_ms(value: str | None) -> int | None:
    """``Tue, 24 Nov 2026 10:00:00 +0000`` as epoch ms (None when absent or unreadable)."""
    if not value:
        return None
    try:
        return round(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError, IndexError):
        return None


def parse_retry_after(value: str | None, now: float | None = None) -> float:
    """A Retry-After header (seconds or an HTTP date) in seconds; 1 s when absent or unreadable."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        at = rfc2822_ms(value)
        if at is None:
            return DEFAULT_RETRY_AFTER_S
        seconds = at / 1000 - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
