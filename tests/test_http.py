"""The HTTP API over real HTTP (uvicorn on a local port), real Redis and a real worker: every capability of
the CLI, one error shape, account keys and strict tenancy."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ADMIN_TOKEN, footprint, http_account, session_service, uid, wait_for
from test_cli import as_json, dialer

from dialer import keys

svc = session_service()
BODY = {"contacts": [{"phone": "+34600000001"}, {"phone": "+34600000007"}], "say": "Hello", "recall": [0.02]}


def done(client: httpx.Client, cid: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (v := client.get(f"/campaigns/{cid}").json())["status"] in ("completed", "stopped", "failed")
            and v
        ),
        timeout=timeout,
        what=f"campaign {cid} to end",
    )


def all_calls(client: httpx.Client, cid: str, limit: int = 1) -> list[dict[str, Any]]:
    rows, token = [], None
    while True:
        page = client.get(
            f"/campaigns/{cid}/calls", params={"limit": limit, **({"page_token": token} if token else {})}
        )
        assert page.status_code == 200, page.text
        rows += page.json()["result"]
        token = page.json()["next_page_token"]
        if not token:
            return rows


def test_a_campaign_created_over_http_is_dialled_and_answers_what_the_cli_answers(
    web: str, stack: Any
) -> None:
    account, client = http_account(web)
    res = client.post("/campaigns", json=BODY)
    assert res.status_code == 202, res.text
    body = res.json()
    assert body["success"] is True and body["status"] == "scheduled"
    assert (body["total_contacts"], body["scheduled_calls"], body["error_calls"]) == (2, 2, 0)
    view = done(client, body["campaign_id"])
    assert view["status"] == "completed"
    assert view == as_json(dialer("campaign", "show", body["campaign_id"], "--json"))
    calls = all_calls(client, body["campaign_id"], limit=1)  # one row a page: paging itself is exercised
    assert calls == as_json(dialer("campaign", "calls", body["campaign_id"], "--json"))
    assert [c["attempt"] for c in calls] == [1, 1, 2]
    assert client.get("/account").json()["id"] == account


def test_keys_are_accepted_in_every_seed_style_and_refused_with_401(web: str) -> None:
    _, client = http_account(web, provider=False)
    key = client.headers["Authorization"].split()[1]
    raw = httpx.Client(base_url=web)
    for kwargs in (
        {"headers": {"Authorization": f"Bearer {key}"}},
        {"headers": {"X-API-Key": key}},
        {"params": {"user_token": key}},
        {"params": {"token": key}},
    ):
        assert raw.get("/account", **kwargs).status_code == 200, kwargs
    for kwargs in ({}, {"headers": {"Authorization": "Bearer dk_wrong"}}, {"params": {"token": ""}}):
        res = raw.get("/account", **kwargs)
        assert res.status_code == 401 and set(res.json()) == {"error"}


def test_a_rotated_key_stops_working_and_admin_routes_need_the_admin_token(web: str) -> None:
    account, client = http_account(web, provider=False)
    admin = httpx.Client(base_url=web, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    new = admin.post(f"/admin/accounts/{account}/key").json()["api_key"]
    assert client.get("/account").status_code == 401
    assert httpx.get(f"{web}/account", headers={"X-API-Key": new}).json()["id"] == account
    assert (
        admin.post(f"/admin/accounts/{account}/topup", json={"amount": "5.00"}).json()["balance"] == "105.00"
    )
    assert (
        httpx.post(f"{web}/admin/accounts", json={"id": "x"}, headers={"X-API-Key": new}).status_code == 401
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"say": "hi"}, "contacts"),
        ({"contacts": [{"phone": "+34600000001"}, {"first_name": "x"}], "say": "hi"}, "contacts.1.phone"),
        ({"contacts": [{"phone": "+34600000001"}], "say": "hi", "recal": [1]}, "recal"),
        ({"contacts": [{"phone": "+34600000001"}], "say": "hi", "launch_at": 253402300800}, "launch_at"),
        ([1, 2], ""),
    ],
)
def test_bad_campaigns_get_400_naming_the_field_and_store_nothing(web: str, body: Any, field: str) -> None:
    account, client = http_account(web)
    before = footprint(svc.core.store, account)  # (dbsize would see the module's stack at work)
    res = client.post("/campaigns", json=body)
    assert res.status_code == 400, res.text
    assert field in res.json()["error"]
    if field:
        assert field in [d["field"] for d in res.json()["detail"]]
    assert footprint(svc.core.store, account) == before


def test_a_rule_that_refuses_a_value_names_its_field_in_detail_too(web: str) -> None:
    """Not only pydantic's problems: a refusal by a rule (an amount, a launch time, a page token) carries
    the field in `detail`, so a client reads every 400 the same way."""
    account, client = http_account(web, provider=False)
    admin = httpx.Client(base_url=web, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    res = admin.post(f"/admin/accounts/{account}/topup", json={"amount": "NaN"})
    assert res.status_code == 400 and res.json()["detail"][0]["field"] == "amount", res.text
    res = client.get("/campaigns", params={"page_token": "garbage"})
    assert res.status_code == 400 and res.json()["detail"][0]["field"] == "page_token", res.text


def test_malformed_json_and_wrong_types_are_400_not_422(web: str) -> None:
    _, client = http_account(web)
    res = client.post("/campaigns", content=b"{not json", headers={"Content-Type": "application/json"})
    assert res.status_code == 400 and "JSON" in res.json()["error"]
    res = client.get("/campaigns", params={"limit": "many"})
    assert res.status_code == 400 and "limit" in res.json()["error"]


def test_who_is_asking_is_answered_before_what_is_wrong_with_the_body(web: str) -> None:
    raw = httpx.Client(base_url=web)
    for path in ("/campaigns", "/admin/accounts", "/providers"):
        res = raw.post(path, content=b"{bad", headers={"Content-Type": "application/json"})
        assert res.status_code == 401 and set(res.json()) == {"error"}, (path, res.text)
    _, client = http_account(web, provider=False)
    res = client.post("/campaigns", content=b'{"say": x}', headers={"Content-Type": "application/json"})
    assert res.status_code == 400 and res.json()["detail"] == [
        {"field": "", "message": "the request body is not valid JSON (at character 8)"}
    ]
    res = client.post("/campaigns")
    assert (res.status_code, res.json()["error"]) == (400, "a JSON body is required")


def test_the_openapi_document_describes_what_the_routes_really_do(web: str, web_app: Any) -> None:
    """Every reference resolves, refusals are the 400 error shape (never FastAPI's 422), the key's four styles
    are security schemes, and the campaign body's schema takes what the route takes (its own example)."""
    doc = httpx.get(f"{web}/openapi.json").json()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from [v] if k == "$ref" else refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    for ref in refs(doc):
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            assert part in target, f"dangling {ref}"
            target = target[part]
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey", "userToken", "token"}
    for path, methods in doc["paths"].items():
        for op in methods.values():
            assert "422" not in op["responses"], path
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }
    body = doc["paths"]["/campaigns"]["post"]["requestBody"]["content"]["application/json"]
    props = body["schema"]["properties"]
    assert {"type": "string", "format": "date-time"} in props["launch_at"]["anyOf"]
    assert "string" in [t.get("type") for t in props["recall"]["anyOf"]]
    _, client = http_account(web)
    example = {**body["example"], "launch_at": "2999-03-01T10:00:00"}
    assert client.post("/campaigns", json=example, params={"start": "false"}).status_code == 202


