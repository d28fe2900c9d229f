"""`make chaos`: the core promise under faults, as a script (not a test): a real campaign on the simulator
(recalls on, ~10% ambiguous provider errors, some latency) run by 2 worker processes and 2 schedulers while
workers are SIGKILLed and restarted, stopped longer than their lease and continued, schedulers are killed
and Redis itself is SIGKILLed and restarted on the same data. At the end one line:

    contacts=N final=N lost=0 duplicate_dials=0 over_attempts=0 money_exact=yes counters_consistent=yes

and exit 0 only if every figure is as shown. Seeded (``--seed``): the fault timeline is replayable. Logs of
every process and the timeline are left in var/chaos/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Stack, signal_tree  # noqa: E402
from dialer.embedded import EmbeddedRedis, free_port  # noqa: E402
from dialer.money import format_money, parse_money  # noqa: E402
from dialer.outcomes import answered_by_human  # noqa: E402
from dialer.providers import ProviderSpec  # noqa: E402
from dialer.service import Service  # noqa: E402
from dialer.states import FINAL_ATTEMPT  # noqa: E402
from dialer.telephony.simulator import sim_dials  # noqa: E402

LEASE_S = 8
RECALL = [0.05, 0.1]  # minutes: 3 s and 6 s after the first call
BALANCE = "1000.00"


@dataclass
class Plan:
    contacts: int
    kills: int
    stops: int
    scheduler_kills: int
    redis_kills: int
    seed: int


def timeline(plan: Plan, rng: random.Random) -> list[tuple[float, str]]:
    """When each fault happens (seconds from the launch): kills every few seconds, stops, scheduler kills and
    the Redis kill spread over the dialling."""
    events: list[tuple[float, str]] = []
    t = 2.0
    for _ in range(plan.kills):
        t += rng.uniform(2.5, 4.5)
        events.append((t, "kill_worker"))
    span = max(t, 40.0)
    events += [(rng.uniform(4, span), "stop_worker") for _ in range(plan.stops)]
    events += [(rng.uniform(3, span), "kill_scheduler") for _ in range(plan.scheduler_kills)]
    events += [(rng.uniform(8, span * 0.6), "kill_redis") for _ in range(plan.redis_kills)]
    return sorted(events)


def log_event(var: Path, text: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {text}"
    print(line, flush=True)
    with open(var / "timeline.log", "a") as f:
        f.write(line + "\n")


def setup(svc: Service, plan: Plan) -> tuple[str, str]:
    account = "chaos"
    svc.create_account(account, BALANCE, "Chaos", "ES")
    svc.for_account(account).add_provider(
        "sim",
        ProviderSpec(
            kind="simulator",
            from_numbers=["+34911234567"],
            cps=12,
            max_concurrent=40,
            price_per_minute="0.0135",
            sim={
                "ring_s": 0.3,
                "talk_min_s": 0.3,
                "talk_max_s": 1.5,
                "no_answer_s": 0.6,
                "error_rate": 0.05,
                "timeout_rate": 0.05,
                "latency_ms": 40,
            },
        ),
    )
    rng = random.Random(plan.seed)
    # distinct Spanish mobiles; the last digit picks the simulator's outcome (9: an invalid number)
    middles = rng.sample(range(1_000_000, 9_999_999), plan.contacts)
    contacts = [{"phone": f"+346{m}{i % 10}"} for i, m in enumerate(middles)]
    body = {"name": "chaos", "contacts": contacts, "say": "Hola {{first_name|}}", "recall": RECALL}
    res = svc.for_account(account).submit(body, start=True)
    return account, str(res["campaign_id"])


def run_faults(
    stack: Stack, svc: Service, account: str, cid: str, plan: Plan, rng: random.Random
) -> Counter[str]:
    done: Counter[str] = Counter()
    launched = time.monotonic()
    events = timeline(plan, rng)
    stopped: list[tuple[float, str]] = []
    deadline = launched + 480
    while time.monotonic() < deadline:
        now = time.monotonic() - launched
        for until, name in list(stopped):
            if now >= until:
                signal_tree(stack.workers[name], signal.SIGCONT)
                stopped.remove((until, name))
                log_event(stack.var, f"SIGCONT {name}")
        while events and events[0][0] <= now:
            running = sorted(n for n in stack.workers if n not in {s for _, s in stopped})
            if events[0][1] in ("kill_worker", "stop_worker") and len(running) < 2:
                break  # keep one worker running: the event waits for the stopped one to continue
            _, kind = events.pop(0)
            if kind == "kill_worker":
                name = rng.choice(running)
                signal_tree(stack.workers[name], signal.SIGKILL)
                stack.worker(name)
                log_event(stack.var, f"SIGKILL {name} (restarted)")
            elif kind == "stop_worker":
                name = rng.choice(running)
                signal_tree(stack.workers[name], signal.SIGSTOP)
                stopped.append((now + LEASE_S + rng.uniform(4, 8), name))
                log_event(stack.var, f"SIGSTOP {name} (longer than the {LEASE_S} s lease)")
            elif kind == "kill_scheduler":
                name = rng.choice(sorted(stack.schedulers))
                signal_tree(stack.schedulers[name], signal.SIGKILL)
                stack.scheduler(name)
                log_event(stack.var, f"SIGKILL {name} (restarted)")
            elif kind == "kill_redis":
                assert stack.redis.proc is not None
                stack.redis.proc.send_signal(signal.SIGKILL)
                stack.redis.proc.wait(10)
                log_event(stack.var, "SIGKILL redis-server")
                time.sleep(rng.uniform(1, 3))  # the outage itself
                stack.redis.start()
                log_event(stack.var, "redis-server restarted on the same data")
            done[kind] += 1
        status = _status(svc, account, cid)
        if not events and not stopped and status in ("completed", "failed", "stopped"):
            break
        time.sleep(0.2)
    for _, name in stopped:
        signal_tree(stack.workers[name], signal.SIGCONT)
    return done


def _status(svc: Service, account: str, cid: str) -> str | None:
    try:
        return str(svc.core.store.campaign_state(account, cid).status.value)
    except Exception:  # Redis down for a moment
        return None


def verdict(svc: Service, account: str, cid: str) -> tuple[str, bool]:
    store = svc.core.store
    _campaign, state = store.get_campaign(account, cid)
    attempts = store.campaign_attempts(account, cid)
    contacts = [c for c in store.contacts(account, cid) if c.intake == "ok"]
    latest: dict[int, Any] = {}
    per_contact: Counter[int] = Counter()
    for a in attempts:
        per_contact[a.contact] += 1
        if a.contact not in latest or a.attempt > latest[a.contact].attempt:
            latest[a.contact] = a
    final = sum(1 for c in contacts if c.index in latest and latest[c.index].state in FINAL_ATTEMPT)
    lost = len(contacts) - final
    dial_keys = Counter(d["key"] for d in sim_dials(store.r, cid))
    duplicates = sum(n - 1 for n in dial_keys.values() if n > 1)
    over = sum(1 for n in per_contact.values() if n > 1 + len(RECALL))
    acc = store.get_account(account)
    costs = sum(a.cost for a in attempts)
    money_exact = (
        acc.balance == parse_money(BALANCE) - costs and acc.reserved == 0 and state.counters.cost == costs
    )
    c = state.counters
    human = sum(1 for a in latest.values() if answered_by_human(a.state, a.answered_by))
    consistent = (
        c.scheduled == 0
        and c.dialing == 0
        and c.delivered == human
        and c.delivered + c.voicemail + c.failed + c.skipped == c.scheduled_calls
        and c.recalls == sum(1 for a in attempts if a.attempt > 1)
        and c.sent == sum(1 for a in attempts if a.sid)
        and state.status.value == "completed"
    )
    line = (
        f"contacts={len(contacts)} final={final} lost={lost} duplicate_dials={duplicates} over_attempts={over} "
        f"money_exact={'yes' if money_exact else 'no'} counters_consistent={'yes' if consistent else 'no'}"
    )
    ok = lost == 0 and duplicates == 0 and over == 0 and money_exact and consistent and len(contacts) > 0
    detail = {
        "status": state.status.value,
        "counters": c.model_dump(),
        "cost": format_money(costs),
        "dials": sum(dial_keys.values()),
    }
    return line + f"  # {json.dumps(detail)}", ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument(
        "--quick", action="store_true", help="a shorter variant (CI): fewer contacts and faults"
    )
    args = parser.parse_args()
    plan = (
        Plan(contacts=200, kills=5, stops=2, scheduler_kills=2, redis_kills=1, seed=args.seed)
        if args.quick
        else Plan(contacts=520, kills=12, stops=3, scheduler_kills=2, redis_kills=1, seed=args.seed)
    )
    var = ROOT / "var" / "chaos"
    if var.exists():
        for f in var.rglob("*"):
            if f.is_file():
                f.unlink()
    var.mkdir(parents=True, exist_ok=True)
    print(
        f"chaos: seed={plan.seed} contacts={plan.contacts} (replay with --seed {plan.seed}); logs in {var}",
        flush=True,
    )
    redis = EmbeddedRedis(var, port=free_port(), appendfsync="always")
    url = redis.start()
    env = {
        **os.environ,
        "DIALER_REDIS_URL": url,
        "DIALER_LEASE_S": str(LEASE_S),
        "DIALER_SCHEDULER_TICK_S": "0.2",
        "DIALER_LOG_FORMAT": "json",
        "DIALER_LOG_LEVEL": "INFO",
    }
    os.environ["DIALER_REDIS_URL"] = url
    stack = Stack(var, env, redis)
    try:
        svc = Service.from_settings(redis_url=url)
        account, cid = setup(svc, plan)
        for name in ("worker-a", "worker-b"):
            stack.worker(name)
        for name in ("scheduler-1", "scheduler-2"):
            stack.scheduler(name)
        rng = random.Random(plan.seed)
        faults = run_faults(stack, svc, account, cid, plan, rng)
        log_event(var, f"faults: {dict(faults)}")
        wait_until = time.monotonic() + 120
        while _status(svc, account, cid) != "completed" and time.monotonic() < wait_until:
            time.sleep(0.5)
        line, ok = verdict(svc, account, cid)
    finally:
        stack.stop_all()
    enough = (
        faults["kill_worker"] >= plan.kills
        and faults["stop_worker"] >= plan.stops
        and faults["kill_scheduler"] >= plan.scheduler_kills
        and faults["kill_redis"] >= plan.redis_kills
    )
    print(line.split("  #")[0], flush=True)
    with open(var / "result.log", "a") as out:
        out.write(f"seed={plan.seed} {line} faults={dict(faults)}\n")
    if not enough:
        print(f"chaos: not every fault happened before the campaign ended: {dict(faults)}", file=sys.stderr)
    return 0 if ok and enough else 1


if __name__ == "__main__":
    sys.exit(main())
