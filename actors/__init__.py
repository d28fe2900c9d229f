"""Dramatiq actors: thin wrappers that call the engine through the service. Started with ``dramatiq actors``.

Actors use ``max_retries=0``: a retry is a deferral in the store, never Dramatiq's backoff (its delayed
messages sit in worker memory). Each is safe to run twice (the store's compare-and-set decides). An
attempt whose processing raises is counted by the ``PoisonGuard`` middleware (retried after a backoff,
ended ``failed`` / ``internal_error`` at the limit) instead of cycling for ever.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from config import get_settings
from config.logging import configure_logging
from dialer.broker import (
    ATTEMPT_ACTORS,
    CHECK_CALL,
    LAUNCH_CAMPAIGN,
    PLACE_CALL,
    SUBMIT_CAMPAIGN,
    HandBackOnShutdown,
    Heartbeat,
    QuickPoll,
    make_broker,
)
from dialer.connection import resolve_url
from dialer.errors import DialerError
from dialer.outage import OUTAGE_ERRORS, FoldConnectionErrors, process_outage
from dialer.service import Service

settings = get_settings()
configure_logging(settings)
broker = make_broker(resolve_url(settings))
QUEUE = settings.queue
log = structlog.get_logger("actors")

_service: Service | None = None
_lock = threading.Lock()


def service() -> Service:
    """The worker process's one service (built on first use, in the worker, after the fork; built again
    on the next message if Redis was unreachable at that moment)."""
    global _service
    with _lock:
        if _service is None:
            _service = Service.from_settings(settings)
        return _service


class PoisonGuard(Middleware):
    """An attempt whose processing raised is counted; at the poison limit it ends instead of cycling."""

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is None or message.actor_name not in ATTEMPT_ACTORS or not message.args:
            return
        try:
            service().engine.note_failure(str(message.args[0]), f"{type(exception).__name__}: {exception}")
        except Exception:
            log.exception("poison_guard_failed")


broker.add_middleware(PoisonGuard())
broker.add_middleware(Heartbeat(lambda: service().core.store))
broker.add_middleware(HandBackOnShutdown(lambda: service().core.store))
broker.add_middleware(QuickPoll())


outage = process_outage("worker")
for _handler in logging.getLogger().handlers:
    _handler.addFilter(FoldConnectionErrors(outage))


def through_outages(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Redis away mid-message: one warning per outage (not a traceback per message); the work is not lost
    — its claim's lease brings it back once Redis answers again."""

    @functools.wraps(fn)
    def run(*args: Any) -> Any:
        try:
            result = fn(*args)
        except OUTAGE_ERRORS as exc:
            outage.failed(exc)
            return None
        outage.ok()
        return result

    return run


@dramatiq.actor(actor_name=LAUNCH_CAMPAIGN, max_retries=0, queue_name=QUEUE)
@through_outages
def launch_campaign(account_id: str, campaign_id: str) -> None:
    service().launch(account_id, campaign_id)


@dramatiq.actor(actor_name=PLACE_CALL, max_retries=0, queue_name=QUEUE)
@through_outages
def place_call(ref: str) -> None:
    service().engine.place_call(ref)


@dramatiq.actor(actor_name=CHECK_CALL, max_retries=0, queue_name=QUEUE)
@through_outages
def check_call(ref: str) -> None:
    service().engine.check_call(ref)


@dramatiq.actor(actor_name=SUBMIT_CAMPAIGN, max_retries=0, queue_name=QUEUE)
@through_outages
def submit_campaign(account_id: str, campaign: dict[str, Any], start: bool = True) -> None:
    """Intake by message, for services that enqueue campaigns without HTTP. A refused campaign is logged
    with the reason (there is nobody to answer), never retried."""
    try:
        res = service().for_account(account_id).submit(campaign, start=start)
    except DialerError as exc:
        log.warning("campaign_refused", account_id=account_id, error=exc.message)
        return
    log.info(
        "campaign_submitted", account_id=account_id, campaign_id=res["campaign_id"], status=res["status"]
    )
