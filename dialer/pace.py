"""Pace, caller id and quota maths (DESIGN §10): pure functions, the one copy of these rules.

``admit.lua`` applies the quota spread and the pace slots in the same step that counts them (the counter
that decides changes where it is decided); it gets its constants from here and its results are tested
against ``deferral_due`` and ``pace_slot`` (tests/test_pace.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import phonenumbers

HOUR_MS = 3_600_000
#: an admitted attempt waits for its pace slot up to this long; a later slot is a deferral
MAX_SLOT_WAIT_MS = 1000
#: how late (ms) an attempt may arrive and still keep the pace slot an earlier deferral booked
LATE_SLOT_MS = 50


def gap_ms(calls_per_second: float) -> int:
    """The provider's spacing between two dials (GCRA with burst 1)."""
    return max(1, round(1000 / calls_per_second))


def stagger_ms(stagger_seconds: float | None, calls_per_second: float | None) -> int:
    """A campaign's spacing between dials: its ``stagger_seconds``, else 1 / the provider's calls per
    second (1 when the provider is unknown)."""
    if stagger_seconds:
        return max(1, round(stagger_seconds * 1000))
    return gap_ms(calls_per_second or 1.0)


def pace_slot(now_ms: int, due_ms: int, campaign_next_ms: int, provider_next_ms: int) -> int:
    """The slot a dial gets: the first moment both the campaign and the provider are free, never before
    the attempt is due."""
    return max(now_ms, due_ms, campaign_next_ms, provider_next_ms)


def hour_start(ms: int) -> int:
    return ms - ms % HOUR_MS


def hour_window(now_ms: int) -> tuple[int, int]:
    """The UTC clock hour holding ``now_ms``: [start, end)."""
    start = hour_start(now_ms)
    return start, start + HOUR_MS


def deferral_due(next_hour_ms: int, rank: int, quota: int) -> int:
    """The rank-th attempt (1-based) deferred into the hour starting at ``next_hour_ms``: evenly spread,
    never all at hh:00."""
    return next_hour_ms + (rank - 1) * HOUR_MS // quota


def _country(e164: str) -> int | None:
    try:
        return phonenumbers.parse(e164, None).country_code
    except phonenumbers.NumberParseException:
        return None


def from_number(from_numbers: Sequence[str], to: str) -> str:
    """The caller id for a call to ``to``: one in the contact's country when the provider has one, else a
    stable choice per number (the same every time, so a lost dial can be looked up by to + from)."""
    if not from_numbers:
        raise ValueError("the provider has no caller id")
    country = _country(to)
    same = [n for n in from_numbers if country is not None and _country(n) == country]
    pool = same or list(from_numbers)
    digest = int.from_bytes(hashlib.sha256(to.encode()).digest()[:4], "big")
    return pool[digest % len(pool)]
