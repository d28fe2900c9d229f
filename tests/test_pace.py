"""The pace and quota rules have one statement (dialer/pace.py); admit.lua, the copy that decides, is
checked against it here on real Redis, so the Python rule and the script cannot drift apart."""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from conftest import add_sim_provider, make_engine, uid

from dialer import intake, keys
from dialer.clock import FakeClock
from dialer.money import parse_money
from dialer.pace import (
    DIAL_TOLERANCE_MS,
    MAX_SLOT_WAIT_MS,
    deferral_due,
    from_number,
    gap_ms,
    hour_start,
    hour_window,
    late_for_slot,
    pace_slot,
    provider_next,
    stagger_ms,
)

START = 1_900_000_000_000 + 1234  # a fixed instant, not on an hour boundary


def claimed_attempts(store: Any, n: int, **provider: Any) -> tuple[Any, list[Any], FakeClock]:
    """A running campaign of n contacts, all due at START and claimed as the scheduler would."""
    account = uid("pace")
    store.create_account(account, "P", parse_money("1000"), "ES", START)
    add_sim_provider(store, account, **provider)
    clock = FakeClock(START)
    engine = make_engine(store, clock)
    body = {
        "contacts": [{"phone": f"+34600{i:05d}1"} for i in range(n)],
        "say": "hi",
        "stagger_seconds": 0.001,
    }
    cid = str(intake.submit(engine.core, account, body, True)["campaign_id"])
    engine.launch(account, cid)
    atts = sorted(store.campaign_attempts(account, cid), key=lambda a: a.contact)
    refs = [keys.ref(account, a.key) for a in atts]
    assert store.claim_refs(refs, START + 60_000, START + 600_000) == refs
    for a in atts:  # expansion staggers them 1 ms apart; here every one is due now
        store.r.hset(keys.attempt(account, a.key), "due_at", START)
    return engine, [store.get_attempt(account, a.key) for a in atts], clock


def admit(store: Any, att: Any, now: int, stagger: int) -> tuple[str, int, str]:
    return store.admit(
        att, "sim", uid("tok"), stagger, now, MAX_SLOT_WAIT_MS, DIAL_TOLERANCE_MS, "+34911234567"
    )[:3]  # type: ignore[no-any-return]


@pytest.mark.parametrize("quota", [1, 7, 500, 3600, 10_000])
def test_admit_spreads_quota_deferrals_exactly_as_the_rule_says(store: Any, quota: int) -> None:
    """With the hour's quota used up, the k-th deferred attempt is due at deferral_due(next hour, k, quota)."""
    _engine, atts, clock = claimed_attempts(store, 6, hourly_quota=quota, calls_per_second=1000)
    account = atts[0].account_id
    store.r.set(keys.provider_quota(account, "sim", hour_start(START)), quota)
    _, next_hour = hour_window(START)
    dues = []
    for att in atts:
        decision, due, reason = admit(store, att, clock.now_ms(), 1)
        assert (decision, reason) == ("defer", "quota")
        dues.append(due)
    assert dues == [deferral_due(next_hour, rank, quota) for rank in range(1, 7)]


def test_admit_grants_the_slots_the_pace_rule_gives() -> None:
    """Campaign stagger 300 ms, provider 2 calls/s: each admission gets pace_slot(now, due, campaign next,
    provider next); within a second it is slept for, later it is a deferral."""
    from conftest import session_service

    store = session_service().core.store
    _engine, atts, clock = claimed_attempts(store, 4, calls_per_second=2)
    stagger, gap = 300, gap_ms(2)
    now = clock.now_ms()
    c_next = p_next = 0
    for att in atts:
        expected = pace_slot(now, att.due_at, c_next, p_next)
        decision, slot, _ = admit(store, att, now, stagger)
        assert slot == expected
        assert decision == (
            "admit" if expected == now else "sleep" if expected - now <= MAX_SLOT_WAIT_MS else "defer"
        )
        c_next, p_next = expected + stagger, provider_next(expected, p_next, gap)


