"""The provider interface: dial, lookup, fetch, hang up, test the connection."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

FINAL_PROVIDER_STATES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass(frozen=True)
class DialRequest:
    ref: str
    key: str
    campaign_id: str
    to: str
    from_: str
    twiml: str
    token: str
    timeout_s: int = 30
    time_limit_s: int = 600
    status_callback: str | None = None
    machine_detection: bool = True


@dataclass(frozen=True)
class DialResult:
    sid: str
    status: str  # queued | ringing | in-progress


@dataclass(frozen=True)
class CallStatus:
    """A call's state as the provider reports it (callback, fetch or lookup)."""

    sid: str
    status: str
    answered_by: str | None = None
    duration_s: int = 0
    error_code: str | None = None
    ended_at_ms: int | None = None
    ref: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_PROVIDER_STATES


class DialError(Exception):
    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class PermanentDialError(DialError):
    """The call can never happen (invalid number, ...): the attempt ends failed, no recall."""


class RetryableDialError(DialError):
    """The provider may or may not have placed the call (5xx, timeout): reconcile before dialling again."""


class RateLimited(DialError):
    """The provider refused for now (429 / 20429): nothing was placed; defer."""

    def __init__(self, reason: str, retry_after_s: float = 1.0, code: str | None = None) -> None:
        super().__init__(reason, code)
        self.retry_after_s = retry_after_s


class Provider(ABC):
    @abstractmethod
    def dial(self, req: DialRequest) -> DialResult: ...

    @abstractmethod
    def fetch(self, sid: str) -> CallStatus | None: ...

    @abstractmethod
    def lookup(self, to: str, from_: str, since_ms: int, until_ms: int, ref: str) -> CallStatus | None:
        """Find the call of attempt ``ref`` by to + from + start-time window (what Twilio's calls.list
        allows); a call known to belong to another attempt is never returned."""

    @abstractmethod
    def hangup(self, sid: str) -> None: ...

    @abstractmethod
    def test_connection(self) -> None:
        """Raise ConnectionFailed when the provider cannot be used."""
