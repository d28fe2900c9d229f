"""What operators ask: why is this campaign not dialling (``explain``), is the system alive (``status``),
is it set up right (``doctor``). Everything comes from what the engine already stores — each waiting
attempt's reason and due time, the heartbeats, Redis's own INFO — never a second model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from dialer.clock import to_iso
from dialer.context import Core
from dialer.lifecycle import test_connection
from dialer.models import CallAttempt, Campaign, CampaignState, ProviderConfig
from dialer.money import format_money, reservation
from dialer.pace import hour_window
from dialer.states import FINAL_ATTEMPT, LIVE_ATTEMPT, AttemptState, CampaignStatus
from dialer.views import list_view

WORKER_ALIVE_MS = 15_000  # workers beat every 5 s: three missed beats and one is presumed dead


def scheduler_alive_ms(core: Core) -> int:
    """A scheduler that has not ticked for five of its intervals (at least 5 s) is presumed dead."""
    return max(5_000, round(5 * core.settings.scheduler_tick_s * 1000))


C = CampaignStatus


def duration(ms: int) -> str:
    """`7 h 12 min`, `3 min 5 s`, `12 s`."""
    s = max(0, ms // 1000)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


@dataclass
class Wait:
    kind: str
    count: int = 0
    earliest_ms: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def add(self, at_ms: int | None) -> None:
        self.count += 1
        if at_ms is not None and (self.earliest_ms is None or at_ms < self.earliest_ms):
            self.earliest_ms = at_ms

    def view(self, now_ms: int) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "earliest": to_iso(self.earliest_ms),
            "in": duration(self.earliest_ms - now_ms)
            if self.earliest_ms and self.earliest_ms > now_ms
            else None,
            **self.detail,
        }


# the reason an attempt stores while it waits -> what it waits for
REASONS = {
    "calling_hours": "calling_hours",
    "quota": "hourly_quota",
    "pace": "pace",
    "concurrency": "concurrency",
    "balance_outstanding": "balance",
    "insufficient_balance": "paused",
    "paused": "paused",
    "scheduled": "not_launched",
    "rate_limited": "rate_limited",
    "provider_auth_failed": "paused",
}


def _kind(att: CallAttempt, now_ms: int) -> str:
    if att.state in LIVE_ATTEMPT:
        return "live"
    if att.state == AttemptState.CLAIMED:
        return "dialling"
    kind = REASONS.get(att.reason or "")
    if kind:
        return kind
    if att.reason in ("recovered", "stalled", "error"):
        return "retry"
    if att.attempt > 1 and not att.extra and att.due_at > now_ms + 1000:
        return "recall"
    return "due" if att.due_at <= now_ms + 1000 else "stagger"


def _zone_of(label: str | None) -> str:
    """The first zone named in an hours_zone label (`Europe/Madrid (campaign timezone)`, `A+B`)."""
    return (label or "UTC").split(" ")[0].split("+")[0]


def explain(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Contacts by what they wait for right now, each with a count and the earliest time it can pass, and
    one sentence on top."""
    store, now = core.store, core.now()
    campaign, state = store.get_campaign(account_id, campaign_id)
    provider = store.find_provider(account_id, campaign.provider)
    waits: dict[str, Wait] = {}
    latest: dict[int, CallAttempt] = {}
    for att in store.campaign_attempts(account_id, campaign_id):
        if att.contact not in latest or att.attempt > latest[att.contact].attempt:
            latest[att.contact] = att
    for att in latest.values():
        if att.state in FINAL_ATTEMPT:
            continue
        kind = _kind(att, now)
        wait = waits.setdefault(kind, Wait(kind))
        wait.add(att.due_at if kind not in ("live", "dialling", "concurrency", "balance", "paused") else None)
        if kind == "calling_hours" and att.hours_zone:
            wait.detail.setdefault("zone", att.hours_zone)
    if state.status in (C.DRAFT, C.SCHEDULED):  # before the launch the skipped are the duplicates only
        waits.setdefault("not_launched", Wait("not_launched")).count += max(
            0, state.counters.scheduled_calls - state.counters.skipped - len(latest)
        )
    elif state.contacts_n > state.expand_cursor and state.status != C.COMPLETED:
        waits.setdefault("not_launched", Wait("not_launched")).count += state.contacts_n - state.expand_cursor
    _details(core, account_id, campaign, provider, waits, now)
    ordered = sorted(waits.values(), key=lambda w: (-w.count, w.kind))
    return {
        "campaign_id": campaign_id,
        "status": state.status.value,
        "status_reason": state.status_reason,
        "sentence": sentence(campaign, state, provider, ordered, now),
        "waits": [w.view(now) for w in ordered],
        "at": to_iso(now),
    }


