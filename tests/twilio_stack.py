"""A Twilio test stack: the fake Twilio server, our web app (with DIALER_PUBLIC_URL pointing at it) and
worker + scheduler processes, all on the session's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from conftest import make_core, stop_processes, uid, wait_for
from fake_twilio import FakeTwilio

from dialer.clock import SystemClock
from dialer.embedded import free_port
from dialer.models import ProviderConfig
from dialer.money import parse_money
from dialer.service import AccountService, Service
from dialer.web.app import create_app


@dataclass
class TwilioStack:
    fake: FakeTwilio
    svc: Service
    public_url: str | None

    def account(self, **provider: Any) -> AccountService:
        """A new account with a Twilio provider on the fake server."""
        account = uid("tw")
        store = self.svc.core.store
        store.create_account(account, "T", parse_money("100"), "ES", 0)
        store.put_provider(
            ProviderConfig(
                account_id=account,
                name="twilio_primary",
                kind="twilio",
                from_numbers=["+34911234567", "+442071838750"],
                calls_per_second=provider.pop("calls_per_second", 20),
                account_sid=self.fake.account_sid,
                auth_token=self.fake.auth_token,
                api_base=self.fake.url,
                price_per_minute=parse_money("0.10"),
                max_call_seconds=120,
                **provider,
            )
        )
        return self.svc.for_account(account)


@contextmanager
def twilio_stack(store: Any, redis_url: str, *, callbacks: bool) -> Iterator[TwilioStack]:
    fake = FakeTwilio(ring_s=0.1, talk_s=0.3, no_answer_s=0.3).start()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}" if callbacks else None
    core = make_core(store, SystemClock(), public_url=public_url)
    svc = Service(core, redis_url)
    server = uvicorn.Server(
        uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, what="uvicorn")
    env = {**os.environ, "DIALER_REDIS_URL": redis_url, "DIALER_SCHEDULER_TICK_S": "0.1"}
    env.pop("DIALER_PUBLIC_URL", None)
    if public_url:
        env["DIALER_PUBLIC_URL"] = public_url
    worker = [sys.executable, "-m", "dramatiq", "actors", "--processes", "1", "--threads", "8"]
    procs = [
        subprocess.Popen(worker, env=env, stdin=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "scheduler"], env=env, stdin=subprocess.DEVNULL),
    ]
    try:
        yield TwilioStack(fake, svc, public_url)
    finally:
        stop_processes(procs)
        server.should_exit = True
        thread.join(10)
        fake.stop()
