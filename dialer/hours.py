"""Calling hours in the contact's time zone (DESIGN §10): pure functions of ``now``.

The contact's zone is its ``timezone``, else the zones of its number (phonenumbers; when there are
several the window must hold in all of them at once), else — when that never happens, or the number has no
zone — the campaign's zone, else UTC. The chain always ends in a zone where a valid window opens; a window
that opens nowhere raises ``NeverOpens`` (the engine skips the contact with that reason instead of waiting
for ever). A local time that does not exist (DST gap) rolls forward to the end of the gap.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from dialer.models import CallingHours

SEARCH_DAYS = 8
UNKNOWN = "Etc/Unknown"


def number_zones(e164: str) -> list[str]:
    """IANA zones phonenumbers gives for a number (empty when it does not know)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return []
    zones = [z for z in pn_timezone.time_zones_for_number(parsed) if z != UNKNOWN]
    return sorted(set(zones))


class NeverOpens(ValueError):
    """The calling window never opens for this contact, in any zone of the chain."""


def zone_chain(contact_tz: str | None, e164: str, campaign_tz: str | None) -> list[tuple[list[str], str]]:
    """The zone sets to try in order, each with how it reads in reports: the contact's own zone; else all
    of its number's zones at once, then the campaign's zone, then UTC."""
    if contact_tz:
        return [([contact_tz], f"{contact_tz} (contact)")]
    chain: list[tuple[list[str], str]] = []
    zones = number_zones(e164)
    if zones:
        chain.append((zones, "+".join(zones)))
    if campaign_tz:
        chain.append(([campaign_tz], f"{campaign_tz} (campaign timezone)"))
    if campaign_tz != "UTC":
        where = " and ".join(zones) if len(zones) <= 3 else f"all {len(zones)} zones of the number"
        why = f"the window never opens in {where} at once" if zones else "no zone for the number"
        chain.append((["UTC"], f"UTC ({why})"))
    return chain


def _parse_hm(value: str) -> time | None:
    if value == "24:00":
        return None
    h, m = value.split(":")
    return time(int(h), int(m))


def _local(day: date, at: time | None, tz: ZoneInfo) -> datetime:
    """Wall-clock ``at`` on ``day`` in ``tz`` as an aware UTC datetime; 24:00 is the next midnight.

    A wall time inside a DST gap (it never shows on the clock) rolls forward to the end of the gap: the
    first instant whose wall time is later. An ambiguous one (clocks going back) is its first occurrence.
    """
    if at is None:
        day, at = day + timedelta(days=1), time(0, 0)
    wall = datetime.combine(day, at)
    utc = wall.replace(tzinfo=tz).astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc
    # in a gap: the answer lies between the two readings (fold=1 is the earlier instant)
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = utc
    if lo > hi:
        lo, hi = hi, lo
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) if hi.microsecond == 0 else hi


def next_opening_in_zone(now: datetime, hours: CallingHours, zone: str) -> datetime:
    """The earliest moment >= now at which ``zone`` is inside the calling window."""
    tz = ZoneInfo(zone)
    start, end = _parse_hm(hours.start) or time(0, 0), _parse_hm(hours.end)  # start is never 24:00
    today = now.astimezone(tz).date()
    for offset in range(-1, SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        if day.isoweekday() not in hours.weekdays:
            continue
        opens = _local(day, start, tz)
        crosses_midnight = end is not None and end <= start  # e.g. 22:00-02:00
        closes = _local(day + timedelta(days=1) if crosses_midnight else day, end, tz)
        if closes <= now or closes <= opens:  # over, or vanished in a DST gap
            continue
        return max(opens, now)
    raise NeverOpens("the calling window never opens in this zone")


def next_opening_in_all(now_ms: int, hours: CallingHours, zones: list[str]) -> int:
    """The earliest ms >= now at which every zone is inside the window (now if it is open). Raises
    NeverOpens when that does not happen within the search horizon, ZoneInfoNotFoundError for an unknown
    zone."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    t = now
    for _ in range(4 * SEARCH_DAYS):
        candidates = [next_opening_in_zone(t, hours, z) for z in zones]
        latest = max(candidates)
        if latest == t and all(c == t for c in candidates):
            return now_ms if t == now else round(t.timestamp() * 1000)
        t = latest
        if (t - now).days > SEARCH_DAYS:
            break
    raise NeverOpens("the calling window never holds in all of the number's zones at once")


def next_opening(
    now_ms: int, hours: CallingHours | None, chain: list[tuple[list[str], str]]
) -> tuple[int, str | None]:
    """(when the contact may be called — now if inside its window or no hours are set —, the zone that
    decided). The first zone set of the chain where the window opens decides; an unknown zone (tzdata
    without it) passes to the next set. Raises NeverOpens when none opens."""
    if hours is None:
        return now_ms, None
    for zones, label in chain:
        try:
            return next_opening_in_all(now_ms, hours, zones), label
        except (NeverOpens, ValueError, ZoneInfoNotFoundError):
            continue
    raise NeverOpens("the calling window never opens for this contact")
