"""Contact groups (seed `group_id`, VoIPbin `outdial`): named contact lists a campaign can dial.

Import is all or nothing: every bad row is reported by its line and nothing is written until the file
is clean. Campaigns with ``end_handle: continue`` on a group dial the contacts added to it later.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialer import keys
from dialer.context import Core
from dialer.errors import InvalidRequest
from dialer.intake import check_message, check_size
from dialer.lifecycle import schedule_expansion
from dialer.models import Campaign, Contact, ContactIn, check_id, check_name
from dialer.phones import InvalidNumber, normalize
from dialer.states import FEEDABLE, CampaignStatus
from dialer.validation import describe, parse_json

CONTACT_FIELDS = set(ContactIn.model_fields)
MAX_REPORTED = 50


def create(core: Core, account_id: str, name: str, group_id: str | None = None) -> str:
    """Create an empty group; returns its id."""
    name = check_name(name)
    gid = group_id or core.store.new_id()
    check_id(gid, "group id")
    core.store.create_group(account_id, gid, name, core.now())
    return gid


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _read_csv(reader)
    except csv.Error as exc:
        raise InvalidRequest(f"line {reader.line_num + 1}: not readable CSV: {exc}") from None


def _read_csv(reader: csv.DictReader[str]) -> list[tuple[str, dict[str, Any]]]:
    if not reader.fieldnames or "phone" not in [f.strip() for f in reader.fieldnames]:
        raise InvalidRequest("line 1: the header row must name a 'phone' column")
    rows = []
    for row in reader:
        item: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for col, value in row.items():
            if col is None:
                raise InvalidRequest(f"line {reader.line_num}: more cells than header columns")
            col, value = col.strip(), (value or "").strip()
            if not value:
                continue
            if col.startswith("custom_fields."):
                custom[col.split(".", 1)[1]] = value
            elif col == "params":
                item["params"] = [p.strip() for p in value.split("|")]
            elif col in CONTACT_FIELDS:
                item[col] = value
            else:  # any other column travels as a custom field
                custom[col] = value
        if custom:
            item["custom_fields"] = custom
        rows.append((f"line {reader.line_num}", item))
    return rows


def json_rows(text: str | list[Any] | dict[str, Any]) -> list[tuple[str, Any]]:
    data = parse_json(text) if isinstance(text, str) else text
    if isinstance(data, dict) and "contacts" in data:
        data = data["contacts"]
    if not isinstance(data, list):
        raise InvalidRequest('a JSON import is an array of contacts (or {"contacts": [...]})')
    return [(f"contacts.{i}", item) for i, item in enumerate(data)]


def parse_file(path: Path) -> list[tuple[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"{path}: {exc.strerror}") from None
    return parse_upload(raw, "json" if path.suffix.lower() == ".json" else "csv", str(path))


def parse_upload(raw: bytes, kind: str, name: str = "the upload") -> list[tuple[str, Any]]:
    """Rows of a contact import: ``kind`` json (an array, or {"contacts": [...]}) or csv (a header row)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest(f"{name}: not UTF-8 text") from None
    return json_rows(text) if kind == "json" else _csv_rows(text)


def import_rows(core: Core, account_id: str, group_id: str, rows: list[tuple[str, Any]]) -> dict[str, Any]:
    """Validate every row; any bad one refuses the whole import, naming each bad row."""
    store = core.store
    check_size(len(rows), core.settings.max_contacts)
    region = store.get_account(account_id).default_region
    contacts: list[Contact] = []
    errors: list[str] = []
    for where, item in rows:
        if not isinstance(item, dict):
            errors.append(f"{where}: a contact is an object with at least a phone")
            continue
        try:
            c = ContactIn.model_validate(item)
            phone = normalize(c.phone, region)
        except ValidationError as exc:
            errors.append(f"{where}: {describe(exc)}")
            continue
        except InvalidNumber as exc:
            errors.append(f"{where}: phone: {exc} ({item.get('phone')})")
            continue
        contacts.append(
            Contact(
                index=0,
                phone=phone,
                data=c.model_dump(exclude_none=True, exclude_defaults=True, exclude={"phone"}),
            )
        )
    if errors:
        shown = "; ".join(errors[:MAX_REPORTED]) + (
            f"; ... {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        )
        raise InvalidRequest(f"{len(errors)} bad row(s), nothing imported: {shown}")
    if not contacts:
        raise InvalidRequest("the file holds no contacts")
    res = store.append_contacts(
        keys.group(account_id, group_id),
        keys.group_contacts(account_id, group_id),
        keys.group_phones(account_id, group_id),
        contacts,
    )
    assert res is not None  # without a cursor an append is never stale
    added, dups, _ = res
    feeding = _feed_campaigns(core, account_id, group_id)
    return {"group": group_id, "imported": len(added), "duplicates": dups, "campaigns_fed": feeding}


def _feed_campaigns(core: Core, account_id: str, group_id: str) -> list[str]:
    """Contacts added to a group reach its `end_handle: continue` campaigns (dialled from now on)."""
    fed = []
    for cid in core.store.group_subscribers(account_id, group_id):
        campaign, state = core.store.get_campaign(account_id, cid)
        if state.current not in FEEDABLE:
            continue
        if feed_campaign(core, campaign):
            fed.append(cid)
    return fed


def feed_campaign(core: Core, campaign: Campaign) -> int:
    """Append to a continue campaign the group entries after its ``group_cursor``, 1,000 positions at a
    time, each step a compare-and-set on the cursor (a concurrent feed or a repeated one adds nothing);
    a running or paused campaign then expands them. Returns how many contacts it took."""
    store = core.store
    a, cid, gid = campaign.account_id, campaign.id, campaign.group_id or ""
    taken = 0
    while True:
        state = store.campaign_state(a, cid)
        cursor = state.group_cursor
        entries = store.group_contacts(a, gid, cursor, cursor + 999)
        if not entries:
            break
        contacts = [Contact(index=0, phone=c.phone, data=c.data) for c in entries if c.intake == "ok"]
        check_message(campaign, contacts, refuse=False)
        res = store.append_contacts(
            keys.campaign(a, cid),
            keys.contacts(a, cid),
            keys.campaign_phones(a, cid),
            contacts,
            group_cursor=(cursor, cursor + len(entries)),
        )
        if res is None:  # another feed took these positions
            continue
        taken += len(contacts)
    if taken and state.status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
        schedule_expansion(core, campaign, state.expand_cursor)
    return taken
