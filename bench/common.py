"""What `make chaos` and `make bench` share: process trees (spawn, signal, stop), the embedded Redis, polling
with timeouts, Redis counters (INFO commandstats, used_memory), CPU time of processes, and the figures a
benchmark reports (value, goal, PASS/FAIL, baseline).

Scripts put the repository root first on ``sys.path`` (the venv is an editable install of another checkout)
and start their children with ``cwd`` and ``PYTHONPATH`` at it, so every process runs this tree's code.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dialer.embedded import EmbeddedRedis, die_with_parent, free_port  # noqa: E402

T = TypeVar("T")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- process trees ---------------------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (read from /proc)."""
    found, frontier = [], [pid]
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    while frontier:
        nxt = [c for c, p in table.items() if p in frontier]
        found += nxt
        frontier = nxt
    return found


def signal_tree(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to a process and all its descendants (SIGKILL also reaps it)."""
    for pid in [proc.pid, *children(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    if sig == signal.SIGKILL:
        proc.wait(10)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (those already gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def cpu_by_role(pids: dict[str, list[int]]) -> dict[str, float]:
    return {role: cpu_seconds(p) for role, p in pids.items()}


@dataclass
class Stack:
    """Worker and scheduler processes on one Redis, each logging to ``var/NAME.log``.

    ``cwd`` (when set) is where the children start; ``orphan_safe`` makes each child receive SIGTERM when
    the process that started it dies, even by SIGKILL."""

    var: Path
    env: dict[str, str]
    redis: EmbeddedRedis
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    schedulers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[Any] = field(default_factory=list)
    cwd: Path | None = None
    orphan_safe: bool = False

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = open(self.var / f"{name}.log", "ab")  # noqa: SIM115 - closed at the end
        self.logs.append(out)
        return subprocess.Popen(
            argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=die_with_parent() if self.orphan_safe else None,
        )

    def worker(self, name: str, processes: int = 1, threads: int = 8, module: str = "actors") -> None:
        argv = [sys.executable, "-m", "dramatiq", module, "--processes", str(processes)]
        self.workers[name] = self.spawn(name, [*argv, "--threads", str(threads)])

    def scheduler(self, name: str) -> None:
        self.schedulers[name] = self.spawn(name, [sys.executable, "-m", "scheduler"])

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [*self.workers.values(), *self.schedulers.values()]

    def pids(self) -> dict[str, list[int]]:
        """The processes of the stack by role: workers (Dramatiq's worker processes too), schedulers, redis."""
        out: dict[str, list[int]] = {"workers": [], "schedulers": [], "redis": []}
        for role, procs in (("workers", self.workers), ("schedulers", self.schedulers)):
            for proc in procs.values():
                if proc.poll() is None:
                    out[role] += [proc.pid, *children(proc.pid)]
        if self.redis.proc is not None and self.redis.proc.poll() is None:
            out["redis"].append(self.redis.proc.pid)
        return out

    def stop_processes(self, timeout_s: float = 30) -> None:
        """SIGTERM (graceful) to the workers and schedulers; SIGKILL to any still there after the timeout."""
        for proc in self.processes():
            signal_tree(proc, signal.SIGCONT)
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes():
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                signal_tree(proc, signal.SIGKILL)
        self.workers.clear()
        self.schedulers.clear()

    def close_logs(self) -> None:
        for f in self.logs:
            f.close()
        self.logs.clear()

    def stop_all(self) -> None:
        self.stop_processes()
        self.redis.stop()
        self.close_logs()


def child_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker or scheduler: this tree's code (PYTHONPATH), the Redis, and ``extra``
    (DIALER_* settings)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "DIALER_REDIS_URL": url, **(extra or {})}


@contextlib.contextmanager
def embedded_redis(var: Path, appendfsync: str = "always") -> Iterator[tuple[EmbeddedRedis, redis.Redis]]:
    """An embedded Redis under ``var`` (AOF, ``appendfsync`` as given) and a str client; stopped after."""
    var.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(var, port=free_port(), appendfsync=appendfsync)
    url = server.start()
    client = redis.Redis.from_url(url, decode_responses=True)
    client.config_set("latency-monitor-threshold", LATENCY_THRESHOLD_MS)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """Stops the stack's processes however the block ends (the Redis stays up)."""
    try:
        yield stack
    finally:
        stack.stop_processes(timeout_s=15)
        stack.close_logs()


def clean_dir(path: Path) -> Path:
    """An empty directory at ``path`` (files left by the last run removed)."""
    if path.exists():
        for f in sorted(path.rglob("*"), reverse=True):
            if f.is_file() or f.is_symlink():
                f.unlink()
            elif f.is_dir():
                f.rmdir()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- waiting without sleeping blind -------------------------------------------------------------------------
def wait_for(predicate: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.02) -> T:
    """Poll until ``predicate()`` is truthy (returns it) or raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


# --- Redis counters -----------------------------------------------------------------------------------------
def command_stats(r: redis.Redis) -> dict[str, dict[str, float]]:
    """INFO commandstats as {command: {"calls": n, "usec": t}} (commands run inside Lua scripts count too)."""
    raw = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): {"calls": v["calls"], "usec": v["usec"]} for k, v in raw.items()}


def stats_delta(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Per command: calls and usec between two snapshots (INFO itself left out)."""
    out = {}
    for cmd, v in after.items():
        if cmd == "info":
            continue
        b = before.get(cmd, {"calls": 0, "usec": 0})
        calls = v["calls"] - b["calls"]
        if calls:
            out[cmd] = {"calls": calls, "usec": v["usec"] - b["usec"]}
    return out


def total_calls(delta: dict[str, dict[str, float]]) -> int:
    return int(sum(v["calls"] for v in delta.values()))


def top_commands(delta: dict[str, dict[str, float]], per: float, n: int = 8) -> dict[str, float]:
    """The ``n`` most called commands, each as calls ÷ ``per`` (e.g. per placed call)."""
    rows = sorted(delta.items(), key=lambda kv: -kv[1]["calls"])[:n]
    return {cmd: round(v["calls"] / per, 2) for cmd, v in rows}


LATENCY_THRESHOLD_MS = 50


def redis_stalls(r: redis.Redis) -> dict[str, dict[str, int]]:
    """What Redis's latency monitor saw since the last ``reset_stalls``: per event (``aof-fsync-always``,
    ``command``, ``fast-command``, ...) the seconds with a stall of 50 ms or more, the longest and the sum
    of each second's longest (ms)."""
    out = {}
    for row in r.execute_command("LATENCY", "LATEST"):
        event = row[0].decode() if isinstance(row[0], bytes) else str(row[0])
        history = [int(ms) for _, ms in r.execute_command("LATENCY", "HISTORY", event)]
        out[event] = {"seconds": len(history), "max_ms": int(row[3]), "sum_ms": sum(history)}
    return out


def reset_stalls(r: redis.Redis) -> None:
    r.execute_command("LATENCY", "RESET")


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


# --- figures ------------------------------------------------------------------------------------------------
@dataclass
class Figure:
    """One reported number: ``value`` against ``goal`` (``op`` is ">=" or "<="; no goal = informational)."""

    bench: str
    name: str
    value: float | None
    unit: str = ""
    goal: float | None = None
    op: str = ""
    baseline: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    error: str = ""

    @property
    def passed(self) -> bool | None:
        if self.error:
            return False
        if self.goal is None or self.value is None:
            return None
        return self.value >= self.goal if self.op == ">=" else self.value <= self.goal

    @property
    def result(self) -> str:
        if self.error:
            return "ERROR"
        return {True: "PASS", False: "FAIL", None: "info"}[self.passed]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "pass": self.passed, "result": self.result}


