"""Operations with real processes: a dead scheduler is seen within seconds (/healthz 503, `dialer status`
warns) and a restarted one finishes the work; /metrics equals `campaign show` after a run with 2 worker
processes; `dialer doctor` names what is wrong with its fix."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, add_sim_provider, session_service, show, submit, uid, wait_for
from test_cli import as_json, dialer

from dialer.money import parse_money

svc = session_service()


@pytest.fixture
def procs(redis_url: str) -> Iterator[dict[str, Any]]:
    """2 worker processes and a scheduler (ticking every 0.2 s), stoppable one by one."""
    env = {**os.environ, "DIALER_REDIS_URL": redis_url, "DIALER_SCHEDULER_TICK_S": "0.2"}
    worker = [sys.executable, "-m", "dramatiq", "actors", "--processes", "2", "--threads", "8"]

    def scheduler() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdin=subprocess.DEVNULL)

    running = {
        "worker": subprocess.Popen(worker, env=env, stdin=subprocess.DEVNULL),
        "scheduler": scheduler(),
    }
    yield {"running": running, "scheduler": scheduler}
    for p in running.values():
        if p.poll() is None:
            p.terminate()
    for p in running.values():
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def healthz(web: str) -> int:
    return httpx.get(f"{web}/healthz", timeout=10).status_code


def test_a_killed_scheduler_is_seen_within_ten_seconds_and_a_new_one_finishes_the_campaign(
    store: Any, account: str, procs: dict[str, Any], web: str
) -> None:
    add_sim_provider(store, account, calls_per_second=2)
    answering = [{"phone": f"+346001{i:04d}{i % 4}"} for i in range(30)]  # last digits 0-3: answered
    cid = submit(svc, account, {"contacts": answering, "say": "hi"})
    wait_for(lambda: show(svc, account, cid)["counters"]["sent"] >= 3, timeout=30, what="dialling")
    assert healthz(web) == 200
    procs["running"]["scheduler"].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: healthz(web) == 503, timeout=10, what="/healthz to turn 503")
    status = as_json(dialer("status", "--json"))
    assert status["schedulers"] == [] and status["ok"] is False
    assert any("no scheduler is alive" in w for w in status["warnings"])
    assert time.monotonic() - killed < 10
    human = dialer("status")
    assert "no scheduler is alive" in human.stderr and human.returncode == 0
    assert show(svc, account, cid)["status"] == "running"
    procs["running"]["scheduler"] = procs["scheduler"]()
    wait_for(lambda: healthz(web) == 200, timeout=10, what="/healthz back to 200")
    done = wait_for(lambda: (v := show(svc, account, cid))["status"] == "completed" and v, timeout=60)
    assert done["counters"]["delivered"] == 30
    assert as_json(dialer("status", "--json"))["ok"] is True


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text document."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m and ",".join(sorted((m.group(1) or "").split(","))).strip(",") == wanted:
            return float(m.group(2))
    return 0.0


def test_metrics_equal_campaign_show_after_a_run_with_two_worker_processes(
    store: Any, procs: dict[str, Any], web: str
) -> None:
    account = uid("met")
    store.create_account(account, "M", parse_money("100"), "ES", 0)
    add_sim_provider(store, account, calls_per_second=50, price_per_minute=parse_money("0.05"))
    numbers = [f"+3460020{i:04d}" for i in range(40)]  # last digits 0-9: every simulator outcome
    cid = submit(svc, account, {"contacts": [{"phone": n} for n in numbers], "say": "hi", "recall": [0.02]})
    view = wait_for(lambda: (v := show(svc, account, cid))["status"] == "completed" and v, timeout=90)
    res = httpx.get(f"{web}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert res.status_code == 200 and httpx.get(f"{web}/metrics").status_code == 401
    text = res.text
    c = view["counters"]
    labels = {"account": account, "provider": "sim"}
    assert metric(text, "dialer_calls_placed_total", **labels) == c["sent"]
    ended = {state: metric(text, "dialer_call_outcomes_total", **labels, state=state) for state in
             ("completed", "busy", "no-answer", "failed", "canceled", "skipped")}  # fmt: skip
    calls = svc.for_account(account).calls(cid)
    assert ended == {s: sum(1 for r in calls if r["state"] == s) for s in ended}
    assert sum(ended.values()) == len(calls) == c["sent"] + 4  # the four 21211 refusals are never placed
    assert metric(text, "dialer_money_settled_total", **labels) == float(view["cost"])
    assert metric(text, "dialer_money_reserved", account=account) == 0
    assert (
        metric(text, "dialer_quota_used", **labels) >= c["sent"]
        or metric(text, "dialer_quota_used", **labels) == 0
    )
    assert metric(text, "dialer_workers_alive") >= 2 and metric(text, "dialer_schedulers_alive") >= 1


def test_doctor_names_each_problem_with_its_fix() -> None:
    """The test Redis runs with appendfsync no (the dialer requires always): the doctor says so, with the fix,
    and exits 1."""
    proc = dialer("doctor", "--json", "--skip-providers")
    assert proc.returncode == 1
    checks = {c["check"]: c for c in as_json(proc)["checks"]}
    assert checks["redis version"]["ok"] and checks["appendonly"]["ok"] and checks["maxmemory-policy"]["ok"]
    assert checks["appendfsync"]["ok"] is False and "appendfsync always" in checks["appendfsync"]["fix"]
    human = dialer("doctor", "--skip-providers")
    assert "FAIL appendfsync" in human.stdout and "fix:" in human.stdout
