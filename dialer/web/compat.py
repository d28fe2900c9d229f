"""Drop-in routes for the five seed APIs (``../shared/seeds``): their paths, bodies and answers, each a thin
adapter onto the same intake and lifecycle as the native API — no second set of rules. Where a seed's
rule differs from ours (seed 001's two-client minimum), its route follows its seed.

Ids: our campaign ids are 12 hex digits. Seeds 000, 001 and 004 type them as integers; their routes give
and take the same id as a number (``int(id, 16)``: 48 bits, safe in any integer type), and every route
also takes the id as we print it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse

from dialer.clock import parse_instant, to_iso
from dialer.errors import DialerError, Forbidden, InvalidRequest
from dialer.lifecycle import ALL_PROCESSED, NOT_UPDATABLE
from dialer.models import NO_PHONE, CampaignState
from dialer.service import AccountService
from dialer.states import CampaignStatus
from dialer.templates import required_params
from dialer.web.auth import account

Account = Annotated[AccountService, Depends(account)]
router = APIRouter()
C = CampaignStatus


def seed_int(campaign_id: str) -> int:
    return int(campaign_id, 16)


def our_id(scope: AccountService, given: str | int) -> str:
    """The campaign a seed client names: our id as printed, or the same id as a seed integer."""
    text = str(given).strip()
    if scope.owns_campaign(text):
        return text
    if text.isascii() and text.isdigit() and len(text) <= 15 and int(text) < 16**12:
        return f"{int(text):012x}"
    return text


def _body(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidRequest("invalid request: the body must be a JSON object")
    return payload


def _text(value: Any, field: str) -> str | None:
    """A client's text field: a string (empty = not given), or refused naming the client's field."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"invalid request: {field} must be a string")
    return value


# our field names as each seed's client knows them (a refusal names the field the client sent)
SEED_001_WORDS = (
    ("contacts.", "clients."),
    (".phone", ".accountID"),
    ("launch_at", "SendAt"),
    ("template_id", "TempMsgID"),
    ("say:", "message:"),
)
SEED_002_WORDS = (
    ("group_id", "outdial_id"),
    ("say:", "actions.talk.option.text:"),
    ("language", "actions.talk.option.language"),
)


def _submit(
    scope: AccountService, campaign: dict[str, Any], start: bool, words: tuple[tuple[str, str], ...]
) -> Any:
    """The one intake, its refusals told in the seed's field names."""
    try:
        return scope.submit(campaign, start=start)
    except InvalidRequest as exc:

        def told(text: str) -> str:
            for ours, theirs in words:
                text = text.replace(ours, theirs)
            return text

        # a detail's field is a bare path ("say"): read it as the start of a message ("say:")
        details = [{**d, "field": told(d.get("field", "") + ":")[:-1]} for d in exc.details]
        raise type(exc)(told(exc.message), details) from None


def _lower(payload: Any) -> dict[str, Any]:
    """Seed 001 is a Go API: its JSON field names match case-insensitively (``TempMsgID`` = ``tempmsgid``)."""
    return {str(k).lower(): v for k, v in _body(payload).items()}


# --- seed 000: GET /api/audio-campaign/{id}?user_token= -----------------------------------------------------------
@router.get("/api/audio-campaign/{campaign_id}", tags=["seed 000"])
def seed000_start(scope: Account, campaign_id: str) -> dict[str, str]:
    """Start a campaign: the checks in the seed's order (balance 401, group+provider 401, hourly quota 400
    warning, connection 401), then the PENDING schedule. `{"success": "Campaign Started successfully"}`."""
    scope.start(our_id(scope, campaign_id))
    return {"success": "Campaign Started successfully"}


