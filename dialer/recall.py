"""Recall policy maths (DESIGN §5): pure functions, no I/O."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

MAX_RECALLS = 10
MAX_OFFSET_MIN = 7 * 24 * 60


def parse_recall(value: Any) -> list[float]:
    """Accept a JSON array of minutes or a string holding one; raise ValueError naming the entry.

    ``"[30,120]"`` and ``[30, 120]`` are the same policy; fractional minutes are allowed.
    """
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            raise ValueError('must be a JSON array of minutes, e.g. [30, 120] or "[30,120]"') from None
    if not isinstance(value, list):
        raise ValueError('must be an array of minutes, e.g. [30, 120] or "[30,120]"')
    if len(value) > MAX_RECALLS:
        raise ValueError(f"at most {MAX_RECALLS} recalls are allowed")
    out: list[float] = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise ValueError(f"entry {i}: {item!r} is not a number of minutes")
        try:
            minutes = float(item)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"entry {i}: more than 7 days ({MAX_OFFSET_MIN} minutes)") from None
        if not math.isfinite(minutes) or minutes <= 0:
            raise ValueError(f"entry {i}: {item!r} must be greater than 0 minutes")
        if minutes > MAX_OFFSET_MIN:
            raise ValueError(f"entry {i}: {item!r} is more than 7 days ({MAX_OFFSET_MIN} minutes)")
        if out and minutes <= out[-1]:
            raise ValueError(f"entry {i}: {item!r} must be greater than the entry before it")
        out.append(minutes)
    return out


def offset_ms(minutes: float) -> int:
    return round(minutes * 60_000)


def next_recall_due(
    recall: Sequence[float], attempt_number: int, first_at_ms: int, ended_at_ms: int
) -> int | None:
    """When attempt ``attempt_number + 1`` is due, or None when the policy is used up.

    Offsets are absolute from the contact's first call: due = max(first + offset_n, ended_at of attempt n).
    """
    if attempt_number < 1 or attempt_number > len(recall):
        return None
    return max(first_at_ms + offset_ms(recall[attempt_number - 1]), ended_at_ms)
