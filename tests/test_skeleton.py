"""The walking skeleton end to end on real Redis, a real Dramatiq worker, the scheduler and the simulator."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import add_sim_provider, calls, session_service, show, submit, wait_for

from dialer.telephony.simulator import sim_dials

svc = session_service()
core = svc.core

TERMINAL = {"completed", "stopped", "cancelled", "failed"}


def wait_done(store: Any, account: str, cid: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (v := show(svc, account, cid))["status"] in TERMINAL and v,
        timeout=timeout,
        what=f"campaign {cid} to end",
    )


def test_recall_policy_gives_exact_attempts_per_outcome(
    store: Any, client: Any, account: str, stack: Any
) -> None:
    """A no-answer contact with recall "[0.05, 0.1]" gets 3 attempts ~3 s and ~6 s after its first call;
    a completed contact gets 1; the invalid-number contact gets 1, failed."""
    add_sim_provider(store, account)
    body = {
        "contacts": [{"phone": "+34600000007"}, {"phone": "+34600000001"}, {"phone": "+34600000009"}],
        "say": "Hello {{first_name|there}}",
        "recall": "[0.05, 0.1]",
    }
    cid = submit(svc, account, body)
    view = wait_done(store, account, cid)
    assert view["status"] == "completed"
    rows = calls(svc, account, cid)
    by_contact: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_contact.setdefault(r["contact"], []).append(r)
    assert [r["state"] for r in by_contact[0]] == ["no-answer"] * 3
    assert [r["state"] for r in by_contact[1]] == ["completed"]
    assert [r["state"] for r in by_contact[2]] == ["failed"]
    first = datetime.fromisoformat(by_contact[0][0]["placed_at"])
    offsets = [(datetime.fromisoformat(r["placed_at"]) - first).total_seconds() for r in by_contact[0][1:]]
    assert 3.0 <= offsets[0] <= 4.5, offsets
    assert 6.0 <= offsets[1] <= 7.5, offsets
    dials = sim_dials(client, cid)
    assert len(dials) == 5
    assert view["counters"]["delivered"] == 1
    assert view["counters"]["failed"] == 2
    assert view["counters"]["recalls"] == 2


def test_future_launch_is_not_dialled_before_its_time(
    store: Any, client: Any, account: str, stack: Any
) -> None:
    """A campaign with launch_at in the future is not dialled before it; one without is dialled at once."""
    add_sim_provider(store, account)
    launch = datetime.now(UTC) + timedelta(seconds=3)
    later = submit(
        svc,
        account,
        {"contacts": [{"phone": "+34600000011"}], "say": "hi", "launch_at": launch.isoformat()},
    )
    now_cid = submit(svc, account, {"contacts": [{"phone": "+34600000021"}], "say": "hi"})
    wait_for(lambda: sim_dials(client, now_cid), timeout=5, what="the immediate campaign to dial")
    assert sim_dials(client, later) == []
    wait_done(store, account, later)
    placed = datetime.fromisoformat(sim_dials(client, later)[0]["at"].replace("Z", "+00:00"))
    assert placed >= launch - timedelta(milliseconds=1)


def test_consecutive_first_calls_are_at_least_the_stagger_apart(
    store: Any, client: Any, account: str, stack: Any
) -> None:
    """The provider could take 20 calls a second, but the campaign asks for 0.4 s between first calls."""
    add_sim_provider(store, account, calls_per_second=20)
    body = {"contacts": [{"phone": f"+346{i:07d}1"} for i in range(8)], "say": "hi", "stagger_seconds": 0.4}
    cid = submit(svc, account, body)
    wait_done(store, account, cid)
    placed = sorted(datetime.fromisoformat(r["placed_at"]) for r in calls(svc, account, cid))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(placed)]
    assert len(placed) == 8
    assert min(gaps) >= 0.4, gaps
    dialled = sorted(datetime.fromisoformat(d["at"]) for d in sim_dials(client, cid))
    real_gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(dialled)]
    assert min(real_gaps) >= 0.35, real_gaps  # the provider saw them spaced too (thread wake-up jitter)


def test_default_stagger_follows_the_provider_calls_per_second(
    store: Any, client: Any, account: str, stack: Any
) -> None:
    add_sim_provider(store, account, calls_per_second=4)
    body = {"contacts": [{"phone": f"+346{i:07d}2"} for i in range(5)], "say": "hi"}
    cid = submit(svc, account, body)
    wait_done(store, account, cid)
    placed = sorted(datetime.fromisoformat(r["placed_at"]) for r in calls(svc, account, cid))
    assert min((b - a).total_seconds() for a, b in itertools.pairwise(placed)) >= 0.25
