"""Contact groups (seed `group_id`, VoIPbin `outdial`): named contact lists a campaign can dial.

Import is all or nothing: every bad row is reported by its line and nothing is written until the file
is clean. Campaigns with ``end_handle: continue`` on a group dial the contacts added to it later.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialer import keys
from dialer.clock import Clock, to_iso
from dialer.errors import InvalidRequest
from dialer.models import ContactIn, check_id
from dialer.phones import InvalidNumber, normalize
from dialer.store import Store
from dialer.validation import describe

CONTACT_FIELDS = set(ContactIn.model_fields)
MAX_REPORTED = 50


def create(
    store: Store, clock: Clock, account_id: str, name: str, group_id: str | None = None
) -> dict[str, Any]:
    gid = group_id or store.new_campaign_id()
    check_id(gid, "group id")
    store.create_group(account_id, gid, name, clock.now_ms())
    return view(store, gid)


def view(store: Store, group_id: str, with_contacts: bool = False) -> dict[str, Any]:
    account_id = store.group_account(group_id)
    raw = store.get_group(account_id, group_id)
    out: dict[str, Any] = {
        "id": group_id,
        "account": account_id,
        "name": raw["name"],
        "size": store.r.scard(keys.group_phones(account_id, group_id)),
        "created_at": to_iso(int(raw["created_at"])),
        "campaigns": store.group_subscribers(account_id, group_id),
    }
    if with_contacts:
        out["contacts"] = [
            {"phone": c.phone, **c.data}
            for c in store.group_contacts(account_id, group_id)
            if c.intake == "ok"
        ]
    return out


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


def _json_rows(text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("not valid JSON: nested too deeply") from None
    if isinstance(data, dict) and "contacts" in data:
        data = data["contacts"]
    if not isinstance(data, list):
        raise InvalidRequest('a JSON import is an array of contacts (or {"contacts": [...]})')
    return [(f"contacts.{i}", item) for i, item in enumerate(data)]


def parse_file(path: Path) -> list[tuple[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidRequest(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidRequest(f"{path}: not UTF-8 text") from None
    return _json_rows(text) if path.suffix.lower() == ".json" else _csv_rows(text)


def import_rows(store: Store, clock: Clock, group_id: str, rows: list[tuple[str, Any]]) -> dict[str, Any]:
    """Validate every row; any bad one refuses the whole import, naming each bad row."""
    from dialer.models import Contact

    account_id = store.group_account(group_id)
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
    feeding = _feed_campaigns(store, clock, account_id, group_id)
    return {"group": group_id, "imported": len(added), "duplicates": dups, "campaigns_fed": feeding}


def _feed_campaigns(store: Store, clock: Clock, account_id: str, group_id: str) -> list[str]:
    """Contacts added to a group reach its `end_handle: continue` campaigns (dialled from now on)."""
    fed = []
    for cid in store.group_subscribers(account_id, group_id):
        campaign, live = store.get_campaign(account_id, cid)
        if live["status"] not in ("draft", "scheduled", "running", "paused") or live.get("deleted_at"):
            continue
        if feed_campaign(store, clock, campaign):
            fed.append(cid)
    return fed


def feed_campaign(store: Store, clock: Clock, campaign: Any) -> int:
    """Append to a continue campaign the group entries after its ``group_cursor``, 1,000 positions at a
    time, each step a compare-and-set on the cursor (a concurrent feed or a repeated one adds nothing);
    a running or paused campaign then expands them. Returns how many contacts it took."""
    from dialer.campaigns import check_message, schedule_expansion
    from dialer.models import Contact

    a, cid, gid = campaign.account_id, campaign.id, campaign.group_id
    taken = 0
    while True:
        _, live = store.get_campaign(a, cid)
        cursor = int(live.get("group_cursor", 0))
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
    if taken and live["status"] in ("running", "paused"):
        schedule_expansion(store, campaign, clock.now_ms())
    return taken
