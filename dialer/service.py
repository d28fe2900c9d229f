"""The one door to the engine. Built once per process from the settings (store, clock, one provider
factory, the engine, a message sender on the same Redis); every caller — the CLI, the HTTP API, the
``Dialer`` client, the ``submit_campaign`` actor — goes through it.

``service.for_account(a)`` scopes every command to one account: a campaign, call, group or provider of
another account is ``NotFound``, exactly like one that does not exist (tenancy lives here, not in the
doors).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import phonenumbers

from config import Settings, get_settings
from dialer import groups, intake, keys, lifecycle, ops, views
from dialer.broker import LAUNCH_CAMPAIGN, PLACE_CALL, SUBMIT_CAMPAIGN, MessageSender, make_broker
from dialer.clock import Clock, SystemClock, to_iso
from dialer.connection import connect, resolve_url
from dialer.context import Core
from dialer.engine import Engine
from dialer.errors import InvalidRequest, NotFound
from dialer.models import MessageFields, Template, TemplateRequest, check_id
from dialer.money import MAX_AMOUNT, UNITS_PER_CURRENCY, parse_money
from dialer.pace import MAX_SLOT_WAIT_MS
from dialer.phones import InvalidNumber, normalize
from dialer.providers import ProviderFactory, ProviderSpec, build_config
from dialer.secrets import SecretBox
from dialer.states import CampaignStatus
from dialer.store import Store
from dialer.telephony.simulator import sim_dials
from dialer.validation import validate

DEFAULT_PROVIDER: dict[str, Any] = {
    "from_numbers": []
}  # ProviderConfig's own defaults fill the rest (DESIGN §8)
FIRST_DIALS = 100  # a launch hands this many of its first attempts (those due now) straight to the queue
SUMMARY_LIMIT = 500  # `campaign show` explains campaigns up to this many contacts (watch polls it)


class Service:
    def __init__(self, core: Core, redis_url: str) -> None:
        self.core = core
        self.redis_url = redis_url
        self.engine = Engine(core)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, redis_url: str | None = None, clock: Clock | None = None
    ) -> Service:
        """Connect (``redis_url``, else DIALER_REDIS_URL, else the embedded Redis of `dialer dev`)."""
        settings = settings or get_settings()
        url = redis_url or resolve_url(settings)
        client = connect(url, settings)
        clock = clock or SystemClock()
        store = Store(client, SecretBox(settings.secret_key))
        # one box: the provider factory opens credentials with what the store sealed them with
        core = Core(store, clock, ProviderFactory(client, clock, settings, store.secrets), settings)
        return cls(core, url)

    @cached_property
    def sender(self) -> MessageSender:
        """Sends actor messages through this service's own Redis (not a process-wide broker)."""
        return MessageSender(make_broker(self.redis_url, global_=False), self.core.settings.queue)

    # --- launching without waiting for the scheduler -----------------------------------------------------------
    def launch_due(self, account_id: str, campaign_id: str) -> bool:
        """A campaign whose schedule is due now is launched at once rather than at the scheduler's next
        tick: claimed through the same claim script (so no scheduler promotes it too), then handed to a
        worker. False when it is not due (or another process took it)."""
        now = self.core.now()
        lease_until = now + round(self.core.settings.lease_s * 1000)
        if not self.core.store.claim_schedules([keys.ref(account_id, campaign_id)], now, lease_until):
            return False
        self.sender.send(LAUNCH_CAMPAIGN, account_id, campaign_id)
        return True

    def launch(self, account_id: str, campaign_id: str) -> str:
        """The launch: expansion (``Engine.launch``), then the first dials due now go straight to the queue,
        claimed as the scheduler would claim them, instead of waiting for its next tick."""
        status = self.engine.launch(account_id, campaign_id)
        if status == CampaignStatus.RUNNING:
            now = self.core.now()
            lease_until = now + round(self.core.settings.lease_s * 1000)
            first = self.core.store.first_attempts(account_id, campaign_id, FIRST_DIALS)
            for ref in self.core.store.claim_refs(first, now + MAX_SLOT_WAIT_MS, lease_until):
                self.sender.send(PLACE_CALL, ref)
        return status

    # --- scopes -------------------------------------------------------------------------------------------
    def for_account(self, account_id: str) -> AccountService:
        self.core.store.require_account(account_id)
        return AccountService(self, account_id)

    def for_campaign(self, campaign_id: str) -> AccountService:
        """The account that owns a campaign (the CLI names campaigns, not accounts)."""
        return AccountService(self, self.core.store.campaign_account(campaign_id))

    def for_group(self, group_id: str, account_id: str | None = None) -> AccountService:
        """The account of a group named by id (groups and templates are ids of an account: when several
        accounts hold the id, ``account_id`` says whose)."""
        if account_id:
            return self.for_account(account_id)
        return AccountService(self, self.core.store.group_account(group_id))

    def for_template(self, template_id: str, account_id: str | None = None) -> AccountService:
        if account_id:
            return self.for_account(account_id)
        return AccountService(self, self.core.store.template_account(template_id))

    def for_attempt(self, key: str) -> AccountService:
        campaign_id, _ = lifecycle.attempt_campaign(key)
        try:
            return self.for_campaign(campaign_id)
        except NotFound:
            raise NotFound(f"attempt not found: {key}") from None

    def authenticate(self, api_key: str) -> AccountService | None:
        """The account of an API key (None when no account has it)."""
        account_id = self.core.store.account_by_api_key(api_key) if api_key else None
        return AccountService(self, account_id) if account_id else None

    # --- operator commands (CLI; admin routes) -------------------------------------------------------------
    def create_account(
        self, account_id: str, balance: str = "0", name: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        """Create an account; its API key is shown here once (only its hash is stored)."""
        check_id(account_id, "id")
        units = parse_money(balance, "balance")
        if units < 0:
            raise InvalidRequest("balance: must not be negative")
        region_code = check_region(region)
        api_key = self.core.store.create_account(
            account_id, name or account_id, units, region_code, self.core.now()
        )
        return {"id": account_id, "api_key": api_key}

    def topup(self, account_id: str, amount: str) -> dict[str, Any]:
        units = parse_money(amount, "amount")
        if units <= 0:
            raise InvalidRequest("amount: must be greater than 0")
        balance = self.core.store.get_account(account_id).balance
        if balance + units > MAX_AMOUNT:
            limit = MAX_AMOUNT // UNITS_PER_CURRENCY
            raise InvalidRequest(f"amount: the balance would exceed what the ledger holds ({limit})")
        self.core.store.topup(account_id, units)
        return views.account_view(self.core, account_id)

    def rotate_key(self, account_id: str) -> dict[str, Any]:
        """A new API key for the account (shown once); the old one stops working at once."""
        self.core.store.require_account(account_id)
        return {"id": account_id, "api_key": self.core.store.rotate_api_key(account_id)}

    def list_campaigns(
        self, status: str | None = None, limit: int = 50, page_token: str | None = None
    ) -> dict[str, Any]:
        """Every account's campaigns (operators)."""
        return views.list_view(self.core, None, check_status(status), limit, page_token)

    def status(self) -> dict[str, Any]:
        return ops.status(self.core)

    def doctor(self, test_providers: bool = True) -> dict[str, Any]:
        return ops.doctor(self.core, test_providers)

    def simulator_dials(self, campaign_id: str | None = None) -> list[dict[str, Any]]:
        return sim_dials(self.core.store.r, campaign_id)

    def enqueue_campaign(self, account_id: str, campaign: dict[str, Any], start: bool = True) -> str:
        """Send the ``submit_campaign`` message (fire and forget); returns the message id."""
        return self.sender.send(SUBMIT_CAMPAIGN, account_id, campaign, start)


def check_region(region: str | None) -> str | None:
    """A region for numbers written without ``+`` (ISO 3166 code phonenumbers knows, e.g. ES)."""
    if region is None:
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidRequest(f"region: not a region code phonenumbers knows: {region!r} (e.g. ES, GB, US)")
    return code


def check_status(status: str | None) -> str | None:
    if status is not None and status not in {s.value for s in CampaignStatus}:
        raise InvalidRequest(f"status: not a campaign state: {status!r}")
    return status


class AccountService:
    """Every command of one account; ids of other accounts' things are not found."""

    def __init__(self, service: Service, account_id: str) -> None:
        self.service = service
        self.core = service.core
        self.account_id = account_id

    # --- ownership ---------------------------------------------------------------------------------------
    def _campaign(self, campaign_id: str) -> str:
        try:
            owner = self.core.store.campaign_account(campaign_id)
        except NotFound:
            owner = None
        if owner != self.account_id:
            raise NotFound(f"campaign not found: {campaign_id}")
        return campaign_id

    def _group(self, group_id: str) -> str:
        if not self.core.store.owns_group(self.account_id, group_id):
            raise NotFound(f"group not found: {group_id}")
        return group_id

    def require(
        self, *, campaign: str | None = None, group: str | None = None, provider: str | None = None
    ) -> None:
        """NotFound unless these belong to the account (the doors check it before reading a body, so another
        account's id answers exactly like an unknown one, whatever the body)."""
        if campaign is not None:
            self._campaign(campaign)
        if group is not None:
            self._group(group)
        if provider is not None:
            self.core.store.get_provider(self.account_id, provider)

    # --- account ---------------------------------------------------------------------------------------------
    def account(self) -> dict[str, Any]:
        return views.account_view(self.core, self.account_id)

    # --- campaigns -----------------------------------------------------------------------------------------
    def submit(self, campaign: Any, start: bool = False, strict_numbers: bool = False) -> dict[str, Any]:
        """Validate and store a campaign (draft); with ``start`` run the start checks and start it."""
        res = intake.submit(self.core, self.account_id, campaign, start, strict_numbers)
        if start:
            self.service.launch_due(self.account_id, str(res["campaign_id"]))
        return res

    def start(self, campaign_id: str) -> dict[str, Any]:
        res = lifecycle.start(self.core, self.account_id, self._campaign(campaign_id))
        self.service.launch_due(self.account_id, campaign_id)
        return res

    def pause(self, campaign_id: str) -> dict[str, Any]:
        return lifecycle.pause(self.core, self.account_id, self._campaign(campaign_id))

    def resume(self, campaign_id: str) -> dict[str, Any]:
        return lifecycle.resume(self.core, self.account_id, self._campaign(campaign_id))

    def stop(self, campaign_id: str) -> dict[str, Any]:
        return lifecycle.stop(self.core, self.account_id, self._campaign(campaign_id))

    def cancel(self, campaign_id: str) -> dict[str, Any]:
        return lifecycle.cancel(self.core, self.account_id, self._campaign(campaign_id))

    def delete(self, campaign_id: str) -> dict[str, Any]:
        return lifecycle.delete(self.core, self.account_id, self._campaign(campaign_id))

    def re_execute(self, campaign_id: str) -> dict[str, Any]:
        return lifecycle.re_execute(self.core, self.account_id, self._campaign(campaign_id))

    def update(
        self,
        campaign_id: str,
        name: str | None = None,
        launch_at: int | None = None,
        metadata: dict[str, Any] | None = None,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``message``: a new say/audio/xml (+ language, voice), checked against the campaign's contacts
        like at intake."""
        if name is None and launch_at is None and metadata is None and not message:
            raise InvalidRequest("nothing to update: give a name and/or a launch time")
        cid = self._campaign(campaign_id)
        if message:  # checked here, before lifecycle.update: the state answers first all the same
            lifecycle.require_updatable(self.core, self.account_id, cid)
            message = validate(MessageFields, message).model_dump(include=set(message))
            campaign = self.core.store.get_campaign(self.account_id, cid)[0]
            intake.check_message(
                campaign.model_copy(update=message), self.core.store.contacts(self.account_id, cid)
            )
        return lifecycle.update(self.core, self.account_id, cid, name, launch_at, metadata, message)

    def stored(self, campaign_id: str) -> tuple[Any, Any]:
        """The campaign's configuration and live state (for the seed adapters' own shapes)."""
        return self.core.store.get_campaign(self.account_id, self._campaign(campaign_id))

    def contacts(self, campaign_id: str) -> list[Any]:
        return self.core.store.contacts(self.account_id, self._campaign(campaign_id))

    def owns_campaign(self, campaign_id: str) -> bool:
        try:
            self._campaign(campaign_id)
        except NotFound:
            return False
        return True

    def redial(self, key: str) -> dict[str, Any]:
        campaign_id, _ = lifecycle.attempt_campaign(key)
        try:
            self._campaign(campaign_id)
        except NotFound:
            raise NotFound(f"attempt not found: {key}") from None
        return lifecycle.redial(self.core, self.account_id, key)

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        """The campaign view, with the explain sentence on top (`summary`; for large campaigns only a
        pointer: explaining reads every attempt)."""
        view = views.campaign_view(self.core, self.account_id, self._campaign(campaign_id))
        if view["counters"]["total"] <= SUMMARY_LIMIT:
            view["summary"] = ops.explain(self.core, self.account_id, campaign_id)["sentence"]
        else:
            view["summary"] = "run `dialer campaign explain` for what its contacts wait for"
        return view

    def explain(self, campaign_id: str) -> dict[str, Any]:
        """Why is it not dialling: contacts by what they wait for, with when it can pass."""
        return ops.explain(self.core, self.account_id, self._campaign(campaign_id))

    def events(self, campaign_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The campaign's audit trail, oldest first."""
        rows = self.core.store.events(self.account_id, self._campaign(campaign_id), limit)
        return [{**r, "at": to_iso(int(r["at"])) if r.get("at") else None} for r in rows]

    def calls(self, campaign_id: str) -> list[dict[str, Any]]:
        return views.calls_view(self.core, self.account_id, self._campaign(campaign_id))

    def calls_page(self, campaign_id: str, limit: int = 100, page_token: str | None = None) -> dict[str, Any]:
        """The calls a page at a time: ``{"result", "next_page_token"}``."""
        return views.calls_page(self.core, self.account_id, self._campaign(campaign_id), limit, page_token)

    def campaigns(
        self, status: str | None = None, limit: int = 50, page_token: str | None = None
    ) -> dict[str, Any]:
        return views.list_view(self.core, self.account_id, check_status(status), limit, page_token)

    # --- providers -----------------------------------------------------------------------------------------
    def add_provider(self, name: str, spec: ProviderSpec) -> dict[str, Any]:
        """Add (or replace) a provider; unset options take the defaults of DESIGN §8."""
        check_id(name, "name")
        base = {"account_id": self.account_id, "name": name, **DEFAULT_PROVIDER}
        self.core.store.put_provider(build_config(base, spec))
        return self.provider(name)

    def update_provider(self, name: str, spec: ProviderSpec) -> dict[str, Any]:
        current = self.core.store.get_provider(self.account_id, name)
        if spec.kind and spec.kind != current.kind:
            raise InvalidRequest(f"kind: a provider's kind cannot change ({current.kind}); add a new one")
        self.core.store.put_provider(build_config(current.model_dump(), spec))
        return self.provider(name)

    def provider(self, name: str) -> dict[str, Any]:
        return views.provider_view(self.core, self.account_id, name)

    def providers(self) -> list[dict[str, Any]]:
        return [self.provider(n) for n in self.core.store.provider_names(self.account_id)]

    def test_provider(self, name: str) -> dict[str, Any]:
        """The connection test of the start checks."""
        lifecycle.test_connection(self.core, self.core.store.get_provider(self.account_id, name))
        return {"success": "Connection OK"}

    # --- groups ---------------------------------------------------------------------------------------------
    def create_group(self, name: str, group_id: str | None = None) -> dict[str, Any]:
        gid = groups.create(self.core, self.account_id, name, group_id)
        return views.group_view(self.core, self.account_id, gid)

    def group(self, group_id: str, with_contacts: bool = False) -> dict[str, Any]:
        return views.group_view(self.core, self.account_id, self._group(group_id), with_contacts)

    def groups(self) -> list[dict[str, Any]]:
        return [
            views.group_view(self.core, self.account_id, g)
            for g in self.core.store.group_ids(self.account_id)
        ]

    def import_contacts(self, group_id: str, rows: list[tuple[str, Any]]) -> dict[str, Any]:
        """All or nothing: bad rows are named (by line or index) and nothing is imported."""
        return groups.import_rows(self.core, self.account_id, self._group(group_id), rows)

    # --- templates ------------------------------------------------------------------------------------------
    def create_template(self, spec: Any) -> dict[str, Any]:
        """A stored message (seed 001's TempMsgID, seed 003's playbook_id) campaigns may name."""
        req = validate(TemplateRequest, spec)
        intake.check_message(req, [])
        tid = check_id(req.id, "id") if req.id else self.core.store.new_id()
        tpl = Template(
            account_id=self.account_id, created_at=self.core.now(), **{**req.model_dump(), "id": tid}
        )
        self.core.store.create_template(tpl)
        return self.template(tid)

    def _template(self, template_id: str) -> str:
        if not self.core.store.owns_template(self.account_id, template_id):
            raise NotFound(f"template not found: {template_id}")
        return template_id

    def template(self, template_id: str) -> dict[str, Any]:
        return views.template_view(self.core.store.get_template(self.account_id, self._template(template_id)))

    def templates(self) -> list[dict[str, Any]]:
        return [self.template(t) for t in self.core.store.template_ids(self.account_id)]

    def delete_template(self, template_id: str) -> dict[str, Any]:
        """Campaigns keep the message they copied; the template is gone for new ones."""
        self.core.store.delete_template(self.account_id, self._template(template_id))
        return {"success": True, "id": template_id, "message": "Template deleted"}

    # --- do-not-call -----------------------------------------------------------------------------------------
    def _dnc_numbers(self, numbers: list[str]) -> list[str]:
        if not numbers:
            raise InvalidRequest("numbers: give at least one number")
        region = self.core.store.get_account(self.account_id).default_region
        out = []
        for n in numbers:
            try:
                out.append(normalize(n, region))
            except InvalidNumber as exc:
                raise InvalidRequest(f"number {n!r}: {exc}") from None
        return out

    def dnc_add(self, numbers: list[str]) -> dict[str, Any]:
        normalised = self._dnc_numbers(numbers)
        self.core.store.dnc_change(self.account_id, normalised, add=True)
        return {"account": self.account_id, "added": normalised}

    def dnc_remove(self, numbers: list[str]) -> dict[str, Any]:
        """Removes the listed ones; ``not_listed`` names those that were not on the list."""
        normalised = self._dnc_numbers(numbers)
        removed = self.core.store.dnc_change(self.account_id, normalised, add=False)
        return {
            "account": self.account_id,
            "removed": removed,
            "not_listed": [n for n in normalised if n not in removed],
        }

    def dnc_list(self) -> list[str]:
        return self.core.store.dnc_list(self.account_id)