def test_start_refusals_keep_the_seed_statuses_and_messages(web: str) -> None:
    _account, client = http_account(web, balance="0.10")
    res = client.post("/campaigns", json=BODY)
    assert (res.status_code, res.json()) == (401, {"error": "Insufficient balance"})
    cid = client.post("/campaigns", json=BODY, params={"start": "false"}).json()["campaign_id"]
    assert client.post(f"/campaigns/{cid}/start").status_code == 401
    assert client.post(f"/campaigns/{cid}/pause").json() == {
        "error": "Campaign is not running (current state: draft)"
    }


def test_bodies_and_contact_lists_over_the_limits_are_413(web: str) -> None:
    _, client = http_account(web)
    res = client.post(
        "/campaigns", content=b"x" * (10 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    assert res.status_code == 413 and "DIALER_MAX_BODY_BYTES" in res.json()["error"]
    many = {"contacts": [{"phone": "+34600000001"}] * 100_001, "say": "hi"}
    res = client.post(
        "/campaigns", content=json.dumps(many).encode(), headers={"Content-Type": "application/json"}
    )
    assert res.status_code == 413 and "DIALER_MAX_CONTACTS" in res.json()["error"]


def test_bodies_streamed_without_a_length_are_held_to_the_same_limit(web: str) -> None:
    """A client that streams its body (chunked, no Content-Length) gets the same 413, on every kind of body,
    and a streamed body under the limit is read as usual."""
    _, client = http_account(web)
    gid = client.post("/groups", json={"name": "leads"}).json()["id"]

    def streamed(total: int, chunk: bytes = b"x" * 1_000_000) -> Any:
        for _ in range(total // len(chunk) + 1):
            yield chunk

    for path, content_type in (
        (f"/groups/{gid}/contacts", "text/csv"),
        ("/campaigns", "application/json"),
        ("/providers", "application/json"),
        (f"/groups/{gid}/contacts", "multipart/form-data; boundary=x"),
    ):
        res = client.post(path, content=streamed(11_000_000), headers={"Content-Type": content_type})
        assert res.status_code == 413, (path, res.text)
        assert "DIALER_MAX_BODY_BYTES" in res.json()["error"]
    small = iter([b"phone\n+34600000021\n", b"+34600000022\n"])
    res = client.post(f"/groups/{gid}/contacts", content=small, headers={"Content-Type": "text/csv"})
    assert res.status_code == 200 and res.json()["imported"] == 2, res.text


def test_an_unexpected_error_is_500_with_an_id_and_no_traceback(web: str) -> None:
    account, client = http_account(web)
    cid = client.post("/campaigns", json=BODY, params={"start": "false"}).json()["campaign_id"]
    doc = svc.core.store.r.hget(keys.campaign(account, cid), "doc")
    svc.core.store.r.hset(keys.campaign(account, cid), "doc", "{broken")  # a bug's leftovers
    try:
        res = client.get(f"/campaigns/{cid}")
        assert res.status_code == 500
        assert set(res.json()) == {"error", "error_id"} and res.json()["error"] == "internal error"
        assert "Traceback" not in res.text
        # one unreadable campaign does not break the lists
        assert client.get("/campaigns").status_code == 200
    finally:
        svc.core.store.r.hset(keys.campaign(account, cid), "doc", doc)


def test_groups_import_json_and_csv_all_or_nothing_and_campaigns_dial_them(web: str, stack: Any) -> None:
    _, client = http_account(web)
    gid = client.post("/groups", json={"name": "leads"}).json()["id"]
    bad = "phone,first_name\n+34600000011,Ana\nnot-a-number,Luis\n"
    res = client.post(f"/groups/{gid}/contacts", content=bad, headers={"Content-Type": "text/csv"})
    assert res.status_code == 400 and "line 3" in res.json()["error"]
    assert client.get(f"/groups/{gid}").json()["size"] == 0
    ok = "phone,first_name\n+34600000011,Ana\n+34600000012,Luis\n"
    files = {"file": ("leads.csv", ok.encode(), "text/csv")}
    res = client.post(f"/groups/{gid}/contacts", files=files)
    assert res.json().get("imported") == 2, res.text
    res = client.post(f"/groups/{gid}/contacts", json=[{"phone": "+34600000013"}, {"phone": 12}])
    assert res.status_code == 400 and "contacts.1" in res.json()["error"]
    assert (
        client.post(f"/groups/{gid}/contacts", json={"contacts": [{"phone": "+34600000013"}]}).json()[
            "imported"
        ]
        == 1
    )
    assert [g["id"] for g in client.get("/groups").json()] == [gid]
    cid = client.post("/campaigns", json={"group_id": gid, "say": "Hi {{first_name|there}}"}).json()[
        "campaign_id"
    ]
    assert done(client, cid)["counters"]["delivered"] == 3


def test_providers_dnc_and_control_routes(web: str) -> None:
    _, client = http_account(web)
    shown = client.patch("/providers/sim", json={"hourly_quota": 100}).json()
    assert shown["hourly_quota"] == 100
    res = client.patch("/providers/sim", json={"auth_token": "s3cret"})  # a simulator takes no credentials
    assert (
        res.status_code == 400 and "s3cret" not in res.text and "s3cret" not in client.get("/providers").text
    )
    for bad in ({"hourly_quota": True}, {"cps": "5"}, {"max_call_seconds": "60"}, {"from": []}):
        assert client.patch("/providers/sim", json=bad).status_code == 400, bad
    assert client.get("/providers/sim").json()["hourly_quota"] == 100
    assert client.post("/providers/sim/test").json() == {"success": "Connection OK"}
    assert client.patch("/providers/sim", json={"cps": "fast"}).status_code == 400
    assert client.post("/dnc", json={"numbers": ["600 000 021"]}).json()["added"] == ["+34600000021"]
    assert client.get("/dnc").json() == ["+34600000021"]
    assert client.post("/dnc/remove", json={"numbers": ["+34600000022"]}).json()["not_listed"] == [
        "+34600000022"
    ]
    assert client.delete("/dnc/+34600000021").json()["removed"] == ["+34600000021"]
    body = {**BODY, "launch_at": "2999-01-01T00:00:00Z"}
    cid = client.post("/campaigns", json=body).json()["campaign_id"]
    res = client.put(f"/campaigns/{cid}", json={"name": "renamed", "launch_at": "2999-06-01T00:00:00Z"})
    assert res.json()["name"] == "renamed"
    assert client.post(f"/campaigns/{cid}/pause").json()["status"] == "paused"
    assert client.post(f"/campaigns/{cid}/start").json()["status"] == "scheduled"
    assert client.post(f"/campaigns/{cid}/cancel").json()["status"] == "cancelled"
    res = client.put(f"/campaigns/{cid}", json={"name": "again"})
    assert res.json()["error"] == "only scheduled campaigns can be updated (name and SendAt fields only)"
    assert client.delete(f"/campaigns/{cid}").json()["status"] == "cancelled"
    assert cid not in [c["id"] for c in client.get("/campaigns").json()["result"]]


def test_fifty_concurrent_posts_with_one_idempotency_key_make_one_campaign(web: str) -> None:
    _account, client = http_account(web)
    key = uid("idem")
    barrier = threading.Barrier(50)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=web, headers=client.headers, timeout=60) as own:
            barrier.wait()
            res = own.post(
                "/campaigns", json=BODY, headers={"Idempotency-Key": key}, params={"start": "false"}
            )
        with lock:
            answers.append(res)

    threads = [threading.Thread(target=post) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["campaign_id"] for r in answers}) == 1
    assert len(client.get("/campaigns").json()["result"]) == 1


# --- tenancy: every route of the app, walked from its route table -------------------------------------------------
OPERATOR_ONLY = ("/admin", "/healthz", "/metrics")


def route_table(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, from the document FastAPI builds from its routes (a
    route left out of it would have to say include_in_schema=False, which none does)."""
    return [
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _owned_by_a(web: str) -> tuple[dict[str, str], httpx.Client]:
    """Account A with one of everything (a launched campaign with an attempt, a group, a provider, a DNC
    number); returns the path values that name them and A's client."""
    account, a = http_account(web, provider=False)
    provider = {"name": "a-only", "kind": "simulator", "from": ["+34911234567"]}
    assert a.post("/providers", json=provider).status_code == 201
    cid = a.post(
        "/campaigns", json={**BODY, "provider": "a-only", "launch_at": "2999-01-01T00:00:00Z"}
    ).json()["campaign_id"]
    svc.engine.launch(account, cid)  # its attempts exist (due far in the future)
    gid = a.post("/groups", json={"name": "a-group"}).json()["id"]
    a.post(f"/groups/{gid}/contacts", json=[{"phone": "+34600000031"}])
    a.post("/dnc", json={"numbers": ["+34600000032"]})
    ids = {
        "campaign_id": cid,
        "key": keys.attempt_key(cid, 0, 1),
        "group_id": gid,
        "name": "a-only",
        "number": "+34600000032",
        "template_id": a.post("/templates", json={"name": "t", "say": "Hi"}).json()["id"],
        "account": account,
    }
    return ids, a


def _snapshot(a: httpx.Client, ids: dict[str, str]) -> Any:
    return (
        a.get(f"/campaigns/{ids['campaign_id']}").json(),
        all_calls(a, ids["campaign_id"], limit=100),
        a.get(f"/groups/{ids['group_id']}", params={"contacts": "true"}).json(),
        a.get("/providers").json(),
        a.get("/dnc").json(),
        a.get("/account").json(),
        a.get("/templates").json(),
    )


def test_no_route_lets_one_account_read_or_touch_anothers(web: str, web_app: Any) -> None:
    """Every route in the app's route table, called by account B with A's ids: another account's
    campaign, call, group or provider is 404 exactly like one that does not exist, nothing of A's changes,
    and no list shows anything of A's. A new route whose path names something unknown here fails."""
    ids, a = _owned_by_a(web)
    _, b = http_account(web, provider=False)
    before = _snapshot(a, ids)
    checked = 0
    for method, route in route_table(web_app):
        if route.startswith(OPERATOR_ONLY):
            continue
        params = [p.strip("{}") for p in route.split("/") if p.startswith("{")]
        unknown = [p for p in params if p not in ids]
        assert not unknown, f"{route}: add a tenancy case for {unknown}"
        path = route.format(**ids)
        body = {"numbers": [ids["number"]]} if method in ("POST", "PUT", "PATCH") else None
        res = b.request(method, path, json=body)
        checked += 1
        if [p for p in params if p != "number"]:  # a DNC number is looked up in B's own list
            assert res.status_code == 404, (method, route, res.status_code, res.text)
            assert set(res.json()) == {"error"}
        for value in (ids["campaign_id"], ids["group_id"], ids["account"], ids["template_id"], "a-only"):
            assert value not in res.text or value in path, (method, route, res.text)
    assert checked >= 25
    assert _snapshot(a, ids) == before


def test_routes_that_take_ids_in_the_body_or_query_keep_to_the_account_too(web: str) -> None:
    """Seed 001's routes name the campaign or the call in the body or the query: A's ids from B are unknown."""
    ids, a = _owned_by_a(web)
    _, b = http_account(web, provider=False)
    before = _snapshot(a, ids)
    seed_id = int(ids["campaign_id"], 16)
    for method, path, kwargs in (
        ("DELETE", "/v2/campaign/delete", {"json": {"id": seed_id}}),
        ("PUT", "/v2/campaign/update", {"json": {"id": seed_id, "name": "mine"}}),
        ("POST", "/v2/campaign/resendMsg", {"json": {"messageKey": ids["key"]}}),
        ("GET", "/v2/campaign/getCampMsgs", {"params": {"campaignID": seed_id}}),
        ("POST", "/campaigns", {"json": {"group_id": ids["group_id"], "say": "hi"}}),
        ("POST", "/campaigns", {"json": {"template_id": ids["template_id"], "contacts": BODY["contacts"]}}),
    ):
        res = b.request(method, path, **kwargs)
        assert res.status_code in (400, 404), (path, res.status_code, res.text)
        assert "not found" in res.json()["error"], res.text
    assert _snapshot(a, ids) == before


def test_group_and_template_ids_are_each_accounts_own(web: str) -> None:
    """B may choose an id that A holds: it gets its own group or template (a create never tells B what ids
    A has); only B's own id again is a conflict. The CLI, which names them by id alone, asks whose."""
    ids, a = _owned_by_a(web)
    _, b = http_account(web, provider=False)
    res = b.post("/groups", json={"id": ids["group_id"], "name": "b-group"})
    assert res.status_code == 201, res.text
    assert b.post(f"/groups/{ids['group_id']}/contacts", json=[{"phone": "+34600000033"}]).status_code == 200
    res = b.post("/templates", json={"id": ids["template_id"], "name": "b-t", "say": "Bye"})
    assert res.status_code == 201, res.text
    assert b.post("/groups", json={"id": ids["group_id"], "name": "again"}).status_code == 409
    assert a.get(f"/groups/{ids['group_id']}").json()["name"] == "a-group"
    assert b.get(f"/groups/{ids['group_id']}").json()["name"] == "b-group"
    assert a.get(f"/templates/{ids['template_id']}").json()["say"] == "Hi"
    assert b.get(f"/templates/{ids['template_id']}").json()["say"] == "Bye"
    proc = dialer("group", "show", ids["group_id"], "--json")
    assert proc.returncode == 1 and "several accounts" in as_json(proc)["error"], proc.stdout
    proc = dialer("group", "show", ids["group_id"], "--account", ids["account"], "--json")
    assert proc.returncode == 0 and as_json(proc)["name"] == "a-group"
    proc = dialer("template", "show", ids["template_id"], "--json")
    assert proc.returncode == 1 and "several accounts" in as_json(proc)["error"]
    assert b.delete(f"/templates/{ids['template_id']}").status_code == 200
    assert a.get(f"/templates/{ids['template_id']}").json()["say"] == "Hi"
    # one holder left: the id is its own again for the CLI; none left: unknown
    assert as_json(dialer("template", "show", ids["template_id"], "--json"))["say"] == "Hi"
    assert a.delete(f"/templates/{ids['template_id']}").status_code == 200
    assert dialer("template", "show", ids["template_id"], "--json").returncode == 1


def test_one_campaign_through_every_door_is_stored_the_same(web: str, stack: Any) -> None:
    """The same campaign JSON by HTTP, by the client in both modes and by the `submit_campaign` message ends
    in the same stored state (campaign show without ids and times)."""
    from dialer.client import Dialer

    account, client = http_account(web)
    key = client.headers["Authorization"].split()[1]
    body = {**BODY, "launch_at": "2999-01-01T00:00:00Z", "name": "same everywhere"}
    ids = [
        client.post("/campaigns", json=body).json()["campaign_id"],
        Dialer(svc.redis_url).submit_campaign(account, body)["campaign_id"],
        Dialer(base_url=web, api_key=key).submit_campaign(None, body)["campaign_id"],
    ]
    Dialer(svc.redis_url).enqueue_campaign(account, {**body, "idempotency_key": "by-message"})
    ids.append(wait_for(lambda: svc.core.store.find_idempotent(account, "by-message"), timeout=20))

    def stored(cid: str) -> dict[str, Any]:
        shown = client.get(f"/campaigns/{cid}").json()
        return {k: v for k, v in shown.items() if k not in ("id", "created_at", "updated_at", "summary")}

    first = stored(ids[0])
    assert first["status"] == "scheduled" and first["counters"]["scheduled_calls"] == 2
    assert all(stored(cid) == first for cid in ids[1:])
    calls = [svc.core.store.contacts(account, cid) for cid in ids]
    assert all(c == calls[0] for c in calls)


def test_the_client_raises_the_same_errors_in_both_modes(web: str) -> None:
    from dialer.client import Dialer
    from dialer.errors import InsufficientBalance, InvalidRequest, InvalidState, NotFound, RedisUnavailable

    account, client = http_account(web, balance="0.01")
    key = client.headers["Authorization"].split()[1]
    draft = client.post("/campaigns", json=BODY, params={"start": "false"}).json()["campaign_id"]
    assert client.delete(f"/campaigns/{draft}").status_code == 200
    for dialer_ in (Dialer(svc.redis_url), Dialer(base_url=web, api_key=key)):
        with pytest.raises(InvalidRequest, match=r"contacts\.0\.phone"):
            dialer_.submit_campaign(account, {"contacts": [{}], "say": "hi"})
        with pytest.raises(InsufficientBalance):
            dialer_.submit_campaign(account, BODY)
        with pytest.raises(NotFound):
            dialer_.campaign("nope")
        with pytest.raises(InvalidState, match="current state: deleted"):
            dialer_.start_campaign(draft)
    # nothing answering is an outage in both modes (Redis mode: RedisUnavailable)
    with pytest.raises(RedisUnavailable, match="cannot be reached"):
        Dialer(base_url="http://127.0.0.1:9", api_key=key, timeout_s=5).campaign(draft)


def run_document(name: str, web: str, tmp_path: Any) -> str:
    """A docs page's ```bash blocks, run as they are (bash, curl) against a live server; returns stdout."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    text = (Path(__file__).resolve().parent.parent / "docs" / name).read_text()
    script = "\n".join(re.findall(r"```bash\n(.*?)```", text, flags=re.S))
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "web.url").write_text(web)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "DIALER_ADMIN_TOKEN": ADMIN_TOKEN},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_every_curl_example_of_the_api_document_runs(web: str, stack: Any, tmp_path: Any) -> None:
    """docs/api.md's commands, run as they are against a live server: every `curl -sf` succeeds."""
    assert not svc.core.store.r.exists(keys.account("acme")), "the document's account exists already"
    assert '"status":"completed"' in run_document("api.md", web, tmp_path).replace(" ", "")


def test_every_curl_example_of_the_seed_document_runs(web: str, stack: Any, tmp_path: Any) -> None:
    """docs/compat.md's commands (the seeds' own examples) against a live server."""
    out = run_document("compat.md", web, tmp_path).replace(" ", "")
    assert "invalidrequest:atleast2clientsrequired" in out and "Scheduled2callsfor01/03/299910:00" in out


def test_a_thousand_bad_contacts_are_told_by_the_first_twenty_and_a_count(web: str) -> None:
    account, client = http_account(web)
    before = footprint(svc.core.store, account)
    body = {"contacts": [{"phone": "+34600000001", "plan": "gold"} for _ in range(1000)], "say": "hi"}
    res = client.post("/campaigns", json=body)
    assert res.status_code == 400 and len(res.content) < 5000, len(res.content)
    error = res.json()["error"]
    assert error.startswith("contacts.0.plan: unknown field") and error.endswith("and 980 more problems")
    assert len(res.json()["detail"]) == 21
    assert footprint(svc.core.store, account) == before
