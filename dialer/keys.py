"""Every Redis key name, built in one place (never as string literals elsewhere).

Keys of one account share the hash tag ``{a:ID}`` so one Lua script may touch its balance, its providers'
counters, its campaigns and attempts. The work queues (due/leased/live sorted sets) are global, in
``{q}``. A *ref* names an attempt across accounts: ``ACCOUNT|ATTEMPT_KEY``; an attempt key is
``CAMPAIGN:CONTACT_INDEX:N`` (stable, user-visible, never the phone number).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dialer.pace import HOUR_MS

P = "d"


def _a(account_id: str) -> str:
    return f"{P}:{{a:{account_id}}}"


# --- global -------------------------------------------------------------------------------------------
ACCOUNTS = f"{P}:accounts"  # set of account ids
CAMPAIGN_INDEX = f"{P}:campaigns"  # hash campaign id -> account id
DUE = f"{P}:{{q}}:due"  # zset ref -> due_at_ms
LEASED = f"{P}:{{q}}:leased"  # zset ref -> lease_until_ms
SCHED_DUE = f"{P}:{{q}}:sched:due"  # zset "ACCOUNT|CAMPAIGN" -> start_at_ms
SCHED_LEASED = f"{P}:{{q}}:sched:leased"
CHECKS = f"{P}:{{q}}:checks"  # zset ref -> when a live call is next checked with its provider
CHECKS_LEASED = f"{P}:{{q}}:checks:leased"
API_KEYS = f"{P}:apikeys"  # hash sha256(api key) -> account id
ALIVE = f"{P}:{{q}}:alive"  # zset "scheduler|host|pid" / "worker|host|pid" -> last heartbeat ms
TICK = f"{P}:{{q}}:tick"  # hash: the last scheduler tick (at, took_ms, by)
STATS = (
    f"{P}:{{q}}:stats"  # hash of counters the scripts keep for /metrics (placed|acct|prov, outcome|..., ...)
)
SIM_DIALS = f"{P}:sim:dials"  # list of JSON rows, in dial order
SIM_NUMBERS = f"{P}:sim:numbers"  # hash number -> times dialled


def sim_call(sid: str) -> str:
    return f"{P}:sim:call:{sid}"


def sim_campaign_dials(campaign_id: str) -> str:
    return f"{P}:sim:dials:{campaign_id}"


def dramatiq_messages(queue: str) -> str:
    """The Redis broker's hash of enqueued (not yet acked) messages of a queue."""
    return f"dramatiq:{queue}.msgs"


# --- per account ----------------------------------------------------------------------------------------
def account(account_id: str) -> str:
    return f"{_a(account_id)}:account"


def account_waiting(account_id: str) -> str:
    """Refs waiting for a reservation to be settled (money outstanding)."""
    return f"{_a(account_id)}:waiting"


def providers(account_id: str) -> str:
    return f"{_a(account_id)}:providers"


def provider(account_id: str, name: str) -> str:
    return f"{_a(account_id)}:provider:{name}"


def provider_state(account_id: str, name: str) -> str:
    """Hash: next_slot_ms (pace), live (calls up)."""
    return f"{_a(account_id)}:provider:{name}:state"


def provider_waiting(account_id: str, name: str) -> str:
    """Refs waiting for a concurrent-call slot of the provider."""
    return f"{_a(account_id)}:provider:{name}:waiting"


def provider_quota(account_id: str, name: str, hour_ms: int) -> str:
    """Calls placed in the UTC hour starting at hour_ms."""
    return f"{_a(account_id)}:provider:{name}:quota:{hour_ms}"


def provider_quota_deferred(account_id: str, name: str, hour_ms: int) -> str:
    """How many attempts were deferred into the hour starting at hour_ms (their rank spreads them)."""
    return f"{_a(account_id)}:provider:{name}:deferred:{hour_ms}"


def sids(account_id: str) -> str:
    """Hash call sid -> attempt key: a provider call is recorded on one attempt only."""
    return f"{_a(account_id)}:sids"


def dnc(account_id: str) -> str:
    return f"{_a(account_id)}:dnc"


def account_campaigns(account_id: str) -> str:
    return f"{_a(account_id)}:campaigns"  # zset campaign id -> created_at_ms


def idempotency(account_id: str, key: str) -> str:
    return f"{_a(account_id)}:idem:{key}"


def campaign(account_id: str, campaign_id: str) -> str:
    return f"{_a(account_id)}:c:{campaign_id}"


def contacts(account_id: str, campaign_id: str) -> str:
    return f"{_a(account_id)}:c:{campaign_id}:contacts"  # list of JSON contacts


def campaign_attempts(account_id: str, campaign_id: str) -> str:
    return f"{_a(account_id)}:c:{campaign_id}:attempts"  # zset attempt key -> contact*1000+n


def campaign_parked(account_id: str, campaign_id: str) -> str:
    return f"{_a(account_id)}:c:{campaign_id}:parked"  # zset ref -> due_at (campaign not running)


