"""Intake: bad campaign JSON is refused with a message naming the field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import add_sim_provider, session_service, show

from dialer import keys
from dialer.errors import InvalidRequest, NotFound

svc = session_service()
core = svc.core

GOOD = {"contacts": [{"phone": "+34600123451"}], "say": "Hello"}


def _submit(store: Any, account: str, body: Any, start: bool = False) -> dict[str, Any]:
    return dict(svc.for_account(account).submit(body, start=start))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"say": "hi"}, "contacts: a list of contacts"),
        ({"contacts": [], "say": "hi"}, "contacts: at least one contact"),
        (
            {"contacts": [{"phone": "+34600123451"}, {"first_name": "x"}], "say": "hi"},
            "contacts.1.phone: Each contact must have a non-empty phone field",
        ),
        (
            {"contacts": [{"phone": "  "}], "say": "hi"},
            "contacts.0.phone: Each contact must have a non-empty phone",
        ),
        ({**GOOD, "recall": "[abc]"}, "recall: must be a JSON array of minutes"),
        ({**GOOD, "recall": [-5]}, "recall: entry 0: -5 must be greater than 0"),
        ({**GOOD, "recall": "[30, -1]"}, "recall: entry 1: -1 must be greater than 0"),
        ({**GOOD, "recal": [30]}, "recal: unknown field"),
        ({"contacts": [{"phone": "+34600123451"}]}, "say: a message is required"),
        ({**GOOD, "launch_at": "tomorrow"}, "launch_at:"),
        (
            {**GOOD, "contacts": [{"phone": "+34600123451", "timezone": "Mars/Base"}]},
            "contacts.0.timezone: Value error, unknown time zone",
        ),
        ({**GOOD, "say": "Hi {{first_name}}"}, "Contact 0: missing value for {{first_name}}"),
        ({**GOOD, "say": None, "xml": "<Response><Say>hi</Response>"}, "xml: not well-formed XML"),
        ([1, 2], "the request body must be a JSON object"),
    ],
)
def test_bad_campaign_is_refused_naming_the_field_and_nothing_is_stored(
    store: Any, account: str, body: Any, message: str
) -> None:
    """A bad request changes nothing: no campaign id is indexed for the account."""
    before = store.r.hlen(keys.CAMPAIGN_INDEX)
    with pytest.raises(InvalidRequest) as exc:
        _submit(store, account, body)
    assert message.replace("Value error, ", "") in exc.value.message
    assert store.r.zcard(keys.account_campaigns(account)) == 0
    assert store.r.hlen(keys.CAMPAIGN_INDEX) == before


def test_invalid_numbers_are_counted_and_the_rest_proceeds(store: Any, account: str) -> None:
    """An invalid number inside a valid campaign is an intake error, a repeated number is skipped."""
    add_sim_provider(store, account)
    body = {
        "contacts": [
            {"phone": "+34600123451"},
            {"phone": "+15555550100"},
            {"phone": "600123451"},
            {"phone": "+34600123452"},
        ],
        "say": "hi",
    }
    res = _submit(store, account, body)
    assert res["total_contacts"] == 4
    assert res["error_calls"] == 1
    assert res["scheduled_calls"] == 3
    assert res["status"] == "draft"
    view = show(svc, account, res["campaign_id"])
    assert view["counters"]["skipped"] == 1  # 600123451 is +34600123451 again (region ES)


def test_submit_with_start_schedules_it_and_the_idempotency_key_returns_the_first(
    store: Any, account: str
) -> None:
    add_sim_provider(store, account)
    body = {**GOOD, "idempotency_key": "order-42", "launch_at": "2999-01-01T10:00:00"}
    first = _submit(store, account, body, start=True)
    again = _submit(store, account, body, start=True)
    assert again["campaign_id"] == first["campaign_id"]
    assert first["status"] == "scheduled"
    assert first["scheduled"] is True
    assert first["launch_at"] == "2999-01-01T10:00:00.000Z"
    assert first["message"] == "Scheduled 1 calls for 01/01/2999 10:00"
    assert store.r.zcard(keys.account_campaigns(account)) == 1


def test_unknown_account_is_refused(store: Any) -> None:
    with pytest.raises(NotFound, match="account not found: nobody"):
        svc.for_account("nobody").submit(GOOD)
