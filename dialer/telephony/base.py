"""The provider interface (DESIGN §7): dial, fetch, lookup, hang up, test the connection, read a callback.

Every provider reports calls as ``CallStatus`` and signals dial failures with the errors below; the engine
has one outcome path for all of them (callback, poll, reconciliation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FINAL_PROVIDER_STATES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
AmdMode = Literal["off", "detect", "voicemail"]


@dataclass(frozen=True)
class DialRequest:
    ref: str  # ACCOUNT|ATTEMPT_KEY: names the attempt across accounts
    key: str  # the attempt key CAMPAIGN:CONTACT:N
    campaign_id: str
    to: str
    from_: str
    twiml: str
    token: str  # the dial token of the admission (unique per dial)
    timeout_s: int = 30  # ring time before no-answer
    time_limit_s: int = 600  # longest call (= the provider's max_call_seconds: the reservation covers it)
    status_callback: str | None = None  # where the provider posts status changes (None: poll)
    amd: AmdMode = "detect"  # answering-machine detection


@dataclass(frozen=True)
class DialResult:
    sid: str
    status: str  # the call's initial state only (queued | ringing | in-progress): never final at creation
    check_at_ms: int | None = None  # when the provider expects the state to change (None: unknown)
    # the outcome, when the call was already over by the time the provider answered (the simulator with
    # no ring or talk time): settled in the same step, with no check to follow it
    final: CallStatus | None = None


@dataclass(frozen=True)
class CallStatus:
    """A call's state as the provider reports it (callback, fetch or lookup)."""

    sid: str
    status: str  # queued | ringing | in-progress | completed | busy | no-answer | failed | canceled
    answered_by: str | None = None  # human | machine_start | machine_end_beep | ... | fax | unknown
    duration_s: int = 0
    error_code: str | None = None
    error_message: str | None = None
    ended_at_ms: int | None = None
    started_at_ms: int | None = None
    ref: str | None = None  # the attempt the call belongs to, when the provider reports it
    to: str | None = None
    from_: str | None = None
    check_at_ms: int | None = None  # for a live call: when the provider expects it to change

    @property
    def final(self) -> bool:
        return self.status in FINAL_PROVIDER_STATES


class DialError(Exception):
    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class PermanentDialError(DialError):
    """The call can never happen (invalid number, blocked, ...): the attempt ends failed, no recall."""


class RetryableDialError(DialError):
    """The provider may or may not have placed the call (5xx, timeout): reconcile before dialling again."""


class RateLimited(DialError):
    """The provider refused for now (429 / 20429): nothing was placed; defer and slow down."""

    def __init__(self, reason: str, retry_after_s: float = 1.0, code: str | None = None) -> None:
        super().__init__(reason, code)
        self.retry_after_s = retry_after_s


class ConfigRefused(DialError):
    """The provider refused something of ours, not of the contact (a caller id it will not use, a callback
    URL it will not take): nothing was placed and every other dial would be refused the same way, so the
    campaign pauses with ``status_reason`` instead of failing its contacts."""

    status_reason = "provider_config_refused"


class AuthFailed(ConfigRefused):
    """The provider refused our credentials (401 / 20003): nothing was placed; the campaign pauses with
    ``provider_auth_failed`` instead of burning through its contacts."""

    status_reason = "provider_auth_failed"


class Provider(ABC):
    #: True when the provider posts status callbacks: live calls are then only checked at their deadline
    #: (a safety net); otherwise they are polled.
    pushes_outcomes: bool = False

    @abstractmethod
    def dial(self, req: DialRequest) -> DialResult:
        """Place one call. Raises PermanentDialError, RetryableDialError, RateLimited or AuthFailed."""

    @abstractmethod
    def fetch(self, sid: str) -> CallStatus | None:
        """The call's current state, or None when the provider has no such call."""

    @abstractmethod
    def lookup(self, to: str, from_: str, since_ms: int, until_ms: int) -> list[CallStatus]:
        """Calls to ``to`` from ``from_`` started within [since, until] (what Twilio's calls.list allows),
        oldest first; ``ref`` is set when the provider knows which attempt a call belongs to. The engine
        picks this attempt's call among them (never one recorded on another attempt)."""

    @abstractmethod
    def hangup(self, sid: str) -> None: ...

    @abstractmethod
    def test_connection(self) -> None:
        """Raise ConnectionFailed when the provider cannot be used."""

    def parse_callback(self, params: Mapping[str, str]) -> CallStatus:
        """A status callback's form fields (Twilio's names: CallSid, CallStatus, AnsweredBy, CallDuration,
        ErrorCode, ...) as a CallStatus. Raises ValueError when a required field is missing."""
        sid = params.get("CallSid") or ""
        status = (params.get("CallStatus") or "").lower()
        if not sid or not status:
            raise ValueError("a status callback needs CallSid and CallStatus")
        seconds, minutes = params.get("CallDuration") or "", params.get("Duration") or ""
        # without CallDuration, Twilio's Duration is the call's billed minutes: as seconds it bills the same
        duration_s = int(seconds) if seconds.isdigit() else int(minutes) * 60 if minutes.isdigit() else 0
        return CallStatus(
            sid=sid,
            status=status,
            answered_by=params.get("AnsweredBy") or None,
            duration_s=duration_s,
            error_code=params.get("ErrorCode") or params.get("SipResponseCode") or None,
            error_message=params.get("ErrorMessage") or None,
            to=params.get("To") or None,
            from_=params.get("From") or None,
        )

    def verify_callback(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        """Whether a callback really comes from the provider (Twilio: X-Twilio-Signature). A provider that
        sends no callbacks accepts none."""
        return False