# --- seed 001: /v2/campaign/* (X-API-Key) ------------------------------------------------------------------------------
def _campaign_response(scope: AccountService, campaign_id: str, with_clients: bool = True) -> dict[str, Any]:
    campaign, state = scope.stored(campaign_id)
    template_name = ""
    if campaign.template_id:
        try:
            template_name = scope.template(campaign.template_id)["name"]
        except DialerError:
            template_name = ""
    clients = (
        [{"AccountID": c.phone, "Params": c.data.get("params") or []} for c in scope.contacts(campaign_id)]
        if with_clients
        else []
    )
    meta = campaign.metadata or {}
    return {
        "ID": seed_int(campaign.id),
        "Name": campaign.name,
        "TemplateName": template_name,
        "Lang": campaign.language or "",
        "CreatedAt": to_iso(state.created_at) or "",
        "UpdatedAt": to_iso(state.updated_at) or "",
        "SendAt": to_iso(campaign.launch_at) or "",
        "Status": state.status.value,
        "AgentID": 0,
        "Message": campaign.say or "",
        "JSON": meta.get("JSON") or "",
        "SentCount": state.counters.sent,
        "DeliveredCount": state.counters.delivered,
        "FailedCount": state.counters.failed,
        "Total": state.counters.total,
        "Clients": clients,
        "CompanyID": 0,
        "ReportHeaders": None,
        "TempMsgID": campaign.template_id or "",
        "Error": "",
        "SocketKey": "",
    }


def _json_variables(text: str) -> int:
    return len(set(re.findall(r"\{\{\s*(\d+)\s*\}\}", text)))


