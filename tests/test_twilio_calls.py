"""Twilio for real, end to end: the real `twilio` SDK against a local server that speaks Twilio's REST API,
status callbacks posted over real HTTP with real signatures to our web app, real worker and scheduler
processes. Everything the engine guarantees holds for these calls: one create per attempt, money, pace,
recall; errors mapped to what they mean."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import wait_for
from twilio.request_validator import RequestValidator
from twilio_stack import TwilioStack, twilio_stack

from dialer import keys
from dialer.clock import to_iso


@pytest.fixture(scope="module")
def tw(store: Any, redis_url: str) -> Iterator[TwilioStack]:
    with twilio_stack(store, redis_url, callbacks=True) as stack:
        yield stack


def finished(scope: Any, cid: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (v := scope.campaign(cid))["status"] in ("completed", "stopped", "failed") and v,
        timeout=timeout,
        what=f"campaign {cid} to end",
    )


def test_a_twenty_contact_campaign_completes_through_twilio_with_signed_callbacks(tw: TwilioStack) -> None:
    """One create per attempt, the call SIDs recorded, the right TwiML (a contact value such as
    `</Say><Dial>` stays text), outcomes from signed callbacks, 21211 failing one attempt with its code
    while the rest proceed, money settled from CallDuration."""
    scope = tw.account()
    contacts = [
        {"phone": f"+3460010{i:04d}", "first_name": "</Say><Dial>+34600999999</Dial>"} for i in range(20)
    ]
    body = {"contacts": contacts, "say": "Hola {{first_name}}", "language": "es-ES", "recall": [0.02]}
    cid = scope.submit(body, start=True)["campaign_id"]
    view = finished(scope, cid)
    assert view["status"] == "completed"
    calls = scope.calls(cid)
    by_number = Counter(c.to for c in tw.fake.creates if c.to in {x["phone"] for x in contacts})
    attempts = Counter(r["phone"] for r in calls)
    assert by_number == attempts  # exactly one create per attempt
    placed = {r["sid"] for r in calls if r["sid"]}
    assert placed <= set(tw.fake.calls) and len(placed) == sum(1 for r in calls if r["sid"])
    twiml = tw.fake.creates_to("+34600100000")[0].twiml or ""
    assert "&lt;/Say&gt;&lt;Dial&gt;" in twiml and "<Dial>" not in twiml and 'language="es-ES"' in twiml
    refused = [r for r in calls if r["phone"].endswith("9")]
    assert refused and all(r["outcome"] == "failed" and r["sid"] is None for r in refused)
    assert {svc_att.error_code for svc_att in _attempts(tw, scope, cid) if svc_att.phone.endswith("9")} == {
        "21211"
    }
    failed_calls = [r for r in calls if r["phone"].endswith("8")]  # the fate of digit 8: failed, 31005
    assert failed_calls and all("31005" in (r["reason"] or "") for r in failed_calls), failed_calls
    assert view["counters"]["delivered"] == 8 + 2  # digits 0-3 twice each, 4 on its recall
    assert sum(1 for d in tw.fake.callbacks if d.status == 204) > 0
    assert not [d for d in tw.fake.callbacks if d.status not in (204, None)]
    settled = sum(int(float(r["cost"]) * 10_000) for r in calls)
    acc = scope.account()
    assert (acc["reserved"], acc["balance"]) == ("0.00", f"{(1_000_000 - settled) / 10_000:.2f}")


def _attempts(tw: TwilioStack, scope: Any, cid: str) -> list[Any]:
    return tw.svc.core.store.campaign_attempts(scope.account_id, cid)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"audio": "https://example.com/offer.mp3"}, "<Play>https://example.com/offer.mp3</Play>"),
        ({"xml": '<Response><Say voice="alice">Raw</Say></Response>'}, '<Say voice="alice">Raw</Say>'),
    ],
)
def test_audio_and_raw_twiml_reach_twilio_as_given(
    tw: TwilioStack, message: dict[str, str], expected: str
) -> None:
    scope = tw.account()
    cid = scope.submit({"contacts": [{"phone": "+34600200001"}], **message}, start=True)["campaign_id"]
    finished(scope, cid)
    create = next(c for c in tw.fake.creates if c.to == "+34600200001" and expected in (c.twiml or ""))
    assert (
        create.get(
            "StatusCallback",
        )
        and create.get("MachineDetection") == "Enable"
    )


def test_an_unsigned_or_forged_callback_is_403_and_a_replayed_final_one_changes_nothing(
    tw: TwilioStack,
) -> None:
    scope = tw.account()
    cid = scope.submit({"contacts": [{"phone": "+34600300001"}], "say": "hi"}, start=True)["campaign_id"]
    view = finished(scope, cid)
    att = _attempts(tw, scope, cid)[0]
    ref = keys.ref(scope.account_id, att.key)
    final = next(
        d
        for d in tw.fake.callbacks
        if d.params.get("CallSid") == att.sid and d.params["CallStatus"] == "completed"
    )
    url = f"{tw.public_url}/twilio/status"
    forged = {**final.params, "CallDuration": "3600"}
    assert (
        httpx.post(
            url, params={"ref": ref}, data=forged, headers={"X-Twilio-Signature": final.signature}
        ).status_code
        == 403
    )
    assert httpx.post(url, params={"ref": ref}, data=final.params).status_code == 403
    wrong = RequestValidator("not-the-token").compute_signature(final.url, final.params)
    assert httpx.post(final.url, data=final.params, headers={"X-Twilio-Signature": wrong}).status_code == 403
    again = httpx.post(final.url, data=final.params, headers={"X-Twilio-Signature": final.signature})
    assert again.status_code == 204
    assert scope.campaign(cid) == view  # nothing charged twice, no counter moved
    assert scope.account()["reserved"] == "0.00"


def test_rate_limited_dials_slow_the_pace_and_lose_no_attempt(tw: TwilioStack) -> None:
    scope = tw.account(calls_per_second=10)
    tw.fake.fail_next_create(status=429, code=20429, count=3, retry_after=1.0)
    limited_before = int(tw.svc.core.store.r.hget(keys.STATS, "deferred|rate_limited") or 0)
    numbers = [f"+3460040000{i}" for i in range(4)]
    cid = scope.submit({"contacts": [{"phone": n} for n in numbers], "say": "hi"}, start=True)["campaign_id"]
    view = finished(scope, cid)
    assert view["counters"]["delivered"] == 4
    placed = Counter(c.to for c in tw.fake.calls.values() if c.to in numbers)
    assert placed == dict.fromkeys(numbers, 1)
    state = tw.svc.core.store.r.hgetall(keys.provider_state(scope.account_id, "twilio_primary"))
    assert int(state["slow_gap"]) >= 1000
    # counted where /metrics reads deferrals (dialer_deferrals_total{reason="rate_limited"}: the alert)
    assert int(tw.svc.core.store.r.hget(keys.STATS, "deferred|rate_limited") or 0) - limited_before >= 3


def test_bad_credentials_pause_the_campaign_instead_of_burning_through_contacts(tw: TwilioStack) -> None:
    scope = tw.account()
    tw.fake.fail_next_create(status=401, code=20003, count=1)
    cid = scope.submit(
        {"contacts": [{"phone": "+34600500001"}, {"phone": "+34600500002"}], "say": "hi"}, start=True
    )["campaign_id"]
    view = wait_for(lambda: (v := scope.campaign(cid))["status"] == "paused" and v, timeout=30)
    assert view["status_reason"] == "provider_auth_failed"
    assert view["counters"]["failed"] == 0
    scope.resume(cid)
    assert finished(scope, cid)["counters"]["delivered"] == 2


def test_a_refusal_of_our_caller_id_pauses_the_campaign_instead_of_failing_every_contact(
    tw: TwilioStack,
) -> None:
    """21210 (a caller id the account has not verified) is about our settings, not the contact: paused with
    its reason, no contact failed; resumed after the fix, every contact is called once."""
    scope = tw.account()
    tw.fake.fail_next_create(
        status=400, code=21210, count=1, message="The source phone number is not verified"
    )
    phones = ["+34600520001", "+34600520002"]
    cid = scope.submit({"contacts": [{"phone": p} for p in phones], "say": "hi"}, start=True)["campaign_id"]
    view = wait_for(lambda: (v := scope.campaign(cid))["status"] == "paused" and v, timeout=30)
    assert view["status_reason"] == "provider_config_refused" and view["counters"]["failed"] == 0
    scope.resume(cid)
    assert finished(scope, cid)["counters"]["delivered"] == 2
    assert [len(tw.fake.calls_to(p)) for p in phones] == [1, 1]  # the refused create made no call


def test_credentials_the_workers_cannot_open_pause_the_campaign_and_giving_them_again_resumes_it(
    tw: TwilioStack,
) -> None:
    """A token sealed with another DIALER_SECRET_KEY than the workers have (a key changed, or set on one
    process only): the campaign pauses with that reason — nothing dialled, nothing lost, no retry loop —
    it can still be looked at, and once the token is given again it resumes and dials each contact once."""
    from dialer.providers import ProviderSpec
    from dialer.secrets import SecretBox, new_key

    scope = tw.account()
    store = tw.svc.core.store
    phones = ["+34600510001", "+34600510002", "+34600510003"]
    launch = to_iso(store.r.time()[0] * 1000 + 3000)  # started (its checks pass), then the key changes
    body = {"contacts": [{"phone": p} for p in phones], "say": "hi", "launch_at": launch}
    cid = scope.submit(body, start=True)["campaign_id"]
    cfg = store.get_provider(scope.account_id, "twilio_primary")
    store.put_provider(cfg.model_copy(update={"auth_token": SecretBox(new_key()).seal(tw.fake.auth_token)}))
    view = wait_for(lambda: (v := scope.campaign(cid))["status"] == "paused" and v, timeout=30)
    assert view["status_reason"] == "provider_credentials_unreadable"
    assert scope.calls(cid) and all(not tw.fake.creates_to(p) for p in phones)
    assert scope.provider("twilio_primary")["credentials"] == "encrypted"
    scope.update_provider("twilio_primary", ProviderSpec(auth_token=tw.fake.auth_token))
    scope.resume(cid)
    assert finished(scope, cid)["counters"]["delivered"] == 3
    assert [len(tw.fake.creates_to(p)) for p in phones] == [1, 1, 1]


def test_a_500_after_twilio_created_the_call_leads_to_adoption_not_a_second_create(tw: TwilioStack) -> None:
    scope = tw.account()
    tw.fake.fail_next_create(status=500, code=20500, after_create=True)
    cid = scope.submit({"contacts": [{"phone": "+34600600001"}], "say": "hi"}, start=True)["campaign_id"]
    view = finished(scope, cid)
    assert len(tw.fake.creates_to("+34600600001")) == 1
    att = _attempts(tw, scope, cid)[0]
    assert att.sid == tw.fake.calls_to("+34600600001")[0].sid
    assert view["counters"]["delivered"] == 1 and view["counters"]["sent"] == 1
