"""What users see (DESIGN §8 shapes): campaign, calls, pages of campaigns, account, provider, group. One
module, shared by the CLI and the HTTP API, so both answer the same documents."""

from __future__ import annotations

import re
from typing import Any

import structlog
from pydantic import ValidationError

from dialer.clock import to_iso
from dialer.context import Core
from dialer.errors import InvalidRequest
from dialer.models import COUNTERS, CallAttempt, Template
from dialer.money import format_money
from dialer.pace import hour_window
from dialer.secrets import is_sealed
from dialer.states import FINAL_ATTEMPT

log = structlog.get_logger("dialer.views")
COUNTER_FIELDS = tuple(c for c in COUNTERS if c != "cost")  # contacts and attempts; cost is money
PAGE_TOKEN = re.compile(r"^[0-9]+:[A-Za-z0-9_.-]+\Z")


def campaign_view(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    campaign, state = core.store.get_campaign(account_id, campaign_id)
    counters: dict[str, Any] = state.counters.model_dump(include=set(COUNTER_FIELDS))
    counters = {name: counters[name] for name in COUNTER_FIELDS}
    counters["cost"] = format_money(state.counters.cost)
    return {
        "id": campaign.id,
        "account": campaign.account_id,
        "name": campaign.name,
        "status": state.status.value,
        "status_reason": state.status_reason,
        "provider": campaign.provider,
        "launch_at": to_iso(campaign.launch_at),
        "recall": campaign.recall,
        "stagger_seconds": campaign.stagger_seconds,
        "end_handle": campaign.end_handle,
        "next_campaign_id": campaign.next_campaign_id,
        "counters": counters,
        "cost": counters["cost"],
        "created_at": to_iso(state.created_at),
        "updated_at": to_iso(state.updated_at),
        "deleted_at": to_iso(state.deleted_at),
        "group_id": campaign.group_id,
        "playbook_id": campaign.playbook_id,
        "template_id": campaign.template_id,
        "metadata": campaign.metadata,
    }


def list_view(
    core: Core, account_id: str | None, status: str | None, limit: int, page_token: str | None
) -> dict[str, Any]:
    """Newest first, deleted ones hidden; ``next_page_token`` continues after the last item (VoIPbin)."""
    if page_token is not None and not PAGE_TOKEN.match(page_token):
        raise InvalidRequest(f"page_token: not a token this service gave: {page_token!r}")
    store = core.store
    result: list[dict[str, Any]] = []
    token = page_token
    while len(result) < limit:
        batch = store.list_campaigns(account_id, token, max(limit * 2, 50))
        if not batch:
            token = None
            break
        for cid, score in batch:
            token = f"{score}:{cid}"
            owner = account_id or store.campaign_account(cid)
            state = store.campaign_state(owner, cid)
            if state.deleted_at or (status and state.status.value != status):
                continue
            try:
                view = campaign_view(core, owner, cid)
            except ValidationError:  # one unreadable campaign does not hide all the others
                log.error("campaign_unreadable", campaign_id=cid, account_id=owner)
                continue
            result.append(view)
            if len(result) == limit:
                break
    return {"result": result, "next_page_token": token if len(result) == limit else None}


def attempt_row(att: CallAttempt) -> dict[str, Any]:
    final = att.state in FINAL_ATTEMPT
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
        "hours_zone": att.hours_zone,
    }


def calls_view(core: Core, account_id: str, campaign_id: str) -> list[dict[str, Any]]:
    core.store.get_campaign(account_id, campaign_id)
    rows = [attempt_row(a) for a in core.store.campaign_attempts(account_id, campaign_id)]
    return sorted(rows, key=lambda r: (r["contact"], r["attempt"]))


def calls_page(
    core: Core, account_id: str, campaign_id: str, limit: int, page_token: str | None
) -> dict[str, Any]:
    """Attempts in (contact, attempt) order after the token (the last row's order score)."""
    if page_token is not None and not page_token.isdigit():
        raise InvalidRequest(f"page_token: not a token this service gave: {page_token!r}")
    core.store.get_campaign(account_id, campaign_id)
    after = int(page_token) if page_token is not None else -1
    atts, last = core.store.attempts_after(account_id, campaign_id, after, limit)
    more = len(atts) == limit and last is not None
    return {"result": [attempt_row(a) for a in atts], "next_page_token": str(last) if more else None}


def account_view(core: Core, account_id: str) -> dict[str, Any]:
    acc = core.store.get_account(account_id)
    return {
        "id": acc.id,
        "name": acc.name,
        "balance": format_money(acc.balance),
        "reserved": format_money(acc.reserved),
        "available": format_money(acc.available),
        "default_region": acc.default_region,
    }


def provider_view(core: Core, account_id: str, name: str) -> dict[str, Any]:
    """Limits, quota used this hour, live calls; never a secret (only whether one is stored, and sealed)."""
    cfg = core.store.get_provider(account_id, name)
    now = core.now()
    used, live = core.store.provider_usage(account_id, name, now)
    return {
        "account": account_id,
        "name": name,
        "kind": cfg.kind,
        "enabled": cfg.enabled,
        "from": cfg.from_numbers,
        "hourly_quota": cfg.hourly_quota,
        "cps": cfg.calls_per_second,
        "max_concurrent": cfg.max_concurrent,
        "price_per_minute": format_money(cfg.price_per_minute),
        "max_call_seconds": cfg.max_call_seconds,
        "quota_used": used,
        "quota_remaining": (max(0, cfg.hourly_quota - used) if cfg.hourly_quota else None),
        "quota_resets_at": to_iso(hour_window(now)[1]),
        "live_calls": live,
        "account_sid": cfg.account_sid,
        "api_base": cfg.api_base,
        "credentials": ("encrypted" if is_sealed(cfg.auth_token) else "plain text")
        if cfg.auth_token
        else None,
        "sim": cfg.sim if cfg.kind == "simulator" else None,
    }


def template_view(tpl: Template) -> dict[str, Any]:
    return {
        **tpl.model_dump(exclude={"account_id", "created_at"}),
        "account": tpl.account_id,
        "created_at": to_iso(tpl.created_at),
    }


def group_view(core: Core, account_id: str, group_id: str, with_contacts: bool = False) -> dict[str, Any]:
    raw = core.store.get_group(account_id, group_id)
    out: dict[str, Any] = {
        "id": group_id,
        "account": account_id,
        "name": raw["name"],
        "size": core.store.group_size(account_id, group_id),
        "created_at": to_iso(int(raw["created_at"])),
        "campaigns": core.store.group_subscribers(account_id, group_id),
    }
    if with_contacts:
        out["contacts"] = [
            {"phone": c.phone, **c.data}
            for c in core.store.group_contacts(account_id, group_id)
            if c.intake == "ok"
        ]
    return out
