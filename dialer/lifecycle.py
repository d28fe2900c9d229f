"""The campaign state machine (DESIGN §4): every command, ``start`` included, goes through the one
transition table (``dialer.states.TRANSITIONS``), applied by a Lua script so that check and write are one
step — two racing commands cannot both succeed, and a refused one names the current state and changes
nothing. Launch scheduling and chained starts live here too.
"""

from __future__ import annotations

from typing import Any

import structlog

from dialer.clock import to_iso
from dialer.context import Core
from dialer.errors import (
    ConnectionFailed,
    CredentialsUnreadable,
    DialerError,
    InsufficientBalance,
    InvalidRequest,
    InvalidState,
    NoGroupOrProvider,
    NotFound,
    QuotaExceeded,
)
from dialer.keys import parse_attempt_key
from dialer.models import CallAttempt, Campaign, CampaignSchedule, ProviderConfig, check_name
from dialer.money import reservation
from dialer.outcomes import answered_by_human, retryable
from dialer.pace import hour_start, stagger_ms
from dialer.states import FINAL_ATTEMPT, TRANSITIONS, AttemptState, CampaignStatus

log = structlog.get_logger("dialer.lifecycle")

NOT_UPDATABLE = "only scheduled campaigns can be updated (name and SendAt fields only)"
PAST_LAUNCH = "Scheduled time is in the past"
ALL_PROCESSED = "All contacts have already been processed"
PAST_TOLERANCE_MS = 1000
REOPEN_CHUNK = 1000


def refused(current: str) -> InvalidState:
    return InvalidState(f"Campaign is not running (current state: {current})")


def allowed(command: str, current: str) -> CampaignStatus:
    """The next state of ``command`` from ``current``, or raise the refusal naming the current state."""
    nxt = TRANSITIONS[command].get(current)  # type: ignore[call-overload]
    if nxt is None:
        raise refused(current)
    return nxt


def _result(campaign_id: str, status: str, message: str) -> dict[str, Any]:
    return {"success": True, "message": message, "campaign_id": campaign_id, "status": status}


def event(core: Core, account_id: str, campaign_id: str, what: str, by: str = "user", **fields: Any) -> None:
    """A line of the campaign's audit trail: what happened, who did it (user, dialer, chain), why."""
    core.store.add_event(account_id, campaign_id, what, core.now(), by=by, **fields)


def change(core: Core, account_id: str, campaign_id: str, command: str, reason: str = "") -> tuple[str, str]:
    """Apply a command by the table; returns (status before, status after) or raises the refusal."""
    allowed(command, core.store.campaign_state(account_id, campaign_id).current)
    ok, before, after = core.store.change_status(account_id, campaign_id, command, reason, core.now())
    if not ok:
        raise refused(before)
    return before, after


# --- start ------------------------------------------------------------------------------------------------
def start_checks(core: Core, campaign: Campaign, contacts_n: int) -> ProviderConfig:
    """Seed 000's checks in order: balance, group+provider, hourly quota (warning), connection test (seed
    004's "No contacts found" and "Scheduled time is in the past" just before the connection test). They
    run on a campaign not stored yet too (a refused ``submit --start`` stores nothing)."""
    store, now = core.store, core.now()
    account = store.get_account(campaign.account_id)
    provider = store.find_provider(campaign.account_id, campaign.provider)
    if provider is not None:
        if account.available < reservation(provider.max_call_seconds, provider.price_per_minute):
            raise InsufficientBalance()
    elif account.available <= 0:
        raise InsufficientBalance()
    has_contacts = contacts_n > 0 or bool(campaign.group_id)
    if not has_contacts or provider is None or not provider.enabled or not provider.from_numbers:
        raise NoGroupOrProvider()
    launch = campaign.launch_at or now
    if provider.hourly_quota and hour_start(launch) == hour_start(now):
        used, _ = store.provider_usage(campaign.account_id, provider.name, now)
        if used >= provider.hourly_quota:
            raise QuotaExceeded()
    # seed 004's refusals, after seed 000's own checks so that those answer in its order
    if contacts_n == 0 and campaign.end_handle == "stop":
        raise InvalidRequest("No contacts found")  # an empty group
    if campaign.launch_at is not None and campaign.launch_at < now - PAST_TOLERANCE_MS:
        raise InvalidRequest(PAST_LAUNCH)
    test_connection(core, provider)
    return provider