def fmt(value: float | None) -> str:
    """A figure for the table: counts as integers, ratios with 3 decimals, large numbers grouped."""
    if value is None:
        return "-"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def machine_info() -> dict[str, Any]:
    import dramatiq
    import redis.utils

    from dialer.embedded import redis_server_binary

    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dramatiq": dramatiq.__version__,
        "redis_py": redis.__version__,
        "hiredis": bool(redis.utils.HIREDIS_AVAILABLE),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError, subprocess.SubprocessError, RuntimeError):
        out = subprocess.run(
            [str(redis_server_binary()), "--version"], capture_output=True, text=True, timeout=10
        )
        info["redis"] = next((w[2:] for w in out.stdout.split() if w.startswith("v=")), out.stdout.strip())
    return info


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# --- the dialer's side: an account, a simulator provider, campaigns --------------------------------------
ACCOUNT = "bench"
PROVIDER = "sim"
BALANCE = "1000000.00"
#: a simulator whose calls end the moment they are placed (the dispatch path, not call time, is measured)
SIM_INSTANT = {"ring_s": 0, "talk_min_s": 0, "talk_max_s": 0, "no_answer_s": 0, "latency_ms": 0}


def service(url: str) -> Any:
    from dialer.service import Service

    return Service.from_settings(redis_url=url)


def setup_account(
    svc: Any,
    *,
    cps: float = 1000,
    max_concurrent: int = 100_000,
    sim: dict[str, Any] | None = None,
    provider: str = PROVIDER,
    account: str = ACCOUNT,
) -> None:
    """The account (a large balance) and a simulator provider; the account is made once per Redis."""
    from dialer import keys
    from dialer.providers import ProviderSpec

    if not svc.core.store.r.exists(keys.account(account)):
        svc.create_account(account, BALANCE, "Bench", "ES")
    svc.for_account(account).add_provider(
        provider,
        ProviderSpec(
            kind="simulator",
            from_numbers=["+34911234567"],
            cps=cps,
            max_concurrent=max_concurrent,
            price_per_minute="0.0135",
            sim=dict(SIM_INSTANT if sim is None else sim),
        ),
    )


