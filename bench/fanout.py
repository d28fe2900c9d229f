"""Fan-out: a campaign of N contacts (phone, first name, one custom field) from the submit call to the
moment every attempt exists, ÷ raw pipelined redis-py writes of the same data; and Redis memory per contact.

The dialer side, in this process: ``submit(body, start=True)`` (validation, number normalisation, the
message checked for every contact, the campaign and its contacts stored, the start checks and the
schedule), then what the scheduler and a worker do with the due launch — the schedule claimed and
``Engine.launch`` run, which writes the attempts chunk by chunk — timed until it returns (every attempt
exists; checked). The baseline, on the same Redis emptied first: one HSET per contact (its phone, first
name, custom field and due time) and a ZADD of its key into a due zset, pipelined 1,000 contacts at a
time. Memory: INFO used_memory after − before, ÷ N (the baseline's own figure is given for reference, and
MEMORY USAGE of each kind of key per contact, to show where the bytes are).
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import (
    ACCOUNT,
    Figure,
    campaign_body,
    embedded_redis,
    launch_now,
    service,
    setup_account,
    submit,
    used_memory,
)
from dialer import keys

NAME = "fanout"
GOAL_RATIO = 0.5
GOAL_BYTES = 400
BATCH = 1000


def run(ctx: Any) -> list[Figure]:
    n = 20_000 if ctx.quick else 100_000
    with embedded_redis(ctx.var) as (server, r):
        body = campaign_body("fan-out", n)
        # the baseline first, on an empty Redis
        r.flushall()
        mem0 = used_memory(r)
        raw_s = raw_writes(r, body["contacts"])
        raw_bytes = (used_memory(r) - mem0) / n
        ctx.log(f"raw pipelined writes of {n:,} contacts: {raw_s:.2f} s ({raw_bytes:.0f} B/contact)")
        r.flushall()
        svc = service(server.url)
        setup_account(svc)
        mem0 = used_memory(r)
        t0 = time.perf_counter()
        cid = submit(svc, body)
        t1 = time.perf_counter()
        launch_now(svc, ACCOUNT, cid)
        t2 = time.perf_counter()
        mem1 = used_memory(r)
        written = int(r.zcard(keys.campaign_attempts(ACCOUNT, cid)))
        if written != n:
            raise RuntimeError(f"launch returned with {written} of {n} attempts written")
        ctx.log(f"dialer: intake {t1 - t0:.2f} s + expansion {t2 - t1:.2f} s")
        breakdown = memory_breakdown(r, cid, n)
        ctx.log(f"bytes per contact by key: {breakdown}")
    dialer_s = t2 - t0
    per_contact = (mem1 - mem0) / n
    return [
        Figure(
            NAME,
            f"contacts/s ÷ raw pipelined writes, {n:,} contacts",
            round(raw_s / dialer_s, 3),
            goal=GOAL_RATIO,
            op=">=",
            baseline={"raw_s": round(raw_s, 3), "raw_contacts_per_s": round(n / raw_s)},
            detail={
                "contacts": n,
                "dialer_s": round(dialer_s, 3),
                "intake_s": round(t1 - t0, 3),
                "expansion_s": round(t2 - t1, 3),
                "dialer_contacts_per_s": round(n / dialer_s),
            },
            note=f"{n / dialer_s:,.0f}/s (intake {t1 - t0:.1f} s + expansion {t2 - t1:.1f} s) vs raw {n / raw_s:,.0f}/s",
        ),
        Figure(
            NAME,
            "Redis memory per contact",
            round(per_contact),
            unit="B",
            goal=GOAL_BYTES,
            op="<=",
            baseline={"raw_bytes_per_contact": round(raw_bytes)},
            detail={"used_memory_delta": mem1 - mem0, "contacts": n, "bytes_per_contact_by_key": breakdown},
            note=f"raw HSET + ZADD: {raw_bytes:.0f} B per contact; by key: "
            + ", ".join(f"{k} {v}" for k, v in sorted(breakdown.items(), key=lambda kv: -kv[1])),
        ),
    ]


def raw_writes(r: Any, contacts: list[dict[str, Any]]) -> float:
    """One HSET per contact and its key into a due zset, pipelined ``BATCH`` contacts at a time."""
    t0 = time.perf_counter()
    due0 = int(time.time() * 1000)
    for start in range(0, len(contacts), BATCH):
        with r.pipeline(transaction=False) as pipe:
            members = {}
            for i, c in enumerate(contacts[start : start + BATCH], start):
                key = f"raw:{{a:{ACCOUNT}}}:att:{i}"
                pipe.hset(
                    key,
                    mapping={
                        "phone": c["phone"],
                        "first_name": c["first_name"],
                        "lead_id": c["custom_fields"]["lead_id"],
                        "due_at": due0 + i,
                    },
                )
                members[key] = due0 + i
            pipe.zadd("raw:{q}:due", members)
            pipe.execute()
    return time.perf_counter() - t0


def memory_breakdown(r: Any, campaign_id: str, n: int) -> dict[str, int]:
    """MEMORY USAGE per contact of each kind of key a contact has a share of (an attempt hash: the mean of
    a sample of 200). Keys' sizes only: Redis's per-key overhead in its main dictionary is not in them."""
    whole = {
        "contacts_list": keys.contacts(ACCOUNT, campaign_id),
        "phones_set": keys.campaign_phones(ACCOUNT, campaign_id),
        "campaign_attempts_zset": keys.campaign_attempts(ACCOUNT, campaign_id),
        "due_zset": keys.DUE,
    }
    out = {name: round(int(r.memory_usage(key, samples=0) or 0) / n) for name, key in whole.items()}
    step = max(1, n // 200)
    sample = [keys.attempt(ACCOUNT, keys.attempt_key(campaign_id, i, 1)) for i in range(0, n, step)]
    out["attempt_hash"] = round(sum(int(r.memory_usage(k, samples=0) or 0) for k in sample) / len(sample))
    return out