@router.post("/v2/campaign/create", tags=["seed 001"])
def seed001_create(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Create (and schedule at SendAt, or now) a voice campaign from seed 001's CreateCampaignRequest:
    `accountID` is the number to call, `params` fill `{{1}}`..`{{N}}`, `TempMsgID` names a template whose
    text is spoken unless `message` overrides it, `JSON` is stored and reported (nothing to send for voice)."""
    body = _lower(payload)
    clients = body.get("clients")
    if not isinstance(clients, list) or len(clients) < 2:
        raise InvalidRequest("invalid request: at least 2 clients required")
    template_id = body.get("tempmsgid") or None
    template: dict[str, Any] | None = None
    if template_id:
        try:
            template = scope.template(str(template_id))
        except DialerError:
            raise InvalidRequest("invalid request: template not found") from None
    raw_json = body.get("json") or ""
    if not raw_json and not template:
        raise InvalidRequest("invalid request: JSON or TempMsgID required")
    message = _text(body.get("message"), "message")
    name = _text(body.get("name"), "name")
    if not name or not name.strip():
        raise InvalidRequest("invalid request: name is required")
    if not message and not (template and (template["say"] or template["audio"] or template["xml"])):
        raise InvalidRequest(
            "invalid request: a message or a TempMsgID with a message is required for a voice call"
        )
    contacts = []
    for i, client in enumerate(clients):
        item = {str(k).lower(): v for k, v in client.items()} if isinstance(client, dict) else {}
        params = item.get("params") or []
        if not isinstance(params, list):
            raise InvalidRequest(f"invalid request: clients.{i}.params must be a list")
        contacts.append({"phone": item.get("accountid") or "", "params": [str(p) for p in params]})
    if isinstance(raw_json, str) and raw_json and len(contacts[0]["params"]) < _json_variables(raw_json):
        raise InvalidRequest("invalid request: not enough params for variables in JSON")
    spoken = message or (template or {}).get("say") or ""
    if any(len(c["params"]) < required_params(spoken) for c in contacts):
        raise InvalidRequest("invalid request: each client must have params for all template variables")
    campaign: dict[str, Any] = {"name": name, "contacts": contacts}
    if message:
        campaign["say"] = message
    if template_id:
        campaign["template_id"] = str(template_id)
    if raw_json:
        campaign["metadata"] = {"JSON": raw_json if isinstance(raw_json, str) else json.dumps(raw_json)}
    if body.get("sendat"):
        campaign["launch_at"] = body["sendat"]
    res = _submit(scope, campaign, True, SEED_001_WORDS)
    return _campaign_response(scope, res["campaign_id"])


def _remove(scope: AccountService, campaign_id: str) -> None:
    """The seeds' delete: a campaign still active is cancelled first (nothing more is dialled), then
    deleted (kept for reports)."""
    state = scope.stored(campaign_id)[1]
    if state.current in (C.SCHEDULED, C.RUNNING, C.PAUSED, C.STOPPING):
        scope.cancel(campaign_id)
    scope.delete(campaign_id)


@router.delete("/v2/campaign/delete", tags=["seed 001"])
def seed001_delete(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    cid = our_id(scope, _lower(payload).get("id", ""))
    answer = _campaign_response(scope, cid)
    _remove(scope, cid)
    return {**answer, "Status": "deleted"}


@router.get("/v2/campaign/getAll", tags=["seed 001"])
def seed001_get_all(
    scope: Account, result_size: Annotated[int, Query(alias="resultSize", ge=1, le=1000)] = 100
) -> dict[str, Any]:
    page = scope.campaigns(None, result_size, None)
    return {"campaigns": [_campaign_response(scope, c["id"], with_clients=False) for c in page["result"]]}


@router.get("/v2/campaign/getCampMsgs", tags=["seed 001"])
def seed001_messages(
    scope: Account,
    campaign_id: Annotated[str, Query(alias="campaignID")],
    result_size: Annotated[int, Query(alias="resultSize", ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """The campaign's messages: one per call attempt, `MessageKey` = the attempt key."""
    cid = our_id(scope, campaign_id)
    params = {c.index: c.data.get("params") or [] for c in scope.contacts(cid)}
    rows = scope.calls(cid)[:result_size]
    return {
        "messages": [
            {
                "MessageKey": r["key"],
                "CampaignID": seed_int(cid),
                "AccountID": r["phone"],
                "Params": params.get(r["contact"], []),
                "Attempt": r["attempt"],
                "Status": r["state"],
                "Error": r["reason"] or "",
                "SentAt": r["placed_at"] or "",
                "EndedAt": r["ended_at"] or "",
                "Cost": r["cost"],
            }
            for r in rows
        ]
    }


@router.post("/v2/campaign/resendMsg", tags=["seed 001"])
def seed001_resend(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Resend a message: one more call attempt for that client (a redial)."""
    key = str(_lower(payload).get("messagekey") or "")
    res = scope.redial(key)
    return {
        "success": True,
        "message": res["message"],
        "MessageKey": res["key"],
        "CampaignID": seed_int(res["campaign_id"]),
    }


@router.put("/v2/campaign/update", tags=["seed 001"])
def seed001_update(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Only a scheduled campaign's name and SendAt change (seed 001's message otherwise)."""
    body = _lower(payload)
    cid = our_id(scope, body.get("id", ""))
    if scope.stored(cid)[1].current != C.SCHEDULED:  # the seed's rule: scheduled ones only (ours: drafts too)
        raise InvalidRequest(NOT_UPDATABLE)
    when = None
    if body.get("sendat"):
        try:
            when = parse_instant(body["sendat"])
        except ValueError as exc:
            raise InvalidRequest(f"invalid request: SendAt: {exc}") from None
    scope.update(cid, _text(body.get("name"), "name"), when)
    return _campaign_response(scope, cid)


# --- seed 002: VoIPbin /v1.0/campaigns (?token=) -------------------------------------------------------------------------
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
UNSET_TIME = "9999-01-01 00:00:00.000000"
VOIPBIN_FIELDS = ("detail", "type", "service_level", "outplan_id", "queue_id", "actions")


def voipbin_time(ms: int | None) -> str:
    if not ms:
        return UNSET_TIME
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def voipbin_status(state: CampaignState) -> str:
    """stop | run | stopping, in VoIPbin's words."""
    if state.status in (C.SCHEDULED, C.RUNNING):
        return "run"
    if state.status == C.STOPPING or (state.status == C.PAUSED and state.counters.dialing > 0):
        return "stopping"
    return "stop"


def _voipbin(scope: AccountService, campaign_id: str) -> dict[str, Any]:
    campaign, state = scope.stored(campaign_id)
    meta = campaign.metadata or {}
    actions = meta.get("actions") or [
        {"type": "talk", "option": {"text": campaign.say or "", "language": campaign.language or ""}}
    ]
    return {
        "id": campaign.id,
        "customer_id": campaign.account_id,
        "type": meta.get("type") or "call",
        "name": campaign.name,
        "detail": meta.get("detail") or "",
        "status": voipbin_status(state),
        "service_level": meta.get("service_level") or 0,
        "end_handle": campaign.end_handle,
        "actions": actions,
        "outplan_id": meta.get("outplan_id") or ZERO_UUID,
        "outdial_id": campaign.group_id or ZERO_UUID,
        "queue_id": meta.get("queue_id") or ZERO_UUID,
        "next_campaign_id": campaign.next_campaign_id or ZERO_UUID,
        "tm_create": voipbin_time(state.created_at),
        "tm_update": voipbin_time(state.updated_at if state.updated_at != state.created_at else None),
        "tm_delete": voipbin_time(state.deleted_at),
    }


def _talk(actions: Any) -> dict[str, Any]:
    """The message of VoIPbin's actions: the first `talk` (text, language); other actions are stored."""
    if not isinstance(actions, list):
        raise InvalidRequest("actions: a list of actions with a talk action is required")
    for action in actions:
        if (
            isinstance(action, dict)
            and action.get("type") == "talk"
            and isinstance(action.get("option"), dict)
        ):
            option = action["option"]
            text = _text(option.get("text"), "actions.talk.option.text")
            if text and text.strip():
                return {
                    "say": text,
                    "language": _text(option.get("language"), "actions.talk.option.language"),
                }
            break
    raise InvalidRequest("actions: a talk action (option.text) is required for a voice campaign")


@router.get("/v1.0/campaigns", tags=["seed 002"])
def voipbin_list(
    scope: Account,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    page = scope.campaigns(None, page_size, page_token)
    return {
        "result": [_voipbin(scope, c["id"]) for c in page["result"]],
        "next_page_token": page["next_page_token"],
    }


@router.get("/v1.0/campaigns/{campaign_id}", tags=["seed 002"])
def voipbin_show(scope: Account, campaign_id: str) -> dict[str, Any]:
    scope.require(campaign=campaign_id)
    return _voipbin(scope, campaign_id)


@router.post("/v1.0/campaigns", tags=["seed 002"])
def voipbin_create(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Create a campaign in `stop` (ours: draft) on the contact group `outdial_id`, speaking the first
    `talk` action; `run` it with PUT /v1.0/campaigns/{id}/status."""
    body = _body(payload)
    if body.get("type", "call") not in ("call", "flow"):
        raise InvalidRequest("type: call or flow")
    outdial = body.get("outdial_id")
    if not outdial or outdial == ZERO_UUID:
        raise InvalidRequest("outdial_id: the contact group (outdial) to call is required")
    nxt = body.get("next_campaign_id")
    campaign = {
        "name": body.get("name") or None,
        "group_id": str(outdial),
        "end_handle": body.get("end_handle") or "stop",
        "next_campaign_id": nxt if nxt and nxt != ZERO_UUID else None,
        "metadata": {k: body[k] for k in VOIPBIN_FIELDS if k in body},
        **_talk(body.get("actions")),
    }
    res = _submit(scope, campaign, False, SEED_002_WORDS)
    return _voipbin(scope, res["campaign_id"])


@router.put("/v1.0/campaigns/{campaign_id}", tags=["seed 002"])
def voipbin_update(scope: Account, campaign_id: str, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Name, the message (`actions`' talk) and the stored VoIPbin fields, while the campaign has not run
    (`stop` before its first run). What a campaign is dialled on (`outdial_id`, `end_handle`,
    `next_campaign_id`) is fixed at create: a change of it is refused, never silently dropped."""
    scope.require(campaign=campaign_id)
    body = _body(payload)
    campaign = scope.stored(campaign_id)[0]
    fixed = {
        "outdial_id": campaign.group_id or ZERO_UUID,
        "end_handle": campaign.end_handle,
        "next_campaign_id": campaign.next_campaign_id or ZERO_UUID,
    }
    for field, current in fixed.items():
        if field in body and body[field] not in (current, None, ""):
            raise InvalidRequest(f"{field}: cannot be changed after create; create a new campaign")
    meta = dict(campaign.metadata or {}) | {k: body[k] for k in VOIPBIN_FIELDS if k in body}
    message = _talk(body["actions"]) if "actions" in body else None
    scope.update(campaign_id, _text(body.get("name"), "name"), None, meta, message)
    return _voipbin(scope, campaign_id)


@router.delete("/v1.0/campaigns/{campaign_id}", tags=["seed 002"])
def voipbin_delete(scope: Account, campaign_id: str) -> dict[str, Any]:
    scope.require(campaign=campaign_id)
    _remove(scope, campaign_id)
    return _voipbin(scope, campaign_id)


@router.put("/v1.0/campaigns/{campaign_id}/status", tags=["seed 002"])
def voipbin_status_change(
    scope: Account, campaign_id: str, payload: Annotated[Any, Body()]
) -> dict[str, Any]:
    """`{"status": "run"}` starts (or resumes) it; `{"status": "stop"}` stops dialing (live calls finish:
    `stopping`, then `stop`) and it can `run` again."""
    scope.require(campaign=campaign_id)
    wanted = _body(payload).get("status")
    current = scope.stored(campaign_id)[1].status
    if wanted == "run":
        if current not in (C.SCHEDULED, C.RUNNING):
            scope.start(campaign_id)
    elif wanted == "stop":
        if current in (C.SCHEDULED, C.RUNNING):
            scope.pause(campaign_id)
    else:
        raise InvalidRequest("status: run or stop")
    return _voipbin(scope, campaign_id)


# --- seed 003: POST /campaign (Bearer) ---------------------------------------------------------------------------------
@router.post("/campaign", status_code=202, tags=["seed 003"])
def seed003_create(scope: Account, payload: Annotated[Any, Body()]) -> Any:
    """Create and launch (or schedule at `launch_at`) a campaign with the stored message `playbook_id`
    (403 when it does not exist or belongs to another account)."""
    body = _body(payload)
    playbook = body.get("playbook_id")
    if not playbook or not isinstance(playbook, str):
        raise InvalidRequest("playbook_id is required")
    try:
        scope.template(playbook)
    except DialerError:
        raise Forbidden("Playbook not found or not owned by your account") from None
    if not isinstance(body.get("contacts"), list) or not body["contacts"]:
        raise InvalidRequest("contacts must be a non-empty array")
    try:
        return scope.submit({**body, "template_id": playbook}, start=True, strict_numbers=True)
    except InvalidRequest as exc:
        if any(NO_PHONE in d.get("message", "") for d in exc.details) or exc.message.endswith(NO_PHONE):
            raise InvalidRequest(NO_PHONE) from None
        raise


# --- seed 004: POST /api/v1/campaigns/{id}/start (Bearer) ----------------------------------------------------------------
@router.post("/api/v1/campaigns/{campaign_id}/start", tags=["seed 004"])
def seed004_start(scope: Account, campaign_id: str) -> Any:
    """Start a campaign (seed 004's bodies); refusals are 400 with the seed's messages, unknown ids 404."""
    cid = our_id(scope, campaign_id)
    scope.require(campaign=cid)
    try:
        body = scope.start(cid)
    except DialerError as exc:
        if exc.http_status == 404:
            raise
        if scope.stored(cid)[1].current == C.COMPLETED:  # the seed's words for it: re-execute to call again
            return JSONResponse({"error": ALL_PROCESSED}, status_code=400)
        return JSONResponse({exc.key: exc.message}, status_code=400)
    if campaign_id.isdigit() and cid != campaign_id:
        body["campaign_id"] = int(campaign_id)
    return body
