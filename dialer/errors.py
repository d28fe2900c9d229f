"""One exception base; each error carries the user's message (seed wording where a seed has one)."""

from __future__ import annotations


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


class InvalidState(DialerError):
    """A command not allowed in the campaign's current state."""


class RedisUnavailable(Exception):
    """Redis cannot be reached (exit 3 with a hint)."""
