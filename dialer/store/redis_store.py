"""Redis store of accounts, providers, campaigns, contacts, schedules and attempts.

Every race-prone change runs in a Lua script of ``lua/`` (loaded once, EVALSHA). Reads are plain.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

from dialer import keys
from dialer.errors import Conflict, InvalidRequest, NotFound
from dialer.models import (
    Account,
    CallAttempt,
    Campaign,
    CampaignSchedule,
    Contact,
    ProviderConfig,
    ScheduleStatus,
)

COUNTERS = (
    "total",
    "scheduled_calls",
    "error_calls",
    "scheduled",
    "dialing",
    "sent",
    "delivered",
    "failed",
    "skipped",
    "recalls",
    "cost",
)
# every lua/*.lua but lib.lua (the helpers prepended to each)
SCRIPTS = tuple(
    sorted(
        f.name[:-4]
        for f in (resources.files("dialer.store") / "lua").iterdir()
        if f.name.endswith(".lua") and f.name != "lib.lua"
    )
)
LIVE_STATES_CSV = "dialing,queued,ringing,in-progress"


def _lua(name: str) -> str:
    pkg = resources.files("dialer.store") / "lua"
    return (pkg / "lib.lua").read_text() + "\n" + (pkg / f"{name}.lua").read_text()


def _attempt_fields(att: CallAttempt) -> dict[str, Any]:
    return {k: v for k, v in att.model_dump(mode="json").items() if v is not None}


def _attempt_args(account_id: str, att: CallAttempt) -> list[Any]:
    """What the scripts that write an attempt take for it: ref, due_at, order score, attempt JSON."""
    return [
        keys.ref(account_id, att.key),
        att.due_at,
        att.contact * 1000 + att.attempt,
        json.dumps(_attempt_fields(att)),
    ]


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class Store:
    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # str responses (decode_responses=True); redis-py types them as bytes | str
        self.scripts: dict[str, Script] = {name: client.register_script(_lua(name)) for name in SCRIPTS}

    def _run(self, name: str, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        return self.scripts[name](keys=list(keys_), args=[str(a) for a in args])

    # --- accounts ---------------------------------------------------------------------------------------
    def create_account(
        self, account_id: str, name: str, balance: int, default_region: str | None, now_ms: int
    ) -> str:
        """Create an account; returns its API key (only its hash is stored)."""
        api_key = "dk_" + secrets.token_urlsafe(24)
        fields = {
            "id": account_id,
            "name": name,
            "api_key_hash": hash_api_key(api_key),
            "balance": balance,
            "reserved": 0,
            "default_region": default_region or "",
            "created_at": now_ms,
        }
        if not self.r.hsetnx(keys.account(account_id), "id", account_id):
            raise Conflict(f"account {account_id} already exists")
        self.r.hset(keys.account(account_id), mapping=fields)
        self.r.sadd(keys.ACCOUNTS, account_id)
        return api_key

    def get_account(self, account_id: str) -> Account:
        raw = self.r.hgetall(keys.account(account_id))
        if not raw:
            raise NotFound(f"account not found: {account_id}")
        raw["default_region"] = raw.get("default_region") or None
        return Account.model_validate(raw)

    def topup(self, account_id: str, amount: int) -> Account:
        self.get_account(account_id)
        self.r.hincrby(keys.account(account_id), "balance", amount)
        return self.get_account(account_id)

    # --- providers --------------------------------------------------------------------------------------
    def put_provider(self, cfg: ProviderConfig) -> None:
        """Store a provider; the flat fields are what the admit script reads."""
        from dialer.money import reservation

        gap_ms = round(1000 / cfg.calls_per_second)
        self.r.hset(
            keys.provider(cfg.account_id, cfg.name),
            mapping={
                "doc": cfg.model_dump_json(),
                "enabled": "1" if cfg.enabled else "0",
                "hourly_quota": cfg.hourly_quota or 0,
                "max_concurrent": cfg.max_concurrent,
                "reserve": reservation(cfg.max_call_seconds, cfg.price_per_minute),
                "gap_ms": gap_ms,
                "price": cfg.price_per_minute,
            },
        )
        self.r.sadd(keys.providers(cfg.account_id), cfg.name)

    def get_provider(self, account_id: str, name: str) -> ProviderConfig:
        doc = self.r.hget(keys.provider(account_id, name), "doc")
        if doc is None:
            raise NotFound(f"provider not found: {account_id}/{name}")
        return ProviderConfig.model_validate_json(doc)

    def find_provider(self, account_id: str, name: str | None) -> ProviderConfig | None:
        """The provider, or None when the name is unset or nothing is stored under it."""
        if not name:
            return None
        try:
            return self.get_provider(account_id, name)
        except NotFound:
            return None

    def provider_names(self, account_id: str) -> list[str]:
        return sorted(self.r.smembers(keys.providers(account_id)))

    def provider_usage(self, account_id: str, name: str, now_ms: int) -> tuple[int, int]:
        """(calls placed this UTC hour, live calls)."""
        used = self.r.get(keys.provider_quota(account_id, name, keys.hour_start(now_ms)))
        live = self.r.hget(keys.provider_state(account_id, name), "live")
        return int(used or 0), int(live or 0)

    # --- campaigns --------------------------------------------------------------------------------------
    def campaign_account(self, campaign_id: str) -> str:
        account_id = self.r.hget(keys.CAMPAIGN_INDEX, campaign_id)
        if account_id is None:
            raise NotFound(f"campaign not found: {campaign_id}")
        return str(account_id)

    def create_campaign(
        self, campaign: Campaign, contacts: Sequence[Contact], counters: dict[str, int]
    ) -> str:
        """Store a campaign and its contacts in one transaction; returns its id.

        With an idempotency key, a repeated submit returns the first campaign (WATCH makes the
        check-and-write one step against a concurrent submit with the same key).
        """
        a = campaign.account_id
        idem = keys.idempotency(a, campaign.idempotency_key) if campaign.idempotency_key else None
        with self.r.pipeline() as pipe:
            while True:
                try:
                    if idem:
                        pipe.watch(idem)
                        existing = pipe.get(idem)
                        if existing:
                            pipe.reset()
                            return str(existing)
                    pipe.multi()
                    if idem:
                        pipe.set(idem, campaign.id)
                    self._write_campaign(pipe, campaign, contacts, counters)
                    pipe.execute()
                    return campaign.id
                except redis.WatchError:
                    continue

    def _write_campaign(
        self, pipe: Any, campaign: Campaign, contacts: Sequence[Contact], counters: dict[str, int]
    ) -> None:
        a, c = campaign.account_id, campaign.id
        fields: dict[str, Any] = {
            "doc": campaign.model_dump_json(),
            "status": "draft",
            "status_reason": "",
            "created_at": campaign.created_at,
            "updated_at": campaign.created_at,
            "end_handle": campaign.end_handle,
            "expand_cursor": 0,
            "contacts_n": len(contacts),
        }
        fields.update({name: counters.get(name, 0) for name in COUNTERS})
        if campaign.group_id:
            fields["group_cursor"] = counters.get("group_cursor", 0)
        pipe.hset(keys.campaign(a, c), mapping=fields)
        for start in range(0, len(contacts), 1000):
            chunk = contacts[start : start + 1000]
            pipe.rpush(keys.contacts(a, c), *[ct.model_dump_json() for ct in chunk])
        pipe.hset(keys.CAMPAIGN_INDEX, c, a)
        pipe.zadd(keys.account_campaigns(a), {c: campaign.created_at})
        pipe.zadd(keys.CAMPAIGNS_BY_CREATION, {c: campaign.created_at})
        phones = [ct.phone for ct in contacts if ct.intake == "ok"]
        for start in range(0, len(phones), 1000):
            pipe.sadd(keys.campaign_phones(a, c), *phones[start : start + 1000])
        if campaign.group_id and campaign.end_handle == "continue":
            pipe.sadd(keys.group_campaigns(a, campaign.group_id), c)

    def new_campaign_id(self) -> str:
        while True:
            cid = uuid.uuid4().hex[:12]
            if not self.r.hexists(keys.CAMPAIGN_INDEX, cid):
                return cid

    def get_campaign(self, account_id: str, campaign_id: str) -> tuple[Campaign, dict[str, str]]:
        """The campaign's configuration and its live fields (status, reason, counters, times)."""
        raw = self.r.hgetall(keys.campaign(account_id, campaign_id))
        if not raw:
            raise NotFound(f"campaign not found: {campaign_id}")
        return Campaign.model_validate_json(raw.pop("doc")), raw

    def campaign_status(self, account_id: str, campaign_id: str) -> str:
        return str(self.r.hget(keys.campaign(account_id, campaign_id), "status") or "")

    def campaign_state(self, account_id: str, campaign_id: str) -> str:
        """The state commands see: the status, or 'deleted' once soft-deleted."""
        status, deleted = self.r.hmget(keys.campaign(account_id, campaign_id), "status", "deleted_at")
        if status is None:
            raise NotFound(f"campaign not found: {campaign_id}")
        return "deleted" if deleted else str(status)

    def transition(
        self,
        account_id: str,
        campaign_id: str,
        allowed: Iterable[str],
        new: str,
        reason: str,
        now_ms: int,
        **fields: Any,
    ) -> tuple[bool, str]:
        """CAS of the campaign status (``new`` '' keeps it) plus optional fields; (done, status before)."""
        extra = [x for kv in fields.items() for x in kv]
        res = self._run(
            "transition",
            [keys.campaign(account_id, campaign_id)],
            [",".join(allowed), new, reason, now_ms, *extra],
        )
        return res[0] == "ok", str(res[1])

    def reopen(
        self,
        account_id: str,
        campaign_id: str,
        allowed: Iterable[str],
        attempts: Sequence[tuple[CallAttempt, str]],
        now_ms: int,
    ) -> tuple[bool, str | int]:
        """Re-execute / redial: new attempts (each with the counter its contact leaves); (done, created|status)."""
        keys_ = [
            keys.campaign(account_id, campaign_id),
            keys.DUE,
            keys.campaign_attempts(account_id, campaign_id),
        ]
        args: list[Any] = [now_ms, ",".join(allowed)]
        for att, leaves in attempts:
            keys_.append(keys.attempt(account_id, att.key))
            args += [*_attempt_args(account_id, att), leaves]
        res = self._run("reopen", keys_, args)
        return (True, int(res[1])) if res[0] == "ok" else (False, str(res[1]))

    def update_campaign(
        self,
        campaign: Campaign,
        allowed: Iterable[str],
        sched: CampaignSchedule | None,
        now_ms: int,
        read_version: str,
    ) -> tuple[bool, str]:
        a, c = campaign.account_id, campaign.id
        res = self._run(
            "update",
            [keys.campaign(a, c), keys.schedule(a, c), keys.SCHED_DUE],
            [
                ",".join(allowed),
                campaign.model_dump_json(),
                keys.ref(a, c),
                sched.start_at if sched else 0,
                sched.model_dump_json() if sched else "",
                now_ms,
                read_version,
            ],
        )
        return res[0] == "ok", str(res[1])

    def list_campaigns(self, account_id: str | None, after: str | None, batch: int) -> list[tuple[str, int]]:
        """Campaign ids newest first (ties by id, descending), strictly after the page token ``score:id``."""
        key = keys.account_campaigns(account_id) if account_id else keys.CAMPAIGNS_BY_CREATION
        if not after:
            rows = self.r.zrevrangebyscore(key, "+inf", "-inf", start=0, num=batch, withscores=True)
            return [(str(m), int(sc)) for m, sc in rows]
        score_text, _, last_id = after.partition(":")
        top = int(score_text)
        same = sorted((str(m) for m in self.r.zrangebyscore(key, top, top) if str(m) < last_id), reverse=True)
        older = self.r.zrevrangebyscore(key, f"({top}", "-inf", start=0, num=batch, withscores=True)
        return ([(m, top) for m in same] + [(str(m), int(sc)) for m, sc in older])[:batch]

    def resume(
        self, account_id: str, campaign_id: str, allowed: Iterable[str], new: str, now_ms: int
    ) -> tuple[bool, str, str]:
        """CAS of the status to ``new``, every parked attempt back to due, and the completion re-checked;
        returns (done, status before, status after)."""
        res = self._run(
            "resume",
            [keys.campaign(account_id, campaign_id), keys.campaign_parked(account_id, campaign_id), keys.DUE],
            [",".join(allowed), new, now_ms],
        )
        return res[0] == "ok", str(res[1]), str(res[2])

    def next_fired(self, account_id: str, campaign_id: str) -> bool:
        return bool(self.r.hexists(keys.campaign(account_id, campaign_id), "next_fired"))

    def mark_next_fired(self, account_id: str, campaign_id: str, now_ms: int) -> bool:
        """True the first time only: the chained campaign starts once."""
        return bool(self.r.hsetnx(keys.campaign(account_id, campaign_id), "next_fired", now_ms))

    def contacts(self, account_id: str, campaign_id: str, start: int = 0, stop: int = -1) -> list[Contact]:
        rows = self.r.lrange(keys.contacts(account_id, campaign_id), start, stop)
        return [Contact.model_validate_json(r) for r in rows]

    def contact(self, account_id: str, campaign_id: str, index: int) -> Contact:
        row = self.r.lindex(keys.contacts(account_id, campaign_id), index)
        if row is None:
            raise NotFound(f"contact {index} of campaign {campaign_id} not found")
        return Contact.model_validate_json(row)

    # --- schedules ----------------------------------------------------------------------------------------
    def put_schedule(self, sched: CampaignSchedule) -> None:
        a, c = sched.account_id, sched.campaign_id
        with self.r.pipeline() as pipe:
            pipe.hset(
                keys.schedule(a, c), mapping={"doc": sched.model_dump_json(), "status": sched.status.value}
            )
            pipe.zadd(keys.SCHED_DUE, {keys.ref(a, c): sched.start_at})
            pipe.execute()

    def get_schedule(self, account_id: str, campaign_id: str) -> CampaignSchedule | None:
        raw = self.r.hgetall(keys.schedule(account_id, campaign_id))
        if not raw:
            return None
        sched = CampaignSchedule.model_validate_json(raw["doc"])
        sched.status = ScheduleStatus(raw["status"])
        return sched

    def finish_schedule(self, account_id: str, campaign_id: str, status: ScheduleStatus) -> None:
        with self.r.pipeline() as pipe:
            pipe.hset(keys.schedule(account_id, campaign_id), "status", status.value)
            pipe.zrem(keys.SCHED_LEASED, keys.ref(account_id, campaign_id))
            pipe.execute()

    # --- claims (scheduler) -------------------------------------------------------------------------------
    def claim_schedules(self, now_ms: int, lease_until_ms: int, limit: int) -> list[str]:
        """Due schedules: PENDING -> QUEUED, leased."""
        members = self.r.zrangebyscore(keys.SCHED_DUE, "-inf", now_ms, start=0, num=limit)
        hashes = [keys.schedule(*keys.parse_ref(m)) for m in members]
        return self._claim(
            keys.SCHED_DUE,
            keys.SCHED_LEASED,
            members,
            hashes,
            now_ms,
            lease_until_ms,
            "status",
            "PENDING",
            "QUEUED",
        )

    def claim_attempts(self, upto_ms: int, lease_until_ms: int, limit: int) -> list[str]:
        members = self.r.zrangebyscore(keys.DUE, "-inf", upto_ms, start=0, num=limit)
        return self.claim_refs(members, upto_ms, lease_until_ms)

    def claim_refs(self, refs: Sequence[str], upto_ms: int, lease_until_ms: int) -> list[str]:
        """Claim these attempts if they are still due by ``upto_ms`` (scheduled -> claimed, leased)."""
        hashes = [keys.attempt(*keys.parse_ref(m)) for m in refs]
        return self._claim(
            keys.DUE, keys.LEASED, refs, hashes, upto_ms, lease_until_ms, "state", "scheduled", "claimed"
        )

    def claim_events(self, now_ms: int, lease_until_ms: int, limit: int) -> list[str]:
        """Simulated call outcomes that are due."""
        members = self.r.zrangebyscore(keys.SIM_EVENTS, "-inf", now_ms, start=0, num=limit)
        return self._claim(
            keys.SIM_EVENTS, keys.SIM_EVENTS_LEASED, members, [], now_ms, lease_until_ms, "", "", ""
        )

    def _claim(
        self,
        due: str,
        leased: str,
        members: Sequence[str],
        hashes: Sequence[str],
        upto_ms: int,
        lease_until_ms: int,
        field: str,
        expect: str,
        new: str,
    ) -> list[str]:
        """claim.lua: one claim per member however many schedulers race; sets ``field`` expect -> new."""
        if not members:
            return []
        return list(
            self._run(
                "claim", [due, leased, *hashes], [upto_ms, lease_until_ms, field, expect, new, *members]
            )
        )

    def ack_event(self, sid: str) -> None:
        self.r.zrem(keys.SIM_EVENTS_LEASED, sid)

    def release_expired(self, now_ms: int, limit: int = 1000) -> int:
        n = 0
        for leased, due in (
            (keys.LEASED, keys.DUE),
            (keys.SCHED_LEASED, keys.SCHED_DUE),
            (keys.SIM_EVENTS_LEASED, keys.SIM_EVENTS),
        ):
            n += len(self._run("release", [leased, due], [now_ms, limit]))
        return n

    def expired_live(self, now_ms: int, recheck_at_ms: int, limit: int) -> list[str]:
        """Live calls past their deadline; each is pushed back to ``recheck_at_ms`` so it is handed out once."""
        refs = self.r.zrangebyscore(keys.LIVE, "-inf", now_ms, start=0, num=limit)
        if refs:
            self.r.zadd(keys.LIVE, dict.fromkeys(refs, recheck_at_ms), xx=True)
        return list(refs)

    def queued_messages(self, queue: str) -> int:
        return int(self.r.hlen(keys.dramatiq_messages(queue)))

    # --- attempts -------------------------------------------------------------------------------------------
    def expand(
        self,
        account_id: str,
        campaign_id: str,
        cursor: int,
        new_cursor: int,
        last: bool,
        attempts: Sequence[CallAttempt],
        now_ms: int,
    ) -> tuple[bool, str]:
        """Write one chunk of first attempts at ``cursor``; returns (applied, campaign status)."""
        keys_ = [
            keys.campaign(account_id, campaign_id),
            keys.DUE,
            keys.campaign_attempts(account_id, campaign_id),
        ]
        args: list[Any] = [now_ms, cursor, new_cursor, "1" if last else "0"]
        for att in attempts:
            keys_.append(keys.attempt(account_id, att.key))
            args += _attempt_args(account_id, att)
        res = self._run("expand", keys_, args)
        return res[0] == "ok", str(res[1])

    def expand_cursor(self, account_id: str, campaign_id: str) -> int:
        return int(self.r.hget(keys.campaign(account_id, campaign_id), "expand_cursor") or 0)

    def get_attempt(self, account_id: str, key: str) -> CallAttempt | None:
        raw = self.r.hgetall(keys.attempt(account_id, key))
        if not raw:
            return None
        clean = {k: v for k, v in raw.items() if v != ""}
        return CallAttempt.model_validate(clean)

    def campaign_attempts(self, account_id: str, campaign_id: str) -> list[CallAttempt]:
        akeys = self.r.zrange(keys.campaign_attempts(account_id, campaign_id), 0, -1)
        with self.r.pipeline(transaction=False) as pipe:
            for k in akeys:
                pipe.hgetall(keys.attempt(account_id, k))
            rows = pipe.execute()
        return [CallAttempt.model_validate({k: v for k, v in r.items() if v != ""}) for r in rows if r]

    def admit(
        self,
        att: CallAttempt,
        provider: str,
        token: str,
        stagger_ms: int,
        now_ms: int,
        max_wait_ms: int,
        late_ms: int = 50,
    ) -> tuple[str, int, str]:
        """Run admit.lua: (decision, ms, reason); see the script's header."""
        a = att.account_id
        hour = keys.hour_start(now_ms)
        res = self._run(
            "admit",
            [
                keys.attempt(a, att.key),
                keys.campaign(a, att.campaign_id),
                keys.provider(a, provider),
                keys.provider_state(a, provider),
                keys.provider_quota(a, provider, hour),
                keys.provider_quota_deferred(a, provider, hour + 3_600_000),
                keys.account(a),
                keys.LEASED,
                keys.DUE,
                keys.campaign_parked(a, att.campaign_id),
                keys.provider_waiting(a, provider),
                keys.account_waiting(a),
                keys.WAITING_INDEX,
            ],
            [
                now_ms,
                keys.ref(a, att.key),
                token,
                stagger_ms,
                hour + 3_600_000,
                max_wait_ms,
                late_ms,
                json.dumps(["provider", a, provider]),
                json.dumps(["account", a]),
            ],
        )
        return str(res[0]), int(res[1]), str(res[2])

    def defer(self, att: CallAttempt, provider: str, due_ms: int, reason: str, now_ms: int) -> bool:
        a = att.account_id
        res = self._run(
            "defer",
            [keys.attempt(a, att.key), keys.LEASED, keys.DUE, keys.provider_waiting(a, provider)],
            [keys.ref(a, att.key), due_ms, reason, now_ms],
        )
        return bool(res == "ok")

    def cancel_pending(
        self, account_id: str, campaign_id: str, provider: str, reason: str, now_ms: int
    ) -> str:
        """End every not-yet-dialled attempt of a stopped/cancelled campaign; returns the campaign status."""
        status = self.campaign_status(account_id, campaign_id)
        akeys = self.r.zrange(keys.campaign_attempts(account_id, campaign_id), 0, -1)
        fixed = [
            keys.campaign(account_id, campaign_id),
            keys.DUE,
            keys.campaign_parked(account_id, campaign_id),
            keys.provider_waiting(account_id, provider),
            keys.account_waiting(account_id),
            keys.LEASED,
        ]
        for start in range(0, max(len(akeys), 1), 500):  # at least once: the completion check runs
            chunk = akeys[start : start + 500]
            res = self._run(
                "cancel_pending",
                [*fixed, *(keys.attempt(account_id, k) for k in chunk)],
                [now_ms, reason, *(keys.ref(account_id, k) for k in chunk)],
            )
            status = str(res[1])
        return status

    def waiting_sets(self) -> dict[str, list[str]]:
        """The non-empty waiting sets and what each waits on: ["provider", account, name] | ["account", account]."""
        return {k: json.loads(v) for k, v in self.r.hgetall(keys.WAITING_INDEX).items()}

    def wake(self, waiting_key: str, n: int, now_ms: int) -> int:
        return int(self._run("wake", [waiting_key, keys.DUE, keys.WAITING_INDEX], [now_ms, n]))

    def record_dial(
        self, att: CallAttempt, token: str, sid: str, status: str, deadline_ms: int, now_ms: int
    ) -> bool:
        a = att.account_id
        res = self._run(
            "record_dial",
            [keys.attempt(a, att.key), keys.campaign(a, att.campaign_id), keys.LIVE, keys.LEASED],
            [keys.ref(a, att.key), token, sid, status, deadline_ms, now_ms],
        )
        return bool(res == "ok")

    def undo_admit(
        self, att: CallAttempt, provider: str, token: str, due_ms: int, reason: str, now_ms: int
    ) -> bool:
        a = att.account_id
        res = self._run(
            "undo_admit",
            [
                keys.attempt(a, att.key),
                keys.campaign(a, att.campaign_id),
                keys.provider_state(a, provider),
                keys.account(a),
                keys.LEASED,
                keys.DUE,
                keys.provider_waiting(a, provider),
                keys.account_waiting(a),
            ],
            [now_ms, keys.ref(a, att.key), token, due_ms, reason],
        )
        return bool(res == "ok")

    def finish(
        self,
        att: CallAttempt,
        provider: str,
        *,
        allowed: str,
        sid: str,
        state: str,
        reason: str,
        outcome: str,
        answered_by: str | None,
        duration_s: int,
        cost: int,
        error_code: str | None,
        ended_at: int,
        now_ms: int,
        recall: CallAttempt | None,
        permanent: bool = False,
    ) -> tuple[bool, str]:
        """End an attempt (see finish.lua); returns (applied, campaign status or attempt state)."""
        a = att.account_id
        next_key = recall.key if recall else f"{att.key}-none"
        res = self._run(
            "finish",
            [
                keys.attempt(a, att.key),
                keys.campaign(a, att.campaign_id),
                keys.provider_state(a, provider),
                keys.account(a),
                keys.LIVE,
                keys.LEASED,
                keys.DUE,
                keys.provider_waiting(a, provider),
                keys.account_waiting(a),
                keys.attempt(a, next_key),
                keys.campaign_attempts(a, att.campaign_id),
                keys.campaign_parked(a, att.campaign_id),
            ],
            [
                now_ms,
                keys.ref(a, att.key),
                allowed,
                sid,
                state,
                reason,
                outcome,
                answered_by or "",
                duration_s,
                cost,
                error_code or "",
                ended_at,
                *(_attempt_args(a, recall) if recall else [keys.ref(a, next_key), 0, 0, "{}"]),
                "1" if permanent else "0",
            ],
        )
        return res[0] == "ok", str(res[1])

    def ack_lease(self, account_id: str, key: str) -> None:
        self.r.zrem(keys.LEASED, keys.ref(account_id, key))

    def forget_live(self, ref: str) -> None:
        self.r.zrem(keys.LIVE, ref)

    def create_group(self, account_id: str, group_id: str, name: str, now_ms: int) -> None:
        self.require_account(account_id)
        if not self.r.hsetnx(keys.GROUP_INDEX, group_id, account_id):
            raise Conflict(f"group {group_id} already exists")
        self.r.hset(
            keys.group(account_id, group_id),
            mapping={
                "id": group_id,
                "account_id": account_id,
                "name": name,
                "created_at": now_ms,
                "contacts_n": 0,
            },
        )

    def group_account(self, group_id: str) -> str:
        account_id = self.r.hget(keys.GROUP_INDEX, group_id)
        if account_id is None:
            raise NotFound(f"group not found: {group_id}")
        return str(account_id)

    def get_group(self, account_id: str, group_id: str) -> dict[str, str]:
        raw = self.r.hgetall(keys.group(account_id, group_id))
        if not raw:
            raise NotFound(f"group not found: {group_id}")
        return dict(raw)

    def group_contacts(self, account_id: str, group_id: str, start: int = 0, stop: int = -1) -> list[Contact]:
        rows = self.r.lrange(keys.group_contacts(account_id, group_id), start, stop)
        return [Contact.model_validate_json(r) for r in rows]

    def group_subscribers(self, account_id: str, group_id: str) -> list[str]:
        return sorted(self.r.smembers(keys.group_campaigns(account_id, group_id)))

    def append_contacts(
        self,
        owner: str,
        contacts_key: str,
        phones_key: str,
        contacts: Sequence[Contact],
        group_cursor: tuple[int, int] | None = None,
    ) -> tuple[list[Contact], int, int] | None:
        """Append contacts (see append_contacts.lua); returns (those added, duplicates, invalid), or None
        when ``group_cursor`` (expected, after) did not match (another feed got there first)."""
        added: list[Contact] = []
        dups = bad = 0
        chunks = [contacts[i : i + 1000] for i in range(0, len(contacts), 1000)] or [[]]
        for n, chunk in enumerate(chunks):
            cursor_args = ["", ""]
            if group_cursor is not None and n == 0:  # one CAS for the whole feed, on its first chunk
                cursor_args = [str(group_cursor[0]), str(group_cursor[1])]
            args: list[str] = list(cursor_args)
            for c in chunk:
                rest = c.model_dump_json(exclude={"index", "intake", "intake_reason"})
                args += [c.phone, "ok" if c.intake == "ok" else "invalid", json.dumps(c.intake_reason), rest]
            res = self._run("append_contacts", [owner, contacts_key, phones_key], args)
            if str(res[3]) == "stale":
                return None
            dups, bad = dups + int(res[1]), bad + int(res[2])
            added += [c for c, flag in zip(chunk, str(res[3]), strict=True) if flag == "o"]
        return added, dups, bad

    # --- do-not-call --------------------------------------------------------------------------------------
    def is_dnc(self, account_id: str, phone: str) -> bool:
        return bool(self.r.sismember(keys.dnc(account_id), phone))

    def _dnc_numbers(self, account_id: str, numbers: Sequence[str]) -> list[str]:
        from dialer.phones import InvalidNumber, normalize

        region = self.get_account(account_id).default_region
        out = []
        for n in numbers:
            try:
                out.append(normalize(n, region))
            except InvalidNumber as exc:
                raise InvalidRequest(f"number {n!r}: {exc}") from None
        return out

    def dnc_add(self, account_id: str, numbers: Sequence[str]) -> list[str]:
        normalised = self._dnc_numbers(account_id, numbers)
        self.r.sadd(keys.dnc(account_id), *normalised)
        return normalised

    def dnc_remove(self, account_id: str, numbers: Sequence[str]) -> list[str]:
        normalised = self._dnc_numbers(account_id, numbers)
        self.r.srem(keys.dnc(account_id), *normalised)
        return normalised

    def dnc_list(self, account_id: str) -> list[str]:
        self.require_account(account_id)
        return sorted(self.r.smembers(keys.dnc(account_id)))

    # --- helpers for callers ---------------------------------------------------------------------------------
    def require_account(self, account_id: str) -> None:
        if not self.r.exists(keys.account(account_id)):
            raise NotFound(f"account not found: {account_id}")
