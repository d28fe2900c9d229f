"""Campaign intake (DESIGN §3 step 1): parse the campaign JSON, normalise its contacts, check its message
against each of them, store it, and on request start it. The one intake behind every door (CLI, HTTP,
client, the ``submit_campaign`` message)."""

from __future__ import annotations

from typing import Any

from dialer.clock import to_iso
from dialer.context import Core
from dialer.errors import InvalidRequest, NotFound, PayloadTooLarge
from dialer.lifecycle import event, start, start_checks
from dialer.models import Campaign, CampaignRequest, Contact, TemplateRequest
from dialer.phones import InvalidNumber, normalize
from dialer.states import DELETED, CampaignStatus
from dialer.templates import MissingValue, check_xml, render, required_params
from dialer.validation import validate


def parse_request(data: Any, max_contacts: int) -> CampaignRequest:
    if isinstance(data, dict) and isinstance(data.get("contacts"), list):
        check_size(len(data["contacts"]), max_contacts)
    return validate(CampaignRequest, data)


def check_size(n: int, max_contacts: int) -> None:
    if n > max_contacts:
        raise PayloadTooLarge(
            f"contacts: {n} contacts is more than the limit of {max_contacts} (DIALER_MAX_CONTACTS)"
        )


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
        out.append(Contact.model_construct(index=i, phone=phone, data=data))  # checked just above
    return out


def group_contacts(core: Core, account_id: str, group_id: str) -> tuple[list[Contact], int]:
    """A campaign on a group dials the group's contacts as they are now (and, with `end_handle: continue`,
    the ones added later); also returns the group positions taken (the campaign's ``group_cursor``)."""
    if not core.store.owns_group(account_id, group_id):
        raise InvalidRequest(f"group_id: group not found: {group_id}")
    entries = core.store.group_contacts(account_id, group_id)
    members = [c for c in entries if c.intake == "ok"]
    return [Contact(index=i, phone=c.phone, data=c.data) for i, c in enumerate(members)], len(entries)


def check_message(
    msg: CampaignRequest | Campaign | TemplateRequest, contacts: list[Contact], refuse: bool = True
) -> None:
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


def resolve_provider(core: Core, account_id: str, name: str | None) -> str | None:
    """The named provider, or the account's only enabled one when the request names none."""
    if name:
        return name
    store = core.store
    enabled = [n for n in store.provider_names(account_id) if store.get_provider(account_id, n).enabled]
    return enabled[0] if len(enabled) == 1 else None


MESSAGE_FIELDS = ("say", "audio", "xml")


def apply_template(core: Core, account_id: str, req: CampaignRequest) -> CampaignRequest:
    """A campaign naming a stored message (``template_id``, or seed 003's ``playbook_id`` when a template has
    that id) gets it; a message given in the campaign replaces the template's, and language, voice and
    provider given in the campaign override the template's one by one."""
    name, field = (req.template_id, "template_id") if req.template_id else (req.playbook_id, "playbook_id")
    if not name:
        return req
    if not core.store.owns_template(account_id, name):
        if field == "playbook_id" and (req.say or req.audio or req.xml):
            return req  # a playbook id that is no template of ours: stored and reported only
        raise InvalidRequest(f"{field}: template not found: {name}")
    tpl = core.store.get_template(account_id, name)
    own_message = any(getattr(req, f) for f in MESSAGE_FIELDS)
    changes: dict[str, Any] = {"template_id": tpl.id}
    if not own_message:
        changes |= {f: getattr(tpl, f) for f in MESSAGE_FIELDS}
    for f in ("language", "voice", "provider"):
        if getattr(req, f) is None and getattr(tpl, f) is not None:
            changes[f] = getattr(tpl, f)
    return req.model_copy(update=changes)


