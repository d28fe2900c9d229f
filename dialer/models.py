"""The dialer's nouns (DESIGN §4) and the campaign JSON it accepts (DESIGN §8)."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Annotated, Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dialer.clock import parse_instant
from dialer.errors import InvalidRequest
from dialer.keys import attempt_key
from dialer.recall import parse_recall
from dialer.states import DELETED, AttemptState, CampaignStatus, ScheduleStatus
from dialer.templates import check_template

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z"  # \Z: no newline slips past the end
NO_PHONE = "Each contact must have a non-empty phone field"


MAX_NAME = 200


def check_name(value: Any, field: str = "name") -> str:
    """A name people read (campaign, group, template): text of 1..200 characters once blanks and invisible
    characters (zero-width spaces, BOMs) at its ends are taken off, with no control characters."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{field}: must be text")
    shown = [i for i, c in enumerate(value) if not (c.isspace() or unicodedata.category(c) == "Cf")]
    name = value[shown[0] : shown[-1] + 1] if shown else ""
    if not name:
        raise InvalidRequest(f"{field}: must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidRequest(f"{field}: at most {MAX_NAME} characters ({len(name)} given)")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidRequest(f"{field}: must not hold control characters (line breaks, tabs)")
    return name


def _name_field(value: Any) -> str | None:
    """check_name inside a model (a ValueError there names the field)."""
    if value is None:
        return None
    try:
        return check_name(value, "")
    except InvalidRequest as exc:
        raise ValueError(exc.message.removeprefix(": ")) from None


def check_id(value: str, field: str) -> str:
    if not re.match(ID_PATTERN, value or ""):
        raise InvalidRequest(f"{field}: must be 1-64 letters, digits, '_', '.' or '-' (got {value!r})")
    return value


class Strict(BaseModel):
    """Unknown fields are refused: a typo such as ``recal`` must not drop a retry policy. Numbers are
    finite (``Infinity`` and ``NaN``, which Python's JSON reader takes, are refused)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


Text = Annotated[str, Field(max_length=1000)]
#: a number of seconds where a number is meant: "5" and true are refused, not read as 5 and 1
Seconds = Annotated[float, Field(strict=True, gt=0, le=3600)]


class CallingHours(Strict):
    start: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(default="20:00", pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")
    weekdays: list[StrictInt] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])

    @model_validator(mode="after")
    def _not_empty(self) -> CallingHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("weekdays are ISO numbers 1 (Monday) to 7 (Sunday), at least one")
        return sorted(set(v))


def _finite(value: Any) -> Any:
    """Free-form JSON (custom fields, metadata) holds JSON numbers only: NaN and Infinity, which Python's
    JSON reader takes, are refused rather than stored as null."""
    todo = [value]  # a walk, not a recursion: nesting as deep as the JSON reader takes is fine
    while todo:
        item = todo.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not JSON numbers")
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return value


def _check_zone(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Europe/Madrid)") from None
    return v


class ContactIn(Strict):
    """A contact as submitted (seed 003 fields plus ``params`` of the WhatsApp-style seed 001)."""

    phone: str = Field(default="", validate_default=True, max_length=64)
    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    company: Text | None = None
    job_title: Text | None = None
    address: Text | None = None
    city: Text | None = None
    state: Text | None = None
    country: Text | None = None
    postal_code: Text | None = None
    timezone: Text | None = None
    utm_source: Text | None = None
    utm_medium: Text | None = None
    utm_campaign: Text | None = None
    utm_term: Text | None = None
    utm_content: Text | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    _custom_finite = field_validator("custom_fields")(classmethod(lambda cls, v: _finite(v)))
    params: list[Text] = Field(default_factory=list, max_length=100)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            raise PydanticCustomError("phone_required", NO_PHONE)
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _check_zone(v)))


class CampaignSettings(BaseModel):
    """The fields a campaign is submitted with and keeps (DESIGN §8): the one list of them."""

    name: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=64)
    group_id: str | None = Field(default=None, max_length=64)
    recall: Annotated[
        list[float],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "array", "items": {"type": "number"}},
                    {"type": "string", "description": 'the same array as JSON text, e.g. "[30,120]"'},
                ],
                "description": "minutes after the first call to call again a contact not reached",
            }
        ),
    ] = Field(default_factory=list)
    say: str | None = Field(default=None, max_length=10_000)
    audio: str | None = Field(default=None, max_length=2_000)
    xml: str | None = Field(default=None, max_length=100_000)
    language: str | None = Field(default=None, max_length=32)
    voice: str | None = Field(default=None, max_length=64)
    stagger_seconds: Seconds | None = None
    calling_hours: CallingHours | None = None
    timezone: str | None = Field(default=None, max_length=64)
    recall_on_machine: StrictBool = True
    # answering machines: off, detect (a machine answer is recalled per the policy), voicemail (the message is
    # played after the beep; outcome voicemail, no recall); unset = detect when recall_on_machine, else off
    amd: Literal["off", "detect", "voicemail"] | None = None
    end_handle: Literal["stop", "continue"] = "stop"
    next_campaign_id: str | None = Field(default=None, max_length=64)
    playbook_id: str | None = Field(default=None, max_length=200)
    template_id: str | None = Field(default=None, max_length=64)  # a stored message (seed 001's TempMsgID)
    # free-form data stored and reported back (e.g. the seeds' fields that mean nothing for voice: seed 001's
    # JSON, VoIPbin's detail and service_level)
    metadata: dict[str, Any] | None = None
    _metadata_finite = field_validator("metadata")(classmethod(lambda cls, v: _finite(v)))
    idempotency_key: str | None = Field(default=None, max_length=200)


def _audio_url(v: str | None) -> str | None:
    if v is not None:
        url = urlparse(v)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise PydanticCustomError("audio", "must be an http(s) URL of the audio to play")
    return v


def _say_text(v: str | None) -> str | None:
    if v is not None:
        try:
            check_template(v)
        except ValueError as exc:
            raise PydanticCustomError("say", str(exc)) from None
    return v


def _one_message_kind(say: str | None, audio: str | None, xml: str | None) -> None:
    if xml and (say or audio):
        raise PydanticCustomError("message", "xml: give either xml (the whole TwiML) or say/audio, not both")


class MessageFields(Strict):
    """A message's fields with the rules a campaign's have (lengths, placeholders, audio URL, one kind):
    what a template stores, and what an update of a campaign's message is checked with."""

    say: str | None = Field(default=None, max_length=10_000)
    audio: str | None = Field(default=None, max_length=2_000)
    xml: str | None = Field(default=None, max_length=100_000)
    language: str | None = Field(default=None, max_length=32)
    voice: str | None = Field(default=None, max_length=64)

    _audio = field_validator("audio")(classmethod(lambda cls, v: _audio_url(v)))
    _say = field_validator("say")(classmethod(lambda cls, v: _say_text(v)))

    @model_validator(mode="after")
    def _one_kind(self) -> MessageFields:
        _one_message_kind(self.say, self.audio, self.xml)
        return self


class TemplateRequest(MessageFields):
    """A stored message (seed 001's TempMsgID, seed 003's playbook_id): what campaigns may name."""

    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, max_length=64)
    _name = field_validator("name")(classmethod(lambda cls, v: _name_field(v)))
    provider: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _message(self) -> TemplateRequest:
        if not (self.say or self.audio or self.xml):
            raise PydanticCustomError("message", "say: a template holds a message (say, audio or xml)")
        return self


