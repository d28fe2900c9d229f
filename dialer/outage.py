"""Redis going away is one event, not a traceback per message: the first failure logs a warning, the first
success after it logs how long it lasted. Workers, the scheduler and the web process share this."""

from __future__ import annotations

import logging
import threading
import time

import redis
import structlog

from dialer.errors import RedisUnavailable

#: what "the store is unreachable" looks like from redis-py and from our own connect()
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, RedisUnavailable)


class Outage:
    def __init__(self, process: str) -> None:
        self.log = structlog.get_logger("dialer.outage").bind(process=process)
        self.down_since: float | None = None
        self.lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            if self.down_since is None:
                self.down_since = time.monotonic()
                self.log.warning("redis_unavailable", error=str(exc).splitlines()[0][:200])

    def ok(self) -> None:
        if self.down_since is None:  # the common case: no lock
            return
        with self.lock:
            if self.down_since is not None:
                self.log.info("redis_back", after_s=round(time.monotonic() - self.down_since, 1))
                self.down_since = None


_shared: dict[str, Outage] = {}
_shared_lock = threading.Lock()


def process_outage(process: str) -> Outage:
    """The one outage tracker of a kind of process (a worker's actors, its heartbeat and Dramatiq's own
    consumer share it): one warning per outage per process, whoever meets it first."""
    with _shared_lock:
        if process not in _shared:
            _shared[process] = Outage(process)
        return _shared[process]


class FoldConnectionErrors(logging.Filter):
    """Dramatiq logs a Redis outage once per consumer restart and once per message it cannot ack; this
    folds those records into the process's outage (one warning, then one line when Redis is back)."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("dramatiq"):
            return True
        text = record.getMessage()
        if "connection error" in text or text.startswith("Restarting consumer"):
            self.outage.failed(ConnectionError(text.splitlines()[0]))
            return False
        return True
