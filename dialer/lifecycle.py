"""The campaign state machine (DESIGN §4): one table of allowed transitions; every command checks it.

A refused command names the current state and changes nothing (the store's CAS makes check and write
one step, so two racing commands cannot both succeed).
"""

from __future__ import annotations

from typing import Any

from dialer.clock import Clock
from dialer.errors import InsufficientBalance, InvalidState
from dialer.models import ScheduleStatus
from dialer.money import reservation
from dialer.store import Store

ACTIVE = ("draft", "scheduled", "running", "paused", "stopping")

# command -> {current state: next state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "start": {"draft": "scheduled", "scheduled": "scheduled", "paused": "running"},
    "pause": {"scheduled": "paused", "running": "paused"},
    "resume": {"paused": "running"},
    "stop": {"running": "stopping", "paused": "stopping"},
    "cancel": dict.fromkeys(ACTIVE, "cancelled"),
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
    allowed("pause", store.campaign_status(account_id, campaign_id))
    ok, before = store.transition(
        account_id, campaign_id, TRANSITIONS["pause"], "paused", "paused", clock.now_ms()
    )
    if not ok:
        raise refused(before)
    return _result(campaign_id, "paused", "Campaign paused")


def resume(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Paused -> running where it stopped (re-running the balance check); a campaign paused before its
    launch goes back to scheduled."""
    campaign, live = store.get_campaign(account_id, campaign_id)
    allowed("resume", live["status"])
    if campaign.provider:
        try:
            provider = store.get_provider(account_id, campaign.provider)
            need = reservation(provider.max_call_seconds, provider.price_per_minute)
        except Exception:
            need = 1
        if store.get_account(account_id).available < need:
            raise InsufficientBalance()
    sched = store.get_schedule(account_id, campaign_id)
    target = "scheduled" if sched is not None and sched.status == ScheduleStatus.PENDING else "running"
    ok, before, _ = store.resume(account_id, campaign_id, ["paused"], target, clock.now_ms())
    if not ok:
        raise refused(before)
    return _result(campaign_id, target, "Campaign resumed")


def stop(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """No new dials; live calls finish (``stopping``), then ``stopped``; waiting attempts end canceled."""
    allowed("stop", store.campaign_status(account_id, campaign_id))
    ok, before, _ = store.resume(account_id, campaign_id, TRANSITIONS["stop"], "stopping", clock.now_ms())
    if not ok:
        raise refused(before)
    status = store.settle_status(account_id, campaign_id, clock.now_ms())
    return _result(campaign_id, status, "Campaign stopping" if status == "stopping" else "Campaign stopped")


def cancel(store: Store, clock: Clock, account_id: str, campaign_id: str) -> dict[str, Any]:
    """Cancelled at once; every attempt not yet dialled ends canceled."""
    allowed("cancel", store.campaign_status(account_id, campaign_id))
    ok, before, _ = store.resume(account_id, campaign_id, TRANSITIONS["cancel"], "cancelled", clock.now_ms())
    if not ok:
        raise refused(before)
    return _result(campaign_id, "cancelled", "Campaign cancelled")
