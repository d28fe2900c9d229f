"""``python -m scheduler``: APScheduler, one tick per ``DIALER_SCHEDULER_TICK_S`` (default 1 s), followed
within the period while due work is left over for want of queue room (``promote``)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import Any

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler

from config.logging import configure_logging
from config.settings import process_settings
from dialer.errors import RedisUnavailable
from dialer.outage import OUTAGE_ERRORS, Outage
from dialer.service import Service
from scheduler import promote

log = structlog.get_logger("scheduler")


def main() -> int:
    settings = process_settings()
    configure_logging(settings)
    try:
        svc = Service.from_settings(settings)
    except RedisUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    store, clock, sender = svc.core.store, svc.core.clock, svc.sender
    outage = Outage("scheduler")

    last_took_ms = [0]
    stopping = threading.Event()  # set on SIGTERM: follow-up passes end, the pass under way finishes

    def run_tick() -> None:
        started = time.monotonic()
        try:
            res = promote(store, settings, clock, sender, took_ms=last_took_ms[0], stop=stopping)
        except OUTAGE_ERRORS as exc:  # one line per outage; the next tick tries again
            outage.failed(exc)
            return
        except Exception:
            log.exception("tick_failed")
            return
        outage.ok()
        last_took_ms[0] = round((time.monotonic() - started) * 1000)
        if res.schedules or res.attempts or res.checks or res.released:
            log.debug("tick", **vars(res))

    sched = BlockingScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    sched.add_job(run_tick, "interval", seconds=settings.scheduler_tick_s, id="tick")

    def stop(*_: Any) -> None:
        # graceful: the pass under way finishes (a claim is never left half-sent), then the process exits
        stopping.set()
        sched.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("scheduler_started", tick_s=settings.scheduler_tick_s)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sched.start()
    log.info("scheduler_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
