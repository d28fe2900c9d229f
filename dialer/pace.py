"""Pace, caller id and quota maths (DESIGN §10): pure functions, the one copy of these rules.

``admit.lua`` applies the quota spread and the pace slots in the same step that counts them (the counter
that decides changes where it is decided); it gets its constants from here and its results are tested
against ``deferral_due`` and ``pace_slot`` (tests/test_pace.py).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import phonenumbers

HOUR_MS = 3_600_000
#: an admitted attempt waits for its pace slot up to this long; a later slot is a deferral
MAX_SLOT_WAIT_MS = 1000
#: how late (ms) after its pace slot a dial may still be sent; a later one is admitted again (a new slot)
DIAL_TOLERANCE_MS = 15
#: how late an attempt may arrive and keep the slot an earlier sleep or deferral booked (less than the
#: dial's tolerance: the admission and the dial still take a few milliseconds after it)
KEEP_SLOT_MS = DIAL_TOLERANCE_MS // 3
#: a provider's dials are spaced 1/cps x (1 + margin): any cps + 1 of its slots span at least 1,019 ms, so
#: with each dial leaving 0..DIAL_TOLERANCE_MS after its slot no 1-s window by the dial clock holds more
#: than cps dials, and ~4 ms are left for the way to the carrier (the rate stays at 98 % of cps)
PACE_MARGIN = 0.02


def gap_ms(calls_per_second: float) -> float:
    """The provider's spacing between two dials (GCRA with burst 1), fractional: whole milliseconds would
    round 33.3 ms (30 cps) down to 33 and let 31 dials into a second."""
    return 1000 * (1 + PACE_MARGIN) / calls_per_second


def stagger_ms(stagger_seconds: float | None, calls_per_second: float | None) -> int:
    """A campaign's spacing between dials: its ``stagger_seconds``, else 1 / the provider's calls per
    second (1 when the provider is unknown)."""
    if stagger_seconds:
        return max(1, round(stagger_seconds * 1000))
    return max(1, round(1000 / (calls_per_second or 1.0)))


def pace_slot(now_ms: int, due_ms: int, campaign_next_ms: int, provider_next_ms: float) -> int:
    """The slot a dial gets: the first whole millisecond when both the campaign and the provider are
    free, never before the attempt is due."""
    return max(now_ms, due_ms, campaign_next_ms, math.ceil(provider_next_ms))


def provider_next(slot_ms: int, provider_next_ms: float, gap: float) -> float:
    """The provider's next free moment after a dial at ``slot_ms``: when the provider set the slot, its
    fraction of a millisecond is carried (else spacing would drift up by one rounding per dial)."""
    base = provider_next_ms if provider_next_ms > slot_ms - 1 else slot_ms
    return base + gap


def late_for_slot(now_ms: int, slot_ms: int) -> bool:
    """A dial sent now would crowd the provider's next slots: it is admitted again instead."""
    return now_ms - slot_ms > DIAL_TOLERANCE_MS


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
    """The country calling code of an E.164 number: calling codes are prefix-free (ITU-T E.164), so the
    one known code among its first 1-3 digits is it, without parsing the whole number."""
    if not e164.startswith("+"):
        return None
    for size in (1, 2, 3):
        code = e164[1 : 1 + size]
        if code.isdigit() and int(code) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return int(code)
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
