"""Where Redis is: ``DIALER_REDIS_URL``, else the embedded one's ``var/redis.url``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import redis
from redis.sentinel import Sentinel

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


SENTINEL_SCHEME = "redis+sentinel://"


def shown(url: str) -> str:
    """A Redis URL fit for a message or a log: its password (``:PASSWORD@`` or ``?password=``) as ***; a
    URL too broken to read is shown as its scheme only."""
    try:
        parsed = urlparse(url)
        password = parsed.password
    except ValueError:
        return url.split("://", 1)[0] + "://***" if "://" in url else "***"
    if password:
        url = url.replace(f":{password}@", ":***@", 1)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)


def client_for(url: str, *, decode: bool = True) -> redis.Redis:
    """A client for ``redis://``, ``rediss://`` (TLS; redis-py's ``?ssl_cert_reqs=`` and friends apply),
    ``unix://`` or ``redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`` (the current
    master of a Sentinel-managed set, found again after a failover). Raises ValueError for anything else."""
    options: dict[str, Any] = {
        "decode_responses": decode,
        "socket_connect_timeout": 3,
        "health_check_interval": 30,
    }
    if not url.startswith(SENTINEL_SCHEME):
        number = urlparse(url).path.strip("/") if url.startswith(("redis://", "rediss://")) else ""
        if number and not number.isdigit():
            raise ValueError(f"the database after the host must be a number, not {number!r}")
        return redis.Redis.from_url(url, **options)
    parsed = urlparse(url)
    hosts = parsed.netloc.rpartition("@")[2]
    nodes = []
    for node in hosts.split(","):
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"sentinel address {node!r} is not HOST:PORT")
        nodes.append((host, int(port)))
    path = [p for p in parsed.path.split("/") if p]
    if not path:
        raise ValueError("redis+sentinel:// needs the service name: redis+sentinel://HOST:PORT/SERVICE[/DB]")
    service, db = path[0], int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    password = unquote(parsed.password) if parsed.password else None
    sentinel = Sentinel(nodes, socket_timeout=3, sentinel_kwargs={"password": password} if password else None)
    return sentinel.master_for(service, redis_class=redis.Redis, db=db, password=password, **options)


def connect(url: str | None = None, settings: Settings | None = None) -> redis.Redis:
    """A client with str responses; raises RedisUnavailable (exit 3) when nothing answers."""
    url = url or resolve_url(settings)
    try:
        client = client_for(url)
    except ValueError as exc:
        raise RedisUnavailable(
            f"{shown(url)!r} is not a Redis URL ({exc}); use redis://HOST:PORT[/DB], rediss://... (TLS) or "
            f"redis+sentinel://HOST:PORT/SERVICE; {HINT}"
        ) from None
    try:
        client.ping()
    except redis.RedisError as exc:
        stale = "" if (settings or get_settings()).redis_url else " (var/redis.url may be stale)"
        raise RedisUnavailable(f"Redis at {shown(url)} is unreachable{stale}: {exc}; {HINT}") from None
    return client
