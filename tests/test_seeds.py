"""The five seed APIs as drop-in routes, driven over real HTTP with the seed documents' own example bodies
(copied here as data; where an example's date has passed, the same body with the date moved to the future
is used too), asserting their documented fields, statuses and messages; every example campaign, once
started, is dialled on the simulator."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from conftest import http_account, session_service, wait_for

from dialer import keys
from dialer.pace import hour_start

svc = session_service()

# --- the seeds' own examples -----------------------------------------------------------------------------------------
SEED_001_TEMPLATE = "c8630dcb-dc36-4968-8ca4-26a78893c1e6"
SEED_001_ONLY_TEMPLATE = {
    "name": "Order Confirmation Campaign",
    "clients": [{"accountID": "+966539078942", "params": ["John", "ORD-12345"]}],
    "TempMsgID": SEED_001_TEMPLATE,
    "SendAt": "2025-03-03T14:32:25+03:00",
}
SEED_001_ALL_FIELDS = {
    "name": "Welcome Back Campaign",
    "message": "We are happy to see you back again.",
    "clients": [{"accountID": "+966539078942", "params": ["https://example.com/image1.png", ""]}],
    "JSON": '{ "to": "<accountID>", "type": "template", ... }',
    "TempMsgID": SEED_001_TEMPLATE,
    "SendAt": "2025-03-03T14:32:25+03:00",
}
SEED_002_OUTDIAL = "40bea034-1d17-474d-a5de-da00d0861c69"
SEED_002_CREATE = {
    "name": "test campaign",
    "detail": "test campaign detail",
    "type": "call",
    "service_level": 100,
    "end_handle": "stop",
    "actions": [
        {
            "type": "talk",
            "option": {
                "text": "Hello. This is outbound campaign's test calling. Please wait until the agent answer the call. Thank you.",
                "language": "en-US",
            },
        }
    ],
    "outplan_id": "d5fb7357-7ddb-4f2d-87b5-8ccbfd6c039e",
    "outdial_id": SEED_002_OUTDIAL,
    "queue_id": "99bf739a-932f-433c-b1bf-103d33d7e9bb",
}
SEED_003_PLAYBOOK = "550e8400-e29b-41d4-a716-446655440000"
SEED_003_MINIMAL = {
    "playbook_id": SEED_003_PLAYBOOK,
    "contacts": [{"phone": "+34600123456"}, {"phone": "+34600987654"}],
}
SEED_003_WITH_DATA = {
    "playbook_id": SEED_003_PLAYBOOK,
    "contacts": [
        {
            "phone": "+34600123456",
            "first_name": "Juan",
            "last_name": "García",
            "email": "juan@example.com",
            "company": "Acme SL",
        },
        {"phone": "+34600987654", "first_name": "María", "email": "maria@example.com"},
    ],
    "recall": "[30,120]",
}
SEED_003_CUSTOM = {
    "playbook_id": SEED_003_PLAYBOOK,
    "contacts": [
        {
            "phone": "+34600123456",
            "first_name": "Juan",
            "last_name": "García",
            "custom_fields": {"lead_id": "ext-12345", "producto_interes": "Premium", "origen": "web"},
        }
    ],
    "recall": [30, 60, 120],
}
SEED_003_SCHEDULED = {
    "playbook_id": SEED_003_PLAYBOOK,
    "contacts": [
        {"phone": "+34600123456", "first_name": "Juan"},
        {"phone": "+34600987654", "first_name": "María"},
    ],
    "launch_at": "2025-03-01T10:00:00",
    "recall": "[30,120]",
}


@pytest.fixture(scope="module")
def seeded(web: str) -> dict[str, Any]:
    """One account holding the seeds' fixed ids: their templates (playbook, TempMsgID) and VoIPbin outdial."""
    account, client = http_account(web)
    client.post(
        "/templates",
        json={"id": SEED_001_TEMPLATE, "name": "order_confirmation", "say": "Hello {{1}}, order {{2}}."},
    )
    client.post(
        "/templates", json={"id": SEED_003_PLAYBOOK, "name": "playbook", "say": "Hola {{first_name|}}"}
    )
    client.post("/groups", json={"id": SEED_002_OUTDIAL, "name": "outdial"})
    client.post(
        f"/groups/{SEED_002_OUTDIAL}/contacts", json=[{"phone": "+34600222001"}, {"phone": "+34600222002"}]
    )
    key = client.headers["Authorization"].split()[1]
    return {"account": account, "client": client, "key": key, "web": web}


