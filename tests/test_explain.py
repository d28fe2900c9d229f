"""Why is it not dialling: `explain` names what each contact waits for and when it can pass, from the reasons
the engine stores — on a driven clock, one wait kind at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conftest import add_sim_provider, make_engine, uid

from dialer import intake, keys, lifecycle, ops
from dialer.clock import FakeClock
from dialer.money import parse_money
from dialer.pace import hour_start

MONDAY_07_UTC = round(datetime(2026, 11, 23, 7, tzinfo=UTC).timestamp() * 1000)


def new_campaign(
    store: Any, body: dict[str, Any], balance: str = "100", **provider: Any
) -> tuple[Any, str, str]:
    account = uid("exp")
    store.create_account(account, "E", parse_money(balance), "ES", 0)
    add_sim_provider(store, account, **provider)
    engine = make_engine(store, FakeClock(MONDAY_07_UTC))
    cid = str(intake.submit(engine.core, account, {"say": "hi", **body}, True)["campaign_id"])
    return engine, account, cid


def place_all(engine: Any, account: str, cid: str) -> list[str]:
    """The scheduler and a worker by hand: claim every due attempt and place it."""
    store = engine.core.store
    now = engine.core.now()
    refs = [
        keys.ref(account, a.key)
        for a in store.campaign_attempts(account, cid)
        if a.state.value == "scheduled" and a.due_at <= now + 1000
    ]
    store.claim_refs(refs, now + 1000, now + 60_000)
    return [engine.place_call(r) for r in refs]


def explained(engine: Any, account: str, cid: str) -> tuple[str, dict[str, Any]]:
    res = ops.explain(engine.core, account, cid)
    return res["sentence"], {w["kind"]: w for w in res["waits"]}


def test_calling_hours(store: Any) -> None:
    engine, account, cid = new_campaign(
        store,
        {
            "contacts": [{"phone": "+34600000001"}, {"phone": "+34600000011"}],
            "calling_hours": {"start": "09:00", "end": "20:00"},
        },
    )
    engine.launch(account, cid)
    assert place_all(engine, account, cid) == ["defer", "defer"]
    sentence, waits = explained(engine, account, cid)
    assert waits["calling_hours"]["count"] == 2
    assert (
        waits["calling_hours"]["earliest"] == "2026-11-23T09:00:00.000Z"
    )  # 09:00 in Madrid and the Canaries
    assert (
        sentence
        == "2 contacts wait for calling hours in Atlantic/Canary, opening 09:00 local (in 2 h 0 min)."
    )


def test_hourly_quota(store: Any) -> None:
    engine, account, cid = new_campaign(store, {"contacts": [{"phone": "+34600000001"}]}, hourly_quota=3)
    store.r.set(keys.provider_quota(account, "sim", hour_start(MONDAY_07_UTC)), 3)
    engine.launch(account, cid)
    assert place_all(engine, account, cid) == ["defer"]
    sentence, waits = explained(engine, account, cid)
    assert (waits["hourly_quota"]["used"], waits["hourly_quota"]["quota"]) == (3, 3)
    assert waits["hourly_quota"]["earliest"] == "2026-11-23T08:00:00.000Z"
    assert (
        sentence
        == "1 contact wait for the hourly quota (3/3 used), which resets at 08:00 UTC (in 1 h 0 min)."
    )


def test_pace(store: Any) -> None:
    engine, account, cid = new_campaign(
        store, {"contacts": [{"phone": f"+3460000000{i}"} for i in range(4)]}, calls_per_second=0.5
    )
    engine.launch(account, cid)
    # all four due (stagger 2 s each, claimed up to a second ahead: the first now)
    store.r.zadd(
        keys.DUE,
        {keys.ref(account, a.key): MONDAY_07_UTC for a in store.campaign_attempts(account, cid)},
        xx=True,
    )
    for a in store.campaign_attempts(account, cid):
        store.r.hset(keys.attempt(account, a.key), "due_at", MONDAY_07_UTC)
    results = place_all(engine, account, cid)
    assert results.count("dialed") == 1 and results.count("defer") == 3
    sentence, waits = explained(engine, account, cid)
    assert (
        waits["pace"]["count"] == 3 and waits["pace"]["earliest"] == "2026-11-23T07:00:02.040Z"
    )  # 1.02 / cps
    assert waits["live"]["count"] == 1
    assert sentence.startswith("3 contacts wait for their pace slot, the next (in 2 s)")


def test_concurrency_and_balance(store: Any) -> None:
    engine, account, cid = new_campaign(store, {"contacts": [{"phone": f"+3460000000{i}"} for i in range(3)], "stagger_seconds": 0.001},
                                 max_concurrent=1, calls_per_second=1000)  # fmt: skip
    engine.launch(account, cid)
    engine.core.clock.advance(1)
    assert sorted(place_all(engine, account, cid)) == ["dialed", "wait", "wait"]
    sentence, waits = explained(engine, account, cid)
    assert (
        waits["concurrency"]["count"],
        waits["concurrency"]["live"],
        waits["concurrency"]["max_concurrent"],
    ) == (2, 1, 1)
    assert sentence == "2 contacts wait for a free line: 1 of 1 calls are live."
    engine, account, cid = new_campaign(store, {"contacts": [{"phone": f"+3460000000{i}"} for i in range(2)], "stagger_seconds": 0.001},
                                 balance="0.30", calls_per_second=1000)  # fmt: skip
    engine.launch(account, cid)
    engine.core.clock.advance(1)
    assert sorted(place_all(engine, account, cid)) == ["dialed", "wait"]
    sentence, waits = explained(engine, account, cid)
    assert (waits["balance"]["available"], waits["balance"]["one_call"]) == ("0.10", "0.20")
    assert sentence == "1 contact wait for money: 0.10 available, one call reserves 0.20."


def test_paused_not_launched_recall_and_provider_disabled(store: Any) -> None:
    engine, account, cid = new_campaign(
        store, {"contacts": [{"phone": "+34600000007"}], "recall": [30], "launch_at": "2026-11-23T08:00:00Z"}
    )
    sentence, waits = explained(engine, account, cid)
    assert waits["not_launched"]["earliest"] == "2026-11-23T08:00:00.000Z"
    assert sentence == "Scheduled: 1 contact wait for the launch at 2026-11-23T08:00:00.000Z (in 1 h 0 min)."
    engine.core.clock.set(round(datetime(2026, 11, 23, 8, tzinfo=UTC).timestamp() * 1000))
    engine.launch(account, cid)
    assert place_all(engine, account, cid) == ["dialed"]
    engine.core.clock.advance(5)  # the simulated no-answer is over
    assert engine.check_call(keys.ref(account, keys.attempt_key(cid, 0, 1))) == "recall"
    sentence, waits = explained(engine, account, cid)
    assert waits["recall"]["earliest"] == "2026-11-23T08:30:00.000Z"
    assert sentence == "1 contact wait for their recall, the next (in 29 min 55 s)."
    lifecycle.pause(engine.core, account, cid)
    assert explained(engine, account, cid)[0] == "Paused (paused): 1 contact wait for a resume."
    lifecycle.resume(engine.core, account, cid)
    cfg = store.get_provider(account, "sim")
    store.put_provider(cfg.model_copy(update={"enabled": False}))
    sentence, waits = explained(engine, account, cid)
    assert waits["provider_disabled"]["count"] == 1
    assert sentence == "Provider sim is disabled: 1 contact cannot be dialled."


def test_the_audit_trail_says_who_did_what(store: Any) -> None:
    engine, account, cid = new_campaign(
        store, {"contacts": [{"phone": "+34600000001"}], "stagger_seconds": 0.001}, balance="0.20"
    )
    cfg = store.get_provider(
        account, "sim"
    )  # the longest call doubles after the start: 0.20 cannot reserve it
    store.put_provider(cfg.model_copy(update={"max_call_seconds": 1200}))
    engine.launch(account, cid)
    engine.core.clock.advance(1)
    assert place_all(engine, account, cid) == ["pause"]
    store.topup(account, parse_money("10"))
    lifecycle.resume(engine.core, account, cid)
    events = [(e["event"], e["by"], e.get("reason")) for e in store.events(account, cid)]
    assert events == [
        ("created", "user", None),
        ("started", "user", None),
        ("launched", "dialer", None),
        ("paused", "dialer", "insufficient_balance"),
        ("resumed", "user", None),
    ]
