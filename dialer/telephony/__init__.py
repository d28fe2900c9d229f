"""Telephony providers behind one small interface (DESIGN §7)."""

from dialer.telephony.base import (
    CallStatus,
    DialRequest,
    DialResult,
    PermanentDialError,
    Provider,
    RateLimited,
    RetryableDialError,
)

__all__ = [
    "CallStatus",
    "DialRequest",
    "DialResult",
    "PermanentDialError",
    "Provider",
    "RateLimited",
    "RetryableDialError",
]
