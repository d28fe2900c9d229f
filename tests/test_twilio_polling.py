"""Without a public URL Twilio cannot call back: live calls are polled (a scheduler-claimed check with
backoff, never a sleeping worker thread) and the campaign completes the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_twilio_calls import finished
from twilio_stack import TwilioStack, twilio_stack


@pytest.fixture(scope="module")
def tw(store: Any, redis_url: str) -> Iterator[TwilioStack]:
    with twilio_stack(store, redis_url, callbacks=False) as stack:
        yield stack


def test_a_campaign_completes_by_polling_when_no_public_url_is_set(tw: TwilioStack) -> None:
    scope = tw.account()
    numbers = [f"+3460070000{i}" for i in range(8)]
    cid = scope.submit(
        {"contacts": [{"phone": n} for n in numbers], "say": "hi", "recall": [0.02]}, start=True
    )["campaign_id"]
    view = finished(scope, cid, timeout=90)
    assert view["status"] == "completed"
    assert (view["counters"]["delivered"], view["counters"]["failed"]) == (5, 3)  # 0-3 and 4 (recalled); 5-7
    creates = [c for c in tw.fake.creates if c.to in numbers]
    assert creates and all(c.get("StatusCallback") is None for c in creates)
    assert not tw.fake.callbacks
    fetches = [path for method, path in tw.fake.requests if method == "GET" and "/Calls/CA" in path]
    assert len(fetches) >= len(creates)  # each live call was fetched until it was over
    assert scope.account()["reserved"] == "0.00"
