"""The simulator provider (DESIGN §7): no network, realistic timings, outcome by the number's last digit.

It never sleeps to play a call: its dial answers when the call will be over (``check_at_ms``), the engine
checks the call then, and the outcome takes the same path as a Twilio status callback or poll. Every dial
is recorded the moment the request reaches it (before any simulated latency, like a real provider that
received a request whose answer is slow), so a lookup after a stalled or killed worker finds it.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dialer import keys
from dialer.clock import Clock, to_iso
from dialer.errors import ConnectionFailed, InvalidRequest
from dialer.telephony.base import (
    CallStatus,
    DialRequest,
    DialResult,
    PermanentDialError,
    Provider,
    RetryableDialError,
)

MACHINE = "machine_start"


class SimOptions(BaseModel):
    """Knobs of `provider add/update --sim KEY=VALUE` (finite numbers only)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ring_s: float = Field(default=1.0, ge=0, le=3600, description="ringing before an answer or busy")
    talk_min_s: float = Field(default=1.0, ge=0, le=3600, description="shortest answered call")
    talk_max_s: float = Field(default=2.0, ge=0, le=3600, description="longest answered call")
    no_answer_s: float = Field(default=2.0, ge=0, le=3600, description="ringing before no-answer")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of dials refused with a 5xx")
    timeout_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of dials placed whose HTTP answer is lost"
    )
    latency_ms: float = Field(default=0.0, ge=0, le=60_000, description="delay of each dial's answer")
    fail_test: bool = Field(default=False, description="the connection test fails")


