"""The `dialer` command line (DESIGN §8). With --json a command prints exactly one JSON document on stdout;
logs go to stderr. Exit 0 done, 1 refused by a rule, 2 usage error, 3 Redis unreachable."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from rich.console import Console
from rich.table import Table

from config import get_settings
from config.logging import configure_logging
from config.settings import SettingsError
from dialer import groups
from dialer.clock import parse_instant
from dialer.devstack import DevStack, live_url_file
from dialer.errors import DialerError, InvalidRequest, NotFound, RedisUnavailable
from dialer.providers import ProviderSpec, parse_spec
from dialer.service import Service
from dialer.validation import parse_json
from dialer.watch import summary_table, watch

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Outbound-call campaign engine.",
)
account_app = typer.Typer(no_args_is_help=True, help="Accounts and their balance.")
provider_app = typer.Typer(no_args_is_help=True, help="Telephony providers of an account.")
campaign_app = typer.Typer(no_args_is_help=True, help="Campaigns: submit, start, inspect.")

sim_app = typer.Typer(no_args_is_help=True, help="The built-in simulator provider.")
dnc_app = typer.Typer(no_args_is_help=True, help="Do-not-call list of an account.")
call_app = typer.Typer(no_args_is_help=True, help="Single call attempts.")
group_app = typer.Typer(no_args_is_help=True, help="Contact groups a campaign can dial (group_id).")
template_app = typer.Typer(no_args_is_help=True, help="Stored messages campaigns can name (template_id).")
app.add_typer(account_app, name="account")
app.add_typer(provider_app, name="provider")
app.add_typer(campaign_app, name="campaign")

app.add_typer(sim_app, name="simulator")
app.add_typer(dnc_app, name="dnc")
app.add_typer(call_app, name="call")
app.add_typer(group_app, name="group")
app.add_typer(template_app, name="template")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OwnerOpt = Annotated[
    str | None,
    typer.Option("--account", help="The account holding the id (needed when several accounts hold it)."),
]
out = Console()
err = Console(stderr=True)


# --- plumbing -----------------------------------------------------------------------------------------------
class Ctx:
    """The service, connected on first use (commands that need no Redis never connect)."""

    def __init__(self) -> None:
        self._service: Service | None = None

    @property
    def service(self) -> Service:
        if self._service is None:
            self._service = Service.from_settings()
        return self._service


ctx = Ctx()


def emit(data: Any, as_json: bool, human: Any = None) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    elif human is not None:
        out.print(human)
    elif isinstance(data, dict):
        table = Table(show_header=False, box=None)
        for k, v in data.items():
            table.add_row(f"[bold]{k}[/bold]", json.dumps(v) if isinstance(v, dict | list) else str(v))
        out.print(table)
    else:
        out.print(data)


# --- dev / demo ----------------------------------------------------------------------------------------------
@app.command()
def dev(
    processes: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(help="Threads per worker process.")] = 8,
) -> None:
    """Embedded Redis + worker + scheduler in one process tree, until Ctrl-C."""
    settings = get_settings()
    stop = {"now": False}

    def on_signal(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        with DevStack(settings, processes=processes, threads=threads) as stack:
            err.print(
                f"[green]dialer dev[/green]: Redis {stack.url} (also in {settings.var_dir}/redis.url); "
                f"HTTP API {stack.web_url} (also in {settings.var_dir}/web.url, docs at {stack.web_url}/docs); "
                "worker and scheduler running. Ctrl-C stops."
            )
            while not stop["now"]:
                failed = stack.failed_child()
                if failed:
                    raise DialerError(failed)
                time.sleep(0.2)
    except RuntimeError as exc:
        raise DialerError(str(exc)) from None


DEMO_NAMES = ["Ana", "Luis", "Marta", "Jorge", "Lucía", "Pablo", "Elena", "Diego", "Sara", "Hugo"]


def demo_campaign() -> dict[str, Any]:
    """~20 contacts covering every simulator outcome (by last digit), a short recall, a template."""
    contacts = []
    for i in range(20):
        phone = f"+3460010{i // 10}00{i % 10}"
        contacts.append(
            {"phone": phone, "first_name": DEMO_NAMES[i % 10], "custom_fields": {"lead_id": f"L-{1000 + i}"}}
        )
    return {
        "name": "Demo: spring offer",
        "contacts": contacts,
        "say": "Hello {{first_name}}, this is a reminder about your offer {{custom_fields.lead_id}}.",
        "recall": [0.1],
        "idempotency_key": None,
    }


@app.command()
def demo(timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 300) -> None:
    """The dev stack, a sample account with a simulator provider and a 20-contact campaign, live progress."""
    settings = get_settings()
    running = None if settings.redis_url else live_url_file(settings)
    stack = None
    try:
        if running:
            err.print(f"using the running dev stack at {running}")
            url = running
        else:
            # the demo takes any free port for its web process unless DIALER_HTTP_PORT says which
            port = None if "DIALER_HTTP_PORT" in os.environ else 0
            stack = DevStack(settings, log_to_files=True, web_port=port).__enter__()
            url = stack.url
            err.print(
                f"started Redis ({url}), a worker, the scheduler and the HTTP API ({stack.web_url}); "
                f"their logs are in {settings.var_dir}/"
            )
        svc = Service.from_settings(settings, redis_url=url)
        account_id = "demo"
        try:
            svc.core.store.require_account(account_id)
        except NotFound:
            svc.create_account(account_id, "100.00", "Demo account", "ES")
        demo = svc.for_account(account_id)
        demo.add_provider(
            "sim",
            ProviderSpec(
                kind="simulator",
                from_numbers=["+34911234567"],
                cps=4,
                max_concurrent=10,
                price_per_minute="0.02",
                sim={"ring_s": 1.0, "talk_min_s": 1.0, "talk_max_s": 2.0, "no_answer_s": 2.0},
            ),
        )
        res = demo.submit(demo_campaign(), start=True)
        cid = res["campaign_id"]
        err.print(
            f"campaign {cid}: {res['total_contacts']} contacts, recall after 6 s for no-answer/busy/"
            f"failed/machine; follow it with `dialer watch {cid}`"
        )
        view = watch(demo, cid, timeout_s=timeout)
        out.print(summary_table(demo, cid))
        if view["status"] != "completed":
            raise DialerError(
                f"the demo campaign did not complete in {timeout:.0f}s (status {view['status']})"
            )
    finally:
        if stack is not None:
            stack.stop()


@app.command("watch")
def watch_cmd(campaign_id: str) -> None:
    """Live progress (dialled / answered / failed / pending) until the campaign ends."""
    scope = ctx.service.for_campaign(campaign_id)
    watch(scope, campaign_id)
    out.print(summary_table(scope, campaign_id))


# --- accounts ---------------------------------------------------------------------------------------------------
@account_app.command("create")
def account_create(
    account_id: Annotated[str, typer.Argument(metavar="ID")],
    balance: Annotated[str, typer.Option(help="Starting balance, e.g. 50.00")] = "0",
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    region: Annotated[str | None, typer.Option(help="Default region for numbers without +, e.g. ES.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account; prints its API key once."""
    emit(ctx.service.create_account(account_id, balance, name, region), as_json)


