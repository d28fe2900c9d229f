"""The price of ``appendfsync always`` (informational): write throughput with ``always`` ÷ with ``everysec``,
with 1 client and with 8 concurrent clients.

Two embedded Redis servers, one per setting, AOF on both. Each client is a process of its own (no GIL in
common) sending HSETs one at a time (no pipelining: every write waits for its reply, which with ``always``
waits for the fsync of the event-loop iteration that made it); for a fixed time (1 s, quick; 3 s) the
writes of all clients are summed. The settings are alternated three times; the best run of each counts. The dialer requires ``always`` (docs/reliability.md): a write it was told about is on disk.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from typing import Any

import redis

from bench.common import Figure, embedded_redis, redis_stalls

NAME = "fsync"
MODES = ("always", "everysec")
CLIENTS = (1, 8)
REPEAT = 3  # runs of each setting, alternated; the best counts


def _client(url: str, seconds: float, start_at: float, n: int, out: Any) -> None:
    r = redis.Redis.from_url(url)
    r.ping()
    while time.time() < start_at:
        time.sleep(0.001)
    done, end = 0, start_at + seconds
    while time.time() < end:
        r.hset(f"fsync:{n}:{done}", mapping={"state": "scheduled", "due_at": done})
        done += 1
    out.put(done)


def throughput(url: str, clients: int, seconds: float) -> float:
    """HSETs per second of ``clients`` processes, each one write at a time, over ``seconds``."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.5  # every client connected and waiting when the clock starts
    procs = [
        ctx.Process(target=_client, args=(url, seconds, start_at, n, out), daemon=True)
        for n in range(clients)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 30) for _ in procs)
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    return total / seconds


def run(ctx: Any) -> list[Figure]:
    seconds = 1.0 if ctx.quick else 3.0
    rates: dict[tuple[str, int], list[float]] = {(m, c): [] for m in MODES for c in CLIENTS}
    stalls = {}
    with contextlib.ExitStack() as servers:
        urls = {}
        clients_of = {}
        for mode in MODES:
            server, r = servers.enter_context(embedded_redis(ctx.var / mode, appendfsync=mode))
            urls[mode], clients_of[mode] = server.url, r
        for _ in range(REPEAT):  # alternated, so that a slow moment of the machine hits both settings
            for clients in CLIENTS:
                for mode in MODES:
                    rates[(mode, clients)].append(throughput(urls[mode], clients, seconds))
        for mode in MODES:
            stalls[mode] = redis_stalls(clients_of[mode])
    best = {k: max(v) for k, v in rates.items()}
    for (mode, clients), rate in best.items():
        ctx.log(f"appendfsync {mode}, {clients} client(s): {rate:,.0f} writes/s (best of {REPEAT})")
    return [
        Figure(
            NAME,
            f"writes/s with appendfsync always ÷ everysec, {clients} client{'s' if clients > 1 else ''}",
            round(best[("always", clients)] / best[("everysec", clients)], 3),
            baseline={
                "everysec_writes_per_s": round(best[("everysec", clients)]),
                "everysec_runs": [round(x) for x in rates[("everysec", clients)]],
            },
            detail={
                "always_writes_per_s": round(best[("always", clients)]),
                "always_runs": [round(x) for x in rates[("always", clients)]],
                "seconds_per_run": seconds,
                "redis_stalls": stalls,
            },
            note=f"{best[('always', clients)]:,.0f} vs {best[('everysec', clients)]:,.0f} HSET/s (no goal)",
        )
        for clients in CLIENTS
    ]
