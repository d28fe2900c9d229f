"""Test fixtures build the real thing: one embedded Redis per test session, a real Dramatiq worker and a
scheduler thread; tests use unique ids instead of flushing anything."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dialer.embedded import EmbeddedRedis

_server: EmbeddedRedis | None = None
T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    """Start the session's Redis before anything imports the actors (they bind the broker at import)."""
    global _server
    if os.environ.get("DIALER_TEST_REDIS_URL"):
        os.environ["DIALER_REDIS_URL"] = os.environ["DIALER_TEST_REDIS_URL"]
        return
    var = Path(tempfile.mkdtemp(prefix="dialer-test-"))
    _server = EmbeddedRedis(var, appendfsync="no")
    os.environ["DIALER_REDIS_URL"] = _server.start()
    os.environ["DIALER_VAR_DIR"] = str(var)
    os.environ.setdefault("DIALER_LOG_FORMAT", "json")
    os.environ.setdefault("DIALER_LOG_LEVEL", "WARNING")
    from config.logging import configure_logging

    configure_logging()  # logs to stderr as in every process, never structlog's default (stdout)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def uid(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["DIALER_REDIS_URL"]


@pytest.fixture(scope="session")
def client(redis_url: str) -> Any:
    from dialer.connection import connect

    return connect(redis_url)


@pytest.fixture(scope="session")
def store(svc: Any) -> Any:
    return svc.core.store


@pytest.fixture(scope="session")
def settings() -> Any:
    from config import get_settings

    return get_settings()


_service: Any = None


def session_service() -> Any:
    """The service every door uses, on the session's Redis (one per test process; modules may bind it at
    import: the server is up by then)."""
    global _service
    if _service is None:
        from dialer.service import Service

        _service = Service.from_settings(redis_url=os.environ["DIALER_REDIS_URL"])
    return _service


@pytest.fixture(scope="session")
def svc() -> Any:
    return session_service()


@pytest.fixture(scope="session")
def core(svc: Any) -> Any:
    return svc.core


@pytest.fixture(scope="session")
def engine(svc: Any) -> Any:
    return svc.engine


def make_core(store: Any, clock: Any, settings: Any = None, **overrides: Any) -> Any:
    """A core on the session's store with its own clock (a FakeClock drives minute- and hour-scale rules)
    and settings (e.g. a short lease)."""
    from config import Settings
    from dialer.context import Core
    from dialer.providers import ProviderFactory

    base = settings or Settings()
    settings = base.model_copy(update=overrides)
    return Core(store, clock, ProviderFactory(store.r, clock, settings), settings)


def service_like(redis_url: str, **overrides: Any) -> Any:
    """A service set up like the processes a test starts (their lease, their queue): a submit due now
    claims its launch with this lease and sends it to this queue, as a door of that deployment would."""
    from config import get_settings
    from dialer.service import Service

    return Service.from_settings(get_settings().model_copy(update=overrides), redis_url=redis_url)


def make_engine(store: Any, clock: Any, **overrides: Any) -> Any:
    from dialer.engine import Engine

    return Engine(make_core(store, clock, **overrides))


def submit(svc: Any, account: str, body: dict[str, Any], start: bool = True) -> str:
    """Submit (and by default start) a campaign through the service; returns its id."""
    return str(svc.for_account(account).submit(body, start=start)["campaign_id"])


def show(svc: Any, account: str, campaign_id: str) -> dict[str, Any]:
    return dict(svc.for_account(account).campaign(campaign_id))


def calls(svc: Any, account: str, campaign_id: str) -> list[dict[str, Any]]:
    return list(svc.for_account(account).calls(campaign_id))


@pytest.fixture(scope="module")
def stack(store: Any, settings: Any, svc: Any) -> Iterator[Any]:
    """A real Dramatiq worker (8 threads) and a scheduler thread ticking every 50 ms (per test module)."""
    import dramatiq

    import actors
    from dialer.clock import SystemClock
    from scheduler import tick

    worker = dramatiq.Worker(actors.broker, worker_threads=8, worker_timeout=100)
    worker.start()
    stop = threading.Event()
    clock = SystemClock()

    def loop() -> None:
        while not stop.is_set():
            tick(store, settings, clock.now_ms(), svc.sender)
            stop.wait(0.05)

    thread = threading.Thread(target=loop, name="scheduler", daemon=True)
    thread.start()
    yield worker
    stop.set()
    thread.join(5)
    worker.stop()


