"""Promotion: how fast due attempts are claimed from a large due set, ÷ raw ZRANGEBYSCORE + ZREM of the same
members; and how many Redis round trips an idle scheduler tick costs.

The due zset holds F future attempts (due in an hour and later) and D due ones (due a minute ago), written
with pipelined ZADDs; each due one also has its attempt hash shaped like the dialer's (``state``
``scheduled`` and the other fields ``expand.lua`` writes: the claim moves it to ``claimed``). The dialer
side promotes them as the scheduler does: ``scheduler.tick`` (its sender only counts the messages it would
send) until a tick claims nothing, each tick claiming up to ``claim_batch`` (500) through the store's claim
path; the baseline is ZRANGEBYSCORE -inf now LIMIT 0 500 then ZREM of those members, batch after batch, on the same zset (the due members are written again in between; each side is
timed three times, the best run of each counts).

The idle tick: ``scheduler.tick`` with nothing due (the F future attempts still there, the claimed ones
leased into the future), its round trips counted by a redis-py connection that counts what it sends: one
per command, one per pipeline, one per script call (an EVALSHA; a first NOSCRIPT reload is left out by
warming up). INFO commandstats gives the commands those round trips ran (inside scripts too), for
reference.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from bench.common import (
    ACCOUNT,
    CollectingSender,
    Figure,
    command_stats,
    embedded_redis,
    stats_delta,
    total_calls,
)
from config import Settings
from dialer import keys
from dialer.store import Store
from scheduler import tick

NAME = "promotion"
GOAL_RATIO = 0.5
GOAL_ROUND_TRIPS = 3
BATCH = Settings().claim_batch  # the raw side's batch: what a tick claims at most
PIPE = 10_000  # members per pipelined write
CAMPAIGN = "0123456789ab"
IDLE_TICKS = 20
REPEAT = 3  # each side timed this many times; the best counts


class CountingConnection(redis.Connection):
    """Counts round trips: each ``send_packed_command`` is one request (a command or a whole pipeline)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def run(ctx: Any) -> list[Figure]:
    future, due = (100_000, 10_000) if ctx.quick else (1_000_000, 50_000)
    with embedded_redis(ctx.var) as (server, r):
        now = int(time.time() * 1000)
        t = time.perf_counter()
        populate_future(r, future, now)
        ctx.log(f"{future:,} future attempts written in {time.perf_counter() - t:.1f} s")
        store = Store(redis.Redis.from_url(server.url, decode_responses=True))
        settings = Settings()
        raw_runs, store_runs = [], []
        for _ in range(REPEAT):
            populate_due(r, future, due, now)
            raw_runs.append(raw_claims(r, now))
            populate_due(r, future, due, now)
            store_runs.append(store_claims(store, settings, due))
            r.delete(keys.LEASED)
        raw_s, store_s = min(raw_runs), min(store_runs)
        ctx.log(
            f"{due:,} due, best of {REPEAT}: raw ZRANGEBYSCORE + ZREM {due / raw_s:,.0f}/s, "
            f"scheduler ticks {due / store_s:,.0f}/s"
        )
        populate_due(r, future, due, now)
        store_claims(store, settings, due)  # the claimed ones stay leased (into the future) for the idle tick

        trips, commands = idle_tick(server.url, r)
        ctx.log(f"idle tick: {trips:g} round trips, {commands:g} commands")
    return [
        Figure(
            NAME,
            f"claims/s ÷ raw ZRANGEBYSCORE+ZREM, {due // 1000}k due of {(future + due) // 1000}k",
            round(raw_s / store_s, 3),
            goal=GOAL_RATIO,
            op=">=",
            baseline={"raw_claims_per_s": round(due / raw_s), "raw_s": round(raw_s, 3)},
            detail={
                "claims_per_s": round(due / store_s),
                "claim_s": round(store_s, 3),
                "future": future,
                "due": due,
                "batch": BATCH,
                "runs": REPEAT,
                "raw_runs_s": [round(x, 4) for x in raw_runs],
                "claim_runs_s": [round(x, 4) for x in store_runs],
            },
            note=f"{due / store_s:,.0f} claims/s vs raw {due / raw_s:,.0f}/s",
        ),
        Figure(
            NAME,
            "Redis round trips of an idle scheduler tick",
            trips,
            goal=GOAL_ROUND_TRIPS,
            op="<=",
            detail={"commands_per_tick": commands, "ticks": IDLE_TICKS, "future_attempts": future},
            note=f"{commands:g} Redis commands per tick (INFO commandstats, inside scripts too)",
        ),
    ]


