"""`dialer watch`: live progress of a campaign until it ends (rich on a terminal, plain lines otherwise)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dialer.service import AccountService
from dialer.states import TERMINAL


def _numbers(view: dict[str, Any]) -> dict[str, int]:
    c = view["counters"]
    return {
        "contacts": c["scheduled_calls"],
        "dialled": c["sent"],
        "answered": c["delivered"],
        "failed": c["failed"],
        "skipped": c["skipped"],
        "pending": c["scheduled"] + c["dialing"],
    }


def watch(
    scope: AccountService,
    campaign_id: str,
    console: Console | None = None,
    interval_s: float = 0.25,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Poll until the campaign reaches a terminal state; return its final view."""
    console = console or Console(stderr=False)
    view = scope.campaign(campaign_id)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    if not console.is_terminal:
        return _watch_plain(scope, campaign_id, view, interval_s, deadline)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(view["name"][:30], total=max(1, _numbers(view)["contacts"]), detail="")
        while True:
            n = _numbers(view)
            done = n["answered"] + n["failed"] + n["skipped"]
            progress.update(
                task,
                completed=done,
                total=max(1, n["contacts"]),
                detail=f"dialled {n['dialled']} · answered {n['answered']} · failed {n['failed']}"
                f" · pending {n['pending']} · {view['status']}",
            )
            if view["status"] in TERMINAL or (deadline and time.monotonic() > deadline):
                return view
            time.sleep(interval_s)
            view = scope.campaign(campaign_id)


def _watch_plain(
    scope: AccountService,
    campaign_id: str,
    view: dict[str, Any],
    interval_s: float,
    deadline: float | None,
) -> dict[str, Any]:
    last = ""
    last_at = 0.0
    while True:
        n = _numbers(view)
        line = (
            f"{view['status']}: dialled {n['dialled']} · answered {n['answered']} · failed {n['failed']}"
            f" · pending {n['pending']} of {n['contacts']} contacts"
        )
        if line != last and (time.monotonic() - last_at > 2 or view["status"] in TERMINAL):
            print(line, flush=True)
            last, last_at = line, time.monotonic()
        if view["status"] in TERMINAL or (deadline and time.monotonic() > deadline):
            return view
        time.sleep(interval_s)
        view = scope.campaign(campaign_id)


def summary_table(scope: AccountService, campaign_id: str) -> Table:
    """One row per contact: its attempts and final outcome; totals in the caption."""
    view = scope.campaign(campaign_id)
    rows = scope.calls(campaign_id)
    contacts = {c.index: c for c in scope.core.store.contacts(scope.account_id, campaign_id)}
    table = Table(title=f"campaign {campaign_id} — {view['status']}")
    for col in ("#", "phone", "name", "attempts", "outcome", "answered by", "cost"):
        table.add_column(col)
    by_contact: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_contact.setdefault(r["contact"], []).append(r)
    for idx, contact in sorted(contacts.items()):
        attempts = by_contact.get(idx, [])
        last = attempts[-1] if attempts else None
        if contact.intake != "ok":
            outcome = "refused: " + (contact.intake_reason or contact.intake)
        else:
            outcome = (
                (last["state"] + (f" ({last['reason']})" if last and last["reason"] else "")) if last else "-"
            )
        table.add_row(
            str(idx),
            contact.phone,
            str(contact.data.get("first_name", "")),
            str(len(attempts)),
            outcome,
            (last or {}).get("answered_by") or "",
            (last or {}).get("cost") or "0.00",
        )
    c = view["counters"]
    table.caption = (
        f"contacts {c['total']} · answered {c['delivered']} · failed {c['failed']} · "
        f"skipped {c['skipped']} · refused at intake {c['error_calls']} · calls {c['sent']} · "
        f"recalls {c['recalls']} · cost {view['cost']}"
    )
    return table
