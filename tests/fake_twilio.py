"""A local Twilio: the REST API 2010-04-01 (Calls, Accounts, a call's Notifications) over real HTTP, for tests
that drive the real ``twilio`` SDK (no patching, no mocks). Standard library only, plus the SDK's
``RequestValidator`` to sign status callbacks exactly as Twilio does.

    with FakeTwilio() as fake:
        provider = TwilioProvider(fake.account_sid, fake.auth_token, api_base=fake.url)
        ...

What it does like Twilio: HTTP Basic auth on every request (401 / 20003 otherwise), Twilio's error JSON,
call resources shaped like Twilio's (RFC 2822 dates, "CA" + 32 hex sids, ``from``, ``duration`` as a
string), list pages newest first with ``next_page_uri``, hang up by POSTing ``Status``, status callbacks
form-encoded and signed (``X-Twilio-Signature``) for the events asked in ``StatusCallbackEvent``.

A call's fate comes from ``fate(to, nth)`` (default ``simulator_fate``: by the number's last digit, like the
simulator provider). With ``auto=True`` a background thread plays each call (initiated, ringing, answered,
over) at ``ring_s`` / ``talk_s`` / ``no_answer_s``; with ``auto=False`` calls wait in ``queued`` until the
test moves them (``ring``, ``answer``, ``finish``). Faults for the next creates are scripted with
``fail_next_create`` and ``delay_next_create``; ``accounts_fetch_fails`` breaks the connection test.
"""

from __future__ import annotations

import base64
import heapq
import hmac
import itertools
import json
import logging
import math
import queue
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

log = logging.getLogger("tests.fake_twilio")

API = "/2010-04-01"
FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
LIVE = frozenset({"queued", "ringing", "in-progress"})
EVENT_OF_STATUS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    **dict.fromkeys(FINAL, "completed"),
}
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"

ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21214: "'To' phone number cannot be reached",
    21215: "Account not authorized to call {to}. Perhaps you need to enable some international permissions: "
    "https://www.twilio.com/console/voice/calls/geo-permissions/low-risk",
    21216: "Call blocked: the number {to} is blocked",
    21220: "Call is not in-progress. Cannot redirect.",
}


# --- call fates ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fate:
    """How a call ends. ``refuse``: the create itself answers 400 with this Twilio code (no call)."""

    status: str = "completed"  # completed | busy | no-answer | failed | canceled
    answered_by: str | None = None  # completed calls: human | machine_start | ... (reported with AMD only)
    error_code: str | None = None  # failed calls
    refuse: int | None = None


def simulator_fate(to: str, nth: int) -> Fate:
    """Like the simulator provider: the last digit decides; ``nth`` counts the calls to ``to`` (1 = first).

    0-3 human, 4 no-answer on the first call then human, 5 machine, 6 busy, 7 no-answer, 8 failed,
    9 refused at create (400 / 21211). Anything else: human."""
    digit = to[-1:] if to[-1:].isdigit() else ""
    if digit in ("", "0", "1", "2", "3"):
        return Fate("completed", "human")
    if digit == "4":
        return Fate("no-answer") if nth == 1 else Fate("completed", "human")
    if digit == "5":
        return Fate("completed", "machine_start")
    if digit == "6":
        return Fate("busy")
    if digit == "7":
        return Fate("no-answer")
    if digit == "8":
        return Fate("failed", error_code="31005")
    return Fate("failed", refuse=21211)


# --- records ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateRecord:
    """One POST to Calls.json as received (every create, refused ones included)."""

    fields: dict[str, list[str]]
    sid: str | None  # the call created (None: refused without a call)
    answer: int  # the HTTP status answered

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    @property
    def to(self) -> str | None:
        return self.get("To")

    @property
    def twiml(self) -> str | None:
        return self.get("Twiml")


@dataclass(frozen=True)
class Delivery:
    """One status callback the fake posted: ``status`` is the receiver's HTTP answer (None: not delivered)."""

    url: str
    params: dict[str, str]
    signature: str
    status: int | None
    error: str | None = None


