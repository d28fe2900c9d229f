"""The scheduler: one ``tick(now)`` that promotes due work into Dramatiq messages.

Safe to run as several replicas: every promotion is a claim in Lua (a member moves from due to leased
once), so two schedulers never send the same work twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from config import Settings
from dialer import keys
from dialer.engine import MAX_SLOT_WAIT_MS
from dialer.store import Store

LIVE_RECHECK_MS = 60_000


class Sender(Protocol):
    def start_campaign(self, account_id: str, campaign_id: str) -> None: ...
    def place_call(self, ref: str) -> None: ...
    def sim_event(self, sid: str) -> None: ...
    def reconcile_call(self, ref: str) -> None: ...


@dataclass
class TickResult:
    released: int = 0
    schedules: int = 0
    attempts: int = 0
    events: int = 0
    lost: int = 0
    woken: int = 0


def tick(store: Store, settings: Settings, now_ms: int, send: Sender) -> TickResult:
    """One pass: return expired leases, claim due schedules, attempts and outcome events, recheck lost calls.

    Claims are bounded by the room left in the queue (``claim_batch`` minus messages waiting), and
    attempts are claimed up to ``MAX_SLOT_WAIT_MS`` ahead so that an actor can wait for its exact slot.
    """
    res = TickResult()
    res.released = store.release_expired(now_ms)
    lease_until = now_ms + round(settings.lease_s * 1000)
    room = max(0, settings.claim_batch - store.queued_messages(settings.queue))
    if room:
        for member in store.claim_schedules(now_ms, lease_until, room):
            send.start_campaign(*keys.parse_ref(member))
            res.schedules += 1
        room -= res.schedules
    if room:
        for ref in store.claim_attempts(now_ms + MAX_SLOT_WAIT_MS, lease_until, room):
            send.place_call(ref)
            res.attempts += 1
    # outcomes free live slots and money: never held back behind dials
    for sid in store.claim_events(now_ms, lease_until, settings.claim_batch):
        send.sim_event(sid)
        res.events += 1
    for ref in store.expired_live(now_ms, now_ms + LIVE_RECHECK_MS, 100):
        send.reconcile_call(ref)
        res.lost += 1
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


class ActorSender:
    """Sends the real Dramatiq messages (imports the actors, which set up the broker)."""

    def __init__(self) -> None:
        import actors

        self.actors = actors

    def start_campaign(self, account_id: str, campaign_id: str) -> None:
        self.actors.start_campaign.send(account_id, campaign_id)

    def place_call(self, ref: str) -> None:
        self.actors.place_call.send(ref)

    def sim_event(self, sid: str) -> None:
        self.actors.sim_event.send(sid)

    def reconcile_call(self, ref: str) -> None:
        self.actors.reconcile_call.send(ref)
