"""`dialer dev` / `dialer demo`: the embedded Redis, a worker and the scheduler as one process tree."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import redis
import structlog

from config import Settings
from dialer.connection import url_file
from dialer.embedded import EmbeddedRedis, die_with_parent, write_url_file

log = structlog.get_logger("dialer.dev")


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
        self, settings: Settings, *, processes: int = 1, threads: int = 8, log_to_files: bool = False
    ):
        self.settings = settings
        self.processes = processes
        self.threads = threads
        self.log_to_files = log_to_files
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
            ],
            env,
            var,
        )
        self._spawn("scheduler", [sys.executable, "-m", "scheduler"], env, var)

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
        for f in self._files:
            f.close()
        self._files.clear()
        if self.redis is not None:
            self.redis.stop()
            with contextlib.suppress(FileNotFoundError):
                url_file(self.settings).unlink()
            self.redis = None