def populate_future(r: Any, n: int, now: int) -> None:
    """``n`` members due from an hour ahead on, one a millisecond (no hash: a claim never reaches them)."""
    for start in range(0, n, PIPE):
        members = {
            keys.ref(ACCOUNT, keys.attempt_key(CAMPAIGN, i, 1)): now + 3_600_000 + i
            for i in range(start, min(n, start + PIPE))
        }
        r.zadd(keys.DUE, members)


def populate_due(r: Any, offset: int, n: int, now: int) -> None:
    """``n`` attempts due a minute ago: the zset member and an attempt hash as expand.lua writes it."""
    for start in range(offset, offset + n, PIPE):
        with r.pipeline(transaction=False) as pipe:
            members = {}
            for i in range(start, min(offset + n, start + PIPE)):
                key = keys.attempt_key(CAMPAIGN, i, 1)
                fields = {
                    "key": key,
                    "account_id": ACCOUNT,
                    "campaign_id": CAMPAIGN,
                    "contact": i,
                    "attempt": 1,
                    "phone": f"+346{i:08d}",
                    "due_at": now - 60_000,
                    "state": "scheduled",
                    "cost": 0,
                    "reserved": 0,
                    "extra": json.dumps(False),
                    "permanent": json.dumps(False),
                    "failures": 0,
                }
                pipe.hset(keys.attempt(ACCOUNT, key), mapping=fields)
                members[keys.ref(ACCOUNT, key)] = now - 60_000
            pipe.zadd(keys.DUE, members)
            pipe.execute()


def store_claims(store: Store, settings: Settings, due: int) -> float:
    """The dialer's promotion: scheduler ticks (their sender only counts) until a tick claims nothing."""
    sender = CollectingSender()
    t0 = time.perf_counter()
    claimed = 0
    while True:
        res = tick(store, settings, int(time.time() * 1000), sender, who="bench")
        if not res.attempts:
            break
        claimed += res.attempts
    took = time.perf_counter() - t0
    if claimed != due:
        raise RuntimeError(f"claimed {claimed} of {due} due attempts")
    return took


def raw_claims(r: Any, now: int) -> float:
    """ZRANGEBYSCORE the next batch of due members, ZREM them; until none is due."""
    t0 = time.perf_counter()
    while True:
        members = r.zrangebyscore(keys.DUE, "-inf", now, start=0, num=BATCH)
        if not members:
            break
        r.zrem(keys.DUE, *members)
    return time.perf_counter() - t0


def idle_tick(url: str, r: Any) -> tuple[float, float]:
    """Round trips and commands of one tick with nothing due (the mean of ``IDLE_TICKS``, after one
    warm-up tick that loads the scripts)."""
    client = redis.Redis(
        connection_pool=redis.ConnectionPool.from_url(
            url, decode_responses=True, connection_class=CountingConnection
        )
    )
    store = Store(client)
    settings = Settings()
    sender = CollectingSender()
    tick(store, settings, int(time.time() * 1000), sender, who="bench")  # warm-up: SCRIPT LOADs
    CountingConnection.sent = 0
    before = command_stats(r)
    for _ in range(IDLE_TICKS):
        tick(store, settings, int(time.time() * 1000), sender, who="bench")
    commands = total_calls(stats_delta(before, command_stats(r)))
    if sender.sent:
        raise RuntimeError(f"an idle tick sent {sender.sent[0]}")
    trips = CountingConnection.sent / IDLE_TICKS
    client.close()
    return round(trips, 2), round(commands / IDLE_TICKS, 2)
