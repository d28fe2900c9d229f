"""Redis store of accounts, providers, campaigns, contacts, schedules and attempts.

Every race-prone change runs in a Lua script of ``lua/`` (loaded once, EVALSHA). A script names its keys
on its ``-- KEYS:`` line; the store builds them from ``keys.NAMED`` and the script reads them as
``K.name`` (a generated table), so no key list is written twice. Reads are plain.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

from dialer import keys
from dialer.errors import Conflict, InvalidRequest, NotFound
from dialer.keys import SHARED, Scope
from dialer.models import (
    COUNTERS,
    Account,
    CallAttempt,
    Campaign,
    CampaignSchedule,
    CampaignState,
    Contact,
    ProviderConfig,
    Template,
)
from dialer.money import reservation
from dialer.pace import HOUR_MS, gap_ms, hour_start
from dialer.secrets import SecretBox
from dialer.states import LIVE_ATTEMPT, AttemptState, ScheduleStatus, lua_prelude

LIVE_CSV = ",".join(sorted(LIVE_ATTEMPT))
CHUNK = 1000  # contacts or attempts per script call: never one long Lua call
EVENTS_KEPT = 1000  # a campaign's audit trail keeps about this many events


def _lua_file(name: str) -> str:
    return (resources.files("dialer.store") / "lua" / f"{name}.lua").read_text()


@dataclass(frozen=True)
class LuaScript:
    name: str
    key_names: tuple[str, ...]  # the script's fixed keys, in KEYS order
    script: Script


def _declared_keys(source: str, name: str) -> tuple[tuple[str, ...], bool]:
    """The names on a script's ``-- KEYS:`` line; a last name ending in ``...`` means more keys follow."""
    for line in source.splitlines():
        if line.startswith("-- KEYS:"):
            names = line[len("-- KEYS:") :].split()
            variadic = bool(names) and names[-1].endswith("...")
            return tuple(names[:-1] if variadic else names), variadic
    raise ValueError(f"{name}.lua has no '-- KEYS:' line")


def _compile(client: redis.Redis, name: str, prelude: str) -> LuaScript:
    source = _lua_file(name)
    names, _ = _declared_keys(source, name)
    table = ", ".join(f"{n} = KEYS[{i + 1}]" for i, n in enumerate(names))
    head = f"local K = {{{table}}}\nlocal NK = {len(names)}\n"
    return LuaScript(name, names, client.register_script(head + prelude + "\n" + source))


SCRIPT_NAMES = tuple(
    sorted(
        f.name[:-4]
        for f in (resources.files("dialer.store") / "lua").iterdir()
        if f.name.endswith(".lua") and f.name != "lib.lua"
    )
)


def _prelude() -> str:
    return f"{lua_prelude()}\nlocal HOUR_MS = {HOUR_MS}\n{_lua_file('lib')}"


DERIVED = frozenset({"key", "account_id", "campaign_id", "contact", "attempt"})  # said by the attempt's key


def _attempt_fields(att: CallAttempt) -> dict[str, Any]:
    """What an attempt's hash stores: its state, and every other field that is not a default or said by
    its key (a first attempt is three fields)."""
    fields = att.model_dump(mode="json", exclude_defaults=True, exclude=set(DERIVED))
    return {**fields, "state": att.state.value}


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


def new_api_key() -> str:
    return "dk_" + secrets.token_urlsafe(24)


def _scope(att: CallAttempt, provider: str = "", hour_ms: int = 0) -> Scope:
    return Scope(att.account_id, att.campaign_id, provider, att.key, hour_ms)


#: a campaign's stored document, parsed once per process (the document string is its own version)
_campaign_doc = functools.lru_cache(maxsize=4096)(Campaign.model_validate_json)
HINTS_MAX = 10_000


def _fields(flat: Sequence[str]) -> dict[str, str]:
    """A Lua HGETALL reply (name, value, name, value ...) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _attempt(account_id: str, key: str, raw: Mapping[str, str]) -> CallAttempt:
    """An attempt from its hash, which stores only what its key does not say and what is not a default."""
    campaign_id, contact, n = keys.parse_attempt_key(key)
    fields: dict[str, Any] = {k: v for k, v in raw.items() if v != ""}
    fields |= {
        "key": key,
        "account_id": account_id,
        "campaign_id": campaign_id,
        "contact": contact,
        "attempt": n,
    }
    return CallAttempt.model_validate(fields)


@dataclass(frozen=True)
class FirstAttempt:
    """A contact's first attempt as expansion writes it (its hash: phone, due time, state)."""

    key: str
    contact: int
    phone: str
    due_at: int


@dataclass(frozen=True)
class QueuesLook:
    """What the scheduler's look at the queues found (``Store.look``)."""

    released: int  # expired leases put back
    schedules: list[str]  # due schedules to claim
    attempts: list[str]  # due attempts to claim
    checks: list[str]  # live-call checks claimed
    waiting: int  # waiting sets (concurrency, money) not empty
    more: bool = False  # the queue's room ran out with work still due


