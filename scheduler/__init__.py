"""The scheduler: one ``tick(now)`` that promotes due work into Dramatiq messages.

Safe to run as several replicas: every promotion is a claim in Lua (a member moves from due to leased
once), so two schedulers never send the same work twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Protocol

from config import Settings
from dialer import keys
from dialer.broker import CHECK_CALL, LAUNCH_CAMPAIGN, PLACE_CALL, process_name
from dialer.clock import Clock
from dialer.pace import MAX_SLOT_WAIT_MS
from dialer.store import Store


class Sender(Protocol):
    def send(self, actor_name: str, *args: Any) -> str: ...


#: after a pass that ran out of queue room with work still due, the next one comes this soon (workers
#: have taken messages by then), until most of the tick period is gone
FOLLOW_S = 0.05
#: the share of the tick period follow-up passes may take (the next tick is never delayed)
FOLLOW_SHARE = 0.8


@dataclass
class TickResult:
    released: int = 0
    schedules: int = 0
    attempts: int = 0
    checks: int = 0
    woken: int = 0
    passes: int = 1
    more: bool = False  # the last pass ran out of queue room with work still due

    def add(self, other: TickResult) -> None:
        for f in fields(self):
            if f.name not in ("passes", "more"):
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.passes += other.passes
        self.more = other.more


def promote(
    store: Store,
    settings: Settings,
    clock: Clock,
    sender: Sender,
    who: str | None = None,
    took_ms: int = 0,
    stop: threading.Event | None = None,
) -> TickResult:
    """One tick period's promotion: a tick, then, while a pass runs out of queue room with work still due,
    another pass ``FOLLOW_S`` later, until ``FOLLOW_SHARE`` of the period is gone or ``stop`` is set.
    Dispatch is then bound by how fast workers take messages, not by ``claim_batch`` per tick; an idle
    period is one pass. A queue that stays full costs one round trip per ``FOLLOW_S`` (backing off
    measurably slowed dispatch: the queue's room comes back with every ack)."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + settings.scheduler_tick_s * FOLLOW_SHARE
    total = tick(store, settings, clock.now_ms(), sender, who, took_ms)
    last = total
    while last.more and time.monotonic() + FOLLOW_S < deadline and not stop.wait(FOLLOW_S):
        last = tick(store, settings, clock.now_ms(), sender, who, took_ms, sweep=False)
        total.add(last)
    return total


def tick(
    store: Store,
    settings: Settings,
    now_ms: int,
    sender: Sender,
    who: str | None = None,
    took_ms: int = 0,
    sweep: bool = True,
) -> TickResult:
    """One pass: return expired leases, claim due schedules, attempts and live-call checks (and, with
    ``sweep``, wake what the waiting sets can take now).

    Claims are bounded by the room left in the queue (``claim_batch`` minus messages waiting), and
    attempts are claimed up to ``MAX_SLOT_WAIT_MS`` ahead so that an actor can wait for its exact slot.
    Checks (outcomes free live slots and money) are never held back behind dials. An idle tick is one
    round trip (tick.lua); ``took_ms`` is how long the previous one took (the heartbeat shows it).
    """
    lease_until = now_ms + round(settings.lease_s * 1000)
    seen = store.look(
        now_ms,
        now_ms + MAX_SLOT_WAIT_MS,
        lease_until,
        settings.claim_batch,
        settings.queue,
        who or process_name("scheduler"),
        took_ms,
    )
    res = TickResult(released=seen.released, more=seen.more)
    if seen.schedules:
        for member in store.claim_schedules(seen.schedules, now_ms, lease_until):
            sender.send(LAUNCH_CAMPAIGN, *keys.parse_ref(member))
            res.schedules += 1
    if seen.attempts:
        for ref in store.claim_refs(seen.attempts, now_ms + MAX_SLOT_WAIT_MS, lease_until):
            sender.send(PLACE_CALL, ref)
            res.attempts += 1
    for ref in seen.checks:
        sender.send(CHECK_CALL, ref)
        res.checks += 1
    if seen.waiting and sweep:
        res.woken = sweep_waiting(store, now_ms)
    return res


def sweep_waiting(store: Store, now_ms: int) -> int:
    """Safety net for the waiting sets: wake as many as a provider has free live-call slots, and everyone
    waiting on an account's money once no reservation is outstanding. (The scripts hand slots on as
    calls end; this covers a wake lost to a crash between two steps.)"""
    woken = 0
    for waiting, (kind, account_id, *rest) in store.waiting_sets().items():
        if kind == "provider":
            _, live = store.provider_usage(account_id, rest[0], now_ms)
            provider = store.find_provider(account_id, rest[0])
            limit = provider.max_concurrent if provider else 0
            n = max(0, limit - live) if limit else -1
        else:
            n = -1 if store.get_account(account_id).reserved == 0 else 0
        if n:
            woken += store.wake(waiting, n, now_ms)
    return woken
