"""Property tests (hypothesis) for the pure rules: quota windows, calling-hours openings across DST,
cost rounding."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.hours import NeverOpens, next_opening, next_opening_in_all, zone_chain
from dialer.models import CallingHours
from dialer.money import call_cost
from dialer.pace import HOUR_MS, deferral_due
from dialer.pace import hour_window as window

ZONES = [
    "Europe/Madrid",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "America/St_Johns",
]
# instants around 2025-2027, where several of these zones change their clocks
instants = st.integers(min_value=1_735_689_600_000, max_value=1_798_761_600_000)


@given(instants)
def test_quota_window_is_the_utc_hour_holding_now(now: int) -> None:
    start, end = window(now)
    assert start <= now < end
    assert end - start == HOUR_MS
    assert datetime.fromtimestamp(start / 1000, UTC).minute == 0
    assert start % HOUR_MS == 0


@given(instants, st.integers(min_value=1, max_value=10_000))
def test_quota_deferrals_spread_evenly_over_the_next_hour(now: int, quota: int) -> None:
    _, next_hour = window(now)
    dues = [deferral_due(next_hour, rank, quota) for rank in range(1, quota + 1)]
    assert dues[0] == next_hour
    assert all(next_hour <= d < next_hour + HOUR_MS for d in dues)
    assert dues == sorted(dues)
    assert all(b - a >= HOUR_MS // quota for a, b in itertools.pairwise(dues))


def _is_open(at: datetime, hours: CallingHours, zone: str) -> bool:
    """An independent statement of 'inside the window' (for windows that do not cross midnight)."""
    local = at.astimezone(ZoneInfo(zone))
    start = tuple(map(int, hours.start.split(":")))
    end = (24, 0) if hours.end == "24:00" else tuple(map(int, hours.end.split(":")))
    return local.isoweekday() in hours.weekdays and start <= (local.hour, local.minute) < end


windows = st.tuples(st.integers(0, 22), st.sampled_from([0, 30]), st.integers(1, 12)).map(
    lambda t: (f"{t[0]:02d}:{t[1]:02d}", f"{min(24, t[0] + t[2]):02d}:{t[1] if t[0] + t[2] < 24 else 0:02d}")
)


@settings(max_examples=300, deadline=None)
@given(instants, windows, st.sets(st.integers(1, 7), min_size=1), st.sampled_from(ZONES))
def test_next_calling_hours_opening_is_open_and_the_earliest(
    now_ms: int, window_: tuple[str, str], weekdays: set[int], zone: str
) -> None:
    hours = CallingHours(start=window_[0], end=window_[1], weekdays=sorted(weekdays))
    opening = next_opening_in_all(now_ms, hours, [zone])
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    at = datetime.fromtimestamp(opening / 1000, UTC)
    assert opening >= now_ms
    assert _is_open(at, hours, zone), (at, at.astimezone(ZoneInfo(zone)))
    if opening > now_ms:
        assert not _is_open(at - timedelta(seconds=1), hours, zone)
    else:
        assert _is_open(now, hours, zone)


def test_an_opening_inside_a_dst_gap_rolls_forward_to_the_end_of_the_gap() -> None:
    """Madrid skips 02:00-03:00 on 2026-03-29: a 02:30 opening is at 03:00 local (01:00 UTC)."""
    saturday_noon = round(datetime(2026, 3, 28, 12, tzinfo=UTC).timestamp() * 1000)
    opening = next_opening_in_all(
        saturday_noon, CallingHours(start="02:30", end="04:00", weekdays=[7]), ["Europe/Madrid"]
    )
    assert datetime.fromtimestamp(opening / 1000, UTC) == datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_a_contact_must_be_inside_the_window_in_every_zone_of_its_number() -> None:
    """+34 6.. may be Madrid or the Canaries: 09:00 must have come in both (09:00 UTC in November)."""
    monday_7utc = round(datetime(2026, 11, 23, 7, tzinfo=UTC).timestamp() * 1000)
    opening = next_opening_in_all(
        monday_7utc, CallingHours(start="09:00", end="20:00"), ["Atlantic/Canary", "Europe/Madrid"]
    )
    assert datetime.fromtimestamp(opening / 1000, UTC) == datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_a_window_that_never_holds_in_all_the_numbers_zones_falls_to_the_campaign_zone_then_utc() -> None:
    """20:00-21:00 never holds in Madrid and the Canaries at once (they are an hour apart): the campaign's
    zone decides when it has one, UTC otherwise — the contact is called in a real window, and the zone
    that decided is reported."""
    monday_7utc = round(datetime(2026, 11, 23, 7, tzinfo=UTC).timestamp() * 1000)
    hours = CallingHours(start="20:00", end="21:00")
    with pytest.raises(NeverOpens):
        next_opening_in_all(monday_7utc, hours, ["Atlantic/Canary", "Europe/Madrid"])
    at, zone = next_opening(monday_7utc, hours, zone_chain(None, "+34600123451", "Europe/Madrid"))
    assert zone == "Europe/Madrid (campaign timezone)"
    assert datetime.fromtimestamp(at / 1000, UTC) == datetime(2026, 11, 23, 19, tzinfo=UTC)
    at, zone = next_opening(monday_7utc, hours, zone_chain(None, "+34600123451", None))
    assert zone == "UTC (the window never opens in Atlantic/Canary and Europe/Madrid at once)"
    assert datetime.fromtimestamp(at / 1000, UTC) == datetime(2026, 11, 23, 20, tzinfo=UTC)
    at, zone = next_opening(monday_7utc, hours, zone_chain("Asia/Tokyo", "+34600123451", "Europe/Madrid"))
    assert zone == "Asia/Tokyo (contact)"


def test_a_chain_with_no_zone_where_the_window_opens_says_so() -> None:
    with pytest.raises(NeverOpens):
        next_opening(0, CallingHours(start="09:00", end="10:00"), [])


@given(st.integers(min_value=0, max_value=10 * 86_400), st.integers(min_value=0, max_value=10_000_000))
def test_cost_is_every_started_minute_never_less_never_a_minute_more(duration_s: int, price: int) -> None:
    cost = call_cost(duration_s, price)
    exact = price * duration_s / 60
    assert cost >= exact
    assert cost - exact < price or price == 0
    assert cost == math.ceil(duration_s / 60) * price
    assert (cost == 0) == (duration_s == 0 or price == 0)
