"""Campaign intake, start checks and read views (DESIGN §3 steps 1, §8 shapes, §9 errors)."""

from __future__ import annotations

import re
from typing import Any

from dialer import keys
from dialer.clock import Clock, from_datetime, to_iso
from dialer.errors import (
    ConnectionFailed,
    DialerError,
    InsufficientBalance,
    InvalidRequest,
    InvalidState,
    NoGroupOrProvider,
    NotFound,
    QuotaExceeded,
)
from dialer.models import (
    CallAttempt,
    Campaign,
    CampaignRequest,
    CampaignSchedule,
    Contact,
    ProviderConfig,
)
from dialer.money import format_money, reservation
from dialer.phones import InvalidNumber, normalize
from dialer.providers import ProviderFactory
from dialer.store import Store
from dialer.store.redis_store import COUNTERS
from dialer.templates import MissingValue, check_xml, render, required_params
from dialer.validation import validate

TERMINAL = frozenset({"completed", "stopped", "cancelled", "failed"})


def parse_request(data: Any) -> CampaignRequest:
    return validate(CampaignRequest, data)


def build_contacts(req: CampaignRequest, default_region: str | None) -> list[Contact]:
    """Normalise numbers: an invalid one is an intake error (counted, the rest proceeds); a number already
    in the campaign is a duplicate (skipped: a campaign dials each E.164 once)."""
    out: list[Contact] = []
    seen: set[str] = set()
    for i, c in enumerate(req.contacts or []):
        data = c.model_dump(exclude_none=True, exclude_defaults=True, exclude={"phone"})
        try:
            phone = normalize(c.phone, default_region)
        except InvalidNumber as exc:
            out.append(Contact(index=i, phone=c.phone, data=data, intake="invalid", intake_reason=str(exc)))
            continue
        if phone in seen:
            out.append(
                Contact(index=i, phone=phone, data=data, intake="duplicate", intake_reason="duplicate")
            )
            continue
        seen.add(phone)
        out.append(Contact(index=i, phone=phone, data=data))
    return out


def group_contacts(store: Store, account_id: str, req: CampaignRequest) -> tuple[list[Contact], int]:
    """A campaign on a group dials the group's contacts as they are now (and, with `end_handle: continue`,
    the ones added later); also returns the group positions taken (the campaign's ``group_cursor``)."""
    gid = req.group_id or ""
    try:
        owner = store.group_account(gid)
    except NotFound:
        owner = None
    if owner != account_id:
        raise InvalidRequest(f"group_id: group not found: {gid}")
    entries = store.group_contacts(account_id, gid)
    members = [c for c in entries if c.intake == "ok"]
    return [Contact(index=i, phone=c.phone, data=c.data) for i, c in enumerate(members)], len(entries)


def schedule_expansion(store: Store, campaign: Campaign, now_ms: int) -> None:
    """Have the scheduler run start_campaign again: it expands from its cursor (new contacts only),
    staggered from now."""
    _schedule(store, campaign, now_ms, base_cursor=store.expand_cursor(campaign.account_id, campaign.id))


def check_message(msg: CampaignRequest | Campaign, contacts: list[Contact], refuse: bool = True) -> None:
    """The message renders for every contact. At intake a missing value refuses the campaign, naming the
    contact; for contacts added later (``refuse=False``) that contact becomes an intake error instead.

    WhatsApp-seed style: a `say` with ``{{1}}``..``{{N}}`` needs exactly N ``params`` per contact.
    """
    if msg.xml:
        try:
            check_xml(msg.xml)
        except ValueError as exc:
            raise InvalidRequest(f"xml: {exc}") from None
    if not msg.say:
        return
    n_params = required_params(msg.say)
    for c in contacts:
        if c.intake != "ok":
            continue
        problem = None
        if n_params and len(c.data.get("params") or []) < n_params:
            problem = f"contacts.{c.index}.params: each client must have params for all template variables"
        else:
            try:
                render(msg.say, {**c.data, "phone": c.phone})
            except MissingValue as exc:
                problem = f"Contact {c.index}: missing value for {exc.placeholder}"
        if problem and refuse:
            raise InvalidRequest(problem)
        if problem:
            c.intake, c.intake_reason = "invalid", problem


