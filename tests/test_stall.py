"""A worker stopped longer than its lease (SIGSTOP: a VM pause, a long GC) while it holds admitted
attempts: recovery takes them over (looking each call up first), the stopped worker finds that when it
wakes, and every person is dialled once — counted from the simulator's own dial log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    add_sim_provider,
    make_engine,
    service_like,
    session_service,
    show,
    stop_processes,
    submit,
    uid,
    wait_for,
)
from test_devstack import children_of

from dialer import intake, keys
from dialer.clock import FakeClock
from dialer.money import parse_money
from dialer.pace import DIAL_TOLERANCE_MS
from dialer.telephony.simulator import sim_dials

svc = session_service()
LEASE_S = 4
N = 150
STOP_S = 12
# attempts the stopped worker held that others took over: it woke to find its claim gone (stale), its
# admission gone (abandoned), or its call already adopted by reconciliation
STALLED_KINDS = (
    "attempt_stale",
    "dial_abandoned_after_stall",
    "dial_recorded_by_recovery",
)  # longer than the lease and the take-over that follows it (a lease, then one more)


def spawn(args: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def signal_tree(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    for pid in [proc.pid, *children_of(proc.pid)]:
        os.kill(pid, sig)


@pytest.mark.slow
def test_workers_stopped_longer_than_their_lease_never_dial_anyone_twice(
    store: Any, redis_url: str, tmp_path: Path
) -> None:
    account = uid("stall")
    store.create_account(account, "S", parse_money("1000"), "ES", 0)
    add_sim_provider(
        store,
        account,
        calls_per_second=50,
        max_concurrent=200,
        sim={"latency_ms": 5000, "ring_s": 0.1, "talk_min_s": 0.1, "talk_max_s": 0.2},
    )
    env = {
        **os.environ,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_LEASE_S": str(LEASE_S),
        "DIALER_SCHEDULER_TICK_S": "0.2",
        "DIALER_CLAIM_BATCH": "100",  # room beyond what the stopped worker has prefetched (2 x 16 messages)
        "DIALER_LOG_FORMAT": "json",
        "DIALER_LOG_LEVEL": "INFO",
    }

    def worker(threads: int) -> list[str]:
        return [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", str(threads)]

    stalled_log = tmp_path / "stalled-worker.log"
    stalled = spawn(worker(32), env, stalled_log)
    procs = [stalled, spawn(worker(16), env), spawn([sys.executable, "-m", "scheduler"], env)]

    def events() -> list[str]:
        lines = stalled_log.read_text().splitlines()
        return [json.loads(line).get("event", "") for line in lines if line.startswith("{")]

    def taken_over() -> int:
        return sum(e in STALLED_KINDS for e in events())

    try:
        contacts = [{"phone": f"+34600{i:05d}{i % 4}"} for i in range(N)]
        # 5 calls a second, each dial answered after 5 s: ~25 dials in flight, and the other worker alone
        # can carry the load, so a take-over is not stuck behind a backlog
        cid = submit(
            service_like(redis_url, lease_s=LEASE_S),
            account,
            {"contacts": contacts, "say": "hi", "stagger_seconds": 0.2},
        )
        wait_for(lambda: show(svc, account, cid)["status"] == "running", timeout=30, what="the launch")
        rounds = 0
        while taken_over() < 20 and rounds < 10 and show(svc, account, cid)["status"] == "running":
            busy = events().count("dialed") + 6
            wait_for(lambda b=busy: events().count("dialed") >= b, timeout=60, what="the worker to be busy")
            signal_tree(stalled, signal.SIGSTOP)
            time.sleep(STOP_S)  # the fault under test: stopped for longer than the lease
            signal_tree(stalled, signal.SIGCONT)
            rounds += 1
            wait_for(
                lambda: "dialed" in events()[-3:] or show(svc, account, cid)["status"] != "running",
                timeout=60,
            )
        done = wait_for(
            lambda: (v := show(svc, account, cid))["status"] == "completed" and v,
            timeout=180,
            what="completion",
        )
    finally:
        stop_processes(procs, before=lambda p: signal_tree(p, signal.SIGCONT))
    dials = Counter(d["number"] for d in sim_dials(store.r, cid))
    assert len(dials) == N and max(dials.values()) == 1, [n for n, c in dials.items() if c > 1]
    assert done["counters"]["delivered"] == N
    events = [
        json.loads(line).get("event") for line in stalled_log.read_text().splitlines() if line.startswith("{")
    ]
    # attempts the stopped worker held, that others took over: it woke to find its claim gone (stale), its
    # admission gone (abandoned), or its call already adopted by reconciliation
    stalled_kinds = ("attempt_stale", "dial_abandoned_after_stall", "dial_recorded_by_recovery")
    taken_over = sum(e in stalled_kinds for e in events)
    assert taken_over >= 20, Counter(events)
    acc = store.get_account(account)
    assert acc.reserved == 0


@pytest.mark.slow
def test_a_worker_stopped_between_its_admission_and_its_dial_never_sends_it(
    store: Any, redis_url: str, tmp_path: Path
) -> None:
    """The stall the guard is for, with real processes: a worker stops itself (SIGSTOP, every thread) right
    after an admission, for longer than the lease. Recovery finds no call and dials the contact; the worker,
    woken, finds its admission too old and never sends its dial — the number rings once."""
    account = uid("stop")
    store.create_account(account, "S", parse_money("100"), "ES", 0)
    add_sim_provider(store, account, sim={"ring_s": 0.1, "talk_min_s": 0.1, "talk_max_s": 0.2})
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {
        **os.environ,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_LEASE_S": str(LEASE_S),
        "DIALER_SCHEDULER_TICK_S": "0.2",
        "DIALER_LOG_FORMAT": "json",
    }
    worker = [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "4"]
    log = tmp_path / "stopped-worker.log"
    stopped = spawn(
        worker, {**env, "DIALER_STOP_POINTS": "after_admit", "DIALER_CRASH_MARKS": str(marks)}, log
    )
    procs = [stopped, spawn([sys.executable, "-m", "scheduler"], env)]
    try:
        contacts = [{"phone": f"+3460020{i:04d}"} for i in range(4)]
        cid = submit(service_like(redis_url, lease_s=LEASE_S), account, {"contacts": contacts, "say": "hi"})
        wait_for(
            lambda: (marks / "after_admit").exists(), timeout=60, what="the worker to stop after admitting"
        )
        procs.append(spawn(worker, env))  # the others' worker: recovery and the rest of the campaign
        time.sleep(STOP_S)  # the fault under test: stopped for longer than the lease
        signal_tree(stopped, signal.SIGCONT)
        done = wait_for(
            lambda: (v := show(svc, account, cid))["status"] == "completed" and v,
            timeout=120,
            what="completion",
        )
        guard = "dial_abandoned_after_stall"
        wait_for(
            lambda: guard in log.read_text(), timeout=30, what="the woken worker's guard to abandon its dial"
        )
    finally:
        stop_processes(procs, before=lambda p: signal_tree(p, signal.SIGCONT))
    dials = Counter(d["number"] for d in sim_dials(store.r, cid))
    assert sorted(dials) == sorted(c["phone"] for c in contacts) and max(dials.values()) == 1, dials
    assert done["counters"]["delivered"] == 4 and store.get_account(account).reserved == 0


class StoppedAfterAdmission(FakeClock):
    """A clock for a process stopped right after its admission: monotonic time jumps an hour after the
    admission step has read it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return super().monotonic() + (3600 if self.reads > 1 else 0)


