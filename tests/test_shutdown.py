"""Graceful shutdown with real processes: SIGTERM makes a scheduler finish its tick and a worker finish the
dials in hand and hand back the claims of the messages it had fetched, so the next worker dials them at once
(not after their lease) and every contact is still dialled exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import add_sim_provider, service_like, show, submit, uid, wait_for
from test_crash_points import assert_dialled_once_and_settled, kill_tree, worker

from dialer import keys
from dialer.money import parse_money
from dialer.telephony.simulator import sim_dials

LEASE_S = 120  # far longer than the test: nothing here may wait for a lease to run out


def released(store: Any, why: str) -> int:
    return int(store.r.hget(keys.STATS, f"released|{why}") or 0)


def test_sigterm_finishes_in_flight_dials_and_hands_back_fetched_claims(
    store: Any, redis_url: str, tmp_path: Path
) -> None:
    account = uid("term")
    store.create_account(account, "T", parse_money("100"), "ES", 0)
    # each dial takes ~0.4 s at the provider: at SIGTERM the worker has dials in hand and more fetched
    add_sim_provider(store, account, calls_per_second=50, sim={"latency_ms": 400})
    env = {
        **os.environ,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_LEASE_S": str(LEASE_S),
        "DIALER_SCHEDULER_TICK_S": "0.1",
        "DIALER_LOG_FORMAT": "json",
        "DIALER_LOG_LEVEL": "INFO",
        "DIALER_QUEUE": account,  # its own queue: messages other tests left cannot crowd it
    }
    numbers = [f"+346005{i:04d}{i % 4}" for i in range(30)]  # all answered
    before = released(store, "shutdown")
    # a submit due now sends the launch itself: through this test's queue, where its workers listen
    svc = service_like(redis_url, queue=account, lease_s=LEASE_S)
    log_path = tmp_path / "worker.log"
    scheduler = subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdin=subprocess.DEVNULL)
    with open(log_path, "wb") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "2",
             "--worker-shutdown-timeout", "20000"],
            env=env, stdin=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    second = None
    try:
        cid = submit(svc, account, {"contacts": [{"phone": n} for n in numbers], "say": "hi"})
        wait_for(lambda: len(sim_dials(store.r, cid)) >= 3, timeout=60, what="the first dials")
        scheduler.send_signal(signal.SIGTERM)  # the order of an upgrade: schedulers first, then workers
        assert scheduler.wait(20) == 0
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0  # well within the shutdown timeout

        events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        handed = [e for e in events if e.get("event") == "claims_handed_back"]
        assert handed and handed[0]["released"] >= 1, [e.get("event") for e in events]
        assert released(store, "shutdown") - before == sum(e["released"] for e in handed)
        dialled = len(sim_dials(store.r, cid))
        assert 3 <= dialled < len(numbers)
        c = show(svc, account, cid)["counters"]
        assert c["dialing"] == 0 or c["sent"] > 0  # nothing was left half-dialled by the stop

        started = time.monotonic()
        scheduler = subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdin=subprocess.DEVNULL)
        second = worker(env)
        view = wait_for(lambda: (v := show(svc, account, cid))["status"] == "completed" and v, timeout=60)
        assert time.monotonic() - started < LEASE_S / 2  # no claim had to wait for its lease
    finally:
        for p in (first, second, scheduler):
            if p is not None and p.poll() is None:
                kill_tree(p)
    assert_dialled_once_and_settled(store, cid, numbers, view)
    acc = store.get_account(account)
    assert acc.reserved == 0
