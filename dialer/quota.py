"""Hourly quota windows (DESIGN §10): UTC hour buckets; attempts over quota spread over the next hour.

``admit.lua`` applies ``deferral_due`` in the same step that counts the quota (the counter that decides
changes where it is decided); this module is the rule's statement and what the tests check it against.
"""

from __future__ import annotations

HOUR_MS = 3_600_000


def window(now_ms: int) -> tuple[int, int]:
    """The UTC clock hour holding ``now_ms``: [start, end)."""
    start = now_ms - now_ms % HOUR_MS
    return start, start + HOUR_MS


def deferral_due(next_hour_ms: int, rank: int, quota: int) -> int:
    """The rank-th attempt (1-based) deferred into the hour starting at ``next_hour_ms``: evenly spread,
    never all at hh:00."""
    return next_hour_ms + (rank - 1) * HOUR_MS // quota
