"""Campaign lifecycle (DESIGN §4): every allowed and refused transition of the table, update, delete,
list paging, and recall schedules under a driven clock."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import add_sim_provider, calls, make_engine, session_service, show, uid

from dialer import intake, keys, lifecycle
from dialer.clock import FakeClock, SystemClock
from dialer.errors import DialerError, InvalidState
from dialer.views import list_view

svc = session_service()
core = svc.core

clock = SystemClock()
STATES = [
    "draft",
    "scheduled",
    "running",
    "paused",
    "stopping",
    "stopped",
    "completed",
    "cancelled",
    "failed",
]
COMMANDS = ["start", "pause", "resume", "stop", "cancel", "update", "delete", "re-execute", "redial"]
FUTURE = "2999-01-01T00:00:00Z"


def campaign_in(store: Any, engine: Any, account: str, state: str) -> str:
    """A one-contact campaign (a no-answer number) brought into ``state``; finished states have a final
    no-answer attempt, as if it had run."""
    body = {"contacts": [{"phone": "+34600000007"}], "say": "hi", "launch_at": FUTURE}
    cid = str(svc.for_account(account).submit(body, start=state != "draft")["campaign_id"])
    if state in ("draft", "scheduled"):
        return cid
    engine.launch(account, cid)  # scheduled -> running, attempt written (due far in the future)
    if state in ("stopped", "completed", "failed", "cancelled"):
        key = keys.attempt_key(cid, 0, 1)
        store.r.hset(keys.attempt(account, key), mapping={"state": "no-answer", "ended_at": clock.now_ms()})
        store.r.zrem(keys.DUE, keys.ref(account, key))
        store.r.hset(keys.campaign(account, cid), mapping={"scheduled": 0, "failed": 1})
    store.r.hset(keys.campaign(account, cid), "status", state)
    return cid


def run_command(store: Any, engine: Any, account: str, cid: str, command: str) -> dict[str, Any]:
    scope = svc.for_account(account)
    if command == "update":
        return scope.update(cid, "renamed", None)
    if command == "redial":
        return scope.redial(keys.attempt_key(cid, 0, 1))
    return dict(getattr(scope, command.replace("-", "_"))(cid))


def snapshot(store: Any, account: str, cid: str) -> Any:
    return (
        show(svc, account, cid),
        calls(svc, account, cid),
        store.get_schedule(account, cid),
    )


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_transition_of_the_table(
    store: Any, engine: Any, account: str, command: str, state: str
) -> None:
    """Allowed: the campaign ends in the table's next state. Refused: the message names the current state
    and nothing changes (status, counters, attempts, schedule)."""
    add_sim_provider(store, account)
    cid = campaign_in(store, engine, account, state)
    target = lifecycle.TRANSITIONS[command].get(state)
    if target is None:
        before = snapshot(store, account, cid)
        expected = lifecycle.NOT_UPDATABLE if command == "update" else f"(current state: {state})"
        with pytest.raises(InvalidState) as exc:
            run_command(store, engine, account, cid, command)
        assert expected in exc.value.message
        assert snapshot(store, account, cid) == before
        return
    run_command(store, engine, account, cid, command)
    after = show(svc, account, cid)
    if command == "stop":
        assert after["status"] in ("stopping", "stopped")  # nothing live: stopped at once
    elif command == "delete":
        assert after["status"] == state and after["deleted_at"] is not None
    else:
        assert after["status"] == target


def test_update_moves_the_pending_schedule_and_refuses_the_past(
    store: Any, engine: Any, account: str
) -> None:
    add_sim_provider(store, account)
    cid = campaign_in(store, engine, account, "scheduled")
    res = lifecycle.update(core, account, cid, "Spring 2", 32_503_680_000_000)  # 3000-01-01
    assert res["name"] == "Spring 2" and res["launch_at"] == "3000-01-01T00:00:00.000Z"
    assert store.r.zscore(keys.SCHED_DUE, keys.ref(account, cid)) == 32_503_680_000_000
    assert store.get_schedule(account, cid).start_at == 32_503_680_000_000
    with pytest.raises(DialerError, match="Scheduled time is in the past"):
        lifecycle.update(core, account, cid, None, 1_000)
    running = campaign_in(store, engine, account, "running")
    with pytest.raises(InvalidState, match=r"only scheduled campaigns can be updated \(name and SendAt"):
        lifecycle.update(core, account, running, "x", None)


def test_start_of_a_scheduled_campaign_whose_time_has_passed_is_refused(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    body = {"contacts": [{"phone": "+34600000001"}], "say": "hi", "launch_at": "2020-01-01T00:00:00Z"}
    with pytest.raises(DialerError, match="Scheduled time is in the past"):
        svc.for_account(account).submit(body, start=True)


def test_list_is_paged_newest_first_and_hides_deleted(store: Any, engine: Any) -> None:
    account = uid("list")
    store.create_account(account, "L", 10_000_000, "ES", clock.now_ms())
    add_sim_provider(store, account)
    ids = [campaign_in(store, engine, account, "draft") for _ in range(5)]
    lifecycle.delete(core, account, ids[1])
    seen: list[str] = []
    token = None
    for _ in range(5):
        page = list_view(core, account, None, 2, token)
        seen += [v["id"] for v in page["result"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert sorted(seen) == sorted(ids[:1] + ids[2:])
    assert len(seen) == len(set(seen))
    assert show(svc, account, ids[1])["deleted_at"]  # still there for reports
    assert list_view(core, account, "running", 10, None)["result"] == []
    with pytest.raises(DialerError, match="page_token"):
        list_view(core, account, None, 2, "garbage")


def _no_answer_schedule(store: Any, account: str, recall: Any) -> list[int]:
    """Drive one no-answer contact through its attempts with a fake clock; return attempt offsets (ms)."""
    fake = FakeClock(1_900_000_000_000)
    engine = make_engine(store, fake)
    provider = add_sim_provider(store, account, uid("p"), sim={"no_answer_s": 1})
    body = {"contacts": [{"phone": "+34600000007"}], "say": "hi", "recall": recall, "provider": provider.name}
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    engine.launch(account, cid)
    placed: list[int] = []
    for n in range(1, 10):
        att = store.get_attempt(account, keys.attempt_key(cid, 0, n))
        if att is None:
            break
        fake.set(max(fake.now_ms(), att.due_at))
        ref = keys.ref(account, att.key)
        assert store.claim_refs([ref], fake.now_ms(), fake.now_ms() + 60_000) == [ref]
        assert engine.place_call(ref) == "dialed"
        placed.append(store.get_attempt(account, att.key).placed_at)
        fake.advance(1.5)  # the simulated no-answer (1 s of ringing) is over
        assert engine.check_call(ref) == ("recall" if n < 3 else "failed")
    return [p - placed[0] for p in placed]


def test_recall_as_string_array_or_minutes_gives_the_same_relative_schedule(store: Any, account: str) -> None:
    """ "[0.05,0.1]", [0.05, 0.1] and [3, 6] (driven clock): attempts at 0, offset 1 and offset 2 after the
    first call — seconds or minutes, the same shape."""
    as_string = _no_answer_schedule(store, account, "[0.05,0.1]")
    as_array = _no_answer_schedule(store, account, [0.05, 0.1])
    minutes = _no_answer_schedule(store, account, [3, 6])
    assert as_string == as_array == [0, 3_000, 6_000]
    assert minutes == [0, 180_000, 360_000]
    assert [m // 60 for m in minutes] == as_string


def test_concurrent_updates_of_different_fields_both_apply(store: Any, engine: Any, account: str) -> None:
    """Eight threads rename and reschedule the same campaign at once: the last name and the last launch time
    both stick (an update never overwrites another's field with a stale copy)."""
    import threading

    add_sim_provider(store, account)
    cid = campaign_in(store, engine, account, "scheduled")
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        if i % 2:
            lifecycle.update(core, account, cid, f"name-{i}", None)
        else:
            lifecycle.update(core, account, cid, None, 32_503_680_000_000 + i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    shown = show(svc, account, cid)
    assert shown["name"].startswith("name-")
    assert shown["launch_at"].startswith("3000-01-01T00:00:00.00")
    assert store.r.hget(keys.campaign(account, cid), "doc_version") == "8"
