"""The one Dramatiq broker set-up (Redis), with the middleware that binds log context per message."""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware


class LogContext(Middleware):
    """Every log line of an actor carries the actor and its campaign / attempt (structlog contextvars)."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        ctx: dict[str, Any] = {"actor": message.actor_name, "message_id": message.message_id}
        args = message.args
        if args and isinstance(args[0], str) and "|" in args[0]:
            account_id, _, key = args[0].partition("|")
            ctx.update(account_id=account_id, attempt=key, campaign_id=key.split(":", 1)[0])
        elif len(args) >= 2 and message.actor_name in ("start_campaign", "call_status"):
            ctx.update(account_id=args[0], campaign_id=str(args[1]).split(":", 1)[0])
        structlog.contextvars.bind_contextvars(**ctx)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


def make_broker(url: str) -> RedisBroker:
    broker = RedisBroker(url=url)
    broker.add_middleware(LogContext())
    dramatiq.set_broker(broker)
    return broker