def parse_sim_options(pairs: list[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``["ring_s=0.5", "fail_test=true"]`` -> validated options (raises InvalidRequest naming the key)."""
    values: dict[str, Any] = dict(base or {})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidRequest(f"--sim: expected KEY=VALUE, got {pair!r}")
        values[name.strip()] = value.strip()
    try:
        return SimOptions.model_validate(values).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidRequest(f"--sim {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def outcome_for(number: str, attempt: int) -> tuple[str, str | None]:
    """(final status, answered_by) by the last digit: see DESIGN §7."""
    digit = int(number[-1])
    if digit <= 3:
        return "completed", "human"
    if digit == 4:
        return ("no-answer", None) if attempt == 1 else ("completed", "human")
    if digit == 5:
        return "completed", MACHINE
    if digit == 6:
        return "busy", None
    if digit == 7:
        return "no-answer", None
    if digit == 8:
        return "failed", None
    raise AssertionError("digit 9 is refused at dial time")


class SimulatorProvider(Provider):
    def __init__(
        self,
        client: redis.Redis,
        clock: Clock,
        options: dict[str, Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.r: Any = client  # str responses (decode_responses=True); redis-py types them as bytes | str
        self.clock = clock
        self.opts = SimOptions.model_validate(options or {})
        self.rng = rng or random.Random()

    def dial(self, req: DialRequest) -> DialResult:
        if self.opts.error_rate and self.rng.random() < self.opts.error_rate:
            if self.opts.latency_ms:
                time.sleep(self.opts.latency_ms / 1000)
            raise RetryableDialError("simulated provider error (503)", code="503")
        now = self.clock.now_ms()
        sid = "SM" + uuid.uuid4().hex
        attempt = keys.parse_attempt_key(req.key)[2]
        if req.to.endswith("9"):
            self._store_call(req, sid, now, now, "failed", None, 0, "21211")
            raise PermanentDialError("invalid number", code="21211")
        status, answered_by = outcome_for(req.to, attempt)
        o = self.opts
        if status == "completed":
            talk = round(self.rng.uniform(o.talk_min_s, max(o.talk_min_s, o.talk_max_s)), 3)
            ends = now + round((o.ring_s + talk) * 1000)
            duration = max(1, round(talk))
        elif status == "no-answer":
            ends, duration = now + round(o.no_answer_s * 1000), 0
        else:  # busy, failed: after a short ring
            ends, duration = now + round(o.ring_s * 500), 0
        call = self._store_call(
            req, sid, now, ends, status, answered_by, duration, "31005" if status == "failed" else None
        )
        if self.opts.latency_ms:  # the answer is slow; the call exists already
            time.sleep(self.opts.latency_ms / 1000)
        if o.timeout_rate and self.rng.random() < o.timeout_rate:
            raise RetryableDialError(
                "simulated timeout: the call was placed, its answer lost", code="timeout"
            )
        answered_at = self.clock.now_ms()
        final = call_status(sid, call, answered_at) if ends <= answered_at else None
        return DialResult(sid=sid, status="queued", check_at_ms=ends, final=final)

    def _store_call(
        self,
        req: DialRequest,
        sid: str,
        started: int,
        ends: int,
        status: str,
        answered_by: str | None,
        duration: int,
        error_code: str | None,
    ) -> dict[str, Any]:
        """One pipeline: the call, its number's index (lookup) and the dial logs (`dialer simulator dials`).
        Returns the call as stored."""
        row = json.dumps(
            {
                "key": req.key,
                "campaign_id": req.campaign_id,
                "number": req.to,
                "from": req.from_,
                "at": to_iso(started),
                "sid": sid,
            }
        )
        call: dict[str, Any] = {
            "sid": sid,
            "ref": req.ref,
            "to": req.to,
            "from": req.from_,
            "started_at": started,
            "ends_at": ends,
            "status": status,
            "answered_by": answered_by or "",
            "duration_s": duration,
            "error_code": error_code or "",
            "twiml": req.twiml,
        }
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hset(keys.sim_call(sid), mapping=call)
            pipe.zadd(keys.sim_number_calls(req.to), {sid: started})
            pipe.rpush(keys.SIM_DIALS, row)
            pipe.rpush(keys.sim_campaign_dials(req.campaign_id), row)
            pipe.execute()
        return call

    def fetch(self, sid: str) -> CallStatus | None:
        return read_call(self.r, sid, self.clock.now_ms())

    def lookup(self, to: str, from_: str, since_ms: int, until_ms: int) -> list[CallStatus]:
        now = self.clock.now_ms()
        found = []
        for sid in self.r.zrangebyscore(keys.sim_number_calls(to), since_ms, until_ms):
            status = read_call(self.r, sid, now)
            if status is not None and status.from_ == from_:
                found.append(status)
        return found

    def hangup(self, sid: str) -> None:
        now = self.clock.now_ms()
        key = keys.sim_call(sid)
        if self.r.exists(key) and int(self.r.hget(key, "ends_at") or 0) > now:
            self.r.hset(key, mapping={"ends_at": now, "status": "canceled", "duration_s": 0})

    def test_connection(self) -> None:
        if self.opts.fail_test:
            raise ConnectionFailed()


def sim_dials(client: redis.Redis, campaign_id: str | None = None) -> list[dict[str, Any]]:
    key = keys.sim_campaign_dials(campaign_id) if campaign_id else keys.SIM_DIALS
    return [json.loads(row) for row in client.lrange(key, 0, -1)]


def read_call(client: redis.Redis, sid: str, now_ms: int) -> CallStatus | None:
    """A simulated call as the provider would report it at ``now_ms``."""
    raw: dict[str, str] = client.hgetall(keys.sim_call(sid))  # type: ignore[assignment]
    return call_status(sid, raw, now_ms) if raw else None


def call_status(sid: str, raw: Mapping[str, Any], now_ms: int) -> CallStatus:
    """A stored simulated call as the provider reports it at ``now_ms``."""
    ends = int(raw["ends_at"])
    started = int(raw["started_at"])
    if now_ms < ends:
        return CallStatus(
            sid=sid,
            status="in-progress",
            ref=raw["ref"],
            to=raw["to"],
            from_=raw["from"],
            started_at_ms=started,
            check_at_ms=ends,
        )
    return CallStatus(
        sid=sid,
        status=raw["status"],
        answered_by=raw["answered_by"] or None,
        duration_s=int(raw["duration_s"]),
        error_code=raw["error_code"] or None,
        ended_at_ms=ends,
        started_at_ms=started,
        ref=raw["ref"],
        to=raw["to"],
        from_=raw["from"],
    )
