"""The scheduler's claims: several replicas ticking at once never promote the same work twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import uid

from config import Settings
from dialer import keys
from dialer.broker import LAUNCH_CAMPAIGN, PLACE_CALL, MessageSender, make_broker
from dialer.clock import SystemClock
from dialer.models import CallAttempt, CampaignSchedule
from scheduler import promote, tick

KIND = {LAUNCH_CAMPAIGN: "start", PLACE_CALL: "call"}


class Recorder:
    """Stands in for the message sender: records what the scheduler would enqueue."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def send(self, actor_name: str, *args: str) -> str:
        with self.lock:
            self.sent.append((KIND.get(actor_name, actor_name), *args))
        return "-"


SEEDED: list[str] = []


@pytest.fixture(autouse=True)
def _clean_seeded_work(store: Any) -> Iterator[None]:
    """The seeded attempts are bare (no campaign): never leave them in the global queues, where the
    worker of a later test would pick them up."""
    yield
    for ref in SEEDED:
        store.r.zrem(keys.DUE, ref)
        store.r.zrem(keys.LEASED, ref)
        store.r.delete(keys.attempt(*keys.parse_ref(ref)))
    for member in [m for m in store.r.zrange(keys.SCHED_DUE, 0, -1) if m.startswith("sch")]:
        store.r.zrem(keys.SCHED_DUE, member)
    for member in [m for m in store.r.zrange(keys.SCHED_LEASED, 0, -1) if m.startswith("sch")]:
        store.r.zrem(keys.SCHED_LEASED, member)
    SEEDED.clear()


def seed_due_work(
    store: Any, n_attempts: int, n_schedules: int, due_ms: int
) -> tuple[str, set[str], set[str]]:
    account = uid("sch")
    refs, schedules = set(), set()
    for i in range(n_attempts):
        att = CallAttempt(
            key=keys.attempt_key("c" + account, i, 1),
            account_id=account,
            campaign_id="c" + account,
            contact=i,
            attempt=1,
            phone="+34600000001",
            due_at=due_ms,
        )
        store.r.hset(keys.attempt(account, att.key), mapping={"state": "scheduled", "key": att.key})
        store.r.zadd(keys.DUE, {keys.ref(account, att.key): due_ms})
        refs.add(keys.ref(account, att.key))
        SEEDED.append(keys.ref(account, att.key))
    for i in range(n_schedules):
        store.put_schedule(
            CampaignSchedule(
                account_id=account,
                campaign_id=f"s{i}{account}",
                group_id=None,
                provider="sim",
                say="hi",
                audio=None,
                xml=None,
                start_at=due_ms,
            )
        )
        schedules.add(f"s{i}{account}")
    return account, refs, schedules


def test_four_schedulers_ticking_at_once_promote_each_item_once(store: Any) -> None:
    """300 due attempts and 20 due schedules, four scheduler threads racing: each is sent exactly once,
    schedules go PENDING -> QUEUED and attempts scheduled -> claimed."""
    now = int(time.time() * 1000)
    account, refs, schedules = seed_due_work(store, 300, 20, now - 1)
    rec = Recorder()
    settings = Settings(claim_batch=10_000)
    barrier = threading.Barrier(4)

    def replica() -> None:
        barrier.wait()
        for _ in range(5):
            tick(store, settings, now, rec)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    calls = Counter(r for kind, r, *_ in rec.sent if kind == "call" and r in refs)
    starts = Counter(item[2] for item in rec.sent if item[0] == "start" and item[1] == account)
    assert set(calls) == refs and max(calls.values()) == 1
    assert set(starts) == schedules and max(starts.values()) == 1
    assert store.get_schedule(account, next(iter(schedules))).status.value == "QUEUED"
    assert store.r.hget(keys.attempt(*keys.parse_ref(next(iter(refs)))), "state") == "claimed"


def test_work_due_later_is_not_claimed_and_expired_leases_come_back(store: Any) -> None:
    now = int(time.time() * 1000)
    _account, refs, _ = seed_due_work(store, 3, 0, now + 60_000)
    rec = Recorder()
    settings = Settings(claim_batch=10_000, lease_s=30)
    tick(store, settings, now, rec)
    assert not [r for kind, r, *_ in rec.sent if r in refs]
    tick(store, settings, now + 60_000, rec)
    assert {r for kind, r, *_ in rec.sent if r in refs} == refs
    rec.sent.clear()
    tick(store, settings, now + 60_000 + 29_000, rec)  # leases still held: nothing again
    assert not [r for kind, r, *_ in rec.sent if r in refs]
    for _ in range(5):  # the worker never acked: handed out again (each tick releases up to 1,000 leases)
        tick(store, settings, now + 60_000 + 31_000, rec)
    assert {r for kind, r, *_ in rec.sent if r in refs} == refs


def test_claims_are_bounded_by_room_in_the_queue(store: Any) -> None:
    now = int(time.time() * 1000)
    _account, _refs, _ = seed_due_work(store, 50, 0, now - 1)
    rec = Recorder()
    queued = store.queued_messages("dialer")
    tick(store, Settings(claim_batch=10 + queued), now, rec)
    assert len([r for kind, r, *_ in rec.sent if kind == "call"]) == 10  # 50 due, room for 10


def test_a_full_pass_is_followed_within_the_period_until_the_due_work_is_sent(store: Any) -> None:
    """Room for 10 messages, 50 attempts due: the period's promotion does not stop at one batch (that would
    cap dispatch at claim_batch per tick); while workers take what is sent (here a sender that queues
    nothing) it follows with more passes until nothing is left over."""
    now = int(time.time() * 1000)
    _account, refs, _ = seed_due_work(store, 50, 0, now - 1)
    rec = Recorder()
    queued = store.queued_messages("dialer")
    res = promote(store, Settings(claim_batch=10 + queued, scheduler_tick_s=10), SystemClock(), rec)
    sent = Counter(r for kind, r, *_ in rec.sent if kind == "call" and r in refs)
    assert set(sent) == refs and max(sent.values()) == 1
    assert res.passes >= 5 and not res.more


def test_follow_up_passes_end_with_the_period_when_no_worker_takes_messages(
    store: Any, redis_url: str
) -> None:
    """The same, with a real queue nobody consumes: one batch is sent, the passes that follow find no room
    and send nothing more, and the promotion ends within the tick period with the work still due."""
    now = int(time.time() * 1000)
    seed_due_work(store, 50, 0, now - 1)
    queue = uid("q")
    sender = MessageSender(make_broker(redis_url, global_=False), queue)
    settings = Settings(claim_batch=10, scheduler_tick_s=2, queue=queue)
    started = time.monotonic()
    try:
        res = promote(store, settings, SystemClock(), sender)
        assert time.monotonic() - started < settings.scheduler_tick_s
        assert store.queued_messages(queue) == 10 and res.attempts == 10
        assert res.more and res.passes > 1
        # a stopping scheduler (SIGTERM) makes no follow-up pass: its last pass was the first
        stop = threading.Event()
        stop.set()
        assert promote(store, settings, SystemClock(), sender, stop=stop).passes == 1
    finally:
        store.r.delete(keys.dramatiq_messages(queue), f"dramatiq:{queue}")
