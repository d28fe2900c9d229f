"""Where Redis is: ``DIALER_REDIS_URL``, else the embedded one's ``var/redis.url``."""

from __future__ import annotations

from pathlib import Path

import redis

from config import Settings, get_settings
from dialer.errors import RedisUnavailable

HINT = (
    "start one with `dialer dev` (embedded Redis, worker and scheduler) "
    "or point DIALER_REDIS_URL at a Redis >= 6.2"
)


def url_file(settings: Settings) -> Path:
    return settings.var_dir / "redis.url"


def resolve_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.redis_url:
        return settings.redis_url
    path = url_file(settings)
    if path.exists():
        text = path.read_text().strip()
        if text:
            return text
    raise RedisUnavailable(
        f"no Redis configured: DIALER_REDIS_URL is unset and {path} does not exist; {HINT}"
    )


def connect(url: str | None = None, settings: Settings | None = None) -> redis.Redis:
    """A client with str responses; raises RedisUnavailable (exit 3) when nothing answers."""
    url = url or resolve_url(settings)
    try:
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=3, health_check_interval=30
        )
    except ValueError as exc:
        raise RedisUnavailable(
            f"{url!r} is not a Redis URL ({exc}); use redis://HOST:PORT[/DB] or rediss://...; {HINT}"
        ) from None
    try:
        client.ping()
    except redis.RedisError as exc:
        stale = "" if (settings or get_settings()).redis_url else " (var/redis.url may be stale)"
        raise RedisUnavailable(f"Redis at {url} is unreachable{stale}: {exc}; {HINT}") from None
    return client
