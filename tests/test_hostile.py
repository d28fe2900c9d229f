"""Hostile input, by class (issue: defects found from outside). Every value of a class is refused the same
way: exit 1 (2 for a usage error), one JSON document naming the field, no traceback, and nothing stored
(the Redis key count does not move). The CLI's own entry point runs in this process, so hypothesis can
try many values of each class."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import session_service, uid
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer import cli

svc = session_service()
store = svc.core.store
HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(*args: str, stdin: str = "") -> tuple[int, Any, str]:
    """`dialer ARGS --json` through the real entry point: (exit code, the JSON document, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["dialer", *args, "--json"]
    stdin_was, sys.stdin = sys.stdin, io.StringIO(stdin)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv, sys.stdin = argv, stdin_was
    text = out.getvalue()
    assert text.count("\n") == 1, f"not one JSON document: {text!r} {err.getvalue()!r}"
    assert "Traceback" not in text + err.getvalue()
    return code, json.loads(text), err.getvalue()


@contextlib.contextmanager
def nothing_stored() -> Iterator[None]:
    before = store.r.dbsize()
    yield
    assert store.r.dbsize() == before, "a refused request stored something"


def refused(*args: str, field: str, code: int = 1, stdin: str = "") -> dict[str, Any]:
    """Refused with ``code`` naming ``field``; a value that reads as an option (``-1``) is a usage error."""
    with nothing_stored():
        got, body, _ = run(*args, stdin=stdin)
    if got == 2 and any(a.startswith("-") and not a.startswith("--") for a in args):
        assert body["error"].startswith("usage error"), body
        return dict(body)
    assert got == code, body
    assert field in body.get("error", ""), body
    return dict(body)


@pytest.fixture(scope="module")
def acc() -> str:
    account = uid("hos")
    assert run("account", "create", account, "--balance", "100", "--region", "ES")[0] == 0
    assert run("provider", "add", account, "sim", "--from", "+34911234567")[0] == 0
    return account


# --- 1. money and limits: finite, in range, within the ledger -----------------------------------------------------
bad_amounts = st.one_of(
    st.sampled_from(
        ["1e30", "-0.50", "inf", "-inf", "nan", "1_000", "0.00001", "1e3", "", "abc", "1000000001"]
    ),
    # digits of other scripts (Arabic-Indic, Devanagari, full-width) read as numbers by Decimal()
    st.sampled_from(["\u0661\u0660", "\u0967\u0966.\u0966", "\uff11\uff10", "1\u0660.00"]),
    st.floats(allow_nan=True, allow_infinity=True)
    .filter(lambda f: not math.isfinite(f) or abs(f) > 1e9)
    .map(repr),
    st.integers(min_value=10**9 + 1, max_value=10**40).map(str),
)


@HYP
@given(amount=bad_amounts)
def test_amounts_outside_the_ledger_are_refused(acc: str, amount: str) -> None:
    refused("account", "topup", acc, amount, field="amount")
    refused("account", "create", uid("bad"), "--balance", amount, field="balance")


@HYP
@given(price=st.one_of(st.sampled_from(["-0.50", "-1", "inf", "nan", "1e2", "1000.0001"]), bad_amounts))
def test_a_price_that_breaks_the_ledger_is_refused(acc: str, price: str) -> None:
    refused(
        "provider", "add", acc, uid("p"), "--from", "+34911234567", "--price-per-minute", price, field="price"
    )
    refused("provider", "update", acc, "sim", "--price-per-minute", price, field="price")


@HYP
@given(
    option=st.sampled_from(["--cps", "--hourly-quota", "--max-concurrent", "--max-call-seconds"]),
    value=st.sampled_from(
        [
            *["inf", "-inf", "nan", "-1", "0", "1e12", "-0.001", "100000000000", "5e-324", "1e-12", "0.0009"],
            *["1_000", "\u0661\u0660", "\uff11\uff10", "0x10"],
        ]
    ),
)
def test_limits_outside_their_range_are_refused(acc: str, option: str, value: str) -> None:
    if option == "--hourly-quota" and value == "0":
        return  # 0 = no quota
    with nothing_stored():
        code, body, _ = run("provider", "update", acc, "sim", option, value)
    assert code in (1, 2), body  # 2: not even a number of that kind (typer's usage error)
    assert "error" in body
    shown = run("provider", "show", acc, "sim")[1]
    assert shown["cps"] == 1.0 and shown["max_concurrent"] == 10 and shown["max_call_seconds"] == 600


@HYP
@given(
    key=st.sampled_from(["ring_s", "talk_min_s", "talk_max_s", "no_answer_s", "latency_ms", "error_rate"]),
    value=st.sampled_from(["inf", "nan", "-1", "1e9", "x", "-inf"]),
)
def test_simulator_options_outside_their_range_are_refused(acc: str, key: str, value: str) -> None:
    refused("provider", "update", acc, "sim", "--sim", f"{key}={value}", field=key)


def test_a_provider_stays_usable_after_every_refusal(acc: str, tmp_path: Path) -> None:
    """After the refusals above, show, update and a submit work (nothing half-written)."""
    assert run("provider", "show", acc, "sim")[0] == 0
    assert run("provider", "update", acc, "sim", "--cps", "2")[0] == 0
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"contacts": [{"phone": "+34600000001"}], "say": "hi"}))
    assert run("campaign", "submit", str(f), "--account", acc)[0] == 0