class Template(BaseModel):
    id: str
    account_id: str
    name: str
    say: str | None = None
    audio: str | None = None
    xml: str | None = None
    language: str | None = None
    voice: str | None = None
    provider: str | None = None
    created_at: int = 0


class CampaignRequest(CampaignSettings, Strict):
    """The campaign JSON (CLI file, client, message, HTTP): seed 003 body plus DESIGN §8 fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    contacts: list[ContactIn] | None = None
    launch_at: Annotated[  # ms; given as an ISO-8601 string (UTC when it has no offset)
        int | None,
        WithJsonSchema(
            {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                "description": "ISO-8601 time (UTC when it has no offset), e.g. 2027-03-01T10:00:00Z",
            }
        ),
    ] = None

    @field_validator("launch_at", mode="before")
    @classmethod
    def _launch_at(cls, v: Any) -> int | None:
        if v is None:
            return None
        try:
            return parse_instant(v)
        except ValueError as exc:
            raise PydanticCustomError("launch_at", str(exc)) from None

    _audio = field_validator("audio")(classmethod(lambda cls, v: _audio_url(v)))
    _say = field_validator("say")(classmethod(lambda cls, v: _say_text(v)))
    _name = field_validator("name")(classmethod(lambda cls, v: _name_field(v)))

    @model_validator(mode="before")
    @classmethod
    def _seed_names(cls, data: Any) -> Any:
        """Seed 001's name for a stored message, ``TempMsgID``, is ``template_id`` (seed 003's
        ``playbook_id`` is a field of its own: a playbook that is no template is stored and reported)."""
        if isinstance(data, dict) and "TempMsgID" in data:
            data = dict(data)
            given = data.pop("TempMsgID")
            if data.get("template_id") not in (None, given):
                raise PydanticCustomError(
                    "template_id", "template_id: give template_id or TempMsgID, not both"
                )
            data["template_id"] = given
        return data

    @field_validator("recall", mode="before")
    @classmethod
    def _recall(cls, v: Any) -> list[float]:
        try:
            return parse_recall(v)
        except ValueError as exc:
            raise PydanticCustomError("recall", str(exc)) from None

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _check_zone(v)))

    @model_validator(mode="after")
    def _whole(self) -> CampaignRequest:
        if self.contacts is not None and len(self.contacts) == 0:
            raise PydanticCustomError("contacts", "contacts: at least one contact is required")
        if self.contacts is None and not self.group_id:
            raise PydanticCustomError("contacts", "contacts: a list of contacts (or a group_id) is required")
        if self.contacts is not None and self.group_id:
            raise PydanticCustomError("contacts", "contacts: give either contacts or a group_id, not both")
        if self.end_handle == "continue" and not self.group_id:
            raise PydanticCustomError(
                "end_handle",
                "end_handle: continue needs a group_id (it dials contacts added to the group later)",
            )
        if not (self.say or self.audio or self.xml or self.template_id or self.playbook_id):
            raise PydanticCustomError(
                "message", "say: a message is required (say, audio, xml or a template_id)"
            )
        _one_message_kind(self.say, self.audio, self.xml)
        return self


class Contact(BaseModel):
    """A stored contact: the submitted fields with ``phone`` in E.164 (or the intake error)."""

    index: int
    phone: str
    data: dict[str, Any] = Field(default_factory=dict)
    intake: Literal["ok", "invalid", "duplicate"] = "ok"
    intake_reason: str | None = None


class Account(BaseModel):
    id: str
    name: str
    api_key_hash: str
    balance: int = 0
    reserved: int = 0
    default_region: str | None = None
    created_at: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.reserved


class ProviderConfig(BaseModel):
    model_config = ConfigDict(frozen=True)  # parsed once per stored document and shared (Store's cache)

    account_id: str
    name: str
    kind: Literal["simulator", "twilio"]
    from_numbers: list[str]
    hourly_quota: int | None = None
    calls_per_second: float = 1.0
    max_concurrent: int = 10
    price_per_minute: int = 200  # units: 0.02
    max_call_seconds: int = 600
    enabled: bool = True
    account_sid: str | None = None
    auth_token: str | None = Field(default=None, repr=False)
    api_base: str | None = None
    sim: dict[str, Any] = Field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """Everything but secrets."""
        return self.model_dump(exclude={"auth_token"})


class Campaign(CampaignSettings):
    """A stored campaign's configuration (its live state is ``CampaignState``)."""

    model_config = ConfigDict(frozen=True)  # parsed once per stored document and shared (Store's cache)

    id: str
    account_id: str
    name: str
    launch_at: int | None = None  # ms
    created_at: int = 0

    @property
    def amd_mode(self) -> Literal["off", "detect", "voicemail"]:
        if self.amd is not None:
            return self.amd
        return "detect" if self.recall_on_machine else "off"


