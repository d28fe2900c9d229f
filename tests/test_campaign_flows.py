"""End to end with a real worker: re-execute, redial, chained campaigns, groups, templates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import add_sim_provider, calls, session_service, show, submit, uid, wait_for

from dialer import groups, keys, lifecycle
from dialer.clock import SystemClock
from dialer.errors import DialerError, InvalidRequest
from dialer.telephony.simulator import sim_dials

svc = session_service()
core = svc.core

clock = SystemClock()
TERMINAL = ("completed", "stopped", "cancelled", "failed")


def wait_status(
    store: Any, account: str, cid: str, status: str = "completed", timeout: float = 60
) -> dict[str, Any]:
    return wait_for(
        lambda: (v := show(svc, account, cid))["status"] == status and v,
        timeout=timeout,
        what=f"campaign {cid} to be {status}",
    )


def dial_counts(store: Any, cid: str) -> Counter[str]:
    return Counter(d["number"] for d in sim_dials(store.r, cid))


def test_re_execute_dials_only_the_retryable_contacts_and_redial_dials_one(
    store: Any, account: str, stack: Any
) -> None:
    add_sim_provider(store, account)
    svc.for_account(account).dnc_add(["+34600000201"])
    numbers = {
        "human": "+34600000200",
        "dnc": "+34600000201",
        "no_answer": "+34600000207",
        "invalid": "+34600000209",
        "busy": "+34600000206",
        "machine": "+34600000205",
    }
    cid = submit(svc, account, {"contacts": [{"phone": p} for p in numbers.values()], "say": "hi"})
    wait_status(store, account, cid)
    first = show(svc, account, cid)["counters"]
    assert (first["delivered"], first["failed"], first["skipped"]) == (1, 4, 1)

    res = lifecycle.re_execute(core, account, cid)
    assert len(res["attempts"]) == 3
    wait_status(store, account, cid)
    counts = dial_counts(store, cid)
    assert counts[numbers["no_answer"]] == counts[numbers["busy"]] == counts[numbers["machine"]] == 2
    assert counts[numbers["human"]] == counts[numbers["invalid"]] == 1
    assert counts[numbers["dnc"]] == 0
    again = show(svc, account, cid)["counters"]
    assert (again["delivered"], again["failed"], again["skipped"]) == (1, 4, 1)  # contacts, not attempts

    human_key = next(r["key"] for r in calls(svc, account, cid) if r["phone"] == numbers["human"])
    out = svc.for_account(account).redial(human_key)
    assert out["key"] == keys.attempt_key(cid, 0, 2)
    wait_status(store, account, cid)
    assert dial_counts(store, cid)[numbers["human"]] == 2


def test_re_execute_with_nothing_to_retry_is_refused(store: Any, account: str, stack: Any) -> None:
    add_sim_provider(store, account)
    cid = submit(svc, account, {"contacts": [{"phone": "+34600000300"}], "say": "hi"})
    wait_status(store, account, cid)
    with pytest.raises(DialerError, match="All contacts have already been processed"):
        lifecycle.re_execute(core, account, cid)
    assert show(svc, account, cid)["status"] == "completed"


def test_a_chained_campaign_starts_when_the_first_completes(store: Any, account: str, stack: Any) -> None:
    add_sim_provider(store, account)
    second = submit(svc, account, {"contacts": [{"phone": "+34600000401"}], "say": "then"}, start=False)
    first = submit(
        svc, account, {"contacts": [{"phone": "+34600000400"}], "say": "first", "next_campaign_id": second}
    )
    assert show(svc, account, second)["status"] == "draft"
    wait_status(store, account, first)
    wait_status(store, account, second)
    assert [d["number"] for d in sim_dials(store.r, second)] == ["+34600000401"]
    with pytest.raises(InvalidRequest, match="next_campaign_id: campaign not found"):
        submit(
            svc, account, {"contacts": [{"phone": "+34600000402"}], "say": "x", "next_campaign_id": "nope"}
        )


def test_group_import_reports_bad_rows_by_line_and_imports_nothing(
    store: Any, account: str, tmp_path: Path
) -> None:
    gid = groups.create(core, account, "leads")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "phone,first_name,timezone\n+34600000501,Ana,\n,Luis,\n12,Marta,\n+34600000504,Jorge,Mars/Base\n"
    )
    with pytest.raises(InvalidRequest) as exc:
        groups.import_rows(core, account, gid, groups.parse_file(bad))
    msg = exc.value.message
    assert msg.startswith("3 bad row(s), nothing imported")
    assert "line 3: phone: Each contact must have a non-empty phone field" in msg
    assert "line 4: phone: not a valid phone number (12)" in msg
    assert "line 5: timezone:" in msg
    assert svc.for_account(account).group(gid)["size"] == 0


def test_campaign_on_a_group_with_continue_dials_contacts_added_later(
    store: Any, account: str, stack: Any, tmp_path: Path
) -> None:
    add_sim_provider(store, account)
    gid = groups.create(core, account, "leads")
    csv_file = tmp_path / "leads.csv"
    csv_file.write_text(
        "phone,first_name,lead_id\n600000600,Ana,L1\n+34600000601,Luis,L2\n+34600000601,Dup,L3\n"
    )
    res = groups.import_rows(core, account, gid, groups.parse_file(csv_file))
    assert (res["imported"], res["duplicates"]) == (2, 1)
    view = svc.for_account(account).group(gid, with_contacts=True)
    assert view["contacts"][0] == {
        "phone": "+34600000600",
        "first_name": "Ana",
        "custom_fields": {"lead_id": "L1"},
    }

    cid = submit(
        svc,
        account,
        {"group_id": gid, "end_handle": "continue", "say": "Hola {{first_name}} ({{custom_fields.lead_id}})"},
    )
    wait_for(lambda: len(sim_dials(store.r, cid)) == 2, timeout=30, what="the group's two contacts")
    wait_for(lambda: show(svc, account, cid)["counters"]["dialing"] == 0, timeout=30, what="calls end")
    assert show(svc, account, cid)["status"] == "running"  # continue: waits for more

    more = tmp_path / "more.json"
    more.write_text(
        json.dumps(
            [
                {"phone": "+34600000602", "first_name": "Eva", "custom_fields": {"lead_id": "L4"}},
                {"phone": "+34600000600", "first_name": "Ana"},
            ]
        )
    )
    res = groups.import_rows(core, account, gid, groups.parse_file(more))
    assert res["imported"] == 1 and res["campaigns_fed"] == [cid]
    wait_for(lambda: len(sim_dials(store.r, cid)) == 3, timeout=30, what="the contact added later")
    dials = sim_dials(store.r, cid)
    assert Counter(d["number"] for d in dials)["+34600000600"] == 1
    twiml = store.r.hget(keys.sim_call(dials[-1]["sid"]), "twiml")
    assert "Hola Eva (L4)" in twiml
    lifecycle.stop(core, account, cid)
    wait_status(store, account, cid, "stopped")


def test_whatsapp_style_params_must_match_the_template_variables(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    body = {
        "say": "Order {{1}} ships {{2}}",
        "contacts": [
            {"phone": "+34600000700", "params": ["A1", "Monday"]},
            {"phone": "+34600000701", "params": ["A2"]},
        ],
    }
    with pytest.raises(
        InvalidRequest, match=r"contacts\.1\.params: each client must have params for all template"
    ):
        submit(svc, account, body, start=False)
    body["contacts"][1]["params"] = ["A2", "Tuesday"]
    assert submit(svc, account, body, start=False)


def test_unknown_group_and_mixed_sources_are_refused(store: Any, account: str) -> None:
    with pytest.raises(InvalidRequest, match="group_id: group not found: nope"):
        submit(svc, account, {"group_id": "nope", "say": "x"}, start=False)
    with pytest.raises(InvalidRequest, match="either contacts or a group_id"):
        submit(svc, account, {"group_id": "g", "contacts": [{"phone": "+34600000800"}], "say": "x"})
    with pytest.raises(InvalidRequest, match="end_handle: continue needs a group_id"):
        submit(svc, account, {"contacts": [{"phone": "+34600000800"}], "say": "x", "end_handle": "continue"})
    other = uid("oth")
    store.create_account(other, "O", 0, None, clock.now_ms())
    gid = groups.create(core, other, "theirs")
    with pytest.raises(InvalidRequest, match="group not found"):
        submit(svc, account, {"group_id": gid, "say": "x"}, start=False)


def test_unreadable_files_give_a_clear_error(store: Any, account: str, tmp_path: Path) -> None:
    gid = groups.create(core, account, "g")
    huge = tmp_path / "huge.csv"
    huge.write_text("phone,first_name\n+34600000990," + "x" * 200_000 + "\n")
    with pytest.raises(InvalidRequest, match="line 2: not readable CSV"):
        groups.import_rows(core, account, gid, groups.parse_file(huge))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        groups.parse_file(deep)
    headerless = tmp_path / "h.csv"
    headerless.write_text("name\nAna\n")
    with pytest.raises(InvalidRequest, match="line 1: the header row must name a 'phone' column"):
        groups.parse_file(headerless)


def test_a_param_placeholder_with_a_default_needs_no_params(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    assert submit(
        svc, account, {"say": "Hi {{1|there}}", "contacts": [{"phone": "+34600000995"}]}, start=False
    )