def completed(client: httpx.Client, cid: str) -> dict[str, Any]:
    return wait_for(
        lambda: (v := client.get(f"/campaigns/{cid}").json())["status"] == "completed" and v,
        timeout=60,
        what=cid,
    )


def future(body: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    moved = copy.deepcopy(body)
    moved[field] = value
    return moved


# --- seed 000 ------------------------------------------------------------------------------------------------------------
def test_seed_000_starts_with_user_token_and_answers_in_the_seeds_keys(
    seeded: dict[str, Any], stack: Any
) -> None:
    web, client = seeded["web"], seeded["client"]
    cid = client.post(
        "/campaigns", json={"contacts": [{"phone": "+34600000101"}], "say": "hi"}, params={"start": "false"}
    ).json()["campaign_id"]
    res = httpx.get(f"{web}/api/audio-campaign/{int(cid, 16)}", params={"user_token": seeded["key"]})
    assert (res.status_code, res.json()) == (200, {"success": "Campaign Started successfully"})
    completed(client, cid)
    assert httpx.get(f"{web}/api/audio-campaign/{cid}", params={"user_token": "wrong"}).status_code == 401
    poor, poor_client = http_account(web, balance="0.10")
    other = poor_client.post(
        "/campaigns", json={"contacts": [{"phone": "+34600000102"}], "say": "hi"}, params={"start": "false"}
    ).json()["campaign_id"]
    token = poor_client.headers["Authorization"].split()[1]
    res = httpx.get(f"{web}/api/audio-campaign/{other}", params={"user_token": token})
    assert (res.status_code, res.json()) == (401, {"error": "Insufficient balance"})
    late = poor_client.post(  # a launch time gone by is no check of seed 000's: its first check answers
        "/campaigns",
        json={"contacts": [{"phone": "+34600000103"}], "say": "hi", "launch_at": "2020-01-01T00:00:00Z"},
        params={"start": "false"},
    ).json()["campaign_id"]
    res = httpx.get(f"{web}/api/audio-campaign/{late}", params={"user_token": token})
    assert (res.status_code, res.json()) == (401, {"error": "Insufficient balance"})
    poor_client.patch("/providers/sim", json={"hourly_quota": 1})
    svc.core.store.r.set(keys.provider_quota(poor, "sim", hour_start(svc.core.now())), 1)  # used up
    svc.topup(poor, "10")
    res = httpx.get(f"{web}/api/audio-campaign/{other}", params={"user_token": token})
    assert (res.status_code, res.json()) == (400, {"warning": "Hourly quota crossed"})


# --- seed 001 ------------------------------------------------------------------------------------------------------------
def test_seed_001_create_follows_its_own_rules_and_answers_campaign_responses(
    seeded: dict[str, Any], stack: Any
) -> None:
    web, key = seeded["web"], seeded["key"]
    api = httpx.Client(base_url=web, headers={"X-API-Key": key}, timeout=30)
    res = api.post("/v2/campaign/create", json=SEED_001_ONLY_TEMPLATE)
    assert (res.status_code, res.json()) == (400, {"error": "invalid request: at least 2 clients required"})
    two = copy.deepcopy(SEED_001_ONLY_TEMPLATE)
    two["clients"].append({"accountID": "+34600000112", "params": ["Ana", "ORD-2"]})
    assert api.post("/v2/campaign/create", json=two).json() == {"error": "Scheduled time is in the past"}
    two["SendAt"] = "2999-03-03T14:32:25+03:00"
    answer = api.post("/v2/campaign/create", json=two).json()
    for field in ("ID", "Name", "TemplateName", "Lang", "CreatedAt", "UpdatedAt", "SendAt", "Status", "AgentID",
                  "Message", "JSON", "SentCount", "DeliveredCount", "FailedCount", "Total", "Clients", "CompanyID",
                  "ReportHeaders", "TempMsgID", "Error", "SocketKey"):  # fmt: skip
        assert field in answer
    assert isinstance(answer["ID"], int) and answer["TemplateName"] == "order_confirmation"
    assert answer["Total"] == 2 and answer["Clients"][0] == {
        "AccountID": "+966539078942",
        "Params": ["John", "ORD-12345"],
    }
    assert answer["SendAt"] == "2999-03-03T11:32:25.000Z" and answer["Status"] == "scheduled"
    # update: only while scheduled, name and SendAt
    upd = api.put(
        "/v2/campaign/update",
        json={"id": answer["ID"], "name": "test22", "SendAt": "2999-03-04T11:31:25.000Z"},
    ).json()
    assert (upd["Name"], upd["SendAt"]) == ("test22", "2999-03-04T11:31:25.000Z")
    # every rule of the seed, with its message
    for body, message in (
        ({**two, "TempMsgID": "nope"}, "invalid request: template not found"),
        ({k: v for k, v in two.items() if k != "TempMsgID"}, "invalid request: JSON or TempMsgID required"),
        ({**two, "JSON": '{"a": "{{1}}", "b": "{{2}}", "c": "{{3}}"}'}, "invalid request: not enough params for variables in JSON"),
        ({**two, "clients": [{"accountID": "+34600000113", "params": ["x"]}, {"accountID": "+34600000114", "params": ["x"]}]},
         "invalid request: each client must have params for all template variables"),
    ):  # fmt: skip
        assert api.post("/v2/campaign/create", json=body).json() == {"error": message}
    # all fields: message overrides the template's text, JSON stored and reported; sent now
    everything = copy.deepcopy(SEED_001_ALL_FIELDS)
    everything["clients"].append({"accountID": "+34600000115", "params": ["a", "b"]})
    del everything["SendAt"]
    sent = api.post("/v2/campaign/create", json=everything).json()
    assert (
        sent["Message"] == "We are happy to see you back again."
        and sent["JSON"] == SEED_001_ALL_FIELDS["JSON"]
    )
    cid = f"{sent['ID']:012x}"
    completed(seeded["client"], cid)
    msgs = api.get("/v2/campaign/getCampMsgs", params={"campaignID": sent["ID"], "resultSize": 10}).json()[
        "messages"
    ]
    assert {m["AccountID"] for m in msgs} == {"+966539078942", "+34600000115"} and all(
        m["MessageKey"] for m in msgs
    )
    again = api.post("/v2/campaign/resendMsg", json={"messageKey": msgs[0]["MessageKey"]}).json()
    assert again["success"] is True and again["MessageKey"].endswith(":2")
    listed = api.get("/v2/campaign/getAll", params={"resultSize": 50}).json()["campaigns"]
    assert sent["ID"] in [c["ID"] for c in listed]
    refused = api.put("/v2/campaign/update", json={"id": sent["ID"], "name": "late"}).json()
    assert refused == {"error": "only scheduled campaigns can be updated (name and SendAt fields only)"}
    gone = api.request("DELETE", "/v2/campaign/delete", json={"id": answer["ID"]}).json()
    assert gone["ID"] == answer["ID"] and gone["Status"] == "deleted"


# --- seed 002 ------------------------------------------------------------------------------------------------------------
def test_seed_002_voipbin_campaigns_are_created_stopped_and_run_by_status(
    seeded: dict[str, Any], stack: Any
) -> None:
    web, key = seeded["web"], seeded["key"]
    created = httpx.post(f"{web}/v1.0/campaigns", params={"token": key}, json=SEED_002_CREATE).json()
    for field in ("id", "customer_id", "type", "name", "detail", "status", "service_level", "end_handle", "actions",
                  "outplan_id", "outdial_id", "queue_id", "next_campaign_id", "tm_create", "tm_update", "tm_delete"):  # fmt: skip
        assert field in created
    assert (created["status"], created["detail"], created["service_level"]) == (
        "stop",
        "test campaign detail",
        100,
    )
    assert created["next_campaign_id"] == "00000000-0000-0000-0000-000000000000"
    assert created["tm_update"] == created["tm_delete"] == "9999-01-01 00:00:00.000000"
    assert created["actions"] == SEED_002_CREATE["actions"] and created["outdial_id"] == SEED_002_OUTDIAL
    cid = created["id"]
    detail = httpx.get(f"{web}/v1.0/campaigns/{cid}", params={"token": key}).json()
    assert detail == created
    renamed = httpx.put(
        f"{web}/v1.0/campaigns/{cid}", params={"token": key}, json={"name": "renamed", "detail": "d2"}
    ).json()
    assert (renamed["name"], renamed["detail"]) == ("renamed", "d2")
    run = httpx.put(
        f"{web}/v1.0/campaigns/{cid}/status", params={"token": key}, json={"status": "run"}
    ).json()
    assert run["status"] == "run"
    completed(seeded["client"], cid)
    assert httpx.get(f"{web}/v1.0/campaigns/{cid}", params={"token": key}).json()["status"] == "stop"
    page = httpx.get(f"{web}/v1.0/campaigns", params={"token": key, "page_size": 1}).json()
    assert set(page) == {"result", "next_page_token"} and len(page["result"]) == 1
    gone = httpx.delete(f"{web}/v1.0/campaigns/{cid}", params={"token": key}).json()
    assert gone["tm_delete"] != "9999-01-01 00:00:00.000000"
    # stop on a running campaign: it stops dialing and can run again
    later = httpx.post(f"{web}/v1.0/campaigns", params={"token": key}, json=SEED_002_CREATE).json()["id"]
    seeded["client"].put(f"/campaigns/{later}", json={"launch_at": "2999-01-01T00:00:00Z"})
    assert (
        httpx.put(
            f"{web}/v1.0/campaigns/{later}/status", params={"token": key}, json={"status": "run"}
        ).json()["status"]
        == "run"
    )
    assert (
        httpx.put(
            f"{web}/v1.0/campaigns/{later}/status", params={"token": key}, json={"status": "stop"}
        ).json()["status"]
        == "stop"
    )
    assert (
        httpx.put(
            f"{web}/v1.0/campaigns/{later}/status", params={"token": key}, json={"status": "run"}
        ).json()["status"]
        == "run"
    )


# --- seed 003 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("example", [SEED_003_MINIMAL, SEED_003_WITH_DATA, SEED_003_CUSTOM])
def test_seed_003_immediate_examples_are_accepted_and_dialled(
    seeded: dict[str, Any], stack: Any, example: dict[str, Any]
) -> None:
    res = seeded["client"].post("/campaign", json=example)
    assert res.status_code == 202
    body = res.json()
    assert (body["success"], body["message"], body["scheduled"]) == (
        True,
        "Campaign started successfully",
        False,
    )
    assert body["total_contacts"] == len(example["contacts"])
    view = wait_for(
        lambda: (
            (v := seeded["client"].get(f"/campaigns/{body['campaign_id']}").json())["counters"]["sent"] >= 1
            and v
        ),
        timeout=30,
    )
    assert view["playbook_id"] == SEED_003_PLAYBOOK and view["template_id"] == SEED_003_PLAYBOOK


def test_seed_003_scheduled_example_and_its_errors(seeded: dict[str, Any]) -> None:
    client = seeded["client"]
    assert client.post("/campaign", json=SEED_003_SCHEDULED).json() == {
        "error": "Scheduled time is in the past"
    }
    body = client.post(
        "/campaign", json=future(SEED_003_SCHEDULED, "launch_at", "2027-03-01T10:00:00")
    ).json()
    assert body["message"] == "Scheduled 2 calls for 01/03/2027 10:00"
    assert (body["scheduled"], body["launch_at"], body["total_contacts"], body["scheduled_calls"], body["error_calls"]) == (
        True, "2027-03-01T10:00:00.000Z", 2, 2, 0
    )  # fmt: skip
    bad = client.post(
        "/campaign", json={**SEED_003_MINIMAL, "contacts": [{"phone": "+34600123456"}, {"first_name": "x"}]}
    )
    assert (bad.status_code, bad.json()) == (400, {"error": "Each contact must have a non-empty phone field"})
    assert client.post("/campaign", json={"contacts": [{"phone": "+34600123456"}]}).status_code == 400
    assert client.post("/campaign", json={**SEED_003_MINIMAL, "contacts": []}).status_code == 400
    assert client.post("/campaign", json={**SEED_003_MINIMAL, "playbook_id": "nope"}).status_code == 403
    _, other = http_account(seeded["web"])
    assert other.post("/campaign", json=SEED_003_MINIMAL).status_code == 403  # another account's playbook
    assert httpx.post(f"{seeded['web']}/campaign", json=SEED_003_MINIMAL).status_code == 401


# --- seed 004 ------------------------------------------------------------------------------------------------------------
def test_seed_004_start_answers_the_seeds_bodies(seeded: dict[str, Any], stack: Any) -> None:
    client = seeded["client"]
    later = client.post(
        "/campaigns",
        json={"contacts": [{"phone": "+34600000141"}], "say": "hi", "launch_at": "2999-02-15T09:00:00Z"},
        params={"start": "false"},
    ).json()["campaign_id"]
    body = client.post(f"/api/v1/campaigns/{int(later, 16)}/start").json()
    assert body == {
        "success": True,
        "message": "Campaign scheduled for 2999-02-15 09:00:00 UTC",
        "task_id": body["task_id"],
        "campaign_id": int(later, 16),
        "status": "scheduled",
        "scheduled_time": "2999-02-15T09:00:00.000Z",
    }
    now = client.post(
        "/campaigns", json={"contacts": [{"phone": "+34600000142"}], "say": "hi"}, params={"start": "false"}
    ).json()["campaign_id"]
    body = client.post(f"/api/v1/campaigns/{now}/start").json()
    assert (body["message"], body["status"], body["campaign_id"]) == (
        "Campaign execution started immediately",
        "scheduled",
        now,
    )
    completed(client, now)
    res = client.post(f"/api/v1/campaigns/{now}/start")  # the seed's words for a finished campaign
    assert (res.status_code, res.json()) == (400, {"error": "All contacts have already been processed"})
    # a paused campaign is resumed by start, with the seed's body (its clients read task_id)
    assert client.post(f"/campaigns/{later}/pause").json()["status"] == "paused"
    body = client.post(f"/api/v1/campaigns/{later}/start").json()
    assert (body["success"], body["status"], body["scheduled_time"]) == (
        True,
        "scheduled",
        "2999-02-15T09:00:00.000Z",
    )
    assert body["task_id"] and body["campaign_id"] == later
    past = client.post(
        "/campaigns",
        json={"contacts": [{"phone": "+34600000143"}], "say": "hi", "launch_at": "2020-01-01T00:00:00Z"},
        params={"start": "false"},
    ).json()["campaign_id"]
    assert client.post(f"/api/v1/campaigns/{past}/start").json() == {"error": "Scheduled time is in the past"}
    assert client.post("/api/v1/campaigns/999999/start").status_code == 404


def test_seed_routes_refuse_values_of_the_wrong_kind_and_keep_each_seeds_rules(
    seeded: dict[str, Any],
) -> None:
    """What a seed client may send wrong (a number where text is meant, an update its seed does not allow, a
    number that cannot be dialled, an absurd id) is a 400 or 404 naming it, never a 500, and stores nothing."""
    web, key, client = seeded["web"], seeded["key"], seeded["client"]
    api = httpx.Client(base_url=web, headers={"X-API-Key": key}, timeout=30)
    two = copy.deepcopy(SEED_001_ONLY_TEMPLATE)
    two["clients"].append({"accountID": "+34600000116", "params": ["Ana", "ORD-2"]})
    two["SendAt"] = "2999-03-03T14:32:25+03:00"

    def campaigns() -> int:  # (dbsize would count the background stack's work on earlier campaigns)
        return int(svc.core.store.r.hlen(keys.CAMPAIGN_INDEX))

    before = campaigns()
    for bad in (5, True, ["x"], {"a": 1}):
        res = api.post("/v2/campaign/create", json={**two, "message": bad})
        assert (res.status_code, res.json()) == (400, {"error": "invalid request: message must be a string"})
    for name in (None, "", "  "):
        res = api.post("/v2/campaign/create", json={**two, "name": name})
        assert (res.status_code, res.json()) == (400, {"error": "invalid request: name is required"})
    # refusals name the field as the seed's client sent it
    res = api.post(
        "/v2/campaign/create",
        json={**two, "clients": [*two["clients"][:1], {"accountID": "", "params": ["a", "b"]}]},
    )
    assert res.status_code == 400 and res.json()["error"].startswith("clients.1.accountID:"), res.text
    res = api.post("/v2/campaign/create", json={**two, "SendAt": "next tuesday"})
    assert res.status_code == 400 and res.json()["error"].startswith("SendAt:"), res.text
    res = api.post("/v2/campaign/create", json={**two, "message": "Hi {{1"})
    assert res.status_code == 400 and [d["field"] for d in res.json()["detail"]] == ["message"], res.text
    assert campaigns() == before  # nothing stored for a refused request
    with_empty = {
        **two,
        "clients": [{"accountID": "+34600000119", "params": ["Ana", ""]}, *two["clients"][1:]],
    }
    assert api.post("/v2/campaign/create", json=with_empty).status_code == 200  # an empty param is given
    before = campaigns()
    res = client.post("/campaign", json={**SEED_003_MINIMAL, "contacts": [{"phone": "abc"}]})
    assert res.status_code == 400 and "contacts.0.phone" in res.json()["error"]
    assert campaigns() == before
    for path in ("/api/audio-campaign/" + "9" * 5000, "/api/v1/campaigns/" + "9" * 5000 + "/start"):
        assert client.request("GET" if "audio" in path else "POST", path).status_code == 404
    # seed 001 update: a scheduled campaign only (a draft is refused with the seed's message), text only
    scheduled = api.post("/v2/campaign/create", json=two).json()["ID"]
    for bad in (5, ["x"], {"a": 1}, True):
        res = api.put("/v2/campaign/update", json={"id": scheduled, "name": bad})
        assert res.status_code == 400 and "name" in res.json()["error"], res.text
    draft = client.post(
        "/campaigns", json={"contacts": [{"phone": "+34600000117"}], "say": "hi"}, params={"start": "false"}
    ).json()["campaign_id"]
    res = api.put("/v2/campaign/update", json={"id": draft, "name": "x", "SendAt": "2020-01-01T00:00:00Z"})
    assert res.json() == {"error": "only scheduled campaigns can be updated (name and SendAt fields only)"}
    assert client.get(f"/campaigns/{draft}").json()["name"] != "x"
    # seed 002 update: the new talk is what will be spoken; what it dials is fixed at create
    vb = httpx.Client(base_url=web, params={"token": key}, timeout=30)
    cid = vb.post("/v1.0/campaigns", json=SEED_002_CREATE).json()["id"]
    talk = [{"type": "talk", "option": {"text": "New text {{first_name|}}", "language": "es-ES"}}]
    res = vb.put(f"/v1.0/campaigns/{cid}", json={"actions": talk})
    assert res.status_code == 200 and res.json()["actions"] == talk
    stored = svc.core.store.get_campaign(seeded["account"], cid)[0]
    assert (stored.say, stored.language) == ("New text {{first_name|}}", "es-ES")
    for body in (
        {"name": 5},
        {"actions": [{"type": "hangup"}]},
        {"actions": [{"type": "talk", "option": {"text": 7}}]},
        {"actions": [{"type": "talk", "option": {"text": "Hi {{first_name}}"}}]},  # a contact has no name
        {"actions": [{"type": "talk", "option": {"text": "x" * 10_001}}]},
        {"actions": [{"type": "talk", "option": {"text": "Hi {{first_name"}}]},
        {"actions": [{"type": "talk", "option": {"text": "Hi", "language": "x" * 40}}]},
        {"outdial_id": "another-group"},
        {"end_handle": "continue"},
    ):
        res = vb.put(f"/v1.0/campaigns/{cid}", json=body)
        assert res.status_code == 400, (body, res.text)
    assert svc.core.store.get_campaign(seeded["account"], cid)[0].say == "New text {{first_name|}}"


def test_a_native_campaign_names_a_template_by_the_seeds_names_too(seeded: dict[str, Any]) -> None:
    client = seeded["client"]
    body = {"TempMsgID": SEED_001_TEMPLATE, "contacts": [{"phone": "+34600000118", "params": ["A", "B"]}]}
    cid = client.post("/campaigns", json=body, params={"start": "false"}).json()["campaign_id"]
    assert client.get(f"/campaigns/{cid}").json()["template_id"] == SEED_001_TEMPLATE
    assert svc.core.store.get_campaign(seeded["account"], cid)[0].say == "Hello {{1}}, order {{2}}."
