"""TwilioProvider through the real twilio SDK over real HTTP, against FakeTwilio (no patching, no mocks)."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from conftest import wait_for
from fake_twilio import CallbackSink, Delivery, FakeTwilio

from dialer.errors import ConnectionFailed
from dialer.telephony.base import (
    AmdMode,
    AuthFailed,
    DialError,
    DialRequest,
    PermanentDialError,
    RateLimited,
    RetryableDialError,
)
from dialer.telephony.twilio import TwilioProvider, parse_retry_after

CALLER = "+15005550006"
OTHER_CALLER = "+15005550007"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="fr-FR">Bonjour &amp; «merci»</Say></Response>'


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    """Calls play by themselves (ringing, answered, over in a few tenths of a second)."""
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def manual() -> Iterator[FakeTwilio]:
    """Calls stay queued until the test moves them."""
    with FakeTwilio(auto=False) as server:
        yield server


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as receiver:
        yield receiver


def provider_for(fake: FakeTwilio, token: str | None = None, timeout_s: float = 3.0) -> TwilioProvider:
    return TwilioProvider(
        fake.account_sid, token or fake.auth_token, api_base=fake.url, http_timeout_s=timeout_s
    )


def request(
    to: str,
    from_: str = CALLER,
    *,
    callback: str | None = None,
    amd: AmdMode = "detect",
    timeout_s: int = 25,
    time_limit_s: int = 120,
) -> DialRequest:
    return DialRequest(
        ref="acct1|camp1:c1:1",
        key="camp1:c1:1",
        campaign_id="camp1",
        to=to,
        from_=from_,
        twiml=TWIML,
        token="tok1",
        timeout_s=timeout_s,
        time_limit_s=time_limit_s,
        status_callback=callback,
        amd=amd,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def final_delivery(fake: FakeTwilio, sid: str) -> Delivery:
    def find() -> Delivery | None:
        return next(
            (
                d
                for d in fake.deliveries_for(sid)
                if d.params["CallStatus"] not in ("initiated", "ringing", "in-progress")
            ),
            None,
        )

    return wait_for(find, timeout=5, what=f"the final callback of {sid}")


# --- dial ---------------------------------------------------------------------------------------------------
def test_dial_sends_twiml_ring_timeout_time_limit_and_returns_a_live_call(fake: FakeTwilio) -> None:
    """dial posts To, From, the TwiML exactly as given, Timeout and TimeLimit, and returns the call's sid
    with a non-final initial status."""
    result = provider_for(fake).dial(request("+15551230001", timeout_s=25, time_limit_s=120))

    [create] = fake.creates
    assert create.sid == result.sid
    assert re.fullmatch(r"CA[0-9a-f]{32}", result.sid)
    assert result.status == "queued"
    assert (create.get("To"), create.get("From")) == ("+15551230001", CALLER)
    assert create.twiml == TWIML
    assert (create.get("Timeout"), create.get("TimeLimit")) == ("25", "120")


def test_dial_without_a_callback_url_asks_for_no_callbacks(fake: FakeTwilio) -> None:
    """Without a status callback, no StatusCallback, StatusCallbackEvent or StatusCallbackMethod is sent."""
    provider_for(fake).dial(request("+15551230001"))

    fields = fake.creates[0].fields
    assert not {"StatusCallback", "StatusCallbackEvent", "StatusCallbackMethod"} & set(fields)


def test_dial_with_a_callback_url_asks_for_every_progress_event_by_post(fake: FakeTwilio) -> None:
    """With a status callback, dial sends its URL, the four progress events and POST."""
    url = "https://dialer.example.com/twilio/status?ref=" + quote("acct1|camp1:c1:1")
    provider_for(fake).dial(request("+15551230001", callback=url))

    create = fake.creates[0]
    assert create.get("StatusCallback") == url
    assert create.fields["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert create.get("StatusCallbackMethod") == "POST"


@pytest.mark.parametrize(
    ("amd", "expected"), [("off", None), ("detect", "Enable"), ("voicemail", "DetectMessageEnd")]
)
def test_dial_maps_the_amd_mode_to_machine_detection(
    fake: FakeTwilio, amd: AmdMode, expected: str | None
) -> None:
    """amd off sends no MachineDetection, detect sends Enable, voicemail sends DetectMessageEnd."""
    provider_for(fake).dial(request("+15551230001", amd=amd))

    assert fake.creates[0].get("MachineDetection") == expected


# --- dial errors --------------------------------------------------------------------------------------------
def test_an_invalid_number_is_a_permanent_error_with_twilio_code(fake: FakeTwilio) -> None:
    """Twilio's 400 / 21211 (invalid To) becomes PermanentDialError with code 21211, and no call exists."""
    with pytest.raises(PermanentDialError) as err:
        provider_for(fake).dial(request("+15551230009"))

    assert err.value.code == "21211"
    assert fake.calls == {}


