"""Regressions for the promises under faults: nothing stranded, nothing dialled after stop or twice,
money never below zero."""

from __future__ import annotations

from typing import Any

from conftest import add_sim_provider, uid, wait_for

from config import Settings
from dialer import keys, lifecycle
from dialer.campaigns import calls_view, campaign_view, submit
from dialer.clock import FakeClock, SystemClock
from dialer.engine import Engine
from dialer.money import parse_money
from dialer.providers import ProviderFactory
from dialer.telephony.simulator import sim_dials

clock = SystemClock()


def new_campaign(store: Any, account: str, body: dict[str, Any]) -> str:
    return str(
        submit(store, clock, ProviderFactory(store.r, clock), account, body, start=True)["campaign_id"]
    )


def test_a_skipped_waiter_passes_the_free_slot_on(store: Any, account: str, stack: Any) -> None:
    """max_concurrent 1: A is live, B (DNC) and C wait for the slot. When A ends, B is woken and skipped;
    C must still be dialled and the campaign complete."""
    add_sim_provider(store, account, max_concurrent=1, sim={"talk_min_s": 0.5, "talk_max_s": 0.5})
    store.dnc_add(account, ["+34600000902"])
    cid = new_campaign(
        store,
        account,
        {
            "contacts": [{"phone": p} for p in ("+34600000901", "+34600000902", "+34600000903")],
            "say": "hi",
            "stagger_seconds": 0.01,
        },
    )
    wait_for(
        lambda: campaign_view(store, account, cid)["status"] == "completed", timeout=30, what="completion"
    )
    assert sorted(d["number"] for d in sim_dials(store.r, cid)) == ["+34600000901", "+34600000903"]


def test_a_cancelled_campaigns_waiter_does_not_strand_another_campaigns(
    store: Any, account: str, stack: Any
) -> None:
    add_sim_provider(store, account, max_concurrent=1, sim={"talk_min_s": 1.0, "talk_max_s": 1.0})
    x = new_campaign(
        store,
        account,
        {
            "contacts": [{"phone": "+34600000911"}, {"phone": "+34600000912"}],
            "say": "x",
            "stagger_seconds": 0.01,
        },
    )
    y = new_campaign(store, account, {"contacts": [{"phone": "+34600000913"}], "say": "y"})
    wait_for(lambda: campaign_view(store, account, x)["counters"]["dialing"] == 1, timeout=20, what="x live")
    lifecycle.cancel(store, clock, account, x)
    wait_for(
        lambda: campaign_view(store, account, y)["status"] == "completed", timeout=30, what="y to complete"
    )
    assert campaign_view(store, account, x)["counters"]["scheduled"] == 0


def test_resume_after_the_last_call_ended_while_paused_completes(
    store: Any, account: str, stack: Any
) -> None:
    add_sim_provider(store, account, sim={"talk_min_s": 1.0, "talk_max_s": 1.0})
    cid = new_campaign(store, account, {"contacts": [{"phone": "+34600000921"}], "say": "hi"})
    wait_for(
        lambda: campaign_view(store, account, cid)["counters"]["dialing"] == 1, timeout=20, what="live call"
    )
    lifecycle.pause(store, clock, account, cid)
    wait_for(
        lambda: campaign_view(store, account, cid)["counters"]["dialing"] == 0, timeout=20, what="call end"
    )
    assert campaign_view(store, account, cid)["status"] == "paused"
    lifecycle.resume(store, clock, account, cid)
    assert campaign_view(store, account, cid)["status"] == "completed"


def test_stop_ends_attempts_due_later_at_once_and_makes_no_recall(
    store: Any, account: str, stack: Any
) -> None:
    """Stop while one call rings and two more are due a minute later: the two end canceled now, and the
    ringing no-answer does not get a recall."""
    add_sim_provider(store, account, sim={"no_answer_s": 1.5})
    cid = new_campaign(
        store,
        account,
        {
            "contacts": [{"phone": f"+3460000093{i}"} for i in (7, 8, 9)],
            "say": "hi",
            "recall": [0.05],
            "stagger_seconds": 60,
        },
    )
    wait_for(
        lambda: campaign_view(store, account, cid)["counters"]["dialing"] == 1, timeout=20, what="live call"
    )
    lifecycle.stop(store, clock, account, cid)
    view = wait_for(
        lambda: (v := campaign_view(store, account, cid))["status"] == "stopped" and v,
        timeout=20,
        what="stopped",
    )
    assert view["counters"]["scheduled"] == 0 and view["counters"]["recalls"] == 0
    assert view["counters"]["failed"] == 3
    states = sorted(r["state"] for r in calls_view(store, account, cid))
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
    engine = Engine(store, fake, ProviderFactory(store.r, fake), Settings())
    cid = submit(
        store,
        fake,
        engine.providers,
        account,
        {"contacts": [{"phone": "+34600000941"}], "say": "hi"},
        start=True,
    )["campaign_id"]
    engine.start_campaign(account, cid)
    ref = keys.ref(account, keys.attempt_key(cid, 0, 1))
    store.claim_refs([ref], fake.now_ms(), fake.now_ms() + 60_000)
    assert engine.place_call(ref) == "dialed"
    store.put_provider(provider.model_copy(update={"price_per_minute": parse_money("0.50")}))
    fake.advance(40)
    engine.sim_event(store.get_attempt(account, keys.attempt_key(cid, 0, 1)).sid)
    acc = store.get_account(account)
    assert (acc.balance, acc.reserved) == (0, 0)
    assert campaign_view(store, account, cid)["cost"] == "0.02"


def test_lookup_never_adopts_another_attempts_call_to_the_same_number(store: Any, account: str) -> None:
    from dialer.telephony.base import DialRequest

    provider = add_sim_provider(store, account)
    sim = ProviderFactory(store.r, clock).get(provider)
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
    assert sim.lookup("+34600000951", "+34911234567", now - 5000, now + 5000, f"{account}|mine:0:1") is None
    found = sim.lookup("+34600000951", "+34911234567", now - 5000, now + 5000, f"{account}|other:0:1")
    assert found is not None and found.sid == placed.sid