class Counters(BaseModel):
    """DESIGN §10: contacts, except ``sent`` and ``recalls`` (attempts); ``cost`` in money units."""

    total: int = 0
    scheduled_calls: int = 0
    error_calls: int = 0
    scheduled: int = 0
    dialing: int = 0
    sent: int = 0
    delivered: int = 0
    voicemail: int = 0
    failed: int = 0
    skipped: int = 0
    recalls: int = 0
    cost: int = 0


COUNTERS = tuple(Counters.model_fields)


class CampaignState(BaseModel):
    """A campaign's live fields (status, counters, cursors), as the scripts keep them in its hash."""

    status: CampaignStatus
    status_reason: str | None = None
    counters: Counters = Field(default_factory=Counters)
    contacts_n: int = 0
    expand_cursor: int = 0
    expanded: bool = False
    group_cursor: int = 0
    doc_version: int = 0
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    next_fired: bool = False

    @property
    def current(self) -> str:
        """The state commands see: the status, or ``deleted`` once soft-deleted."""
        return DELETED if self.deleted_at else self.status.value

    @property
    def launched(self) -> bool:
        """Its contacts have started to become attempts (a pause before launch keeps it unlaunched)."""
        return self.expand_cursor > 0 or self.expanded

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> CampaignState:
        def num(name: str) -> int:
            return int(raw.get(name) or 0)

        return cls(
            status=CampaignStatus(raw["status"]),
            status_reason=raw.get("status_reason") or None,
            counters=Counters(**{name: num(name) for name in COUNTERS}),
            contacts_n=num("contacts_n"),
            expand_cursor=num("expand_cursor"),
            expanded=raw.get("expanded") == "1",
            group_cursor=num("group_cursor"),
            doc_version=num("doc_version"),
            created_at=num("created_at"),
            updated_at=num("updated_at"),
            deleted_at=int(raw["deleted_at"]) if raw.get("deleted_at") else None,
            next_fired=bool(raw.get("next_fired")),
        )


