"""The baseline of the dispatch figure: a bare Dramatiq no-op actor on a plain ``RedisBroker`` (Dramatiq's
default middleware, nothing of the dialer's). Run as ``python -m dramatiq bench.noop`` with
``DIALER_REDIS_URL`` set; messages are enqueued by ``bench/dispatch.py``.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench_noop"
ACTOR = "noop"

broker = RedisBroker(url=os.environ["DIALER_REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0)
def noop(*args: Any) -> None:
    return None
