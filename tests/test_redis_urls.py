"""Production Redis: the store and the broker reach Redis through Sentinel (`redis+sentinel://`), and bad
URLs are refused with a hint."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import uid, wait_for

from dialer import keys
from dialer.connection import client_for
from dialer.embedded import free_port, redis_server_binary
from dialer.errors import RedisUnavailable
from dialer.service import Service


@pytest.fixture(scope="module")
def sentinel(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis Sentinel (the same redis-server binary, in sentinel mode) watching the test Redis."""
    port = free_port()
    master_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    conf = tmp_path_factory.mktemp("sentinel") / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nsentinel monitor dialer-main 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds dialer-main 5000\n"
    )
    proc = subprocess.Popen([str(redis_server_binary()), str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    url = f"redis+sentinel://127.0.0.1:{port}/dialer-main"
    try:
        wait_for(lambda: _answers(url), timeout=20, what="the sentinel to know its master")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return bool(client_for(url).ping())
    except Exception:
        return False


def test_the_store_and_the_broker_work_through_sentinel(sentinel: str, store: Any) -> None:
    svc = Service.from_settings(redis_url=sentinel)
    account = uid("sen")
    svc.create_account(account, "10", region="ES")
    assert store.get_account(account).balance == 100_000  # the same Redis as the test's own client
    message_id = svc.enqueue_campaign(account, {"contacts": [{"phone": "+34600000001"}], "say": "hi"})
    queued = store.r.hgetall(keys.dramatiq_messages(svc.core.settings.queue))
    assert any(message_id in body for body in queued.values())


@pytest.mark.parametrize(
    "url",
    ["redis+sentinel://127.0.0.1:1", "redis+sentinel://nohostport/svc", "localhost:6379", "http://x"],
)
def test_bad_urls_are_refused_with_a_hint(url: str) -> None:
    with pytest.raises(RedisUnavailable) as exc:
        Service.from_settings(redis_url=url)
    assert "DIALER_REDIS_URL" in str(exc.value) or "redis://" in str(exc.value)


def test_tls_urls_are_accepted_by_the_client(tmp_path: Path) -> None:
    """rediss:// is redis-py's own TLS client (the embedded server has no TLS to test against)."""
    client = client_for("rediss://127.0.0.1:1/0?ssl_cert_reqs=none")
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