@pytest.fixture
def account(store: Any) -> str:
    from dialer.money import parse_money

    account_id = uid("acc")
    store.create_account(account_id, "Test", parse_money("1000.00"), "ES", int(time.time() * 1000))
    return account_id


def footprint(store: Any, account_id: str) -> set[str]:
    """Everything stored for one account — its own keys (with their sizes) and its entries in the global
    indexes and queues — so a test can tell "nothing stored" while other work runs in the background."""
    from dialer import keys

    r = store.r
    prefix = keys.account(account_id).removesuffix(":account")
    glob = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
    found = {f"{k} {r.memory_usage(k) or 0}" for k in r.scan_iter(match=glob, count=1000)}
    for k in r.scan_iter(match=f"{keys.P}:*", count=1000):
        if k.startswith(prefix) or k in (keys.STATS, keys.ALIVE, keys.TICK):
            continue
        kind = r.type(k)
        entries: list[tuple[str, str]] = []
        if kind == "hash":
            entries = list(r.hgetall(k).items())
        elif kind in ("zset", "set"):
            entries = [(m, "") for m in (r.zrange(k, 0, -1) if kind == "zset" else r.smembers(k))]
        found |= {f"{k} {f}" for f, v in entries if account_id in (f, v) or f.startswith(account_id + "|")}
    return found


def add_sim_provider(store: Any, account_id: str, name: str = "sim", **kw: Any) -> Any:
    from dialer.models import ProviderConfig

    sim = {"ring_s": 0.2, "talk_min_s": 0.2, "talk_max_s": 0.4, "no_answer_s": 0.5, **kw.pop("sim", {})}
    cfg = ProviderConfig(
        account_id=account_id,
        name=name,
        kind="simulator",
        from_numbers=["+34911234567"],
        calls_per_second=kw.pop("calls_per_second", 20.0),
        sim=sim,
        **kw,
    )
    store.put_provider(cfg)
    return cfg


@pytest.fixture(scope="module")
def proc_stack(redis_url: str) -> Iterator[None]:
    """Real concurrency: 2 worker processes x 8 threads (the `dramatiq actors` CLI) and a scheduler process
    ticking every 100 ms, all on the session's Redis."""
    import sys

    env = {**os.environ, "DIALER_REDIS_URL": redis_url, "DIALER_SCHEDULER_TICK_S": "0.1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dramatiq",
                "actors",
                "--processes",
                "2",
                "--threads",
                "8",
                "--queues",
                "dialer",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
        ),
        subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdin=subprocess.DEVNULL),
    ]
    yield None
    stop_processes(procs)


def stop_processes(procs: list[Any], before: Any = None) -> None:
    """SIGTERM every process (after ``before(p)`` for each still running, e.g. a SIGCONT), wait up to 20 s
    each, SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            if before is not None:
                before(p)
            p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


ADMIN_TOKEN = "test-admin-token"


@pytest.fixture(scope="session")
def web_app(store: Any, redis_url: str) -> Any:
    """The HTTP app over a service with an admin token (its own service: the admin routes exist)."""
    from dialer.clock import SystemClock
    from dialer.service import Service
    from dialer.web.app import create_app

    return create_app(Service(make_core(store, SystemClock(), admin_token=ADMIN_TOKEN), redis_url))


@pytest.fixture(scope="session")
def web(web_app: Any) -> Iterator[str]:
    """The HTTP API served by uvicorn on a free local port (real HTTP); yields its base URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(web_app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, what="uvicorn to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def http_account(web: str, balance: str = "100.00", provider: bool = True) -> tuple[str, Any]:
    """A new account made through the admin route, with a simulator provider; (account id, an httpx
    client that sends its key)."""
    import httpx

    account = uid("web")
    admin = httpx.Client(base_url=web, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    res = admin.post("/admin/accounts", json={"id": account, "balance": balance, "region": "ES"})
    assert res.status_code == 201, res.text
    client = httpx.Client(
        base_url=web, headers={"Authorization": f"Bearer {res.json()['api_key']}"}, timeout=30
    )
    if provider:
        body = {
            "name": "sim",
            "kind": "simulator",
            "from": ["+34911234567"],
            "cps": 20,
            "sim": {"ring_s": 0.2, "talk_min_s": 0.2, "talk_max_s": 0.4, "no_answer_s": 0.5},
        }
        assert client.post("/providers", json=body).status_code == 201
    return account, client
