"""Dramatiq actors: thin wrappers that call the engine. Started with ``dramatiq actors``.

Actors use ``max_retries=0``: a retry is a deferral in the store, never Dramatiq's backoff (its delayed
messages sit in worker memory). Each is safe to run twice (the store's compare-and-set decides).
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq

from config import get_settings
from config.logging import configure_logging
from dialer.broker import make_broker
from dialer.clock import SystemClock
from dialer.connection import connect, resolve_url
from dialer.engine import Engine
from dialer.providers import ProviderFactory
from dialer.store import Store

settings = get_settings()
configure_logging(settings)
broker = make_broker(resolve_url(settings))
QUEUE = settings.queue

_engine: Engine | None = None
_lock = threading.Lock()


def engine() -> Engine:
    global _engine
    with _lock:
        if _engine is None:
            client = connect(settings=settings)
            clock = SystemClock()
            _engine = Engine(Store(client), clock, ProviderFactory(client, clock), settings)
        return _engine


@dramatiq.actor(max_retries=0, queue_name=QUEUE)
def start_campaign(account_id: str, campaign_id: str) -> None:
    engine().start_campaign(account_id, campaign_id)


@dramatiq.actor(max_retries=0, queue_name=QUEUE)
def place_call(ref: str) -> None:
    engine().place_call(ref)


@dramatiq.actor(max_retries=0, queue_name=QUEUE)
def sim_event(sid: str) -> None:
    engine().sim_event(sid)


@dramatiq.actor(max_retries=0, queue_name=QUEUE)
def reconcile_call(ref: str) -> None:
    engine().reconcile_live(ref)


@dramatiq.actor(max_retries=0, queue_name=QUEUE)
def submit_campaign(account_id: str, campaign: dict[str, Any], start: bool = True) -> None:
    """Intake by message, for services that enqueue campaigns without HTTP."""
    from dialer.campaigns import submit

    eng = engine()
    submit(eng.store, eng.clock, eng.providers, account_id, campaign, start=start)
