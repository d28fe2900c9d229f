"""Every process reads time through one Clock; decisions are pure functions of ``now``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def monotonic(self) -> float:
        """Seconds that never go back (measures how long something took in this process)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock tests drive by hand (thread-safe)."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = start_ms if start_ms is not None else SystemClock().now_ms()
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.now_ms() / 1000

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


#: the instants the dialer takes (a launch time): 1970-01-01 to the end of 9999, in UTC
EARLIEST_MS = 0
LATEST_MS = 253_402_300_799_999


def parse_instant(value: object) -> int:
    """An ISO-8601 time (a string; ``Z`` or an offset, none = UTC) as epoch ms. Numbers are refused (seconds
    or milliseconds would be a guess), and so is a time outside 1970..9999 once converted to UTC. Raises
    ValueError with the reason."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value!r} (e.g. 2026-12-01T09:00:00Z)") from None
    else:
        raise ValueError(f'must be an ISO-8601 time as a string (e.g. "2026-12-01T09:00:00Z"), not {value!r}')
    try:
        ms = from_datetime(dt)
    except (OverflowError, ValueError):
        raise ValueError(f"{value!r} is outside the years 1970 to 9999 in UTC") from None
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise ValueError(f"{value!r} is outside the years 1970 to 9999 in UTC")
    return ms