@pytest.mark.parametrize(("status", "code"), [(400, 21215), (403, 13227), (400, 21216), (400, 21999)])
def test_other_refusals_of_the_number_are_permanent_with_their_code(
    fake: FakeTwilio, status: int, code: int
) -> None:
    """Geo permissions (21215, 13227), a blocked number (21216) and any other 4xx are PermanentDialError
    carrying Twilio's code."""
    fake.fail_next_create(status=status, code=code)

    with pytest.raises(PermanentDialError) as err:
        provider_for(fake).dial(request("+15551230001"))

    assert err.value.code == str(code)


def test_rate_limiting_is_rate_limited_with_the_retry_after_header(fake: FakeTwilio) -> None:
    """429 / 20429 becomes RateLimited with Retry-After's delay (1 s without the header), no call placed."""
    fake.fail_next_create(status=429, code=20429, retry_after=7)
    fake.fail_next_create(status=429, code=20429)
    provider = provider_for(fake)

    with pytest.raises(RateLimited) as first:
        provider.dial(request("+15551230001"))
    with pytest.raises(RateLimited) as second:
        provider.dial(request("+15551230001"))

    assert (first.value.code, first.value.retry_after_s) == ("20429", 7.0)
    assert (second.value.code, second.value.retry_after_s) == ("20429", 1.0)
    assert fake.calls == {}


def test_retry_after_reads_seconds_and_http_dates() -> None:
    """Retry-After in seconds or as an HTTP date gives the delay; junk or nothing gives 1 s."""
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Tue, 24 Nov 2026 10:00:30 +0000", now=1795514400.0) == 30.0
    assert parse_retry_after("soon") == 1.0
    assert parse_retry_after(None) == 1.0


def test_wrong_credentials_are_auth_failed(fake: FakeTwilio) -> None:
    """Twilio's 401 / 20003 (bad credentials) becomes AuthFailed, and no call is placed."""
    with pytest.raises(AuthFailed) as err:
        provider_for(fake, token="not-the-token").dial(request("+15551230001"))

    assert err.value.code == "20003"
    assert fake.calls == {}


def test_a_500_after_the_call_was_created_is_retryable_and_lookup_finds_that_call(fake: FakeTwilio) -> None:
    """A 5xx whose call exists becomes RetryableDialError, and lookup then finds exactly that call."""
    fake.fail_next_create(status=500, code=20500, after_create=True)
    provider = provider_for(fake)
    since = now_ms()

    with pytest.raises(RetryableDialError) as err:
        provider.dial(request("+15551230001"))
    found = provider.lookup("+15551230001", CALLER, since, now_ms())

    assert err.value.code == "20500"
    [create] = fake.creates
    assert create.answer == 500
    assert [c.sid for c in found] == [create.sid]
    assert found[0].ref is None


def test_a_500_without_a_call_is_retryable_and_lookup_finds_nothing(fake: FakeTwilio) -> None:
    """A 5xx answered before any call is RetryableDialError, and lookup finds no call."""
    fake.fail_next_create(status=503, code=20503)
    provider = provider_for(fake)
    since = now_ms()

    with pytest.raises(RetryableDialError):
        provider.dial(request("+15551230001"))

    assert provider.lookup("+15551230001", CALLER, since, now_ms()) == []


def test_a_create_slower_than_the_http_timeout_is_retryable_and_its_call_is_found(fake: FakeTwilio) -> None:
    """When the answer to a create comes after the HTTP timeout, dial raises RetryableDialError (code
    "timeout"), and lookup finds the call Twilio created all the same."""
    fake.delay_next_create(5.0)
    provider = provider_for(fake, timeout_s=0.5)
    since = now_ms()

    started = time.monotonic()
    with pytest.raises(RetryableDialError) as err:
        provider.dial(request("+15551230001"))

    assert time.monotonic() - started < 3
    assert err.value.code == "timeout"
    found = provider.lookup("+15551230001", CALLER, since, now_ms())
    assert [c.sid for c in found] == [fake.creates[0].sid]


