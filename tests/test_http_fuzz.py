"""Fuzzing every write route of the HTTP API (from its route table) with generated requests: never a 500,
never a traceback in a body, always one JSON document, and a refused request stores nothing (the Redis key
count does not move). No worker runs in this module, so every key written comes from the request."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import ADMIN_TOKEN, http_account, session_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http import route_table

svc = session_service()
store = svc.core.store

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "contacts", "say", "audio", "xml", "recall", "launch_at", "provider", "group_id", "stagger_seconds",
    "calling_hours", "timezone", "end_handle", "next_campaign_id", "idempotency_key", "name", "kind", "from",
    "cps", "hourly_quota", "max_concurrent", "price_per_minute", "max_call_seconds", "sim", "enabled",
    "numbers", "id", "amount", "balance", "region", "auth_token", "phone", "weekdays", "recal",
    # the seed routes' own
    "message", "clients", "TempMsgID", "JSON", "SendAt", "actions", "status", "playbook_id", "outdial_id",
    "messageKey", "accountID", "params", "template_id",
]  # fmt: skip
phones = st.sampled_from(["+34600000001", "600000002", "+1555", "", "-34600000003", "+34600000009"])
contact = st.fixed_dictionaries(
    {"phone": phones}, optional={"first_name": st.text(max_size=8), "x": json_values}
)
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "contacts": st.lists(contact, max_size=3),
        "say": st.sampled_from(["hi", "Hi {{first_name}}", "{{1}}", "", "Hi {{x"]),
        "recall": st.sampled_from([[1], "[1,2]", [-1], "x", [True]]),
        "launch_at": st.sampled_from(
            ["2999-01-01T00:00:00Z", "2020-01-01T00:00:00", 5, "9999-12-31T23:59:59-01:00"]
        ),
        "name": st.text(max_size=10),
        "numbers": st.lists(phones, max_size=3),
        "cps": st.sampled_from([1, 0, -1, "x", 1e308, 2.5]),
        "from": st.lists(phones, max_size=2),
        "amount": st.sampled_from(["1.00", "-1", "1e30", "0.00001", 5]),
    },
)
# what the seeds' clients send, nearly right: seed 001's create/update, seed 002's actions and status
seed_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["x", "", 5, None, ["x"]]),
        "message": st.sampled_from(["Hi {{1}}", "", 5, True, {"a": 1}, ["x"]]),
        "clients": st.lists(
            st.fixed_dictionaries({"accountID": phones}, optional={"params": json_values}), max_size=3
        ),
        "TempMsgID": st.sampled_from(["nope", 5, ""]),
        "JSON": json_values,
        "SendAt": st.sampled_from(["2999-03-03T14:32:25+03:00", "2020-01-01T00:00:00Z", "x", 5]),
        "actions": st.sampled_from(
            [[{"type": "talk", "option": {"text": "Hi", "language": "es-ES"}}], [{"type": "hangup"}], 5, "x"]
        )
        | st.lists(st.fixed_dictionaries({"type": st.just("talk"), "option": json_values}), max_size=2),
        "status": st.sampled_from(["run", "stop", "stopping", 5, None]),
        "outdial_id": st.sampled_from(["nope", 5, ""]),
        "end_handle": st.sampled_from(["stop", "continue", 5]),
        "messageKey": st.sampled_from(["x", 5, "a:b:c"]),
        "playbook_id": st.sampled_from(["nope", 5, ""]),
    },
)
bodies = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    near_valid,
    seed_like,
    st.binary(max_size=40),
)


@pytest.fixture(scope="module")
def owned(web: str) -> dict[str, Any]:
    account, client = http_account(web)
    cid = client.post(
        "/campaigns", json={"contacts": [{"phone": "+34600000001"}], "say": "x"}, params={"start": "false"}
    ).json()["campaign_id"]
    later = client.post(  # scheduled: what seed 001's update takes
        "/campaigns",
        json={"contacts": [{"phone": "+34600000002"}], "say": "x", "launch_at": "2999-01-01T00:00:00Z"},
    ).json()["campaign_id"]
    gid = client.post("/groups", json={"name": "g"}).json()["id"]
    tid = client.post("/templates", json={"name": "t", "say": "Hi {{1}}"}).json()["id"]
    return {
        "account": account,
        "client": client,
        "campaign_id": cid,
        "campaign_ids": [cid, later, int(cid, 16), int(later, 16)],  # as printed, and as the seeds' integers
        "group_id": gid,
        "template_id": tid,
    }


def _target(draw: Any, route: str, owned: dict[str, Any]) -> str:
    values = {
        "campaign_id": draw(
            st.sampled_from([owned["campaign_id"], "nope", "../x", "%00"]) | st.text(max_size=8)
        ),
        "key": draw(st.sampled_from([f"{owned['campaign_id']}:0:1", "a:b:c", "x"])),
        "group_id": draw(st.sampled_from([owned["group_id"], "nope"])),
        "name": draw(st.sampled_from(["sim", "nope", "x" * 70])),
        "number": draw(st.sampled_from(["+34600000001", "abc", "1"])),
        "account_id": draw(st.sampled_from([owned["account"], "nope"])),
        "template_id": draw(st.sampled_from([owned["template_id"], "nope"])),
    }
    return route.format(**{k: quote(v, safe="") or "x" for k, v in values.items()})


@settings(max_examples=1100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_requests_to_every_write_route_never_break_the_api(
    web: str, web_app: Any, owned: dict[str, Any], data: Any
) -> None:
    writes = [(m, r) for m, r in route_table(web_app) if m in ("POST", "PUT", "PATCH", "DELETE")]
    method, route = data.draw(st.sampled_from(writes))
    path = _target(data.draw, route, owned)
    body = data.draw(bodies)
    if isinstance(body, dict) and data.draw(st.booleans()):  # the seed routes that name it in the body
        body = {**body, "id": data.draw(st.sampled_from(owned["campaign_ids"]))}
    headers = (
        {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        if route.startswith("/admin")
        else dict(owned["client"].headers)
    )
    if isinstance(body, bytes):
        kwargs: dict[str, Any] = {"content": body, "headers": {**headers, "Content-Type": "application/json"}}
    else:
        kwargs = {
            "content": json.dumps(body).encode(),
            "headers": {**headers, "Content-Type": "application/json"},
        }
    if data.draw(st.booleans()):
        kwargs["params"] = {"start": data.draw(st.sampled_from(["true", "false", "maybe"]))}
    before = store.r.dbsize()
    res = httpx.request(method, web + path, timeout=30, **kwargs)
    assert res.status_code != 500, (method, path, body, res.text)
    assert "Traceback" not in res.text
    answer = res.json()
    if res.status_code >= 400:
        assert set(answer) <= {"error", "warning", "detail"} and answer, res.text
        assert store.r.dbsize() == before, (method, path, body, res.text)