def _details(
    core: Core,
    account_id: str,
    campaign: Campaign,
    provider: ProviderConfig | None,
    waits: dict[str, Wait],
    now: int,
) -> None:
    if provider is not None:
        used, live = core.store.provider_usage(account_id, provider.name, now)
        if "hourly_quota" in waits:
            waits["hourly_quota"].detail.update(
                used=used, quota=provider.hourly_quota, resets_at=to_iso(hour_window(now)[1])
            )
        if "concurrency" in waits:
            waits["concurrency"].detail.update(live=live, max_concurrent=provider.max_concurrent)
        if "balance" in waits:
            acc = core.store.get_account(account_id)
            need = reservation(provider.max_call_seconds, provider.price_per_minute)
            waits["balance"].detail.update(available=format_money(acc.available), one_call=format_money(need))
        if not provider.enabled:
            waiting = sum(w.count for k, w in waits.items() if k not in ("live",))
            waits["provider_disabled"] = Wait("provider_disabled", waiting, None, {"provider": provider.name})
    if "not_launched" in waits:
        sched = core.store.get_schedule(account_id, campaign.id)
        if sched is not None and sched.status.value == "PENDING":
            waits["not_launched"].earliest_ms = sched.start_at


def _local(ms: int, zone: str) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(zone)).strftime("%H:%M")
    except Exception:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M UTC")


def _contacts(n: int) -> str:
    return f"{n} contact{'s' if n != 1 else ''}"


def sentence(
    campaign: Campaign, state: CampaignState, provider: ProviderConfig | None, waits: list[Wait], now: int
) -> str:
    """The one line an operator reads first."""
    if state.status == C.DRAFT:
        return f"Not started: {_contacts(state.counters.scheduled)} wait for a start."
    if state.status in (C.COMPLETED, C.STOPPED, C.CANCELLED, C.FAILED):
        why = f" ({state.status_reason})" if state.status_reason else ""
        c = state.counters
        machines = f", {c.voicemail} left a voicemail" if c.voicemail else ""
        return (
            f"{state.status.value.capitalize()}{why}: {c.delivered} answered{machines}, {c.failed} failed, "
            f"{c.skipped} skipped."
        )
    if state.status == C.PAUSED:
        return f"Paused ({state.status_reason or 'by a user'}): {_contacts(state.counters.scheduled)} wait for a resume."
    blocked = [w for w in waits if w.kind == "provider_disabled"]
    if blocked:
        return f"Provider {blocked[0].detail['provider']} is disabled: {_contacts(blocked[0].count)} cannot be dialled."
    top = next((w for w in waits if w.kind not in ("live", "dialling")), None)
    live = sum(w.count for w in waits if w.kind in ("live", "dialling"))
    if top is None:
        return (
            f"Dialling: {_contacts(live)} on the line."
            if live
            else "Nothing waits: the campaign is about to complete."
        )
    when = f" (in {duration(top.earliest_ms - now)})" if top.earliest_ms and top.earliest_ms > now else ""
    n = _contacts(top.count)
    if top.kind == "calling_hours":
        zone = top.detail.get("zone") or "UTC"
        opens = _local(top.earliest_ms or now, _zone_of(zone))
        return f"{n} wait for calling hours in {_zone_of(zone)}, opening {opens} local{when}."
    if top.kind == "hourly_quota":
        d = top.detail
        return f"{n} wait for the hourly quota ({d.get('used')}/{d.get('quota')} used), which resets at {(d.get('resets_at') or '')[11:16]} UTC{when}."
    if top.kind == "concurrency":
        d = top.detail
        return f"{n} wait for a free line: {d.get('live')} of {d.get('max_concurrent')} calls are live."
    if top.kind == "balance":
        d = top.detail
        return f"{n} wait for money: {d.get('available')} available, one call reserves {d.get('one_call')}."
    if top.kind == "not_launched":
        return f"Scheduled: {n} wait for the launch at {to_iso(top.earliest_ms)}{when}."
    texts = {
        "pace": "wait for their pace slot",
        "stagger": "wait for their staggered start",
        "recall": "wait for their recall",
        "rate_limited": "wait after the carrier's rate limit",
        "retry": "wait to be tried again",
        "due": "are due and being handed to the workers",
        "paused": "are parked until the campaign resumes",
    }
    return f"{n} {texts.get(top.kind, top.kind)}{', the next' if top.earliest_ms else ''}{when}."


