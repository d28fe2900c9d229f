"""The dialling engine: expand a campaign, place one attempt, record an outcome, reconcile a lost call.

Plain functions over the store, a clock and the providers; the actors are one-line wrappers. Every step
is safe to run twice and to die at any line: each state change is a compare-and-set in Lua.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfoNotFoundError

import structlog

from config import Settings
from dialer import keys
from dialer.clock import Clock
from dialer.hours import contact_zones, next_opening
from dialer.models import (
    FINAL_STATES,
    LIVE_STATES,
    AttemptState,
    CallAttempt,
    Campaign,
    Contact,
    ProviderConfig,
)
from dialer.outcomes import call_duration_cost, decide
from dialer.providers import ProviderFactory
from dialer.store import Store
from dialer.store.redis_store import LIVE_STATES_CSV
from dialer.telephony.base import (
    CallStatus,
    DialRequest,
    PermanentDialError,
    RateLimited,
    RetryableDialError,
)
from dialer.templates import twiml_for

log = structlog.get_logger("dialer.engine")

EXPAND_CHUNK = 1000
MAX_SLOT_WAIT_MS = 1000  # an admitted attempt waits for a slot up to this long, else it is deferred
RING_TIMEOUT_S = 30
LIVE_GRACE_MS = 60_000
UNKNOWN_ZONE_RETRY_MS = 3_600_000


def stagger_ms(campaign: Campaign, provider: ProviderConfig | None) -> int:
    """Default stagger = 1 / the provider's calls per second."""
    if campaign.stagger_seconds:
        return round(campaign.stagger_seconds * 1000)
    cps = provider.calls_per_second if provider else 1.0
    return round(1000 / cps)


def from_number(provider: ProviderConfig, contact: int) -> str:
    """Deterministic per contact, so a lost dial can be looked up by to + from."""
    return provider.from_numbers[contact % len(provider.from_numbers)]


