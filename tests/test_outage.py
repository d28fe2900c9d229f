"""Redis SIGKILLed in the middle of dialling and restarted on the same data, under a worker, a scheduler and
the web process (real processes): each logs one warning for the outage and one line when Redis is back —
not a traceback per message —, the web answers 503 meanwhile, and the campaign finishes with one dial per
contact and exact money."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from conftest import add_sim_provider, wait_for
from test_crash_points import kill_tree

from dialer.embedded import EmbeddedRedis, free_port
from dialer.money import parse_money
from dialer.service import Service
from dialer.telephony.simulator import sim_dials


def events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def named(path: Path, name: str) -> list[dict[str, Any]]:
    return [e for e in events(path) if e.get("event") == name]


def test_a_redis_kill_is_one_line_per_process_and_the_campaign_still_finishes_exactly(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port())
    url = redis.start()
    port = free_port()
    env = {
        **os.environ,
        "DIALER_REDIS_URL": url,
        "DIALER_LOG_FORMAT": "json",
        "DIALER_LOG_LEVEL": "INFO",
        "DIALER_SCHEDULER_TICK_S": "0.1",
        "DIALER_LEASE_S": "4",
        "DIALER_HTTP_HOST": "127.0.0.1",
        "DIALER_HTTP_PORT": str(port),
    }
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "scheduler", "web")}
    argv = {
        "worker": [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "4"],
        "scheduler": [sys.executable, "-m", "scheduler"],
        "web": [sys.executable, "-m", "dialer.web"],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        svc = Service.from_settings(redis_url=url)
        store = svc.core.store
        key = store.create_account("out", "Out", parse_money("100"), "ES", 0)
        add_sim_provider(store, "out", calls_per_second=5, price_per_minute=parse_money("0.05"))
        for name, cmd in argv.items():
            with open(logs[name], "wb") as f:
                procs[name] = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        web = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"})
        wait_for(lambda: _get(web, "/campaigns") == 200, timeout=30, what="the web process")
        numbers = [f"+346007{i:04d}{i % 4}" for i in range(40)]  # answered: one started minute each
        cid = web.post("/campaigns", json={"contacts": [{"phone": n} for n in numbers], "say": "hi"}).json()[
            "campaign_id"
        ]
        wait_for(lambda: len(sim_dials(store.r, cid)) >= 5, timeout=30, what="the first dials")

        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGKILL)
        redis.proc.wait(10)
        res = wait_for(lambda: (r := _response(web, f"/campaigns/{cid}")) is not None and r, timeout=10)
        assert res.status_code == 503 and res.json() == {
            "error": "the store is unavailable; try again shortly"
        }
        for name in ("worker", "scheduler"):
            wait_for(lambda n=name: named(logs[n], "redis_unavailable"), timeout=20, what=f"{name} to notice")
        time.sleep(3)  # the outage's length (a fault, not a wait): Dramatiq's consumer restarts meet it too
        redis.start()  # the same data directory and port

        view = wait_for(
            lambda: (
                (r := _response(web, f"/campaigns/{cid}")) is not None
                and r.status_code == 200
                and r.json()["status"] == "completed"
                and r.json()
            ),
            timeout=90,
            what="the campaign to complete",
        )
        wait_for(
            lambda: all(named(logs[n], "redis_back") for n in logs), timeout=20, what="every 'back' line"
        )
        dials = Counter(d["number"] for d in sim_dials(store.r, cid))
        acc = store.get_account("out")
    finally:
        for p in procs.values():
            if p.poll() is None:
                kill_tree(p)
        redis.stop()

    for name, path in logs.items():
        text = path.read_text()
        assert "Traceback" not in text, name
        assert len(named(path, "redis_unavailable")) == 1, (name, named(path, "redis_unavailable"))
        assert len(named(path, "redis_back")) == 1, name
        loud = [e["event"][:80] for e in events(path) if e.get("level") in ("warning", "error", "critical")]
        assert loud == ["redis_unavailable"], (name, loud)
    assert dials == dict.fromkeys(numbers, 1)
    c = view["counters"]
    assert (c["delivered"], c["scheduled"], c["dialing"]) == (40, 0, 0)
    assert (acc.balance, acc.reserved) == (parse_money("100") - 40 * parse_money("0.05"), 0)


def _response(client: httpx.Client, path: str) -> httpx.Response | None:
    try:
        return client.get(path, timeout=5)
    except httpx.HTTPError:
        return None


def _get(client: httpx.Client, path: str) -> int:
    res = _response(client, path)
    return res.status_code if res is not None else 0
