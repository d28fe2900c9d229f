"""`dialer dev` / `dialer demo`: the embedded Redis, a worker, the scheduler and the web process as one
process tree (the children die with it, even on SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import redis
import structlog

from config import Settings
from dialer.connection import url_file
from dialer.embedded import EmbeddedRedis, die_with_parent, free_port, write_url_file

log = structlog.get_logger("dialer.dev")


def web_url_file(settings: Settings) -> Path:
    """Where `dialer dev` writes the base URL of its web process (removed on a clean exit)."""
    return settings.var_dir / "web.url"


def live_url_file(settings: Settings) -> str | None:
    """The URL in var/redis.url if a Redis answers there (another `dialer dev` is running)."""
    path = url_file(settings)
    if not path.exists():
        return None
    url = path.read_text().strip()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


class DevStack:
    """Starts what is missing: Redis (unless DIALER_REDIS_URL is set), a worker and a scheduler."""

    def __init__(
        self,
        settings: Settings,
        *,
        processes: int = 1,
        threads: int = 8,
        log_to_files: bool = False,
        web_port: int | None = None,
    ):
        self.settings = settings
        self.processes = processes
        self.threads = threads
        self.log_to_files = log_to_files
        port = settings.http_port if web_port is None else web_port
        self.web_port = port or free_port()  # 0 = any free port
        self.web_url = ""
        self.redis: EmbeddedRedis | None = None
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._files: list[IO[Any]] = []
        self.url = ""

    def __enter__(self) -> DevStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        var = self.settings.var_dir.resolve()
        var.mkdir(parents=True, exist_ok=True)
        if self.settings.redis_url:
            self.url = self.settings.redis_url
        else:
            if live_url_file(self.settings):
                raise RuntimeError(
                    f"a dev stack is already running (its Redis is in {url_file(self.settings)}); "
                    "stop it first or use it directly"
                )
            self.redis = EmbeddedRedis(var)
            self.url = self.redis.start()
            write_url_file(url_file(self.settings), self.url)
            log.info("redis_started", url=self.url, data=str(var / "redis"))
        env = {**os.environ, "DIALER_REDIS_URL": self.url}
        self._spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "dramatiq",
                "actors",
                "--processes",
                str(self.processes),
                "--threads",
                str(self.threads),
                "--queues",
                self.settings.queue,
                "--worker-shutdown-timeout",
                "30000",  # SIGTERM: in-flight dials finish, then the worker stops
            ],
            env,
            var,
        )
        self._spawn("scheduler", [sys.executable, "-m", "scheduler"], env, var)
        web_env = {**env, "DIALER_HTTP_PORT": str(self.web_port), "DIALER_WEB_WORKERS": "1"}
        self._spawn("web", [sys.executable, "-m", "dialer.web"], web_env, var)
        self.web_url = f"http://{self.settings.http_host}:{self.web_port}"
        self._wait_for_web()
        write_url_file(web_url_file(self.settings), self.web_url)

    def _wait_for_web(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            failed = self.failed_child()
            if failed:
                raise RuntimeError(f"{failed} (is port {self.web_port} free? set DIALER_HTTP_PORT)")
            try:
                with httpx.Client(timeout=1) as client:
                    if client.get(f"{self.web_url}/healthz").status_code == 200:
                        return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web process did not answer on {self.web_url} in time")
            time.sleep(0.1)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], var: Path) -> None:
        out: Any = None
        if self.log_to_files:
            f = open(var / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
            self._files.append(f)
            out = f
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=die_with_parent()
        )
        self.children.append((name, proc))
        log.info("process_started", process=name, pid=proc.pid)

    def failed_child(self) -> str | None:
        for name, proc in self.children:
            if proc.poll() is not None:
                return f"{name} exited with {proc.returncode}"
        return None

    def stop(self) -> None:
        for _, proc in self.children:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for _, proc in self.children:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()
        if self.web_url:
            with contextlib.suppress(FileNotFoundError):
                web_url_file(self.settings).unlink()
        for f in self._files:
            f.close()
        self._files.clear()
        if self.redis is not None:
            self.redis.stop()
            with contextlib.suppress(FileNotFoundError):
                url_file(self.settings).unlink()
            self.redis = None
