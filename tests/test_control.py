"""Campaign control: pause, resume, stop, cancel (DESIGN §4 table), on real Redis with a real worker."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from conftest import add_sim_provider, session_service, show, submit, wait_for

from dialer import lifecycle
from dialer.clock import SystemClock
from dialer.errors import InvalidState
from dialer.telephony.simulator import sim_dials

svc = session_service()
core = svc.core

clock = SystemClock()


def contacts(n: int, seed: int) -> list[dict[str, str]]:
    return [{"phone": f"+346{seed:02d}{i:05d}{i % 4}"} for i in range(n)]


def status(store: Any, account: str, cid: str) -> str:
    return str(show(svc, account, cid)["status"])


def at_ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_pause_stops_new_dials_and_resume_finishes_without_dialling_anyone_twice(
    store: Any, account: str, stack: Any
) -> None:
    """Pause a 50-contact campaign mid-way: no dial is admitted after the pause is acknowledged; resume
    dials the rest, each contact once."""
    add_sim_provider(store, account, calls_per_second=10)
    cid = submit(svc, account, {"contacts": contacts(50, 1), "say": "hi", "stagger_seconds": 0.1})
    wait_for(lambda: len(sim_dials(store.r, cid)) >= 10, timeout=30, what="10 dials")
    lifecycle.pause(core, account, cid)
    acked = clock.now_ms()
    assert status(store, account, cid) == "paused"
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] == 0, timeout=30, what="live calls")
    observed_until = time.monotonic() + 1.5  # keep watching for a while: nothing new may start
    while time.monotonic() < observed_until:
        assert all(at_ms(d["at"]) <= acked + 100 for d in sim_dials(store.r, cid))
        time.sleep(0.1)
    admitted = [a.dialing_at for a in store.campaign_attempts(account, cid) if a.dialing_at]
    assert admitted and max(admitted) <= acked
    before = len(sim_dials(store.r, cid))
    assert before < 50

    lifecycle.resume(core, account, cid)
    wait_for(lambda: status(store, account, cid) == "completed", timeout=60, what="completion after resume")
    dials = sim_dials(store.r, cid)
    assert len(dials) == 50
    assert max(Counter(d["number"] for d in dials).values()) == 1


def test_stop_lets_live_calls_finish_then_stopped(store: Any, account: str, stack: Any) -> None:
    add_sim_provider(store, account, calls_per_second=5, sim={"talk_min_s": 1.0, "talk_max_s": 1.0})
    cid = submit(svc, account, {"contacts": contacts(30, 2), "say": "hi"})
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] > 0, timeout=30, what="a live call")
    res = lifecycle.stop(core, account, cid)
    assert res["status"] in ("stopping", "stopped")
    view = wait_for(
        lambda: (v := show(svc, account, cid))["status"] == "stopped" and v,
        timeout=30,
        what="stopped",
    )
    assert view["counters"]["dialing"] == 0
    n = len(sim_dials(store.r, cid))
    assert n < 30
    wait_for(
        lambda: show(svc, account, cid)["counters"]["scheduled"] == 0,
        timeout=30,
        what="the waiting attempts to end canceled",
    )
    assert len(sim_dials(store.r, cid)) == n


def test_pause_before_launch_then_resume_goes_back_to_scheduled(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    cid = submit(svc, account, {"contacts": contacts(2, 3), "say": "hi", "launch_at": "2999-01-01T00:00:00Z"})
    assert status(store, account, cid) == "scheduled"
    assert lifecycle.pause(core, account, cid)["status"] == "paused"
    assert svc.for_account(account).start(cid)["status"] == "scheduled"
    assert status(store, account, cid) == "scheduled"
    assert lifecycle.cancel(core, account, cid)["status"] == "cancelled"


@pytest.mark.parametrize("command", ["pause", "resume", "stop", "cancel"])
def test_a_refused_transition_names_the_state_and_changes_nothing(
    store: Any, account: str, command: str
) -> None:
    add_sim_provider(store, account)
    cid = submit(svc, account, {"contacts": contacts(1, 4), "say": "hi", "launch_at": "2999-01-01T00:00:00Z"})
    lifecycle.cancel(core, account, cid)
    before = show(svc, account, cid)
    with pytest.raises(InvalidState, match=r"Campaign is not running \(current state: cancelled\)"):
        getattr(lifecycle, command)(core, account, cid)
    assert show(svc, account, cid) == before
