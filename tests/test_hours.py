"""Calling hours end to end in the engine, on a driven clock: a contact whose number has several zones is
called in a real window (or skipped with a reason), never deferred for ever, and the campaign completes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import add_sim_provider, make_engine, session_service, show

from dialer import intake, keys
from dialer.clock import FakeClock

svc = session_service()
MONDAY_07_UTC = round(datetime(2026, 11, 23, 7, tzinfo=UTC).timestamp() * 1000)


def run_until_done(engine: Any, account: str, cid: str, clock: FakeClock) -> list[str]:
    """Play scheduler and worker by hand: claim each due attempt, place it, let its call end."""
    store = engine.core.store
    engine.launch(account, cid)
    results = []
    for _ in range(20):
        due = [
            keys.ref(account, a.key)
            for a in store.campaign_attempts(account, cid)
            if a.state.value == "scheduled"
        ]
        if not due:
            break
        att = store.get_attempt(*keys.parse_ref(due[0]))
        clock.set(max(clock.now_ms(), att.due_at))
        store.claim_refs(due[:1], clock.now_ms() + 1000, clock.now_ms() + 60_000)
        results.append(engine.place_call(due[0]))
        if results[-1] == "dialed":
            clock.advance(10)
            results.append(engine.check_call(due[0]))
    return results


def called_at(store: Any, account: str, phone: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    """A one-contact campaign with a calling window, run to its end on a clock driven from Monday 07:00 UTC:
    the contact is deferred to the window, called there and the campaign completes; returns its call row."""
    add_sim_provider(store, account)
    clock = FakeClock(MONDAY_07_UTC)
    engine = make_engine(store, clock)
    body = {
        "contacts": [{"phone": phone}],
        "say": "hi",
        "calling_hours": {"start": start, "end": end},
        **extra,
    }
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    assert run_until_done(engine, account, cid, clock) == ["defer", "dialed", "delivered"]
    assert show(svc, account, cid)["status"] == "completed"
    return dict(svc.for_account(account).calls(cid)[0])


def test_a_window_that_never_holds_in_all_the_numbers_zones_is_dialled_in_utc(
    store: Any, account: str
) -> None:
    """20:00-21:00 never holds in Madrid and the Canaries at once; with no campaign zone the contact is
    called at 20:00 UTC, and the report says why."""
    row = called_at(store, account, "+34600000001", "20:00", "21:00")
    assert row["placed_at"] == "2026-11-23T20:00:00.000Z"
    assert row["hours_zone"] == "UTC (the window never opens in Atlantic/Canary and Europe/Madrid at once)"


@pytest.mark.parametrize(
    "phone",
    [
        "+18002752271",  # North American toll-free: every zone of the NANP
        "+79123456781",  # a Russian mobile: eleven time zones
        "+77012345671",  # Kazakhstan shares +7 with Russia
        "+61412345671",  # an Australian mobile: every Australian zone
    ],
)
def test_numbers_of_many_zones_are_called_in_a_real_window_and_the_campaign_completes(
    store: Any, account: str, phone: str
) -> None:
    """A one-hour window that never holds in all of a number's zones at once, no campaign zone: the contact
    is called at the window in UTC, the report says why, and the campaign completes."""
    row = called_at(store, account, phone, "20:00", "21:00")
    assert row["placed_at"] == "2026-11-23T20:00:00.000Z"
    assert row["hours_zone"].startswith("UTC (the window never opens in all")


def test_a_number_of_several_zones_is_called_when_the_window_holds_in_all_of_them(
    store: Any, account: str
) -> None:
    """09:00-21:00 holds in Madrid and the Canaries at once from 09:00 Madrid (08:00 UTC): called then,
    reported in both zones."""
    row = called_at(store, account, "+34600000001", "09:00", "21:00")
    assert (row["placed_at"], row["hours_zone"]) == (
        "2026-11-23T09:00:00.000Z",
        "Atlantic/Canary+Europe/Madrid",
    )


def test_the_campaign_timezone_decides_for_such_a_number_and_says_so(store: Any, account: str) -> None:
    row = called_at(store, account, "+34600000001", "20:00", "21:00", timezone="Europe/Madrid")
    assert row["placed_at"] == "2026-11-23T19:00:00.000Z"  # 20:00 in Madrid
    assert row["hours_zone"] == "Europe/Madrid (campaign timezone)"
