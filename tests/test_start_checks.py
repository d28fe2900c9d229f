"""Start checks in the seed's order with the seed's messages (DESIGN §9, §10), through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import uid
from test_cli import as_json, dialer

BODY = {"contacts": [{"phone": "+34600123451"}], "say": "hi"}


def setup(balance: str, *provider_args: str) -> str:
    account = uid("chk")
    assert dialer("account", "create", account, "--balance", balance, "--json").returncode == 0
    if provider_args:
        proc = dialer("provider", "add", account, "sim", "--from", "+34911234567", *provider_args, "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return account


def submit(tmp_path: Path, account: str, body: dict[str, Any] | None = None) -> str:
    f = tmp_path / "c.json"
    f.write_text(json.dumps(body or BODY))
    return str(as_json(dialer("campaign", "submit", str(f), "--account", account, "--json"))["campaign_id"])


def start(cid: str) -> tuple[int, Any]:
    proc = dialer("campaign", "start", cid, "--json")
    return proc.returncode, as_json(proc)


def test_balance_below_one_call_is_refused_first(tmp_path: Path) -> None:
    """Reservation = 600 s at 0.02/min = 0.20; 0.19 is not enough (and is checked before the provider)."""
    account = setup("0.19", "--max-call-seconds", "600", "--price-per-minute", "0.02")
    assert start(submit(tmp_path, account)) == (1, {"error": "Insufficient balance"})
    account = setup("0.20", "--max-call-seconds", "600", "--price-per-minute", "0.02")
    assert start(submit(tmp_path, account))[0] == 0


def test_no_provider_is_refused_with_the_seed_message(tmp_path: Path) -> None:
    account = setup("10")
    assert start(submit(tmp_path, account)) == (1, {"error": "Campaign has no group or provider"})
    account = setup("10", "--kind", "simulator")
    assert dialer("provider", "update", account, "sim", "--disable", "--json").returncode == 0
    assert start(submit(tmp_path, account, {**BODY, "provider": "sim"})) == (
        1,
        {"error": "Campaign has no group or provider"},
    )


def test_quota_used_up_this_hour_is_a_warning(tmp_path: Path, store: Any) -> None:
    from dialer import keys
    from dialer.clock import SystemClock
    from dialer.pace import hour_start

    account = setup("10", "--hourly-quota", "2")
    now = SystemClock().now_ms()
    store.r.set(keys.provider_quota(account, "sim", hour_start(now)), 2)
    shown = as_json(dialer("provider", "show", account, "sim", "--json"))
    assert (shown["quota_used"], shown["quota_remaining"]) == (2, 0)
    assert start(submit(tmp_path, account)) == (1, {"warning": "Hourly quota crossed"})
    # a launch in a later hour is not refused: the quota will have reset by then
    assert start(submit(tmp_path, account, {**BODY, "launch_at": "2999-01-01T00:00:00Z"}))[0] == 0


def test_failing_connection_test_is_refused_last(tmp_path: Path) -> None:
    account = setup("10", "--sim", "fail_test=true")
    assert start(submit(tmp_path, account)) == (
        1,
        {"error": "Connection Failed. Please check your with administrator"},
    )
    proc = dialer("provider", "test", account, "sim", "--json")
    assert proc.returncode == 1
    assert dialer("provider", "update", account, "sim", "--sim", "fail_test=false", "--json").returncode == 0
    code, body = start(submit(tmp_path, account))
    assert code == 0
    assert body["status"] == "scheduled" and body["message"] == "Campaign execution started immediately"


def test_topup_and_show_keep_money_exact(tmp_path: Path) -> None:
    account = setup("0.10")
    assert as_json(dialer("account", "topup", account, "0.0135", "--json"))["balance"] == "0.1135"
    proc = dialer("account", "topup", account, "0.00001", "--json")
    assert proc.returncode == 1 and "at most 4 decimals" in as_json(proc)["error"]
    assert as_json(dialer("account", "show", account, "--json"))["available"] == "0.1135"


def test_dnc_commands_normalise_numbers(tmp_path: Path) -> None:
    account = uid("dnc")
    assert dialer("account", "create", account, "--region", "ES", "--json").returncode == 0
    assert as_json(dialer("dnc", "add", account, "600 123 451", "+34600123452", "--json"))["added"] == [
        "+34600123451",
        "+34600123452",
    ]
    assert dialer("dnc", "remove", account, "+34600123452", "--json").returncode == 0
    assert as_json(dialer("dnc", "list", account, "--json")) == ["+34600123451"]
    proc = dialer("dnc", "add", account, "12", "--json")
    assert proc.returncode == 1 and "number '12'" in as_json(proc)["error"]