@account_app.command("show")
def account_show(account_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOpt = False) -> None:
    """Balance, reserved (held for live calls) and available."""
    emit(ctx.service.for_account(account_id).account(), as_json)


@account_app.command("topup")
def account_topup(
    account_id: Annotated[str, typer.Argument(metavar="ID")], amount: str, as_json: JsonOpt = False
) -> None:
    """Add money to an account."""
    emit(ctx.service.topup(account_id, amount), as_json)


account_key_app = typer.Typer(no_args_is_help=True, help="The account's API key.")
account_app.add_typer(account_key_app, name="key")


@account_key_app.command("rotate")
def account_key_rotate(
    account_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOpt = False
) -> None:
    """A new API key for the account, printed once; the old one stops working at once."""
    emit(ctx.service.rotate_key(account_id), as_json)


# --- providers --------------------------------------------------------------------------------------------------
def _secret(auth_token: str | None, auth_token_env: str | None) -> str | None:
    if auth_token is not None and auth_token_env:
        raise InvalidRequest("--auth-token: give --auth-token - or --auth-token-env VAR, not both")
    if auth_token == "-":
        return sys.stdin.readline().strip() or None
    if auth_token is not None:
        raise InvalidRequest(
            "--auth-token: secrets are never taken on the command line; use '-' (stdin) "
            "or --auth-token-env VAR"
        )
    if auth_token_env:
        value = os.environ.get(auth_token_env)
        if not value:
            raise InvalidRequest(f"--auth-token-env: environment variable {auth_token_env} is not set")
        return value
    return None


