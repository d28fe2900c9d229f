"""The scheduler: one ``tick(now)`` that promotes due work into Dramatiq messages.

Safe to run as several replicas: every promotion is a claim in Lua (a member moves from due to leased
once), so two schedulers never send the same work twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from config import Settings
from dialer import keys
from dialer.broker import CHECK_CALL, LAUNCH_CAMPAIGN, PLACE_CALL, process_name
from dialer.pace import MAX_SLOT_WAIT_MS
from dialer.store import Store


class Sender(Protocol):
    def send(self, actor_name: str, *args: Any) -> str: ...


@dataclass
class TickResult:
    released: int = 0
    schedules: int = 0
    attempts: int = 0
    checks: int = 0
    woken: int = 0


def tick(store: Store, settings: Settings, now_ms: int, sender: Sender, who: str | None = None) -> TickResult:
    """One pass: return expired leases, claim due schedules, attempts and live-call checks.

    Claims are bounded by the room left in the queue (``claim_batch`` minus messages waiting), and
    attempts are claimed up to ``MAX_SLOT_WAIT_MS`` ahead so that an actor can wait for its exact slot.
    Checks (outcomes free live slots and money) are never held back behind dials.
    """
    res = TickResult()
    started = time.monotonic()
    res.released = store.release_expired(now_ms)
    lease_until = now_ms + round(settings.lease_s * 1000)
    room = max(0, settings.claim_batch - store.queued_messages(settings.queue))
    if room:
        for member in store.claim_schedules(now_ms, lease_until, room):
            sender.send(LAUNCH_CAMPAIGN, *keys.parse_ref(member))
            res.schedules += 1
        room -= res.schedules
    if room:
        for ref in store.claim_attempts(now_ms + MAX_SLOT_WAIT_MS, lease_until, room):
            sender.send(PLACE_CALL, ref)
            res.attempts += 1
    for ref in store.claim_checks(now_ms, lease_until, settings.claim_batch):
        sender.send(CHECK_CALL, ref)
        res.checks += 1
    res.woken = sweep_waiting(store, now_ms)
    # the heartbeat: `dialer status` and /healthz know a scheduler is alive, and how late it ticks
    store.note_tick(who or process_name("scheduler"), now_ms, round((time.monotonic() - started) * 1000))
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
