"""Two scheduler processes ticking for 60 s over the same Redis promote every due item — campaign launches,
dials and live-call checks coming due all along the minute — exactly once, and nothing before it is due."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import add_sim_provider, wait_for
from dramatiq import Message

from dialer import keys
from dialer.broker import CHECK_CALL, LAUNCH_CAMPAIGN, PLACE_CALL
from dialer.clock import to_iso
from dialer.embedded import EmbeddedRedis, free_port
from dialer.money import parse_money
from dialer.pace import MAX_SLOT_WAIT_MS
from dialer.service import Service

RUN_S = 60
SPREAD_S = 50  # items come due over the first 50 s of the run
QUEUE = "two_schedulers"


def queued(svc: Service) -> Counter[tuple[str, str]]:
    """Every message waiting on the queue, as (zset it was promoted from, member)."""
    sources = {LAUNCH_CAMPAIGN: keys.SCHED_DUE, PLACE_CALL: keys.DUE, CHECK_CALL: keys.CHECKS}
    found: Counter[tuple[str, str]] = Counter()
    for data in svc.core.store.r.hvals(keys.dramatiq_messages(QUEUE)):
        m = Message.decode(data if isinstance(data, bytes) else data.encode())
        member = keys.ref(*m.args) if m.actor_name == LAUNCH_CAMPAIGN else str(m.args[0])
        found[(sources[m.actor_name], member)] += 1
    return found


@pytest.mark.slow
def test_two_schedulers_for_a_minute_promote_every_due_item_exactly_once(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path, port=free_port())
    url = redis.start()
    env = {
        **os.environ,
        "DIALER_REDIS_URL": url,
        "DIALER_QUEUE": QUEUE,
        "DIALER_SCHEDULER_TICK_S": "0.02",  # both race on almost every item
        "DIALER_LEASE_S": "600",  # no lease runs out: a second promotion could only be a double claim
        "DIALER_CLAIM_BATCH": "100000",  # no worker drains the queue: room never limits the claims
    }
    schedulers: list[subprocess.Popen[bytes]] = []
    try:
        svc = Service.from_settings(redis_url=url)
        store = svc.core.store
        store.create_account("two", "Two", parse_money("100"), "ES", 0)
        add_sim_provider(store, "two", calls_per_second=100)
        begin = int(time.time() * 1000) + 3000
        # launches: 60 campaigns launching one every ~0.8 s
        for i in range(60):
            body = {
                "contacts": [{"phone": "+34600100200"}],
                "say": "hi",
                "launch_at": to_iso(begin + i * 830),
            }
            svc.for_account("two").submit(body, start=True)
        # dials: 1,500 attempts of one campaign, staggered over the minute (expanded here, no worker runs)
        contacts = [{"phone": f"+3460{i:07d}"} for i in range(1500)]
        body = {"contacts": contacts, "say": "hi", "stagger_seconds": SPREAD_S / 1500}
        cid = str(svc.for_account("two").submit(body, start=False)["campaign_id"])
        svc.for_account("two").start(cid)
        svc.engine.launch("two", cid)
        # live-call checks: 1,500 coming due over the minute
        store.r.zadd(
            keys.CHECKS, {f"two|{cid}:{i}:1": begin + i * SPREAD_S * 1000 // 1500 for i in range(1500)}
        )
        items = {
            (zset, member): score
            for zset in (keys.SCHED_DUE, keys.DUE, keys.CHECKS)
            for member, score in store.r.zrange(zset, 0, -1, withscores=True)
        }
        assert len(items) >= 3000
        before = queued(svc)

        schedulers = [
            subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdin=subprocess.DEVNULL)
            for _ in range(2)
        ]
        started = time.monotonic()
        both = lambda: sum(w.startswith("scheduler|") for w, _ in store.alive(int(time.time() * 1000) - 1000))  # noqa: E731
        wait_for(lambda: both() == 2, timeout=20, what="both schedulers ticking")
        wait_for(lambda: time.monotonic() - started >= RUN_S or any(p.poll() is not None for p in schedulers),
                 timeout=RUN_S + 10, interval=1.0, what="the minute")  # fmt: skip
        assert all(p.poll() is None for p in schedulers), "a scheduler died"
        for p in schedulers:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(20) for p in schedulers] == [0, 0]
        ended = int(time.time() * 1000)

        promoted = queued(svc) - before
        assert set(promoted) <= set(items), "only due items were promoted"
        twice = {item: n for item, n in promoted.items() if n > 1}
        assert not twice, f"promoted more than once: {list(twice.items())[:5]}"
        due = {item for item, score in items.items() if score <= ended - 1000}
        missed = due - set(promoted)
        assert not missed, f"due but never promoted: {sorted(missed)[:5]}"
        early = [item for item in promoted if items[item] > ended + MAX_SLOT_WAIT_MS]
        assert not early
        kinds = Counter(zset for zset, _ in promoted)
        assert kinds[keys.SCHED_DUE] >= 60 and kinds[keys.DUE] == 1500 and kinds[keys.CHECKS] == 1500
    finally:
        for p in schedulers:
            if p.poll() is None:
                p.kill()
        redis.stop()
