"""Every process reads time through one Clock; decisions are pure functions of ``now``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FakeClock:
    """A clock tests drive by hand (thread-safe)."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = start_ms if start_ms is not None else SystemClock().now_ms()
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> int:
        with self._lock:
            self._now += round(seconds * 1000)
            return self._now

    def set(self, ms: int) -> None:
        with self._lock:
            self._now = ms


def to_iso(ms: int | None) -> str | None:
    """ISO-8601 UTC with milliseconds and Z (the output contract)."""
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def from_datetime(dt: datetime) -> int:
    """A datetime as epoch ms; a naive one is UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)