@dataclass
class FakeCall:
    sid: str
    account_sid: str
    to: str
    from_: str
    fate: Fate
    form: dict[str, list[str]]
    created_at: float  # epoch seconds (the fake's clock)
    status: str = "queued"
    updated_at: float = 0.0
    start_time: float | None = None
    end_time: float | None = None
    duration: int | None = None
    answered_by: str | None = None
    error_code: str | None = None
    answered_mono: float | None = None
    sequence: int = 0

    def value(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[-1] if values else None

    @property
    def status_callback(self) -> str | None:
        return self.value("StatusCallback")

    @property
    def machine_detection(self) -> str | None:
        return self.value("MachineDetection")

    @property
    def events(self) -> list[str]:
        return self.form.get("StatusCallbackEvent") or ["completed"]  # Twilio's default

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def resource(self) -> dict[str, Any]:
        uri = f"{API}/Accounts/{self.account_sid}/Calls/{self.sid}.json"
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": None,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": None,
            "status": self.status,
            "start_time": rfc2822(self.start_time),
            "end_time": rfc2822(self.end_time),
            "duration": None if self.duration is None else str(self.duration),
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": "2010-04-01",
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.updated_at or self.created_at),
            "uri": uri,
            "subresource_uris": {
                "notifications": uri.replace(".json", "/Notifications.json"),
                "recordings": uri.replace(".json", "/Recordings.json"),
            },
        }


@dataclass(order=True)
class _Step:
    due: float
    order: int
    sid: str = field(compare=False)
    action: str = field(compare=False)  # initiated | ringing | answer | end


@dataclass
class _Fault:
    status: int
    code: int
    message: str | None
    after_create: bool
    retry_after: float | None


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def rfc2822(epoch_s: float | None) -> str | None:
    """Twilio's date format: ``Tue, 24 Nov 2026 10:00:00 +0000``."""
    if epoch_s is None:
        return None
    return format_datetime(datetime.fromtimestamp(int(epoch_s), UTC))