class CampaignSchedule(BaseModel):
    """Seed 000's record: what the scheduler promotes at ``start_at``."""

    model_config = ConfigDict(extra="ignore")

    account_id: str
    campaign_id: str
    group_id: str | None
    provider: str | None
    say: str | None
    audio: str | None
    xml: str | None
    start_at: int
    status: ScheduleStatus = ScheduleStatus.PENDING
    base_cursor: int = 0  # contacts before it were expanded by an earlier run (stagger counts from here)


class CallAttempt(BaseModel):
    key: str
    account_id: str
    campaign_id: str
    contact: int
    attempt: int
    phone: str
    due_at: int
    state: AttemptState = AttemptState.SCHEDULED
    reason: str | None = None
    sid: str | None = None
    dial_token: str | None = None
    from_number: str | None = None
    answered_by: str | None = None
    duration_s: int | None = None
    cost: int = 0
    reserved: int = 0
    error_code: str | None = None
    first_at: int | None = None  # the contact's first call time (recall offsets count from it)
    extra: bool = False  # made by re-execute / redial: outside the recall policy
    permanent: bool = False  # ended by a permanent error (invalid number, ...)
    price_per_minute: int | None = None  # the provider's price when the dial was admitted
    failures: int = 0  # times its processing raised (the poison limit ends it)
    deadline_ms: int | None = None  # a live call must be over by then
    hours_zone: str | None = None  # the zone whose calling hours decided (a campaign timezone, UTC, ...)

    def following(self, due_at: int, first_at: int, extra: bool = False) -> CallAttempt:
        """Attempt n+1 of the same contact (a recall, or with ``extra`` a re-execute/redial)."""
        return CallAttempt(
            key=attempt_key(self.campaign_id, self.contact, self.attempt + 1),
            account_id=self.account_id,
            campaign_id=self.campaign_id,
            contact=self.contact,
            attempt=self.attempt + 1,
            phone=self.phone,
            due_at=due_at,
            first_at=first_at,
            extra=extra,
        )

    placed_at: int | None = None
    dialing_at: int | None = None
    ended_at: int | None = None
