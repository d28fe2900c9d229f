"""At-least-once delivery: every step is safe to run twice and to die at any line (DESIGN §6)."""

from __future__ import annotations

import threading
from typing import Any

from conftest import add_sim_provider, make_engine, session_service, show

from dialer import intake, keys, lifecycle
from dialer.clock import FakeClock
from dialer.engine import Engine
from dialer.money import parse_money
from dialer.pace import DIAL_TOLERANCE_MS, from_number
from dialer.telephony.base import DialRequest
from dialer.telephony.simulator import sim_dials

svc = session_service()
core = svc.core


def started(store: Any, engine: Engine, account: str, phones: list[str]) -> tuple[str, list[str]]:
    """A campaign started now and expanded (no scheduler involved); returns its id and attempt refs."""
    body = {"contacts": [{"phone": p} for p in phones], "say": "hi", "recall": [0.05]}
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    engine.launch(account, cid)
    refs = [keys.ref(account, a.key) for a in store.campaign_attempts(account, cid)]
    now = engine.core.now()
    assert store.claim_refs(refs, now + 60_000, now + 60_000) == refs  # as the scheduler would
    return cid, refs


def admit(store: Any, att: Any, token: str, now: int) -> tuple[str, int, str]:
    """Admission as a worker would ask it (then the test plays the worker's death)."""
    return store.admit(att, "sim", token, 1000, now, 1000, DIAL_TOLERANCE_MS, "+34911234567")[:3]  # type: ignore[no-any-return]


def run_concurrently(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def body(i: int) -> None:
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_place_call_run_eight_times_at_once_dials_once(store: Any, account: str) -> None:
    """Eight deliveries of the same place_call message, in eight threads at once: one dial."""
    add_sim_provider(store, account)
    engine = make_engine(store, FakeClock())
    cid, refs = started(store, engine, account, ["+34600000001"])
    results = run_concurrently(8, lambda: engine.place_call(refs[0]))
    assert results.count("dialed") == 1
    assert len(sim_dials(store.r, cid)) == 1
    # and once more, later: still one
    assert engine.place_call(refs[0]) == "live"
    assert len(sim_dials(store.r, cid)) == 1


def test_start_campaign_twice_at_once_expands_each_contact_once(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    engine = make_engine(store, FakeClock())
    body = {"contacts": [{"phone": f"+3460000{i:04d}"} for i in range(2500)], "say": "hi"}
    cid = svc.for_account(account).submit(body, start=True)["campaign_id"]
    run_concurrently(4, lambda: engine.launch(account, cid))
    attempts = store.campaign_attempts(account, cid)
    assert len(attempts) == 2500
    assert len({a.key for a in attempts}) == 2500
    counters = show(svc, account, cid)["counters"]
    assert counters["scheduled"] == 2500
    assert show(svc, account, cid)["status"] == "running"


def test_worker_dies_after_admission_before_dialing_then_the_attempt_is_dialled_once(
    store: Any, account: str
) -> None:
    """Admitted (marked dialing) but the worker died before the provider call: after the lease, a
    redelivery looks the call up, finds none, gives the admission back, and the attempt is dialled once
    through the normal checks."""
    add_sim_provider(store, account)
    clock = FakeClock()
    engine = make_engine(store, clock, lease_s=5)
    cid, refs = started(store, engine, account, ["+34600000002"])
    att = store.get_attempt(*keys.parse_ref(refs[0]))
    decision, _, _ = admit(store, att, "token-of-the-dead-worker", clock.now_ms())
    assert decision == "admit"
    assert engine.place_call(refs[0]) == "busy"  # within the lease: someone may be dialling it
    clock.advance(6)
    # the lease is over and the provider has no such call: the admission is given back, and the attempt
    # goes through every check again — here a pause that came meanwhile
    assert engine.place_call(refs[0]) == "recovered"
    lifecycle.pause(engine.core, account, cid)
    assert store.claim_refs(refs, clock.now_ms(), clock.now_ms() + 60_000) == refs
    assert engine.place_call(refs[0]) == "park"
    assert sim_dials(store.r, cid) == []
    lifecycle.resume(engine.core, account, cid)
    assert store.claim_refs(refs, clock.now_ms(), clock.now_ms() + 60_000) == refs
    assert engine.place_call(refs[0]) == "dialed"
    assert engine.place_call(refs[0]) == "live"
    assert len(sim_dials(store.r, cid)) == 1
    assert store.get_account(account).reserved == 2000  # one reservation, for the one live call


def test_worker_dies_after_the_provider_took_the_call_then_it_is_adopted_not_redialled(
    store: Any, account: str
) -> None:
    """The provider placed the call but the worker died before recording it: reconciliation finds the
    call by to + from + time and adopts it; the outcome then settles money exactly once."""
    provider = add_sim_provider(
        store, account, price_per_minute=parse_money("0.10"), sim={"talk_min_s": 30, "talk_max_s": 30}
    )
    clock = FakeClock()
    engine = make_engine(store, clock, lease_s=5)
    cid, refs = started(store, engine, account, ["+34600000003"])
    balance_before = store.get_account(account).balance
    att = store.get_attempt(*keys.parse_ref(refs[0]))
    admit(store, att, "tok", clock.now_ms())
    sim = engine.core.providers.get(provider)
    placed = sim.dial(
        DialRequest(
            ref=refs[0],
            key=att.key,
            campaign_id=cid,
            to=att.phone,
            from_=from_number(provider.from_numbers, att.phone),
            twiml="<Response/>",
            token="tok",
        )
    )
    clock.advance(6)
    assert engine.place_call(refs[0]) == "reconciled"
    assert len(sim_dials(store.r, cid)) == 1
    assert store.get_attempt(*keys.parse_ref(refs[0])).sid == placed.sid
    clock.advance(40)  # the simulated call (30 s of talk: 1 started minute) is over
    assert engine.check_call(refs[0]) == "delivered"
    assert engine.check_call(refs[0]) == "gone"  # a repeated check changes nothing
    done = sim.fetch(placed.sid)
    assert done is not None and engine.record_outcome(account, att.key, done) == "stale"  # nor a callback
    view = show(svc, account, cid)
    assert view["status"] == "completed"
    assert view["counters"]["delivered"] == 1
    assert view["cost"] == "0.10"
    acc = store.get_account(account)
    assert acc.balance == balance_before - parse_money("0.10")
    assert acc.reserved == 0


def test_place_call_run_directly_twice_on_an_unclaimed_attempt_dials_once(store: Any, account: str) -> None:
    """Without any scheduler: the actor's function called twice at once for a due attempt claims it
    itself (one caller wins) and dials once."""
    add_sim_provider(store, account)
    engine = make_engine(store, FakeClock())
    body = {"contacts": [{"phone": "+34600000004"}], "say": "hi"}
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    engine.launch(account, cid)
    ref = keys.ref(account, keys.attempt_key(cid, 0, 1))
    results = run_concurrently(2, lambda: engine.place_call(ref))
    # the other caller lost the claim (stale), found the dial in progress (busy) or already placed (live)
    assert sorted(results) in (["busy", "dialed"], ["dialed", "stale"], ["dialed", "live"])
    assert len(sim_dials(store.r, cid)) == 1
