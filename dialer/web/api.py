"""The native HTTP API (DESIGN §8, §11): every capability of the CLI for other services, account-scoped.

Each route is a thin adapter onto the service: the body goes to the same intake and lifecycle as the CLI,
the answer is the same view. No rule lives here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from dialer import groups
from dialer.clock import parse_instant
from dialer.errors import InvalidRequest
from dialer.models import CampaignRequest, TemplateRequest
from dialer.providers import ProviderSpec, parse_spec
from dialer.service import AccountService, Service
from dialer.validation import validate
from dialer.web import examples
from dialer.web.auth import account, admin

Account = Annotated[AccountService, Depends(account)]
Admin = Annotated[Service, Depends(admin)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
PageToken = Annotated[str | None, Query(description="next_page_token of the page before.")]

router = APIRouter()
admin_router = APIRouter(prefix="/admin", tags=["admin"])


#: the models the request bodies name, for the OpenAPI document's components (dialer.web.app)
SCHEMAS: dict[str, Any] = {}
REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], example: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request body documented by the pydantic model the service validates it with (its nested models
    go to the document's components, where its references point)."""
    schema = model.model_json_schema(ref_template=REF)
    SCHEMAS.update(schema.pop("$defs", {}))
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


class Update(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    launch_at: str | None = Field(default=None, description="ISO-8601 (UTC when it has no offset)")


class NewProvider(ProviderSpec):
    name: str = Field(description="The provider's name within the account, e.g. twilio_primary.")


class NewGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    id: str | None = Field(default=None, description="Choose the group id (default: generated).")


class Numbers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numbers: list[str] = Field(min_length=1, max_length=10_000)


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    balance: str = "0"
    name: str | None = None
    region: str | None = None


class Amount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str


def _body(payload: Any, model: type[BaseModel]) -> Any:
    return validate(model, payload)


# --- campaigns ------------------------------------------------------------------------------------------------
@router.post(
    "/campaigns",
    status_code=202,
    tags=["campaigns"],
    openapi_extra=_schema(CampaignRequest, examples.SEED_003_CAMPAIGN),
    responses={202: {"content": {"application/json": {"example": examples.SEED_003_ACCEPTED}}}},
)
def create_campaign(
    scope: Account,
    payload: Annotated[Any, Body()],
    start: Annotated[bool, Query(description="Run the start checks and schedule it (seed 003).")] = True,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> dict[str, Any]:
    """Create a campaign (the campaign JSON of DESIGN §8) and, unless `start=false`, start it. Answers seed
    003's 202 body plus `status`. A refused start stores nothing."""
    if idempotency_key is not None and isinstance(payload, dict):
        payload = {**payload, "idempotency_key": payload.get("idempotency_key") or idempotency_key}
    return scope.submit(payload, start=start)


@router.get("/campaigns", tags=["campaigns"])
def list_campaigns(
    scope: Account,
    status: Annotated[str | None, Query(description="Only campaigns in this state.")] = None,
    limit: Limit = 50,
    page_token: PageToken = None,
) -> dict[str, Any]:
    """The account's campaigns, newest first, deleted ones hidden: `{"result", "next_page_token"}`."""
    return scope.campaigns(status, limit, page_token)


@router.get("/campaigns/{campaign_id}", tags=["campaigns"])
def show_campaign(scope: Account, campaign_id: str) -> dict[str, Any]:
    return scope.campaign(campaign_id)


@router.get("/campaigns/{campaign_id}/calls", tags=["campaigns"])
def campaign_calls(
    scope: Account, campaign_id: str, limit: Limit = 100, page_token: PageToken = None
) -> dict[str, Any]:
    """One row per attempt, ordered by contact then attempt, paged."""
    return scope.calls_page(campaign_id, limit, page_token)


@router.get("/campaigns/{campaign_id}/explain", tags=["campaigns"])
def explain_campaign(scope: Account, campaign_id: str) -> dict[str, Any]:
    """Why is it not dialling: its contacts by what they wait for, each with the earliest time it can pass,
    and one sentence on top."""
    return scope.explain(campaign_id)


@router.get("/campaigns/{campaign_id}/events", tags=["campaigns"])
def campaign_events(scope: Account, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's audit trail: created, started, paused (by whom or why), resumed, completed, chained."""
    return scope.events(campaign_id)


@router.put("/campaigns/{campaign_id}", tags=["campaigns"], openapi_extra=_schema(Update))
def update_campaign(scope: Account, campaign_id: str, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Name and launch time, only while draft or scheduled (seed 001's message otherwise)."""
    scope.require(campaign=campaign_id)
    body: Update = _body(payload, Update)
    when = None
    if body.launch_at is not None:
        try:
            when = parse_instant(body.launch_at)
        except ValueError as exc:
            raise InvalidRequest(f"launch_at: {exc}") from None
    return scope.update(campaign_id, body.name, when)


@router.delete("/campaigns/{campaign_id}", tags=["campaigns"])
def delete_campaign(scope: Account, campaign_id: str) -> dict[str, Any]:
    return scope.delete(campaign_id)


def _command(name: str, doc: str) -> None:
    def run(scope: Account, campaign_id: str) -> dict[str, Any]:
        return dict(getattr(scope, name.replace("-", "_"))(campaign_id))

    run.__doc__ = doc
    run.__name__ = f"campaign_{name.replace('-', '_')}"
    answers: dict[int | str, dict[str, Any]] = {}
    if name == "start":
        answers[200] = {"content": {"application/json": {"example": examples.SEED_004_STARTED}}}
    router.post(f"/campaigns/{{campaign_id}}/{name}", tags=["campaigns"], responses=answers)(run)


for _name, _doc in (
    ("start", "The start checks (seed 000 order), then the schedule; answers seed 004's body."),
    ("pause", "No new dial starts; live calls finish."),
    ("resume", "A paused campaign runs again where it stopped (re-runs the balance check)."),
    ("stop", "No new dials; `stopping` until live calls end, then `stopped`."),
    ("cancel", "Cancelled at once; every attempt not yet dialled ends canceled."),
    ("re-execute", "Call again the contacts whose last outcome was no-answer, busy, failed or a machine."),
):
    _command(_name, _doc)


@router.post("/calls/{key}/redial", tags=["campaigns"])
def redial(scope: Account, key: str) -> dict[str, Any]:
    """One more attempt for the contact of attempt KEY (CAMPAIGN:CONTACT:N), outside the recall policy."""
    return scope.redial(key)


# --- providers --------------------------------------------------------------------------------------------------
@router.post(
    "/providers", status_code=201, tags=["providers"], openapi_extra=_schema(NewProvider, examples.PROVIDER)
)
def add_provider(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Add (or replace) a provider. Secrets (`auth_token`) are write-only: never answered back."""
    if not isinstance(payload, dict):
        raise InvalidRequest("the request body must be a JSON object")
    name = payload.get("name")
    if not isinstance(name, str):
        raise InvalidRequest("name: the provider's name is required")
    return scope.add_provider(name, parse_spec({k: v for k, v in payload.items() if k != "name"}))


@router.get("/providers", tags=["providers"])
def list_providers(scope: Account) -> list[dict[str, Any]]:
    return scope.providers()


@router.get("/providers/{name}", tags=["providers"])
def show_provider(scope: Account, name: str) -> dict[str, Any]:
    """Limits, quota used this hour, live calls (never a secret)."""
    return scope.provider(name)


@router.patch("/providers/{name}", tags=["providers"], openapi_extra=_schema(ProviderSpec))
def update_provider(scope: Account, name: str, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Change limits, caller ids, credentials or simulator options; `"enabled": false` disables it."""
    scope.require(provider=name)
    return scope.update_provider(name, parse_spec(payload))


@router.post("/providers/{name}/test", tags=["providers"])
def test_provider(scope: Account, name: str) -> dict[str, Any]:
    """The connection test of the start checks."""
    return scope.test_provider(name)


# --- groups -------------------------------------------------------------------------------------------------------
@router.post("/groups", status_code=201, tags=["groups"], openapi_extra=_schema(NewGroup))
def create_group(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    body: NewGroup = _body(payload, NewGroup)
    return scope.create_group(body.name, body.id)


@router.get("/groups", tags=["groups"])
def list_groups(scope: Account) -> list[dict[str, Any]]:
    return scope.groups()


@router.get("/groups/{group_id}", tags=["groups"])
def show_group(
    scope: Account,
    group_id: str,
    contacts: Annotated[bool, Query(description="Include the contacts.")] = False,
) -> dict[str, Any]:
    return scope.group(group_id, with_contacts=contacts)


@router.post(
    "/groups/{group_id}/contacts",
    tags=["groups"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def import_contacts(request: Request, group_id: str, scope: Account) -> Any:
    """Add contacts: a JSON array (or `{"contacts": [...]}`), a CSV body (`Content-Type: text/csv`, a header
    row naming `phone`), or a CSV/JSON file in a multipart form field `file`. All or nothing: bad rows are
    named by line (CSV) or index (JSON) and nothing is imported."""
    await run_sync(lambda: scope.require(group=group_id))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("file: send the contacts as a form field named 'file'")
        raw = await upload.read()
        name = upload.filename or "the upload"
        rows = groups.parse_upload(raw, "json" if name.lower().endswith(".json") else "csv", name)
    else:
        raw = await request.body()
        rows = groups.parse_upload(raw, "csv" if kind in ("text/csv", "text/plain") else "json", "the body")
    return await run_sync(lambda: scope.import_contacts(group_id, rows))


async def run_sync(fn: Any) -> Any:
    return await run_in_threadpool(fn)


# --- templates -------------------------------------------------------------------------------------------------------
@router.post("/templates", status_code=201, tags=["templates"], openapi_extra=_schema(TemplateRequest))
def create_template(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """A stored message campaigns may name with `template_id` (seed 001's TempMsgID, seed 003's playbook_id)."""
    return scope.create_template(payload)


@router.get("/templates", tags=["templates"])
def list_templates(scope: Account) -> list[dict[str, Any]]:
    return scope.templates()


@router.get("/templates/{template_id}", tags=["templates"])
def show_template(scope: Account, template_id: str) -> dict[str, Any]:
    return scope.template(template_id)


@router.delete("/templates/{template_id}", tags=["templates"])
def delete_template(scope: Account, template_id: str) -> dict[str, Any]:
    return scope.delete_template(template_id)


# --- do-not-call ----------------------------------------------------------------------------------------------------
@router.get("/dnc", tags=["do-not-call"])
def dnc_list(scope: Account) -> list[str]:
    return scope.dnc_list()


@router.post("/dnc", tags=["do-not-call"], openapi_extra=_schema(Numbers, {"numbers": ["+34600123451"]}))
def dnc_add(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Never call these numbers from this account (normalised to E.164 with the account's region)."""
    return scope.dnc_add(_body(payload, Numbers).numbers)


@router.post("/dnc/remove", tags=["do-not-call"], openapi_extra=_schema(Numbers))
def dnc_remove(scope: Account, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Take numbers off the list; `not_listed` names those that were not on it."""
    return scope.dnc_remove(_body(payload, Numbers).numbers)


@router.delete("/dnc/{number}", tags=["do-not-call"])
def dnc_delete(scope: Account, number: str) -> dict[str, Any]:
    return scope.dnc_remove([number])


# --- account ----------------------------------------------------------------------------------------------------------
@router.get("/account", tags=["account"])
def show_account(scope: Account) -> dict[str, Any]:
    """Balance, reserved (held for live calls) and available."""
    return scope.account()


# --- admin (only when DIALER_ADMIN_TOKEN is set) ----------------------------------------------------------------------
@admin_router.post("/accounts", status_code=201, openapi_extra=_schema(NewAccount))
def admin_create_account(svc: Admin, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Create an account; its API key is in this answer only (stored hashed)."""
    body: NewAccount = _body(payload, NewAccount)
    return svc.create_account(body.id, body.balance, body.name, body.region)


@admin_router.post("/accounts/{account_id}/topup", openapi_extra=_schema(Amount, {"amount": "10.00"}))
def admin_topup(svc: Admin, account_id: str, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    return svc.topup(account_id, _body(payload, Amount).amount)


@admin_router.post("/accounts/{account_id}/key")
def admin_rotate_key(svc: Admin, account_id: str) -> dict[str, Any]:
    """A new API key (in this answer only); the old one stops working at once."""
    return svc.rotate_key(account_id)


@admin_router.get("/campaigns")
def admin_campaigns(
    svc: Admin, status: str | None = None, limit: Limit = 50, page_token: PageToken = None
) -> dict[str, Any]:
    """Every account's campaigns."""
    return svc.list_campaigns(status, limit, page_token)