def _check_next(core: Core, account_id: str, next_id: str | None) -> None:
    if not next_id:
        return
    try:
        owner = core.store.campaign_account(next_id)
        gone = core.store.campaign_state(owner, next_id).current == DELETED
    except NotFound:
        owner, gone = "", True
    if owner != account_id or gone:
        raise InvalidRequest(f"next_campaign_id: campaign not found: {next_id}")


def submit(
    core: Core, account_id: str, data: Any, start_now: bool = False, strict_numbers: bool = False
) -> dict[str, Any]:
    """Validate and store a campaign (``draft``); with ``start_now`` run the start checks first — a refused
    start stores nothing — then start it. A repeated submit with the same idempotency key answers the
    first campaign (and starts it if it is still a draft and ``start_now`` is asked). ``strict_numbers``
    (seed 003's rule): a number that cannot be dialled refuses the campaign instead of being counted in
    ``error_calls``."""
    req = parse_request(data, core.settings.max_contacts)
    store = core.store
    account = store.get_account(account_id)
    req = apply_template(core, account_id, req)
    if req.idempotency_key:
        existing = store.find_idempotent(account_id, req.idempotency_key)
        if existing:
            return _again(core, account_id, existing, start_now)
    group_cursor = 0
    if req.group_id:
        contacts, group_cursor = group_contacts(core, account_id, req.group_id)
        check_size(len(contacts), core.settings.max_contacts)
    else:
        contacts = build_contacts(req, account.default_region)
    if strict_numbers:
        for c in contacts:
            if c.intake == "invalid":
                raise InvalidRequest(f"contacts.{c.index}.phone: {c.intake_reason}")
    check_message(req, contacts)
    _check_next(core, account_id, req.next_campaign_id)
    now = core.now()
    campaign = Campaign(
        id=store.new_id(),
        account_id=account_id,
        name=req.name or f"campaign {to_iso(now)}",
        provider=resolve_provider(core, account_id, req.provider),
        launch_at=req.launch_at,
        created_at=now,
        **req.model_dump(exclude={"name", "provider", "contacts", "launch_at"}),
    )
    if start_now:
        start_checks(core, campaign, len(contacts))
    errors = sum(1 for c in contacts if c.intake == "invalid")
    counters = {
        "total": len(contacts),
        "error_calls": errors,
        "scheduled_calls": len(contacts) - errors,
        "skipped": sum(1 for c in contacts if c.intake == "duplicate"),
        "group_cursor": group_cursor,
    }
    cid = store.create_campaign(campaign, contacts, counters)
    if cid != campaign.id:  # a concurrent submit with the same idempotency key won
        return _again(core, account_id, cid, start_now)
    event(core, account_id, cid, "created", contacts=len(contacts), refused=errors)
    if start_now:
        start(core, account_id, cid, checked=True)
    return submit_summary(core, account_id, cid)


def _again(core: Core, account_id: str, campaign_id: str, start_now: bool) -> dict[str, Any]:
    if start_now and core.store.campaign_state(account_id, campaign_id).current == CampaignStatus.DRAFT:
        start(core, account_id, campaign_id)
    return submit_summary(core, account_id, campaign_id)


def submit_summary(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Seed 003's 202 body plus ``status``."""
    campaign, state = core.store.get_campaign(account_id, campaign_id)
    scheduled = campaign.launch_at is not None
    n = state.counters.scheduled_calls
    if state.status == CampaignStatus.DRAFT:
        message = "Campaign created"
    elif campaign.launch_at is not None:
        when = to_iso(campaign.launch_at) or ""
        message = f"Scheduled {n} calls for {when[8:10]}/{when[5:7]}/{when[:4]} {when[11:16]}"
    else:
        message = "Campaign started successfully"
    return {
        "success": True,
        "message": message,
        "campaign_id": campaign_id,
        "status": state.status.value,
        "scheduled": scheduled,
        "launch_at": to_iso(campaign.launch_at),
        "total_contacts": state.counters.total,
        "scheduled_calls": n,
        "error_calls": state.counters.error_calls,
    }