# --- 2. launch times outside 1970..9999 in UTC, and numbers -----------------------------------------------------
bad_times = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "1969-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "",
        ]
    ),
    st.datetimes(max_value=__import__("datetime").datetime(1969, 12, 30)).map(lambda d: d.isoformat()),
)


@HYP
@given(when=bad_times)
def test_a_launch_time_the_views_cannot_render_is_refused_at_intake(
    acc: str, when: str, tmp_path: Path
) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"contacts": [{"phone": "+34600000001"}], "say": "hi", "launch_at": when}))
    refused("campaign", "submit", str(f), "--account", acc, field="launch_at")


@pytest.mark.parametrize("number", [253402300800, 1795517955000, 0, -1, 1.5, True])
def test_a_numeric_launch_time_is_refused(acc: str, number: Any, tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"contacts": [{"phone": "+34600000001"}], "say": "hi", "launch_at": number}))
    refused("campaign", "submit", str(f), "--account", acc, field="launch_at")


def test_update_cannot_poison_a_campaign_with_such_a_time(acc: str, tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"contacts": [{"phone": "+34600000001"}], "say": "hi"}))
    cid = run("campaign", "submit", str(f), "--account", acc)[1]["campaign_id"]
    for when in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "253402300800"):
        refused("campaign", "update", cid, "--launch-at", when, field="--launch-at")
    assert run("campaign", "show", cid)[0] == 0
    assert run("campaign", "list", "--account", acc)[0] == 0
    assert run("campaign", "list")[0] == 0


# --- 3. a refused submit --start stores nothing; a retry after the fix starts it -----------------------------------
def _account(balance: str, **provider: str) -> str:
    account = uid("orph")
    assert run("account", "create", account, "--balance", balance)[0] == 0
    if provider is not None:
        args = [f"--{k.replace('_', '-')}={v}" for k, v in provider.items()]
        assert run("provider", "add", account, "sim", "--from", "+34911234567", *args)[0] == 0
    return account


@pytest.mark.parametrize(
    ("cause", "body_extra", "provider", "balance", "message", "fix"),
    [
        ("money", {}, {}, "0.10", "Insufficient balance", ("account", "topup", "{a}", "10")),
        ("past", {"launch_at": "2020-01-01T00:00:00Z"}, {}, "10", "Scheduled time is in the past", None),
        ("provider", {"provider": "nope"}, {}, "10", "Campaign has no group or provider", None),
        (
            "quota",
            {},
            {"hourly_quota": "1"},
            "10",
            "Hourly quota crossed",
            ("provider", "update", "{a}", "sim", "--hourly-quota", "0"),
        ),
        (
            "connection",
            {},
            {"sim": "fail_test=true"},
            "10",
            "Connection Failed",
            ("provider", "update", "{a}", "sim", "--sim", "fail_test=false"),
        ),
    ],
)
def test_a_refused_submit_with_start_stores_nothing_and_a_retry_after_the_fix_starts_it(
    tmp_path: Path,
    cause: str,
    body_extra: dict[str, Any],
    provider: dict[str, str],
    balance: str,
    message: str,
    fix: Any,
) -> None:
    account = _account(balance, **provider)
    if cause == "quota":
        from dialer import keys
        from dialer.clock import SystemClock
        from dialer.pace import hour_start

        store.r.set(keys.provider_quota(account, "sim", hour_start(SystemClock().now_ms())), 1)
    key = uid("idem")
    body = {"contacts": [{"phone": "+34600000001"}], "say": "hi", "idempotency_key": key, **body_extra}
    f = tmp_path / "c.json"
    f.write_text(json.dumps(body))
    with nothing_stored():
        code, answer, _ = run("campaign", "submit", str(f), "--account", account, "--start")
    assert code == 1 and message in (answer.get("error") or answer.get("warning") or "")
    assert store.find_idempotent(account, key) is None
    if fix is None:
        return
    assert run(*[a.format(a=account) for a in fix])[0] == 0
    code, answer, _ = run("campaign", "submit", str(f), "--account", account, "--start")
    assert code == 0 and answer["status"] == "scheduled"
    again = run("campaign", "submit", str(f), "--account", account, "--start")[1]
    assert again["campaign_id"] == answer["campaign_id"]


