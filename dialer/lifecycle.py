"""The campaign state machine (DESIGN §4): one table of allowed transitions; every command checks it.

A refused command names the current state and changes nothing (the store's CAS makes check and write
one step, so two racing commands cannot both succeed).
"""

from __future__ import annotations

from typing import Any

from dialer import keys
from dialer.clock import Clock, to_iso
from dialer.errors import InsufficientBalance, InvalidState
from dialer.models import FINAL_STATES, AttemptState, CallAttempt
from dialer.money import reservation
from dialer.outcomes import answered_by_human, retryable
from dialer.store import Store

ACTIVE = ("draft", "scheduled", "running", "paused", "stopping")

# command -> {current state: next state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "start": {"draft": "scheduled", "scheduled": "scheduled", "paused": "running"},
    "pause": {"scheduled": "paused", "running": "paused"},
    "resume": {"paused": "running"},
    "stop": {"running": "stopping", "paused": "stopping"},
    "cancel": dict.fromkeys(ACTIVE, "cancelled"),
    "update": {"draft": "draft", "scheduled": "scheduled"},
    "delete": {s: s for s in ("draft", "completed", "stopped", "cancelled", "failed")},
    "re-execute": {"completed": "running", "stopped": "running"},
    "redial": {"completed": "running", "stopped": "running"},
}


def refused(current: str) -> InvalidState:
    return InvalidState(f"Campaign is not running (current state: {current})")


def allowed(command: str, current: str) -> str:
    """The next state of ``command`` from ``current``, or raise the refusal naming the current state."""
    nxt = TRANSITIONS[command].get(current)
    if nxt is None:
        raise refused(current)
    return nxt


def _result(campaign_id: str, status: str, message: str) -> dict[str, Any]:
    return {"success": True, "message": message, "campaign_id": campaign_id, "status": status}