def schedule(account_id: str, campaign_id: str) -> str:
    return f"{_a(account_id)}:schedule:{campaign_id}"


def campaign_events(account_id: str, campaign_id: str) -> str:
    """Stream: the campaign's audit trail (created, started, paused by whom or why, ...), capped."""
    return f"{_a(account_id)}:c:{campaign_id}:events"


def dials_per_minute(account_id: str) -> str:
    """Hash minute start ms -> dials placed (the dashboard's chart)."""
    return f"{_a(account_id)}:perminute"


def attempt(account_id: str, key: str) -> str:
    return f"{_a(account_id)}:att:{key}"


# --- refs ------------------------------------------------------------------------------------------------
def attempt_key(campaign_id: str, contact: int, n: int) -> str:
    return f"{campaign_id}:{contact}:{n}"


def parse_attempt_key(key: str) -> tuple[str, int, int]:
    campaign_id, contact, n = key.rsplit(":", 2)
    return campaign_id, int(contact), int(n)


def ref(account_id: str, key: str) -> str:
    return f"{account_id}|{key}"


def parse_ref(value: str) -> tuple[str, str]:
    account_id, _, key = value.partition("|")
    return account_id, key


def sim_number_calls(number: str) -> str:
    """zset sid -> started_at of the simulator's calls to one number (lookup by to + time window)."""
    return f"{P}:sim:number:{number}"


CAMPAIGNS_BY_CREATION = f"{P}:campaigns:created"  # zset campaign id -> created_at_ms (all accounts)
GROUP_INDEX = f"{P}:groups"  # hash group id -> account id
TEMPLATE_INDEX = f"{P}:templates"  # hash template id -> account id
SHARED = "*"  # in GROUP_INDEX / TEMPLATE_INDEX: an id that several accounts hold (each its own)


def campaign_phones(account_id: str, campaign_id: str) -> str:
    """Set of the campaign's E.164 numbers (a campaign dials each number once)."""
    return f"{_a(account_id)}:c:{campaign_id}:phones"


def group(account_id: str, group_id: str) -> str:
    return f"{_a(account_id)}:g:{group_id}"


def group_contacts(account_id: str, group_id: str) -> str:
    return f"{_a(account_id)}:g:{group_id}:contacts"  # list of JSON contacts as imported


def group_phones(account_id: str, group_id: str) -> str:
    return f"{_a(account_id)}:g:{group_id}:phones"


def template(account_id: str, template_id: str) -> str:
    return f"{_a(account_id)}:tpl:{template_id}"


def account_templates(account_id: str) -> str:
    return f"{_a(account_id)}:templates"  # set of template ids


def account_groups(account_id: str) -> str:
    return f"{_a(account_id)}:groups"  # set of group ids


def group_campaigns(account_id: str, group_id: str) -> str:
    """Campaigns with end_handle=continue that dial contacts added to the group later."""
    return f"{_a(account_id)}:g:{group_id}:campaigns"


WAITING_INDEX = f"{P}:{{q}}:waiting"  # hash waiting-set key -> JSON of what it waits on (scheduler sweep)


# --- keys by name, for the Lua scripts' `-- KEYS:` lines ----------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What a script's named keys are about; a name the scope cannot build is passed explicitly."""

    account: str = ""
    campaign: str = ""
    provider: str = ""
    attempt: str = ""  # attempt key
    hour_ms: int = 0  # the UTC hour of the provider's quota


NAMED: dict[str, Callable[[Scope], str]] = {
    "account": lambda s: account(s.account),
    "account_waiting": lambda s: account_waiting(s.account),
    "provider": lambda s: provider(s.account, s.provider),
    "provider_state": lambda s: provider_state(s.account, s.provider),
    "provider_waiting": lambda s: provider_waiting(s.account, s.provider),
    "quota": lambda s: provider_quota(s.account, s.provider, s.hour_ms),
    "quota_deferred": lambda s: provider_quota_deferred(s.account, s.provider, s.hour_ms + HOUR_MS),
    "campaign": lambda s: campaign(s.account, s.campaign),
    "campaign_attempts": lambda s: campaign_attempts(s.account, s.campaign),
    "contacts": lambda s: contacts(s.account, s.campaign),
    "dnc": lambda s: dnc(s.account),
    "parked": lambda s: campaign_parked(s.account, s.campaign),
    "schedule": lambda s: schedule(s.account, s.campaign),
    "attempt": lambda s: attempt(s.account, s.attempt),
    "sids": lambda s: sids(s.account),
    "due": lambda s: DUE,
    "leased": lambda s: LEASED,
    "sched_due": lambda s: SCHED_DUE,
    "sched_leased": lambda s: SCHED_LEASED,
    "tick": lambda s: TICK,
    "alive": lambda s: ALIVE,
    "checks": lambda s: CHECKS,
    "checks_leased": lambda s: CHECKS_LEASED,
    "waiting_index": lambda s: WAITING_INDEX,
    "stats": lambda s: STATS,
    "per_minute": lambda s: dials_per_minute(s.account),
}
