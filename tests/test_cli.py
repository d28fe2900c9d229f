"""The CLI's output contract (DESIGN §8): one JSON document with --json, exit codes 0/1/2/3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import uid


def dialer(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dialer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.count("\n") == 1, proc.stdout  # exactly one document
    return json.loads(proc.stdout)


@pytest.fixture
def cli_account() -> str:
    account = uid("cli")
    proc = dialer("account", "create", account, "--balance", "50.00", "--region", "ES", "--json")
    assert proc.returncode == 0, proc.stderr
    body = as_json(proc)
    assert body["id"] == account and body["api_key"].startswith("dk_")
    proc = dialer(
        "provider",
        "add",
        account,
        "sim",
        "--kind",
        "simulator",
        "--from",
        "+34911234567",
        "--cps",
        "10",
        "--sim",
        "ring_s=0.2",
        "--sim",
        "talk_max_s=0.4",
        "--sim",
        "talk_min_s=0.2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    return account


def test_account_and_provider_commands_print_the_contract_shapes(cli_account: str) -> None:
    acc = as_json(dialer("account", "show", cli_account, "--json"))
    assert acc == {
        "id": cli_account,
        "name": cli_account,
        "balance": "50.00",
        "reserved": "0.00",
        "available": "50.00",
        "default_region": "ES",
    }
    again = dialer("account", "create", cli_account, "--json")
    assert again.returncode == 1
    assert as_json(again) == {"error": f"account {cli_account} already exists"}
    prov = as_json(dialer("provider", "show", cli_account, "sim", "--json"))
    for field in (
        "enabled",
        "from",
        "quota_used",
        "quota_remaining",
        "quota_resets_at",
        "live_calls",
        "cps",
        "max_concurrent",
        "price_per_minute",
        "max_call_seconds",
    ):
        assert field in prov
    assert prov["from"] == ["+34911234567"] and prov["price_per_minute"] == "0.02" and prov["live_calls"] == 0
    assert "auth_token" not in json.dumps(prov)


def test_submit_show_and_calls(cli_account: str, tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(
        json.dumps(
            {
                "contacts": [{"phone": "+34600123451"}, {"phone": "12"}],
                "say": "hi",
                "launch_at": "2999-05-01T08:00:00Z",
                "recall": "[30,120]",
            }
        )
    )
    res = as_json(dialer("campaign", "submit", str(f), "--account", cli_account, "--start", "--json"))
    assert set(res) >= {
        "campaign_id",
        "status",
        "scheduled",
        "launch_at",
        "total_contacts",
        "scheduled_calls",
        "error_calls",
    }
    assert (res["status"], res["scheduled"], res["total_contacts"], res["error_calls"]) == (
        "scheduled",
        True,
        2,
        1,
    )
    show = as_json(dialer("campaign", "show", res["campaign_id"], "--json"))
    assert show["status"] == "scheduled" and show["recall"] == [30.0, 120.0]
    assert show["launch_at"] == "2999-05-01T08:00:00.000Z"
    assert set(show) >= {
        "id",
        "account",
        "name",
        "status",
        "status_reason",
        "provider",
        "launch_at",
        "recall",
        "stagger_seconds",
        "end_handle",
        "next_campaign_id",
        "counters",
        "cost",
        "created_at",
        "updated_at",
    }
    assert as_json(dialer("campaign", "calls", res["campaign_id"], "--json")) == []


def test_refusals_exit_1_with_the_error_naming_the_field(cli_account: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"contacts": [{"first_name": "x"}], "say": "hi"}))
    proc = dialer("campaign", "submit", str(f), "--account", cli_account, "--json")
    assert proc.returncode == 1
    assert as_json(proc) == {"error": "contacts.0.phone: Each contact must have a non-empty phone field"}
    f.write_text("{not json")
    proc = dialer("campaign", "submit", str(f), "--account", cli_account, "--json")
    assert proc.returncode == 1 and "not valid JSON" in as_json(proc)["error"]
    proc = dialer("campaign", "show", "nope", "--json")
    assert proc.returncode == 1 and as_json(proc) == {"error": "campaign not found: nope"}
    assert "Traceback" not in proc.stderr


def test_usage_error_exits_2_and_unreachable_redis_exits_3() -> None:
    assert dialer("campaign", "frobnicate").returncode == 2
    proc = dialer("campaign", "list", "--limit", "0", "--json")
    assert proc.returncode == 2 and as_json(proc)["error"].startswith("usage error")
    proc = dialer("campaign", "show", "x", "--json", env={"DIALER_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert proc.returncode == 3
    assert "unreachable" in as_json(proc)["error"] and "dialer dev" in as_json(proc)["error"]


def test_a_stale_embedded_redis_url_exits_3_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "redis.url").write_text("redis://127.0.0.1:1/0\n")
    env = {"DIALER_REDIS_URL": "", "DIALER_VAR_DIR": str(tmp_path)}
    proc = dialer("account", "show", "x", "--json", env=env)
    assert proc.returncode == 3
    assert "may be stale" in as_json(proc)["error"] and "dialer dev" in as_json(proc)["error"]


def test_secrets_are_never_taken_on_argv(cli_account: str) -> None:
    proc = dialer(
        "provider", "add", cli_account, "tw", "--from", "+34911234567", "--auth-token", "s3cret", "--json"
    )
    assert proc.returncode == 1 and "never taken on the command line" in as_json(proc)["error"]


def test_a_campaign_dialled_through_the_cli_and_watched_to_the_end(
    cli_account: str, tmp_path: Path, stack: Any
) -> None:
    f = tmp_path / "c.json"
    f.write_text(
        json.dumps({"contacts": [{"phone": "+34600123451"}, {"phone": "+34600123456"}], "say": "hi"})
    )
    cid = as_json(dialer("campaign", "submit", str(f), "--account", cli_account, "--start", "--json"))[
        "campaign_id"
    ]
    watched = dialer("watch", cid)
    assert watched.returncode == 0, watched.stderr
    assert "completed" in watched.stdout
    dials = as_json(dialer("simulator", "dials", "--campaign", cid, "--json"))
    assert sorted(d["number"] for d in dials) == ["+34600123451", "+34600123456"]
    assert set(dials[0]) == {"key", "campaign_id", "number", "from", "at", "sid"}
    calls = as_json(dialer("campaign", "calls", cid, "--json"))
    assert [c["key"] for c in calls] == [f"{cid}:0:1", f"{cid}:1:1"]
    assert calls[1]["outcome"] == "busy" or calls[1]["state"] == "busy"


def test_group_list_update_and_redial_commands(cli_account: str, tmp_path: Path, stack: Any) -> None:
    group = as_json(dialer("group", "create", cli_account, "leads", "--id", uid("g"), "--json"))
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,first_name\n+34600123451,Ana\n,Luis\n")
    proc = dialer("group", "import", group["id"], str(bad), "--json")
    assert proc.returncode == 1
    assert as_json(proc)["error"].startswith("1 bad row(s), nothing imported: line 3: phone:")
    good = tmp_path / "good.csv"
    good.write_text("phone,first_name,lead\n+34600123451,Ana,L1\n+34600123452,Luis,L2\n")
    assert as_json(dialer("group", "import", group["id"], str(good), "--json"))["imported"] == 2
    shown = as_json(dialer("group", "show", group["id"], "--json"))
    assert shown["size"] == 2 and shown["contacts"][0]["custom_fields"] == {"lead": "L1"}

    f = tmp_path / "c.json"
    f.write_text(
        json.dumps({"group_id": group["id"], "say": "Hi {{first_name}}", "launch_at": "2999-01-01T00:00:00Z"})
    )
    cid = as_json(dialer("campaign", "submit", str(f), "--account", cli_account, "--start", "--json"))[
        "campaign_id"
    ]
    upd = as_json(dialer("campaign", "update", cid, "--launch-at", "2998-01-01T00:00:00Z", "--json"))
    assert upd["launch_at"] == "2998-01-01T00:00:00.000Z"
    assert dialer("campaign", "update", cid, "--launch-at", "2001-01-01", "--json").returncode == 1
    listed = as_json(dialer("campaign", "list", "--account", cli_account, "--status", "scheduled", "--json"))
    assert cid in [c["id"] for c in listed["result"]] and "next_page_token" in listed
    assert as_json(dialer("campaign", "cancel", cid, "--json"))["status"] == "cancelled"
    proc = dialer("campaign", "pause", cid, "--json")
    assert proc.returncode == 1 and as_json(proc) == {
        "error": "Campaign is not running (current state: cancelled)"
    }

    f.write_text(json.dumps({"group_id": group["id"], "say": "Hi {{first_name}}"}))
    cid = as_json(dialer("campaign", "submit", str(f), "--account", cli_account, "--start", "--json"))[
        "campaign_id"
    ]
    assert dialer("watch", cid).returncode == 0
    redial = as_json(dialer("call", "redial", f"{cid}:0:1", "--json"))
    assert redial["key"] == f"{cid}:0:2"
    assert dialer("watch", cid).returncode == 0
    dials = as_json(dialer("simulator", "dials", "--campaign", cid, "--json"))
    assert [d["key"] for d in dials].count(f"{cid}:0:2") == 1
    assert as_json(dialer("campaign", "re-execute", cid, "--json")) == {
        "error": "All contacts have already been processed"
    }
