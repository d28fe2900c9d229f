"""`dialer dev` is one process tree: killed even with SIGKILL, it leaves no Redis, worker or scheduler
behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import wait_for


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # zombies are dead already
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        nxt = {child for child, parent in parents.items() if parent in frontier}
        frontier = nxt - found
        found |= nxt
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_dev_killed_with_sigkill_takes_its_children_with_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DIALER_REDIS_URL"}
    env |= {"DIALER_VAR_DIR": str(tmp_path), "DIALER_HTTP_PORT": "0"}
    dev = subprocess.Popen(
        [sys.executable, "-m", "dialer", "dev"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    descendants: set[int] = set()
    try:
        wait_for(lambda: (tmp_path / "redis.url").exists(), timeout=30, what="the embedded Redis")
        # Redis, the worker (and its worker processes) and the scheduler
        descendants = wait_for(lambda: d if len(d := children_of(dev.pid)) >= 4 else None, timeout=30)
        dev.send_signal(signal.SIGKILL)
        dev.wait(10)
        wait_for(lambda: not any(alive(p) for p in descendants), timeout=30, what="the children to die")
    finally:
        if dev.poll() is None:
            dev.kill()
        for pid in descendants:  # a failed run must not leave them behind either
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