def phone(i: int) -> str:
    """Distinct valid Spanish mobiles; the last digit (0-3) makes the simulator's call an answered one."""
    return f"+346{i // 4:07d}{i % 4}"


def contacts(n: int, offset: int = 0) -> list[dict[str, Any]]:
    """``n`` contacts: phone, first name and one custom field."""
    names = ("Ana", "Juan", "María", "Luis", "Carmen", "José", "Lucía", "Pablo")
    return [
        {"phone": phone(i), "first_name": names[i % len(names)], "custom_fields": {"lead_id": f"L-{i:06d}"}}
        for i in range(offset, offset + n)
    ]


def campaign_body(name: str, n: int, offset: int = 0, provider: str = PROVIDER) -> dict[str, Any]:
    return {
        "name": name,
        "provider": provider,
        "contacts": contacts(n, offset),
        "say": "Hola {{first_name}}, {{custom_fields.lead_id}}",
    }


def submit(svc: Any, body: dict[str, Any], account: str = ACCOUNT) -> str:
    """Intake with start: the campaign is scheduled (its launch is due now)."""
    return str(svc.for_account(account).submit(body, start=True)["campaign_id"])


class CollectingSender:
    """A scheduler's sender that sends nothing: it counts (and keeps) what a tick would have sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def send(self, actor_name: str, *args: Any) -> str:
        self.sent.append((actor_name, args))
        return ""


def launch_now(svc: Any, account: str, campaign_id: str) -> None:
    """What the scheduler and a worker do with a due launch, in this process: a scheduler tick claims the
    schedule (unless the start already took it) and the engine's launch writes every attempt."""
    from dialer import keys
    from scheduler import tick

    store = svc.core.store
    if store.r.zscore(keys.SCHED_DUE, keys.ref(account, campaign_id)) is not None:
        sender = CollectingSender()
        tick(store, svc.core.settings, svc.core.now(), sender, who="bench")
        if ("launch_campaign", (account, campaign_id)) not in sender.sent:
            raise RuntimeError(f"a scheduler tick did not claim campaign {campaign_id}'s launch")
    svc.engine.launch(account, campaign_id)


def dial_count(r: redis.Redis, campaign_id: str) -> int:
    """Dials the simulator received for the campaign (its own log)."""
    from dialer import keys

    return int(r.llen(keys.sim_campaign_dials(campaign_id)))


@dataclass
class Window:
    """Progress between two moments of a run: the time, the count, Redis's command counters and the CPU
    time of the processes watched, at each end."""

    t0: float
    t1: float
    c0: int
    c1: int
    stats: dict[str, dict[str, float]]  # commands in the window (the watcher's own polls taken out)
    cpu: dict[str, float]  # CPU seconds in the window by role (workers, schedulers, redis)

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu.values())

    def cpu_ms_per(self) -> dict[str, float]:
        """CPU milliseconds per unit of work done, by role."""
        return {role: round(s * 1000 / self.done, 3) for role, s in self.cpu.items() if s}

    @property
    def rate(self) -> float:
        return (self.c1 - self.c0) / (self.t1 - self.t0)

    @property
    def done(self) -> int:
        return self.c1 - self.c0


def measure_window(
    r: redis.Redis,
    count: Callable[[], int],
    total: int,
    *,
    timeout_s: float,
    stall_s: float = 30,
    pids: Callable[[], dict[str, list[int]]] = dict,
    lo: float = 0.1,
    hi: float = 0.9,
    poll_s: float = 0.02,
) -> Window:
    """Poll ``count()`` (one Redis command) until it reaches ``hi`` × ``total``; the window runs from the
    first poll at ``lo`` × ``total`` to the first at ``hi`` × ``total`` (start-up and tail left out).
    Raises TimeoutError past ``timeout_s``, or when nothing moved for ``stall_s``."""
    start = last_move = time.monotonic()
    last = -1
    first: tuple[float, int, dict[str, dict[str, float]], dict[str, float]] | None = None
    polls = 0
    while True:
        now = time.monotonic()
        c = count()
        if first is not None:
            polls += 1
        if c != last:
            last, last_move = c, now
        if first is None and c >= lo * total:
            first = (time.monotonic(), c, command_stats(r), cpu_by_role(pids()))
            polls = 0
        if first is not None and c >= hi * total:
            t1, cpu1, stats1 = time.monotonic(), cpu_by_role(pids()), command_stats(r)
            delta = stats_delta(first[2], stats1)
            for cmd in ("llen", "hlen"):  # the watcher's own polls
                if cmd in delta:
                    delta[cmd]["calls"] -= polls
            cpu = {role: cpu1[role] - first[3].get(role, 0.0) for role in cpu1}
            return Window(first[0], t1, first[1], c, {k: v for k, v in delta.items() if v["calls"] > 0}, cpu)
        if now - start > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s at {c} of {total}")
        if now - last_move > stall_s:
            raise TimeoutError(f"no progress for {stall_s:.0f} s at {c} of {total}")
        time.sleep(poll_s)