# --- status ---------------------------------------------------------------------------------------------------------------
def status(core: Core) -> dict[str, Any]:
    """Schedulers, workers, backlog, tick lag and running campaigns, with warnings when work stalls."""
    store, now = core.store, core.now()
    windows = {"scheduler": scheduler_alive_ms(core), "worker": WORKER_ALIVE_MS}
    procs: dict[str, list[dict[str, Any]]] = {"scheduler": [], "worker": []}
    for who, at in store.alive(now - max(windows.values())):
        kind, _, rest = who.partition("|")
        if now - at <= windows.get(kind, WORKER_ALIVE_MS):
            seen = {"id": rest, "last_seen": to_iso(at), "age_s": round((now - at) / 1000, 1)}
            procs.setdefault(kind, []).append(seen)
    tick = store.last_tick()
    tick_at = int(tick["at"]) if tick.get("at") else None
    backlog = store.backlog(now)
    queued = store.queued_messages(core.settings.queue)
    oldest = backlog.pop("oldest_due_ms")
    overdue_s = round((now - oldest) / 1000, 1) if oldest is not None and oldest < now else 0.0
    warnings = []
    if not procs["scheduler"] and (
        backlog["due_now"] or backlog["launches_due"] or backlog["live_call_checks"]
    ):
        warnings.append(
            f"due work is overdue ({overdue_s} s) and no scheduler is alive: start one (python -m scheduler)"
        )
    elif not procs["scheduler"]:
        warnings.append("no scheduler is alive: nothing due will be handed out (python -m scheduler)")
    if not procs["worker"] and (queued or backlog["claimed"]):
        warnings.append(f"{queued} messages wait and no worker is alive: start one (dramatiq actors)")
    running = [
        {"id": c["id"], "account": c["account"], "name": c["name"], "counters": c["counters"]}
        for c in _running(core)
    ]
    return {
        "at": to_iso(now),
        "schedulers": procs["scheduler"],
        "workers": procs["worker"],
        "last_tick": {
            "at": to_iso(tick_at),
            "age_s": round((now - tick_at) / 1000, 1) if tick_at else None,
            "took_ms": int(tick.get("took_ms", 0)) if tick else None,
        },
        "backlog": {**backlog, "queued_messages": queued, "oldest_overdue_s": overdue_s},
        "running_campaigns": running,
        "warnings": warnings,
        "ok": not warnings,
    }


def _running(core: Core, limit: int = 100) -> list[dict[str, Any]]:
    return list(list_view(core, None, C.RUNNING, limit, None)["result"])