def test_a_draft_submitted_without_start_is_started_by_a_retry_with_start(tmp_path: Path) -> None:
    account = _account("10")
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"contacts": [{"phone": "+34600000001"}], "say": "hi", "idempotency_key": "k1"}))
    first = run("campaign", "submit", str(f), "--account", account)[1]
    assert first["status"] == "draft"
    again = run("campaign", "submit", str(f), "--account", account, "--start")[1]
    assert (again["campaign_id"], again["status"]) == (first["campaign_id"], "scheduled")


# --- 5. files that are not UTF-8, a Redis URL that is not one -------------------------------------------------------
@pytest.mark.parametrize("raw", [b"\xff\xfe{\x00}", b'{"say": "\xe9"}', b"\x80" * 10])
def test_a_campaign_file_that_is_not_utf8_is_refused(acc: str, raw: bytes, tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_bytes(raw)
    refused("campaign", "submit", str(f), "--account", acc, field="not UTF-8")


@pytest.mark.parametrize(
    "text",
    [
        '{"contacts": [{"phone": "+34600000001"}], "say": "hi", "stagger_seconds": ' + "9" * 5000 + "}",
        '{"contacts": [{"phone": "+34600000001", "custom_fields": {"n": -' + "1" * 4400 + '}}], "say": "hi"}',
        "[" * 100_000,
    ],
)
def test_json_python_cannot_read_is_refused_not_a_traceback(acc: str, text: str, tmp_path: Path) -> None:
    """Numbers longer than Python converts (4300 digits) and nesting deeper than it recurses, in a campaign
    file and in a contacts file."""
    f = tmp_path / "c.json"
    f.write_text(text)
    refused("campaign", "submit", str(f), "--account", acc, field="not valid JSON")
    gid = run("group", "create", acc, "g")[1]["id"]
    refused("group", "import", gid, str(f), field="not valid JSON")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("DIALER_PUBLIC_URL", "notaurl"),
        ("DIALER_PUBLIC_URL", "ftp://dialer.example.com"),
        ("DIALER_PUBLIC_URL", "https://dialer.example.com/?a=1"),
        ("DIALER_PUBLIC_URL", "https://dialer.example.com/#x"),
        ("DIALER_LEASE_S", "soon"),
        ("DIALER_HTTP_PORT", "99999"),
    ],
)
def test_a_setting_the_process_cannot_take_exits_3_naming_the_variable(var: str, value: str) -> None:
    from test_cli import dialer

    proc = dialer("account", "show", "x", "--json", env={var: value})
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert var in json.loads(proc.stdout)["error"]


@pytest.mark.parametrize(
    "url", ["localhost:6379", "http://localhost:6379", "redis//x", "://", "redis://127.0.0.1:6379/abc"]
)
def test_a_malformed_redis_url_exits_3_with_a_hint(url: str) -> None:
    from test_cli import dialer

    proc = dialer("account", "show", "x", "--json", env={"DIALER_REDIS_URL": url})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "not a Redis URL" in json.loads(proc.stdout)["error"] or "unreachable" in proc.stdout


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cretpw@127.0.0.1:1/0",
        "redis://user:s3cretpw@127.0.0.1:1",
        "redis://:s3cretpw@h:1/abc",
        "redis://:s3cretpw@[::1/0",  # too broken to parse
        "redis://127.0.0.1:1/0?password=s3cretpw",
    ],
)
def test_a_redis_password_never_shows_in_an_error(url: str) -> None:
    from test_cli import dialer

    proc = dialer("account", "show", "x", "--json", env={"DIALER_REDIS_URL": url})
    assert proc.returncode == 3 and "s3cretpw" not in proc.stdout + proc.stderr, proc.stdout
    assert "***" in proc.stdout


