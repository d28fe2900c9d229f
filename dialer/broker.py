"""The one Dramatiq broker set-up (Redis), the middleware that binds log context per message, and the
sender that enqueues the actors' messages by name on a given broker (so the scheduler and the client send
through their own Redis without importing the actors module)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from dialer.connection import client_for
from dialer.outage import OUTAGE_ERRORS, process_outage
from dialer.store import Store

log = structlog.get_logger("dialer.broker")

# the actors' names (``actors/__init__.py`` defines them): the messages other processes send
LAUNCH_CAMPAIGN = "launch_campaign"
PLACE_CALL = "place_call"
CHECK_CALL = "check_call"
SUBMIT_CAMPAIGN = "submit_campaign"
#: actors whose first argument is an attempt ref (ACCOUNT|CAMPAIGN:CONTACT:N)
ATTEMPT_ACTORS = frozenset({PLACE_CALL, CHECK_CALL})


class LogContext(Middleware):
    """Every log line of an actor carries the actor and its campaign / attempt (structlog contextvars)."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        ctx: dict[str, Any] = {"actor": message.actor_name, "message_id": message.message_id}
        args = message.args
        if message.actor_name in ATTEMPT_ACTORS and args and "|" in str(args[0]):
            account_id, _, key = str(args[0]).partition("|")
            ctx.update(account_id=account_id, attempt=key, campaign_id=key.split(":", 1)[0])
        elif message.actor_name == LAUNCH_CAMPAIGN and len(args) >= 2:
            ctx.update(account_id=args[0], campaign_id=args[1])
        elif args:
            ctx.update(account_id=args[0])
        structlog.contextvars.bind_contextvars(**ctx)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


def process_name(kind: str) -> str:
    """How a process is named in heartbeats: ``kind|host|pid``."""
    return f"{kind}|{socket.gethostname()}|{os.getpid()}"


class Heartbeat(Middleware):
    """Each worker process says it is alive every few seconds (`dialer status`, /healthz read it) and takes
    itself off the list when it shuts down."""

    interval_s = 5.0

    def __init__(self, store: Callable[[], Store]) -> None:
        self.store = store
        self.stop = threading.Event()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        name = process_name("worker")
        outage = process_outage("worker")

        def beat() -> None:
            while not self.stop.is_set():
                try:
                    self.store().beat(name, int(time.time() * 1000))
                    outage.ok()
                except OUTAGE_ERRORS as exc:  # Redis away for a moment: the next beat tries again
                    outage.failed(exc)
                self.stop.wait(self.interval_s)

        threading.Thread(target=beat, name="heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            self.store().forget(process_name("worker"))


class QuickPoll(Middleware):
    """An idle Dramatiq consumer backs off to polling its queue once a second; this caps it at
    ``IDLE_POLL_MS``, so a message sent to an idle worker (a campaign just started) starts within about
    that — a few cheap fetches a second per worker process."""

    IDLE_POLL_MS = 100

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        worker.worker_timeout = min(worker.worker_timeout, self.IDLE_POLL_MS)


class HandBackOnShutdown(Middleware):
    """On SIGTERM Dramatiq lets each worker thread finish the message in hand (within
    ``--worker-shutdown-timeout``), then puts the messages it had fetched but not started back on the
    queue. This hands their claims back too: the dials and checks are due again now, so another worker
    takes them at once instead of when their lease runs out, and the stop is counted as
    ``released|shutdown``, not as a crash (``released|expired``). It reads Dramatiq's worker queues; were
    they to change, the leases would still bring the work back."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self.store = store
        self.worker: Any = None
        self.lock = threading.Lock()
        self.done: set[str] = set()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self.worker = worker

    def before_consumer_thread_shutdown(self, broker: Any, thread: Any) -> None:
        """Called as each consumer stops: the worker threads have finished, nothing is fetched any more."""
        messages = [item.message for item in _queued(self.worker, "work_queue")]
        messages += [item.message for item in _queued(thread, "delay_queue")]
        for data in list(getattr(getattr(thread, "consumer", None), "message_cache", None) or []):
            with contextlib.suppress(Exception):
                messages.append(Message.decode(data))
        refs = {PLACE_CALL: [], CHECK_CALL: []}  # type: dict[str, list[str]]
        with self.lock:
            for m in messages:
                if m.actor_name in refs and m.args and str(m.args[0]) not in self.done:
                    refs[m.actor_name].append(str(m.args[0]))
                    self.done.add(str(m.args[0]))
            if not refs[PLACE_CALL] and not refs[CHECK_CALL]:
                return
            try:
                n = self.store().release_unprocessed(
                    refs[PLACE_CALL], refs[CHECK_CALL], int(time.time() * 1000)
                )
                log.info(
                    "claims_handed_back", released=n, fetched=len(refs[PLACE_CALL]) + len(refs[CHECK_CALL])
                )
            except Exception as exc:  # Redis away: the leases bring the work back
                log.warning("claims_not_handed_back", error=f"{type(exc).__name__}: {exc}")


def _queued(owner: Any, name: str) -> list[Any]:
    """The items waiting in a Dramatiq worker's priority queue (a snapshot; nothing taken out)."""
    queue = getattr(owner, name, None)
    with getattr(queue, "mutex", contextlib.nullcontext()):
        return list(getattr(queue, "queue", []))


def make_broker(url: str, *, global_: bool = True) -> RedisBroker:
    """The Redis broker on the same Redis as the store (TLS and Sentinel URLs included)."""
    broker = RedisBroker(client=client_for(url, decode=False))
    broker.add_middleware(LogContext())
    if global_:
        dramatiq.set_broker(broker)
    return broker


class MessageSender:
    """Enqueues actor messages by name on one broker (fire and forget); returns the message id."""

    def __init__(self, broker: RedisBroker, queue: str) -> None:
        self.broker = broker
        self.queue = queue

    def send(self, actor_name: str, *args: Any) -> str:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=self.queue, actor_name=actor_name, args=args, kwargs={}, options={}
        )
        return str(self.broker.enqueue(message).message_id)
