"""The dialling engine: launch a campaign, place one attempt, check a live call, record an outcome.

Methods over the core (store, clock, providers, settings); the actors are one-line wrappers. Every step is
safe to run twice and to die at any line: each state change is a compare-and-set in Lua.

The path of one call: ``launch`` writes the attempt (due at its stagger) → the scheduler claims it →
``place_call`` checks DNC and calling hours, asks ``admit.lua`` (quota, concurrency, money, pace), dials →
``record_dial.lua`` makes it live with a first check time → outcome by callback (``record_outcome``) or
by ``check_call`` when the check comes due (the simulator's end, a Twilio poll, the deadline) →
``finish.lua`` settles and writes the recall.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog

from dialer import keys
from dialer.context import Core
from dialer.errors import CredentialsUnreadable, Forbidden, InvalidRequest
from dialer.faults import crash_point
from dialer.groups import feed_campaign
from dialer.hours import NeverOpens, next_opening, zone_chain
from dialer.lifecycle import event, halt, start_next
from dialer.models import CallAttempt, Campaign, Contact, ProviderConfig
from dialer.outcomes import call_duration_cost, decide, left_voicemail
from dialer.pace import KEEP_SLOT_MS, MAX_SLOT_WAIT_MS, from_number, gap_ms, late_for_slot, stagger_ms
from dialer.states import FINAL_ATTEMPT, LIVE_ATTEMPT, AttemptState, CampaignStatus, ScheduleStatus
from dialer.store.redis_store import LIVE_CSV, FirstAttempt
from dialer.telephony.base import (
    AuthFailed,
    CallStatus,
    ConfigRefused,
    DialRequest,
    PermanentDialError,
    Provider,
    RateLimited,
    RetryableDialError,
)
from dialer.templates import twiml_for

log = structlog.get_logger("dialer.engine")

RING_TIMEOUT_S = 30
LIVE_GRACE_MS = 60_000
POLL_MIN_MS = 2_000  # a live call without a provider hint is polled after 2 s, then less often
POLL_MAX_MS = 60_000
OVERDUE_RECHECK_MS = 10_000  # a call still live past its deadline: hung up, checked again after this
FAILURE_BACKOFF_MS = 2_000
RATE_LIMIT_SLOWDOWN_MS = 60_000  # after a 429 the provider dials at half pace (or slower) for this long
INTERNAL_ERROR = "internal_error"
CREDENTIALS_UNREADABLE = "provider_credentials_unreadable"


def first_check_ms(now_ms: int, hint_ms: int | None, pushes_outcomes: bool, deadline_ms: int) -> int:
    """When a live call is next checked with its provider: at the provider's own hint (the simulator
    knows when its call ends), at the deadline when outcomes are pushed (callbacks; the check is the
    safety net), else soon (polling)."""
    if hint_ms is not None:
        return min(hint_ms, deadline_ms)
    if pushes_outcomes:
        return deadline_ms
    return min(now_ms + POLL_MIN_MS, deadline_ms)


def next_poll_ms(now_ms: int, placed_at_ms: int, hint_ms: int | None, deadline_ms: int) -> int:
    """Polling backoff: a quarter of the call's age (2 s to 60 s), or the provider's hint, never past the
    deadline (then a last check)."""
    if hint_ms is not None and hint_ms > now_ms:
        return min(hint_ms, deadline_ms)
    wait = min(POLL_MAX_MS, max(POLL_MIN_MS, (now_ms - placed_at_ms) // 4))
    return min(now_ms + wait, deadline_ms) if now_ms < deadline_ms else now_ms + OVERDUE_RECHECK_MS


@dataclass(frozen=True)
class Admission:
    decision: str  # admit.lua's: admit | defer | wait | park | cancel | pause | stop | stale
    slot: int
    reason: str
    mono: float  # monotonic time just before the admission that counted (the stall guard measures from it)
    price: int  # per minute, as admitted (the call is charged at it)
    at: int = 0  # the now (ms) admit.lua was given: the attempt's dialing_at and its quota hour


@dataclass
class Engine:
    core: Core

    def _now(self) -> int:
        return self.core.clock.now_ms()

    def _provider_client(self, cfg: ProviderConfig) -> Provider:
        return self.core.providers.get(cfg)

    def _client_or_pause(self, cfg: ProviderConfig, campaign: Campaign) -> Provider | None:
        """The provider's client; None when its credentials cannot be opened with this process's
        DIALER_SECRET_KEY — the campaign then pauses with that reason (nothing dialled, nothing lost)
        until the key is right or the credentials are given again and it is resumed."""
        try:
            return self._provider_client(cfg)
        except CredentialsUnreadable as exc:
            log.error(
                "provider_credentials_unreadable",
                campaign_id=campaign.id,
                provider=cfg.name,
                error=exc.message,
            )
            self._pause_campaign(campaign, CREDENTIALS_UNREADABLE, detail=exc.message)
            return None

    # --- launch ------------------------------------------------------------------------------------------
    def launch(self, account_id: str, campaign_id: str) -> str:
        """Promote a due schedule: the campaign runs and its contacts become attempts, in chunks from a
        cursor (a redelivery resumes where the last run stopped)."""
        store = self.core.store
        bound = log.bind(campaign_id=campaign_id, account_id=account_id)
        campaign, state = store.get_campaign(account_id, campaign_id)
        sched = store.get_schedule(account_id, campaign_id)
        start_at = sched.start_at if sched else self._now()
        base = sched.base_cursor if sched else 0
        if state.status == CampaignStatus.SCHEDULED:  # launch: parked attempts come back too
            launched, _, _ = store.change_status(account_id, campaign_id, "launch", "", self._now())
            if launched:
                event(self.core, account_id, campaign_id, "launched", by="dialer")
        state = store.campaign_state(account_id, campaign_id)
        if state.status not in (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.STOPPING):
            bound.info("schedule_dropped", status=state.status.value)
            store.finish_schedule(account_id, campaign_id, ScheduleStatus.DONE)
            return state.status.value
        bound.info("campaign_running", start_at=start_at)
        provider = store.find_provider(account_id, campaign.provider)
        if campaign.group_id and campaign.end_handle == "continue":  # group contacts not taken yet
            feed_campaign(self.core, campaign)
        total = store.campaign_state(account_id, campaign_id).contacts_n
        self._expand(campaign, provider, start_at, base, total)
        store.finish_schedule(account_id, campaign_id, ScheduleStatus.DONE)
        status = store.campaign_state(account_id, campaign_id).status
        if status == CampaignStatus.COMPLETED:  # every contact was refused at intake
            event(self.core, account_id, campaign_id, "completed", by="dialer")
            start_next(self.core, campaign)
        return status.value

    def _expand(
        self, campaign: Campaign, provider: ProviderConfig | None, start_at: int, base: int, total: int
    ) -> None:
        """Write first attempts from the cursor on, staggered from ``start_at``; the contacts from ``base``
        (where this run's batch begins: 0 at launch, the old end for contacts added later) count for the
        stagger."""
        store = self.core.store
        a, c = campaign.account_id, campaign.id
        gap = stagger_ms(campaign.stagger_seconds, provider.calls_per_second if provider else None)
        bound = log.bind(campaign_id=c)

        def rank_at(cursor: int) -> int:
            if cursor <= base:
                return 0
            return sum(1 for _, _, ok in store.contact_phones(a, c, base, cursor - 1) if ok)

        cursor = store.campaign_state(a, c).expand_cursor
        rank = rank_at(cursor)
        while True:
            size = self.core.settings.expand_chunk
            chunk = store.contact_phones(a, c, cursor, cursor + size - 1) if cursor < total else []
            attempts = []
            for index, phone, ok in chunk:
                if not ok:
                    continue
                key = keys.attempt_key(c, index, 1)
                attempts.append(FirstAttempt(key, index, phone, start_at + rank * gap))
                rank += 1
            new_cursor = cursor + len(chunk)
            last = new_cursor >= total
            applied, status = store.expand(a, c, cursor, new_cursor, last, attempts, self._now())
            if not applied:  # another run got here first: continue from where it is
                cursor = store.campaign_state(a, c).expand_cursor
                rank = rank_at(cursor)
                if cursor >= total:
                    return
                continue
            bound.info("campaign_expanded", contacts=new_cursor, total=total, attempts=rank, status=status)
            cursor = new_cursor
            if last:
                return
            crash_point("during_expansion")

    # --- place_call -----------------------------------------------------------------------------------------
    def place_call(self, ref: str) -> str:
        """Decide and dial one due attempt; returns what happened (for logs and tests)."""
        store, settings = self.core.store, self.core.settings
        account_id, key = keys.parse_ref(ref)
        view = store.dial_view(account_id, key, contact=True)  # one round trip
        if view is None or view.attempt.state in FINAL_ATTEMPT:
            store.ack_lease(account_id, key)
            return "final" if view else "missing"
        att, campaign, state, provider = view.attempt, view.campaign, view.state, view.provider
        crash_point("after_claim")
        bound = log.bind(campaign_id=att.campaign_id, attempt=key)
        now = self._now()
        if att.state in LIVE_ATTEMPT:
            if att.sid:
                store.ack_lease(account_id, key)
                return "live"
            if att.dialing_at and now - att.dialing_at < settings.lease_s * 1000:
                return "busy"  # another worker is dialling it right now; its lease protects it
            if provider is None:
                return self._fail_campaign(campaign, "provider_missing")
            return self._reconcile_dial(att, campaign, provider)
        if att.state == AttemptState.SCHEDULED:
            # called directly rather than through the scheduler: claim it first, the same atomic claim
            # (only if it is due and in the due set; one caller wins, a waiting or parked one is left alone)
            lease_until = now + round(settings.lease_s * 1000)
            if not store.claim_refs([ref], now + MAX_SLOT_WAIT_MS, lease_until):
                return "stale"
        if view.dnc:
            self._end(att, campaign, provider, "skipped", "dnc", allowed=AttemptState.CLAIMED)
            return "skipped"
        if provider is None:
            return self._fail_campaign(campaign, "provider_missing", att)
        contact = view.contact or store.contact(account_id, att.campaign_id, att.contact)
        hours_zone = None
        if state.status == CampaignStatus.RUNNING and campaign.calling_hours is not None:
            chain = zone_chain(contact.data.get("timezone"), att.phone, campaign.timezone)
            try:
                opening, hours_zone = next_opening(now, campaign.calling_hours, chain)
            except NeverOpens as exc:
                bound.warning("calling_hours_never_open", error=str(exc))
                self._end(
                    att, campaign, provider, "skipped", f"calling_hours: {exc}", allowed=AttemptState.CLAIMED
                )
                return "skipped"
            if opening > now + MAX_SLOT_WAIT_MS:
                store.defer(att, provider.name, opening, "calling_hours", now, hours_zone)
                bound.info("attempt_deferred", reason="calling_hours", due_at=opening, zone=hours_zone)
                return "defer"
        client = self._client_or_pause(provider, campaign)  # before admission: a broken one admits nothing
        token = uuid.uuid4().hex
        caller = from_number(provider.from_numbers, att.phone)
        admission = self._admit(att, campaign, provider, token, caller, hours_zone)
        decision, slot, reason = admission.decision, admission.slot, admission.reason
        if decision == "stop":
            return self._fail_campaign(campaign, reason, att)
        if decision == "pause":  # the money ran out: admit.lua paused it
            event(self.core, account_id, att.campaign_id, "paused", by="dialer", reason=reason)
        if decision == "cancel":
            self._end(att, campaign, provider, "canceled", f"campaign {reason}", allowed=AttemptState.CLAIMED)
            return "canceled"
        if decision != "admit":
            bound.info("attempt_" + decision, reason=reason, due_at=slot or None)
            return decision
        if client is None:  # admitted before the pause landed (a resume raced it): give the slot back
            store.undo_admit(att, provider.name, token, now, CREDENTIALS_UNREADABLE, now)
            return "paused"
        crash_point("after_admit")  # marked dialing, nothing sent
        att = att.model_copy(
            update={
                "state": AttemptState.DIALING,
                "dial_token": token,
                "placed_at": slot,
                "dialing_at": admission.at,
                "from_number": caller,
                "first_at": att.first_at or slot,  # as admit.lua wrote them
                "price_per_minute": admission.price,
            }
        )
        return self._dial(att, contact, campaign, provider, client, token, admission.mono)

    def _admit(
        self,
        att: CallAttempt,
        campaign: Campaign,
        provider: ProviderConfig,
        token: str,
        caller: str,
        hours_zone: str | None,
    ) -> Admission:
        """Admission at dial time: a slot booked within a second is slept for, then admission is asked
        again, so a pause acknowledged in between stops the dial. An attempt that keeps missing its slot
        (a starved thread) goes back to due at its slot instead of holding its claim."""
        gap = stagger_ms(campaign.stagger_seconds, provider.calls_per_second)
        slot = 0
        tries = 4  # not due yet, then a pace slot: two sleeps are the rule
        for n in range(tries):
            mono = self.core.clock.monotonic()
            now = self._now()
            decision, slot, reason, price = self.core.store.admit(
                att, provider.name, token, gap, now, MAX_SLOT_WAIT_MS, KEEP_SLOT_MS, caller, hours_zone
            )
            if decision != "sleep":
                return Admission(decision, slot, reason, mono, price, now)
            if n < tries - 1:  # the last answer is not slept on: deferred below
                time.sleep(min(max(0, slot - now), MAX_SLOT_WAIT_MS) / 1000)
        self.core.store.defer(att, provider.name, slot, "pace", self._now())
        return Admission("defer", slot, "pace", self.core.clock.monotonic(), 0)

    def stall_bound_s(self) -> float:
        """How old an admission may be when its dial is sent: well inside the lease, so that recovery
        (which waits for the lease and looks the call up first) never races a stalled worker's dial."""
        return self.core.settings.lease_s / 4

    def _dial(
        self,
        att: CallAttempt,
        contact: Contact,
        campaign: Campaign,
        provider: ProviderConfig,
        client: Provider,
        token: str,
        admitted_mono: float,
    ) -> str:
        store = self.core.store
        bound = log.bind(campaign_id=att.campaign_id, attempt=att.key)
        ref = keys.ref(att.account_id, att.key)
        req = DialRequest(
            ref=ref,
            key=att.key,
            campaign_id=att.campaign_id,
            to=att.phone,
            from_=att.from_number or from_number(provider.from_numbers, att.phone),
            twiml=twiml_for(
                campaign.say,
                campaign.audio,
                campaign.xml,
                {**contact.data, "phone": contact.phone},
                campaign.language,
                campaign.voice,
            ),
            token=token,
            timeout_s=RING_TIMEOUT_S,
            time_limit_s=provider.max_call_seconds,
            status_callback=self._callback_url(ref),
            amd=campaign.amd_mode,
        )
        # the stall guard: the admission must still be ours and young, right before the dial is sent
        # (a worker stopped longer than its lease finds recovery took it back, and never dials). Recovery
        # waits for the whole lease (4 bounds), so a fresh admission needs no re-read; one past half the
        # bound is read again, in case another machine's clock runs ahead.
        age = self.core.clock.monotonic() - admitted_mono
        now = self._now()
        stalled = age > self.stall_bound_s()
        if stalled or (age > self.stall_bound_s() / 2 and not store.still_dialing(att, token)):
            bound.warning("dial_abandoned_after_stall")
            store.undo_admit(att, provider.name, token, now, "stalled", now, unsent=True)
            return "stalled"
        slot = att.placed_at or now
        if late_for_slot(now, slot):
            # the pace rule holds at the dial, not only at the slot: a dial sent this late could crowd the
            # provider's next slots into one second; it goes back to due and is admitted again
            bound.info("dial_late_for_slot", late_ms=now - slot)
            store.undo_admit(att, provider.name, token, now, "pace", now, unsent=True)
            return "late"
        try:
            res = client.dial(req)
        except PermanentDialError as exc:
            bound.info("dial_refused", reason=exc.reason, code=exc.code)
            self._end(
                att,
                campaign,
                provider,
                "failed",
                exc.reason,
                permanent=True,
                error_code=exc.code,
                allowed=AttemptState.DIALING,
            )
            return "refused"
        except RateLimited as exc:
            # nothing was placed: the attempt goes back to due after the carrier's wait, and the provider's
            # pace halves for a minute so the carrier is not hammered (every worker reads it in admit)
            wait_ms = round(exc.retry_after_s * 1000)
            due = now + wait_ms
            slower = max(round(2 * gap_ms(provider.calls_per_second)), wait_ms)
            store.slow_down(att.account_id, provider.name, slower, now + RATE_LIMIT_SLOWDOWN_MS)
            bound.info("dial_rate_limited", retry_at=due, gap_ms=slower)
            store.undo_admit(att, provider.name, token, due, "rate_limited", now)
            return "rate_limited"
        except ConfigRefused as exc:  # credentials or settings of ours: every dial would fail alike
            bound.warning("dial_refused_config", code=exc.code, reason=exc.reason, pause=exc.status_reason)
            store.undo_admit(att, provider.name, token, now, exc.status_reason, now)
            self._pause_campaign(campaign, exc.status_reason, code=exc.code, detail=exc.reason)
            return "auth_failed" if isinstance(exc, AuthFailed) else "config_refused"
        except RetryableDialError as exc:
            bound.warning("dial_uncertain", reason=exc.reason)
            return self._after_uncertain_dial(att, campaign, provider, client, token, exc)
        crash_point("after_provider_accepted")  # the call exists; nothing recorded yet
        deadline = self._deadline(att, provider)
        first = first_check_ms(self._now(), res.check_at_ms, client.pushes_outcomes, deadline)
        if store.record_dial(att, provider.name, token, res.sid, res.status, first, deadline, self._now()):
            bound.info("dialed", sid=res.sid, to=att.phone)
            if res.final is not None:  # over already: settled in this step, no check to follow
                self._settle(att.model_copy(update={"sid": res.sid}), campaign, provider, res.final)
            return "dialed"
        current = store.get_attempt(att.account_id, att.key)
        if current is None or current.sid != res.sid:
            bound.error("duplicate_dial_hung_up", sid=res.sid)
            client.hangup(res.sid)
            return "stale"
        bound.info("dial_recorded_by_recovery", sid=res.sid)  # this worker stalled; reconciliation adopted it
        return "stale"

    def _after_uncertain_dial(
        self,
        att: CallAttempt,
        campaign: Campaign,
        provider: ProviderConfig,
        client: Provider,
        token: str,
        exc: RetryableDialError,
    ) -> str:
        """5xx or timeout: the call may exist. Look it up before anything dials again."""
        found = self._lookup(att, provider, client)
        if found is not None:
            return self._adopt(att, provider, client, token, found)
        self._end(
            att,
            campaign,
            provider,
            "failed",
            f"provider error: {exc.reason}",
            error_code=exc.code,
            allowed=AttemptState.DIALING,
        )
        return "provider_error"

    def _lookup(self, att: CallAttempt, provider: ProviderConfig, client: Provider) -> CallStatus | None:
        """This attempt's call, if the provider placed one: to + from within the dial's time window; the
        provider's own ref when it reports one, else a call not recorded on another attempt (never another
        attempt's call to the same number)."""
        start = att.dialing_at or att.placed_at or self._now()
        until = start + round(self.core.settings.dial_timeout_s * 1000) + 5_000
        ref = keys.ref(att.account_id, att.key)
        caller = att.from_number or from_number(provider.from_numbers, att.phone)
        for call in client.lookup(att.phone, caller, start - 5_000, until):
            if call.ref is not None:
                if call.ref == ref:
                    return call
                continue
            owner = self.core.store.attempt_owner(att.account_id, call.sid)
            if owner is None or owner == att.key:
                return call
        return None

    def _adopt(
        self, att: CallAttempt, provider: ProviderConfig, client: Provider, token: str, found: CallStatus
    ) -> str:
        """A call the provider has but we did not record: record it (and its outcome if it is over)."""
        deadline = self._deadline(att, provider)
        now = self._now()
        first = first_check_ms(now, found.check_at_ms, client.pushes_outcomes, deadline)
        self.core.store.record_dial(att, provider.name, token, found.sid, "queued", first, deadline, now)
        log.info("dial_reconciled", campaign_id=att.campaign_id, attempt=att.key, sid=found.sid)
        if found.final:
            self.record_outcome(att.account_id, att.key, found)
        return "reconciled"

    def _reconcile_dial(self, att: CallAttempt, campaign: Campaign, provider: ProviderConfig) -> str:
        """An attempt left in `dialing` by a worker that died or stalled past its lease: adopt the call if
        the provider placed it; otherwise give the admission back (CAS on the old worker's token, which
        its stall guard then finds gone) so the attempt goes through every check again before it is
        dialled."""
        client = self._client_or_pause(provider, campaign)
        if client is None:  # cannot look it up: tried again next lease
            return "unreadable"
        found = self._lookup(att, provider, client)
        if found is not None:
            return self._adopt(att, provider, client, att.dial_token or "", found)
        now = self._now()
        if not self.core.store.undo_admit(att, provider.name, att.dial_token or "", now, "recovered", now):
            return "stale"
        log.info("dial_recovered_after_crash", campaign_id=att.campaign_id, attempt=att.key)
        return "recovered"

    def _deadline(self, att: CallAttempt, provider: ProviderConfig) -> int:
        start = att.placed_at or self._now()
        return start + (RING_TIMEOUT_S + provider.max_call_seconds) * 1000 + LIVE_GRACE_MS

    def _callback_url(self, ref: str) -> str | None:
        """Where the provider posts status changes: the web process's /twilio/status, the attempt's ref in
        the query (quoted: the provider signs the URL exactly as given)."""
        base = self.core.settings.public_url
        return f"{base.rstrip('/')}/twilio/status?ref={quote(ref, safe='')}" if base else None

    def _fail_campaign(self, campaign: Campaign, reason: str, att: CallAttempt | None = None) -> str:
        """The provider is gone or disabled: the campaign fails with the reason; a claimed attempt ends
        canceled now, and so does every other attempt not yet dialled."""
        if att is not None:
            self._end(att, campaign, None, "canceled", reason, allowed=AttemptState.CLAIMED)
        try:
            halt(self.core, campaign.account_id, campaign.id, "fail", reason, reason, by="dialer")
            log.warning("campaign_failed", campaign_id=campaign.id, reason=reason)
        except Exception:  # already failed, paused or stopped by someone else: nothing to do
            pass
        return "stopped"

    def _pause_campaign(self, campaign: Campaign, reason: str, **why: Any) -> None:
        """Pause for ``reason`` (one event in the campaign's trail, with ``why``), unless it is not running."""
        ok, _, _ = self.core.store.change_status(
            campaign.account_id, campaign.id, "pause", reason, self._now()
        )
        if ok:
            event(self.core, campaign.account_id, campaign.id, "paused", by="dialer", reason=reason, **why)
            log.warning("campaign_paused", campaign_id=campaign.id, reason=reason)

    # --- outcomes -------------------------------------------------------------------------------------------
    def record_outcome(self, account_id: str, key: str, status: CallStatus) -> str:
        """The one outcome path (callback, poll, reconciliation). A progress state (ringing, answered) is
        kept for display; a final one ends the attempt (idempotent: a repeat changes nothing)."""
        view = self.core.store.dial_view(account_id, key)
        if view is None:
            return "missing"
        return self._settle(view.attempt, view.campaign, view.provider, status)

    def _settle(
        self, att: CallAttempt, campaign: Campaign, provider: ProviderConfig | None, status: CallStatus
    ) -> str:
        if not status.final:
            if att.state in LIVE_ATTEMPT and att.sid == status.sid:
                self.core.store.mark_progress(att, status.sid, status.status)
            return "progress"
        crash_point("before_settle")  # the outcome is known, nothing settled yet
        reason = status.error_message or ""
        # a callback brings a failure's code alone; a completed call may carry one too (SIP 200): not a reason
        failed = status.status not in ("completed", "voicemail")
        if failed and status.error_code and status.error_code not in reason:
            reason = f"error {status.error_code}" + (f": {reason}" if reason else "")
        return self._end(
            att,
            campaign,
            provider,
            status.status,
            reason,
            answered_by=status.answered_by,
            duration_s=status.duration_s,
            error_code=status.error_code,
            sid=status.sid,
            ended_at=status.ended_at_ms,
            allowed=LIVE_CSV,
        )

    def _end(
        self,
        att: CallAttempt,
        campaign: Campaign,
        provider: ProviderConfig | None,
        state: str,
        reason: str,
        *,
        allowed: str,
        permanent: bool = False,
        answered_by: str | None = None,
        duration_s: int = 0,
        error_code: str | None = None,
        sid: str = "",
        ended_at: int | None = None,
    ) -> str:
        now = self._now()
        ended = ended_at or now
        provider_state = state
        if left_voicemail(state, answered_by, campaign.amd_mode):
            state = AttemptState.VOICEMAIL
        outcome, due = decide(
            state,
            answered_by,
            permanent=permanent,
            recall=[] if att.extra else campaign.recall,
            recall_on_machine=campaign.recall_on_machine,
            attempt=att.attempt,
            first_at_ms=att.first_at,
            ended_at_ms=ended,
        )
        recall = (
            att.following(due, att.first_at or ended) if outcome == "recall" and due is not None else None
        )
        # the price the dial was admitted at (a price changed mid-call does not apply to it)
        price = (
            att.price_per_minute
            if att.price_per_minute is not None
            else (provider.price_per_minute if provider else 0)
        )
        cost = call_duration_cost(duration_s, price, provider_state)
        applied, result = self.core.store.finish(
            att,
            provider.name if provider else (campaign.provider or "-"),
            allowed=allowed,
            sid=sid,
            state=state,
            reason=reason,
            outcome=outcome,
            answered_by=answered_by,
            duration_s=duration_s,
            cost=cost,
            error_code=error_code,
            ended_at=ended,
            now_ms=now,
            recall=recall,
            permanent=permanent,
        )
        bound = log.bind(campaign_id=att.campaign_id, attempt=att.key)
        if not applied:
            bound.info("outcome_ignored", state=result)
            return "stale"
        bound.info("attempt_ended", state=state, outcome=outcome, recall_due=due, cost=cost)
        if result in (CampaignStatus.COMPLETED, CampaignStatus.STOPPED):
            bound.info("campaign_" + result)
            event(self.core, att.account_id, att.campaign_id, result, by="dialer")
        if result == CampaignStatus.COMPLETED:
            start_next(self.core, campaign)
        return outcome

    # --- live calls: the provider-neutral follow-up ------------------------------------------------------------
    def check_call(self, ref: str) -> str:
        """A live call's check came due (the simulator's call ended, a poll, the deadline): ask the provider
        and either record the outcome or check again later. A call the provider has no record of after
        its deadline ends `failed` (lost)."""
        store = self.core.store
        account_id, key = keys.parse_ref(ref)
        view = store.dial_view(account_id, key)  # one round trip
        if view is None or view.attempt.state not in LIVE_ATTEMPT:
            store.ack_check(ref)
            return "gone"
        att, campaign, provider = view.attempt, view.campaign, view.provider
        client = self._client_or_pause(provider, campaign) if provider else None
        if provider is not None and client is None:  # cannot ask: ask again later, never call it lost
            store.recheck(att, self._now() + POLL_MAX_MS, att.sid or "", "")
            return "unreadable"
        status = None
        if client is not None and provider is not None:
            status = client.fetch(att.sid) if att.sid else self._lookup(att, provider, client)
        if status is not None and status.final:
            return self._settle(att, campaign, provider, status)
        now = self._now()
        deadline = att.deadline_ms or now
        if status is None and now < deadline:
            store.recheck(att, next_poll_ms(now, att.placed_at or now, None, deadline), att.sid or "", "")
            return "unknown"
        if status is None:
            self._end(
                att,
                campaign,
                provider,
                "failed",
                "lost: the provider has no record of the call",
                allowed=LIVE_CSV,
            )
            return "lost"
        if now >= deadline and client is not None and att.sid:
            log.warning("call_overdue_hung_up", campaign_id=att.campaign_id, attempt=key, sid=att.sid)
            client.hangup(att.sid)
        store.recheck(
            att,
            next_poll_ms(now, att.placed_at or now, status.check_at_ms, deadline),
            status.sid,
            status.status,
        )
        return "still_live"

    def record_callback(self, ref: str, url: str, params: Mapping[str, str], signature: str) -> str:
        """A provider's status callback for attempt ``ref``: verified with the attempt's provider (its
        signature over ``url`` and the form), then the one outcome path. Anything that cannot be verified
        — an unknown attempt, no provider, a bad signature — is Forbidden and changes nothing."""
        store = self.core.store
        account_id, key = keys.parse_ref(ref or "")
        att = store.get_attempt(account_id, key) if account_id and key else None
        campaign = store.get_campaign(account_id, att.campaign_id)[0] if att else None
        cfg = store.find_provider(account_id, campaign.provider) if campaign else None
        try:  # the web process cannot open the credentials: it cannot verify (dials pause on their own)
            client = self._provider_client(cfg) if cfg else None
        except CredentialsUnreadable as exc:
            log.error("callback_unverifiable", attempt=key, error=exc.message)
            raise Forbidden(
                "the callback cannot be verified: this process cannot open the credentials"
            ) from None
        if client is None or not client.verify_callback(url, params, signature):
            log.warning("callback_refused", attempt=key or None)
            raise Forbidden("the callback's signature does not match")
        try:
            status = client.parse_callback(params)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return self.record_outcome(account_id, key, status)

    # --- the poison limit -----------------------------------------------------------------------------------
    def note_failure(self, ref: str, error: str) -> str:
        """The processing of an attempt raised. Under the limit a claimed attempt is retried after a short
        backoff; at the limit it ends `failed` with `internal_error` (its campaign can complete) instead
        of cycling for ever. A live one is left to its checks and reconciliation."""
        store, limit = self.core.store, self.core.settings.poison_limit
        account_id, key = keys.parse_ref(ref)
        att = store.get_attempt(account_id, key)
        if att is None or att.state in FINAL_ATTEMPT:
            return "final"
        failures = store.count_failure(account_id, key)
        bound = log.bind(campaign_id=att.campaign_id, attempt=key)
        campaign, _ = store.get_campaign(account_id, att.campaign_id)
        provider = store.find_provider(account_id, campaign.provider)
        if failures >= limit:
            bound.error("attempt_poisoned", failures=failures, error=error)
            allowed = ",".join([AttemptState.CLAIMED, *sorted(LIVE_ATTEMPT)])
            self._end(att, campaign, provider, "failed", INTERNAL_ERROR, allowed=allowed)
            return "poisoned"
        bound.warning("attempt_processing_failed", failures=failures, error=error)
        if att.state == AttemptState.CLAIMED:
            now = self._now()
            store.defer(att, campaign.provider or "-", now + FAILURE_BACKOFF_MS * failures, "error", now)
        return "retry"