def test_connection(core: Core, provider: ProviderConfig) -> None:
    """The provider's connection test; any failure is the seed's ConnectionFailed."""
    try:
        core.providers.get(provider).test_connection()
    except (ConnectionFailed, CredentialsUnreadable):  # the latter says what to fix: the key
        raise
    except Exception as exc:  # the seed's one answer; why, for the operator, in the log
        log.warning(
            "connection_test_failed", provider=provider.name, error=getattr(exc, "message", repr(exc))
        )
        raise ConnectionFailed() from None


def start(
    core: Core, account_id: str, campaign_id: str, *, checked: bool = False, by: str = "user"
) -> dict[str, Any]:
    """Start a campaign (seed 004 body): from draft the checks, then draft -> scheduled and the PENDING
    schedule in one step; a scheduled one answers its schedule again; a paused one resumes.
    ``checked``: the caller has just run the start checks (submit)."""
    campaign, state = core.store.get_campaign(account_id, campaign_id)
    if state.current == CampaignStatus.PAUSED:
        return _resumed_body(core, campaign, resume(core, account_id, campaign_id))
    allowed("start", state.current)
    if state.current == CampaignStatus.DRAFT and not checked:
        start_checks(core, campaign, state.contacts_n)
    now = core.now()
    result, sched = core.store.start(schedule_for(campaign, campaign.launch_at or now), now)
    if not isinstance(sched, CampaignSchedule):
        raise refused(sched)
    if result == "ok":
        log.info("campaign_started", campaign_id=campaign_id, start_at=sched.start_at)
        event(core, account_id, campaign_id, "started", by=by, start_at=to_iso(sched.start_at))
    return _start_body(campaign, sched, now)


