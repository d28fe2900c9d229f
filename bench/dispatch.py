"""Dispatch: placed calls per second through the whole path ÷ a bare Dramatiq no-op actor's messages per
second, with the same worker processes × threads on the same Redis.

The dialer side: a campaign is submitted and launched beforehand (every attempt written, due at once at the
provider's 1,000 calls/s stagger), then the scheduler and the workers start; the simulator ends each call
the moment it is placed (zero ring and talk time), cps, concurrency and balance far above what is reached.
The no-op side: as many messages as are timed enqueued on a queue of their own, then the workers start.
Both rates are taken from 10 % to 90 % of the work done (start-up and tail left out), by polling a count
in Redis (the simulator's dial log; the queue's message hash); over the same window INFO commandstats
gives Redis commands per placed call / per message (commands run inside Lua scripts count one each).
The full run alternates the two sides three times and takes the best run of each (other load on the
machine only ever slows a run down); quick runs each once.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.common import (
    ACCOUNT,
    Figure,
    Stack,
    Window,
    campaign_body,
    child_env,
    dial_count,
    embedded_redis,
    launch_now,
    measure_window,
    redis_stalls,
    reset_stalls,
    running,
    service,
    setup_account,
    submit,
    top_commands,
    total_calls,
)

NAME = "dispatch"
NOOP_QUEUE, NOOP_ACTOR = "bench_noop", "noop"  # as in bench/noop.py (not imported here: it builds a broker)
THREADS = 8
GOAL_RATIO = 0.5
GOAL_COMMANDS = 30


def run(ctx: Any) -> list[Figure]:
    calls = 1500 if ctx.quick else 5000
    messages = 4000 if ctx.quick else 15000
    repeat = 1 if ctx.quick else 3
    ratios: list[Figure] = []
    commands: list[Figure] = []
    with embedded_redis(ctx.var) as (server, r):
        for processes in (1, 2):
            label = f"{processes}×{THREADS}"
            bases, subs = [], []
            for rep in range(repeat):  # alternated, so that a slow moment of the machine hits both sides
                r.flushall()
                bases.append(bare_noop(ctx, server, r, processes, messages, rep))
                r.flushall()
                reset_stalls(r)
                subs.append(dialer_calls(ctx, server, r, processes, calls, rep))
                stalls = redis_stalls(r)
                ctx.log(f"{label}: no-op {bases[-1].rate:,.0f} msgs/s, dialer {subs[-1].rate:,.1f} calls/s")
            base, sub = max(bases, key=rate), max(subs, key=rate)
            base_cmds = total_calls(base.stats) / base.done
            ratios.append(
                Figure(
                    NAME,
                    f"calls/s ÷ no-op msgs/s at {label}",
                    round(sub.rate / base.rate, 3),
                    goal=GOAL_RATIO,
                    op=">=",
                    baseline={
                        "noop_msgs_per_s": round(base.rate, 1),
                        "messages": messages,
                        "noop_runs_msgs_per_s": [round(w.rate, 1) for w in bases],
                        "noop_cpu_ms_per_msg": base.cpu_ms_per(),
                    },
                    detail={
                        "calls_per_s": round(sub.rate, 1),
                        "calls": calls,
                        "window_calls": sub.done,
                        "runs_calls_per_s": [round(w.rate, 1) for w in subs],
                        "cpu_ms_per_call": sub.cpu_ms_per(),
                        "redis_stalls_last_run": stalls,
                    },
                    note=f"{sub.rate:,.0f} calls/s vs {base.rate:,.0f} no-op msgs/s"
                    + (f" (best of {repeat} each)" if repeat > 1 else ""),
                )
            )
            commands.append(
                Figure(
                    NAME,
                    f"Redis commands per placed call at {label}",
                    round(total_calls(sub.stats) / sub.done, 1),
                    goal=GOAL_COMMANDS,
                    op="<=",
                    baseline={"noop_commands_per_msg": round(base_cmds, 2)},
                    detail={
                        "top_commands_per_call": top_commands(sub.stats, sub.done),
                        "evalsha_per_call": round(sub.stats.get("evalsha", {}).get("calls", 0) / sub.done, 2),
                        "evalsha_usec_per_call": round(
                            sub.stats.get("evalsha", {}).get("usec", 0) / sub.done, 1
                        ),
                        "noop_top_commands_per_msg": top_commands(base.stats, base.done),
                    },
                    note=f"no-op: {base_cmds:.1f} commands per message",
                )
            )
    return ratios + commands


def rate(w: Window) -> float:
    return w.rate


def bare_noop(ctx: Any, server: Any, r: Any, processes: int, messages: int, rep: int) -> Window:
    """Enqueue ``messages`` no-op messages (args shaped like a place_call ref), then time the workers."""
    broker = RedisBroker(url=server.url)
    try:
        for i in range(messages):
            broker.enqueue(
                dramatiq.Message(
                    queue_name=NOOP_QUEUE,
                    actor_name=NOOP_ACTOR,
                    args=(f"{ACCOUNT}|0123456789ab:{i}:1",),
                    kwargs={},
                    options={},
                )
            )
    finally:
        broker.close()
    msgs_key = f"dramatiq:{NOOP_QUEUE}.msgs"
    stack = Stack(ctx.var, child_env(server.url), server, cwd=ctx.root, orphan_safe=True)
    with running(stack):
        stack.worker(f"noop-{processes}x{THREADS}-{rep}", processes, THREADS, module="bench.noop")
        return measure_window(
            r,
            lambda: messages - int(r.hlen(msgs_key)),
            messages,
            timeout_s=120,
            pids=stack.pids,
        )


def dialer_calls(ctx: Any, server: Any, r: Any, processes: int, calls: int, rep: int) -> Window:
    svc = service(server.url)
    setup_account(svc)
    cid = submit(svc, campaign_body(f"dispatch {processes}x{THREADS}", calls))
    launch_now(svc, ACCOUNT, cid)
    stack = Stack(ctx.var, child_env(server.url, ctx.dialer_env), server, cwd=ctx.root, orphan_safe=True)
    with running(stack):
        stack.worker(f"worker-{processes}x{THREADS}-{rep}", processes, THREADS)
        stack.scheduler(f"scheduler-{processes}x{THREADS}-{rep}")
        return measure_window(r, lambda: dial_count(r, cid), calls, timeout_s=300, pids=stack.pids)