@dataclass
class Engine:
    store: Store
    clock: Clock
    providers: ProviderFactory
    settings: Settings

    # --- start_campaign ----------------------------------------------------------------------------------
    def start_campaign(self, account_id: str, campaign_id: str) -> str:
        """Promote a due schedule: the campaign runs and its contacts become attempts, in chunks."""
        from dialer.models import ScheduleStatus

        bound = log.bind(campaign_id=campaign_id, account_id=account_id)
        campaign, live = self.store.get_campaign(account_id, campaign_id)
        sched = self.store.get_schedule(account_id, campaign_id)
        start_at = sched.start_at if sched else self.clock.now_ms()
        base = sched.base_cursor if sched else 0
        now = self.clock.now_ms()
        if live["status"] == "scheduled":  # launch: parked attempts (a pause before launch) come back too
            self.store.resume(account_id, campaign_id, ["scheduled"], "running", now)
        status = self.store.campaign_status(account_id, campaign_id)
        if status not in ("running", "paused", "stopping"):
            bound.info("schedule_dropped", status=status)
            self.store.finish_schedule(account_id, campaign_id, ScheduleStatus.DONE)
            return status
        bound.info("campaign_running", start_at=start_at)
        provider = self.store.find_provider(campaign.account_id, campaign.provider)
        if campaign.group_id and campaign.end_handle == "continue":  # group contacts it has not taken yet
            from dialer.groups import feed_campaign

            feed_campaign(self.store, self.clock, campaign)
        total = int(self.store.get_campaign(account_id, campaign_id)[1]["contacts_n"])
        self._expand(campaign, provider, start_at, base, total)
        self.store.finish_schedule(account_id, campaign_id, ScheduleStatus.DONE)
        status = self.store.campaign_status(account_id, campaign_id)
        if status == "completed":  # every contact was refused at intake
            self.after_completion(campaign)
        return status

    def _expand(
        self, campaign: Campaign, provider: ProviderConfig | None, start_at: int, base: int, total: int
    ) -> None:
        """Write first attempts from the cursor on, staggered from ``start_at``; the contacts from ``base``
        (where this run's batch begins: 0 at launch, the old end for contacts added later) count for the
        stagger."""
        a, c = campaign.account_id, campaign.id
        gap = stagger_ms(campaign, provider)
        bound = log.bind(campaign_id=c)

        def rank_at(cursor: int) -> int:
            if cursor <= base:
                return 0
            return sum(1 for ct in self.store.contacts(a, c, base, cursor - 1) if ct.intake == "ok")

        cursor = self.store.expand_cursor(a, c)
        rank = rank_at(cursor)
        while True:
            chunk = self.store.contacts(a, c, cursor, cursor + EXPAND_CHUNK - 1) if cursor < total else []
            attempts = []
            for ct in chunk:
                if ct.intake != "ok":
                    continue
                attempts.append(
                    CallAttempt(
                        key=keys.attempt_key(c, ct.index, 1),
                        account_id=a,
                        campaign_id=c,
                        contact=ct.index,
                        attempt=1,
                        phone=ct.phone,
                        due_at=start_at + rank * gap,
                    )
                )
                rank += 1
            new_cursor = cursor + len(chunk)
            last = new_cursor >= total
            applied, status = self.store.expand(a, c, cursor, new_cursor, last, attempts, self.clock.now_ms())
            if not applied:  # another run got here first: continue from where it is
                cursor = self.store.expand_cursor(a, c)
                rank = rank_at(cursor)
                if cursor >= total:
                    return
                continue
            bound.info("campaign_expanded", contacts=new_cursor, total=total, attempts=rank, status=status)
            cursor = new_cursor
            if last:
                return

    # --- place_call -----------------------------------------------------------------------------------------
    def place_call(self, ref: str) -> str:
        """Decide and dial one due attempt; returns what happened (for logs and tests)."""
        account_id, key = keys.parse_ref(ref)
        att = self.store.get_attempt(account_id, key)
        if att is None or att.state in FINAL_STATES:
            self.store.ack_lease(account_id, key)
            return "final" if att else "missing"
        bound = log.bind(campaign_id=att.campaign_id, attempt=key)
        campaign, live = self.store.get_campaign(account_id, att.campaign_id)
        provider = self.store.find_provider(campaign.account_id, campaign.provider)
        now = self.clock.now_ms()
        if att.state in LIVE_STATES:
            if att.sid:
                self.store.ack_lease(account_id, key)
                return "live"
            if att.dialing_at and now - att.dialing_at < self.settings.lease_s * 1000:
                return "busy"  # another worker is dialling it right now; its lease protects it
            if provider is None:
                return self._stop_campaign(campaign, "provider_missing")
            return self._reconcile_dial(att, campaign, provider)
        if att.state == AttemptState.SCHEDULED:
            # called directly rather than through the scheduler: claim it first, the same atomic claim
            # (only if it is due and in the due set; one caller wins, a waiting or parked one is left alone)
            lease_until = now + round(self.settings.lease_s * 1000)
            if not self.store.claim_refs([ref], now + MAX_SLOT_WAIT_MS, lease_until):
                return "stale"
        if self.store.is_dnc(account_id, att.phone):
            self._end(att, campaign, provider, "skipped", "dnc", allowed="claimed")
            return "skipped"
        if provider is None:
            return self._stop_campaign(campaign, "provider_missing", att)
        contact = self.store.contact(account_id, att.campaign_id, att.contact)  # read once per dial
        if live.get("status") == "running":
            opening = self._calling_hours_opening(att, contact, campaign, now)
            if opening > now + MAX_SLOT_WAIT_MS:
                self.store.defer(att, provider.name, opening, "calling_hours", now)
                bound.info("attempt_deferred", reason="calling_hours", due_at=opening)
                return "defer"
        token = uuid.uuid4().hex
        decision, slot, reason = self._admit(att, campaign, provider, token)
        if decision == "stop":
            return self._stop_campaign(campaign, reason, att)
        if decision == "cancel":
            self._end(att, campaign, provider, "canceled", f"campaign {reason}", allowed="claimed")
            return "canceled"
        if decision != "admit":
            bound.info("attempt_" + decision, reason=reason, due_at=slot or None)
            return decision
        att = att.model_copy(
            update={
                "state": AttemptState.DIALING,
                "dial_token": token,
                "placed_at": slot,
                "dialing_at": self.clock.now_ms(),
            }
        )
        return self._dial(att, contact, campaign, provider, token)

    def _admit(
        self, att: CallAttempt, campaign: Campaign, provider: ProviderConfig, token: str
    ) -> tuple[str, int, str]:
        """Admission at dial time: a slot booked within a second is slept for, then admission is asked
        again, so a pause acknowledged in between stops the dial. An attempt that keeps missing its slot
        (a starved thread) goes back to due at its slot instead of holding its claim."""
        gap = stagger_ms(campaign, provider)
        decision, slot, reason = "sleep", 0, ""
        for _ in range(3):
            now = self.clock.now_ms()
            decision, slot, reason = self.store.admit(att, provider.name, token, gap, now, MAX_SLOT_WAIT_MS)
            if decision != "sleep":
                return decision, slot, reason
            time.sleep(max(0, slot - now) / 1000)
        self.store.defer(att, provider.name, slot, "pace", self.clock.now_ms())
        return "defer", slot, "pace"

    def _calling_hours_opening(self, att: CallAttempt, contact: Contact, campaign: Campaign, now: int) -> int:
        """When the contact may be called (now when inside its window); unknown zones fail closed."""
        if campaign.calling_hours is None:
            return now
        zones, fallback = contact_zones(contact.data.get("timezone"), att.phone, campaign.timezone)
        try:
            return next_opening(now, campaign.calling_hours, zones, fallback)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            log.warning("calling_hours_unknown", attempt=att.key, error=str(exc))
            return now + UNKNOWN_ZONE_RETRY_MS

    def _dial(
        self, att: CallAttempt, contact: Contact, campaign: Campaign, provider: ProviderConfig, token: str
    ) -> str:
        bound = log.bind(campaign_id=att.campaign_id, attempt=att.key)
        data = {**contact.data, "phone": contact.phone}
        ref = keys.ref(att.account_id, att.key)
        req = DialRequest(
            ref=ref,
            key=att.key,
            campaign_id=att.campaign_id,
            to=att.phone,
            from_=from_number(provider, att.contact),
            twiml=twiml_for(
                campaign.say, campaign.audio, campaign.xml, data, campaign.language, campaign.voice
            ),
            token=token,
            timeout_s=RING_TIMEOUT_S,
            time_limit_s=provider.max_call_seconds,
            status_callback=self._callback_url(ref),
        )
        client = self.providers.get(provider)
        now = self.clock.now_ms()
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
                allowed="dialing",
            )
            return "refused"
        except RateLimited as exc:
            due = now + round(exc.retry_after_s * 1000)
            bound.info("dial_rate_limited", retry_at=due)
            self.store.undo_admit(att, provider.name, token, due, "rate_limited", now)
            return "rate_limited"
        except RetryableDialError as exc:
            bound.warning("dial_uncertain", reason=exc.reason)
            return self._after_uncertain_dial(att, campaign, provider, token, exc)
        deadline = self._deadline(att, provider)
        if self.store.record_dial(att, token, res.sid, res.status, deadline, self.clock.now_ms()):
            bound.info("dialed", sid=res.sid, to=att.phone)
            return "dialed"
        current = self.store.get_attempt(att.account_id, att.key)
        if current is None or current.sid != res.sid:
            bound.error("duplicate_dial_hung_up", sid=res.sid)
            client.hangup(res.sid)
        return "stale"

    def _after_uncertain_dial(
        self,
        att: CallAttempt,
        campaign: Campaign,
        provider: ProviderConfig,
        token: str,
        exc: RetryableDialError,
    ) -> str:
        """5xx or timeout: the call may exist. Look it up before anything dials again."""
        found = self._lookup(att, provider)
        if found is not None:
            return self._adopt(att, provider, token, found)
        self._end(
            att,
            campaign,
            provider,
            "failed",
            f"provider error: {exc.reason}",
            error_code=exc.code,
            allowed="dialing",
        )
        return "provider_error"

    def _lookup(self, att: CallAttempt, provider: ProviderConfig) -> CallStatus | None:
        """This attempt's call, if the provider placed one: to + from within the dial's time window, and
        the attempt's ref when the provider reports it (never another attempt's call to the same number)."""
        start = att.dialing_at or att.placed_at or self.clock.now_ms()
        until = start + round(self.settings.dial_timeout_s * 1000) + 5_000
        ref = keys.ref(att.account_id, att.key)
        candidates = self.providers.get(provider).lookup(
            att.phone, from_number(provider, att.contact), start - 5_000, until
        )
        return next((c for c in candidates if c.ref == ref), None)

    def _adopt(self, att: CallAttempt, provider: ProviderConfig, token: str, found: CallStatus) -> str:
        """A call the provider has but we did not record: record it (and its outcome if it is over)."""
        self.store.record_dial(
            att, token, found.sid, "queued", self._deadline(att, provider), self.clock.now_ms()
        )
        log.info("dial_reconciled", campaign_id=att.campaign_id, attempt=att.key, sid=found.sid)
        if found.final:
            self.record_outcome(att.account_id, att.key, found)
        return "reconciled"

    def _reconcile_dial(self, att: CallAttempt, campaign: Campaign, provider: ProviderConfig) -> str:
        """An attempt left in `dialing` by a worker that died: adopt the call if the provider placed it;
        otherwise give the admission back (CAS on the dead worker's token) so the attempt goes through
        every check again (a pause, hours, pace) before it is dialled."""
        found = self._lookup(att, provider)
        if found is not None:
            return self._adopt(att, provider, att.dial_token or "", found)
        now = self.clock.now_ms()
        if not self.store.undo_admit(att, provider.name, att.dial_token or "", now, "recovered", now):
            return "stale"
        log.info("dial_recovered_after_crash", campaign_id=att.campaign_id, attempt=att.key)
        return "recovered"

    def _deadline(self, att: CallAttempt, provider: ProviderConfig) -> int:
        start = att.placed_at or self.clock.now_ms()
        return start + (RING_TIMEOUT_S + provider.max_call_seconds) * 1000 + LIVE_GRACE_MS

    def _callback_url(self, ref: str) -> str | None:
        base = self.settings.public_url
        return f"{base.rstrip('/')}/twilio/status?ref={ref}" if base else None

    def _stop_campaign(self, campaign: Campaign, reason: str, att: CallAttempt | None = None) -> str:
        """The provider is gone or disabled: the campaign fails with the reason; a claimed attempt ends
        canceled now (the others when they come due)."""
        ok, _ = self.store.transition(
            campaign.account_id, campaign.id, ["running"], "failed", reason, self.clock.now_ms()
        )
        if ok:
            log.warning("campaign_failed", campaign_id=campaign.id, reason=reason)
        if att is not None:
            self._end(att, campaign, None, "canceled", reason, allowed="claimed")
        return "stopped"

    # --- outcomes -------------------------------------------------------------------------------------------
    def record_outcome(self, account_id: str, key: str, status: CallStatus) -> str:
        """The one outcome path (simulator event, Twilio callback, reconciliation)."""
        att = self.store.get_attempt(account_id, key)
        if att is None:
            return "missing"
        if not status.final:
            return "progress"
        campaign, _ = self.store.get_campaign(account_id, att.campaign_id)
        provider = self.store.find_provider(campaign.account_id, campaign.provider)
        return self._end(
            att,
            campaign,
            provider,
            status.status,
            "",
            answered_by=status.answered_by,
            duration_s=status.duration_s,
            error_code=status.error_code,
            sid=status.sid,
            ended_at=status.ended_at_ms,
            allowed=LIVE_STATES_CSV,
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
        now = self.clock.now_ms()
        ended = ended_at or now
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
        cost = call_duration_cost(duration_s, price, state)
        applied, result = self.store.finish(
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
        if result in ("completed", "stopped"):
            bound.info("campaign_" + result)
        if result == "completed":
            self.after_completion(campaign)
        return outcome

    def after_completion(self, campaign: Campaign) -> None:
        """`next_campaign_id`: start the chained campaign (once)."""
        from dialer.campaigns import start_next

        start_next(self.store, self.clock, campaign, self.providers)

    def sim_event(self, sid: str) -> str:
        """A simulated call reached its outcome: the same path as a Twilio status callback."""
        from dialer.telephony.simulator import read_call

        status = read_call(self.store.r, sid, self.clock.now_ms())
        result = "missing"
        if status is not None and status.ref:
            account_id, key = keys.parse_ref(status.ref)
            result = self.record_outcome(account_id, key, status)
        self.store.ack_event(sid)
        return result

    # --- lost calls -------------------------------------------------------------------------------------------
    def reconcile_live(self, ref: str) -> str:
        """A live call past its deadline: ask the provider; end it if the provider knows it is over."""
        account_id, key = keys.parse_ref(ref)
        att = self.store.get_attempt(account_id, key)
        if att is None or att.state not in LIVE_STATES:
            self.store.forget_live(ref)
            return "gone"
        campaign, _ = self.store.get_campaign(account_id, att.campaign_id)
        provider = self.store.find_provider(campaign.account_id, campaign.provider)
        status = None
        if provider is not None:
            client = self.providers.get(provider)
            status = client.fetch(att.sid) if att.sid else self._lookup(att, provider)
        if status is not None and status.final:
            return self.record_outcome(account_id, key, status)
        if status is not None:
            return "still_live"
        self._end(
            att,
            campaign,
            provider,
            "failed",
            "lost: the provider has no record of the call",
            allowed=LIVE_STATES_CSV,
        )
        return "lost"