def pause(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """No new dial starts once this returns (admission reads the same status key); live calls finish."""
    allowed("pause", store.campaign_state(account_id, campaign_id))
    ok, before = store.transition(
        account_id, campaign_id, TRANSITIONS["pause"], "paused", "paused", clock.now_ms()
    )
    if not ok:
        raise refused(before)
    return _result(campaign_id, "paused", "Campaign paused")


def resume(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Paused -> running where it stopped (re-running the balance check); a campaign paused before its
    launch (never expanded) goes back to scheduled. A campaign whose last call ended while it was
    paused completes here (and starts its next campaign)."""
    campaign, live = store.get_campaign(account_id, campaign_id)
    allowed("resume", store.campaign_state(account_id, campaign_id))
    if campaign.provider:
        provider = store.find_provider(account_id, campaign.provider)
        need = reservation(provider.max_call_seconds, provider.price_per_minute) if provider else 1
        if store.get_account(account_id).available < need:
            raise InsufficientBalance()
    launched = int(live.get("expand_cursor", 0)) > 0 or live.get("expanded") == "1"
    target = "running" if launched else "scheduled"
    ok, before, after = store.resume(account_id, campaign_id, ["paused"], target, clock.now_ms())
    if not ok:
        raise refused(before)
    if after == "completed":
        from dialer.campaigns import start_next

        start_next(store, clock, campaign)
    return _result(campaign_id, after, "Campaign completed" if after == "completed" else "Campaign resumed")


def stop(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """No new dials; live calls finish (``stopping``), then ``stopped``; waiting attempts end canceled."""
    status = _halt(store, clock, account_id, campaign_id, "stop", "campaign stopped")
    return _result(campaign_id, status, "Campaign stopping" if status == "stopping" else "Campaign stopped")


def cancel(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Cancelled at once; every attempt not yet dialled ends canceled."""
    _halt(store, clock, account_id, campaign_id, "cancel", "campaign cancelled")
    return _result(campaign_id, "cancelled", "Campaign cancelled")


def _halt(store: Store, clock: Clock, account_id: str, campaign_id: str, command: str, reason: str) -> str:
    """Stop or cancel: the state change (parked attempts released to be ended), then every attempt not
    yet dialled ends canceled; returns the status after."""
    target = allowed(command, store.campaign_state(account_id, campaign_id))
    ok, before, _ = store.resume(account_id, campaign_id, TRANSITIONS[command], target, clock.now_ms())
    if not ok:
        raise refused(before)
    return _cancel_pending(store, clock, account_id, campaign_id, reason)


def _cancel_pending(store: Store, clock: Clock, account_id: str, campaign_id: str, reason: str) -> str:
    """Attempts not yet dialled end canceled now; returns the campaign's status (stopped once nothing is
    live)."""
    campaign, _ = store.get_campaign(account_id, campaign_id)
    return store.cancel_pending(account_id, campaign_id, campaign.provider or "-", reason, clock.now_ms())


# --- update, delete, re-execute, redial ------------------------------------------------------------------
UPDATABLE = tuple(TRANSITIONS["update"])
DELETABLE = tuple(TRANSITIONS["delete"])
REOPENABLE = tuple(TRANSITIONS["re-execute"])
REOPEN_CHUNK = 1000
NOT_UPDATABLE = "only scheduled campaigns can be updated (name and SendAt fields only)"


def update(
    store: Store, clock: Clock, account_id: str, campaign_id: str, name: str | None, launch_at: int | None
) -> dict[str, Any]:
    """Name and launch time, only while draft or scheduled (seed 001 wording when refused)."""
    from dialer.errors import InvalidRequest

    now = clock.now_ms()
    if launch_at is not None and launch_at < now - 1000:
        raise InvalidRequest("Scheduled time is in the past")
    if name is not None and not name.strip():
        raise InvalidRequest("name: must not be empty")
    for _ in range(
        50
    ):  # optimistic: the write applies only to the version read (a concurrent update retries)
        campaign, live = store.get_campaign(account_id, campaign_id)
        if store.campaign_state(account_id, campaign_id) not in UPDATABLE:
            raise InvalidState(NOT_UPDATABLE)
        changed = campaign.model_copy(
            update={k: v for k, v in (("name", name), ("launch_at", launch_at)) if v is not None}
        )
        sched = store.get_schedule(account_id, campaign_id)
        if sched is not None and launch_at is not None:
            sched = sched.model_copy(update={"start_at": launch_at})
        ok, why = store.update_campaign(changed, UPDATABLE, sched, now, live.get("doc_version", "0"))
        if ok:
            break
        if why != "changed":
            raise InvalidState(NOT_UPDATABLE)
    else:
        raise InvalidState("the campaign is being changed by someone else; try again")
    return {
        "success": True,
        "message": "Campaign updated",
        "campaign_id": campaign_id,
        "status": live["status"],
        "name": changed.name,
        "launch_at": to_iso(changed.launch_at),
    }


def delete(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Soft delete: kept for reports (`campaign show` still answers), hidden from lists."""
    now = clock.now_ms()
    ok, before = store.transition(account_id, campaign_id, DELETABLE, "", "", now, deleted_at=now)
    if not ok:
        raise refused(before)
    return {"success": True, "message": "Campaign deleted", "campaign_id": campaign_id, "status": before}


def _latest_attempts(store: Store, account_id: str, campaign_id: str) -> dict[int, CallAttempt]:
    latest: dict[int, CallAttempt] = {}
    for att in store.campaign_attempts(account_id, campaign_id):
        if att.contact not in latest or att.attempt > latest[att.contact].attempt:
            latest[att.contact] = att
    return latest


def _leaves(att: CallAttempt) -> str:
    """The counter a contact is in after this final attempt."""
    if att.state == AttemptState.SKIPPED:
        return "skipped"
    return "delivered" if answered_by_human(att.state, att.answered_by) else "failed"


def reexecutable(att: CallAttempt) -> bool:
    """Last outcome no-answer, busy, retryable failure or machine; never a human answer, a permanent
    error, DNC or a skip."""
    if att.state not in FINAL_STATES or att.state in (AttemptState.SKIPPED, AttemptState.CANCELED):
        return False
    return retryable(att.state, att.answered_by, recall_on_machine=True, permanent=att.permanent)


def re_execute(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """One new attempt for each contact whose last outcome can be retried; the campaign runs again."""
    from dialer.engine import stagger_ms
    from dialer.errors import DialerError

    campaign, _ = store.get_campaign(account_id, campaign_id)
    allowed("re-execute", store.campaign_state(account_id, campaign_id))
    provider = store.find_provider(account_id, campaign.provider)
    gap, now = stagger_ms(campaign, provider), clock.now_ms()
    chosen = [
        a for _, a in sorted(_latest_attempts(store, account_id, campaign_id).items()) if reexecutable(a)
    ]
    if not chosen:
        raise DialerError("All contacts have already been processed")
    attempts = [
        (a.following(now + i * gap, now + i * gap, extra=True), "failed") for i, a in enumerate(chosen)
    ]
    created = 0
    for start in range(0, len(attempts), REOPEN_CHUNK):  # chunks: never one long Lua call
        # the first chunk flips the state; the next ones continue while it is still ours to run
        states = REOPENABLE if start == 0 else (*REOPENABLE, "running", "paused")
        ok, result = store.reopen(
            account_id, campaign_id, states, attempts[start : start + REOPEN_CHUNK], now
        )
        if not ok and start == 0:
            raise refused(str(result))
        if not ok:  # stopped or cancelled meanwhile
            break
        created += int(result)
    return {
        "success": True,
        "message": f"Campaign re-executed: {created} contacts to call again",
        "campaign_id": campaign_id,
        "status": "running",
        "attempts": [a.key for a, _ in attempts],
    }


def redial(store: Store, clock: Clock, key: str) -> dict[str, Any]:
    """Seed "resendMsg": one more attempt for the contact of attempt KEY, outside the recall policy."""
    from dialer.errors import DialerError, NotFound

    try:
        campaign_id, contact, _ = keys.parse_attempt_key(key)
    except ValueError:
        raise NotFound(f"attempt not found: {key}") from None
    account_id = store.campaign_account(campaign_id)
    allowed("redial", store.campaign_state(account_id, campaign_id))
    if store.get_attempt(account_id, key) is None:
        raise NotFound(f"attempt not found: {key}")
    latest = _latest_attempts(store, account_id, campaign_id)[contact]
    if latest.state not in FINAL_STATES:
        raise DialerError(f"attempt {latest.key} of this contact is still {latest.state.value}")
    new = latest.following(clock.now_ms(), clock.now_ms(), extra=True)
    ok, result = store.reopen(account_id, campaign_id, REOPENABLE, [(new, _leaves(latest))], clock.now_ms())
    if not ok:
        raise refused(str(result))
    return {
        "success": True,
        "message": "Redial scheduled",
        "campaign_id": campaign_id,
        "key": new.key,
        "status": "running",
    }