FromOpt = Annotated[list[str], typer.Option("--from", help="Caller id(s) in E.164; repeat for several.")]
_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z|[+-]?(inf|nan)\Z", re.IGNORECASE)


def _plain_int(text: str) -> int:
    """A whole number as people write it: ASCII digits (int() would also take '1_000' or '١٠')."""
    if not _INT.match(text.strip()):
        raise typer.BadParameter(f"{text!r} is not a whole number")
    return int(text)


def _plain_float(text: str) -> float:
    """A number in ASCII digits (float() would also take '1_000' or '١٠'); inf and nan are refused later,
    naming the field."""
    if not _FLOAT.match(text.strip()):
        raise typer.BadParameter(f"{text!r} is not a number")
    return float(text)


QuotaOpt = Annotated[
    int | None, typer.Option(parser=_plain_int, help="Calls per clock hour (UTC); 0 or unset = none.")
]
CpsOpt = Annotated[float | None, typer.Option(parser=_plain_float, help="Calls per second (default 1).")]
ConcOpt = Annotated[int | None, typer.Option(parser=_plain_int, help="Live calls at once (default 10).")]
PriceOpt = Annotated[str | None, typer.Option(help="Price of a started minute (default 0.02).")]
MaxSecOpt = Annotated[
    int | None, typer.Option(parser=_plain_int, help="Longest call, reserved before dialing (default 600).")
]
SidOpt = Annotated[str | None, typer.Option(help="Twilio account SID.")]
TokenOpt = Annotated[str | None, typer.Option(help="'-' reads the Twilio auth token from stdin.")]
TokenEnvOpt = Annotated[str | None, typer.Option(help="Read the auth token from this environment variable.")]
ApiBaseOpt = Annotated[str | None, typer.Option(help="Twilio API base URL (tests: a local fake).")]
SimOpt = Annotated[list[str], typer.Option(help="Simulator option KEY=VALUE; repeat.")]


def _spec(opts: dict[str, Any]) -> ProviderSpec:
    """The flags of `provider add` / `provider update` as the one ProviderSpec the service takes."""
    fields = {
        "kind": opts.get("kind"),
        "from": opts["from_"] or None,
        "hourly_quota": opts["hourly_quota"],
        "cps": opts["cps"],
        "max_concurrent": opts["max_concurrent"],
        "price_per_minute": opts["price_per_minute"],
        "max_call_seconds": opts["max_call_seconds"],
        "account_sid": opts["account_sid"],
        "auth_token": _secret(opts["auth_token"], opts["auth_token_env"]),
        "api_base": opts["api_base"],
        "sim": opts["sim"] or None,
        "enabled": opts.get("enabled"),
    }
    return parse_spec({k: v for k, v in fields.items() if v is not None})


KindOpt = Annotated[
    str | None, typer.Option(help="simulator | twilio (default simulator; fixed once added).")
]
EnableOpt = Annotated[bool | None, typer.Option("--enable/--disable", help="Take calls or not.")]


