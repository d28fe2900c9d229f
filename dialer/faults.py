"""Crash points, for the crash tests and `make chaos`: with ``DIALER_CRASH_POINTS=name[,name...]`` a process
kills itself with SIGKILL the first time it reaches one of those lines — so a test can put a worker's
death exactly between two steps. ``DIALER_CRASH_MARKS`` (a directory) makes each point fire once across
processes, and tells the test it fired. ``DIALER_STOP_POINTS`` stops the process there instead (SIGSTOP).
Off (one set lookup) when the variables are unset.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS = frozenset(p.strip() for p in os.environ.get("DIALER_CRASH_POINTS", "").split(",") if p.strip())
# the same lines as stop points (``DIALER_STOP_POINTS``): the process stops itself (SIGSTOP, all its threads:
# a VM pause or a long GC at exactly that line) until the test sends SIGCONT
STOPS = frozenset(p.strip() for p in os.environ.get("DIALER_STOP_POINTS", "").split(",") if p.strip())


def crash_point(name: str) -> None:
    if name not in POINTS and name not in STOPS:
        return
    marks = os.environ.get("DIALER_CRASH_MARKS")
    if marks:
        try:
            fd = os.open(Path(marks) / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # fired already
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL if name in POINTS else signal.SIGSTOP)
    # a signal sent to the process lands on its threads a moment later: this thread waits for it, so it never
    # runs past this line first (it dies here, or goes on only after the SIGCONT)
    time.sleep(1.0)
