"""A worker SIGKILLed at each crash point — right after the claim, after `dialing` was written, after the
provider accepted the call but before it was recorded, after the outcome arrived but before settlement,
and during expansion — with real processes on real Redis: every contact is dialled exactly once, the
counters add up and the money is exact."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import add_sim_provider, service_like, session_service, show, submit, uid, wait_for
from test_devstack import children_of

from dialer.money import parse_money
from dialer.telephony.simulator import sim_dials

svc = session_service()


def worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "4"]
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)


def assert_dialled_once_and_settled(store: Any, cid: str, numbers: list[str], view: dict[str, Any]) -> None:
    """Every number reached the simulator exactly once, and the campaign's counters say all were
    delivered with nothing failed, scheduled or dialling."""
    dials = Counter(d["number"] for d in sim_dials(store.r, cid))
    assert dials == dict.fromkeys(numbers, 1), [n for n, k in dials.items() if k != 1]
    c = view["counters"]
    n = len(numbers)
    assert (c["delivered"], c["sent"], c["failed"], c["scheduled"], c["dialing"]) == (n, n, 0, 0, 0)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    for pid in [*children_of(proc.pid), proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)


@pytest.mark.parametrize(
    ("point", "contacts"),
    [
        ("after_claim", 3),
        ("after_admit", 3),
        ("after_provider_accepted", 3),
        ("before_settle", 3),
        ("during_expansion", 25),
    ],
)
def test_a_worker_killed_at_each_crash_point_leaves_one_dial_per_contact_and_exact_money(
    store: Any, redis_url: str, tmp_path: Path, point: str, contacts: int
) -> None:
    account = uid("crash")
    store.create_account(account, "C", parse_money("100"), "ES", 0)
    add_sim_provider(store, account, calls_per_second=50, price_per_minute=parse_money("0.05"))
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {
        **os.environ,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_LEASE_S": "3",
        "DIALER_SCHEDULER_TICK_S": "0.1",
        "DIALER_EXPAND_CHUNK": "10",
    }
    scheduler = subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdin=subprocess.DEVNULL)
    doomed = worker({**env, "DIALER_CRASH_POINTS": point, "DIALER_CRASH_MARKS": str(marks)})
    survivor = None
    try:
        numbers = [f"+346004{i:04d}{i % 4}" for i in range(contacts)]  # answered: one started minute each
        cid = submit(
            service_like(redis_url, lease_s=3),
            account,
            {"contacts": [{"phone": n} for n in numbers], "say": "hi", "stagger_seconds": 0.01},
        )
        wait_for(lambda: (marks / point).exists(), timeout=30, what=f"the worker to die at {point}")
        kill_tree(doomed)  # its main process would otherwise fork a new worker
        survivor = worker(env)
        view = wait_for(lambda: (v := show(svc, account, cid))["status"] == "completed" and v, timeout=90)
    finally:
        for p in (doomed, survivor, scheduler):
            if p is not None and p.poll() is None:
                kill_tree(p)
    assert_dialled_once_and_settled(store, cid, numbers, view)
    calls = svc.for_account(account).calls(cid)
    assert len(calls) == contacts and all(r["state"] == "completed" for r in calls)
    settled = sum(parse_money(r["cost"]) for r in calls)
    acc = store.get_account(account)
    assert settled == contacts * parse_money("0.05") and view["cost"] == f"{settled / 10_000:.2f}"
    assert (acc.balance, acc.reserved) == (parse_money("100") - settled, 0)