@pytest.mark.parametrize("cps", [1, 3, 7, 20, 30, 333, 1000])
def test_any_cps_plus_one_slots_span_more_than_a_second_by_the_dial_tolerance(cps: int) -> None:
    """Back-to-back admissions at a provider's full rate (each dial taken the moment its slot comes): the
    slots admit.lua grants are spaced so that cps + 1 of them span at least 1 s plus the dial tolerance
    (whole-millisecond gaps would let 31 dials a second through at 30 cps), and the rate is >= 97 %."""
    from conftest import session_service

    store = session_service().core.store
    n = 2 * cps + 2
    _engine, atts, clock = claimed_attempts(store, n, calls_per_second=cps, max_concurrent=n)
    slots = []
    for att in atts:
        while (decision := admit(store, att, clock.now_ms(), 1))[0] != "admit":
            assert decision[0] in ("sleep", "defer"), decision  # a slot over a second ahead is deferred to
            clock.set(decision[1])
            if decision[0] == "defer":  # and claimed again when it comes, keeping the slot it booked
                ref = keys.ref(att.account_id, att.key)
                assert store.claim_refs([ref], clock.now_ms() + 1000, clock.now_ms() + 600_000) == [ref]
        slots.append(decision[1])
    spans = [b - a for a, b in zip(slots, slots[cps:], strict=False)]
    assert min(spans) >= 1000 + DIAL_TOLERANCE_MS, min(spans)
    rate = (len(slots) - 1) / ((slots[-1] - slots[0]) / 1000)
    assert 0.97 * cps <= rate <= cps, rate


def test_a_dial_later_than_the_tolerance_is_admitted_again() -> None:
    assert not late_for_slot(START + DIAL_TOLERANCE_MS, START)
    assert late_for_slot(START + DIAL_TOLERANCE_MS + 1, START)


def test_stagger_defaults_to_the_providers_spacing() -> None:
    assert stagger_ms(None, 4) == 250
    assert stagger_ms(0.4, 4) == 400
    assert stagger_ms(None, None) == 1000


def test_the_caller_id_is_in_the_contacts_country_and_stable() -> None:
    """A Spanish contact is called from the Spanish number; a contact with no same-country number gets the
    same one of the others every time."""
    pool = ["+442071838750", "+34911234567", "+33142685300"]
    assert from_number(pool, "+34600123451") == "+34911234567"
    chosen = {from_number(pool, "+4915112345678") for _ in range(5)}
    assert len(chosen) == 1
    assert chosen.pop() in pool


def test_an_attempt_claimed_before_it_is_due_books_no_slot() -> None:
    """Claimed up to a second ahead, attempts reach workers in any order: one not yet due sleeps until it is
    without booking a pace slot, so an earlier one that arrives after it still gets the earlier slot."""
    from conftest import session_service

    store = session_service().core.store
    _engine, (early, late), clock = claimed_attempts(store, 2, calls_per_second=20)
    for att, due in ((early, START + 100), (late, START + 500)):
        store.r.hset(keys.attempt(att.account_id, att.key), "due_at", due)
    assert admit(store, late, START, 1) == ("sleep", START + 500, "due")
    clock.set(START + 100)
    assert admit(store, early, clock.now_ms(), 1) == ("admit", START + 100, "")
    clock.set(START + 500)
    assert admit(store, late, clock.now_ms(), 1) == ("admit", START + 500, "")


def test_every_country_is_called_from_a_number_of_its_own_calling_code() -> None:
    """With one caller id per calling code in the pool, a contact anywhere is called from its own code's
    number (the code is read from the E.164 prefix: one example number per region checks every code)."""
    examples = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        if (ex := phonenumbers.example_number(region)) is not None:
            examples[region] = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164)
    pool = {phonenumbers.parse(n).country_code: n for n in examples.values()}
    for number in examples.values():
        chosen = from_number(list(pool.values()), number)
        assert phonenumbers.parse(chosen).country_code == phonenumbers.parse(number).country_code, number