def resolve_provider(store: Store, account_id: str, name: str | None) -> str | None:
    """The named provider, or the account's only enabled one when the request names none."""
    if name:
        return name
    enabled = [n for n in store.provider_names(account_id) if store.get_provider(account_id, n).enabled]
    return enabled[0] if len(enabled) == 1 else None


def submit(
    store: Store, clock: Clock, providers: ProviderFactory, account_id: str, data: Any, start: bool = False
) -> dict[str, Any]:
    """Validate and store a campaign (``draft``); with ``start`` run the start checks too."""
    req = parse_request(data)
    account = store.get_account(account_id)
    group_cursor = 0
    if req.group_id:
        contacts, group_cursor = group_contacts(store, account_id, req)
    else:
        contacts = build_contacts(req, account.default_region)
    check_message(req, contacts)
    if req.next_campaign_id and (
        store.r.hget(keys.CAMPAIGN_INDEX, req.next_campaign_id) != account_id
        or store.campaign_state(account_id, req.next_campaign_id) == "deleted"
    ):
        raise InvalidRequest(f"next_campaign_id: campaign not found: {req.next_campaign_id}")
    now = clock.now_ms()
    launch_at = from_datetime(req.launch_at) if req.launch_at else None
    campaign = Campaign(
        id=store.new_campaign_id(),
        account_id=account_id,
        name=req.name or f"campaign {to_iso(now)}",
        provider=resolve_provider(store, account_id, req.provider),
        launch_at=launch_at,
        created_at=now,
        **req.model_dump(exclude={"name", "provider", "contacts", "launch_at"}),
    )
    errors = sum(1 for c in contacts if c.intake == "invalid")
    counters = {
        "total": len(contacts),
        "error_calls": errors,
        "scheduled_calls": len(contacts) - errors,
        "skipped": sum(1 for c in contacts if c.intake == "duplicate"),
        "group_cursor": group_cursor,
    }
    cid = store.create_campaign(campaign, contacts, counters)
    if cid != campaign.id:  # a repeated submit with the same idempotency key
        return submit_summary(store, account_id, cid)
    if start:
        start_campaign(store, clock, providers, account_id, cid)
    return submit_summary(store, account_id, cid)