def schedule_for(campaign: Campaign, start_at: int, base_cursor: int = 0) -> CampaignSchedule:
    return CampaignSchedule(
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


def schedule_expansion(core: Core, campaign: Campaign, expand_cursor: int) -> None:
    """Have the scheduler launch the campaign again: it expands from its cursor (contacts added to its
    group later), staggered from now."""
    core.store.put_schedule(schedule_for(campaign, core.now(), base_cursor=expand_cursor))


def _start_body(campaign: Campaign, sched: CampaignSchedule, now: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": True,
        "task_id": f"{campaign.id}@{sched.start_at}",
        "campaign_id": campaign.id,
        "status": CampaignStatus.SCHEDULED.value,
    }
    if sched.start_at > now + PAST_TOLERANCE_MS:
        when = to_iso(sched.start_at) or ""
        body["message"] = f"Campaign scheduled for {when[:10]} {when[11:19]} UTC"
        body["scheduled_time"] = when
    else:
        body["message"] = "Campaign execution started immediately"
    return body


def _resumed_body(core: Core, campaign: Campaign, resumed: dict[str, Any]) -> dict[str, Any]:
    """A start that resumed a paused campaign answers like any start (seed 004: its clients read
    ``task_id``): the task is the campaign's launch, and a launch still ahead is its ``scheduled_time``."""
    sched = core.store.get_schedule(campaign.account_id, campaign.id)
    launch = sched.start_at if sched else core.now()
    body = {**resumed, "task_id": f"{campaign.id}@{launch}"}
    if resumed["status"] == CampaignStatus.SCHEDULED and launch > core.now() + PAST_TOLERANCE_MS:
        body["scheduled_time"] = to_iso(launch)
    return body


def start_next(core: Core, campaign: Campaign) -> None:
    """`next_campaign_id`: start the chained campaign when this one completes, once — the flag is set
    after the start (a crash in between re-runs an idempotent start; a re-executed campaign completing
    again does not start it twice)."""
    nxt = campaign.next_campaign_id
    if not nxt or core.store.campaign_state(campaign.account_id, campaign.id).next_fired:
        return
    bound = log.bind(campaign_id=campaign.id, next_campaign_id=nxt)
    try:
        start(core, campaign.account_id, nxt, by="chain")
        bound.info("next_campaign_started")
        event(core, campaign.account_id, campaign.id, "chained", by="dialer", next_campaign_id=nxt)
    except (DialerError, NotFound) as exc:
        bound.warning("next_campaign_not_started", error=str(exc))
        event(
            core,
            campaign.account_id,
            campaign.id,
            "chain_refused",
            by="dialer",
            next_campaign_id=nxt,
            reason=str(exc),
        )
    core.store.mark_next_fired(campaign.account_id, campaign.id, core.now())


# --- pause, resume, stop, cancel, fail ------------------------------------------------------------------------
def pause(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """No new dial starts once this returns (admission reads the same status key); live calls finish."""
    change(core, account_id, campaign_id, "pause", "paused")
    event(core, account_id, campaign_id, "paused")
    return _result(campaign_id, CampaignStatus.PAUSED, "Campaign paused")


def resume(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Paused -> running where it stopped (re-running the balance check); a campaign paused before its
    launch (never expanded) goes back to scheduled. A campaign whose last call ended while it was
    paused completes here (and starts its next campaign)."""
    campaign, state = core.store.get_campaign(account_id, campaign_id)
    allowed("resume", state.current)
    if campaign.provider:
        provider = core.store.find_provider(account_id, campaign.provider)
        need = reservation(provider.max_call_seconds, provider.price_per_minute) if provider else 1
        if core.store.get_account(account_id).available < need:
            raise InsufficientBalance()
    _, after = change(core, account_id, campaign_id, "resume" if state.launched else "resume-unlaunched")
    event(core, account_id, campaign_id, "resumed")
    if after == CampaignStatus.COMPLETED:
        event(core, account_id, campaign_id, "completed", by="dialer")
        start_next(core, campaign)
    return _result(campaign_id, after, "Campaign completed" if after == "completed" else "Campaign resumed")


def stop(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """No new dials; live calls finish (``stopping``), then ``stopped``; waiting attempts end canceled."""
    status = halt(core, account_id, campaign_id, "stop", "", "campaign stopped")
    return _result(campaign_id, status, "Campaign stopping" if status == "stopping" else "Campaign stopped")


def cancel(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Cancelled at once; every attempt not yet dialled ends canceled."""
    halt(core, account_id, campaign_id, "cancel", "", "campaign cancelled")
    return _result(campaign_id, CampaignStatus.CANCELLED, "Campaign cancelled")


def halt(
    core: Core, account_id: str, campaign_id: str, command: str, reason: str, ended_why: str, by: str = "user"
) -> str:
    """Stop, cancel or fail: the state change, then every attempt not yet dialled ends canceled now (not
    when it comes due hours later); returns the status after."""
    _, after = change(core, account_id, campaign_id, command, reason)
    event(core, account_id, campaign_id, after, by=by, reason=reason or None)
    campaign, _ = core.store.get_campaign(account_id, campaign_id)
    status = core.store.cancel_pending(
        account_id, campaign_id, campaign.provider or "-", ended_why, core.now()
    )
    if status != after:
        event(core, account_id, campaign_id, status, by="dialer")
    return status


# --- update, delete, re-execute, redial ------------------------------------------------------------------
def require_updatable(core: Core, account_id: str, campaign_id: str) -> None:
    """Only a draft or scheduled campaign changes (seed 001's message otherwise)."""
    if core.store.campaign_state(account_id, campaign_id).current not in TRANSITIONS["update"]:
        raise InvalidState(NOT_UPDATABLE)


def update(
    core: Core,
    account_id: str,
    campaign_id: str,
    name: str | None,
    launch_at: int | None,
    metadata: dict[str, Any] | None = None,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Name and launch time (and the free-form metadata; the message, checked by the caller against the
    contacts), only while draft or scheduled (seed 001 wording when refused). The state is checked before
    the values, so a campaign that cannot change answers that whatever was sent."""
    now = core.now()
    require_updatable(core, account_id, campaign_id)
    if launch_at is not None and launch_at < now - PAST_TOLERANCE_MS:
        raise InvalidRequest(PAST_LAUNCH)
    if name is not None:
        name = check_name(name)
    changes = {
        k: v for k, v in (("name", name), ("launch_at", launch_at), ("metadata", metadata)) if v is not None
    } | (message or {})
    for _ in range(50):  # optimistic: the write applies only to the version read (a concurrent one retries)
        campaign, state = core.store.get_campaign(account_id, campaign_id)
        if state.current not in TRANSITIONS["update"]:
            raise InvalidState(NOT_UPDATABLE)
        changed = campaign.model_copy(update=changes)
        sched = core.store.get_schedule(account_id, campaign_id)
        if sched is not None:  # the record the scheduler launches carries the launch time and the message
            sched = sched.model_copy(
                update={"start_at": launch_at or sched.start_at}
                | {k: v for k, v in (message or {}).items() if k in ("say", "audio", "xml")}
            )
        ok, why = core.store.update_campaign(changed, sched, now, state.doc_version)
        if ok:
            break
        if why != "changed":
            raise InvalidState(NOT_UPDATABLE)
    else:
        raise InvalidState("the campaign is being changed by someone else; try again")
    event(core, account_id, campaign_id, "updated", name=name, launch_at=to_iso(launch_at))
    return {
        "success": True,
        "message": "Campaign updated",
        "campaign_id": campaign_id,
        "status": state.status.value,
        "name": changed.name,
        "launch_at": to_iso(changed.launch_at),
    }


def delete(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Soft delete: kept for reports (`campaign show` still answers), hidden from lists."""
    now = core.now()
    allowed("delete", core.store.campaign_state(account_id, campaign_id).current)
    ok, before, _ = core.store.change_status(account_id, campaign_id, "delete", "", now, deleted_at=now)
    if not ok:
        raise refused(before)
    event(core, account_id, campaign_id, "deleted")
    return {"success": True, "message": "Campaign deleted", "campaign_id": campaign_id, "status": before}


def latest_attempts(core: Core, account_id: str, campaign_id: str) -> dict[int, CallAttempt]:
    latest: dict[int, CallAttempt] = {}
    for att in core.store.campaign_attempts(account_id, campaign_id):
        if att.contact not in latest or att.attempt > latest[att.contact].attempt:
            latest[att.contact] = att
    return latest


def _leaves(att: CallAttempt) -> str:
    """The counter a contact is in after this final attempt."""
    if att.state in (AttemptState.SKIPPED, AttemptState.VOICEMAIL):
        return att.state.value
    return "delivered" if answered_by_human(att.state, att.answered_by) else "failed"


def reexecutable(att: CallAttempt) -> bool:
    """Last outcome no-answer, busy, retryable failure or machine; never a human answer, a permanent
    error, DNC or a skip."""
    if att.state not in FINAL_ATTEMPT or att.state in (AttemptState.SKIPPED, AttemptState.CANCELED):
        return False
    return retryable(att.state, att.answered_by, recall_on_machine=True, permanent=att.permanent)


def re_execute(core: Core, account_id: str, campaign_id: str) -> dict[str, Any]:
    """One new attempt for each contact whose last outcome can be retried; the campaign runs again."""
    campaign, state = core.store.get_campaign(account_id, campaign_id)
    allowed("re-execute", state.current)
    provider = core.store.find_provider(account_id, campaign.provider)
    gap = stagger_ms(campaign.stagger_seconds, provider.calls_per_second if provider else None)
    now = core.now()
    latest = latest_attempts(core, account_id, campaign_id)
    chosen = [a for _, a in sorted(latest.items()) if reexecutable(a)]
    if not chosen:
        raise DialerError(ALL_PROCESSED)
    attempts = [
        (a.following(now + i * gap, now + i * gap, extra=True), "failed") for i, a in enumerate(chosen)
    ]
    created = 0
    for first in range(0, len(attempts), REOPEN_CHUNK):  # chunks: never one long Lua call
        command = "re-execute" if first == 0 else "continue"  # later chunks: while it is still ours to run
        chunk = attempts[first : first + REOPEN_CHUNK]
        ok, result = core.store.reopen(account_id, campaign_id, command, chunk, now)
        if not ok and first == 0:
            raise refused(str(result))
        if not ok:  # stopped or cancelled meanwhile
            break
        created += int(result)
    event(core, account_id, campaign_id, "re-executed", contacts=created)
    return {
        "success": True,
        "message": f"Campaign re-executed: {created} contacts to call again",
        "campaign_id": campaign_id,
        "status": CampaignStatus.RUNNING.value,
        "attempts": [a.key for a, _ in attempts],
    }


def attempt_campaign(key: str) -> tuple[str, int]:
    """(campaign id, contact index) of an attempt key; NotFound when it is not one."""
    try:
        campaign_id, contact, _ = parse_attempt_key(key)
    except ValueError:
        raise NotFound(f"attempt not found: {key}") from None
    return campaign_id, contact


def redial(core: Core, account_id: str, key: str) -> dict[str, Any]:
    """Seed "resendMsg": one more attempt for the contact of attempt KEY, outside the recall policy."""
    campaign_id, contact = attempt_campaign(key)
    allowed("redial", core.store.campaign_state(account_id, campaign_id).current)
    if core.store.get_attempt(account_id, key) is None:
        raise NotFound(f"attempt not found: {key}")
    latest = latest_attempts(core, account_id, campaign_id)[contact]
    if latest.state not in FINAL_ATTEMPT:
        raise DialerError(f"attempt {latest.key} of this contact is still {latest.state.value}")
    now = core.now()
    new = latest.following(now, now, extra=True)
    ok, result = core.store.reopen(account_id, campaign_id, "redial", [(new, _leaves(latest))], now)
    if not ok:
        raise refused(str(result))
    event(core, account_id, campaign_id, "redialed", attempt=new.key)
    return {
        "success": True,
        "message": "Redial scheduled",
        "campaign_id": campaign_id,
        "key": new.key,
        "status": CampaignStatus.RUNNING.value,
    }