def test_a_dial_whose_admission_is_older_than_the_bound_is_never_sent(store: Any, account: str) -> None:
    """The guard itself: an admission that went stale before the dial (the worker was stopped in between)
    is given back, and the provider never sees the call."""
    add_sim_provider(store, account, hourly_quota=10)
    engine = make_engine(store, StoppedAfterAdmission())
    cid = str(
        intake.submit(engine.core, account, {"contacts": [{"phone": "+34600000001"}], "say": "hi"}, True)[
            "campaign_id"
        ]
    )
    engine.launch(account, cid)
    ref = keys.ref(account, keys.attempt_key(cid, 0, 1))
    store.claim_refs([ref], engine.core.now() + 1000, engine.core.now() + 60_000)
    assert engine.place_call(ref) == "stalled"
    assert sim_dials(store.r, cid) == []
    att = store.get_attempt(account, keys.attempt_key(cid, 0, 1))
    assert (att.state.value, att.reason) == ("scheduled", "stalled")
    assert store.get_account(account).reserved == 0
    assert store.provider_usage(account, "sim", engine.core.now())[0] == 0  # a dial never sent uses no quota


class LateAfterAdmission(FakeClock):
    """A clock for a thread that loses the CPU between its admission and its dial: the wall clock moves on
    20 ms once the stall guard has read the monotonic clock (the admission read it first)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return self._now / 1000

    def now_ms(self) -> int:
        return super().now_ms() + (DIAL_TOLERANCE_MS + 5 if self.reads >= 2 else 0)


def test_a_dial_later_than_its_slot_allows_is_admitted_again_and_uses_no_quota(
    store: Any, account: str
) -> None:
    """The pace rule holds at the dial: a dial that would leave more than the tolerance after its slot is
    not sent; the attempt goes back to due (reason pace) with its reservation, live slot and hourly-quota
    count given back, and the next admission dials it."""
    add_sim_provider(store, account, hourly_quota=10)
    clock = LateAfterAdmission()
    engine = make_engine(store, clock)
    cid = str(
        intake.submit(engine.core, account, {"contacts": [{"phone": "+34600000001"}], "say": "hi"}, True)[
            "campaign_id"
        ]
    )
    engine.launch(account, cid)
    key = keys.attempt_key(cid, 0, 1)
    ref = keys.ref(account, key)
    store.claim_refs([ref], clock.now_ms() + 1000, clock.now_ms() + 60_000)
    paced_before = int(store.r.hget(keys.STATS, "deferred|pace") or 0)
    assert engine.place_call(ref) == "late"
    assert int(store.r.hget(keys.STATS, "deferred|pace") or 0) > paced_before  # seen in /metrics
    assert sim_dials(store.r, cid) == []
    att = store.get_attempt(account, key)
    assert (att.state.value, att.reason) == ("scheduled", "pace")
    assert store.get_account(account).reserved == 0
    used, live = store.provider_usage(account, "sim", clock.now_ms())
    assert (used, live) == (0, 0)
    clock.reads, _ = -10, clock.advance(1)  # a second later, and on time
    store.claim_refs([ref], clock.now_ms() + 1000, clock.now_ms() + 60_000)
    assert engine.place_call(ref) == "dialed"
    assert len(sim_dials(store.r, cid)) == 1
    assert store.provider_usage(account, "sim", clock.now_ms())[0] == 1
