"""Regressions for the promises under faults: nothing stranded, nothing dialled after stop or twice,
money never below zero."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import add_sim_provider, calls, make_engine, session_service, show, submit, uid, wait_for

from dialer import groups, intake, keys, lifecycle
from dialer.clock import FakeClock, SystemClock
from dialer.errors import DialerError, InvalidRequest
from dialer.models import Campaign
from dialer.money import parse_money
from dialer.telephony.simulator import sim_dials
from dialer.views import list_view

svc = session_service()
core = svc.core

clock = SystemClock()


def continue_campaign_on_a_group(store: Any, account: str, first_phone: str) -> tuple[str, str]:
    """A draft `end_handle: continue` campaign on a new group holding one contact: (group id, campaign id)."""
    add_sim_provider(store, account)
    gid = groups.create(core, account, "g")
    groups.import_rows(core, account, gid, [("line 2", {"phone": first_phone})])
    body = {"group_id": gid, "end_handle": "continue", "say": "x"}
    return gid, str(svc.for_account(account).submit(body)["campaign_id"])


def test_a_skipped_waiter_passes_the_free_slot_on(store: Any, account: str, stack: Any) -> None:
    """max_concurrent 1: A is live, B (DNC) and C wait for the slot. When A ends, B is woken and skipped;
    C must still be dialled and the campaign complete."""
    add_sim_provider(store, account, max_concurrent=1, sim={"talk_min_s": 0.5, "talk_max_s": 0.5})
    svc.for_account(account).dnc_add(["+34600000902"])
    cid = submit(
        svc,
        account,
        {
            "contacts": [{"phone": p} for p in ("+34600000901", "+34600000902", "+34600000903")],
            "say": "hi",
            "stagger_seconds": 0.01,
        },
    )
    wait_for(lambda: show(svc, account, cid)["status"] == "completed", timeout=30, what="completion")
    assert sorted(d["number"] for d in sim_dials(store.r, cid)) == ["+34600000901", "+34600000903"]


def test_a_cancelled_campaigns_waiter_does_not_strand_another_campaigns(
    store: Any, account: str, stack: Any
) -> None:
    add_sim_provider(store, account, max_concurrent=1, sim={"talk_min_s": 1.0, "talk_max_s": 1.0})
    x = submit(
        svc,
        account,
        {
            "contacts": [{"phone": "+34600000911"}, {"phone": "+34600000912"}],
            "say": "x",
            "stagger_seconds": 0.01,
        },
    )
    y = submit(svc, account, {"contacts": [{"phone": "+34600000913"}], "say": "y"})
    wait_for(lambda: show(svc, account, x)["counters"]["dialing"] == 1, timeout=20, what="x live")
    lifecycle.cancel(core, account, x)
    wait_for(lambda: show(svc, account, y)["status"] == "completed", timeout=30, what="y to complete")
    # x's second attempt ends too: at once when it was waiting, or when the worker holding it asks for its
    # admission (a held attempt is left to its holder, cancel_pending.lua)
    wait_for(lambda: show(svc, account, x)["counters"]["scheduled"] == 0, timeout=30, what="x2 canceled")


def test_resume_after_the_last_call_ended_while_paused_completes(
    store: Any, account: str, stack: Any
) -> None:
    add_sim_provider(store, account, sim={"talk_min_s": 1.0, "talk_max_s": 1.0})
    cid = submit(svc, account, {"contacts": [{"phone": "+34600000921"}], "say": "hi"})
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] == 1, timeout=20, what="live call")
    lifecycle.pause(core, account, cid)
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] == 0, timeout=20, what="call end")
    assert show(svc, account, cid)["status"] == "paused"
    lifecycle.resume(core, account, cid)
    assert show(svc, account, cid)["status"] == "completed"


def test_stop_ends_attempts_due_later_at_once_and_makes_no_recall(
    store: Any, account: str, stack: Any
) -> None:
    """Stop while one call rings and two more are due a minute later: the two end canceled now, and the
    ringing no-answer does not get a recall."""
    add_sim_provider(store, account, sim={"no_answer_s": 1.5})
    cid = submit(
        svc,
        account,
        {
            "contacts": [{"phone": f"+3460000093{i}"} for i in (7, 8, 9)],
            "say": "hi",
            "recall": [0.05],
            "stagger_seconds": 60,
        },
    )
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] == 1, timeout=20, what="live call")
    lifecycle.stop(core, account, cid)
    view = wait_for(
        lambda: (v := show(svc, account, cid))["status"] == "stopped" and v,
        timeout=20,
        what="stopped",
    )
    assert view["counters"]["scheduled"] == 0 and view["counters"]["recalls"] == 0
    assert view["counters"]["failed"] == 3
    states = sorted(r["state"] for r in calls(svc, account, cid))
    assert states == ["canceled", "canceled", "no-answer"]
    assert len(sim_dials(store.r, cid)) == 1


def test_a_price_raised_mid_call_never_takes_the_balance_below_zero(store: Any) -> None:
    account = uid("money")
    store.create_account(account, "M", parse_money("0.02"), "ES", clock.now_ms())
    provider = add_sim_provider(
        store,
        account,
        max_call_seconds=60,
        price_per_minute=parse_money("0.02"),
        sim={"talk_min_s": 30, "talk_max_s": 30},
    )
    fake = FakeClock()
    engine = make_engine(store, fake)
    body = {"contacts": [{"phone": "+34600000941"}], "say": "hi"}
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    engine.launch(account, cid)
    ref = keys.ref(account, keys.attempt_key(cid, 0, 1))
    store.claim_refs([ref], fake.now_ms(), fake.now_ms() + 60_000)
    assert engine.place_call(ref) == "dialed"
    store.put_provider(provider.model_copy(update={"price_per_minute": parse_money("0.50")}))
    fake.advance(40)
    assert engine.check_call(ref) == "delivered"
    acc = store.get_account(account)
    assert (acc.balance, acc.reserved) == (0, 0)
    assert show(svc, account, cid)["cost"] == "0.02"


def test_lookup_never_adopts_another_attempts_call_to_the_same_number(store: Any, account: str) -> None:
    from dialer.telephony.base import DialRequest

    provider = add_sim_provider(store, account)
    sim = core.providers.get(provider)
    now = clock.now_ms()
    placed = sim.dial(
        DialRequest(
            ref=f"{account}|other:0:1",
            key="other:0:1",
            campaign_id="other",
            to="+34600000951",
            from_="+34911234567",
            twiml="<Response/>",
            token="t",
        )
    )
    found = sim.lookup("+34600000951", "+34911234567", now - 5000, now + 5000)
    assert (placed.sid, f"{account}|other:0:1") in [(c.sid, c.ref) for c in found]
    assert all((c.to, c.from_) == ("+34600000951", "+34911234567") for c in found)
    # the engine picks this attempt's call only: the provider's ref decides
    cid = submit(
        svc,
        account,
        {"contacts": [{"phone": "+34600000951"}], "say": "x", "launch_at": "2999-01-01T00:00:00Z"},
    )
    svc.engine.launch(account, cid)
    mine = store.get_attempt(account, keys.attempt_key(cid, 0, 1)).model_copy(update={"dialing_at": now})
    assert svc.engine._lookup(mine, provider, sim) is None


def test_resume_that_completes_reports_it_and_starts_the_next_campaign(
    store: Any, account: str, stack: Any
) -> None:
    add_sim_provider(store, account, sim={"talk_min_s": 1.0, "talk_max_s": 1.0})
    nxt = str(
        svc.for_account(account).submit(
            {"contacts": [{"phone": "+34600000961"}], "say": "next"},
            start=False,
        )["campaign_id"]
    )
    cid = submit(
        svc, account, {"contacts": [{"phone": "+34600000960"}], "say": "hi", "next_campaign_id": nxt}
    )
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] == 1, timeout=20, what="live call")
    lifecycle.pause(core, account, cid)
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] == 0, timeout=20, what="call end")
    assert lifecycle.resume(core, account, cid)["status"] == "completed"
    wait_for(lambda: show(svc, account, nxt)["status"] == "completed", timeout=30, what="next campaign")


def test_deleted_campaigns_take_no_command_and_are_never_chained(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    scope = svc.for_account(account)
    draft = submit(svc, account, {"contacts": [{"phone": "+34600000970"}], "say": "x"}, start=False)
    body = {"contacts": [{"phone": "+34600000971"}], "say": "x", "next_campaign_id": draft}
    chained = submit(svc, account, body, start=False)
    lifecycle.delete(core, account, draft)
    with pytest.raises(DialerError, match="current state: deleted"):
        scope.start(draft)
    with pytest.raises(DialerError, match="current state: deleted"):
        lifecycle.delete(core, account, draft)
    with pytest.raises(InvalidRequest, match="next_campaign_id: campaign not found"):
        scope.submit({"contacts": [{"phone": "+34600000972"}], "say": "x", "next_campaign_id": draft})
    # the chained campaign completes: its deleted next campaign is not started, and the chain is spent
    lifecycle.start_next(core, store.get_campaign(account, chained)[0])
    assert show(svc, account, draft)["status"] == "draft"
    assert show(svc, account, draft)["deleted_at"] is not None
    assert store.campaign_state(account, chained).next_fired


def test_contacts_added_later_are_staggered_from_now_not_behind_the_old_ones(
    store: Any, account: str
) -> None:
    """A continue campaign that already expanded 50 contacts (1 s stagger): a contact imported later is
    due now, not 50 s later."""
    add_sim_provider(store, account)
    fake = FakeClock()
    engine = make_engine(store, fake)
    gid = groups.create(engine.core, account, "g")
    rows = [(f"line {i}", {"phone": f"+3460{i:07d}"}) for i in range(2, 52)]
    groups.import_rows(engine.core, account, gid, rows)
    body = {"group_id": gid, "end_handle": "continue", "say": "x", "stagger_seconds": 1}
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    engine.launch(account, cid)
    fake.advance(5)
    groups.import_rows(
        engine.core,
        account,
        gid,
        [("line 2", {"phone": "+34699999999", "custom_fields": {"n": 12345678901234567890}, "params": []})],
    )
    engine.launch(account, cid)
    new = next(a for a in store.campaign_attempts(account, cid) if a.phone == "+34699999999")
    assert new.due_at == fake.now_ms()
    contact = store.contact(account, cid, new.contact)
    assert contact.data["custom_fields"]["n"] == 12345678901234567890  # big integers survive the append


def test_a_draft_continue_campaign_gets_contacts_added_before_its_start(store: Any, account: str) -> None:
    gid, cid = continue_campaign_on_a_group(store, account, "+34600000980")
    groups.import_rows(core, account, gid, [("line 2", {"phone": "+34600000981"})])
    assert [c.phone for c in store.contacts(account, cid)] == ["+34600000980", "+34600000981"]


def test_an_empty_group_is_refused_at_start_with_no_contacts_found(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    gid = groups.create(core, account, "empty")
    with pytest.raises(DialerError, match="No contacts found"):
        svc.for_account(account).submit({"group_id": gid, "say": "x"}, start=True)


def test_list_pages_through_many_campaigns_created_in_the_same_millisecond(store: Any) -> None:
    account = uid("same")
    store.create_account(account, "S", 0, None, clock.now_ms())
    ids = set()
    for _ in range(120):
        c = Campaign(id=store.new_id(), account_id=account, name="x", provider=None, say="x", created_at=1)
        store.create_campaign(c, [], {})
        ids.add(c.id)
    seen: list[str] = []
    token = None
    while True:
        page = list_view(core, account, None, 7, token)
        seen += [v["id"] for v in page["result"]]
        token = page["next_page_token"]
        if not token:
            break
    assert len(seen) == 120 and set(seen) == ids


def test_a_feed_lost_to_a_crash_is_taken_by_the_next_and_racing_feeds_add_each_contact_once(
    store: Any, account: str
) -> None:
    """Contacts appended to a group whose feed never ran (a crash between the two steps) reach the continue
    campaign with the next import; four feeds racing add each contact once, with no inflated counters."""
    import threading

    from dialer.models import Contact

    gid, cid = continue_campaign_on_a_group(store, account, "+34600001000")
    # the "crash": the group gets a contact, its feed never runs
    store.append_contacts(
        keys.group(account, gid),
        keys.group_contacts(account, gid),
        keys.group_phones(account, gid),
        [Contact(index=0, phone="+34600001001")],
    )
    groups.import_rows(core, account, gid, [("line 2", {"phone": "+34600001002"})])
    assert [c.phone for c in store.contacts(account, cid)] == ["+34600001000", "+34600001001", "+34600001002"]

    store.append_contacts(
        keys.group(account, gid),
        keys.group_contacts(account, gid),
        keys.group_phones(account, gid),
        [Contact(index=0, phone=f"+346000020{i:02d}") for i in range(40)],
    )
    campaign = store.get_campaign(account, cid)[0]
    barrier = threading.Barrier(4)

    def feed() -> None:
        barrier.wait()
        groups.feed_campaign(core, campaign)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    shown = show(svc, account, cid)
    assert len(store.contacts(account, cid)) == 43
    assert (shown["counters"]["total"], shown["counters"]["skipped"]) == (43, 0)


def test_stop_before_any_attempt_exists_is_stopped_at_once(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    cid = submit(
        svc,
        account,
        {"contacts": [{"phone": "+34600001100"}], "say": "x", "launch_at": "2999-01-01T00:00:00Z"},
    )
    store.r.hset(keys.campaign(account, cid), "status", "running")  # launched, nothing expanded yet
    assert lifecycle.stop(core, account, cid)["status"] == "stopped"