@dataclass(frozen=True)
class DialView:
    """What one dial or one check reads, in one round trip (``Store.dial_view``)."""

    attempt: CallAttempt
    campaign: Campaign
    state: CampaignState
    provider: ProviderConfig | None
    contact: Contact | None
    dnc: bool


class Store:
    def __init__(self, client: redis.Redis, secrets: SecretBox | None = None) -> None:
        self.r: Any = client  # str responses (decode_responses=True); redis-py types them as bytes | str
        self.secrets = secrets or SecretBox(None)
        prelude = _prelude()
        self.scripts = {name: _compile(client, name, prelude) for name in SCRIPT_NAMES}
        # a provider's stored document, parsed (and its token opened) once per process
        self._provider_doc = functools.lru_cache(maxsize=1024)(self._parse_provider)
        # the provider each campaign dials through, as last seen (so one round trip reads both)
        self._provider_of: dict[str, str] = {}

    def _run(
        self,
        name: str,
        scope: Scope,
        args: Sequence[Any],
        *,
        given: Mapping[str, str] | None = None,
        more: Sequence[str] = (),
    ) -> Any:
        """Run a script: its named keys built from ``scope`` (or taken from ``given``), then ``more``."""
        lua = self.scripts[name]
        given = given or {}
        keys_ = [given[n] if n in given else keys.NAMED[n](scope) for n in lua.key_names]
        return lua.script(keys=[*keys_, *more], args=[str(a) for a in args])

    # --- accounts ---------------------------------------------------------------------------------------
    def create_account(
        self, account_id: str, name: str, balance: int, default_region: str | None, now_ms: int
    ) -> str:
        """Create an account; returns its API key (only its hash is stored, indexed for look-ups)."""
        api_key = new_api_key()
        digest = hash_api_key(api_key)
        fields = {
            "id": account_id,
            "name": name,
            "api_key_hash": digest,
            "balance": balance,
            "reserved": 0,
            "default_region": default_region or "",
            "created_at": now_ms,
        }
        if not self.r.hsetnx(keys.account(account_id), "id", account_id):
            raise Conflict(f"account {account_id} already exists")
        with self.r.pipeline() as pipe:
            pipe.hset(keys.account(account_id), mapping=fields)
            pipe.hset(keys.API_KEYS, digest, account_id)
            pipe.sadd(keys.ACCOUNTS, account_id)
            pipe.execute()
        return api_key

    def rotate_api_key(self, account_id: str) -> str:
        """A new API key for the account; the old one stops working at once."""
        old = self.get_account(account_id).api_key_hash
        api_key = new_api_key()
        digest = hash_api_key(api_key)
        with self.r.pipeline() as pipe:
            pipe.hdel(keys.API_KEYS, old)
            pipe.hset(keys.API_KEYS, digest, account_id)
            pipe.hset(keys.account(account_id), "api_key_hash", digest)
            pipe.execute()
        return api_key

    def account_by_api_key(self, api_key: str) -> str | None:
        """The account an API key belongs to (hash index: the key itself is never stored)."""
        found = self.r.hget(keys.API_KEYS, hash_api_key(api_key))
        return str(found) if found else None

    def get_account(self, account_id: str) -> Account:
        raw = self.r.hgetall(keys.account(account_id))
        if not raw:
            raise NotFound(f"account not found: {account_id}")
        raw["default_region"] = raw.get("default_region") or None
        return Account.model_validate(raw)

    def topup(self, account_id: str, amount: int) -> Account:
        self.require_account(account_id)
        self.r.hincrby(keys.account(account_id), "balance", amount)
        return self.get_account(account_id)

    def require_account(self, account_id: str) -> None:
        if not self.r.exists(keys.account(account_id)):
            raise NotFound(f"account not found: {account_id}")

    # --- providers --------------------------------------------------------------------------------------
    def put_provider(self, cfg: ProviderConfig) -> None:
        """Store a provider (its auth token sealed when DIALER_SECRET_KEY is set); the flat fields are what
        the admit script reads."""
        sealed = cfg.model_copy(update={"auth_token": self.secrets.seal(cfg.auth_token)})
        with self.r.pipeline() as pipe:
            pipe.hset(
                keys.provider(cfg.account_id, cfg.name),
                mapping={
                    "doc": sealed.model_dump_json(),
                    "enabled": "1" if cfg.enabled else "0",
                    "hourly_quota": cfg.hourly_quota or 0,
                    "max_concurrent": cfg.max_concurrent,
                    "reserve": reservation(cfg.max_call_seconds, cfg.price_per_minute),
                    "gap_ms": gap_ms(cfg.calls_per_second),
                    "price": cfg.price_per_minute,
                },
            )
            pipe.sadd(keys.providers(cfg.account_id), cfg.name)
            pipe.execute()

    def get_provider(self, account_id: str, name: str) -> ProviderConfig:
        """The provider's configuration as stored: its auth token stays sealed (the provider factory opens
        it where a call needs it), so reading a campaign or a provider never needs the key."""
        doc = self.r.hget(keys.provider(account_id, name), "doc")
        if doc is None:
            raise NotFound(f"provider not found: {name}")
        return self._provider_doc(doc)

    def _parse_provider(self, doc: str) -> ProviderConfig:
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
        used = self.r.get(keys.provider_quota(account_id, name, hour_start(now_ms)))
        live = self.r.hget(keys.provider_state(account_id, name), "live")
        return int(used or 0), int(live or 0)

    # --- campaigns --------------------------------------------------------------------------------------
    def campaign_account(self, campaign_id: str) -> str:
        account_id = self.r.hget(keys.CAMPAIGN_INDEX, campaign_id)
        if account_id is None:
            raise NotFound(f"campaign not found: {campaign_id}")
        return str(account_id)

    def find_idempotent(self, account_id: str, idempotency_key: str) -> str | None:
        """The campaign an earlier submit with this idempotency key created."""
        found = self.r.get(keys.idempotency(account_id, idempotency_key))
        return str(found) if found else None

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
        for start in range(0, len(contacts), CHUNK):
            chunk = contacts[start : start + CHUNK]
            pipe.rpush(keys.contacts(a, c), *[ct.model_dump_json(exclude_defaults=True) for ct in chunk])
        pipe.hset(keys.CAMPAIGN_INDEX, c, a)
        pipe.zadd(keys.account_campaigns(a), {c: campaign.created_at})
        pipe.zadd(keys.CAMPAIGNS_BY_CREATION, {c: campaign.created_at})
        if campaign.group_id and campaign.end_handle == "continue":
            # its numbers, so that contacts its group gets later are never a second call to one of them
            phones = [ct.phone for ct in contacts if ct.intake == "ok"]
            for start in range(0, len(phones), CHUNK):
                pipe.sadd(keys.campaign_phones(a, c), *phones[start : start + CHUNK])
            pipe.sadd(keys.group_campaigns(a, campaign.group_id), c)

    def new_id(self) -> str:
        """A fresh id for a campaign, a group or a template (12 hex digits)."""
        while True:
            cid = uuid.uuid4().hex[:12]
            if not any(
                self.r.hexists(index, cid)
                for index in (keys.CAMPAIGN_INDEX, keys.GROUP_INDEX, keys.TEMPLATE_INDEX)
            ):
                return cid

    def get_campaign(self, account_id: str, campaign_id: str) -> tuple[Campaign, CampaignState]:
        """The campaign's configuration and its live state (status, reason, counters, cursors)."""
        raw = self.r.hgetall(keys.campaign(account_id, campaign_id))
        if not raw:
            raise NotFound(f"campaign not found: {campaign_id}")
        return _campaign_doc(raw.pop("doc")), CampaignState.from_hash(raw)

    def dial_view(self, account_id: str, key: str, *, contact: bool = False) -> DialView | None:
        """The attempt, its campaign (document and state), its provider, its contact (if asked) and
        whether its number is on the DNC list: one round trip (view.lua) while the campaign keeps its
        provider. None when the attempt does not exist."""
        campaign_id, index, _ = keys.parse_attempt_key(key)
        ckey = keys.campaign(account_id, campaign_id)
        guess = self._provider_of.get(ckey, "")
        scope = Scope(account_id, campaign_id, guess, key)
        res = self._run("view", scope, ["" if not contact else index])
        if not res:
            return None
        att_raw, camp_raw, contact_doc, provider_doc, dnc = res
        raw = _fields(camp_raw)
        if not raw:
            raise NotFound(f"campaign not found: {campaign_id}")
        campaign = _campaign_doc(raw.pop("doc"))
        provider = None
        if campaign.provider:
            if campaign.provider == guess and provider_doc:
                provider = self._provider_doc(provider_doc)
            else:  # first sight of this campaign in this process, or its provider changed
                provider = self.find_provider(account_id, campaign.provider)
                if len(self._provider_of) >= HINTS_MAX:
                    self._provider_of.clear()
                self._provider_of[ckey] = campaign.provider
        return DialView(
            attempt=_attempt(account_id, key, _fields(att_raw)),
            campaign=campaign,
            state=CampaignState.from_hash(raw),
            provider=provider,
            contact=Contact.model_validate_json(contact_doc) if contact_doc else None,
            dnc=bool(dnc),
        )

    def campaign_state(self, account_id: str, campaign_id: str) -> CampaignState:
        raw = self.r.hgetall(keys.campaign(account_id, campaign_id))
        if not raw:
            raise NotFound(f"campaign not found: {campaign_id}")
        return CampaignState.from_hash(raw)

    def change_status(
        self, account_id: str, campaign_id: str, command: str, reason: str, now_ms: int, **fields: Any
    ) -> tuple[bool, str, str]:
        """Apply ``command`` by the transition table (plus optional fields written in the same step);
        returns (done, status before, status after)."""
        extra = [x for kv in fields.items() for x in kv]
        res = self._run("change_status", Scope(account_id, campaign_id), [command, reason, now_ms, *extra])
        return res[0] == "ok", str(res[1]), str(res[2])

    def start(self, sched: CampaignSchedule, now_ms: int) -> tuple[str, CampaignSchedule | str]:
        """Atomic start (draft -> scheduled + the PENDING schedule): ('ok' | 'same', schedule) or
        ('refused', current status)."""
        a, c = sched.account_id, sched.campaign_id
        res = self._run(
            "start",
            Scope(a, c),
            [keys.ref(a, c), sched.start_at, sched.model_dump_json(), now_ms],
        )
        if res[0] == "refused":
            return "refused", str(res[1])
        return str(res[0]), CampaignSchedule.model_validate_json(res[1])

    def reopen(
        self,
        account_id: str,
        campaign_id: str,
        command: str,
        attempts: Sequence[tuple[CallAttempt, str]],
        now_ms: int,
    ) -> tuple[bool, str | int]:
        """Re-execute / redial: new attempts (each with the counter its contact leaves); (done, created|status)."""
        args: list[Any] = [now_ms, command]
        for att, leaves in attempts:
            args += [*_attempt_args(account_id, att), leaves]
        res = self._run(
            "reopen",
            Scope(account_id, campaign_id),
            args,
            more=[keys.attempt(account_id, att.key) for att, _ in attempts],
        )
        return (True, int(res[1])) if res[0] == "ok" else (False, str(res[1]))

    def update_campaign(
        self, campaign: Campaign, sched: CampaignSchedule | None, now_ms: int, read_version: int
    ) -> tuple[bool, str]:
        a, c = campaign.account_id, campaign.id
        res = self._run(
            "update",
            Scope(a, c),
            [
                "",
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

    def mark_next_fired(self, account_id: str, campaign_id: str, now_ms: int) -> bool:
        """True the first time only: the chained campaign starts once."""
        return bool(self.r.hsetnx(keys.campaign(account_id, campaign_id), "next_fired", now_ms))

    def contacts(self, account_id: str, campaign_id: str, start: int = 0, stop: int = -1) -> list[Contact]:
        rows = self.r.lrange(keys.contacts(account_id, campaign_id), start, stop)
        return [Contact.model_validate_json(r) for r in rows]

    def contact_phones(
        self, account_id: str, campaign_id: str, start: int, stop: int
    ) -> list[tuple[int, str, bool]]:
        """(index, phone, dialled?) of contacts ``start``..``stop``: what expansion needs, read lightly."""
        rows = self.r.lrange(keys.contacts(account_id, campaign_id), start, stop)
        out = []
        for i, row in enumerate(rows):
            doc = json.loads(row)
            out.append((int(doc.get("index", start + i)), str(doc["phone"]), doc.get("intake", "ok") == "ok"))
        return out

    def contact(self, account_id: str, campaign_id: str, index: int) -> Contact:
        row = self.r.lindex(keys.contacts(account_id, campaign_id), index)
        if row is None:
            raise NotFound(f"contact {index} of campaign {campaign_id} not found")
        return Contact.model_validate_json(row)

    # --- schedules ----------------------------------------------------------------------------------------
    def put_schedule(self, sched: CampaignSchedule) -> None:
        """A schedule for a campaign already running (expansion of contacts added to its group)."""
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
    def _claim(
        self,
        due: str,
        leased: str,
        members: Sequence[str],
        hashes: Sequence[str],
        upto_ms: int,
        lease_until_ms: int,
        field_change: tuple[str, str, str] = ("", "", ""),
    ) -> list[str]:
        """claim.lua: one claim per member however many schedulers race; sets field: expect -> new."""
        if not members:
            return []
        return list(
            self._run(
                "claim",
                Scope(),
                [upto_ms, lease_until_ms, *field_change, *members],
                given={"due": due, "leased": leased},
                more=hashes,
            )
        )

    def look(
        self,
        now_ms: int,
        attempts_upto_ms: int,
        lease_until_ms: int,
        batch: int,
        queue: str,
        who: str,
        took_ms: int,
    ) -> QueuesLook:
        """tick.lua: expired leases back to due, due checks claimed, due schedules and attempts listed
        (within the room ``batch`` minus the messages waiting on ``queue``), the heartbeat written."""
        given = {"messages": keys.dramatiq_messages(queue)}
        args = [now_ms, attempts_upto_ms, lease_until_ms, batch, who, took_ms]
        released, schedules, attempts, checks, waiting, more = self._run("tick", Scope(), args, given=given)
        return QueuesLook(
            int(released), list(schedules), list(attempts), list(checks), int(waiting), bool(int(more))
        )

    def claim_schedules(self, members: Sequence[str], now_ms: int, lease_until_ms: int) -> list[str]:
        """Due schedules: PENDING -> QUEUED, leased."""
        change = ("status", ScheduleStatus.PENDING, ScheduleStatus.QUEUED)
        hashes = [keys.schedule(*keys.parse_ref(m)) for m in members]
        return self._claim(keys.SCHED_DUE, keys.SCHED_LEASED, members, hashes, now_ms, lease_until_ms, change)

    def first_attempts(self, account_id: str, campaign_id: str, n: int) -> list[str]:
        """The refs of a campaign's first ``n`` attempts (in contact order)."""
        akeys = self.r.zrange(keys.campaign_attempts(account_id, campaign_id), 0, n - 1)
        return [keys.ref(account_id, k) for k in akeys]

    def claim_refs(self, refs: Sequence[str], upto_ms: int, lease_until_ms: int) -> list[str]:
        """Claim these attempts if they are still due by ``upto_ms`` (scheduled -> claimed, leased)."""
        change = ("state", AttemptState.SCHEDULED, AttemptState.CLAIMED)
        hashes = [keys.attempt(*keys.parse_ref(m)) for m in refs]
        return self._claim(keys.DUE, keys.LEASED, refs, hashes, upto_ms, lease_until_ms, change)

    def release_unprocessed(self, attempts: Sequence[str], checks: Sequence[str], now_ms: int) -> int:
        """A stopping worker hands back the claims of the messages it fetched but did not process (dials
        and checks), so they are claimed again at once instead of when their lease runs out; counted as
        ``released|shutdown``, not as a crash."""
        n = 0
        for refs, leased, due in (
            (attempts, keys.LEASED, keys.DUE),
            (checks, keys.CHECKS_LEASED, keys.CHECKS),
        ):
            if refs:
                given = {"leased": leased, "due": due}
                n += len(self._run("release", Scope(), [now_ms, "shutdown", *refs], given=given))
        return n

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
        attempts: Sequence[FirstAttempt],
        now_ms: int,
    ) -> tuple[bool, str]:
        """Write one chunk of first attempts at ``cursor``; returns (applied, campaign status)."""
        args: list[Any] = [now_ms, cursor, new_cursor, "1" if last else "0"]
        for att in attempts:
            args += [keys.ref(account_id, att.key), att.due_at, att.contact * 1000 + 1, att.phone]
        res = self._run(
            "expand",
            Scope(account_id, campaign_id),
            args,
            more=[keys.attempt(account_id, att.key) for att in attempts],
        )
        return res[0] == "ok", str(res[1])

    def get_attempt(self, account_id: str, key: str) -> CallAttempt | None:
        raw = self.r.hgetall(keys.attempt(account_id, key))
        return _attempt(account_id, key, raw) if raw else None

    def campaign_attempts(self, account_id: str, campaign_id: str) -> list[CallAttempt]:
        akeys = self.r.zrange(keys.campaign_attempts(account_id, campaign_id), 0, -1)
        with self.r.pipeline(transaction=False) as pipe:
            for k in akeys:
                pipe.hgetall(keys.attempt(account_id, k))
            rows = pipe.execute()
        return [_attempt(account_id, k, r) for k, r in zip(akeys, rows, strict=True) if r]

    def attempts_after(
        self, account_id: str, campaign_id: str, after_score: int, limit: int
    ) -> tuple[list[CallAttempt], int | None]:
        """Up to ``limit`` attempts whose order score (contact × 1000 + n) is above ``after_score``, and the
        last score returned."""
        rows = self.r.zrangebyscore(
            keys.campaign_attempts(account_id, campaign_id),
            f"({after_score}",
            "+inf",
            start=0,
            num=limit,
            withscores=True,
        )
        with self.r.pipeline(transaction=False) as pipe:
            for k, _ in rows:
                pipe.hgetall(keys.attempt(account_id, k))
            raws = pipe.execute()
        atts = [_attempt(account_id, k, r) for (k, _), r in zip(rows, raws, strict=True) if r]
        return atts, (int(rows[-1][1]) if rows else None)

    def attempt_owner(self, account_id: str, sid: str) -> str | None:
        """The attempt key a provider call was recorded on."""
        found = self.r.hget(keys.sids(account_id), sid)
        return str(found) if found else None

    def admit(
        self,
        att: CallAttempt,
        provider: str,
        token: str,
        stagger_ms: int,
        now_ms: int,
        max_wait_ms: int,
        late_ms: int,
        from_number: str,
        hours_zone: str | None = None,
    ) -> tuple[str, int, str, int]:
        """Run admit.lua: (decision, ms, reason, price per minute admitted at); see the script's header."""
        a = att.account_id
        hour = hour_start(now_ms)
        res = self._run(
            "admit",
            _scope(att, provider, hour),
            [
                now_ms,
                keys.ref(a, att.key),
                token,
                stagger_ms,
                hour + HOUR_MS,
                max_wait_ms,
                late_ms,
                json.dumps(["provider", a, provider]),
                json.dumps(["account", a]),
                from_number,
                hours_zone or "",
            ],
        )
        return str(res[0]), int(res[1]), str(res[2]), int(res[3]) if len(res) > 3 else 0

    def slow_down(self, account_id: str, provider: str, gap_ms: int, until_ms: int) -> None:
        """The provider's pace is at most one dial per ``gap_ms`` until ``until_ms`` (after a 429)."""
        self.r.hset(
            keys.provider_state(account_id, provider), mapping={"slow_gap": gap_ms, "slow_until": until_ms}
        )

    def still_dialing(self, att: CallAttempt, token: str) -> bool:
        """The admission with this token is still this attempt's (no recovery took it back)."""
        state, current = self.r.hmget(keys.attempt(att.account_id, att.key), "state", "dial_token")
        return bool(state == AttemptState.DIALING and current == token)

    def defer(
        self,
        att: CallAttempt,
        provider: str,
        due_ms: int,
        reason: str,
        now_ms: int,
        hours_zone: str | None = None,
    ) -> bool:
        """Back to due at ``due_ms`` with a reason (and the zone whose calling hours decided, if they did)."""
        args = [keys.ref(att.account_id, att.key), due_ms, reason, now_ms, hours_zone or ""]
        res = self._run("defer", _scope(att, provider), args)
        return bool(res == "ok")

    def cancel_pending(
        self, account_id: str, campaign_id: str, provider: str, reason: str, now_ms: int
    ) -> str:
        """End every not-yet-dialled attempt of a stopped/cancelled/failed campaign; returns its status."""
        status = self.campaign_state(account_id, campaign_id).status.value
        akeys = self.r.zrange(keys.campaign_attempts(account_id, campaign_id), 0, -1)
        for start in range(0, max(len(akeys), 1), 500):  # at least once: the completion check runs
            chunk = akeys[start : start + 500]
            res = self._run(
                "cancel_pending",
                Scope(account_id, campaign_id, provider),
                [now_ms, reason, *(keys.ref(account_id, k) for k in chunk)],
                more=[keys.attempt(account_id, k) for k in chunk],
            )
            status = str(res[1])
        return status

    def waiting_sets(self) -> dict[str, list[str]]:
        """The non-empty waiting sets and what each waits on: ["provider", account, name] | ["account", account]."""
        return {k: json.loads(v) for k, v in self.r.hgetall(keys.WAITING_INDEX).items()}

    def wake(self, waiting_key: str, n: int, now_ms: int) -> int:
        return int(self._run("wake", Scope(), [now_ms, n], given={"waiting": waiting_key}))

    def record_dial(
        self,
        att: CallAttempt,
        provider: str,
        token: str,
        sid: str,
        status: str,
        check_at_ms: int,
        deadline_ms: int,
        now_ms: int,
    ) -> bool:
        """The dial is a live call (CAS on the token; a sid already recorded on another attempt is refused)."""
        res = self._run(
            "record_dial",
            _scope(att),
            [
                keys.ref(att.account_id, att.key),
                token,
                sid,
                status,
                check_at_ms,
                deadline_ms,
                now_ms,
                att.key,
                f"{att.account_id}/{provider}",
            ],
        )
        return bool(res == "ok")

    def recheck(self, att: CallAttempt, at_ms: int, sid: str, status: str) -> bool:
        """Check the live call again at ``at_ms`` (keeping a progress state such as ringing)."""
        res = self._run("recheck", _scope(att), [keys.ref(att.account_id, att.key), at_ms, sid, status])
        return bool(res == "ok")

    def mark_progress(self, att: CallAttempt, sid: str, status: str) -> bool:
        """A progress callback (ringing, in-progress): shown in the attempt's state, never moving back."""
        res = self._run("recheck", _scope(att), [keys.ref(att.account_id, att.key), "", sid, status])
        return bool(res == "ok")

    def ack_check(self, ref: str) -> None:
        """A check about an attempt that is no longer live: drop it."""
        with self.r.pipeline() as pipe:
            pipe.zrem(keys.CHECKS_LEASED, ref)
            pipe.zrem(keys.CHECKS, ref)
            pipe.execute()

    def undo_admit(
        self,
        att: CallAttempt,
        provider: str,
        token: str,
        due_ms: int,
        reason: str,
        now_ms: int,
        *,
        unsent: bool = False,
    ) -> bool:
        """Undo an admission (``unsent``: the dial never left, so its hourly-quota count is given back to
        the hour it was admitted in)."""
        res = self._run(
            "undo_admit",
            _scope(att, provider, hour_start(att.dialing_at or now_ms)),
            [now_ms, keys.ref(att.account_id, att.key), token, due_ms, reason, "1" if unsent else "0"],
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
            _scope(att, provider),
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
                f"{a}/{provider}",
            ],
            given={"next_attempt": keys.attempt(a, next_key)},
        )
        return res[0] == "ok", str(res[1])

    def ack_lease(self, account_id: str, key: str) -> None:
        self.r.zrem(keys.LEASED, keys.ref(account_id, key))

    def count_failure(self, account_id: str, key: str) -> int:
        """One more time the attempt's processing raised; returns how many times in all."""
        return int(self.r.hincrby(keys.attempt(account_id, key), "failures", 1))

    # --- groups ---------------------------------------------------------------------------------------------
    def _create_named(
        self, members: str, index: str, item_id: str, account_id: str, what: str, write: Callable[[Any], None]
    ) -> None:
        """A group's or template's id is the account's own: another account may hold the same id (a create
        never tells one account what ids another has). ``index`` maps an id to its account for the commands
        that name only the id — or to ``SHARED`` once several accounts hold it. One transaction: the
        id, the record and the index, or nothing."""

        def txn(pipe: Any) -> None:
            if pipe.sismember(members, item_id):
                raise Conflict(f"{what} {item_id} already exists")
            owner = pipe.hget(index, item_id)
            pipe.multi()
            write(pipe)
            pipe.sadd(members, item_id)
            pipe.hset(index, item_id, account_id if owner in (None, account_id) else SHARED)

        self.r.transaction(txn, members, index)

    def _owner(self, index: str, item_id: str, what: str) -> str:
        owner = self.r.hget(index, item_id)
        if owner is None:
            raise NotFound(f"{what} not found: {item_id}")
        if owner == SHARED:
            raise InvalidRequest(f"{what} {item_id} exists in several accounts: name the account (--account)")
        return str(owner)

    def create_group(self, account_id: str, group_id: str, name: str, now_ms: int) -> None:
        self.require_account(account_id)
        record = {
            "id": group_id,
            "account_id": account_id,
            "name": name,
            "created_at": now_ms,
            "contacts_n": 0,
        }
        self._create_named(
            keys.account_groups(account_id),
            keys.GROUP_INDEX,
            group_id,
            account_id,
            "group",
            lambda pipe: pipe.hset(keys.group(account_id, group_id), mapping=record),
        )

    def group_account(self, group_id: str) -> str:
        """The account of a group named by id alone (the CLI); ambiguous ids need the account."""
        return self._owner(keys.GROUP_INDEX, group_id, "group")

    def owns_group(self, account_id: str, group_id: str) -> bool:
        return bool(self.r.sismember(keys.account_groups(account_id), group_id))

    def group_ids(self, account_id: str) -> list[str]:
        return sorted(self.r.smembers(keys.account_groups(account_id)))

    def get_group(self, account_id: str, group_id: str) -> dict[str, str]:
        raw = self.r.hgetall(keys.group(account_id, group_id))
        if not raw:
            raise NotFound(f"group not found: {group_id}")
        return dict(raw)

    def group_size(self, account_id: str, group_id: str) -> int:
        return int(self.r.scard(keys.group_phones(account_id, group_id)))

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
        chunks = [contacts[i : i + CHUNK] for i in range(0, len(contacts), CHUNK)] or [[]]
        for n, chunk in enumerate(chunks):
            cursor_args = ["", ""]
            if group_cursor is not None and n == 0:  # one CAS for the whole feed, on its first chunk
                cursor_args = [str(group_cursor[0]), str(group_cursor[1])]
            args: list[str] = list(cursor_args)
            for c in chunk:
                rest = c.model_dump_json(exclude={"index", "intake", "intake_reason"})
                args += [c.phone, "ok" if c.intake == "ok" else "invalid", json.dumps(c.intake_reason), rest]
            res = self._run(
                "append_contacts",
                Scope(),
                args,
                given={"owner": owner, "contacts_list": contacts_key, "phones": phones_key},
            )
            if str(res[3]) == "stale":
                return None
            dups, bad = dups + int(res[1]), bad + int(res[2])
            added += [c for c, flag in zip(chunk, str(res[3]), strict=True) if flag == "o"]
        return added, dups, bad

    # --- the audit trail, heartbeats and what operators read ------------------------------------------------
    def add_event(self, account_id: str, campaign_id: str, event: str, now_ms: int, **fields: Any) -> None:
        """One line of the campaign's audit trail (a capped stream: the last ~1,000 events)."""
        entry = {"event": event, "at": now_ms, **{k: str(v) for k, v in fields.items() if v is not None}}
        self.r.xadd(
            keys.campaign_events(account_id, campaign_id), entry, maxlen=EVENTS_KEPT, approximate=True
        )

    def events(self, account_id: str, campaign_id: str, limit: int = 1000) -> list[dict[str, str]]:
        rows = self.r.xrange(keys.campaign_events(account_id, campaign_id), count=limit)
        return [dict(fields) for _, fields in rows]

    def beat(self, who: str, now_ms: int) -> None:
        """A process says it is alive (``scheduler|host|pid`` or ``worker|host|pid``); the dead are pruned."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.ALIVE, {who: now_ms})
            pipe.zremrangebyscore(keys.ALIVE, "-inf", now_ms - 3_600_000)
            pipe.execute()

    def forget(self, who: str) -> None:
        self.r.zrem(keys.ALIVE, who)

    def alive(self, since_ms: int) -> list[tuple[str, int]]:
        return [
            (str(m), int(s)) for m, s in self.r.zrangebyscore(keys.ALIVE, since_ms, "+inf", withscores=True)
        ]

    def last_tick(self) -> dict[str, str]:
        return dict(self.r.hgetall(keys.TICK))

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(keys.STATS).items()}

    def backlog(self, now_ms: int) -> dict[str, Any]:
        """Work waiting for the scheduler and the workers."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.zcount(keys.DUE, "-inf", now_ms)
            pipe.zcard(keys.DUE)
            pipe.zcard(keys.LEASED)
            pipe.zcount(keys.SCHED_DUE, "-inf", now_ms)
            pipe.zcard(keys.CHECKS)
            pipe.zrange(keys.DUE, 0, 0, withscores=True)
            due_now, due_all, leased, launches, checks, oldest = pipe.execute()
        return {
            "due_now": int(due_now),
            "due_later": int(due_all) - int(due_now),
            "claimed": int(leased),
            "launches_due": int(launches),
            "live_call_checks": int(checks),
            "oldest_due_ms": int(oldest[0][1]) if oldest else None,
        }

    def dials_per_minute(self, account_id: str, since_ms: int) -> dict[int, int]:
        key = keys.dials_per_minute(account_id)
        raw = {int(k): int(v) for k, v in self.r.hgetall(key).items()}
        old = [str(k) for k in raw if k < since_ms - 3_600_000]
        if old:
            self.r.hdel(key, *old)
        return {k: v for k, v in raw.items() if k >= since_ms}

    def account_ids(self) -> list[str]:
        return sorted(self.r.smembers(keys.ACCOUNTS))

    # --- templates ------------------------------------------------------------------------------------------
    def create_template(self, tpl: Template) -> None:
        self.require_account(tpl.account_id)
        self._create_named(
            keys.account_templates(tpl.account_id),
            keys.TEMPLATE_INDEX,
            tpl.id,
            tpl.account_id,
            "template",
            lambda pipe: pipe.set(keys.template(tpl.account_id, tpl.id), tpl.model_dump_json()),
        )

    def template_account(self, template_id: str) -> str:
        """The account of a template named by id alone (the CLI); ambiguous ids need the account."""
        return self._owner(keys.TEMPLATE_INDEX, template_id, "template")

    def owns_template(self, account_id: str, template_id: str) -> bool:
        return bool(self.r.sismember(keys.account_templates(account_id), template_id))

    def get_template(self, account_id: str, template_id: str) -> Template:
        doc = self.r.get(keys.template(account_id, template_id))
        if doc is None:
            raise NotFound(f"template not found: {template_id}")
        return Template.model_validate_json(doc)

    def template_ids(self, account_id: str) -> list[str]:
        return sorted(self.r.smembers(keys.account_templates(account_id)))

    def delete_template(self, account_id: str, template_id: str) -> None:
        """The index entry follows the holders of the id: gone with the last, the account's own again when
        one is left of several."""

        def txn(pipe: Any) -> None:
            owner = pipe.hget(keys.TEMPLATE_INDEX, template_id)
            others = []
            if owner == SHARED:  # rare: who else holds it (a create meanwhile changes the index: a retry)
                others = [
                    a
                    for a in pipe.smembers(keys.ACCOUNTS)
                    if a != account_id and pipe.sismember(keys.account_templates(a), template_id)
                ]
            pipe.multi()
            pipe.delete(keys.template(account_id, template_id))
            pipe.srem(keys.account_templates(account_id), template_id)
            if owner == account_id or (owner == SHARED and not others):
                pipe.hdel(keys.TEMPLATE_INDEX, template_id)
            elif owner == SHARED and len(others) == 1:
                pipe.hset(keys.TEMPLATE_INDEX, template_id, others[0])

        self.r.transaction(txn, keys.TEMPLATE_INDEX)

    # --- do-not-call --------------------------------------------------------------------------------------
    def is_dnc(self, account_id: str, phone: str) -> bool:
        return bool(self.r.sismember(keys.dnc(account_id), phone))

    def dnc_change(self, account_id: str, numbers: Sequence[str], add: bool) -> list[str]:
        """Add (or remove) numbers (E.164); returns those that changed (were new, or were listed)."""
        self.require_account(account_id)
        key = keys.dnc(account_id)
        with self.r.pipeline() as pipe:
            for n in numbers:
                (pipe.sadd if add else pipe.srem)(key, n)
            changed = pipe.execute()
        return [n for n, did in zip(numbers, changed, strict=True) if did]

    def dnc_list(self, account_id: str) -> list[str]:
        self.require_account(account_id)
        return sorted(self.r.smembers(keys.dnc(account_id)))