# --- the fake -----------------------------------------------------------------------------------------------
class FakeTwilio:
    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        fate: Callable[[str, int], Fate] = simulator_fate,
        auto: bool = True,
        ring_s: float = 0.05,
        talk_s: float = 0.1,
        no_answer_s: float = 0.15,
        clock: Callable[[], float] = time.time,
        callback_timeout_s: float = 2.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.fate = fate
        self.auto = auto
        self.ring_s = ring_s
        self.talk_s = talk_s
        self.no_answer_s = no_answer_s
        self.clock = clock
        self.callback_timeout_s = callback_timeout_s
        self.accounts_fetch_fails = False

        self.calls: dict[str, FakeCall] = {}
        self.creates: list[CreateRecord] = []
        self.callbacks: list[Delivery] = []
        self.requests: list[tuple[str, str]] = []  # (method, path with query) of every request

        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._steps: list[_Step] = []
        self._order = itertools.count()
        self._faults: deque[_Fault] = deque()
        self._delays: deque[float] = deque()
        self._per_number: dict[str, int] = {}
        self._validator = RequestValidator(auth_token)
        self._outbox: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        # callbacks go straight to the receiver, whatever proxy the environment names
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- life cycle -----------------------------------------------------------------------------------------
    def start(self) -> FakeTwilio:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="fake-twilio-http", daemon=True
            ),
            threading.Thread(target=self._play, name="fake-twilio-calls", daemon=True),
            threading.Thread(target=self._deliver, name="fake-twilio-callbacks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes delayed creates
        server.shutdown()
        server.server_close()
        with self._wake:
            self._wake.notify_all()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeTwilio is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- scripting ------------------------------------------------------------------------------------------
    def fail_next_create(
        self,
        status: int = 400,
        code: int = 21211,
        message: str | None = None,
        *,
        count: int = 1,
        after_create: bool = False,
        retry_after: float | None = None,
    ) -> None:
        """The next ``count`` creates answer ``status`` with Twilio error ``code``. ``after_create``: the
        call is created (and plays) all the same (a 5xx whose call exists). ``retry_after``: a Retry-After
        header (seconds)."""
        with self._lock:
            for _ in range(count):
                self._faults.append(_Fault(status, code, message, after_create, retry_after))

    def delay_next_create(self, seconds: float, count: int = 1) -> None:
        """The next ``count`` creates create the call at once, then wait ``seconds`` before answering."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def ring(self, sid: str) -> None:
        """A queued call starts ringing."""
        with self._lock:
            call = self._call(sid)
            if call.status == "queued":
                self._set(call, "ringing")

    def answer(self, sid: str, answered_by: str | None = None) -> None:
        """A queued / ringing call is answered (``answered_by`` defaults to the fate's)."""
        with self._lock:
            call = self._call(sid)
            if call.status == "queued":
                self._set(call, "ringing")
            if call.status == "ringing":
                self._answer(call, answered_by or call.fate.answered_by or "human")

    def finish(
        self,
        sid: str,
        status: str = "completed",
        *,
        duration: int | None = None,
        answered_by: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """A live call ends with ``status`` (completed: answered first if it was not)."""
        if status not in FINAL:
            raise ValueError(f"not a final status: {status}")
        with self._lock:
            call = self._call(sid)
            if call.final:
                return
            if status == "completed" and call.status != "in-progress":
                self.answer(sid, answered_by)
            if answered_by and call.machine_detection:
                call.answered_by = answered_by
            self._end(call, status, duration=duration, error_code=error_code)

    def creates_to(self, number: str) -> list[CreateRecord]:
        with self._lock:
            return [c for c in self.creates if c.to == number]

    def calls_to(self, number: str) -> list[FakeCall]:
        with self._lock:
            return [c for c in self.calls.values() if c.to == number]

    # --- the API --------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        """One request: (status, JSON body). Raises TwilioError for Twilio's error answers."""
        self.requests.append((method, path))
        self._authenticate(headers.get("Authorization") or "")
        parts = urlsplit(path)
        query = parse_qs(parts.query, keep_blank_values=True)
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True) if body else {}
        route = parts.path
        if m := re.fullmatch(rf"{API}/Accounts/(\w+)\.json", route):
            self._own(m[1], route)
            return self._only(method, "GET", lambda: self._account())
        if m := re.fullmatch(rf"{API}/Accounts/(\w+)/Calls\.json", route):
            self._own(m[1], route)
            if method == "POST":
                return self._create(form)
            return self._only(method, "GET", lambda: (200, self._list(route, query)))
        if m := re.fullmatch(rf"{API}/Accounts/(\w+)/Calls/(\w+)\.json", route):
            self._own(m[1], route)
            if method == "POST":
                return 200, self._update(m[2], form, route)
            return self._only(method, "GET", lambda: (200, self._fetch(m[2], route)))
        if m := re.fullmatch(rf"{API}/Accounts/(\w+)/Calls/(\w+)/Notifications\.json", route):
            self._own(m[1], route)
            return self._only(method, "GET", lambda: (200, self._notifications(m[2], route, query)))
        raise self._not_found(route)

    def _authenticate(self, header: str) -> None:
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode("utf-8")
        except ValueError:
            given = ""
        expected = f"{self.account_sid}:{self.auth_token}"
        if scheme.lower() != "basic" or not hmac.compare_digest(given.encode(), expected.encode()):
            raise TwilioError(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _own(self, account_sid: str, route: str) -> None:
        if account_sid != self.account_sid:
            raise self._not_found(route)

    @staticmethod
    def _only(method: str, allowed: str, answer: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        if method != allowed:
            raise TwilioError(405, 20004, "Method not allowed")
        return answer()

    def _not_found(self, route: str) -> TwilioError:
        return TwilioError(404, 20404, ERROR_MESSAGES[20404].format(path=route))

    def _account(self) -> tuple[int, Any]:
        if self.accounts_fetch_fails:
            raise TwilioError(500, 20500, ERROR_MESSAGES[20500])
        now = rfc2822(self.clock())
        uri = f"{API}/Accounts/{self.account_sid}.json"
        return 200, {
            "sid": self.account_sid,
            "owner_account_sid": self.account_sid,
            "friendly_name": "Fake Twilio account",
            "status": "active",
            "type": "Full",
            "date_created": now,
            "date_updated": now,
            "uri": uri,
            "subresource_uris": {"calls": uri.replace(".json", "/Calls.json")},
        }

    def _create(self, form: dict[str, list[str]]) -> tuple[int, Any]:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            delay = self._delays.popleft() if self._delays else 0.0
            to = (form.get("To") or [""])[-1]
            from_ = (form.get("From") or [""])[-1]
            call: FakeCall | None = None
            try:
                if fault is not None and not fault.after_create:
                    raise self._fault_error(fault, to)
                self._validate_create(form, to, from_)
                nth = self._per_number.get(to, 0) + 1
                fate = self.fate(to, nth)
                if fate.refuse is not None:
                    raise TwilioError(400, fate.refuse, self._message(fate.refuse, None, to))
                self._per_number[to] = nth
                call = self._new_call(form, to, from_, fate)
                if fault is not None:
                    raise self._fault_error(fault, to)
            except TwilioError as exc:
                self.creates.append(CreateRecord(form, call.sid if call else None, exc.status))
                raise
            self.creates.append(CreateRecord(form, call.sid, 201))
            resource = call.resource()
        if delay and self._stopping.wait(delay):
            raise TwilioError(503, 20503, "Service unavailable")  # stopping: answer something, quickly
        return 201, resource

    def _fault_error(self, fault: _Fault, to: str) -> TwilioError:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return TwilioError(fault.status, fault.code, self._message(fault.code, fault.message, to), headers)

    @staticmethod
    def _message(code: int, message: str | None, to: str) -> str:
        if message is not None:
            return message
        return ERROR_MESSAGES.get(code, f"Error {code}").format(to=to, path="")

    @staticmethod
    def _validate_create(form: dict[str, list[str]], to: str, from_: str) -> None:
        if not to:
            raise TwilioError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise TwilioError(400, 21213, "No 'From' number is specified")
        if not any(form.get(k) for k in ("Url", "Twiml", "ApplicationSid")):
            raise TwilioError(400, 21205, "Url, ApplicationSid or Twiml is required")
        for name in ("Timeout", "TimeLimit"):
            value = (form.get(name) or ["0"])[-1]
            if not value.isdigit():
                raise TwilioError(400, 21201 if name == "Timeout" else 21238, f"{name} must be an integer")
        amd = (form.get("MachineDetection") or ["Enable"])[-1]
        if amd not in ("Enable", "DetectMessageEnd"):
            raise TwilioError(400, 21201, f"MachineDetection must be Enable or DetectMessageEnd, not {amd}")
        for event in form.get("StatusCallbackEvent") or []:
            if event not in ("initiated", "ringing", "answered", "completed"):
                raise TwilioError(400, 21626, f"Invalid StatusCallbackEvent: {event}")

    def _new_call(self, form: dict[str, list[str]], to: str, from_: str, fate: Fate) -> FakeCall:
        now = self.clock()
        call = FakeCall(
            sid="CA" + uuid.uuid4().hex,
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            fate=fate,
            form=form,
            created_at=now,
            updated_at=now,
        )
        self.calls[call.sid] = call
        self._callback(call, "initiated")
        if self.auto:
            t = time.monotonic()
            if fate.status == "failed":
                self._schedule(t, call.sid, "end")
            else:
                self._schedule(t, call.sid, "ringing")
                if fate.status == "completed":
                    self._schedule(t + self.ring_s, call.sid, "answer")
                    self._schedule(t + self.ring_s + self.talk_s, call.sid, "end")
                elif fate.status == "no-answer":
                    self._schedule(t + self.no_answer_s, call.sid, "end")
                else:
                    self._schedule(t + self.ring_s, call.sid, "end")
        return call

    def _list(self, route: str, query: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        page_size = min(int(one("PageSize") or 50), 1000)
        page = int(one("Page") or 0)
        filters = {k: one(k) for k in ("To", "From", "Status", "ParentCallSid")}
        times = {k: one(k) for k in query if k.startswith(("StartTime", "EndTime"))}
        with self._lock:
            calls = [
                c
                for c in self.calls.values()
                if (filters["To"] is None or c.to == filters["To"])
                and (filters["From"] is None or c.from_ == filters["From"])
                and (filters["Status"] is None or c.status == filters["Status"])
                and not filters["ParentCallSid"]  # no child legs here
                and all(_time_filter(c, k, v) for k, v in times.items())
            ]
            order = {sid: i for i, sid in enumerate(self.calls)}
            calls.sort(key=lambda c: (c.created_at, order[c.sid]), reverse=True)
            chunk = calls[page * page_size : (page + 1) * page_size]
            records = [c.resource() for c in chunk]

        def page_uri(n: int, token: str | None = None) -> str:
            params = {k: v for k, v in filters.items() if v is not None}
            params.update({k: v for k, v in times.items() if v is not None})
            params.update(PageSize=str(page_size), Page=str(n))
            if token:
                params["PageToken"] = token
            return f"{route}?{urlencode(params)}"

        more = len(calls) > (page + 1) * page_size
        start = page * page_size
        return {
            "calls": records,
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, "PA" + chunk[-1].sid) if more else None,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "page": page,
            "page_size": page_size,
            "start": start,
            "end": start + max(len(records) - 1, 0),
            "uri": page_uri(page),
        }

    def _fetch(self, sid: str, route: str) -> dict[str, Any]:
        with self._lock:
            call = self.calls.get(sid)
            if call is None:
                raise self._not_found(route)
            return call.resource()

    def _update(self, sid: str, form: dict[str, list[str]], route: str) -> dict[str, Any]:
        """Hang up: Status=canceled ends a queued / ringing call (an answered one is left alone);
        Status=completed ends any live call (one never answered ends canceled). A call already over: 21220."""
        with self._lock:
            call = self.calls.get(sid)
            if call is None:
                raise self._not_found(route)
            status = (form.get("Status") or [""])[-1]
            if status not in ("", "canceled", "completed"):
                raise TwilioError(400, 21218, f"Invalid Status: {status}")
            if call.final:
                raise TwilioError(400, 21220, ERROR_MESSAGES[21220])
            if status == "canceled" and call.status in ("queued", "ringing"):
                self._end(call, "canceled")
            elif status == "completed":
                self._end(call, "completed" if call.status == "in-progress" else "canceled")
            return call.resource()

    def _notifications(self, sid: str, route: str, query: dict[str, list[str]]) -> dict[str, Any]:
        with self._lock:
            call = self.calls.get(sid)
            if call is None:
                raise self._not_found(route)
            notes = []
            if call.error_code and (query.get("Log") or ["0"])[-1] == "0":
                notes.append(
                    {
                        "sid": "NO" + uuid.uuid5(uuid.NAMESPACE_OID, sid).hex,
                        "account_sid": self.account_sid,
                        "call_sid": sid,
                        "api_version": "2010-04-01",
                        "date_created": rfc2822(call.end_time),
                        "date_updated": rfc2822(call.end_time),
                        "message_date": rfc2822(call.end_time),
                        "error_code": call.error_code,
                        "log": "0",
                        "message_text": f"Call failed with error {call.error_code}",
                        "more_info": f"https://www.twilio.com/docs/errors/{call.error_code}",
                        "request_method": "POST",
                        "request_url": "",
                        "uri": f"{route.removesuffix('.json')}/NO{sid[2:]}.json",
                    }
                )
        return {
            "notifications": notes,
            "first_page_uri": route,
            "next_page_uri": None,
            "previous_page_uri": None,
            "page": 0,
            "page_size": 50,
            "start": 0,
            "end": max(len(notes) - 1, 0),
            "uri": route,
        }

    # --- call progression (under the lock) ------------------------------------------------------------------
    def _call(self, sid: str) -> FakeCall:
        call = self.calls.get(sid)
        if call is None:
            raise KeyError(f"no call {sid}")
        return call

    def _schedule(self, due: float, sid: str, action: str) -> None:
        heapq.heappush(self._steps, _Step(due, next(self._order), sid, action))
        self._wake.notify_all()

    def _set(self, call: FakeCall, status: str) -> None:
        now = self.clock()
        call.status = status
        call.updated_at = now
        if status == "ringing" and call.start_time is None:
            call.start_time = now
        self._callback(call, status)

    def _answer(self, call: FakeCall, answered_by: str) -> None:
        if call.machine_detection:
            if call.machine_detection == "DetectMessageEnd" and answered_by.startswith("machine"):
                answered_by = "machine_end_beep"
            call.answered_by = answered_by
        call.answered_mono = time.monotonic()
        self._set(call, "in-progress")

    def _end(
        self, call: FakeCall, status: str, *, duration: int | None = None, error_code: str | None = None
    ) -> None:
        if status == "completed" and duration is None:
            talked = time.monotonic() - (call.answered_mono or time.monotonic())
            duration = max(1, math.ceil(talked))
        call.duration = duration if duration is not None else 0
        if status == "failed":
            call.error_code = error_code or call.fate.error_code or "31005"
        call.end_time = self.clock()
        self._set(call, status)

    def _play(self) -> None:
        """The background thread of auto mode: applies each due step."""
        with self._wake:
            while not self._stopping.is_set():
                if not self._steps:
                    self._wake.wait()
                    continue
                wait = self._steps[0].due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                step = heapq.heappop(self._steps)
                call = self.calls.get(step.sid)
                if call is None or call.final:
                    continue
                try:
                    self._apply(call, step.action)
                except Exception:
                    log.exception("fake twilio: step %s of %s failed", step.action, step.sid)

    def _apply(self, call: FakeCall, action: str) -> None:
        fate = call.fate
        if action == "ringing" and call.status == "queued":
            self._set(call, "ringing")
        elif action == "answer" and call.status in ("queued", "ringing"):
            self._answer(call, fate.answered_by or "human")
        elif action == "end":
            status = fate.status
            if status == "completed" and call.status != "in-progress":
                self._answer(call, fate.answered_by or "human")
            self._end(
                call, status, duration=max(1, math.ceil(self.talk_s)) if status == "completed" else None
            )

    # --- status callbacks -----------------------------------------------------------------------------------
    def _callback(self, call: FakeCall, status: str) -> None:
        url = call.status_callback
        if not url or EVENT_OF_STATUS[status] not in call.events:
            return
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": status,
            "Called": call.to,
            "Caller": call.from_,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
            "Timestamp": rfc2822(self.clock()) or "",
            "SequenceNumber": str(call.sequence),
        }
        call.sequence += 1
        if status in FINAL:
            params["CallDuration"] = str(call.duration or 0)
            params["Duration"] = str(math.ceil((call.duration or 0) / 60))
        if call.machine_detection and call.answered_by and status in ("in-progress", "completed"):
            params["AnsweredBy"] = call.answered_by
        if status == "failed" and call.error_code:
            params["ErrorCode"] = call.error_code
        self._outbox.put((url, params))

    def _deliver(self) -> None:
        """The callback thread: posts each callback in order; a failure is logged and recorded, never fatal."""
        while True:
            item = self._outbox.get()
            if item is None:
                return
            url, params = item
            signature = self._validator.compute_signature(url, params)
            request = urllib.request.Request(
                url,
                data=urlencode(params).encode(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                    "User-Agent": "TwilioProxy/1.1",
                },
                method="POST",
            )
            status: int | None = None
            error: str | None = None
            try:
                with self._opener.open(request, timeout=self.callback_timeout_s) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("fake twilio: callback to %s failed: %s", url, error)
            with self._lock:
                self.callbacks.append(Delivery(url, params, signature, status, error))

    def deliveries_for(self, sid: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.callbacks if d.params.get("CallSid") == sid]


def _time_filter(call: FakeCall, name: str, value: str | None) -> bool:
    """StartTime / EndTime filters as Twilio reads them: on the call's start / end time (calls without one
    never match), by date; ``StartTime>`` / ``StartTime<`` (and >=, <=) for ranges."""
    if not value:
        return True
    m = re.fullmatch(r"(StartTime|EndTime)([<>]?=?)", name)
    if m is None:
        return True
    at = call.start_time if m[1] == "StartTime" else call.end_time
    if at is None:
        return False
    day = datetime.fromtimestamp(at, UTC).date()
    try:
        wanted = datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return True
    op = m[2]
    if op.startswith(">"):
        return day >= wanted
    if op.startswith("<"):
        return day <= wanted
    return day == wanted


# --- HTTP plumbing ------------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeTwilio):
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fake twilio: error while answering %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeTwilio/1.0"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        try:
            status, payload = self.server.fake.handle(method, self.path, dict(self.headers.items()), body)
        except TwilioError as exc:
            status, payload, headers = exc.status, exc.body(), exc.headers
        except Exception:
            log.exception("fake twilio: %s %s failed", method, self.path)
            status, payload = 500, TwilioError(500, 20500, ERROR_MESSAGES[20500]).body()
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (its timeout): nothing to answer to
            log.debug("fake twilio: client left before the answer to %s %s", method, self.path)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake twilio: " + format, *args)


# --- a callback receiver for tests --------------------------------------------------------------------------
class CallbackSink:
    """A tiny HTTP server that records what is POSTed to it: (path with query, form fields, headers).

    ``url`` is its base; any path is accepted (answers ``status``, 204 by default)."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fields = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                with sink._lock:
                    sink.received.append(
                        (self.path, {k: v[-1] for k, v in fields.items()}, dict(self.headers.items()))
                    )
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="callback-sink", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CallbackSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