def test_an_unreachable_twilio_is_retryable() -> None:
    """A refused connection (nothing listening) becomes RetryableDialError with code "timeout"."""
    provider = TwilioProvider("AC" + "1" * 32, "secret", api_base=f"http://127.0.0.1:{closed_port()}")

    with pytest.raises(RetryableDialError) as err:
        provider.dial(request("+15551230001"))

    assert err.value.code == "timeout"


def test_api_base_wins_over_twilio_edge_and_region_from_the_environment(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TWILIO_EDGE / TWILIO_REGION set, a provider given an api_base still talks to that base."""
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")

    result = provider_for(fake).dial(request("+15551230001"))

    assert [c.sid for c in fake.creates] == [result.sid]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- fetch --------------------------------------------------------------------------------------------------
def test_fetch_reports_a_live_call(manual: FakeTwilio) -> None:
    """fetch of a ringing call gives its status, numbers and start time, and it is not final."""
    provider = provider_for(manual)
    sid = provider.dial(request("+15551230001")).sid
    manual.ring(sid)

    status = provider.fetch(sid)

    assert status is not None
    assert (status.sid, status.status, status.final) == (sid, "ringing", False)
    assert (status.to, status.from_) == ("+15551230001", CALLER)
    assert status.started_at_ms is not None and abs(status.started_at_ms - now_ms()) < 5_000
    assert status.ended_at_ms is None


def test_fetch_reports_a_finished_call(manual: FakeTwilio) -> None:
    """fetch of an ended call gives its final status, answered_by, duration and start / end times."""
    provider = provider_for(manual)
    sid = provider.dial(request("+15551230005")).sid
    manual.finish(sid, "completed", duration=42, answered_by="machine_start")

    status = provider.fetch(sid)

    assert status is not None and status.final
    assert (status.status, status.answered_by, status.duration_s) == ("completed", "machine_start", 42)
    assert status.started_at_ms is not None and status.ended_at_ms is not None
    assert status.error_code is None


def test_fetch_of_a_failed_call_carries_its_error_code(manual: FakeTwilio) -> None:
    """fetch of a failed call reads the error code from the call's notifications."""
    provider = provider_for(manual)
    sid = provider.dial(request("+15551230008")).sid
    manual.finish(sid, "failed", error_code="32009")

    status = provider.fetch(sid)

    assert status is not None
    assert (status.status, status.error_code) == ("failed", "32009")


def test_fetch_of_an_unknown_call_is_none(fake: FakeTwilio) -> None:
    """fetch of a sid Twilio does not know (404 / 20404) returns None."""
    assert provider_for(fake).fetch("CA" + "0" * 32) is None


# --- lookup -------------------------------------------------------------------------------------------------
def test_lookup_returns_the_calls_to_that_number_from_that_caller_in_the_window_oldest_first() -> None:
    """lookup keeps only calls to the number from the caller created within [since, until] (queued ones
    included: they have no start time), oldest first; the window starts at the second since falls in."""
    clock = [1_795_514_400.0]
    number = "+15551230001"
    with FakeTwilio(auto=False, clock=lambda: clock[0]) as fake:
        provider = provider_for(fake)

        def dial_at(offset: float, to: str = number, from_: str = CALLER) -> str:
            clock[0] = 1_795_514_400.0 + offset
            return provider.dial(request(to, from_)).sid

        dial_at(0)  # before the window
        second = dial_at(10.7)  # created within the second the window starts in
        dial_at(12, from_=OTHER_CALLER)  # another caller
        dial_at(13, to="+15551230002")  # another number
        third = dial_at(20)
        dial_at(40)  # after the window
        base_ms = 1_795_514_400_000

        found = provider.lookup(number, CALLER, base_ms + 10_500, base_ms + 25_000)

    assert [c.sid for c in found] == [second, third]
    assert {(c.to, c.from_, c.status) for c in found} == {(number, CALLER, "queued")}


def test_lookup_reads_every_page(fake: FakeTwilio) -> None:
    """lookup follows next_page_uri (through the api_base), so more calls than a page are all found."""
    provider = provider_for(fake)
    since = now_ms()
    sids = [provider.dial(request("+15551230003")).sid for _ in range(55)]

    found = provider.lookup("+15551230003", CALLER, since, now_ms())

    assert sorted(c.sid for c in found) == sorted(sids)
    assert any("Page=1" in path for _, path in fake.requests)


# --- hangup -------------------------------------------------------------------------------------------------
def test_hangup_of_a_ringing_call_cancels_it(manual: FakeTwilio) -> None:
    """hangup of a ringing call posts Status=canceled and the call ends canceled."""
    provider = provider_for(manual)
    sid = provider.dial(request("+15551230001")).sid
    manual.ring(sid)

    provider.hangup(sid)

    assert manual.calls[sid].status == "canceled"
    status = provider.fetch(sid)
    assert status is not None and status.status == "canceled"


def test_hangup_of_an_answered_call_completes_it(manual: FakeTwilio) -> None:
    """hangup of a call in progress posts Status=completed and the call ends completed."""
    provider = provider_for(manual)
    sid = provider.dial(request("+15551230001")).sid
    manual.answer(sid)

    provider.hangup(sid)

    assert manual.calls[sid].status == "completed"
    posted = [path for method, path in manual.requests if method == "POST" and sid in path]
    assert len(posted) == 1


def test_hangup_ignores_unknown_and_finished_calls(manual: FakeTwilio) -> None:
    """hangup of a call Twilio does not know, or of one already over, does nothing and raises nothing."""
    provider = provider_for(manual)
    sid = provider.dial(request("+15551230006")).sid
    manual.finish(sid, "busy")

    provider.hangup(sid)
    provider.hangup("CA" + "0" * 32)

    assert manual.calls[sid].status == "busy"


# --- connection test ----------------------------------------------------------------------------------------
def test_connection_test_passes_with_good_credentials(fake: FakeTwilio) -> None:
    """test_connection fetches the account and returns quietly when Twilio answers."""
    provider_for(fake).test_connection()

    assert ("GET", f"/2010-04-01/Accounts/{fake.account_sid}.json") in fake.requests


def test_connection_test_fails_with_connection_failed(fake: FakeTwilio) -> None:
    """test_connection raises ConnectionFailed on bad credentials and when the account fetch fails."""
    with pytest.raises(ConnectionFailed) as err:
        provider_for(fake, token="wrong").test_connection()
    assert err.value.message == "Connection Failed. Please check your with administrator"

    fake.accounts_fetch_fails = True
    with pytest.raises(ConnectionFailed):
        provider_for(fake).test_connection()


# --- callbacks ----------------------------------------------------------------------------------------------
def test_verify_callback_accepts_what_twilio_signed_and_refuses_tampering(
    fake: FakeTwilio, sink: CallbackSink
) -> None:
    """A callback the fake really signed and posted verifies; a changed parameter, a wrong signature or
    a signature made with another token does not."""
    provider = provider_for(fake)
    ref = quote("acct1|camp1:c1:1")
    provider.dial(request("+15551230001", callback=f"{sink.url}/twilio/status?ref={ref}"))
    path, params, headers = wait_for(
        lambda: next((r for r in list(sink.received) if r[1].get("CallStatus") == "completed"), None),
        timeout=5,
        what="the completed callback",
    )
    url, signature = sink.url + path, headers["X-Twilio-Signature"]

    assert provider.verify_callback(url, params, signature)
    assert not provider.verify_callback(url, {**params, "CallStatus": "busy"}, signature)
    assert not provider.verify_callback(url, params, "bm90IGEgc2lnbmF0dXJl")
    assert not provider.verify_callback(url, params, "")
    assert not provider_for(fake, token="another-token").verify_callback(url, params, signature)


def test_parse_callback_maps_completed_machine_and_busy_callbacks(
    fake: FakeTwilio, sink: CallbackSink
) -> None:
    """Twilio's completed callbacks of a human call, a machine and a busy number parse to their status,
    answered_by, duration and end time (from Timestamp)."""
    provider = provider_for(fake)
    sids = {
        kind: provider.dial(request(number, callback=f"{sink.url}/twilio/status")).sid
        for kind, number in [("human", "+15551230001"), ("machine", "+15551230005"), ("busy", "+15551230006")]
    }
    parsed = {kind: provider.parse_callback(final_delivery(fake, sid).params) for kind, sid in sids.items()}

    human, machine, busy = parsed["human"], parsed["machine"], parsed["busy"]
    assert (human.status, human.answered_by, human.duration_s) == ("completed", "human", 1)
    assert (machine.status, machine.answered_by) == ("completed", "machine_start")
    assert (busy.status, busy.answered_by, busy.duration_s, busy.final) == ("busy", None, 0, True)
    for kind, status in parsed.items():
        assert status.sid == sids[kind]
        assert status.ended_at_ms is not None and abs(status.ended_at_ms - now_ms()) < 10_000


def test_an_undeliverable_callback_is_recorded_and_the_fake_goes_on(fake: FakeTwilio) -> None:
    """When the callback URL does not answer, the fake records the failed delivery and keeps serving."""
    provider = provider_for(fake)
    sid = provider.dial(request("+15551230001", callback=f"http://127.0.0.1:{closed_port()}/cb")).sid

    failed = final_delivery(fake, sid)

    assert failed.status is None and failed.error
    status = provider.fetch(sid)
    assert status is not None and status.status == "completed"


def test_parse_callback_reads_initiated_as_queued_and_leaves_live_calls_without_end() -> None:
    """The "initiated" event is a queued call; a ringing callback has no end time even with a Timestamp."""
    provider = TwilioProvider("AC" + "1" * 32, "secret")
    base = {"CallSid": "CA" + "2" * 32, "Timestamp": "Tue, 24 Nov 2026 10:00:00 +0000"}

    initiated = provider.parse_callback({**base, "CallStatus": "initiated"})
    ringing = provider.parse_callback({**base, "CallStatus": "ringing"})
    failed = provider.parse_callback({**base, "CallStatus": "failed", "ErrorCode": "32009"})

    assert initiated.status == "queued" and initiated.ended_at_ms is None
    assert ringing.status == "ringing" and ringing.ended_at_ms is None
    assert (failed.error_code, failed.ended_at_ms) == ("32009", 1_795_514_400_000)


def test_parse_callback_bills_by_call_duration_or_else_by_twilios_billed_minutes() -> None:
    provider = TwilioProvider("AC" + "1" * 32, "secret")
    base = {"CallSid": "CA" + "2" * 32, "CallStatus": "completed"}
    assert provider.parse_callback({**base, "CallDuration": "61", "Duration": "2"}).duration_s == 61
    assert provider.parse_callback({**base, "Duration": "2"}).duration_s == 120  # minutes, not seconds
    assert provider.parse_callback(base).duration_s == 0


# --- secrets ------------------------------------------------------------------------------------------------
def test_no_error_message_or_log_line_shows_the_auth_token(
    fake: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    """Every error the provider raises (even when Twilio's message echoes the token) and every log line
    is free of the auth token."""
    caplog.set_level(logging.DEBUG)
    token = fake.auth_token
    provider = provider_for(fake, timeout_s=0.5)
    errors: list[BaseException] = []

    def collect(action: Callable[[], object]) -> None:
        try:
            action()
        except (DialError, ConnectionFailed) as exc:
            errors.append(exc)

    fake.fail_next_create(status=400, code=21211, message=f"bad request with {token} inside")
    collect(lambda: provider.dial(request("+15551230001")))
    fake.fail_next_create(status=429, code=20429, message=f"slow down {token}")
    collect(lambda: provider.dial(request("+15551230001")))
    fake.fail_next_create(status=500, code=20500, message=f"oops {token}", after_create=True)
    collect(lambda: provider.dial(request("+15551230001")))
    fake.delay_next_create(5.0)
    collect(lambda: provider.dial(request("+15551230001")))
    wrong = provider_for(fake, token=token + "x")
    collect(lambda: wrong.dial(request("+15551230001")))
    collect(lambda: wrong.fetch("CA" + "0" * 32))
    collect(lambda: wrong.lookup("+15551230001", CALLER, 0, now_ms()))
    collect(lambda: wrong.hangup("CA" + "0" * 32))
    collect(wrong.test_connection)

    assert [type(e).__name__ for e in errors] == [
        "PermanentDialError",
        "RateLimited",
        "RetryableDialError",
        "RetryableDialError",
        "AuthFailed",
        "AuthFailed",
        "AuthFailed",
        "AuthFailed",
        "ConnectionFailed",
    ]
    for exc in errors:
        assert token not in str(exc) and token not in repr(exc)
        assert exc.__cause__ is None and exc.__suppress_context__
    assert token not in repr(provider)
    assert token not in caplog.text
