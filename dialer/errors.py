"""One exception base; each error carries the user's message (seed wording where a seed has one)."""

from __future__ import annotations

#: the HTTP header in which the web app names the class of a refusal (the client's HTTP mode raises it)
ERROR_HEADER = "X-Dialer-Error"


class DialerError(Exception):
    """A refusal by a rule: exit 1 on the CLI, 4xx on HTTP."""

    http_status = 400
    key = "error"  # seed 000: {"error": ...} or {"warning": ...}

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(DialerError):
    """Bad input; the message names the field (``contacts.3.phone: ...``); ``details`` lists each problem
    as ``{"field": "contacts.3.phone", "message": "..."}`` when there are several."""

    def __init__(self, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class Unauthorized(DialerError):
    """No API key, or one no account has."""

    http_status = 401


class Forbidden(DialerError):
    """A request that cannot prove where it comes from (a provider callback without a valid signature)."""

    http_status = 403


class PayloadTooLarge(DialerError):
    """A body or a contact list over the configured limit (the message names the limit)."""

    http_status = 413


class NotFound(DialerError):
    http_status = 404


class Conflict(DialerError):
    http_status = 409


class InsufficientBalance(DialerError):
    http_status = 401

    def __init__(self, message: str = "Insufficient balance") -> None:
        super().__init__(message)


class NoGroupOrProvider(DialerError):
    http_status = 401

    def __init__(self, message: str = "Campaign has no group or provider") -> None:
        super().__init__(message)


class QuotaExceeded(DialerError):
    key = "warning"

    def __init__(self, message: str = "Hourly quota crossed") -> None:
        super().__init__(message)


class ConnectionFailed(DialerError):
    http_status = 401

    def __init__(self, message: str = "Connection Failed. Please check your with administrator") -> None:
        super().__init__(message)


class CredentialsUnreadable(InvalidRequest):
    """A provider's stored credentials cannot be opened with this process's DIALER_SECRET_KEY (unset, or
    another key): its campaigns pause with ``provider_credentials_unreadable`` until the key is right or
    the credentials are given again."""


class InvalidState(DialerError):
    """A command not allowed in the campaign's current state."""


class RedisUnavailable(Exception):
    """Redis cannot be reached (exit 3 with a hint)."""


class ServiceUnavailable(RedisUnavailable):
    """The client's HTTP mode: the web process cannot be reached or its store is down (503); caught by
    ``except RedisUnavailable`` like the Redis mode's outage."""


def error_classes() -> dict[str, type[DialerError]]:
    """Every refusal class by name (the web answers name theirs in ``X-Dialer-Error``, so the client's
    HTTP mode raises the class the service raised)."""
    found: dict[str, type[DialerError]] = {}
    todo: list[type[DialerError]] = [DialerError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo += cls.__subclasses__()
    return found