def scheduler_alive(core: Core) -> bool:
    return any(
        who.startswith("scheduler|") for who, _ in core.store.alive(core.now() - scheduler_alive_ms(core))
    )


# --- doctor ---------------------------------------------------------------------------------------------------------------
def doctor(core: Core, test_providers: bool = True) -> dict[str, Any]:
    """Checks of the Redis in use, the settings and the providers, each problem with its fix."""
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str, fix: str = "") -> None:
        checks.append({"check": name, "ok": ok, "detail": detail, **({"fix": fix} if not ok else {})})

    r = core.store.r
    info = r.info()
    version = str(info.get("redis_version", "0"))
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    check("redis version", major_minor >= (6, 2), f"Redis {version}", "use Redis 6.2 or newer")
    config = _config(r, ("appendonly", "maxmemory-policy", "appendfsync"))
    if config is None:
        check(
            "redis config", True, "CONFIG is not available (managed Redis): check persistence in its console"
        )
    else:
        check("appendonly", config.get("appendonly") == "yes", f"appendonly {config.get('appendonly')}",
              "run Redis with appendonly yes: Redis is the system of record")  # fmt: skip
        check("maxmemory-policy", config.get("maxmemory-policy") == "noeviction",
              f"maxmemory-policy {config.get('maxmemory-policy')}",
              "set maxmemory-policy noeviction: an evicted key is a lost call or a lost reservation")  # fmt: skip
        fsync = config.get("appendfsync")
        check(
            "appendfsync",
            fsync == "always",
            f"appendfsync {fsync}",
            "set appendfsync always: with everysec a machine crash can lose the last second, and an attempt "
            "admitted in it could be dialled again (docs/reliability.md; measured cost in docs/benchmarks.md)",
        )
    persistence = r.info("persistence")
    for key in ("aof_last_write_status", "aof_last_bgrewrite_status", "rdb_last_bgsave_status"):
        value = persistence.get(key)
        if value is not None:
            check(key, value == "ok", f"{key} {value}", "Redis cannot write its data: check its disk and log")
    providers = _all_providers(core)
    twilio = [p for p in providers if p.kind == "twilio"]
    if twilio:
        check("public url", bool(core.settings.public_url),
              f"DIALER_PUBLIC_URL {core.settings.public_url or 'unset'}",
              "set DIALER_PUBLIC_URL to the web process's public base URL so Twilio can post outcomes "
              "(without it live calls are polled)")  # fmt: skip
        plain = [p for p in twilio if p.auth_token and not p.auth_token.startswith("fernet:")]
        check("credentials at rest", not plain,
              f"{len(plain)} provider(s) with credentials in plain text",
              "update each provider's --auth-token to encrypt them"
              + ("" if core.settings.secret_key else " (after setting DIALER_SECRET_KEY)"))  # fmt: skip
    if test_providers:
        for p in providers:
            if not p.enabled:
                continue
            try:
                test_connection(core, core.store.get_provider(p.account_id, p.name))
                check(f"provider {p.account_id}/{p.name}", True, "connection test passed")
            except Exception as exc:
                check(f"provider {p.account_id}/{p.name}", False, f"connection test failed: {exc}",
                      "check its credentials and api_base (`dialer provider test`)")  # fmt: skip
    check("scheduler", scheduler_alive(core), "a scheduler ticks" if scheduler_alive(core) else "no scheduler alive",
          "start one: python -m scheduler")  # fmt: skip
    return {"ok": all(c["ok"] for c in checks), "checks": checks}


def _config(r: Any, names: tuple[str, ...]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    try:
        for name in names:
            out.update(r.config_get(name))
    except redis.ResponseError:
        return None
    return out


def _all_providers(core: Core) -> list[ProviderConfig]:
    store = core.store
    return [store.get_provider(a, name) for a in store.account_ids() for name in store.provider_names(a)]