def submit_summary(store: Store, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Seed 003's 202 body plus ``status``."""
    campaign, live = store.get_campaign(account_id, campaign_id)
    scheduled = campaign.launch_at is not None
    n = int(live.get("scheduled_calls", 0))
    if live["status"] == "draft":
        message = "Campaign created"
    elif scheduled and campaign.launch_at is not None:
        when = to_iso(campaign.launch_at) or ""
        message = f"Scheduled {n} calls for {when[8:10]}/{when[5:7]}/{when[:4]} {when[11:16]}"
    else:
        message = "Campaign started successfully"
    return {
        "success": True,
        "message": message,
        "campaign_id": campaign_id,
        "status": live["status"],
        "scheduled": scheduled,
        "launch_at": to_iso(campaign.launch_at),
        "total_contacts": int(live.get("total", 0)),
        "scheduled_calls": n,
        "error_calls": int(live.get("error_calls", 0)),
    }


# --- start ---------------------------------------------------------------------------------------------------
def start_checks(
    store: Store, clock: Clock, providers: ProviderFactory, campaign: Campaign, live: dict[str, str]
) -> ProviderConfig:
    """Seed 000's checks in order: balance, group+provider, hourly quota (warning), connection test."""
    account = store.get_account(campaign.account_id)
    provider = store.find_provider(campaign.account_id, campaign.provider)
    if provider is not None:
        if account.available < reservation(provider.max_call_seconds, provider.price_per_minute):
            raise InsufficientBalance()
    elif account.available <= 0:
        raise InsufficientBalance()
    has_contacts = int(live.get("contacts_n", 0)) > 0 or bool(campaign.group_id)
    if not has_contacts or provider is None or not provider.enabled or not provider.from_numbers:
        raise NoGroupOrProvider()
    if int(live.get("contacts_n", 0)) == 0 and campaign.end_handle == "stop":
        raise InvalidRequest("No contacts found")  # an empty group (seed 004)
    now = clock.now_ms()
    launch = campaign.launch_at or now
    if provider.hourly_quota and keys.hour_start(launch) == keys.hour_start(now):
        used, _ = store.provider_usage(campaign.account_id, provider.name, now)
        if used >= provider.hourly_quota:
            raise QuotaExceeded()
    try:
        providers.get(provider).test_connection()
    except ConnectionFailed:
        raise
    except Exception:
        raise ConnectionFailed() from None
    return provider


def start_campaign(
    store: Store, clock: Clock, providers: ProviderFactory, account_id: str, campaign_id: str
) -> dict[str, Any]:
    """Start a draft campaign: checks, then a PENDING CampaignSchedule at launch time (seed 004 body)."""
    campaign, live = store.get_campaign(account_id, campaign_id)
    status = store.campaign_state(account_id, campaign_id)
    now = clock.now_ms()
    if status == "scheduled":  # idempotent: the same schedule
        sched = store.get_schedule(account_id, campaign_id)
        if sched is None:
            sched = _schedule(store, campaign, campaign.launch_at or now)
        return _start_body(campaign, sched, now)
    if status == "paused":  # start on a paused campaign resumes it where it stopped
        from dialer.lifecycle import resume

        return resume(store, clock, account_id, campaign_id)
    if status != "draft":
        raise InvalidState(f"Campaign is not running (current state: {status})")
    if campaign.launch_at is not None and campaign.launch_at < now - 1000:
        raise InvalidRequest("Scheduled time is in the past")
    start_checks(store, clock, providers, campaign, live)
    ok, before = store.transition(account_id, campaign_id, ["draft"], "scheduled", "", now)
    if not ok and before == "scheduled":  # a concurrent start won: the same answer
        return start_campaign(store, clock, providers, account_id, campaign_id)
    if not ok:
        raise InvalidState(f"Campaign is not running (current state: {before})")
    sched = _schedule(store, campaign, campaign.launch_at or now)
    return _start_body(campaign, sched, now)


def _schedule(store: Store, campaign: Campaign, start_at: int, base_cursor: int = 0) -> CampaignSchedule:
    sched = CampaignSchedule(
        base_cursor=base_cursor,
        account_id=campaign.account_id,
        campaign_id=campaign.id,
        group_id=campaign.group_id,
        provider=campaign.provider,
        say=campaign.say,
        audio=campaign.audio,
        xml=campaign.xml,
        start_at=start_at,
    )
    store.put_schedule(sched)
    return sched


def _start_body(campaign: Campaign, sched: CampaignSchedule, now: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": True,
        "task_id": f"{campaign.id}@{sched.start_at}",
        "campaign_id": campaign.id,
        "status": "scheduled",
    }
    if sched.start_at > now + 1000:
        when = to_iso(sched.start_at) or ""
        body["message"] = f"Campaign scheduled for {when[:10]} {when[11:19]} UTC"
        body["scheduled_time"] = when
    else:
        body["message"] = "Campaign execution started immediately"
    return body


def start_next(
    store: Store, clock: Clock, campaign: Campaign, providers: ProviderFactory | None = None
) -> None:
    """`next_campaign_id`: start the chained campaign when this one completes, once — the flag is set
    after the start (a crash in between re-runs an idempotent start; a re-executed campaign completing
    again does not start it twice)."""
    import structlog

    nxt = campaign.next_campaign_id
    if not nxt or store.next_fired(campaign.account_id, campaign.id):
        return
    log = structlog.get_logger("dialer.campaigns").bind(campaign_id=campaign.id, next_campaign_id=nxt)
    try:
        start_campaign(store, clock, providers or ProviderFactory(store.r, clock), campaign.account_id, nxt)
        log.info("next_campaign_started")
    except DialerError as exc:
        log.warning("next_campaign_not_started", error=exc.message)
    store.mark_next_fired(campaign.account_id, campaign.id, clock.now_ms())


# --- views ------------------------------------------------------------------------------------------------------
COUNTER_FIELDS = tuple(c for c in COUNTERS if c != "cost")  # contacts and attempts; cost is money


def campaign_view(store: Store, account_id: str, campaign_id: str) -> dict[str, Any]:
    campaign, live = store.get_campaign(account_id, campaign_id)
    counters: dict[str, Any] = {name: int(live.get(name, 0)) for name in COUNTER_FIELDS}
    counters["cost"] = format_money(int(live.get("cost", 0)))
    return {
        "id": campaign.id,
        "account": campaign.account_id,
        "name": campaign.name,
        "status": live["status"],
        "status_reason": live.get("status_reason") or None,
        "provider": campaign.provider,
        "launch_at": to_iso(campaign.launch_at),
        "recall": campaign.recall,
        "stagger_seconds": campaign.stagger_seconds,
        "end_handle": campaign.end_handle,
        "next_campaign_id": campaign.next_campaign_id,
        "counters": counters,
        "cost": counters["cost"],
        "created_at": to_iso(int(live.get("created_at", 0))),
        "updated_at": to_iso(int(live.get("updated_at", 0))),
        "deleted_at": to_iso(int(live["deleted_at"])) if live.get("deleted_at") else None,
        "group_id": campaign.group_id,
        "playbook_id": campaign.playbook_id,
    }


def list_view(
    store: Store, account_id: str | None, status: str | None, limit: int, page_token: str | None
) -> dict[str, Any]:
    """Newest first, deleted ones hidden; ``next_page_token`` continues after the last item (VoIPbin)."""
    if page_token is not None and not re.match(r"^\d+:[A-Za-z0-9_.-]+$", page_token):
        raise InvalidRequest(f"page_token: not a token this service gave: {page_token!r}")
    result: list[dict[str, Any]] = []
    token = page_token
    while len(result) < limit:
        batch = store.list_campaigns(account_id, token, max(limit * 2, 50))
        if not batch:
            token = None
            break
        for cid, score in batch:
            token = f"{score}:{cid}"
            view = campaign_view(store, account_id or store.campaign_account(cid), cid)
            if view["deleted_at"] or (status and view["status"] != status):
                continue
            result.append(view)
            if len(result) == limit:
                break
    return {"result": result, "next_page_token": token if len(result) == limit else None}


def attempt_row(att: CallAttempt) -> dict[str, Any]:
    final = att.state in ("completed", "busy", "no-answer", "failed", "canceled", "skipped")
    return {
        "key": att.key,
        "contact": att.contact,
        "phone": att.phone,
        "attempt": att.attempt,
        "state": att.state.value,
        "reason": att.reason or None,
        "due_at": to_iso(att.due_at),
        "placed_at": to_iso(att.placed_at),
        "ended_at": to_iso(att.ended_at),
        "sid": att.sid,
        "outcome": att.state.value if final else None,
        "answered_by": att.answered_by,
        "duration_s": att.duration_s,
        "cost": format_money(att.cost),
    }


def calls_view(store: Store, account_id: str, campaign_id: str) -> list[dict[str, Any]]:
    store.get_campaign(account_id, campaign_id)
    rows = [attempt_row(a) for a in store.campaign_attempts(account_id, campaign_id)]
    return sorted(rows, key=lambda r: (r["contact"], r["attempt"]))