def _provider_command(update: bool) -> Any:
    """`provider add` and `provider update` take the same options (one ProviderSpec); add starts from the
    defaults, update from the stored configuration."""

    def run(
        account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
        name: Annotated[str, typer.Argument(metavar="NAME")],
        kind: KindOpt = None,
        enabled: EnableOpt = None,
        from_: FromOpt = [],  # noqa: B006
        hourly_quota: QuotaOpt = None,
        cps: CpsOpt = None,
        max_concurrent: ConcOpt = None,
        price_per_minute: PriceOpt = None,
        max_call_seconds: MaxSecOpt = None,
        account_sid: SidOpt = None,
        auth_token: TokenOpt = None,
        auth_token_env: TokenEnvOpt = None,
        api_base: ApiBaseOpt = None,
        sim: SimOpt = [],  # noqa: B006
        as_json: JsonOpt = False,
    ) -> None:
        scope = ctx.service.for_account(account_id)
        spec = _spec(dict(locals()))
        emit((scope.update_provider if update else scope.add_provider)(name, spec), as_json)

    run.__doc__ = (
        "Change a provider's limits, caller ids, credentials or simulator options; enable or disable it."
        if update
        else "Add (or replace) a provider of an account."
    )
    return run


provider_app.command("add")(_provider_command(update=False))
provider_app.command("update")(_provider_command(update=True))


@provider_app.command("show")
def provider_show(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    as_json: JsonOpt = False,
) -> None:
    """Limits, quota used this hour, live calls (secrets are never shown)."""
    emit(ctx.service.for_account(account_id).provider(name), as_json)


@provider_app.command("test")
def provider_test(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    as_json: JsonOpt = False,
) -> None:
    """The connection test of the start checks."""
    emit(ctx.service.for_account(account_id).test_provider(name), as_json)