# --- 8. lax input: strict types, numbers, messages, names ----------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"stagger_seconds": "5"}, "stagger_seconds"),
        ({"stagger_seconds": True}, "stagger_seconds"),
        ({"stagger_seconds": -1}, "stagger_seconds"),
        ({"calling_hours": {"weekdays": [True]}}, "weekdays"),
        ({"calling_hours": {"weekdays": ["1"]}}, "weekdays"),
        ({"calling_hours": {"weekdays": []}}, "weekdays"),
        ({"calling_hours": {"start": "\u0660\u0669:00"}}, "start"),
        ({"recall_on_machine": "yes"}, "recall_on_machine"),
        ({"recall": [True]}, "recall"),
        ({"say": "hi", "xml": "<Response/>"}, "xml"),
        ({"say": None, "audio": "ftp://x/a.mp3"}, "audio"),
        ({"say": None, "audio": "javascript:alert(1)"}, "audio"),
        ({"say": "Hello {{first_name"}, "say"),
        ({"say": "Hello first_name}}"}, "say"),
        ({"contacts": [{"phone": "1" * 100_000}]}, "contacts.0.phone"),
        ({"contacts": [{"phone": "+34600000001", "first_name": "x" * 5000}]}, "contacts.0.first_name"),
    ],
)
def test_lax_campaign_input_is_refused_naming_the_field(
    acc: str, extra: dict[str, Any], field: str, tmp_path: Path
) -> None:
    body = {"contacts": [{"phone": "+34600000001"}], "say": "hi", **extra}
    f = tmp_path / "c.json"
    f.write_text(json.dumps(body))
    refused("campaign", "submit", str(f), "--account", acc, field=field)


@pytest.mark.parametrize(
    "phone", ["-34600120001", "+34600120001 ext. 5", "+34600120001x5", "+34 600 ABC 001"]
)
def test_numbers_that_would_be_dialled_differently_are_intake_errors(
    acc: str, phone: str, tmp_path: Path
) -> None:
    """Never silently changed: counted in error_calls (the rest proceeds), never turned into another number."""
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"contacts": [{"phone": phone}, {"phone": "+34600000002"}], "say": "hi"}))
    code, body, _ = run("campaign", "submit", str(f), "--account", acc)
    assert code == 0 and (body["error_calls"], body["scheduled_calls"]) == (1, 1)
    refused("dnc", "add", acc, phone, field="number")


@pytest.mark.parametrize("region", ["XX", "1", "E", "ESP", "zz"])
def test_an_unknown_region_is_refused(region: str) -> None:
    refused("account", "create", uid("reg"), "--region", region, field="region")


BAD_NAMES = ["", "   ", "\u200b", "\ufeff\u200b ", "x" * 201, "two\nlines", "tab\there"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_nobody_can_read_is_refused_at_every_door(acc: str, name: str, tmp_path: Path) -> None:
    """Empty, invisible (zero-width), too long or with control characters: groups, templates, campaigns
    submitted and campaigns renamed."""
    refused("group", "create", acc, name, field="name")
    refused("template", "create", acc, name, "--say", "hi", field="name")
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"name": name, "contacts": [{"phone": "+34600000001"}], "say": "hi"}))
    refused("campaign", "submit", str(f), "--account", acc, field="name")
    f.write_text(json.dumps({"contacts": [{"phone": "+34600000001"}], "say": "hi"}))
    cid = run("campaign", "submit", str(f), "--account", acc)[1]["campaign_id"]
    before = store.get_campaign(acc, cid)[0].name
    code, body, _ = run("campaign", "update", cid, "--name", name)
    assert code in (1, 2) and "name" in body["error"], body
    assert store.get_campaign(acc, cid)[0].name == before


@pytest.mark.parametrize("given", ["acme\n", "acme\r\n", "ac me", "acme\u200b"])
def test_an_id_with_a_trailing_line_break_or_invisible_character_is_refused(given: str) -> None:
    refused("account", "create", given, field="id")


def test_removing_a_number_that_was_never_listed_says_so(acc: str) -> None:
    assert run("dnc", "add", acc, "+34600000301")[0] == 0
    code, body, _ = run("dnc", "remove", acc, "+34600000301", "+34600000302")
    assert code == 0
    assert body["removed"] == ["+34600000301"] and body["not_listed"] == ["+34600000302"]
