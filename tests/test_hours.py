"""Calling hours end to end in the engine, on a driven clock: a contact whose number has several zones is
called in a real window (or skipped with a reason), never deferred for ever, and the campaign completes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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


def test_a_window_that_never_holds_in_all_the_numbers_zones_is_dialled_in_utc(
    store: Any, account: str
) -> None:
    """20:00-21:00 never holds in Madrid and the Canaries at once; with no campaign zone the contact is
    called at 20:00 UTC (reported), and the campaign completes."""
    add_sim_provider(store, account)
    clock = FakeClock(MONDAY_07_UTC)
    engine = make_engine(store, clock)
    body = {
        "contacts": [{"phone": "+34600000001"}],
        "say": "hi",
        "calling_hours": {"start": "20:00", "end": "21:00"},
    }
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    assert run_until_done(engine, account, cid, clock) == ["defer", "dialed", "delivered"]
    row = svc.for_account(account).calls(cid)[0]
    assert row["placed_at"] == "2026-11-23T20:00:00.000Z"
    assert row["hours_zone"] == "UTC (no zone for the number)"
    assert show(svc, account, cid)["status"] == "completed"


def test_the_campaign_timezone_decides_for_such_a_number_and_says_so(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    clock = FakeClock(MONDAY_07_UTC)
    engine = make_engine(store, clock)
    body = {
        "contacts": [{"phone": "+34600000001"}],
        "say": "hi",
        "timezone": "Europe/Madrid",
        "calling_hours": {"start": "20:00", "end": "21:00"},
    }
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    assert run_until_done(engine, account, cid, clock) == ["defer", "dialed", "delivered"]
    row = svc.for_account(account).calls(cid)[0]
    assert row["placed_at"] == "2026-11-23T19:00:00.000Z"  # 20:00 in Madrid
    assert row["hours_zone"] == "Europe/Madrid (campaign timezone)"