# --- campaigns ---------------------------------------------------------------------------------------------------
@campaign_app.command("submit")
def campaign_submit(
    file: Annotated[Path, typer.Argument(metavar="FILE.json", help="Campaign JSON ('-' reads stdin).")],
    account: Annotated[str, typer.Option("--account", help="Account id.")],
    start: Annotated[bool, typer.Option("--start", help="Run the start checks and schedule it now.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Store a campaign (draft); with --start, start it. Prints {"campaign_id", ...}."""
    text = sys.stdin.read() if str(file) == "-" else _read(file)
    data = parse_json(text, str(file))
    res = ctx.service.for_account(account).submit(data, start=start)
    emit(res, as_json, None if as_json else _summary_line(res))


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidRequest(f"{file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidRequest(f"{file}: not UTF-8 text") from None


def _summary_line(res: dict[str, Any]) -> str:
    return (
        f"campaign {res['campaign_id']}: {res['status']} — {res['message']} "
        f"({res['scheduled_calls']} calls, {res['error_calls']} refused)"
    )


@campaign_app.command("start")
def campaign_start(campaign_id: str, as_json: JsonOpt = False) -> None:
    """Run the start checks (balance, group+provider, quota, connection) and schedule the campaign."""
    emit(ctx.service.for_campaign(campaign_id).start(campaign_id), as_json)


CONTROL = {
    "pause": "No new dials from now on; live calls finish. Attempts stay scheduled.",
    "resume": "Continue a paused campaign where it stopped (re-runs the balance check).",
    "stop": "Stop dialing: `stopping` until live calls end, then `stopped`.",
    "cancel": "Cancel: nothing more is dialled.",
    "delete": "Soft delete (kept for reports, hidden from lists): draft or finished campaigns only.",
    "re-execute": "Call again the contacts whose last outcome was no-answer, busy, a retryable failure or a machine.",
}


def _control_command(command: str) -> Any:
    def run(campaign_id: str, as_json: JsonOpt = False) -> None:
        scope = ctx.service.for_campaign(campaign_id)
        emit(getattr(scope, command.replace("-", "_"))(campaign_id), as_json)

    run.__doc__ = CONTROL[command]
    return run


for _command in CONTROL:
    campaign_app.command(_command)(_control_command(_command))


@campaign_app.command("update")
def campaign_update(
    campaign_id: str,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    launch_at: Annotated[
        str | None, typer.Option("--launch-at", help="New launch time, ISO-8601 (UTC if no offset).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the name or launch time of a draft or scheduled campaign."""
    when = None
    if launch_at is not None:
        try:
            when = parse_instant(launch_at)
        except ValueError as exc:
            raise InvalidRequest(f"--launch-at: {exc}") from None
    emit(ctx.service.for_campaign(campaign_id).update(campaign_id, name, when), as_json)


@campaign_app.command("list")
def campaign_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    status: Annotated[str | None, typer.Option(help="Only campaigns in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 50,
    page_token: Annotated[
        str | None, typer.Option("--page-token", help="next_page_token of the page before.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Campaigns, newest first, deleted ones hidden; paged with next_page_token."""
    svc = ctx.service
    page = (
        svc.for_account(account).campaigns(status, limit, page_token)
        if account
        else svc.list_campaigns(status, limit, page_token)
    )
    table = Table()
    for col in ("id", "account", "name", "status", "contacts", "delivered", "failed", "created_at"):
        table.add_column(col)
    for v in page["result"]:
        c = v["counters"]
        table.add_row(
            v["id"],
            v["account"],
            v["name"],
            v["status"],
            str(c["total"]),
            str(c["delivered"]),
            str(c["failed"]),
            v["created_at"],
        )
    if page["next_page_token"]:
        table.caption = f"more: --page-token {page['next_page_token']}"
    emit(page, as_json, table)


@campaign_app.command("show")
def campaign_show(campaign_id: str, as_json: JsonOpt = False) -> None:
    """Status and counters."""
    emit(ctx.service.for_campaign(campaign_id).campaign(campaign_id), as_json)


@campaign_app.command("explain")
def campaign_explain(campaign_id: str, as_json: JsonOpt = False) -> None:
    """Why is it not dialling: its contacts by what they wait for, and when each can pass."""
    res = ctx.service.for_campaign(campaign_id).explain(campaign_id)
    table = Table(title=res["sentence"])
    for col in ("waiting for", "contacts", "earliest", "in", "detail"):
        table.add_column(col)
    for w in res["waits"]:
        detail = ", ".join(f"{k} {v}" for k, v in w.items() if k not in ("kind", "count", "earliest", "in"))
        table.add_row(w["kind"], str(w["count"]), w["earliest"] or "", w["in"] or "", detail)
    emit(res, as_json, table)


@campaign_app.command("events")
def campaign_events(campaign_id: str, as_json: JsonOpt = False) -> None:
    """The campaign's audit trail: created, started, paused (by whom or why), resumed, completed, chained."""
    rows = ctx.service.for_campaign(campaign_id).events(campaign_id)
    table = Table()
    for col in ("at", "event", "by", "detail"):
        table.add_column(col)
    for r in rows:
        detail = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("at", "event", "by"))
        table.add_row(r.get("at") or "", r.get("event", ""), r.get("by", ""), detail)
    emit(rows, as_json, table)


@campaign_app.command("calls")
def campaign_calls(campaign_id: str, as_json: JsonOpt = False) -> None:
    """One row per attempt, ordered by contact then attempt."""
    rows = ctx.service.for_campaign(campaign_id).calls(campaign_id)
    table = Table()
    for col in ("key", "phone", "attempt", "state", "due_at", "placed_at", "sid", "outcome", "cost"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(
                str(r[c] or "")
                for c in ("key", "phone", "attempt", "state", "due_at", "placed_at", "sid", "outcome", "cost")
            )
        )
    emit(rows, as_json, table)


# --- operations --------------------------------------------------------------------------------------------------
@app.command("status")
def status_cmd(as_json: JsonOpt = False) -> None:
    """Schedulers, workers, backlog, tick lag and running campaigns; warns when work stalls."""
    res = ctx.service.status()
    if as_json:
        emit(res, True)
        return
    for warning in res["warnings"]:
        err.print(f"[bold red]warning[/bold red]: {warning}")
    tick = res["last_tick"]
    out.print(
        f"schedulers {len(res['schedulers'])} · workers {len(res['workers'])} · last tick "
        f"{tick['age_s'] if tick['age_s'] is not None else '-'} s ago · due now {res['backlog']['due_now']} · "
        f"overdue {res['backlog']['oldest_overdue_s']} s · queued {res['backlog']['queued_messages']}"
    )
    table = Table(title="running campaigns")
    for col in ("id", "account", "name", "dialled", "answered", "pending"):
        table.add_column(col)
    for c in res["running_campaigns"]:
        n = c["counters"]
        table.add_row(
            c["id"], c["account"], c["name"], str(n["sent"]), str(n["delivered"]), str(n["scheduled"])
        )
    out.print(table)


@app.command("doctor")
def doctor_cmd(
    as_json: JsonOpt = False,
    skip_providers: Annotated[
        bool, typer.Option("--skip-providers", help="No provider connection tests.")
    ] = False,
) -> None:
    """Check the Redis in use, the settings and the providers; each problem with its fix (exit 1 if any)."""
    res = ctx.service.doctor(test_providers=not skip_providers)
    if as_json:
        emit(res, True)
    else:
        for c in res["checks"]:
            mark = "[green]ok[/green]  " if c["ok"] else "[red]FAIL[/red]"
            out.print(
                f"{mark} {c['check']}: {c['detail']}" + (f"\n      fix: {c['fix']}" if not c["ok"] else "")
            )
    if not res["ok"]:
        sys.exit(1)


# --- do-not-call ------------------------------------------------------------------------------------------------
@dnc_app.command("add")
def dnc_add(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER...")],
    as_json: JsonOpt = False,
) -> None:
    """Never call these numbers from this account (normalised to E.164 with the account's region)."""
    emit(ctx.service.for_account(account_id).dnc_add(numbers), as_json)


@dnc_app.command("remove")
def dnc_remove(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER...")],
    as_json: JsonOpt = False,
) -> None:
    """Take numbers off the do-not-call list (those not listed are named in not_listed)."""
    emit(ctx.service.for_account(account_id).dnc_remove(numbers), as_json)


@dnc_app.command("list")
def dnc_list(account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")], as_json: JsonOpt = False) -> None:
    """The account's do-not-call numbers (E.164)."""
    numbers = ctx.service.for_account(account_id).dnc_list()
    emit(numbers, as_json, "\n".join(numbers) or "(empty)")


# --- calls and groups --------------------------------------------------------------------------------------------
@call_app.command("redial")
def call_redial(
    key: Annotated[str, typer.Argument(metavar="KEY", help="Attempt key CAMPAIGN:CONTACT:N.")],
    as_json: JsonOpt = False,
) -> None:
    """One more attempt for that contact, now (outside the recall policy)."""
    emit(ctx.service.for_attempt(key).redial(key), as_json)


@group_app.command("create")
def group_create(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    group_id: Annotated[
        str | None, typer.Option("--id", help="Choose the group id (default: generated).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an empty contact group; prints its id."""
    emit(ctx.service.for_account(account_id).create_group(name, group_id), as_json)


@group_app.command("import")
def group_import(
    group_id: Annotated[str, typer.Argument(metavar="GROUP")],
    file: Annotated[Path, typer.Argument(metavar="FILE.csv|FILE.json")],
    account_id: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add contacts from a CSV (header row: phone, first_name, ..., custom_fields.X) or JSON file.
    All or nothing: bad rows are reported by line and nothing is imported."""
    scope = ctx.service.for_group(group_id, account_id)
    emit(scope.import_contacts(group_id, groups.parse_file(file)), as_json)


@group_app.command("show")
def group_show(
    group_id: Annotated[str, typer.Argument(metavar="GROUP")],
    account_id: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The group, its size, the campaigns fed by it and its contacts."""
    view = ctx.service.for_group(group_id, account_id).group(group_id, with_contacts=True)
    table = Table(title=f"group {view['id']} ({view['name']}): {view['size']} contacts")
    for col in ("phone", "first_name", "last_name", "timezone"):
        table.add_column(col)
    for c in view["contacts"]:
        table.add_row(c["phone"], c.get("first_name", ""), c.get("last_name", ""), c.get("timezone", ""))
    emit(view, as_json, table)


# --- templates -------------------------------------------------------------------------------------------------
@template_app.command("create")
def template_create(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    template_id: Annotated[
        str | None, typer.Option("--id", help="Choose the id (default: generated).")
    ] = None,
    say: Annotated[str | None, typer.Option(help="Text to speak, with {{placeholders}}.")] = None,
    audio: Annotated[str | None, typer.Option(help="An http(s) audio URL to play.")] = None,
    xml: Annotated[Path | None, typer.Option(help="A file of raw TwiML.")] = None,
    language: Annotated[str | None, typer.Option(help="Say's language, e.g. es-ES.")] = None,
    voice: Annotated[str | None, typer.Option(help="Say's voice.")] = None,
    provider: Annotated[str | None, typer.Option(help="The provider campaigns of this template use.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a message (seed 001's TempMsgID, seed 003's playbook_id); prints {"id": ...}."""
    spec = {
        "name": name,
        "id": template_id,
        "say": say,
        "audio": audio,
        "xml": _read(xml) if xml else None,
        "language": language,
        "voice": voice,
        "provider": provider,
    }
    view = ctx.service.for_account(account_id).create_template(
        {k: v for k, v in spec.items() if v is not None}
    )
    emit({"id": view["id"]} if as_json else view, as_json)


@template_app.command("list")
def template_list(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT")], as_json: JsonOpt = False
) -> None:
    """The account's templates."""
    rows = ctx.service.for_account(account_id).templates()
    table = Table()
    for col in ("id", "name", "message", "language", "provider"):
        table.add_column(col)
    for t in rows:
        message = t["say"] or t["audio"] or "(TwiML)"
        table.add_row(t["id"], t["name"], message[:40], t["language"] or "", t["provider"] or "")
    emit(rows, as_json, table)


@template_app.command("show")
def template_show(
    template_id: Annotated[str, typer.Argument(metavar="ID")],
    account_id: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The stored message: say, audio or xml, language, voice, provider."""
    emit(ctx.service.for_template(template_id, account_id).template(template_id), as_json)


@template_app.command("delete")
def template_delete(
    template_id: Annotated[str, typer.Argument(metavar="ID")],
    account_id: OwnerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Campaigns that used it keep their message."""
    emit(ctx.service.for_template(template_id, account_id).delete_template(template_id), as_json)


# --- simulator -------------------------------------------------------------------------------------------------
@sim_app.command("dials")
def simulator_dials(
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every dial the simulator received, in order (attempt key, number, time): count duplicates with it."""
    rows = ctx.service.simulator_dials(campaign)
    table = Table()
    for col in ("key", "campaign_id", "number", "from", "at", "sid"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("key", "campaign_id", "number", "from", "at", "sid")))
    emit(rows, as_json, table)


# --- entry point ----------------------------------------------------------------------------------------------
def _fail(code: int, key: str, message: str) -> None:
    if "--json" in sys.argv:
        print(json.dumps({key: message}))
    else:
        err.print(f"[red]{key}[/red]: {message}")
    sys.exit(code)


def main() -> None:
    try:
        configure_logging(get_settings())
    except SettingsError as exc:
        _fail(3, "error", str(exc))
    try:
        app()  # standalone: usage errors exit 2 with the usage text (on stderr)
    except SystemExit as exc:
        if exc.code == 2 and "--json" in sys.argv:  # scripts still get one JSON document
            print(json.dumps({"error": "usage error: " + " ".join(sys.argv[1:]) + " (see --help)"}))
        raise
    except DialerError as exc:
        _fail(1, exc.key, exc.message)
    except RedisUnavailable as exc:
        _fail(3, "error", str(exc))
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # Redis went away mid-command
        _fail(
            3, "error", f"Redis is unreachable: {exc}; start it with `dialer dev` or check DIALER_REDIS_URL"
        )
