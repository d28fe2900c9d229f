"""The one service: every door gets the same answers, each account sees only its own things, a start can
never leave a campaign nothing launches, and an attempt whose processing keeps failing ends instead of
cycling for ever."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import add_sim_provider, session_service, show, submit, uid, wait_for

from dialer import keys
from dialer.errors import NotFound
from dialer.money import parse_money
from dialer.states import ScheduleStatus
from dialer.telephony.simulator import sim_dials

svc = session_service()
FUTURE = "2999-01-01T00:00:00Z"


def test_another_accounts_campaign_group_attempt_and_provider_are_not_found(store: Any, account: str) -> None:
    """Tenancy lives in the service: ids of another account answer NotFound, exactly like unknown ids."""
    other = uid("other")
    store.create_account(other, "O", parse_money("10"), "ES", 0)
    add_sim_provider(store, account)
    cid = submit(svc, account, {"contacts": [{"phone": "+34600000001"}], "say": "hi"}, start=False)
    gid = svc.for_account(account).create_group("g")["id"]
    theirs = svc.for_account(other)
    for call in (
        lambda: theirs.campaign(cid),
        lambda: theirs.calls(cid),
        lambda: theirs.pause(cid),
        lambda: theirs.start(cid),
        lambda: theirs.delete(cid),
        lambda: theirs.redial(keys.attempt_key(cid, 0, 1)),
        lambda: theirs.group(gid),
        lambda: theirs.import_contacts(gid, [("line 2", {"phone": "+34600000002"})]),
        lambda: theirs.provider("sim"),
    ):
        with pytest.raises(NotFound) as exc:
            call()
        assert "not found" in exc.value.message
    assert show(svc, account, cid)["status"] == "draft"
    assert svc.for_account(account).group(gid)["size"] == 0


def test_an_api_key_finds_its_account_and_a_rotated_key_stops_working(store: Any) -> None:
    account = uid("key")
    first = svc.create_account(account, "1.00")["api_key"]
    scope = svc.authenticate(first)
    assert scope is not None and scope.account_id == account
    second = svc.rotate_key(account)["api_key"]
    assert svc.authenticate(first) is None
    found = svc.authenticate(second)
    assert found is not None and found.account_id == account
    assert svc.authenticate("dk_nobody") is None


def _start_in_a_loop(ids: list[str]) -> subprocess.Popen[bytes]:
    code = (
        "import sys\nfrom dialer.service import Service\nsvc = Service.from_settings()\n"
        "for cid in sys.argv[1:]:\n    svc.for_campaign(cid).start(cid)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, *ids], env=os.environ.copy())


def test_a_start_killed_at_any_point_leaves_no_campaign_that_nothing_launches(store: Any) -> None:
    """Processes starting campaigns are SIGKILLed at random moments, many times: every campaign is either
    still a draft, or scheduled with its PENDING schedule in the due set (start is one Lua step)."""
    account = uid("crash")
    store.create_account(account, "C", parse_money("100"), "ES", 0)
    add_sim_provider(store, account)
    rng = random.Random(7)
    ids = [
        submit(
            svc, account, {"contacts": [{"phone": "+34600000001"}], "say": "hi", "launch_at": FUTURE}, False
        )
        for _ in range(60)
    ]
    for round_ in range(6):
        batch = ids[round_ * 10 : round_ * 10 + 10]
        proc = _start_in_a_loop(batch)
        wait_for(lambda b=batch: store.campaign_state(account, b[0]).status.value != "draft", timeout=30)
        time.sleep(rng.uniform(0, 0.05))  # a random moment of the loop: the kill is the fault under test
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    states = []
    for cid in ids:
        state = store.campaign_state(account, cid).status.value
        states.append(state)
        assert state in ("draft", "scheduled")
        if state == "scheduled":
            sched = store.get_schedule(account, cid)
            assert sched is not None and sched.status == ScheduleStatus.PENDING
            assert store.r.zscore(keys.SCHED_DUE, keys.ref(account, cid)) is not None
    assert "scheduled" in states  # the kills did not all land before the first start


def test_a_scheduled_campaign_left_without_its_schedule_gets_one_on_start(store: Any, account: str) -> None:
    """Data from before the atomic start (status written, schedule lost): starting it again repairs it."""
    add_sim_provider(store, account)
    cid = submit(
        svc, account, {"contacts": [{"phone": "+34600000001"}], "say": "hi", "launch_at": FUTURE}, False
    )
    store.r.hset(keys.campaign(account, cid), "status", "scheduled")
    assert store.get_schedule(account, cid) is None
    body = svc.for_account(account).start(cid)
    assert body["scheduled_time"] == "2999-01-01T00:00:00.000Z"
    assert store.r.zscore(keys.SCHED_DUE, keys.ref(account, cid)) is not None


def test_an_attempt_whose_processing_always_raises_ends_failed_and_the_campaign_completes(
    store: Any, account: str, stack: Any
) -> None:
    """Its provider configuration cannot be built (every place_call raises): after the poison limit the
    attempt ends failed with internal_error, nothing was dialled, and the campaign completes."""
    cfg = add_sim_provider(store, account)
    cid = submit(svc, account, {"contacts": [{"phone": "+34600000001"}], "say": "hi", "launch_at": FUTURE})
    broken = json.loads(cfg.model_dump_json())
    broken["sim"] = {"ring_s": "not a number"}  # stored behind the validation, as a bug would
    store.r.hset(keys.provider(account, "sim"), "doc", json.dumps(broken))
    svc.for_account(account).update(cid, launch_at=int(time.time() * 1000))
    done = wait_for(lambda: (v := show(svc, account, cid))["status"] == "completed" and v, timeout=40)
    att = store.get_attempt(account, keys.attempt_key(cid, 0, 1))
    assert (att.state.value, att.reason, att.failures) == ("failed", "internal_error", 3)
    assert done["counters"]["failed"] == 1
    assert sim_dials(store.r, cid) == []
    assert store.get_account(account).reserved == 0


def test_the_client_enqueues_through_its_own_redis_with_no_redis_url_in_the_environment(
    store: Any, account: str, stack: Any, redis_url: str, tmp_path: Path
) -> None:
    """`Dialer(url).enqueue_campaign(...)` in a process where DIALER_REDIS_URL is unset: the message goes
    to the client's Redis and the campaign is created and dialled."""
    add_sim_provider(store, account)
    key = uid("idem")
    body = {"contacts": [{"phone": "+34600000001"}], "say": "hi", "idempotency_key": key}
    env = {k: v for k, v in os.environ.items() if k != "DIALER_REDIS_URL"} | {"DIALER_VAR_DIR": str(tmp_path)}
    code = (
        "import json, sys\nfrom dialer.client import Dialer\n"
        "print(Dialer(sys.argv[1]).enqueue_campaign(sys.argv[2], json.loads(sys.argv[3])))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, redis_url, account, json.dumps(body)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    cid = wait_for(lambda: store.find_idempotent(account, key), timeout=20, what="the submitted campaign")
    wait_for(lambda: show(svc, account, cid)["status"] == "completed", timeout=30, what="completion")
    assert len(sim_dials(store.r, cid)) == 1
