"""Pure rules: money, recall maths, outcome classification, templates, phone numbers."""

from __future__ import annotations

import pytest

from dialer.errors import InvalidRequest
from dialer.money import call_cost, format_money, parse_money, reservation
from dialer.outcomes import decide
from dialer.phones import InvalidNumber, normalize
from dialer.recall import next_recall_due, parse_recall
from dialer.templates import MissingValue, render, twiml_for


def test_money_is_exact_to_four_decimals_and_refuses_more() -> None:
    assert parse_money("49.80") == 498_000
    assert parse_money("0.0135") == 135
    assert format_money(498_000) == "49.80"
    assert format_money(135) == "0.0135"
    assert format_money(-5000) == "-0.50"
    with pytest.raises(InvalidRequest, match="at most 4 decimals"):
        parse_money("0.00001")
    with pytest.raises(InvalidRequest, match="amount"):
        parse_money("ten")


def test_cost_is_per_started_minute_and_reservation_is_one_longest_call() -> None:
    assert call_cost(0, 200) == 0
    assert call_cost(1, 200) == 200
    assert call_cost(60, 200) == 200
    assert call_cost(61, 200) == 400
    assert reservation(600, 200) == 2000


def test_recall_string_and_array_are_the_same_policy() -> None:
    assert parse_recall("[30,120]") == parse_recall([30, 120]) == [30.0, 120.0]
    assert parse_recall("[0.05, 0.1]") == [0.05, 0.1]
    assert parse_recall(None) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[abc]", "JSON array"),
        ([-1], "greater than 0"),
        ([0], "greater than 0"),
        ([5, 5], "greater than the entry"),
        (list(range(1, 12)), "at most 10"),
        ([10081], "more than 7 days"),
        ("5", "array"),
        (["5"], "not a number"),
    ],
)
def test_bad_recall_is_refused_with_the_entry_named(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_recall(value)


def test_recall_offsets_count_from_the_first_call() -> None:
    first = 1_000_000
    assert next_recall_due([0.05, 0.1], 1, first, first + 500) == first + 3_000
    assert next_recall_due([0.05, 0.1], 2, first, first + 3_500) == first + 6_000
    assert next_recall_due([0.05, 0.1], 3, first, first + 6_500) is None
    # a call that ended after the offset: the recall is not due before it ended
    assert next_recall_due([0.05], 1, first, first + 10_000) == first + 10_000


def test_outcomes_recall_no_answer_busy_failure_and_machine_but_never_a_human() -> None:
    common = {"permanent": False, "recall": [1.0], "attempt": 1, "first_at_ms": 0, "ended_at_ms": 10}
    assert decide("completed", "human", recall_on_machine=True, **common) == ("delivered", None)
    assert decide("no-answer", None, recall_on_machine=True, **common) == ("recall", 60_000)
    assert decide("busy", None, recall_on_machine=True, **common)[0] == "recall"
    assert decide("completed", "machine_start", recall_on_machine=True, **common)[0] == "recall"
    assert decide("completed", "machine_start", recall_on_machine=False, **common) == ("failed", None)
    assert decide("failed", None, recall_on_machine=True, **{**common, "permanent": True}) == ("failed", None)
    assert decide("no-answer", None, recall_on_machine=True, **{**common, "attempt": 2}) == ("failed", None)


def test_templates_fill_contact_fields_defaults_and_params() -> None:
    data = {"first_name": "Ana", "custom_fields": {"lead_id": "L-1"}, "params": ["x", "y"]}
    assert render("Hi {{first_name}} ({{custom_fields.lead_id}}) {{2}}", data) == "Hi Ana (L-1) y"
    assert render("Hi {{last_name|there}}", data) == "Hi there"
    with pytest.raises(MissingValue) as exc:
        render("Hi {{last_name}}", data)
    assert exc.value.placeholder == "{{last_name}}"
    # seed 001 counts params: one given empty is given (its default, if any, wins); one not given is missing
    assert render("Look {{1}}, {{2}}.", {"params": ["x", ""]}) == "Look x, ."
    assert render("Look {{2|here}}", {"params": ["x", ""]}) == "Look here"
    with pytest.raises(MissingValue):
        render("Look {{3}}", {"params": ["x", ""]})


def test_twiml_escapes_contact_values() -> None:
    xml = twiml_for("Hello {{first_name}}", None, None, {"first_name": "</Say><Dial>+34600000000</Dial>"})
    assert "<Dial>" not in xml
    assert "&lt;/Say&gt;&lt;Dial&gt;" in xml


def test_numbers_are_normalised_to_e164_with_the_account_region() -> None:
    assert normalize("+34 600 123 456") == "+34600123456"
    assert normalize("600123456", "ES") == "+34600123456"
    with pytest.raises(InvalidNumber):
        normalize("+15555550100")
    with pytest.raises(InvalidNumber):
        normalize("hello")
